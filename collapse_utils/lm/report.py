"""The numbers the language-model chapter (book/lm) quotes: :func:`report` of the main record,
:func:`findings` (the paper's findings and whether a record shows them), :func:`protocol` of the
protocol section's sweeps, :func:`what_ran` (one line naming what ran).

Pure computations on records: no plotting, no glue (``book/lm`` glues the dicts).
"""
from __future__ import annotations

import numpy as np


def by_seed(rec, metric: str, regime: str) -> np.ndarray:
    """``metric`` of every seed of ``regime``: an array (seeds, generations) of floats."""
    return np.asarray(rec.metric(metric, regime=regime), dtype=float)


def rise(rec, **sel) -> float:
    """Mean over runs of the last generation's test perplexity minus generation 0's."""
    tp = rec.metric("test_perplexity", **sel)
    return float((tp[:, -1] - tp[:, 0]).mean())


def rises(rec, regime: str, metric: str = "test_perplexity") -> np.ndarray:
    """Each seed's last generation minus its generation 0 of ``metric``."""
    v = by_seed(rec, metric, regime)
    return v[:, -1] - v[:, 0]


def tail_shares(rec, regime: str, q: float = 0.95) -> np.ndarray:
    """Per seed and generation, the share of the training blocks whose perplexity under
    generation 0 exceeds the ``q`` quantile of the real blocks' (generation 0's own values):
    the paper's long tail of high-perplexity sequences, as one number (about 1 - q at
    generation 0)."""
    out = []
    for run in rec.runs(regime=regime):
        values = run["metrics"]["generated_perplexity_values"]
        cut = np.quantile(np.asarray(values[0], dtype=float), q)
        out.append([float(np.mean(np.asarray(v, dtype=float) > cut)) for v in values])
    return np.asarray(out)


def report(rec) -> dict:
    """The numbers the chapter quotes, each a mean over seeds (``*_sd``: the spread), computed
    from the main record (settings (b) replace and (c) keep-real):

    ``tp0``, ``tp_b``, ``tp_c``: test perplexity at generation 0 and the last one; ``rise_b``,
    ``rise_c`` and the gap ``rise_gap`` between them, ``rise_spread`` the larger range of the
    two settings' rises over seeds, ``held`` whether the gap exceeds it; ``med0``, ``med_b``:
    median perplexity of the training data under generation 0; ``tail0``, ``tail_b``,
    ``tail_c``: :func:`tail_shares`; ``dist0``, ``dist_b``, ``dist_c``, ``rare0``, ``rare_b``,
    ``rare_c``: distinct tokens and rare-token coverage of the written blocks; ``own1_b``,
    ``own_b``: the writer's perplexity on its own blocks at generation 1 and the last;
    ``d2_0``, ``d2_b``: distinct bigrams."""
    r = {"last": int(rec.generations[-1]), "seeds": int(rec.settings["seeds"]),
         "blocks": int(rec.settings["train_blocks"]), "epochs": int(rec.fact("epochs")),
         "zero_shot": float(rec.fact("zero_shot_perplexity"))}
    tb, tc = by_seed(rec, "test_perplexity", "replace"), by_seed(rec, "test_perplexity", "keep-real")
    rb, rc = rises(rec, "replace"), rises(rec, "keep-real")
    r.update(tp0=tb[:, 0].mean(), tp1_b=tb[:, 1].mean() if tb.shape[1] > 1 else tb[:, 0].mean(),
             tp_b=tb[:, -1].mean(), tp_c=tc[:, -1].mean(), rise_b=rb.mean(), rise_c=rc.mean(),
             rise_gap=rb.mean() - rc.mean(),
             rise_spread=max(float(np.ptp(rb)), float(np.ptp(rc))))
    r["held"] = bool(r["rise_gap"] > r["rise_spread"])
    med = by_seed(rec, "generated_perplexity_median", "replace").mean(0)
    q90 = by_seed(rec, "generated_perplexity_q90", "replace").mean(0)
    tail_b, tail_c = tail_shares(rec, "replace").mean(0), tail_shares(rec, "keep-real").mean(0)
    r.update(med0=med[0], med_b=med[-1], q90_0=q90[0], q90_b=q90[-1], tail0=tail_b[0],
             tail_b=tail_b[-1], tail_c=tail_c[-1], tail_max_b=tail_b.max())
    for key, metric in (("dist", "distinct_tokens"), ("rare", "rare_coverage"), ("d2", "distinct_2"),
                        ("rep", "repetition")):
        b, c = by_seed(rec, metric, "replace").mean(0), by_seed(rec, metric, "keep-real").mean(0)
        r.update({f"{key}0": b[0], f"{key}_b": b[-1], f"{key}_c": c[-1]})
    own = by_seed(rec, "own_perplexity", "replace").mean(0)
    r.update(own1_b=own[1] if len(own) > 1 else float("nan"), own_b=own[-1])
    return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in r.items()}


def findings(rec, numbers: dict | None = None) -> list[dict]:
    """The paper's findings on language models and whether this record shows each: a list of
    ``{"finding", "shown", "measured"}``, every word of ``measured`` computed from the record
    (:func:`report`).  "Shown" means the direction the paper reports, on the mean over seeds;
    the first finding also needs the gap to exceed the seeds' spread."""
    n = numbers or report(rec)
    L = n["last"]
    return [
        {"finding": "training on generated data raises test perplexity on real text (b)",
         "shown": n["rise_b"] > 0,
         "measured": f"{n['tp0']:.1f} at generation 0, {n['tp_b']:.1f} at generation {L}"},
        {"finding": "keeping 10% real data holds the rise back (c), by more than the seeds' spread",
         "shown": n["held"],
         "measured": f"rise {n['rise_b']:+.1f} in (b), {n['rise_c']:+.1f} in (c); gap "
                     f"{n['rise_gap']:.1f} against a spread of {n['rise_spread']:.1f}"},
        {"finding": "the generated data drift to sequences generation 0 finds likely (Fig. 1b)",
         "shown": n["med_b"] < n["med0"],
         "measured": f"median perplexity under generation 0 {n['med0']:.1f} -> {n['med_b']:.1f}"},
        {"finding": "a growing tail of high-perplexity sequences (Fig. 1b/1c)",
         "shown": n["tail_b"] > n["tail0"],
         "measured": f"share above the real data's 95th percentile {n['tail0']:.0%} -> "
                     f"{n['tail_b']:.0%}"},
        {"finding": "the tails of the text vanish: rare tokens and distinct tokens fall, more in (b)",
         "shown": (n["rare_b"] < n["rare0"] and n["dist_b"] < n["dist0"]
                   and n["rare_b"] <= n["rare_c"] and n["dist_b"] <= n["dist_c"]),
         "measured": f"rare-token coverage {n['rare0']:.2f} -> {n['rare_b']:.2f} (b), "
                     f"{n['rare_c']:.2f} (c); distinct tokens {n['dist0']:.0f} -> "
                     f"{n['dist_b']:.0f} (b), {n['dist_c']:.0f} (c)"},
    ]


def recorded(rec) -> dict:
    """Section "A larger recorded run": the numbers its prose quotes, from the recorded run
    (:func:`report`, means over seeds), or an empty dict when the build holds none.

    last: its last generation
    blocks: training blocks per generation
    real_blocks: the real blocks setting (c) keeps in each generation's training set
    seeds: seeds per setting
    tp0: test perplexity at generation 0
    tp_b: test perplexity at the last generation, setting (b)
    tp_c: the same, setting (c)
    rise_gap: setting (b)'s rise minus setting (c)'s
    rise_spread: the larger range of the two settings' rises over seeds
    keep: a sentence: whether keeping 10% real held the rise back by more than that spread
    tail0: share of generation 0's written blocks above the real data's 95th percentile
    tail_b: the same at the last generation, setting (b)
    tail: a sentence: whether that tail grew
    dist0: distinct tokens of generation 0's written blocks
    dist_b: the same at the last generation, setting (b)
    dist_c: the same, setting (c)
    shown: how many of :func:`findings` the run shows
    """
    if rec is None:
        return {}
    n = report(rec)
    keep = (f"keeping 10% real data held the rise back by more than the seeds' spread (gap "
            f"{n['rise_gap']:.2f} against {n['rise_spread']:.2f})" if n["held"] else
            f"keeping 10% real data did not hold the rise back by more than the seeds' spread "
            f"(gap {n['rise_gap']:.2f} against {n['rise_spread']:.2f})")
    tail = ("the tail grew, as in the paper's Fig. 1b" if n["tail_b"] > n["tail0"] else
            "the tail did not grow at this size, unlike the paper's Fig. 1b")
    out = {k: n[k] for k in ("last", "blocks", "seeds", "tp0", "tp_b", "tp_c", "rise_gap",
                             "rise_spread", "tail0", "tail_b", "dist0", "dist_b", "dist_c")}
    return {**out, "keep": keep, "tail": tail,
            "real_blocks": round(float(rec.settings["real_fraction"]) * n["blocks"]),
            "shown": sum(bool(f["shown"]) for f in findings(rec, n))}


def recorded_summary(recorded) -> str:
    """One sentence for the chapter's box: what the larger recorded run is and how many of the
    paper's findings (:func:`findings`) it shows, or that the build holds none."""
    if recorded is None:
        return "This build holds no larger recorded run."
    shown = sum(bool(f["shown"]) for f in findings(recorded))
    return (f"The larger recorded run ({what_ran(recorded)}) shows {shown} of them: the table's "
            f"last column, and its own section below.")


def what_ran(rec) -> str:
    """One line: model, text, sizes, precision, as the record says (never the paper's model
    unless it ran)."""
    name = rec.fact("model_name")
    data = rec.fact("data_name") if "data_name" in rec.facts else "wikitext-2"
    who = f"{name} on {data}" + (" (STAND-IN)" if rec.stand_in else "")
    s = rec.settings
    return (f"{who}; {s['train_blocks']} training blocks of {s['block_size']} tokens, "
            f"{rec.fact('epochs')} epochs of batch {s['batch_size']}, generations 0-"
            f"{int(rec.generations[-1])}, {s['seeds']} seeds; {rec.fact('device')}")


def example(rec) -> dict:
    """Section "Example 1": generation 0's continuation of the example block in setting (b).

    ex0_distinct: distinct tokens among its new tokens, the fewest over seeds
    ex0_text: its first 90 characters, whitespace collapsed (seed 0)
    """
    distinct = rec.metric("example_distinct", regime="replace")[:, 0] * rec.settings["new_tokens"]
    text = rec.metric("example_continuation", regime="replace")[0, 0]
    return {"ex0_distinct": float(distinct.min()), "ex0_text": " ".join(text[:90].split())}


def protocol(rec, pen, dec, keep) -> dict:
    """Section "The public code's unstated choices": the main record ``rec`` (whose replace seed
    0 is the paper's penalty 1.0 and beam search, and whose keep-real seed 0 is keep 10% real)
    and the sweeps ``pen`` (repetition penalty), ``dec`` (decoding) and ``keep`` (keep-current).

    pen_rep1: repeated 4-grams of the written blocks, penalty 1.0, mean over generations 1-last
    pen_rep3: the same at penalty 3.0 (the public code's)
    nuc_dist: distinct tokens of nucleus sampling's blocks at the last generation
    beam_dist: the same under beam search
    keep_cur: original blocks in keep-current's training set at its last generation
    keep_real: original blocks in keep-real's training set at the same generation
    keep_gen: that generation
    """
    from .figures import baseline

    return {
        "pen_rep1": float(baseline(rec, pen, "repetition")[1:].mean()),
        "pen_rep3": float(pen.metric("repetition", repetition_penalty=3.0)[0, 1:].mean()),
        "nuc_dist": float(dec.metric("distinct_tokens", decoding="nucleus")[0, -1]),
        "beam_dist": float(baseline(rec, dec, "distinct_tokens")[-1]),
        "keep_cur": float(keep.metric("real_blocks", regime="keep-current")[0, -1]),
        "keep_real": float(baseline(rec, keep, "real_blocks", "keep-real")[-1]),
        "keep_gen": int(keep.generations[-1]),
    }
