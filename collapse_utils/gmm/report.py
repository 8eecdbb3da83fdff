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


# --- book/curation: the mixture sections (glued there as ``gmmcur_``, ``qiao_``, ``sb_<key>``) ---


def _plain(numbers: dict) -> dict:
    """NumPy scalars as the Python numbers glue makes of them (the same values)."""
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in numbers.items()}


def _ends(rec, key: str, **sel) -> np.ndarray:
    """Each seed's ``key`` at the last generation of a ``gmm-curation`` record."""
    return rec.metric(key, **sel)[:, -1]


def curation_verify(verify, reference) -> dict:
    """Curation on a mixture, the verifier: ``gmm-curation``'s verify sweep and its reference.

    ``reference`` holds replace and keep-real on the same sizes and seeds.
    M: points per generation
    last: the last generation
    seeds: the seeds of the run
    c: the verifier's bound on the density ratio
    share: keep-real's share of real points, in percent
    e10: the error rate whose verified share equals keep-real's
    s03: the verified share at error rate 0.3
    s045: the same at 0.45
    l2_replace: replace's median L2 distance to generation 0 at the last generation
    l2_keep: keep-real's
    l2_coin: the coin's (the sweep's largest error rate)
    l2_e<e>: the verifier's at error rate e/100
    std_e0: the median component sd at the last generation under a perfect verifier
    std_coin: the same under the coin
    std_replace: the same under replace
    std0: the median component sd at generation 0
    e_below: the largest error rate whose distance is at most keep-real's
    e_above: the smallest error rate whose distance is above keep-real's
    share_step_max: the largest step of the verified share between the sweep's error rates
    l2_max_e30: the largest median distance over error rates up to 0.3
    replace_min: the smallest of replace's seeds' distances at the last generation
    replace_max: the largest
    spread_e40: the decades spanned by the seeds' distances at error rate 0.4 (NaN if not run)
    spread_e45: the same at 0.45
    """
    from .curation import error_for_share, verified_share

    S, last = verify.settings, int(verify.generations[-1])
    qs = np.array(verify.values("verifier_error"))
    l2 = np.array([np.median(_ends(verify, "l2_to_gen0", verifier_error=q)) for q in qs])
    std = np.array([np.median(_ends(verify, "component_std", verifier_error=q)) for q in qs])
    ref = {r: _ends(reference, "l2_to_gen0", regime=r) for r in ("replace", "keep-real")}
    l2_keep = np.median(ref["keep-real"])

    def spread(q):
        if q not in qs:
            return float("nan")
        return np.ptp(np.log10(_ends(verify, "l2_to_gen0", verifier_error=q)))

    numbers = {
        "M": S["points"],
        "last": last,
        "seeds": S["seeds"],
        "c": S["verify_bound"],
        "share": 100 * S["real_fraction"],
        "e10": error_for_share(S["real_fraction"], S["verify_bound"]),
        "s03": verified_share(0.3, S["verify_bound"]),
        "s045": verified_share(0.45, S["verify_bound"]),
        "l2_replace": np.median(ref["replace"]),
        "l2_keep": l2_keep,
        "l2_coin": l2[-1],
        "std_e0": std[0],
        "std_coin": std[-1],
        "std_replace": np.median(_ends(reference, "component_std", regime="replace")),
        "std0": np.median(verify.metric("component_std")[:, 0]),
    }
    for q, d in zip(qs, l2):
        numbers[f"l2_e{round(100 * q)}"] = d
    numbers["e_below"] = max((q for q, d in zip(qs, l2) if d <= l2_keep), default=qs[0])
    numbers["e_above"] = min((q for q, d in zip(qs, l2) if d > l2_keep), default=qs[-1])
    numbers["share_step_max"] = np.max(np.diff(verified_share(qs, S["verify_bound"])))
    numbers["l2_max_e30"] = np.max(l2[qs <= 0.3])
    numbers["replace_min"] = ref["replace"].min()
    numbers["replace_max"] = ref["replace"].max()
    numbers["spread_e40"] = spread(0.4)
    numbers["spread_e45"] = spread(0.45)
    return _plain(numbers)


def curation_correct(correct, reference) -> dict:
    """Curation on a mixture, self-correction: ``gmm-curation``'s self-correct runs.

    ``<g>`` below is 100 gamma, rounded, for each gamma of the record.
    geo_replace: replace's median geometric-mean sd of the whole mixture at the last generation
    geo_replace_pred: its prediction from the drift alone
    geo_g<g>: the same median under self-correction of strength gamma
    geo_g<g>_pred: its prediction
    l2_g<g>: the median L2 distance to generation 0 at the last generation there
    std_g<g>: the median component sd there
    pred_step_min: the smallest rise of the prediction from one gamma to the next
    std0_correct: the median component sd at generation 0 of the self-correct runs
    replace_l2: replace's median L2 distance at the last generation (for the checks)
    keep_l2: keep-real's (for the checks)
    """
    from .curation import self_corrected_std

    Mg, gammas, x = correct.settings["points"], correct.values("gamma"), correct.generations

    def geo(rec, **sel):
        return np.exp(rec.metric("total_log_geo_std", **sel))

    def start(rec, **sel):
        return float(np.exp(np.median(rec.metric("total_log_geo_std", **sel)[:, 0])))

    def pred(g):
        return self_corrected_std(x[-1], g, start(correct, gamma=g), Mg)

    numbers = {
        "geo_replace": np.median(geo(reference, regime="replace")[:, -1]),
        "geo_replace_pred": self_corrected_std(x[-1], 0.0, start(reference, regime="replace"), Mg),
    }
    for g in gammas:
        k = f"{round(100 * g)}"
        numbers[f"geo_g{k}"] = np.median(geo(correct, gamma=g)[:, -1])
        numbers[f"geo_g{k}_pred"] = pred(g)
        numbers[f"l2_g{k}"] = np.median(correct.metric("l2_to_gen0", gamma=g)[:, -1])
        numbers[f"std_g{k}"] = np.median(correct.metric("component_std", gamma=g)[:, -1])
    numbers["pred_step_min"] = np.min(np.diff([pred(g) for g in gammas]))
    numbers["std0_correct"] = np.median(correct.metric("component_std")[:, 0])
    numbers["replace_l2"] = np.median(_ends(reference, "l2_to_gen0", regime="replace"))
    numbers["keep_l2"] = np.median(_ends(reference, "l2_to_gen0", regime="keep-real"))
    return _plain(numbers)


def curation_selection(table10) -> dict:
    """Curation, Qiao et al.'s families rebuilt: the ``gmm-selection`` record.

    n: points kept per generation
    d: the dimension
    G: the last generation
    seeds: the seeds of the run
    keep: the selector's share
    <family>_<regime>: the mean dispersion ratio at the last generation (dashes as underscores)
    paper_<family>_<regime>: Qiao et al.'s value
    minority_<regime>: the unequal mixture's smallest weight there, when that family ran
    """
    from .selection import table_report

    return table_report(table10)


def curation_sampling_bias(biased) -> dict:
    """Curation, sampling bias: the ``gmm-sampling-bias`` record (<tag>: the bias without a dot).

    G: the last generation
    points: samples per generation
    seeds: the seeds of the run
    components: the modes of the mixture
    reference: the real points precision and recall compare with
    k: the k of the k-NN balls
    precision_<tag>: the mean precision over seeds at the last generation
    recall_<tag>: the mean recall there
    component_std_<tag>: the mean component sd there
    recall0_<tag>: the mean recall at generation 0
    theory_std_<tag>: the theory's component sd at the last generation
    """
    from .sampling_bias import sampling_bias_report

    return sampling_bias_report(biased)
