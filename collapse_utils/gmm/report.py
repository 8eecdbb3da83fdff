"""The numbers the Gaussian-mixture chapter (book/gmm) quotes, one function per section.

Each function takes the chapter's record(s) and returns a flat dict of Python numbers, the
keys the chapter glues as ``gmm_<key>``; each key is documented by one line of its docstring.
Pure computations on records (and on the formulas of the section): no plotting, no glue.
:func:`end` and :func:`last` read a sweep's last generation, for the chapter's checks.
"""
from __future__ import annotations

import numpy as np

from .experiment import PAPER_PROFILE_RUN
from .figures import scatter_generations, sweep_metric
from .theory import effective_log_std, expected_log_std_drift

#: the entries of :data:`PAPER_PROFILE_RUN` the chapter quotes (as ``paper_<entry>``)
PAPER_QUOTED = ("component_std_start", "component_std_end", "wall_seconds", "l2_to_gen0_end",
                "total_std_end", "lighter_weight_mean", "total_log_drift", "total_log_drift_se",
                "component_log_drift", "effective_drift")


def last(sweep, metric: str, variant: str, regime: str) -> np.ndarray:
    """Each seed's ``metric`` at the last generation of a ``gmm-sweep`` record (exp of the
    recorded log for ``geo_std`` and ``total_geo_std``)."""
    return sweep_metric(sweep, metric, variant=variant, regime=regime)[:, -1]


def end(sweep, metric: str, variant: str, regime: str, stat=np.median) -> float:
    """A statistic over seeds (the median by default) of :func:`last`."""
    return float(stat(last(sweep, metric, variant, regime)))


def measures() -> dict:
    """Section "Two measures: an L2 distance and the tails": one 2-D unit blob's exact tails.

    tail2_exact: p_0(T_2) = exp(-2^2 / 2), the blob's mass beyond 2 sd
    tail3_exact: p_0(T_3) = exp(-3^2 / 2), the blob's mass beyond 3 sd
    """
    return {f"tail{r}_exact": float(np.exp(-(r**2) / 2)) for r in (2, 3)}


def scatter(rec) -> dict:
    """Section "The public protocol", its sizes and scatter grid: the ``gmm`` record (seed 0).

    M: points per generation
    K: mixture components
    last: the last generation of the run
    shown_last: the last scatter generation this run reaches
    shown_std: mean component std at that generation
    """
    S, shown = rec.settings, scatter_generations(rec)
    return {"M": S["points"], "K": S["components"], "last": int(rec.generations[-1]),
            "shown_last": shown[-1],
            "shown_std": float(rec.metric("component_std")[0][shown[-1]])}


def protocol(rec) -> dict:
    """Section "The public protocol", what was measured and what sampling error explains: the
    ``gmm`` record (seed 0) and the recorded ``paper`` run (:data:`PAPER_PROFILE_RUN`).

    std_start: mean component std at generation 0
    std_end: mean component std at the last generation
    l2_end: L2 distance to the generation-0 mixture at the last generation
    tot_end: the whole mixture's std at the last generation
    light: the lighter component's weight, averaged over generations
    drift: mean change per generation of the whole mixture's log geometric-mean std
    drift_se: its standard error over the run's steps
    drift_M: the same drift for one Gaussian refitted on N = M points
    paper_<entry>: an entry of PAPER_PROFILE_RUN (those in PAPER_QUOTED)
    """
    std = rec.metric("component_std")[0]
    weights = rec.metric("weights")[0]
    steps = np.diff(rec.metric("total_log_geo_std")[0])
    out = {
        "std_start": float(std[0]),
        "std_end": float(std[-1]),
        "l2_end": float(rec.metric("l2_to_gen0")[0][-1]),
        "tot_end": float(rec.metric("total_std")[0][-1]),
        "light": float(weights[:, -1].mean()),
        "drift": float(steps.mean()),
        "drift_se": float(steps.std() / np.sqrt(len(steps))),
        "drift_M": float(expected_log_std_drift(rec.settings["points"])),
    }
    out.update({f"paper_{k}": PAPER_PROFILE_RUN[k] for k in PAPER_QUOTED})
    return out


def sweep(sweep) -> dict:
    """Section "Beyond the public notebook": the ``gmm-sweep`` record's sizes and its medians
    over seeds.

    std_<variant>_<regime>: median component std at the last generation
    l2_<variant>_<regime>: median L2 distance to generation 0 at the last generation
    ref_end: one Gaussian on N = M points after the sweep's generations, from tot0
    tot_replace: one blob, replace: the whole mixture's geometric-mean std at the end (median)
    tot0: the same at generation 0
    seeds: seeds per variant and regime
    sweep_M: points per generation
    sweep_last: the last generation
    sweep_equiv: the protocol's generations (M = 1000) with the same drift as the sweep's
    std0_sweep: one blob, replace: median component std at generation 0
    """
    x, M = sweep.generations, sweep.settings["points"]
    one = dict(variant="one-blob", regime="replace")
    g0 = np.median(sweep.metric("total_log_geo_std", **one)[:, 0])
    out = {}
    for v in ("one-blob", "two-blobs"):
        for r in sweep.values("regime"):
            out[f"std_{v}_{r}"] = end(sweep, "component_std", v, r)
            out[f"l2_{v}_{r}"] = end(sweep, "l2_to_gen0", v, r)
    log_end = np.log(last(sweep, "total_geo_std", "one-blob", "replace"))
    out.update({
        "ref_end": float(np.exp(g0 + x[-1] * expected_log_std_drift(M))),
        "tot_replace": float(np.exp(np.median(log_end))),
        "tot0": float(np.exp(g0)),
        "seeds": sweep.settings["seeds"],
        "sweep_M": M,
        "sweep_last": int(x[-1]),
        "sweep_equiv": int(x[-1]) * 1000 // M,
        "std0_sweep": float(np.median(sweep.metric("component_std", **one)[:, 0])),
    })
    return out


def two_blobs(sweep) -> dict:
    """Section "Two separated blobs": the ``gmm-sweep`` record's two-blob runs, medians over seeds.

    wmax_replace: largest weight at the last generation, replace
    wmax_accumulate: the same, accumulate
    wmax0: largest weight at generation 0 (replace)
    geo_two: replace: components' geometric-mean std at the last generation
    ref_two: the same for one Gaussian per component on equal shares, N = M / 2
    eff_two: the same on each seed's fitted shares, N = w_k M (gmm.effective_log_std)
    """
    x, M = sweep.generations, sweep.settings["points"]
    sel = dict(variant="two-blobs", regime="replace")
    h0 = sweep.metric("log_geo_std", **sel)[:, 0]
    eff = np.median(effective_log_std(h0, sweep.metric("weights", **sel), M), axis=0)
    two_end = np.median(sweep.metric("log_geo_std", **sel)[:, -1])
    half_end = np.median(h0) + x[-1] * expected_log_std_drift(M // 2)
    return {
        "wmax_replace": end(sweep, "weight_max", "two-blobs", "replace"),
        "wmax_accumulate": end(sweep, "weight_max", "two-blobs", "accumulate"),
        "wmax0": float(np.median(sweep.metric("weight_max", **sel)[:, 0])),
        "geo_two": float(np.exp(two_end)),
        "ref_two": float(np.exp(half_end)),
        "eff_two": float(np.exp(eff[-1])),
    }


def tails(rec, sweep=None) -> dict:
    """Section "The tails go first": the ``gmm`` record's last generation and, given the
    ``gmm-sweep`` record, its one-blob medians over seeds.

    main_t3: the protocol's 3-sd tail coverage at the last generation
    main_t2: its 2-sd tail coverage
    main_tot: the whole mixture's std
    t3_<regime>: (with sweep) one blob: median 3-sd tail coverage at the last generation
    t2_<regime>: (with sweep) the same for the 2-sd tail
    n3: (with sweep) the expected number of the sweep's M real points beyond 3 sd
    """
    out = {f"main_{short}": float(rec.metric(key)[0][-1])
           for short, key in (("t3", "tail_3sd"), ("t2", "tail_2sd"), ("tot", "total_std"))}
    if sweep is not None:
        for r in sweep.values("regime"):
            out[f"t3_{r}"] = end(sweep, "tail_3sd", "one-blob", r)
            out[f"t2_{r}"] = end(sweep, "tail_2sd", "one-blob", r)
        out["n3"] = float(sweep.settings["points"] * np.exp(-4.5))
    return out


def exercises(sigma2: float = 0.81) -> dict:
    """Section "Exercises": exercise 4's round 2-D Gaussian of variance ``sigma2`` (std 0.9).

    ex4_c2: its 2-sd tail coverage, exp(-2 (1 / sigma2 - 1))
    ex4_c3: its 3-sd tail coverage, exp(-4.5 (1 / sigma2 - 1))
    ex4_rho: the radius beyond which its density falls below the unit blob's
    """
    excess = 1 / sigma2 - 1
    return {
        "ex4_c2": float(np.exp(-2 * excess)),
        "ex4_c3": float(np.exp(-4.5 * excess)),
        "ex4_rho": float(np.sqrt(2 * np.log(1 / sigma2) / excess)),
    }
