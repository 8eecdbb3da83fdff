"""The language-model chapter's figures and tables, each read from the record
(``collapse_utils.run("lm", ...)``): Fig. 1b/1c histograms, test perplexity by
generation, tail measures, the protocol ablations, Example 1 and the paper comparison."""
from __future__ import annotations

import numpy as np

from ..plotting import (PAGE_WIDTH, generation_colors, label_stand_in, log_ticks,  # noqa: F401
                        metric_by_generation, panels, stand_in_title)
from .experiment import PAPER
from .report import (by_seed, findings, report, rise, rises, tail_shares,  # noqa: F401
                     what_ran)

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




def one_legend(axes, keep: int = 0) -> None:
    """Keep the legend of ``axes[keep]`` only: the panels of a figure that draw the same lines
    share one key."""
    flat = list(np.ravel(axes))
    for i, ax in enumerate(flat):
        if i != keep % len(flat) and ax.get_legend() is not None:
            ax.get_legend().remove()


def _title(ax, title: str, rec, label: bool = True) -> None:
    """:func:`~..plotting.label_stand_in`, each line wrapped to the panel's width (a stand-in
    label is longer than half the page at 10 pt); ``label=False``: the title alone (the figure
    says what ran once, in its suptitle)."""
    import textwrap

    label = short_label(rec) if label else None
    fig = ax.figure
    width_in = ax.get_position().width * fig.get_size_inches()[0]
    chars = max(int(width_in * 72 / (0.6 * 10)), 16)   # DejaVu Sans: about 0.6 em a character
    lines = stand_in_title(title, label).split("\n")
    text = "\n".join(textwrap.fill(line, chars) for line in lines)
    ax.set_title(text, fontsize=10 if label else None)


def plot_perplexity_histograms(ax, rec, title: str = "", generations=FIG1_GENERATIONS,
                               label: bool = True, **sel):
    """Fig. 1b/1c: per-sequence perplexity of each generation's training data under the
    generation-0 model, as shares of blocks over log-spaced bins (the first matching run; the
    paper's generations and the run's last).  ``label=False`` leaves the stand-in label out of
    the panel's title, for a figure that states it once."""
    run = _first(rec, **sel)
    # the paper's generations this run has, and its last one
    gens = sorted({g for g in generations if g in run["generations"]} | {run["generations"][-1]})
    edges = np.asarray(rec.fact("perplexity_bin_edges"))
    hist = run["metrics"]["generated_perplexity_hist"]
    for g, color in zip(gens, generation_colors(gens, max(run["generations"]))):
        counts = np.asarray(hist[g], dtype=float)
        ax.stairs(counts / counts.sum(), edges, color=color, label=f"gen {g}", linewidth=1.8)
    used = np.flatnonzero(np.sum([hist[g] for g in gens], axis=0))
    ax.set_xlim(edges[max(used[0] - 1, 0)], edges[min(used[-1] + 2, len(edges) - 1)])
    ax.set_xscale("log")
    log_ticks(ax, "x")   # 1-2-5 steps: no overlapping 3x10^0 labels on a narrow span
    ax.set_xlabel("perplexity under generation 0")
    ax.set_ylabel("share of blocks")
    ax.legend(ncol=2)
    _title(ax, title, rec, label)


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
    _title(ax, title, rec)


def plot_tails(axes, rec):
    """The four tail measures of the generated blocks (generation 0: the real blocks)."""
    for ax, (key, ylabel) in zip(np.ravel(axes), TAILS.items()):
        metric_by_generation(ax, rec, key, center="mean", ylabel=ylabel)
        ax.set_xticks(rec.generations)
        if key != "distinct_tokens" and ax.get_legend():
            ax.get_legend().remove()
        spec = ax.get_subplotspec()
        if spec is not None and not spec.is_last_row() \
                and len(ax.get_shared_x_axes().get_siblings(ax)) > 1:
            ax.set_xlabel("")   # a shared axis: named once, under the last row


def baseline(main, sweep, metric: str, regime: str = "replace") -> np.ndarray:
    """``metric`` of setting (b) in a protocol figure (or of ``regime``): the main record's run
    of the sweep's seed, over the sweep's generations.  The sweeps leave out the paper's own
    choice (penalty 1.0, beam search, keep-real), since that run is this one
    (``tests/test_lm.py`` checks it)."""
    run = main.one(regime=regime, seed=sweep.seed)
    return np.asarray(run["metrics"][metric][: len(sweep.generations)], dtype=float)


def plot_protocol(ax, rec, by: str, metric: str = "test_perplexity", ylabel: str = "",
                  title: str = "", main=None, main_regime: str = "replace", **sel):
    """One protocol choice (``by``: repetition_penalty, decoding or regime) against generation;
    ``main``: the chapter's main record, whose ``main_regime`` run (setting b) is drawn first
    (:func:`baseline`)."""
    if main is not None:
        value = main.settings[by][0] if isinstance(main.settings[by], list) else main.settings[by]
        label = KEEP_LABELS.get(main_regime) if by == "regime" else f"{value} (setting b)"
        ax.plot(rec.generations, baseline(main, rec, metric, main_regime), label=label)
    lines = metric_by_generation(ax, rec, metric, by=by, center="mean", ylabel=ylabel, **sel)
    if by == "regime":
        for value, line in lines.items():
            line.set_label(KEEP_LABELS.get(value, value))
    ax.legend(title=PROTOCOL_LABELS.get(by, by))
    ax.set_xticks(rec.generations)
    if title:  # a figure of several panels carries the stand-in label once, in its suptitle
        _title(ax, title, rec)


def continuation_table(rec, width: int = 150, **sel):
    """Example 1 of the paper: one fixed test prompt and each generation's continuation."""
    import pandas as pd

    run = _first(rec, **sel)
    rows = [{"generation": "prompt", "text": rec.fact("example_prompt")[:width]}]
    rows += [{"generation": g, "text": t.replace("\n", " ")[:width]}
             for g, t in zip(run["generations"], run["metrics"]["example_continuation"])]
    return pd.DataFrame(rows).set_index("generation")




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


# ----------------------------------------------------------------------------- the recorded run
#: the recorded runs the chapter draws beside its live one (metrics only: see RECORDED_COMMAND)
RECORDS = "book/records"
#: the command that makes the recorded run (on this book's 2-core CPU about 1-2 hours; resumable,
#: so it may be made in parts), then the line that writes its provenance beside it
RECORDED_COMMAND = (
    "python -m collapse_utils run lm --profile default --train-blocks 128 --generations 9 "
    "--seeds 3 --resume --out book/records/lm-128")
RECORDED_PROVENANCE = ("python -c \"from collapse_utils.lm.figures import write_provenance; "
                       "write_provenance('book/records/lm-128')\"")
#: how far a recomputed slice of a recorded run may lie from it (relative): the same code and
#: seed on another CPU differs by the rounding of bf16 products, not by more
RECORD_TOLERANCE = {"test_perplexity": 0.03, "generated_perplexity_median": 0.05,
                    "distinct_tokens": 0.10}












def findings_table(rec, numbers: dict | None = None):
    """:func:`findings` as a table (finding, shown here, measured), for the chapter's box: a
    Styler that shows every cell whole."""
    import pandas as pd

    rows = [{"the paper's finding": f["finding"], "this run": "shown" if f["shown"] else "not shown",
             "measured": f["measured"]} for f in findings(rec, numbers)]
    frame = pd.DataFrame(rows).set_index("the paper's finding")
    return frame.style.set_properties(**{"text-align": "left", "white-space": "normal"})




def plot_settings(ax, rec, metric: str = "test_perplexity", ylabel: str = "", recorded=None):
    """``metric`` of settings (b) and (c), mean over seeds with a +/- one sd band, and, when
    given, the ``recorded`` run's as dashed lines labelled "recorded".  A metric that has no value
    at generation 0 (``own_perplexity``) starts at generation 1."""
    import warnings

    with warnings.catch_warnings():   # the mean of generation 0's missing values: no point drawn
        warnings.simplefilter("ignore", RuntimeWarning)
        metric_by_generation(ax, rec, metric, center="mean",
                             ylabel=ylabel or metric.replace("_", " "))
    if recorded is not None:
        for regime in recorded.values("regime"):
            y = np.asarray(recorded.metric(metric, regime=regime), dtype=float)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(y, 0)
            ax.plot(recorded.generations, mean, linestyle="--", linewidth=1.4,
                    label=f"recorded {regime} ({recorded.settings['train_blocks']} blocks)")
    ax.set_xticks(sorted(set(rec.generations) | set(recorded.generations if recorded else [])))
    ax.legend(fontsize=8)


def plot_readouts(axes, rec, recorded=None):
    """The three readouts, one a panel (:func:`panels`: two above, one below): test perplexity
    on real text (the paper's), the writer's perplexity on its own blocks, distinct bigrams of
    the written blocks; one key, in the last panel."""
    axes = list(np.ravel(axes))
    for ax, (metric, label) in zip(axes, [("test_perplexity", "test perplexity (real text)"),
                                          ("own_perplexity", "writer's perplexity, own blocks"),
                                          ("distinct_2", "distinct bigrams (share)")]):
        plot_settings(ax, rec, metric, label, recorded)
    one_legend(axes[:3], keep=-1)


def plot_tail_share(ax, rec):
    """:func:`tail_shares` per setting: mean over seeds with a band, in the settings' colours
    and names of the book's other figures."""
    from ..plotting import REGIME_COLORS, band, regime_label

    for regime in rec.values("regime"):
        band(ax, rec.generations, tail_shares(rec, regime), label=regime_label(regime, rec),
             color=REGIME_COLORS.get(regime), center="mean")
    ax.set_xlabel("generation")
    ax.set_ylabel("share above real 95th pct.")
    ax.set_xticks(rec.generations)
    ax.legend(fontsize=8)


# ----------------------------------------------------------------------------- the recorded run
def load_recorded(root=RECORDS, pattern: str = "lm-*"):
    """(the recorded record, its provenance) of the first folder ``root/pattern`` holding a
    ``metrics.json``, or (None, None) when there is none.  Provenance: ``made.json`` (command,
    machine, date, commit), written by :func:`write_provenance`."""
    import json
    from pathlib import Path

    from ..record import Record

    for folder in sorted(Path(root).glob(pattern)):
        if (folder / "metrics.json").is_file():
            made = folder / "made.json"
            return Record.load(folder), (json.loads(made.read_text()) if made.is_file() else {})
    return None, None


def write_provenance(folder, command: str = RECORDED_COMMAND) -> dict:
    """Write ``folder/made.json``: the command, the machine (CPU, threads), the date and the
    git commit that made the recorded run, and drop everything but the metrics."""
    import datetime
    import json
    import os
    import subprocess
    from pathlib import Path

    import torch

    from .speed import cpu_name

    folder = Path(folder)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    made = {"command": command, "cpu": cpu_name(), "threads": torch.get_num_threads(),
            "cores": os.cpu_count(), "torch": torch.__version__,
            "date": datetime.date.today().isoformat(), "commit": commit}
    (folder / "made.json").write_text(json.dumps(made, indent=1))
    for extra in folder.iterdir():
        if extra.name not in ("metrics.json", "made.json") and extra.is_file():
            extra.unlink()
    return made


def compare_to_record(recorded, recomputed, generations=(0, 1), tolerance=None, **selection):
    """Where a recomputed slice of a recorded run differs from it: a list of lines (empty when
    every metric of :data:`RECORD_TOLERANCE` at ``generations`` of the run ``selection``
    picks lies within its relative tolerance)."""
    tol = tolerance or RECORD_TOLERANCE
    a, b = recorded.one(**selection)["metrics"], recomputed.one(**selection)["metrics"]
    bad = []
    for metric, rel in tol.items():
        for g in generations:
            x, y = float(a[metric][g]), float(b[metric][g])
            if not abs(x - y) <= rel * abs(x):
                bad.append(f"{metric} at generation {g}: recorded {x:.4g}, recomputed {y:.4g} "
                           f"(tolerance {rel:.0%})")
    return bad
