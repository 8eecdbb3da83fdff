"""The numbers the discrete chapter quotes, one function per section of ``book/discrete``.

Each function reads the section's record(s) and returns a flat dict (the chapter glues it
whole as ``dc_<key>``); each key is one line of the function's docstring.  Pure computations
on records and the exact theory: no plotting, no glue.  The ``*_z`` keys are the largest
distance of a simulated mean from its exact value, in standard errors (the hidden checks
ask for at most 4).  The ``beyond_*`` functions are the numbers of the discrete section and
exercise of ``book/beyond`` (glued there as ``bey_<key>``).
"""
from __future__ import annotations

import numpy as np

from .experiment import absorption_times, final_fixed, p0_of
from .theory import (
    ancestor_fraction, expected_gini_simpson, expected_support, forgetting_time,
    keep_real_stationary_gini_simpson, mean_absorption_time_diffusion, mean_absorption_time_exact,
    one_step_survival, survival_lower_bound, survival_probability, survival_upper_bound,
)

#: the regimes of the chapter's ``regs`` run and the short names of their keys
REGIME_KEYS = {"replace": "rep", "keep-real": "keep", "accumulate": "acc"}


def _plain(numbers: dict) -> dict:
    """NumPy scalars as Python numbers (the same values), so every key formats in the prose."""
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in numbers.items()}


def _z(value, expected, se, slack: float = 1e-9) -> float:
    """The largest ``|value - expected| / se`` (a gap within ``slack`` counts as 0; NaN stays)."""
    gap = np.abs(np.asarray(value, dtype=float) - np.asarray(expected, dtype=float))
    gap = np.where(gap <= slack, 0.0, gap)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(gap == 0, 0.0, gap / np.asarray(se, dtype=float))
    return float(np.max(z))


def _upto(last: int, generations) -> list:
    """The checked generations a run of ``last`` generations has."""
    return [g for g in generations if g <= last]


def tails_first(rec, states=(0, 4, 9, 19)) -> dict:
    """Tails go first, from the main ``discrete`` record (``replace``):

    * ``chains``: the number of chains of the run
    * ``gens``: its last generation
    * ``head``: p_0 of the most probable state
    * ``rare``: p_0 of the rarest state (state 20 of the chapter's Zipf law)
    * ``n_tail``: how many states have p_0 below 1/M
    * ``tail_mass``: their total probability
    * ``s20_1``: exact probability that the rarest state is in D_0 (survives one fit)
    * ``s20_10``: exact probability that it is still present after ten fits (generation 9)
    * ``sM_1``: the same after one fit for a state of probability 1/M
    * ``sM_10``: and after ten fits
    * ``alive20_10``: simulated share of chains still holding the rarest state after ten fits
    * ``alive1_10``: the same for the most probable state
    * ``survival_z``: simulated against exact survival of ``states`` at generations 0, 9, 49
    """
    p0, M, chains = p0_of(rec), rec.settings["M"], rec.settings["chains"]
    rare, head = int(np.argmin(p0)), int(np.argmax(p0))
    last = int(rec.generations[-1])
    S = survival_probability(p0[rare], M, 10)
    S1 = survival_probability(1 / M, M, 10)
    alive = rec.metric("survival")[0]
    states = [s for s in states if s < len(p0)]
    gens = _upto(last, (0, 9, 49))
    exact = survival_probability(p0[states], M, 50)[:, [g + 1 for g in gens]]
    se = np.sqrt(np.maximum(exact * (1 - exact), 1e-9) / chains)
    return _plain({
        "chains": chains,
        "gens": last,
        "head": p0[head],
        "rare": p0[rare],
        "n_tail": int((p0 < 1 / M).sum()),
        "tail_mass": p0[p0 < 1 / M].sum(),
        "s20_1": S[1],
        "s20_10": S[10],
        "sM_1": S1[1],
        "sM_10": S1[10],
        "alive20_10": float(alive[9][rare]),
        "alive1_10": float(alive[9][head]),
        "survival_z": _z(alive[gens][:, states].T, exact, se, slack=1e-12),
    })


def support(rec) -> dict:
    """The support shrinks to one state, from the main ``discrete`` record:

    * ``support_d0``: expected number of states in D_0 (exact)
    * ``support5``: expected number of states left at generation 4, after five fits (exact)
    * ``absorbed``: percentage of chains on a single state at the last generation
    * ``half_life``: M ln 2, the diversity's half-life in fits
    * ``support_z``: mean support against its exact expectation at generations 0, 4, 19, 99, 299
    * ``gini_simpson_z``: the same for the mean diversity G_n
    """
    p0, M, chains = p0_of(rec), rec.settings["M"], rec.settings["chains"]
    n = rec.generations
    gens = _upto(int(n[-1]), (0, 4, 19, 99, 299))
    ES = expected_support(p0, M, 5)
    out = {
        "support_d0": ES[1],
        "support5": ES[5],
        "absorbed": 100 * rec.metric("absorbed_fraction")[0, -1],
        "half_life": M * np.log(2),
    }
    for name, f in (("support", expected_support), ("gini_simpson", expected_gini_simpson)):
        exact = f(p0, M, n[-1] + 1)[n + 1]
        mean, sd = rec.metric(f"{name}_mean")[0], rec.metric(f"{name}_sd")[0]
        out[f"{name}_z"] = _z(mean[gens], exact[gens], sd[gens] / chains**0.5)
    return _plain(out)


def fixation(fix) -> dict:
    """Where the chain ends, from the ``discrete-fixation`` record:

    * ``fix_chains``: the number of chains
    * ``fix_K``: the number of states
    * ``fix_head``: p_0 of the most probable state
    * ``fix_unabsorbed``: chains with two or more states left at the last generation
    * ``fix_chi2``: p-value of a chi-square test of the final states' counts against p_0
    * ``head_won``: share of chains ending on the most probable state
    * ``head_lost``: share of chains that lost it
    * ``fix_z``: each state's share of chains against p_0, the largest gap
    """
    from scipy.stats import chisquare

    p0f, M, n_fix = p0_of(fix), fix.values("M")[0], fix.settings["chains"]
    wins = final_fixed(fix, M=M)
    return _plain({
        "fix_chains": n_fix,
        "fix_K": len(p0f),
        "fix_head": p0f[0],
        "fix_unabsorbed": int(n_fix - wins.sum()),
        "fix_chi2": chisquare(wins, wins.sum() * p0f).pvalue,
        "head_won": wins[0] / n_fix,
        "head_lost": 1 - wins[0] / n_fix,
        "fix_z": max(abs(wins[i] / n_fix - p0f[i]) / np.sqrt(p0f[i] * (1 - p0f[i]) / n_fix)
                     for i in range(len(p0f))),
    })


def absorption(times, kt) -> dict:
    """How long collapse takes, from the two ``discrete-absorption`` records (``times``: two
    states at p = 1/2, a sweep over M; ``kt``: the Zipf law of the main run, one M):

    * ``t_chains``: chains per M of ``times``
    * ``tm10``: exact mean absorption time over M at M = 10 (two states at p = 1/2)
    * ``tm400``: the same at M = 400
    * ``diff_err10``: how much the diffusion formula overestimates the exact mean at M = 10 (%)
    * ``diff_err100``: the same at M = 100 (%)
    * ``gap10``: diffusion minus exact mean, in fits, at M = 10
    * ``gap400``: the same at M = 400
    * ``t_z``: each M's mean absorption time in ``times`` against the exact mean, the largest gap
    * ``littler``: the K-state diffusion formula's mean absorption time for ``kt``'s p_0 (fits)
    * ``k_chains``: chains of ``kt``
    * ``k_mean``: their mean absorption time (fits)
    * ``k_se``: its standard error
    """
    rel = {m: mean_absorption_time_exact(0.5, m) / m for m in (10, 400)}
    err = {
        m: 100 * (mean_absorption_time_diffusion(0.5, m) / mean_absorption_time_exact(0.5, m) - 1)
        for m in (10, 100)
    }
    gap = {
        m: mean_absorption_time_diffusion(0.5, m) - mean_absorption_time_exact(0.5, m)
        for m in (10, 400)
    }
    z = []
    for m in times.values("M"):
        t = absorption_times(times, M=m)
        z.append(_z(t.mean(), mean_absorption_time_exact(0.5, m), t.std(ddof=1) / t.size**0.5,
                    slack=0.0))
    M = kt.values("M")[0]
    tk = absorption_times(kt, M=M)
    return _plain({
        "t_chains": times.settings["chains"],
        "tm10": rel[10],
        "tm400": rel[400],
        "diff_err10": err[10],
        "diff_err100": err[100],
        "gap10": gap[10],
        "gap400": gap[400],
        "t_z": max(z),
        "littler": mean_absorption_time_diffusion(p0_of(kt), M),
        "k_chains": tk.size,
        "k_mean": np.mean(tk),
        "k_se": np.std(tk, ddof=1) / np.sqrt(tk.size),
    })


def regimes(regs) -> dict:
    """Which regimes still collapse, from the ``discrete`` record of the three regimes
    (``rep``: replace, ``keep``: keep-real, ``acc``: accumulate):

    * ``rep_absorbed``: percentage of replace chains on a single state at the last generation
    * ``keep_div``: keep-real's mean diversity at the last generation over G(p_0)
    * ``keep_support``: keep-real's mean support after generation 100
    * ``keep_tail``: how often a state below 1/M is present under keep-real after generation 100 (%)
    * ``keep_absorbed``: the largest percentage of keep-real chains absorbed after generation 0
    * ``acc_support``: accumulate's mean support at the last generation
    * ``acc_support_exact``: the expected support of D_0 (exact)
    * ``acc_support_range``: the range of accumulate's mean support over the generations
    * ``acc_div``: accumulate's mean diversity at the last generation over G(p_0)
    * ``rep_div_z``: replace's mean diversity against the exact one at generations 0, 10, 100, 300
    * ``keep_div_z``: the same for keep-real
    * ``acc_div_z``: the same for accumulate
    * ``keep_stationary_z``: keep-real's last mean diversity against its exact fixed point
    * ``acc_support_z``: accumulate's mean support at generation 0 against ``acc_support_exact``
    """
    p0, M, f = p0_of(regs), regs.settings["M"], regs.settings["real_fraction"]
    chains = regs.settings["chains"]
    G0 = 1 - np.sum(p0**2)
    gens = _upto(int(regs.generations[-1]), (0, 10, 100, 300))
    acc = regs.metric("support_mean", regime="accumulate")[0]
    keep_G = regs.metric("gini_simpson_mean", regime="keep-real")[0]
    keep_sd = regs.metric("gini_simpson_sd", regime="keep-real")[0] / chains**0.5
    out = {
        "rep_absorbed": 100 * regs.metric("absorbed_fraction", regime="replace")[0, -1],
        "keep_div": keep_G[-1] / G0,
        "keep_support": regs.metric("support_mean", regime="keep-real")[0, 100:].mean(),
        "keep_tail": 100 * regs.metric("survival", regime="keep-real")[0][100:, p0 < 1 / M].mean(),
        "keep_absorbed": 100 * regs.metric("absorbed_fraction", regime="keep-real")[0, 1:].max(),
        "acc_support": acc[-1],
        "acc_support_exact": expected_support(p0, M, 1)[1],
        "acc_support_range": np.ptp(acc),
        "acc_div": regs.metric("gini_simpson_mean", regime="accumulate")[0, -1] / G0,
    }
    for r in regs.values("regime"):
        G = regs.metric("gini_simpson_mean", regime=r)[0]
        sd = regs.metric("gini_simpson_sd", regime=r)[0] / chains**0.5
        exact = expected_gini_simpson(p0, M, 301, r, f)[[g + 1 for g in gens]]
        out[f"{REGIME_KEYS.get(r, r)}_div_z"] = _z(G[gens], exact, sd[gens])
    out["keep_stationary_z"] = _z(keep_G[-1], keep_real_stationary_gini_simpson(p0, M, f),
                                  keep_sd[-1], slack=0.0)
    acc_se = regs.metric("support_sd", regime="accumulate")[0, 0] / chains**0.5
    out["acc_support_z"] = _z(acc[0], out["acc_support_exact"], acc_se, slack=0.0)
    return _plain(out)


def exercises(rec, regs) -> dict:
    """The exercises' numbers, from the main ``discrete`` record and the regimes' record:

    * ``ex2_exact``: exact mean absorption time of two states at p = 0.1 with M = 200 (fits)
    * ``ex4_M``: the smallest M at which D_0's expected support reaches 19 of the states
    * ``ex4_ratio``: how many times the chapter's M that is (rounded down)
    * ``p_mean_z``: each regime's mean p_n at the last generation against p_0, the largest gap
    """
    p0, M = p0_of(rec), rec.settings["M"]
    ex4 = next(m for m in range(100, 5000) if one_step_survival(p0, m).sum() >= 19)
    p0r = p0_of(regs)
    se = np.sqrt(p0r * (1 - p0r) / regs.settings["chains"])   # a [0, 1] variable with mean p0
    z = [_z(regs.metric("p_mean", regime=r)[0, -1], p0r, se, slack=0.0)
         for r in regs.values("regime")]
    return _plain({
        "ex2_exact": mean_absorption_time_exact(0.1, 200),
        "ex4_M": ex4,
        "ex4_ratio": ex4 // M,
        "p_mean_z": max(z),
    })


def beyond_forgetting(rec, state: int = 19, counts=None, sizes=(50, 200, 800)) -> dict:
    """How fast a state is forgotten, the section of ``book/beyond`` (glued there as
    ``bey_<key>``), from the main ``discrete`` record (``replace``): its exact survival of one
    ``state`` (0-based) between the two bounds, and the time to forget, the first fit at which
    survival is at most 1/2, at expected counts ``counts`` (default 10 from 1 to 20) for
    samples per fit ``sizes``:

    * ``b10``: b_10 of the upper bound at M = 100
    * ``b10_ref``: its approximation 2 / 12
    * ``fg_M``: samples per fit of the run
    * ``fg_chains``: its chains
    * ``fg_K``: its number of states
    * ``fg_s``: its Zipf exponent
    * ``fg_state``: the state drawn, 1-based
    * ``fg_p``: its probability q
    * ``fg_q``: its expected count M q in fit 1
    * ``fg_exact10``: its exact survival after 10 fits
    * ``fg_low10``: the lower bound 1 - exp(-M q / 10)
    * ``fg_up10``: the upper bound after 10 fits
    * ``fg_k``: the run's last fit
    * ``fg_end``: the state's exact survival at that fit
    * ``fg_low_end``: the lower bound there
    * ``fg_up_end``: the upper bound there
    * ``bracket_gap``: the most by which any state's exact survival leaves its bounds, any fit
    * ``survival_fit``: the largest |simulated - exact survival| / (4.5 sd + 2 / chains)
    * ``t800_lo``: M = 800: the fewest fits to forget per expected copy, over the counts
    * ``t800_hi``: the most
    * ``t800_last``: the fits per copy at the largest count
    * ``t800_peak``: the index of the count with the most fits per copy
    * ``t_one``: M = 800: the fits to forget at one expected copy
    * ``t_up_ratio``: M = 800: the largest ratio of the upper bound's time to the exact time
    * ``t50_hi``: M = 50: the most fits per expected copy
    * ``q50_max``: M = 50: the largest q, the largest count over M
    * ``diff_ratio``: the diffusion's fits per copy, 2 / ln 2
    * ``low_slack``: the smallest exact time + 1 - count / ln 2 over the sizes and counts
    * ``up_slack``: the smallest upper-bound time - exact time over the sizes and counts
    """
    counts = np.geomspace(1, 20, 10) if counts is None else np.asarray(counts, dtype=float)
    p0, M, chains, present, k, exact, lower, upper = forgetting_curves(rec).values()
    times = forgetting_times(counts, sizes)
    per_copy = {m: times[m][0] / counts for m in sizes}
    sd = np.sqrt(exact * (1 - exact) / chains)
    r = state
    return _plain({
        "b10": ancestor_fraction(100, 10)[10],
        "b10_ref": 2 / 12,
        "fg_M": M,
        "fg_chains": chains,
        "fg_K": p0.size,
        "fg_s": rec.settings["zipf_exponent"],
        "fg_state": r + 1,
        "fg_p": p0[r],
        "fg_q": M * p0[r],
        "fg_exact10": exact[r, 9],
        "fg_low10": lower[r, 9],
        "fg_up10": upper[r, 9],
        "fg_k": int(k[-1]),
        "fg_end": exact[r, -1],
        "fg_low_end": lower[r, -1],
        "fg_up_end": upper[r, -1],
        "bracket_gap": max(np.max(lower - exact), np.max(exact - upper)),
        "survival_fit": np.max(np.abs(present - exact) / (4.5 * sd + 2 / chains)),
        "t800_lo": per_copy[800].min(),
        "t800_hi": per_copy[800].max(),
        "t800_last": per_copy[800][-1],
        "t800_peak": int(np.argmax(per_copy[800])),
        "t_one": int(times[800][0][0]),
        "t_up_ratio": np.max(times[800][1] / times[800][0]),
        "t50_hi": per_copy[50].max(),
        "q50_max": counts[-1] / 50,
        "diff_ratio": 2 / np.log(2),
        "low_slack": min(np.min(times[m][0] + 1 - counts / np.log(2)) for m in sizes),
        "up_slack": min(np.min(times[m][1] - times[m][0]) for m in sizes),
    })


def forgetting_curves(rec) -> dict:
    """The survival curves of the forgetting section, from the ``discrete`` record (``replace``):
    ``p0``, ``M``, ``chains``; ``present`` (states x generations: the chains' share holding each
    state), ``k`` (fit number: generation g is fit g + 1) and the exact survival, Suresh et al.'s
    lower and the genealogy's upper bound at those fits (states x fits)."""
    p0, M = p0_of(rec), rec.settings["M"]
    k = rec.generations + 1
    return {"p0": p0, "M": M, "chains": rec.settings["chains"],
            "present": rec.metric("survival", regime="replace")[0].T, "k": k,
            "exact": survival_probability(p0, M, int(k[-1]))[:, 1:],
            "lower": survival_lower_bound(p0[:, None], M, k),
            "upper": survival_upper_bound(p0, M, int(k[-1]))[:, 1:]}


def forgetting_times(counts, sizes=(50, 200, 800), fits: int = 200) -> dict:
    """The time to forget under ``replace``: {M: [exact, upper bound]} for each M of ``sizes``,
    each an array over ``counts`` (expected counts M q in fit 1) of the first fit, up to ``fits``,
    at which the state is present with probability at most 1/2 (NaN if none is)."""
    counts = np.asarray(counts, dtype=float)
    return {m: [forgetting_time(f(counts / m, m, fits))
                for f in (survival_probability, survival_upper_bound)] for m in sizes}


def beyond_exercises() -> dict:
    """Exercise 4 of ``book/beyond`` (glued there as ``bey_<key>``): a word of probability
    q = 0.005 with M = 1000, under ``replace``; the first fit at which its survival is at most 1/2

    * ``ex4_low``: by the lower bound 1 - exp(-M q / k)
    * ``ex4_exact``: exactly
    * ``ex4_up``: by the upper bound
    """
    t = [forgetting_time(f) for f in (survival_lower_bound(0.005, 1000, np.arange(61)),
                                      survival_probability(0.005, 1000, 60),
                                      survival_upper_bound(0.005, 1000, 60))]
    return {"ex4_low": int(t[0]), "ex4_exact": int(t[1]), "ex4_up": int(t[2])}


# --- book/curation: the discrete sections (glued there as ``cur_<key>`` and ``tails_<key>``) ---


def curation_discrete(disc) -> dict:
    """Curation on a discrete law: ``discrete`` with replace, verify (q = 0), self-correct (0.1).

    K: the number of states
    Md: samples per generation
    Gd: the last generation
    sup_rep: replace's mean support at the last generation
    sup_ver: the perfect verifier's mean support there
    sup_bound: its lower bound there, sum_i (1 - (1 - p0_i)^M)^n
    sup_d0: the mean support of D_0 (replace, generation 0)
    gs0: p_0's Gini-Simpson diversity
    gs_sc: self-correct's mean Gini-Simpson at the last generation
    gs_sc_th: its exact value there
    gs_ver: the perfect verifier's mean Gini-Simpson there
    gs_rep: replace's mean Gini-Simpson there
    sc_support_q10: self-correct's 10% quantile of the support over chains there
    gs_sc_z: self-correct's mean Gini-Simpson from its exact value, in standard errors
    sup_rep_z: replace's mean support from its exact value, in (standard error + 0.01)
    ver_bound_gap: the least margin of the verifier's mean support over its bound minus slack
    """
    from .theory import curation_gini_simpson, verified_support_bound

    p0, Md = np.asarray(disc.fact("p0")), disc.settings["M"]
    K = len(disc.fact("p0"))
    chains = disc.settings["chains"]

    def dl(name, **sel):
        return float(disc.metric(name, **sel)[0, -1])

    def dse(name, **sel):
        return dl(name.replace("_mean", "_sd"), **sel) / np.sqrt(chains)

    nd = int(disc.generations[-1]) + 1
    sc = {"regime": "self-correct", "gamma": 0.1}
    ver = {"regime": "verify", "verifier_error": 0.0}
    gs_sc_th = curation_gini_simpson(p0, Md, nd, "self-correct", gamma=0.1)[-1]
    sup_v = disc.metric("support_mean", **ver)[0]
    slack = 4 * 0.5 / np.sqrt(chains)
    bound = verified_support_bound(p0, Md, nd)
    return _plain({
        "K": K,
        "Md": Md,
        "Gd": nd - 1,
        "sup_rep": dl("support_mean", regime="replace"),
        "sup_ver": dl("support_mean", **ver),
        "sup_bound": bound[-1],
        "sup_d0": float(disc.metric("support_mean", regime="replace")[0, 0]),
        "gs0": 1 - np.sum(p0**2),
        "gs_sc": dl("gini_simpson_mean", **sc),
        "gs_sc_th": gs_sc_th,
        "gs_ver": dl("gini_simpson_mean", **ver),
        "gs_rep": dl("gini_simpson_mean", regime="replace"),
        "sc_support_q10": dl("support_q10", **sc),
        "gs_sc_z": _z(dl("gini_simpson_mean", **sc), gs_sc_th, dse("gini_simpson_mean", **sc), 0),
        "sup_rep_z": _z(dl("support_mean", regime="replace"),
                        expected_support(p0, Md, nd)[-1],
                        dse("support_mean", regime="replace") + 0.01, 0),
        "ver_bound_gap": float(np.min(sup_v - (bound[1:] - slack))),
    })


def curation_tails(tails) -> dict:
    """Curation, a cut tail changes the scaling law: the ``zipf-tails`` record.

    beta: the Zipf exponent
    vocab: the items of the law
    chains: the independent chains of the run
    G: the last generation
    exponent: the clean scaling law's exponent 1 - 1/beta
    T_max: the largest number of samples T
    T_min: the smallest
    floor_<k>: the integral's floor at cut k (0 for none)
    tail_<k>: the exact mass beyond rank k
    start_<k>_<T>: the mean error at generation 0, per cut k and T (<T> = max: the largest T)
    end_<k>_<T>: the same at the last generation
    se_<k>_<T>: the standard error of the start over chains
    exact_<k>_<T>: the exact sum E(T)
    """
    from .tails import tails_report

    return tails_report(tails)
