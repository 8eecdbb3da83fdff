"""Selection bias on the 1-D Gaussian: keep the most likely samples, and the exact recursion.

Qiao et al. ("When sample selection bias precipitates model collapse", OpenReview
FFXvnzM254) add a selector to the generational loop: of the samples a model draws, keep
only the "best" ones, and train on them alone (replace + select) or add them to everything
so far (accumulate + select).  Here the selector keeps, of M / keep draws from the current
model N(m, s^2), the M nearest its mean: the M most likely under the current model.  Their
public code ranks by the distance to a *fixed* biased point instead (the 10-D experiment of
:mod:`collapse_utils.gmm.selection` follows it); the model's own mean is the selector that a
model "confident in its best samples" has, and it has an exact recursion.

**The recursion.**  For many draws the kept samples are N(m, s^2) truncated to
|x - m| <= a s with P(|Z| <= a) = keep, a = Phi^-1((1 + keep) / 2), whose variance is
kappa s^2, kappa = 1 - 2 a phi(a) / (2 Phi(a) - 1) (:func:`selection_kappa`).  Each fit is the
maximum-likelihood (biased) variance, as in Qiao et al.'s code.  With S_g^2 the variance
fitted at generation g and N_g = M (g + 1) points in the pool of accumulate:

    replace + select:     E S_{g+1}^2 = kappa (M - 1) / M  E S_g^2
    accumulate + select:  E S_{g+1}^2 = E S_g^2 [N_g + kappa (M - 1) + kappa N_g / (N_g + M)] / (N_g + M)

(the pooled variance of the old pool and the new batch: the batch's own variance,
kappa (M - 1)/M S^2 in expectation, and the gap between its mean and the pool's, kappa S^2/M).
Both are linear in S_g^2, so they hold for the expectations; kappa = 1 (keep = 1) gives the
plain ``replace`` (((M - 1)/M)^n) and ``accumulate``, whose product converges to a positive
constant.  Under accumulate + select the factor is 1 - (1 - kappa)/(g + 2) + O(1/M), so
E S_g^2 falls like g^-(1 - kappa): accumulating turns the exponential collapse of
replace + select into a power law, but does not stop it.  The top-M rule keeps the M nearest
of a finite M/keep draws, whose cut-off fluctuates around a s; the recursion is the limit of
many draws, and the tests hold it to a stated Monte Carlo tolerance.
"""
from __future__ import annotations

import math

import numpy as np

from ..experiments import Experiment, RunOutput, register
from ..loop import rng_for, run_generations
from ..regimes import REGIMES, SELECTION_REGIMES, make_regime
from ..settings import Setting
from .curation import ModelTap
from .simulate import fit_normal_1d, sample_normal_1d

#: the regimes of ``gaussian-selection``: the two plain ones and their selected versions
SELECTION_CHOICES = ("replace", "accumulate", *SELECTION_REGIMES)


def selection_cutoff(keep: float) -> float:
    """a with P(|Z| <= a) = ``keep``: the kept window, in model standard deviations."""
    from scipy.stats import norm

    keep = float(keep)
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must lie in (0, 1]; got {keep!r}")
    return math.inf if keep == 1.0 else float(norm.ppf((1 + keep) / 2))


def selection_kappa(keep: float) -> float:
    """kappa: the variance of N(0, 1) truncated to its central share ``keep``."""
    from .theory import truncated_variance

    return truncated_variance(selection_cutoff(keep))


def selection_theory(generations: int, M: int, keep: float, regime: str, sigma: float = 1.0) -> np.ndarray:
    """E S_g^2 / sigma^2 for g = 0..``generations`` (see the module docstring): the
    dispersion ratio Disp(P_g) / Disp(P_0) of the selected loop, maximum-likelihood fits."""
    if regime not in SELECTION_CHOICES:
        raise ValueError(f"regime must be one of {', '.join(SELECTION_CHOICES)}; got {regime!r}")
    if int(M) != M or M < 2:
        raise ValueError(f"M must be an integer >= 2; got {M!r}")
    k = 1.0 if regime in ("replace", "accumulate") else selection_kappa(keep)
    out = np.empty(int(generations) + 1)
    out[0] = (M - 1) / M                      # generation 0: the MLE fit to M real points
    for g in range(int(generations)):
        if regime in ("replace", "select"):
            factor = k * (M - 1) / M
        else:
            N = M * (g + 1)
            factor = (N + k * (M - 1) + k * N / (N + M)) / (N + M)
        out[g + 1] = out[g] * factor
    return out * sigma**2


def power_law_exponent(keep: float) -> float:
    """1 - kappa: accumulate + select's variance falls like g^-(1 - kappa) for large g."""
    return 1.0 - selection_kappa(keep)


def nearest_mean_score(tap: ModelTap):
    """The selector's ``score(samples, rng)``: minus the distance to the mean of the model that
    drew the batch (higher is nearer: the most likely under that model)."""
    def score(samples, rng):
        mean = np.asarray(tap.model[0], dtype=float)
        return -np.abs(samples - mean[..., None])
    return score


def selection_report(*records) -> dict:
    """The numbers the curation chapter quotes from ``gaussian-selection`` records (the first
    holds the four regimes): per regime (``replace``, ``accumulate``, ``select``,
    ``accumulate_select``) at the first record's ``keep``, the mean dispersion ratio at the last
    generation (``end_*``), its standard error (``se_*``) and the recursion's value
    (``theory_*``); for every ``keep`` of every record, kappa, the power-law exponent and
    accumulate + select's end, standard error and recursion (``kappa_<tag>``,
    ``exponent_<tag>``, ``end_acc_select_<tag>``, ...; tag = the share without its dot)."""
    first = records[0]
    S = first.settings
    M, G, keep = S["M"], int(first.generations[-1]), first.values("keep")[0]
    out = {"M": M, "G": G, "chains": S["chains"], "keep": keep}
    for r in first.values("regime"):
        key = r.replace("-", "_")
        sel = dict(regime=r, keep=keep)
        out[f"end_{key}"] = float(first.metric("dispersion_ratio_mean", **sel)[0, -1])
        out[f"se_{key}"] = float(first.metric("dispersion_ratio_sd", **sel)[0, -1]) / math.sqrt(S["chains"])
        out[f"theory_{key}"] = float(selection_theory(G, M, keep, r)[-1])
    for rec in records:
        for k in rec.values("keep"):
            tag = f"{k:g}".replace(".", "")
            out[f"kappa_{tag}"] = selection_kappa(k)
            out[f"exponent_{tag}"] = power_law_exponent(k)
            if "accumulate-select" in rec.values("regime"):
                sel = dict(regime="accumulate-select", keep=k)
                n = rec.settings["chains"]
                out[f"end_acc_select_{tag}"] = float(rec.metric("dispersion_ratio_mean", **sel)[0, -1])
                out[f"se_acc_select_{tag}"] = float(rec.metric("dispersion_ratio_sd", **sel)[0, -1]) / math.sqrt(n)
                out[f"theory_acc_select_{tag}"] = float(selection_theory(
                    int(rec.generations[-1]), rec.settings["M"], k, "accumulate-select")[-1])
    return out


SELECTION_SETTINGS = {
    "M": Setting(300, low=2, help="samples kept per generation (Qiao et al.'s n = 300)"),
    "generations": Setting((30, 200, 200), low=0, help="generations after generation 0 (theirs: t = 200)"),
    "chains": Setting((100, 100, 1000), low=1, help="independent chains in one run (the band)"),
    "keep": Setting([0.05], low=1e-4, high=1.0, sweep=True,
                    help="share of the draws the selector keeps (Qiao et al.'s selection ratio 0.05)"),
    "regime": Setting(list(SELECTION_CHOICES), choices=SELECTION_CHOICES, sweep=True,
                      help="replace or accumulate, with or without selection"),
}


def check_selection(s: dict) -> None:
    """Relations between the settings of ``gaussian-selection``."""
    big = max(s["M"] * s["chains"] / k for k in s["keep"])
    if big > 5e7:
        raise ValueError(f"M * chains / keep must stay below 5e7 draws per generation (memory); "
                         f"got {big:.3g}")


def run_selection(settings: dict, *, seed: int = 0, run_dir=None, resume: bool = False,
                  progress: bool = True, stop_after: int | None = None) -> RunOutput:
    """One run of ``gaussian-selection``: ``chains`` chains of N(0, 1) refitted by maximum
    likelihood, each generation trained under ``regime`` with the nearest-the-mean selector.

    Metrics per generation: the dispersion ratio S_g^2 (the true sigma is 1) as mean, sd,
    median and 10%/90% quantiles over chains, the mean of W_2^2 to N(0, 1)
    (``w2_squared_mean``, the across-families table's distance) and of the squared mean error.
    """
    M, chains, regime_name = settings["M"], settings["chains"], settings["regime"]
    real = rng_for(seed, "real").standard_normal((chains, M))
    tap = ModelTap(sample_normal_1d)
    regime = make_regime(regime_name, score=nearest_mean_score(tap), keep=settings["keep"])

    def measure(g):
        mean, std = g.model
        s2 = std**2
        q10, med, q90 = np.quantile(s2, [0.1, 0.5, 0.9])
        w2 = mean**2 + (std - 1.0) ** 2
        return {"dispersion_ratio_mean": float(s2.mean()),
                "dispersion_ratio_sd": float(s2.std(ddof=1)) if chains > 1 else 0.0,
                "dispersion_ratio_median": float(med), "dispersion_ratio_q10": float(q10),
                "dispersion_ratio_q90": float(q90), "w2_squared_mean": float(w2.mean()),
                "mean_error_squared_mean": float((mean**2).mean())}

    result = run_generations(
        lambda data, rng: fit_normal_1d(data, rng, ddof=0), tap, real, settings["generations"],
        regime=regime, sizes=M, seed=seed, measure=measure, axis=1, progress=progress,
        desc=regime.describe(), run_dir=run_dir, resume=resume, stop_after=stop_after)
    return RunOutput(result.generations, result.metrics, None,
                     {"kappa": selection_kappa(settings["keep"])})


register(Experiment(
    name="gaussian-selection",
    summary="1-D Gaussian refitted each generation on the samples nearest its mean (selection bias)",
    settings=SELECTION_SETTINGS,
    run=run_selection,
    check=check_selection,
))
