"""The experiments of the chapter: the public protocol (``gmm``), the sweep (``gmm-sweep``) and
the curation sweep (``gmm-curation``).

``gmm`` is the public notebook's protocol: 1000 points of one 2-D unit blob, a
two-component full-covariance mixture refitted from scratch on each generation's
1000 samples, 2050 generations at the ``paper`` profile (Shumailov et al. 2024,
supplement).  ``gmm-sweep`` runs every data variant x data regime over seeds,
with fewer points so the same collapse shows in fewer generations.  Both also take the
curation regimes ``verify`` (a verifier that knows the real mixture and errs at rate
``verifier_error``) and ``self-correct`` (samples moved a share ``gamma`` towards it); see
:mod:`collapse_utils.gmm.curation`.  In ``gmm-sweep`` both are sweep axes.
``gmm-curation`` sweeps them on one blob beside replace and keep-real, at sizes chosen
for the curation chapter.  All go through :func:`run_chain` and the core's run cache; every generation's fitted
:class:`~collapse_utils.gmm.mixture.Mixture` is saved in its run directory, so
figures read kept models with ``loop.load_generation(rec.run_dir(), i)``.

Random streams (so the book's numbers stay put): the real data come from
``rng_for(seed, "real")`` = ``default_rng([seed, 10**6])``, generation i's fit and
samples from ``rng_for(seed, "generation", i)`` = ``default_rng([seed, i])``.
"""
from __future__ import annotations

import numpy as np

from ..experiments import Experiment, RunOutput, register
from ..loop import rng_for, run_generations
from ..regimes import CURATION_REGIMES, REGIMES, make_regime
from ..settings import Setting
from .curation import ModelTracker, corrector, verifier
from .data import VARIANTS, original_mixture, real_data
from .measure import measure_mixture
from .mixture import fit_mixture, sample_mixture

#: generations whose models the public notebook draws as scatter plots
SCATTER_GENERATIONS = (0, 50, 100, 150, 200, 350, 2000)

#: what ``python -m collapse_utils run gmm --profile paper`` (seed 0) measured on the book's
#: 2-core build machine on 2026-11-23, with the machine otherwise idle (37 s wall; on the same
#: machine busy with other jobs, load average ~6, it took 157 s wall for the same 36 s of CPU).
#: The public notebook printed a component std of ~0.90 at the start and ~0.01 at the end.
#: The drifts are mean changes per generation of a log geometric-mean std (with the standard
#: error of that mean over the 2050 steps): the whole mixture's, against the sampling-error
#: prediction for one Gaussian on N = M points; the components' (mean over the two), against
#: what effective shares w_k M would predict (``theory.effective_drift``).
PAPER_PROFILE_RUN = {
    "generations": 2050,
    "seed": 0,
    "component_std_start": 0.915503,
    "component_std_end": 0.014906,
    "l2_to_gen0_end": 224.0,
    "total_std_end": 0.0276,
    "lighter_weight_mean": 0.290,
    "total_log_drift": -0.00183,
    "total_log_drift_se": 0.00065,
    "component_log_drift": -0.00203,
    "effective_drift": -0.00813,
    "cpu_seconds": 36.0,
    "wall_seconds": 37.0,
}

_COMMON = {
    "points": Setting(1000, low=2, help="M: points per generation (the public notebook's 1000)"),
    "components": Setting(2, low=1, help="K: mixture components (the public notebook's 2)"),
    "separation": Setting(6.0, low=0.1, help="two-blobs: distance between the blob centres, in sd"),
    "real_fraction": Setting(0.1, low=0.0, high=1.0, help="keep-real: share of real points"),
    "verify_bound": Setting(3.0, low=1.0, help="verify: c in the acceptance probability "
                            "min(1, p_0 / (c p_n)); exact rejection sampling where p_0 <= c p_n"),
}

#: the curation settings: one value each in ``gmm``, sweep axes in ``gmm-sweep``
_VERIFIER_ERROR = dict(low=0.0, high=0.5,
                       help="verify: probability that the verifier's decision is wrong (0.5: a coin)")
_GAMMA = dict(low=0.0, high=1.0, help="self-correct: strength of the correction (0: replace)")

#: the ``gmm`` experiment: the public protocol, one run (seed 0) unless asked for more
GMM_SETTINGS = {
    **_COMMON,
    "generations": Setting((55, 400, 2050), low=0,
                           help="generations after the fit to the real data (2050 in the paper)"),
    "variant": Setting("one-blob", choices=VARIANTS, help="the real data"),
    "regime": Setting("replace", choices=REGIMES + CURATION_REGIMES,
                      help="what each generation trains on"),
    "verifier_error": Setting(0.1, **_VERIFIER_ERROR),
    "gamma": Setting(0.5, **_GAMMA),
    "seeds": Setting(1, low=1, help="independent runs"),
}

#: the ``gmm-sweep`` experiment: variants x regimes x seeds, for the bands of the chapter.
#: Fewer points than the protocol make the collapse (whose rate is about 1/M per
#: generation) visible in fewer generations, and keep "accumulate" (whose training
#: set grows by M each generation) affordable.
SWEEP_SETTINGS = {
    **_COMMON,
    "points": Setting((100, 250, 250), low=2, help="M: points per generation"),
    "generations": Setting((20, 100, 200), low=0,
                           help="generations after the fit to the real data (default: as many as the 400 of the protocol at 1000 points)"),
    "variant": Setting(["one-blob", "two-blobs"], choices=VARIANTS, sweep=True, help="the real data"),
    "regime": Setting(["replace", "keep-real", "accumulate"], choices=REGIMES + CURATION_REGIMES,
                      sweep=True, help="what each generation trains on"),
    "verifier_error": Setting([0.1], sweep=True, **_VERIFIER_ERROR),
    "gamma": Setting([0.5], sweep=True, **_GAMMA),
    "seeds": Setting((3, 4, 5), low=1, help="independent runs per variant and regime"),
}


#: the ``gmm-curation`` experiment: the curation regimes beside replace and keep-real on one
#: blob.  M = 100 points make replace collapse within 100 generations; the tail metrics are
#: left out (half of a generation's time), so a verifier sweep of seven error rates, three
#: correction strengths and the two references, over 4 seeds, takes about 2 minutes at
#: ``default`` on two cores.  One verifier error and one strength by default: sweep them
#: with ``verifier_error=[...]`` or ``gamma=[...]`` (with ``regime=["verify"]``, or
#: ``["self-correct"]``, so that replace is not rerun for every value).
CURATION_SETTINGS = {
    **_COMMON,
    "points": Setting((60, 100, 250), low=2, help="M: points per generation"),
    "generations": Setting((5, 100, 300), low=0, help="generations after the fit to the real data"),
    "variant": Setting("one-blob", choices=VARIANTS, help="the real data"),
    "regime": Setting(["replace", "keep-real", "verify", "self-correct"],
                      choices=REGIMES + CURATION_REGIMES, sweep=True,
                      help="what each generation trains on"),
    "verifier_error": Setting([0.1], sweep=True, **_VERIFIER_ERROR),
    "gamma": Setting([0.1], sweep=True, **_GAMMA),
    "seeds": Setting((2, 4, 10), low=1, help="independent runs per regime and setting"),
}


def check(settings: dict) -> None:
    """Relations between settings: EM needs at least one point per component."""
    if settings["points"] < settings["components"]:
        raise ValueError(f"points must be at least components ({settings['components']}); "
                         f"got {settings['points']!r}")


def run_real_data(settings: dict, seed: int) -> np.ndarray:
    """The real data D_0 of one run, from its ``rng_for(seed, "real")`` stream."""
    return real_data(settings["points"], settings["variant"], settings["separation"],
                     rng=rng_for(seed, "real"))


def make_run_regime(settings: dict, original):
    """The run's regime and the sampler the loop draws with.

    ``verify`` gets :func:`~collapse_utils.gmm.curation.verifier` (which needs the model that
    drew each batch, hence a :class:`~collapse_utils.gmm.curation.ModelTracker` as sampler),
    ``self-correct`` :func:`~collapse_utils.gmm.curation.corrector`; every other regime
    samples with :func:`~collapse_utils.gmm.mixture.sample_mixture` as before.
    """
    s = settings
    if s["regime"] not in CURATION_REGIMES:
        return make_regime(s["regime"], real_fraction=s["real_fraction"]), sample_mixture
    tracker = ModelTracker()
    accept = verifier(original, tracker, s["verifier_error"], s["verify_bound"])
    regime = make_regime(s["regime"], accept=accept, correct=corrector(original), gamma=s["gamma"])
    return regime, tracker.sample


def run_chain(settings: dict, *, seed: int = 0, run_dir=None, resume: bool = False,
              progress: bool = True, stop_after: int | None = None,
              tails: bool = True) -> RunOutput:
    """One run of the protocol (or of one variant x regime) through the core loop.

    ``settings`` hold one variant and one regime.  Every generation's model is
    saved under ``run_dir`` (a few hundred bytes each).  ``tails=False`` leaves the
    tail metrics out (:func:`~collapse_utils.gmm.measure.measure_mixture`).
    """
    import sklearn.mixture  # noqa: F401  (load its BLAS/OpenMP before limiting their threads)
    from threadpoolctl import threadpool_limits

    s = settings
    n, comps = int(s["generations"]), int(s["components"])
    original = original_mixture(s["variant"], s["separation"])
    real = run_real_data(s, seed)
    regime, sample = make_run_regime(s, original)

    def measure(g):
        return {**measure_mixture(g.model, g.first_model, original, tails),
                "train_size": len(g.train)}

    # one BLAS/OpenMP thread: the data are small, and threads only contend here (on a busy
    # 2-core machine k-means with default threads made a fit ~10x slower).  threadpoolctl
    # limits only libraries already loaded, hence the import of sklearn.mixture above.
    with threadpool_limits(limits=1):
        result = run_generations(
            lambda data, rng: fit_mixture(data, rng, comps), sample, real, n,
            regime=regime, sizes=int(s["points"]), seed=int(seed), measure=measure,
            run_dir=run_dir, resume=resume, progress=progress,
            desc=f"gmm {s['variant']} {s['regime']} seed {seed}", stop_after=stop_after)
    return RunOutput(list(result.generations), result.metrics, None)


def run_curation(settings: dict, **kw) -> RunOutput:
    """One run of ``gmm-curation``: :func:`run_chain` without the tail metrics."""
    return run_chain(settings, tails=False, **kw)


register(Experiment(
    name="gmm",
    summary="2-component Gaussian mixture refitted on its own samples (the public GMM protocol)",
    settings=GMM_SETTINGS, run=run_chain, check=check, parallel=True,
))

register(Experiment(
    name="gmm-sweep",
    summary=("Gaussian mixtures: one and two blobs x replace / keep 10% real / accumulate "
             "(or verify, self-correct), over seeds"),
    settings=SWEEP_SETTINGS, run=run_chain, check=check, parallel=True,
))

register(Experiment(
    name="gmm-curation",
    summary="Gaussian mixtures: verify (verifier error rate) and self-correct (strength) beside "
            "replace and keep 10% real",
    settings=CURATION_SETTINGS, run=run_curation, check=check, parallel=True,
))
