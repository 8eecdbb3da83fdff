"""The numbers the discrete chapter quotes, one function per section of ``book/discrete``.

Each function reads the section's record(s) and returns a flat dict (the chapter glues it
whole as ``dc_<key>``); each key is one line of the function's docstring.  Pure computations
on records and the exact theory: no plotting, no glue.  The ``*_z`` keys are the largest
distance of a simulated mean from its exact value, in standard errors (the hidden checks
ask for at most 4).
"""
from __future__ import annotations

import numpy as np

from .experiment import absorption_times, final_fixed, p0_of
from .theory import (
    expected_gini_simpson, expected_support, keep_real_stationary_gini_simpson,
    mean_absorption_time_diffusion, mean_absorption_time_exact, one_step_survival,
    survival_probability,
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
