"""collapse_utils: the helper package of *Model Collapse, executable*.

A book that teaches and reproduces Shumailov et al., "AI models collapse when
trained on recursively generated data", Nature 631, 755-759 (2024).

The core (one module per job)
    profiles     run sizes (``COLLAPSE_PROFILE`` = smoke | default | paper)
    settings     the declared settings schema of every experiment, checked once
    regimes      replace, accumulate, accumulate-subsample, mix / keep-real, verify,
                 self-correct; M_i schedules
    loop         the generational fit-sample loop, named random streams, atomic cache, resume
    experiments  the registry, the sweep over regimes / variants / seeds, the run cache
    record       metrics.json and its one reader, ``Record.metric``
    plotting     one figure style for the whole book
    notebook     glue numbers into the prose, the assert helper, key-number tables
    hub          reach the Hugging Face Hub, or decide at once that it cannot
    cli          ``python -m collapse_utils``
    assignments  student and autograder versions of the graded exercises (otter-grader)
One package per model family
    gaussian, discrete, gmm, vae, lm, linreg
"""
__version__ = "0.3.0"

#: the book's repository (``_config.yml``'s ``repository.url`` states it too; a test checks
#: that they agree)
REPOSITORY_URL = "https://github.com/model-collapse-executable/model-collapse-executable"
#: this release as GitHub's archive of its tag: every notebook's first cell and the autograder
#: install it (pip needs no git for an archive), so a handed-out assignment stays on this release
RELEASE_URL = f"{REPOSITORY_URL}/archive/refs/tags/v{__version__}.zip"

from .loop import Generation, LoopResult, rng_for, run_generations  # noqa: E402
from .profiles import PROFILES, current_profile  # noqa: E402
from .record import Record  # noqa: E402
from .regimes import (  # noqa: E402
    Accumulate, AccumulateSubsample, Mix, Replace, Schedule, SelfCorrect, Verify, keep_real,
    make_regime,
)
from .settings import Setting  # noqa: E402

__all__ = [
    "Accumulate", "AccumulateSubsample", "Generation", "LoopResult", "Mix", "PROFILES", "Record",
    "Replace", "Schedule", "SelfCorrect", "Setting", "Verify", "current_profile", "keep_real", "make_regime", "rng_for",
    "run", "run_experiment", "run_generations",
]


def run(*args, **kwargs):
    """See :func:`collapse_utils.experiments.run`."""
    from .experiments import run as _run

    return _run(*args, **kwargs)


def run_experiment(*args, **kwargs):
    """See :func:`collapse_utils.experiments.run_experiment`."""
    from .experiments import run_experiment as _run

    return _run(*args, **kwargs)
