"""The linear-regression experiments: settings, one run each, registration.

``linear-regression``: least squares refitted on its own labels (Gerstgrasser et al.
2024, Sec. 2).  Generation 0 fits ``samples`` real pairs; generation i+1 fits pairs
with fresh features whose labels come from generation i's fit plus fresh noise,
kept or mixed by the regime: the core's ``replace``, ``accumulate``,
``accumulate-subsample`` and ``keep-real``, and the curation regimes ``verify``
(a verifier that knows w* and errs at rate ``verifier_error``) and ``self-correct``
(labels moved a share ``gamma`` of the way to x . w*).

``linear-regression-mix``: a constant share of synthetic labels (Dohmatob et al.
2024, "Strong model collapse").  Generation 0, fitted on ``real_samples`` real
pairs, is the generator; generation i+1 fits ``samples`` pairs, a share
``synthetic_share`` labelled by generation i and the rest fresh real pairs.
Generation 1 is the paper's setting; later generations are the fresh-data loop.

Every run holds ``chains`` independent chains along axis 0 of one array.
"""
from __future__ import annotations

import numpy as np

from ..experiments import Experiment, RunOutput, register
from ..loop import rng_for, run_generations
from ..regimes import CURATION_REGIMES, REGIMES, make_regime
from ..settings import Setting
from . import simulate as sim
from . import theory

QUANTILES = (0.1, 0.5, 0.9)

SETTINGS = {
    "d": Setting(10, low=1, help="number of features"),
    "samples": Setting(50, low=2, help="pairs per generation, T (must exceed d + 1)"),
    "noise": Setting(1.0, low=0.0, help="standard deviation of the label noise"),
    "generations": Setting((10, 50, 100), low=0, help="generations after the fit to real data"),
    "chains": Setting((200, 1000, 2000), low=1, help="independent chains (the band)"),
    "regime": Setting(["replace", "accumulate", "accumulate-subsample", "keep-real"],
                      choices=REGIMES + CURATION_REGIMES, sweep=True, help="data regime"),
    "real_fraction": Setting(0.1, low=0.0, high=1.0, help="share of real pairs under keep-real"),
    "verify_tolerance": Setting(1.0, low=0.0,
                                help="verify: accept a pair when |y - x . w*| is at most this"),
    "verifier_error": Setting([0.1], low=0.0, high=0.5, sweep=True,
                              help="verify: probability that the verifier's decision is wrong"),
    "gamma": Setting([0.3], low=0.0, high=1.0, sweep=True,
                     help="self-correct: strength of the correction"),
}

MIX_SETTINGS = {
    "d": Setting(10, low=1, help="number of features"),
    "real_samples": Setting(20, low=2, help="real pairs of generation 0, the generator"),
    "samples": Setting(([100, 1000, 10000], [20, 50, 100, 200, 500, 1000, 2000, 5000],
                        [20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]), low=2, sweep=True,
                       help="pairs of each later generation, n (each must exceed d + 1)"),
    "synthetic_share": Setting(([0.0, 0.2], [0.0, 0.05, 0.2, 0.5], [0.0, 0.01, 0.05, 0.2, 0.5]),
                               low=0.0, high=1.0, sweep=True,
                               help="share p of pairs labelled by the previous generation"),
    "noise": Setting(1.0, low=0.0, help="standard deviation of the label noise"),
    "generations": Setting(1, low=0, help="1: the strong-collapse setting; more: the fresh-data loop"),
    "chains": Setting((100, 400, 1000), low=1, help="independent chains (the band)"),
}


def _check(settings: dict) -> None:
    d = settings["d"]
    sizes = settings["samples"] if isinstance(settings["samples"], list) else [settings["samples"]]
    for key, values in (("samples", sizes), ("real_samples", [settings.get("real_samples", d + 2)])):
        bad = [v for v in values if not v > d + 1]
        if bad:
            raise ValueError(f"{key} must exceed d + 1 = {d + 1} (least squares needs it); got {bad[0]}")


def _summary(err: np.ndarray) -> dict:
    """Mean, standard error and quantiles over chains of one generation's excess risks."""
    q = np.quantile(err, QUANTILES)
    se = err.std(ddof=1) / np.sqrt(err.size) if err.size > 1 else 0.0
    return {"test_error": float(err.mean()), "test_error_se": float(se),
            "test_error_q10": float(q[0]), "test_error_median": float(q[1]),
            "test_error_q90": float(q[2])}


def regime_theory(name: str, fits: int, settings: dict) -> float:
    """The expected excess risk after ``fits`` fits under regime ``name``, or NaN."""
    d, T, s = settings["d"], settings["samples"], settings["noise"]
    if name == "replace":
        return float(theory.replace_error(fits, d, T, s))
    if name == "accumulate":
        return float(theory.accumulate_error(fits, d, T, s))
    if name == "self-correct":
        return float(theory.self_correct_error(fits, settings["gamma"], d, T, s))
    return float("nan")


def run_linear_regression(settings, *, seed, run_dir, resume, progress, stop_after=None):
    """One run of ``linear-regression``: one regime, ``chains`` chains."""
    d, T, noise, name = settings["d"], settings["samples"], settings["noise"], settings["regime"]
    w_star = sim.true_weights(d, rng_for(seed, "real", 1))
    real = sim.real_pairs(w_star, settings["chains"], T, noise, rng_for(seed, "real"))
    regime = make_regime(name, real_fraction=settings["real_fraction"],
                         accept=sim.verifier(w_star, settings["verify_tolerance"],
                                             settings["verifier_error"]),
                         correct=sim.corrector(w_star), gamma=settings["gamma"])

    def measure(g):
        return {**_summary(sim.excess_risk(g.model, w_star)),
                "test_error_theory": regime_theory(name, g.index + 1, settings)}

    result = run_generations(lambda data, rng: sim.fit_ols(data),
                             lambda w, k, rng: sim.sample_pairs(w, k, noise, rng),
                             real, settings["generations"], regime=regime, seed=seed,
                             measure=measure, axis=1, run_dir=run_dir, resume=resume,
                             progress=progress, desc=f"linear regression, {name}",
                             stop_after=stop_after)
    facts = {"one_fit_error": theory.one_fit_error(d, T, noise),
             "accumulate_bound": theory.accumulate_bound(d, T, noise)}
    return RunOutput(result.generations, result.metrics, None, facts)


def run_mix(settings, *, seed, run_dir, resume, progress, stop_after=None):
    """One run of ``linear-regression-mix``: one sample size n and one synthetic share p."""
    d, n, p, noise = settings["d"], settings["samples"], settings["synthetic_share"], settings["noise"]
    w_star = sim.true_weights(d, rng_for(seed, "real", 1))
    real = sim.real_pairs(w_star, settings["chains"], settings["real_samples"], noise,
                          rng_for(seed, "real"))
    expected = {}   # the first-order theory, started from the measured error of generation 0

    def measure(g):
        err = sim.excess_risk(g.model, w_star)
        if g.index == 0:
            expected[0] = float(err.mean())
        else:
            expected[g.index] = float(theory.mixed_error(n, p, expected[g.index - 1], d, noise))
        return {**_summary(err), "test_error_theory": expected[g.index],
                "test_error_floor": float(theory.mixed_floor(p, expected[max(g.index - 1, 0)]))}

    result = run_generations(lambda data, rng: sim.fit_ols(data),
                             lambda w, k, rng: sim.sample_pairs(w, k, noise, rng),
                             real, settings["generations"], regime=sim.FreshReal(p, w_star, noise),
                             sizes=n, seed=seed, measure=measure, axis=1, run_dir=run_dir,
                             resume=resume, progress=progress,
                             desc=f"mix n={n} p={p:g}", stop_after=stop_after)
    facts = {"generator_error_theory": theory.one_fit_error(d, settings["real_samples"], noise)}
    return RunOutput(result.generations, result.metrics, None, facts)


register(Experiment(
    "linear-regression",
    "least squares refitted on its own labels: replace grows linearly, accumulate stays bounded",
    settings=SETTINGS, run=run_linear_regression, check=_check))

register(Experiment(
    "linear-regression-mix",
    "a constant share of synthetic labels: the test error stops improving as n grows",
    settings=MIX_SETTINGS, run=run_mix, check=_check))
