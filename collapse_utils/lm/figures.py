"""The language-model chapter's figures and tables, each read from the record
(``collapse_utils.run("lm", ...)``): Fig. 1b/1c histograms, test perplexity by
generation, tail measures, the protocol ablations, Example 1 and the paper comparison."""
from __future__ import annotations

import numpy as np

from ..plotting import (generation_colors, label_stand_in, log_ticks, metric_by_generation,
                        stand_in_title)
from .experiment import PAPER

#: the generations of the paper's Fig. 1b/1c
FIG1_GENERATIONS = (0, 1, 2, 3, 5, 9)
TAILS = {"distinct_tokens": "distinct tokens", "distinct_2": "distinct bigrams (share)",
         "rare_coverage": "rare real tokens still used", "repetition": "repeated 4-grams (share)"}
PROTOCOL_LABELS = {"repetition_penalty": "repetition penalty", "decoding": "decoding",
                   "regime": "what is kept"}
KEEP_LABELS = {"keep-real": "10% of the original blocks", "keep-current": "10% of the current set",
               "replace": "nothing (replace)"}


def short_label(rec) -> str | None:
    """The short stand-in label of figure titles (None when the paper's model and data ran)."""
    return rec.fact("label") if rec.stand_in else None


def label_title(title: str, rec) -> str:
    """``title`` with the short stand-in label on a second line when a stand-in ran."""
    return stand_in_title(title, short_label(rec))


def _first(rec, **sel) -> dict:
    return rec.runs(**sel)[0]


def plot_perplexity_histograms(ax, rec, title: str = "", generations=FIG1_GENERATIONS, **sel):
    """Fig. 1b/1c: per-sequence perplexity of each generation's training data under the
    generation-0 model, as shares of blocks over log-spaced bins (the first matching run)."""
    run = _first(rec, **sel)
    gens = [g for g in generations if g in run["generations"]]
    edges = np.asarray(rec.fact("perplexity_bin_edges"))
    hist = run["metrics"]["generated_perplexity_hist"]
    for g, color in zip(gens, generation_colors(gens, max(run["generations"]))):
        counts = np.asarray(hist[g], dtype=float)
        ax.stairs(counts / counts.sum(), edges, color=color, label=f"gen {g}", linewidth=1.8)
    used = np.flatnonzero(np.sum([hist[g] for g in gens], axis=0))
    ax.set_xlim(edges[max(used[0] - 1, 0)], edges[min(used[-1] + 2, len(edges) - 1)])
    ax.set_xscale("log")
    log_ticks(ax, "x")   # 1-2-5 steps: no overlapping 3x10^0 labels on a narrow span
    ax.set_xlabel("perplexity of a block under generation 0")
    ax.set_ylabel("share of blocks")
    ax.legend(ncol=2)
    label_stand_in(ax, title, short_label(rec))


def plot_histograms_3d(ax, rec, **sel):
    """The supplement's 3-D view: one perplexity histogram per generation along the depth axis."""
    from matplotlib.collections import PolyCollection

    run = _first(rec, **sel)
    gens = run["generations"]
    edges = np.log10(np.asarray(rec.fact("perplexity_bin_edges")))
    centers = (edges[1:] + edges[:-1]) / 2
    for g, color in zip(gens, generation_colors(gens, max(gens))):
        counts = np.asarray(run["metrics"]["generated_perplexity_hist"][g], dtype=float)
        share = counts / counts.sum()
        ax.plot(centers, np.full_like(centers, g), share, color=color)
        verts = [list(zip(np.r_[centers[0], centers, centers[-1]], np.r_[0.0, share, 0.0]))]
        ax.add_collection3d(PolyCollection(verts, facecolors=[color], alpha=0.35), zs=g, zdir="y")
    ax.set_xlabel("log10 perplexity")
    ax.set_ylabel("generation")
    ax.set_zlabel("share of blocks")
    ax.set_yticks(gens)


def plot_test_perplexity(ax, rec, title: str = "Test perplexity by generation"):
    """Mean and +/- one standard deviation over seeds, per regime, and the zero-shot level."""
    metric_by_generation(ax, rec, "test_perplexity", center="mean",
                         ylabel="test perplexity (real text)")
    ax.axhline(rec.fact("zero_shot_perplexity"), color="0.45", linestyle=":",
               label="pretrained, not fine-tuned")
    ax.set_xticks(rec.generations)
    ax.legend()
    label_stand_in(ax, title, short_label(rec))


def plot_tails(axes, rec):
    """The four tail measures of the generated blocks (generation 0: the real blocks)."""
    for ax, (key, ylabel) in zip(np.ravel(axes), TAILS.items()):
        metric_by_generation(ax, rec, key, center="mean", ylabel=ylabel)
        ax.set_xticks(rec.generations)
        if key != "distinct_tokens" and ax.get_legend():
            ax.get_legend().remove()


def baseline(main, sweep, metric: str) -> np.ndarray:
    """``metric`` of setting (b) in a protocol figure: the main record's ``replace`` run of the
    sweep's seed, over the sweep's generations.  The sweeps leave out the paper's own choice
    (penalty 1.0, beam search), since that run is this one (``tests/test_lm.py`` checks it)."""
    run = main.one(regime="replace", seed=sweep.seed)
    return np.asarray(run["metrics"][metric][: len(sweep.generations)], dtype=float)


def plot_protocol(ax, rec, by: str, metric: str = "test_perplexity", ylabel: str = "",
                  title: str = "", main=None, **sel):
    """One protocol choice (``by``: repetition_penalty, decoding or regime) against generation;
    ``main``: the chapter's main record, whose setting-(b) run is drawn first (:func:`baseline`)."""
    if main is not None:
        value = main.settings[by][0] if isinstance(main.settings[by], list) else main.settings[by]
        ax.plot(rec.generations, baseline(main, rec, metric), label=f"{value} (setting b)")
    lines = metric_by_generation(ax, rec, metric, by=by, center="mean", ylabel=ylabel, **sel)
    if by == "regime":
        for value, line in lines.items():
            line.set_label(KEEP_LABELS.get(value, value))
    ax.legend(title=PROTOCOL_LABELS.get(by, by))
    ax.set_xticks(rec.generations)
    if title:  # a figure of several panels carries the stand-in label once, in its suptitle
        label_stand_in(ax, title, short_label(rec))


def continuation_table(rec, width: int = 150, **sel):
    """Example 1 of the paper: one fixed test prompt and each generation's continuation."""
    import pandas as pd

    run = _first(rec, **sel)
    rows = [{"generation": "prompt", "text": rec.fact("example_prompt")[:width]}]
    rows += [{"generation": g, "text": t.replace("\n", " ")[:width]}
             for g, t in zip(run["generations"], run["metrics"]["example_continuation"])]
    return pd.DataFrame(rows).set_index("generation")


def rise(rec, **sel) -> float:
    """Mean over runs of the last generation's test perplexity minus generation 0's."""
    tp = rec.metric("test_perplexity", **sel)
    return float((tp[:, -1] - tp[:, 0]).mean())


def paper_comparison(rec):
    """The paper's reported numbers beside this run's (means over seeds), model named."""
    import pandas as pd

    last = int(rec.generations[-1])
    what = rec.fact("model_name") + (f" (STAND-IN: {short_label(rec)})" if rec.stand_in else "")
    rows = [
        ("model and text", "OPT-125m on wikitext-2", what),
        ("zero-shot test perplexity", f"{PAPER['zero_shot_perplexity']:.0f}",
         f"{rec.fact('zero_shot_perplexity'):.1f}"),
        ("generation 0 (fine-tuned on real data)", f"about {PAPER['fine_tuned_perplexity']:.0f}",
         f"{rec.metric('test_perplexity', regime='replace')[:, 0].mean():.1f}"),
        ("(b) replace: rise over the generations", "about 20-28 (generations 0-9)",
         f"{rise(rec, regime='replace'):+.1f} (generations 0-{last})"),
        ("(c) keep 10% real: rise over the generations", "minor",
         f"{rise(rec, regime='keep-real'):+.1f} (generations 0-{last})"),
    ]
    return pd.DataFrame(rows, columns=["quantity", "paper", "this run"]).set_index("quantity")
