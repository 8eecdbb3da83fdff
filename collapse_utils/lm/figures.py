"""The language-model chapter's figures and tables, each read from the record
(``collapse_utils.run("lm", ...)``): Fig. 1b/1c histograms, test perplexity by
generation, tail measures, the three readouts, the protocol ablations, Example 1 and the paper
comparison.  Every ``plot_*`` takes record(s) and returns a Figure begun by
:func:`~collapse_utils.plotting.figure`, whose one footer line names the stand-in and the
profile; the ``_draw_*`` helpers draw one panel."""
from __future__ import annotations

import warnings

import numpy as np

from ..plotting import (PALETTE, REGIME_COLORS, band, figure, figure_legend, generation_colors,
                        log_ticks, regime_label)
from .experiment import PAPER
from .report import (by_seed, findings, report, rise, rises, tail_shares,  # noqa: F401
                     what_ran)

#: the generations of the paper's Fig. 1b/1c
FIG1_GENERATIONS = (0, 1, 2, 3, 5, 9)
TAILS = {"distinct_tokens": "distinct tokens", "distinct_2": "distinct bigrams (share)",
         "rare_coverage": "rare real tokens still used", "repetition": "repeated 4-grams (share)"}
#: the chapter's two settings, as the paper names them
SETTING_NAMES = {"replace": "(b) replace", "keep-real": "(c) keep 10% real"}
PROTOCOL_TITLES = {"repetition_penalty": "(b) replace: repetition penalty",
                   "decoding": "(b) replace: decoding", "regime": "What keep 10% keeps"}
KEEP_LABELS = {"keep-real": "10% of the original blocks", "keep-current": "10% of the current set",
               "replace": "nothing (replace)"}
#: the y-axis names of the metrics the figures draw
METRIC_LABELS = {"test_perplexity": "test perplexity (real text)",
                 "own_perplexity": "writer's perplexity, own blocks",
                 "real_blocks": "original blocks in the training set", **TAILS}
#: the chapter's main run in the protocol figures: on top of the sweep's lines, black, dashed,
#: hollow markers (what lies under it shows through)
MAIN_STYLE = dict(color="black", linestyle="--", linewidth=1.6, marker="o", markersize=8,
                  markerfacecolor="none", markeredgewidth=1.5, zorder=6)
#: the markers of a sweep's values, in order (with the colours of :data:`PALETTE`)
MARKERS = ("s", "^", "D", "v", "P", "X")
#: the recorded larger run: dashed lines with hollow markers in its settings' colours
RECORDED_STYLE = dict(linestyle="--", linewidth=1.4, marker="o", markersize=4,
                      markerfacecolor="white", zorder=4)


def short_label(rec) -> str | None:
    """The short stand-in label of the record (None when the paper's model and data ran)."""
    return rec.fact("label") if rec.stand_in else None


def _first(rec, **sel) -> dict:
    return rec.runs(**sel)[0]


def _setting_name(regime: str, rec=None) -> str:
    return SETTING_NAMES.get(regime) or regime_label(regime, rec)


# ----------------------------------------------------------------------------- panels
def _draw_histogram(ax, rec, title: str = "", generations=FIG1_GENERATIONS, **sel):
    """Fig. 1b/1c: per-sequence perplexity of each generation's training data under the
    generation-0 model, as shares of blocks over log-spaced bins (the first matching run; the
    paper's generations and the run's last)."""
    run = _first(rec, **sel)
    # the paper's generations this run has, and its last one
    gens = sorted({g for g in generations if g in run["generations"]} | {run["generations"][-1]})
    edges = np.asarray(rec.fact("perplexity_bin_edges"))
    hist = run["metrics"]["generated_perplexity_hist"]
    colors = generation_colors(gens, max(run["generations"]))
    for i, (g, color) in enumerate(zip(gens, colors)):   # each narrower: equal bins all show
        counts = np.asarray(hist[g], dtype=float)
        ax.stairs(counts / counts.sum(), edges, color=color, label=f"gen {g}",
                  linewidth=max(3.0 - 0.4 * i, 1.2))
    used = np.flatnonzero(np.sum([hist[g] for g in gens], axis=0))
    ax.set_xlim(edges[max(used[0] - 1, 0)], edges[min(used[-1] + 2, len(edges) - 1)])
    ax.set_xscale("log")
    log_ticks(ax, "x")   # 1-2-5 steps: no overlapping 3x10^0 labels on a narrow span
    ax.set_xlabel("perplexity under generation 0")
    ax.set_ylabel("share of blocks")
    if title:
        ax.set_title(title)


def _setting_style(i: int) -> dict:
    """The line of the ``i``-th setting drawn: each one narrower than the one before, with its
    own marker, so that where settings agree (generation 0 is the same model for all) the later
    line runs inside the earlier one and both show."""
    return dict(linewidth=max(3.4 - 1.8 * i, 1.2), marker="osD^"[i % 4],
                markersize=max(6.5 - 2 * i, 3.5), zorder=3 + i)


def _draw_tail_share(ax, rec):
    """:func:`tail_shares` per setting: mean over seeds with a band, in the settings' colours
    and names of the book's other figures."""
    for i, regime in enumerate(rec.values("regime")):
        band(ax, rec.generations, tail_shares(rec, regime), label=_setting_name(regime, rec),
             color=REGIME_COLORS.get(regime), center="mean", **_setting_style(i))
    ax.set_xlabel("generation")
    ax.set_ylabel("share above real 95th pct.")
    ax.set_xticks(rec.generations)


def _draw_settings(ax, rec, metric: str = "test_perplexity", ylabel: str = "", recorded=None):
    """``metric`` of settings (b) and (c), mean over seeds with a +/- one sd band, and, when
    given, the ``recorded`` run's as dashed lines in the same colours.  A metric that has no
    value at generation 0 (``own_perplexity``) starts at generation 1."""
    with warnings.catch_warnings():   # the mean of generation 0's missing values: no point drawn
        warnings.simplefilter("ignore", RuntimeWarning)
        for i, regime in enumerate(rec.values("regime")):
            band(ax, rec.generations, np.asarray(rec.metric(metric, regime=regime), dtype=float),
                 label=_setting_name(regime, rec), color=REGIME_COLORS.get(regime),
                 center="mean", **_setting_style(i))
        for regime in recorded.values("regime") if recorded is not None else []:
            mean = np.nanmean(np.asarray(recorded.metric(metric, regime=regime), dtype=float), 0)
            ax.plot(recorded.generations, mean, color=REGIME_COLORS.get(regime),
                    label=f"recorded {_setting_name(regime, recorded)} "
                          f"({recorded.settings['train_blocks']} blocks)", **RECORDED_STYLE)
    ax.set_xlabel("generation")
    ax.set_ylabel(ylabel or METRIC_LABELS.get(metric, metric.replace("_", " ")))
    ax.set_xticks(sorted(set(rec.generations) | set(recorded.generations if recorded else [])))


def _recorded_note(recorded) -> str:
    """The footer's words for the dashed lines: the recorded run's own model (its stand-in's
    label, or the model that ran) and sizes, since the footer's STAND-IN names the live run's."""
    if recorded is None:
        return ""
    model = short_label(recorded) or recorded.fact("model_name")
    s = recorded.settings
    return (f"dashed: the recorded run ({model}, {s['train_blocks']} training blocks, "
            f"{s['seeds']} seeds, generations 0-{max(recorded.generations)})")


def _notes(*parts) -> str:
    return "; ".join(p for p in parts if p)


# ----------------------------------------------------------------------------- figures
def plot_generated_perplexity(rec, generations=FIG1_GENERATIONS):
    """Fig. 1b/1c: the perplexity histograms of settings (b) and (c) side by side (one key for
    both), and below them the tail share of both settings (:func:`tail_shares`)."""
    fig, axes = figure(rec, 3, height=3.0,
                       title="Perplexity of the generated data under generation 0",
                       note=f"histograms: seed {rec.seed}; tail share: mean over seeds, "
                            "band +/- 1 sd")
    for ax, regime in zip(axes[:2], ("replace", "keep-real")):
        _draw_histogram(ax, rec, _setting_name(regime, rec), generations, regime=regime)
    axes[0].legend(ncol=2)
    _draw_tail_share(axes[2], rec)
    axes[2].set_title("tail share")
    axes[2].legend()
    return fig


def plot_histograms_3d(rec, regime: str = "replace", **sel):
    """The supplement's 3-D view of one setting: one perplexity histogram per generation along
    the depth axis (the first matching run)."""
    from matplotlib.collections import PolyCollection

    fig, ax = figure(rec, 1, height=4.4, width=6.0, projection="3d",
                     title=f"{_setting_name(regime, rec)}: perplexity of each generation's data",
                     note=f"seed {rec.seed}; scored by generation 0")
    run = _first(rec, regime=regime, **sel)
    gens = run["generations"]
    hist = np.asarray([run["metrics"]["generated_perplexity_hist"][g] for g in gens], dtype=float)
    used = np.flatnonzero(hist.sum(0))   # the bins some generation fills, and one either side
    cut = slice(max(used[0] - 1, 0), min(used[-1] + 2, hist.shape[1]))
    edges = np.log10(np.asarray(rec.fact("perplexity_bin_edges")))
    centers = ((edges[1:] + edges[:-1]) / 2)[cut]
    for g, counts, color in zip(gens, hist, generation_colors(gens, max(gens))):
        share = (counts / counts.sum())[cut]
        ax.plot(centers, np.full_like(centers, g), share, color=color)
        verts = [list(zip(np.r_[centers[0], centers, centers[-1]], np.r_[0.0, share, 0.0]))]
        ax.add_collection3d(PolyCollection(verts, facecolors=[color], alpha=0.35), zs=g, zdir="y")
    ax.set_xlabel("log10 perplexity")
    ax.set_ylabel("generation")
    ax.set_zlabel("share of blocks")
    ax.set_yticks(gens)
    ax.set_box_aspect(None, zoom=0.94)   # the axis labels inside the figure
    return fig


def plot_test_perplexity(rec, recorded=None):
    """Test perplexity on real text by generation: settings (b) and (c), mean and +/- one
    standard deviation over seeds, the ``recorded`` run's (dashed) when given, and the
    pretrained model's, not fine-tuned (dotted)."""
    fig, ax = figure(rec, 1, height=3.8, title="Test perplexity by generation",
                     note=_notes("mean over seeds, band +/- 1 sd", _recorded_note(recorded)))
    _draw_settings(ax, rec, "test_perplexity", recorded=recorded)
    ax.axhline(rec.fact("zero_shot_perplexity"), color=PALETTE[7], linestyle=":",
               label="pretrained, not fine-tuned")
    ax.legend()
    return fig


def plot_tails(rec):
    """The four tail measures of the generated blocks (generation 0: the real blocks), one a
    panel, one key above them."""
    fig, axes = figure(rec, grid=(2, 2), height=2.5, sharex=True,
                       title="Tail measures of the generated blocks",
                       note="mean over seeds, band +/- 1 sd; generation 0: the real blocks")
    axes = list(axes.ravel())
    for ax, (metric, ylabel) in zip(axes, TAILS.items()):
        _draw_settings(ax, rec, metric, ylabel)
    for ax in axes[:2]:
        ax.set_xlabel("")   # a shared axis: named once, under the last row
        ax.tick_params(labelbottom=False)
    figure_legend(fig, axes)
    return fig


def plot_readouts(rec, recorded=None):
    """The three readouts, one a panel (two above, one below): test perplexity on real text
    (the paper's), the writer's perplexity on its own blocks, distinct bigrams of the written
    blocks; one key above them."""
    fig, axes = figure(rec, 3, height=2.8, title="Three readouts of each generation",
                       note=_notes("mean over seeds, band +/- 1 sd", _recorded_note(recorded)))
    for ax, metric in zip(axes, ("test_perplexity", "own_perplexity", "distinct_2")):
        _draw_settings(ax, rec, metric, recorded=recorded)
    figure_legend(fig, axes, ncol=2)
    return fig


def baseline(main, sweep, metric: str, regime: str = "replace") -> np.ndarray:
    """``metric`` of setting (b) in a protocol figure (or of ``regime``): the main record's run
    of the sweep's seed, over the sweep's generations.  The sweeps leave out the paper's own
    choice (penalty 1.0, beam search, keep-real), since that run is this one
    (``tests/test_lm.py`` checks it)."""
    run = main.one(regime=regime, seed=sweep.seed)
    return np.asarray(run["metrics"][metric][: len(sweep.generations)], dtype=float)


def _main_label(main, by: str, main_regime: str) -> str:
    if by == "regime":
        value = KEEP_LABELS.get(main_regime, main_regime)
    else:
        value = main.settings[by]
        value = value[0] if isinstance(value, list) else value
    return f"{value}: the chapter's main run"


def _draw_protocol(ax, sweep, by: str, metric: str, ylabel: str = "", main=None,
                   main_regime: str = "replace", nudge: float = 0.04, **sel):
    """One protocol choice (``by``: repetition_penalty, decoding or regime) against
    generation, one line per value of the sweep (mean over its seeds, a band when it has
    several) in the colours and markers of :data:`PALETTE` / :data:`MARKERS`, and ``main``'s
    ``main_regime`` run (:func:`baseline`) on top in :data:`MAIN_STYLE`.  Each line is
    nudged sideways by ``nudge`` generations from the next, so that equal values (generation
    0 is the same real data for all) stay visible."""
    values = sweep.values(by)
    n = len(values) + (main is not None)
    shifts = (np.arange(n) - (n - 1) / 2) * nudge
    x = np.asarray(sweep.generations, dtype=float)
    for i, value in enumerate(values):
        y = np.asarray(sweep.metric(metric, **{by: value}, **sel), dtype=float)
        label = KEEP_LABELS.get(value, value) if by == "regime" else str(value)
        band(ax, x + shifts[i], y, label=label, color=PALETTE[i % len(PALETTE)], center="mean",
             marker=MARKERS[i % len(MARKERS)], markersize=6, zorder=3)
    if main is not None:
        ax.plot(x + shifts[-1], baseline(main, sweep, metric, main_regime),
                label=_main_label(main, by, main_regime), **MAIN_STYLE)
    ax.set_xticks(sweep.generations)
    ax.set_xlim(x[0] - 0.25, x[-1] + 0.25)
    ax.set_xlabel("generation")
    ax.set_ylabel(ylabel or METRIC_LABELS.get(metric, metric.replace("_", " ")))


def plot_protocol(sweep, by: str, metrics=("test_perplexity",), main=None,
                  main_regime: str = "replace", title: str | None = None, **sel):
    """One protocol choice of the public code against the chapter's setting, one panel per
    metric: ``sweep`` a record that varies ``by`` (repetition_penalty, decoding or regime);
    ``metrics``: names, or (name, y label) pairs; ``main``: the chapter's main record, whose
    ``main_regime`` run of the sweep's seed (:func:`baseline`) is drawn on top, black and
    dashed.  One key above the panels."""
    metrics = [(m, "") if isinstance(m, str) else tuple(m) for m in metrics]
    seeds = len(sweep.runs(**{by: sweep.values(by)[0]}, **sel))
    fig, axes = figure(
        [sweep] + ([main] if main is not None else []), grid=(1, len(metrics)), height=3.0,
        title=PROTOCOL_TITLES.get(by, by) if title is None else title,
        note=_notes(f"seed {sweep.seed}" if seeds == 1 else
                    f"mean over {seeds} seeds, band +/- 1 sd",
                    "lines nudged sideways so that equal values stay visible"))
    axes = list(axes.ravel())
    for ax, (metric, ylabel) in zip(axes, metrics):
        _draw_protocol(ax, sweep, by, metric, ylabel, main, main_regime, **sel)
    figure_legend(fig, axes)
    return fig


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
#: the command that makes the recorded run (on this book's 2-core CPU about 1.5-2.5 hours:
#: 57 generation-runs of about 90 s; resumable, so it may be made in parts), then the line that
#: writes its provenance beside it.  64 blocks is the issue's least size at which 10% real is
#: six blocks; ``--gen-batch 72`` decodes the 64 blocks and the example in one batch
RECORDED_COMMAND = (
    "python -m collapse_utils run lm --profile default --train-blocks 64 --generations 9 "
    "--seeds 3 --gen-batch 72 --resume --out book/records/lm-64")
RECORDED_PROVENANCE = ("python -c \"from collapse_utils.lm.figures import write_provenance; "
                       "write_provenance('book/records/lm-64')\"")
#: how far a recomputed slice of a recorded run may lie from it (relative): the same code and
#: seed on another CPU differs by the rounding of bf16 products, not by more
RECORD_TOLERANCE = {"test_perplexity": 0.03, "generated_perplexity_median": 0.05,
                    "distinct_tokens": 0.10}


def findings_table(rec, numbers: dict | None = None, recorded=None):
    """:func:`findings` as a table (finding, shown here, measured), for the chapter's box: a
    Styler that shows every cell whole.  With a ``recorded`` run, a last column says whether it
    shows each finding (its measurements are in its own table, in its section)."""
    import pandas as pd

    verdict = {True: "shown", False: "not shown"}
    rows = [{"the paper's finding": f["finding"], "this run": verdict[bool(f["shown"])],
             "measured": f["measured"]} for f in findings(rec, numbers)]
    if recorded is not None:
        for row, f in zip(rows, findings(recorded)):
            row["recorded run"] = verdict[bool(f["shown"])]
    frame = pd.DataFrame(rows).set_index("the paper's finding")
    return frame.style.set_properties(**{"text-align": "left", "white-space": "normal"})


# ----------------------------------------------------------------------------- the recorded run
def load_recorded(root=RECORDS, pattern: str = "lm-*"):
    """(the recorded record, its provenance) of the first folder ``root/pattern`` holding a
    ``metrics.json``, or (None, None) when there is none.  Provenance: ``made.json`` (command,
    machine, date, commit), written by :func:`write_provenance`.  A relative ``root`` is read
    from the repository's root or, as the book's notebooks run, from ``book/`` itself."""
    import json
    from pathlib import Path

    from ..record import Record

    root = Path(root)
    if not root.is_dir() and not root.is_absolute() and root.parts[:1] == ("book",):
        root = Path(*root.parts[1:])   # the notebook's working directory is book/
    for folder in sorted(root.glob(pattern)):
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
