"""The numbers the Gaussian chapter quotes, one function per section, computed from its records.

Each function takes the record(s) of the section's ``run("gaussian", ...)`` call and returns a
flat dict: the numbers the prose quotes (glued under the names the prose uses) and the numbers
its hidden cells check.  The docstring documents every key, one line each.  A ``*_z`` key is
the largest distance, in standard errors of the chain average, between a simulated average
and its exact expectation over the generations the section checks (the chapter asserts
``<= 5``).  Pure computations on records: no plotting, no glue.

Generations are the loop's: generation g holds the model after n = g + 1 fits.
"""
from __future__ import annotations

import math

import numpy as np

from ..regimes import Schedule
from .experiment import chain_mean, example_covariance
from .theory import (accumulate_mean_bound, c_m, expected_log_det, expected_w2_squared,
                     log_det_drift, source_lower_bound, theory_1d)

#: the unbiased run of the chapter's estimator sweep
UNBIASED = {"estimator": "unbiased"}


def _size(rec) -> tuple[int, int, int]:
    """(last generation G, samples per generation M, chains) of a record of ``gaussian``."""
    return int(rec.generations[-1]), rec.settings["M"][0], rec.settings["chains"]


def _z(value, expected, se) -> float:
    """The largest |value - expected| / se over the checked generations (an exact match
    counts as 0, also where se is 0; NaN stays NaN, so a check on it fails)."""
    gap = np.abs(np.asarray(value, dtype=float) - np.asarray(expected, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(gap == 0, 0.0, gap / np.asarray(se, dtype=float))
    return float(np.max(z))


def variance(rec) -> dict:
    """Mean and median, both true at once: the unbiased run of ``estimator=["unbiased", "mle"]``.

    G: the last generation
    G_fits: the fits behind generation G, G + 1
    chains: the independent chains of the run
    mean_sigma2_100: the mean of sigma_n^2 over chains at generation 99 (n = 100 fits)
    mean_sigma2_100_se: its standard error from the exact Var sigma_n^2, sqrt(Var / chains)
    median_sigma_G: the median of sigma_n over chains at generation G
    typical_sigma_G: Step 3's typical sigma_n at generation G, exp(E log sigma_n^2 / 2)
    frac_below_G: the percentage of chains with sigma_n below sigma at generation G
    var_sigma2_G: the exact Var sigma_n^2 at generation G
    median_sigma2_100: the median of sigma_n^2 over chains at generation 99
    log_median_G: the median of log sigma_n^2 over chains at generation G
    log_theory_G: the exact E log sigma_n^2 at generation G
    log_median_se: a median's standard error there, 1.25 sd(log sigma_n^2) / sqrt(chains)
    sigma2_z: mean sigma_n^2 against sigma^2 = 1 at generations 0, 9, 49, 99
    sigma_z: mean sigma_n against c_M^n at generations 0, 9, 99, G // 2, G
    log_sigma2_z: mean log sigma_n^2 against its exact mean at generations 0, 9, 99, G // 2, G
    """
    G, M, chains = _size(rec)
    TH = theory_1d(rec.generations + 1, M)
    s2 = chain_mean(rec, "sigma_squared", **UNBIASED)[0]
    sig = chain_mean(rec, "sigma", **UNBIASED)[0]
    lsig = chain_mean(rec, "log_sigma_squared", **UNBIASED)[0]
    early, late = [0, 9, 49, 99], [0, 9, 99, G // 2, G]
    return {
        "G": G,
        "G_fits": G + 1,
        "chains": chains,
        "mean_sigma2_100": float(s2[99]),
        "mean_sigma2_100_se": math.sqrt(TH["sigma_squared_var"][99] / chains),
        "median_sigma_G": float(rec.metric("sigma_median", **UNBIASED)[0, G]),
        "typical_sigma_G": math.exp(TH["log_sigma_squared"][G] / 2),
        "frac_below_G": float(100 * rec.metric("frac_sigma_below_original", **UNBIASED)[0, G]),
        "var_sigma2_G": float(TH["sigma_squared_var"][G]),
        "median_sigma2_100": float(rec.metric("sigma_squared_median", **UNBIASED)[0, 99]),
        "log_median_G": float(rec.metric("log_sigma_squared_median", **UNBIASED)[0, G]),
        "log_theory_G": float(TH["log_sigma_squared"][G]),
        "log_median_se": 1.25 * math.sqrt(TH["log_sigma_squared_var"][G] / chains),
        "sigma2_z": _z(s2[early], 1.0, np.sqrt(TH["sigma_squared_var"][early] / chains)),
        "sigma_z": _z(sig[late], TH["sigma"][late],
                      np.sqrt((1 - TH["sigma"][late] ** 2) / chains)),
        "log_sigma2_z": _z(lsig[late], TH["log_sigma_squared"][late],
                           np.sqrt(TH["log_sigma_squared_var"][late] / chains)),
    }


def distance(rec) -> dict:
    """The distance grows: mean W_2^2 of the unbiased run against Step 6's exact E W_2^2.

    1_sim: the mean W_2^2 over chains at generation 0 (n = 1 fit)
    10_sim: the mean W_2^2 over chains at generation 9 (n = 10 fits)
    10_se: its standard error
    10_theory: the exact E W_2^2 after 10 fits
    100_sim: the mean W_2^2 over chains at generation 99 (n = 100 fits)
    100_se: its standard error
    100_theory: the exact E W_2^2 after 100 fits
    G_theory: the exact E W_2^2 at the last generation G
    G_sim: the mean W_2^2 over chains at generation G
    G_gap: how far G_sim is from G_theory, in percent of G_theory
    G_side: "below" or "above": where G_sim lies from G_theory
    G_z: that distance in standard errors of the chain average
    G_walk: the mean's random walk alone at generation G, n / M
    z: mean W_2^2 against the exact E W_2^2 at generations 0, 9, 49, 99, 199
    mean_error_z: mean (mu_n - mu)^2 against n / M at generations 0, 9, 49, 99, 199
    late_ratio_min: the smallest ratio simulated / exact of W_2^2 and (mu_n - mu)^2 at G // 2, G
    late_ratio_max: the largest such ratio
    """
    G, M, _ = _size(rec)
    w2, w2_se = chain_mean(rec, "w2_squared", **UNBIASED)
    me, me_se = chain_mean(rec, "mean_error_squared", **UNBIASED)
    theory = expected_w2_squared(G + 1, M)
    early, late = [0, 9, 49, 99, 199], [G // 2, G]
    fits_early, fits_late = np.array(early) + 1, np.array(late) + 1
    ratios = np.concatenate([w2[late] / expected_w2_squared(fits_late, M),
                             me[late] / (fits_late / M)])
    return {
        "1_sim": float(w2[0]),
        "10_sim": float(w2[9]),
        "10_se": float(w2_se[9]),
        "10_theory": float(expected_w2_squared(10, M)),
        "100_sim": float(w2[99]),
        "100_se": float(w2_se[99]),
        "100_theory": float(expected_w2_squared(100, M)),
        "G_theory": float(theory),
        "G_sim": float(w2[G]),
        "G_gap": float(100 * abs(w2[G] / theory - 1)),
        "G_side": "below" if w2[G] < theory else "above",
        "G_z": float(abs(w2[G] - theory) / w2_se[G]),
        "G_walk": (G + 1) / M,
        "z": _z(w2[early], expected_w2_squared(fits_early, M), w2_se[early]),
        "mean_error_z": _z(me[early], fits_early / M, me_se[early]),
        "late_ratio_min": float(ratios.min()),
        "late_ratio_max": float(ratios.max()),
    }


def public(pub) -> dict:
    """The public notebook's figure: ``M=[100, 500, 1000, 10000], estimator="mle"``.

    last: the last generation
    last_fits: the fits behind it, last + 1
    s2_10000: the exact E sigma_n^2 of the MLE chain at M = 10000, generation last
    s2_100: the exact E sigma_n^2 of the MLE chain at M = 100, generation last
    med_sigma_100: the median of sigma_n over chains at M = 100, generation last
    mean_error_z: mean (mu_n - mu)^2 against Step 7 at generations 0, 9, 99, last, every M
    sigma_error_z: mean (sigma_n - sigma)^2 against its exact mean at the same generations
    sigma2_z: mean sigma_n^2 against Step 7 (standard error from the exact variance), the same
    """
    last, chains = int(pub.generations[-1]), pub.settings["chains"]
    ks = [0, 9, 99, last]
    z = {"mean_error_z": 0.0, "sigma_error_z": 0.0, "sigma2_z": 0.0}
    for M in pub.values("M"):
        TP = theory_1d(pub.generations + 1, M, estimator="mle")
        me, me_se = chain_mean(pub, "mean_error_squared", M=M)
        se2, se2_se = chain_mean(pub, "sigma_error_squared", M=M)
        s2 = chain_mean(pub, "sigma_squared", M=M)[0]
        sigma_error = TP["sigma_squared"] - 2 * TP["sigma"] + 1
        z["mean_error_z"] = max(z["mean_error_z"],
                                _z(me[ks], TP["mean_error_squared"][ks], me_se[ks]))
        z["sigma_error_z"] = max(z["sigma_error_z"], _z(se2[ks], sigma_error[ks], se2_se[ks]))
        z["sigma2_z"] = max(z["sigma2_z"], _z(s2[ks], TP["sigma_squared"][ks],
                                              np.sqrt(TP["sigma_squared_var"][ks] / chains)))
    return {
        "last": last,
        "last_fits": last + 1,
        "s2_10000": float(theory_1d([last + 1], 10000, estimator="mle")["sigma_squared"][0]),
        "s2_100": float(theory_1d([last + 1], 100, estimator="mle")["sigma_squared"][0]),
        "med_sigma_100": float(pub.metric("sigma_median", M=100)[0, last]),
        **z,
    }


def estimators(rec) -> dict:
    """Unbiased against maximum-likelihood variance: the MLE run of ``estimator=[...]``.

    halflife: the generations in which the MLE's E sigma_n^2 halves, ceil(log 2 / -log((M-1)/M))
    w2_G: the exact E W_2^2 of the MLE chain at the last generation G
    w2_G_sim: the mean W_2^2 over the MLE chains at generation G
    unbiased_w2_G: the exact E W_2^2 of the unbiased chain at generation G
    sigma2_z: mean sigma_n^2 against ((M-1)/M)^n at generations 9, 49, 99, G
    w2_z: mean W_2^2 against its exact mean at the same generations
    """
    G, M, chains = _size(rec)
    TH = theory_1d(rec.generations + 1, M)
    TH_mle = theory_1d(rec.generations + 1, M, estimator="mle")
    s2 = chain_mean(rec, "sigma_squared", estimator="mle")[0]
    w2, w2_se = chain_mean(rec, "w2_squared", estimator="mle")
    ks = [9, 49, 99, G]
    return {
        "halflife": math.ceil(math.log(0.5) / math.log((M - 1) / M)),
        "w2_G": float(TH_mle["w2_squared"][G]),
        "w2_G_sim": float(w2[G]),
        "unbiased_w2_G": float(TH["w2_squared"][G]),
        "sigma2_z": _z(s2[ks], TH_mle["sigma_squared"][ks],
                       np.sqrt(TH_mle["sigma_squared_var"][ks] / chains)),
        "w2_z": _z(w2[ks], TH_mle["w2_squared"][ks], w2_se[ks]),
    }


def regimes(reg) -> dict:
    """Replace, accumulate, keep real data: ``regime=["replace", "accumulate", "keep-real"]``.

    rep_w2: the mean W_2^2 over the replace chains at the last generation G
    rep_w2_theory: the exact E W_2^2 of replace at generation G
    rep_w2_side: "below" or "above": where rep_w2 lies from rep_w2_theory
    acc_w2: the mean W_2^2 over the accumulate chains at generation G
    keep_w2: the mean W_2^2 over the keep-real chains at generation G
    acc_bound: the bound pi^2/6 sigma^2/M on accumulate's E (mu_n - mu)^2
    acc_mean: the mean (mu_n - mu)^2 over the accumulate chains at generation G
    acc_mean_se: its standard error
    acc_late_max: the largest mean W_2^2 of accumulate over generations G // 2 .. G
    acc_early_max: the largest mean W_2^2 of accumulate over generations G // 4 .. G // 2 - 1
    keep_late_max: the same as acc_late_max, for keep-real
    keep_early_max: the same as acc_early_max, for keep-real
    """
    G, M, _ = _size(reg)
    rep_w2 = float(chain_mean(reg, "w2_squared", regime="replace")[0][G])
    theory = expected_w2_squared(G + 1, M)
    acc_me, acc_me_se = chain_mean(reg, "mean_error_squared", regime="accumulate")
    w2 = {r: reg.metric("w2_squared_mean", regime=r)[0] for r in ("accumulate", "keep-real")}
    return {
        "rep_w2": rep_w2,
        "rep_w2_theory": float(theory),
        "rep_w2_side": "below" if rep_w2 < theory else "above",
        "acc_w2": float(w2["accumulate"][G]),
        "keep_w2": float(w2["keep-real"][G]),
        "acc_bound": accumulate_mean_bound(M),
        "acc_mean": float(acc_me[G]),
        "acc_mean_se": float(acc_me_se[G]),
        "acc_late_max": float(w2["accumulate"][G // 2:].max()),
        "acc_early_max": float(w2["accumulate"][G // 4: G // 2].max()),
        "keep_late_max": float(w2["keep-real"][G // 2:].max()),
        "keep_early_max": float(w2["keep-real"][G // 4: G // 2].max()),
    }


def schedules(sch) -> dict:
    """Growing the sample size: ``schedule=["constant", "linear", "superlinear"]``.

    super_limit: the exact E W_2^2 of the superlinear schedule after 10^5 fits
    super_G: the same at the last generation G
    super_M1: the superlinear schedule's sample size at fit 1 (M 2^power)
    linear_far: the exact E W_2^2 of the linear schedule after 10^5 fits
    linear_G: the same at the last generation G
    slow_1e3: E (mu_n - mu)^2 of the borderline schedule M (k+1) log(k+2) after 10^3 fits
    slow_1e5: the same after 10^5 fits
    w2_z: mean W_2^2 against its exact mean at generations 0, 9, 99, and G for the growing ones
    """
    G, M, _ = _size(sch)
    plans = {k: Schedule(k, M, sch.settings["power"]) for k in sch.values("schedule")}
    far = {k: theory_1d([10**5], M, schedule=s)["w2_squared"][0] for k, s in plans.items()}
    at_G = {k: theory_1d([G + 1], M, schedule=s)["w2_squared"][0] for k, s in plans.items()}

    def borderline(k):      # M_k = M (k+1) log(k+2): superlinear, yet sum 1/M_k diverges
        return math.ceil(M * (k + 1) * math.log(k + 2))

    slow = theory_1d([10**3, 10**5], M, schedule=borderline)["mean_error_squared"]
    w2_z = 0.0
    for k, s in plans.items():
        ks = [0, 9, 99] + ([G] if k in ("linear", "superlinear") else [])
        theory = theory_1d(sch.generations + 1, M, schedule=s)["w2_squared"]
        w2, w2_se = chain_mean(sch, "w2_squared", schedule=k)
        w2_z = max(w2_z, _z(w2[ks], theory[ks], w2_se[ks]))
    return {
        "super_limit": float(far["superlinear"]),
        "super_G": float(at_G["superlinear"]),
        "super_M1": plans["superlinear"](1),
        "linear_far": float(far["linear"]),
        "linear_G": float(at_G["linear"]),
        "slow_1e3": float(slow[0]),
        "slow_1e5": float(slow[1]),
        "w2_z": w2_z,
    }


def dimensions(dd) -> dict:
    """In d dimensions, with a full covariance: ``dim=3, M=20, generations=100``.

    DG: the last generation
    M: the samples per generation
    dd_top_median: the median over chains of the largest eigenvalue of Sigma_n at generation DG
    dd_logdet_step: the exact drift of log det Sigma_n per generation
    log10_condition_max: the largest log10 condition number of any chain at any generation
    log_det_z: mean log det Sigma_n against its exact mean at generations 0, 9, DG // 2, DG
    direction_sigma_z: the mean spread along a fixed direction against c_M^n, the same
    mean_error_z: mean |mu_n - mu|^2 against n tr(Sigma) / M, the same
    w2_below_z: how far mean W_2^2 lies below n tr(Sigma) / M (its lower bound), the same
    w2_above_z: how far mean W_2^2 lies above n tr(Sigma) / M + 2 tr(Sigma) (its upper bound)
    trace_z: the mean of tr(Sigma_n) / d against tr(Sigma) / d at generations 0, 4, 9
    """
    DG, M, chains = _size(dd)
    d = dd.settings["dim"]
    cov0 = example_covariance(d)
    ld, ld_se = chain_mean(dd, "log_det")
    ds = chain_mean(dd, "direction_sigma")[0]
    me, me_se = chain_mean(dd, "mean_error_squared")
    w2, w2_se = chain_mean(dd, "w2_squared")
    tr, tr_se = chain_mean(dd, "sigma_squared")
    ks, first = [0, 9, DG // 2, DG], [0, 4, 9]
    fits = np.array(ks) + 1
    walk = fits * np.trace(cov0) / M
    direction = c_m(M) ** fits
    return {
        "DG": DG,
        "M": M,
        "dd_top_median": float(dd.metric("top_eigenvalue_median")[0, DG]),
        "dd_logdet_step": float(log_det_drift(M, d)),
        "log10_condition_max": float(dd.metric("log10_condition_max")[0].max()),
        "log_det_z": _z(ld[ks], [expected_log_det(n, M, cov0) for n in fits], ld_se[ks]),
        "direction_sigma_z": _z(ds[ks], direction,
                                np.sqrt((1 - c_m(M) ** (2 * fits)) / chains)),
        "mean_error_z": _z(me[ks], walk, me_se[ks]),
        "w2_below_z": float(np.max((walk - w2[ks]) / w2_se[ks])),
        "w2_above_z": float(np.max((w2[ks] - walk - 2 * np.trace(cov0)) / w2_se[ks])),
        "trace_z": _z(tr[first], np.trace(cov0) / d, tr_se[first]),
    }


def sources(src) -> dict:
    """The theorem does not need Gaussian data: ``source=["laplace", "two-modes"]``.

    expr_two: the expressivity error W_2^2(N(0, 1), D_0) of the two modes
    expr_lap: the same for the Laplace
    src_w2_two: the mean W_2^2 over the two-mode chains at the last generation G
    src_bound_two: the lower bound on its expectation at generation G
    src_side: "below" or "above": where src_w2_two lies from src_bound_two
    sigma2_z: mean sigma_n^2 against sigma^2 = 1 at generations 0, 9, 49, every source
    mean_error_z: mean (mu_n - mu)^2 against n / M at the same generations
    bound_z: how far mean W_2^2 lies below its lower bound at generations 0, 9, 99, 199
    late_over_bound: the smallest ratio mean W_2^2 / lower bound at generation G
    growth: the smallest ratio of mean W_2^2 at generation G to that at generation 0
    """
    G, M, _ = _size(src)
    w2_two = float(src.metric("w2_squared_mean", source="two-modes")[0, G])
    moments_two = src.fact("reference_moments", source="two-modes")
    bound_two = float(source_lower_bound(G + 1, M, moments_two))
    early, checked = [0, 9, 49], [0, 9, 99, 199]
    out = {
        "expr_two": src.fact("expressivity_w2_squared", source="two-modes"),
        "expr_lap": src.fact("expressivity_w2_squared", source="laplace"),
        "src_w2_two": w2_two,
        "src_bound_two": bound_two,
        "src_side": "below" if w2_two < bound_two else "above",
        "sigma2_z": 0.0, "mean_error_z": 0.0, "bound_z": -math.inf,
        "late_over_bound": math.inf, "growth": math.inf,
    }
    for s in src.values("source"):
        s2, s2_se = chain_mean(src, "sigma_squared", source=s)
        me, me_se = chain_mean(src, "mean_error_squared", source=s)
        w2, w2_se = chain_mean(src, "w2_squared", source=s)
        low = source_lower_bound(src.generations + 1, M, src.fact("reference_moments", source=s))
        out["sigma2_z"] = max(out["sigma2_z"], _z(s2[early], 1.0, s2_se[early]))
        out["mean_error_z"] = max(out["mean_error_z"],
                                  _z(me[early], (np.array(early) + 1) / M, me_se[early]))
        out["bound_z"] = max(out["bound_z"],
                             float(np.max((low[checked] - w2[checked]) / w2_se[checked])))
        out["late_over_bound"] = min(out["late_over_bound"], float(w2[G] / low[G]))
        out["growth"] = min(out["growth"], float(w2[G] / w2[0]))
    return out


def exercises(ex) -> dict:
    """Exercise 1, predict then simulate: ``M=20, generations=59, chains=10_000``.

    median_sigma: the median of sigma_n over chains at the last generation
    mean_sigma2: the mean of sigma_n^2 over chains there
    mean_sigma2_se: its standard error from the exact Var sigma_n^2, sqrt(Var / chains)
    frac_above_1: the share of chains with sigma_n^2 > 1
    frac_above_10: the share of chains with sigma_n^2 > 10
    share_above_10: their share of the sum of sigma_n^2 over chains
    """
    G, M, chains = _size(ex)
    var = np.array(ex.fact("last_sigma_squared"))
    big = var > 10
    return {
        "median_sigma": float(np.sqrt(np.median(var))),
        "mean_sigma2": float(var.mean()),
        "mean_sigma2_se": math.sqrt(((1 + 2 / (M - 1)) ** (G + 1) - 1) / chains),
        "frac_above_1": float(np.mean(var > 1)),
        "frac_above_10": float(big.mean()),
        "share_above_10": float(var[big].sum() / var.sum()),
    }


# --- book/curation: the Gaussian sections (glued there as ``cur_<key>`` and ``sel_<key>``) ---


def _item(value):
    """A NumPy scalar as the Python number glue makes of it; anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def _end(rec, name: str, **sel) -> float:
    """A ``gaussian-curation`` metric at the last generation."""
    return float(rec.metric(name, **sel)[0, -1])


def _end_se(rec, name: str, **sel) -> float:
    """The standard error over chains of ``name`` (a ``*_mean`` metric) at the last generation."""
    return _end(rec, name.replace("_mean", "_sd"), **sel) / np.sqrt(rec.settings["chains"])


def curation_verify(verify, baselines, unlimited) -> dict:
    """Curation, a verifier that knows the real distribution: ``gaussian-curation``'s sweep.

    ``verify`` is the verify sweep over q, ``baselines`` the same chains under replace and
    keep-real, ``unlimited`` :func:`..curation.verify_unlimited`'s loop for the sweep's q.
    M: samples per generation
    G: the last generation
    L: the verifier's window, in sigma
    chains: the independent chains of the run
    rounds: the batches a generation may draw at most
    vL: the variance v_L of the real law restricted to the window
    W1: one fit's error on real data, E W_2^2 after one fit of M points
    q0: the mean W_2^2 at the last generation under a perfect verifier (q = 0)
    q0_th: its linear-noise value
    qmax: the sweep's largest verifier error
    w2max: the mean W_2^2 at the last generation at q = qmax
    w2max_th: its linear-noise value
    keep: the mean W_2^2 at the last generation under keep-real
    rep: the mean W_2^2 at the last generation under replace
    rep_se: its standard error over chains
    rep_th: replace's exact E W_2^2 there
    qkeep: the q where the linear-noise curve crosses keep-real's level
    qc: the critical error q_c above which the second moments have no fixed point
    sig0: the mean fitted sigma at the last generation at q = 0
    sigmax: the same at q = qmax
    short_max: the percentage of chains per generation that run out of draws at q = qmax
    one_in: 1 / (1 - q_c)
    short0: the same percentage at q = 0
    qmid: the sweep's middle verifier error
    w2mid: the mean W_2^2 at the last generation there
    moments_z: the largest distance (standard errors) of mean e^2, sigma^2 from exact, q <= 0.5
    qtop: the sweep's top q (verify_budget_report's keys follow)
    w2top: the mean W_2^2 at the last generation at q = qtop
    w2top_se: its standard error over chains
    w2top_unlimited: the same loop's with an unlimited draw budget
    w2top_unlimited_se: its standard error
    w2top_lin: the linear-noise approximation there
    w2top_bound: the exact-moment lower bound there
    lin_low_pct: how far the linear-noise value lies below the unlimited loop's, in percent
    budget_share_pct: the finite budget's share of the run's excess over linear noise, percent
    sigma_top: the mean fitted sigma at the last generation at q = qtop
    sigma_top_unlimited: the same with an unlimited budget
    """
    from scipy.optimize import brentq

    from .curation import verify_budget_report
    from .theory import critical_error, truncated_variance, verify_theory

    S = verify.settings
    M, G, L = S["M"][0], int(verify.generations[-1]), S["verify_window"]
    qs = verify.values("verifier_error")
    w2 = np.array([_end(verify, "w2_squared_mean", verifier_error=q) for q in qs])
    keep = _end(baselines, "w2_squared_mean", regime="keep-real")
    rep = _end(baselines, "w2_squared_mean", regime="replace")
    W1 = expected_w2_squared(1, M)

    def w2_th(q):
        return verify_theory(G, M, q, L)["w2_squared"][-1]

    q_keep = brentq(lambda q: w2_th(q) - keep, 0.0, 0.999)
    short = np.array(
        [np.mean(verify.metric("verify_short_fraction", verifier_error=q)[0, 1:]) for q in qs]
    )
    sig_mean = [_end(verify, "sigma_mean", verifier_error=q) for q in qs]
    moments_z = 0.0
    for q in (q for q in qs if q <= 0.5):  # the exact second moments, while the budget suffices
        for name in ("mean_error_squared", "sigma_squared"):
            moments_z = max(moments_z, _z(_end(verify, f"{name}_mean", verifier_error=q),
                                          verify_theory(G, M, q, L)[name][-1],
                                          _end_se(verify, f"{name}_mean", verifier_error=q)))
    numbers = {
        "M": M,
        "G": G,
        "L": L,
        "chains": S["chains"],
        "rounds": S["max_rounds"],
        "vL": truncated_variance(L),
        "W1": W1,
        "q0": w2[0],
        "q0_th": w2_th(0.0),
        "qmax": qs[-1],
        "w2max": w2[-1],
        "w2max_th": w2_th(qs[-1]),
        "keep": keep,
        "rep": rep,
        "rep_se": _end_se(baselines, "w2_squared_mean", regime="replace"),
        "rep_th": theory_1d(G + 1, M)["w2_squared"],
        "qkeep": q_keep,
        "qc": critical_error(M),
        "sig0": sig_mean[0],
        "sigmax": sig_mean[-1],
        "short_max": 100 * short[-1],
        "one_in": 1 / (1 - critical_error(M)),
        "short0": 100 * short[0],
        "qmid": qs[len(qs) // 2],
        "w2mid": w2[len(qs) // 2],
        "moments_z": moments_z,
    }
    return {k: _item(v) for k, v in {**numbers, **verify_budget_report(verify, unlimited)}.items()}


def curation_fixed_point(M: int, L: float, qmax: float) -> dict:
    """Curation, the verified loop's fixed point near and above q_c (exact second moments).

    fp90: the fixed point of E sigma^2 at q = 0.9
    fp99: the same at q = 0.99
    fpmax: the same at q = qmax, the sweep's largest error
    up1000: the exact E sigma_g^2 at q = 0.999 after 1,000 generations
    up2000: the same after 2,000 generations
    up_rise: its rise over the last generation of the 2,000
    """
    from .theory import verify_limit, verify_theory

    fp = {q: verify_limit(M, q, L)["sigma_squared"] for q in (0.9, 0.99, qmax)}
    up = verify_theory(2000, M, 0.999, L)["sigma_squared"]
    return {k: _item(v) for k, v in {
        "fp90": fp[0.9],
        "fp99": fp[0.99],
        "fpmax": fp[qmax],
        "up1000": up[1000],
        "up2000": up[2000],
        "up_rise": up[-1] - up[-2],
    }.items()}


def curation_correct(correct, baselines) -> dict:
    """Curation, self-correction of strength gamma: ``gaussian-curation``'s self-correct runs.

    g<i>: the i-th gamma of the record (i = 0, 1, ...)
    sc<i>: the mean W_2^2 at the last generation under it
    sc<i>_lim: its exact limit over infinitely many generations
    gamma_eq: the gamma whose limit equals one fit on real data, W1
    sc_z: the largest distance (standard errors) of mean W_2^2, sigma, e^2 from exact, all gammas
    sc0_long: the exact E W_2^2 after 4,000 generations at the first gamma
    one_fit: one fit's error on real data, W1 (for the checks)
    rep_end: the mean W_2^2 at the last generation under replace (for the checks)
    """
    from scipy.optimize import brentq

    from .theory import self_correct_limit, self_correct_theory

    M, G = correct.settings["M"][0], int(correct.generations[-1])
    gammas = correct.values("gamma")
    W1 = expected_w2_squared(1, M)
    numbers = {}
    sc_z = 0.0
    for i, g in enumerate(gammas):
        sel = {"regime": "self-correct", "gamma": g}
        exact = self_correct_theory(G, M, g)
        for name in ("w2_squared", "sigma", "mean_error_squared"):
            sc_z = max(sc_z, _z(_end(correct, f"{name}_mean", **sel), exact[name][-1],
                                _end_se(correct, f"{name}_mean", **sel)))
        numbers[f"sc{i}"] = _end(correct, "w2_squared_mean", **sel)
        numbers[f"sc{i}_lim"] = self_correct_limit(M, g)["w2_squared"]
        numbers[f"g{i}"] = g
    numbers["gamma_eq"] = brentq(lambda g: self_correct_limit(M, g)["w2_squared"] - W1, 1e-3, 1.0)
    numbers["sc_z"] = sc_z
    numbers["sc0_long"] = self_correct_theory(4000, M, gammas[0])["w2_squared"][-1]
    numbers["one_fit"] = W1
    numbers["rep_end"] = _end(baselines, "w2_squared_mean", regime="replace")
    return {k: _item(v) for k, v in numbers.items()}


def curation_exercises() -> dict:
    """Curation, the numbers the exercises' solutions quote (no run).

    ex1_first: the variance after one generation of a verifier that keeps |x| < 2 (real sigma)
    ex1_five: the same after five generations
    ex1_ten: the same after ten generations
    """
    from scipy.stats import norm

    def shrink(a):
        return 1 - 2 * a * norm.pdf(a) / (2 * norm.cdf(a) - 1)

    var = [1.0]
    for _ in range(10):  # the window stays at 2 (real) sigma while the model narrows
        s = np.sqrt(var[-1])
        a = 2 / s
        var.append(var[-1] * shrink(a))
    return {k: _item(v) for k, v in {"ex1_first": var[1], "ex1_five": var[5],
                                     "ex1_ten": var[10]}.items()}


def curation_selection(select, milder) -> dict:
    """Curation, selection bias on the Gaussian: ``gaussian-selection``'s two runs.

    M: samples per generation
    G: the last generation
    chains: the independent chains of the run
    keep: the share the first record's selector keeps
    end_<regime>: the mean dispersion ratio at the last generation, per regime at that keep
    se_<regime>: its standard error over chains
    theory_<regime>: the recursion's value there
    kappa_<tag>: kappa for every keep of every record (tag: the share without its dot)
    exponent_<tag>: the power-law exponent 1 - kappa
    end_acc_select_<tag>: accumulate + select's mean dispersion ratio at the last generation
    se_acc_select_<tag>: its standard error
    theory_acc_select_<tag>: the recursion's value there
    """
    from .selection import selection_report

    return selection_report(select, milder)


def intro(rec) -> dict:
    """The introduction's first experiment: the ``gaussian-intro`` record, one chain set under
    replace and one under accumulate, read at the last generation.

    n: the last generation
    nfit: the fits made by then (n + 1)
    M: samples per generation
    chains: chains per regime
    cM: c_M, the factor by which each fit shrinks E sigma (replace, unbiased variance)
    sigma_theory: E sigma after nfit fits, exact (c_M^nfit)
    sigma_sim: the mean fitted sigma over the chains (replace)
    sigma_se: its standard error
    sigma_median: the median fitted sigma (replace)
    sigma_lowest: the smallest fitted sigma (replace)
    sigma2_sim: the mean fitted sigma^2 (replace)
    sigma2_se: its standard error
    w2_theory: E W2^2 to the original Gaussian after nfit fits, exact (replace)
    w2_sim: the mean W2^2 over the chains (replace)
    w2_se: its standard error
    w2_acc: the mean W2^2 under accumulate
    sigma_acc: the mean fitted sigma under accumulate
    w2_ratio: w2_sim / w2_acc
    """
    from .theory import expected_sigma

    n, M = int(rec.generations[-1]), rec.settings["M"]
    sig_rep, sig_acc = (rec.metric("sigma", regime=r)[0, -1] for r in ("replace", "accumulate"))
    w2_rep, w2_acc = (rec.metric("w2_squared", regime=r)[0, -1]
                      for r in ("replace", "accumulate"))

    def se(x):
        return float(x.std(ddof=1) / np.sqrt(len(x)))

    return {"n": n, "nfit": n + 1, "M": M, "chains": rec.settings["chains"], "cM": c_m(M),
            "sigma_theory": expected_sigma(n + 1, M), "sigma_sim": float(sig_rep.mean()),
            "sigma_se": se(sig_rep), "sigma_median": float(np.median(sig_rep)),
            "sigma_lowest": float(sig_rep.min()), "sigma2_sim": float((sig_rep**2).mean()),
            "sigma2_se": se(sig_rep**2), "w2_theory": expected_w2_squared(n + 1, M),
            "w2_sim": float(w2_rep.mean()), "w2_se": se(w2_rep), "w2_acc": float(w2_acc.mean()),
            "sigma_acc": float(sig_acc.mean()), "w2_ratio": float(w2_rep.mean() / w2_acc.mean())}
