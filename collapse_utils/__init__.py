"""collapse_utils: the helper package of *Model Collapse, executable*.

A book that teaches and reproduces Shumailov et al., "AI models collapse when
trained on recursively generated data", Nature 631, 755-759 (2024).

Shared core
    profiles     run sizes (``COLLAPSE_PROFILE`` = smoke | default | paper)
    regimes      replace, accumulate, accumulate-subsample, mix / keep-real; M_i schedules
    loop         the generational fit-sample loop, seeding, atomic cache and resume
    experiments  the registry behind ``python -m collapse_utils`` and metrics.json
    plotting     one figure style for the whole book
    notebook     glue computed numbers into the prose; the profile banner
    hub          reach the Hugging Face Hub, or decide at once that it cannot
One module per model family
    gaussian, discrete, gmm, vae, lm
"""
__version__ = "0.1.0"

from .loop import Generation, LoopResult, run_generations  # noqa: E402
from .profiles import PROFILES, current_profile, sizes_for  # noqa: E402
from .regimes import (  # noqa: E402
    Accumulate, AccumulateSubsample, Mix, Replace, Schedule, keep_real, make_regime,
)

__all__ = [
    "Accumulate", "AccumulateSubsample", "Generation", "LoopResult", "Mix", "PROFILES",
    "Replace", "Schedule", "current_profile", "keep_real", "make_regime", "run_generations",
    "sizes_for", "run_experiment",
]


def run_experiment(*args, **kwargs):
    """See :func:`collapse_utils.experiments.run_experiment`."""
    from .experiments import run_experiment as _run

    return _run(*args, **kwargs)
