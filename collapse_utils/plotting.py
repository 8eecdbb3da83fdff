"""One figure style for the whole book.

* generations are coloured along one colormap (:data:`GENERATION_CMAP`);
* a theory curve is a thin black dashed line (:func:`theory`);
* a simulation over seeds or chains is a centre line (median or mean) with a
  shaded band over runs (10-90% quantiles, or +/- one standard deviation):
  :func:`band`;
* each data regime has one colour everywhere (:data:`REGIME_COLORS`), from a palette that
  reads for colour-blind readers (:data:`PALETTE`, also matplotlib's "C0"-"C7");
* every figure starts with :func:`figure`: drawn at the page's width, and one footer line
  under its panels names the stand-in that ran (a short label; its full sentence is once in
  the text), the profile and the run's sizes;
* :func:`metric_by_generation` draws a record's metric with one band per regime.
"""
from __future__ import annotations

import textwrap
from typing import Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

GENERATION_CMAP = "viridis"
#: Okabe and Ito's colour-blind-safe palette (2008), the order of matplotlib's "C0"-"C7" here:
#: blue, orange, bluish green, vermillion, reddish purple, sky blue, dark yellow, grey
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#9A7B00", "#555555")
REGIME_COLORS = {
    "replace": "#D55E00",
    "accumulate": "#0072B2",
    "accumulate-subsample": "#56B4E9",
    "keep-real": "#009E73",
    "verify": "#CC79A7",
    "self-correct": "#9A7B00",
    "real": "#555555",
    # the selection regimes (Qiao et al.): drawn with replace and accumulate, never with verify
    "select": "#CC79A7",
    "accumulate-select": "#56B4E9",
}
THEORY_STYLE = dict(color="black", linestyle="--", linewidth=1.2, zorder=5)

#: The widest a figure is drawn, in inches.  The page shows figures in a column about 672 CSS px
#: wide at desktop width, and the inline backend renders at ``figure.dpi`` = 110 px per inch
#: (no retina), so a figure of at most 7.2 in (about 800 px with ``bbox_inches="tight"``) is
#: shown at 84% of its size or more, and text of :data:`MIN_FONT_PT` or more reads at about
#: 7 pt x 110/72 px/pt x 0.84 = 8.98, i.e. 9 CSS px.  tests/test_figures_legible.py holds
#: the figures to it.
PAGE_WIDTH = 7.0
MAX_FIGURE_WIDTH = 7.25
#: the smallest type in any figure, in points (tick labels, legends, notes)
MIN_FONT_PT = 7

STYLE = {
    "figure.figsize": (6.4, 3.8),
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 8.5,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
    "image.cmap": GENERATION_CMAP,
    "axes.prop_cycle": mpl.cycler(color=list(PALETTE)),
}


def use_style() -> None:
    """Apply the book's matplotlib style (called on import of this module)."""
    mpl.rcParams.update(STYLE)


use_style()


def generation_colors(generations: Sequence[int] | int, last: int | None = None) -> list:
    """One colour per generation along :data:`GENERATION_CMAP` (0 dark, ``last`` bright)."""
    gens = list(range(generations)) if isinstance(generations, int) else list(generations)
    last = max(max(gens, default=1), 1) if last is None else max(last, 1)
    cmap = mpl.colormaps[GENERATION_CMAP]
    return [cmap(0.9 * g / last) for g in gens]


def generation_colorbar(ax, last: int, label: str = "generation"):
    """A colourbar for :func:`generation_colors` beside ``ax``."""
    norm = mpl.colors.Normalize(0, last / 0.9)
    sm = mpl.cm.ScalarMappable(norm=norm, cmap=GENERATION_CMAP)
    cbar = ax.figure.colorbar(sm, ax=ax, label=label)
    cbar.ax.set_ylim(0, last)
    return cbar


def band(ax, x, samples, *, label=None, color=None, center="median", spread=None,
         q=(0.1, 0.9), alpha=0.25, **line_kw):
    """Draw the centre of ``samples`` (shape: runs x len(x)) and a shaded band over runs.

    ``center`` is "median" or "mean"; ``spread`` is "quantile" (the ``q`` quantiles,
    the default with the median) or "std" (+/- one standard deviation, the default
    with the mean).
    """
    s = np.asarray(samples, dtype=float)
    if s.ndim == 1:
        s = s[None, :]
    if center not in ("median", "mean"):
        raise ValueError(f"center must be 'median' or 'mean'; got {center!r}")
    spread = spread or ("quantile" if center == "median" else "std")
    if spread not in ("quantile", "std"):
        raise ValueError(f"spread must be 'quantile' or 'std'; got {spread!r}")
    mid = np.nanmedian(s, axis=0) if center == "median" else np.nanmean(s, axis=0)
    if spread == "quantile":
        lo, hi = np.nanquantile(s, q[0], axis=0), np.nanquantile(s, q[1], axis=0)
    else:
        sd = np.nanstd(s, axis=0)
        lo, hi = mid - sd, mid + sd
    (line,) = ax.plot(x, mid, label=label, color=color, **line_kw)
    if s.shape[0] > 1:
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=alpha, linewidth=0)
    return line


def theory(ax, x, y, label="theory", **kw):
    """Draw a theory curve in the book's theory style."""
    return ax.plot(x, y, label=label, **{**THEORY_STYLE, **kw})[0]


REGIME_LABELS = {
    "replace": "replace",
    "accumulate": "accumulate",
    "accumulate-subsample": "accumulate-subsample",
    "keep-real": "keep 10% real",
    "verify": "verify",
    "self-correct": "self-correct",
}


def regime_label(name: str, record=None) -> str:
    """How a regime is named in legends (keep-real with the record's real share)."""
    if name == "keep-real" and record is not None and "real_fraction" in record.settings:
        return f"keep {100 * float(record.settings['real_fraction']):g}% real"
    return REGIME_LABELS.get(name, name)


def short_stand_in(record) -> str | None:
    """The short label of the stand-in that produced ``record`` (None when the paper's model and
    data ran): the record's ``label`` fact where its family records one, else the first words of
    its stand-in sentence.  ``record`` may be a list: the first stand-in among them."""
    for rec in record if isinstance(record, (list, tuple)) else [record]:
        if getattr(rec, "stand_in", None):
            label = rec.facts.get("label") if isinstance(rec.facts, dict) else None
            return label or textwrap.shorten(rec.stand_in, 60, placeholder="...")
    return None


#: the size of a figure's footer line (profile, stand-in, sizes): 8 pt reads at about 10.7 CSS px
NOTE_PT = 8


def figure(record=None, n: int = 1, *, note: str = "", stand_in: str | None = None,
           title: str = "", height: float = 3.2, width: float = PAGE_WIDTH, grid=None,
           **subplot_kw):
    """The book's one way to start a figure: ``(fig, axes)`` at the page's width, laid out by
    matplotlib's constrained layout (no call at the end), with one footer line under the
    panels that says what produced it: the stand-in's short label when one ran, the profile of
    ``record`` and ``note`` (the run's sizes, what the bands are).

    ``record``: a :class:`~collapse_utils.record.Record`, a list of them (the first one's
    profile, the first stand-in among them), a profile name, or None (no footer but ``note``).
    ``n``: panels as :func:`panels` lays them out (one Axes when 1, none when 0); ``grid``:
    (rows, columns) instead, returned as an array of that shape; ``height``: of one row,
    inches; ``title``: the figure's title; ``stand_in``: the label, where the record's own
    (:func:`short_stand_in`) is not the one to show; ``subplot_kw``: passed to every panel
    (``projection="3d"``, ``sharex``...)."""
    if grid is not None:
        rows, cols = grid
        share = {k: subplot_kw.pop(k) for k in ("sharex", "sharey") if k in subplot_kw}
        fig, axes = plt.subplots(rows, cols, figsize=(width, rows * height), squeeze=False,
                                 layout="constrained", subplot_kw=subplot_kw or None, **share)
    elif n == 0:
        fig, axes = plt.figure(figsize=(width, height), layout="constrained"), None
    elif n == 1:
        fig = plt.figure(figsize=(width, height), layout="constrained")
        axes = fig.add_subplot(**subplot_kw)
    else:
        fig, axes = panels(n, height, width, **subplot_kw)
        fig.set_layout_engine("constrained")
    if title:
        fig.suptitle(title)
    label = stand_in if stand_in is not None else short_stand_in(record)
    profile = getattr(record[0] if isinstance(record, (list, tuple)) else record, "profile",
                      record)
    parts = ([f"STAND-IN: {label}"] if label else []) + \
        ([f"profile: {profile}"] if isinstance(profile, str) and profile else []) + \
        ([note] if note else [])
    if parts:
        line = " · ".join(parts)
        chars = int(width * 72 / (0.6 * NOTE_PT))   # about the characters of one line
        fig.text(0.005, 0.0, textwrap.fill(line, chars), ha="left", va="top", fontsize=NOTE_PT,
                 color="0.25")   # under the panels: the saved image (bbox "tight") grows to it
    return fig, axes


def figure_legend(fig, axes, ncol: int = 3, last: Sequence[str] = ()) -> None:
    """One legend for every panel of ``fig``, above the panels (one entry per label; the labels
    in ``last``, e.g. a theory, at the end), so that no legend covers a panel's data.  Above,
    not below: below, the saved image's tight box would put it on the footer line.  A figure's
    title (:func:`figure`'s ``title``) heads the legend: a legend outside the panels and a
    figure title share the figure's top edge, and matplotlib (3.7 to 3.11) draws them over
    each other."""
    handles = {}
    for ax in np.ravel(axes):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    labels = [lab for lab in handles if lab not in last] + [lab for lab in last if lab in handles]
    head, kw = getattr(fig, "_suptitle", None), {}   # get_suptitle(): from matplotlib 3.8
    if head is not None and head.get_text():
        kw = {"title": head.get_text(), "title_fontsize": head.get_fontsize()}
        head.set_visible(False)
        head.set_in_layout(False)
    fig.legend([handles[lab] for lab in labels], labels, loc="outside upper center",
               ncol=min(ncol, len(labels)), **kw)


def whole_generations(ax) -> None:
    """Ticks of ``ax``'s x axis on whole numbers only (generations: no 2.5)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def panels(n: int, height: float = 3.2, width: float = PAGE_WIDTH, **subplot_kw):
    """(figure, axes) of ``n`` panels at the page's width: one or two in a row, three in two
    rows (two above, one full-width below) and four in a 2 x 2 grid, so that no panel is
    narrower than half the page; ``height``: of one row, in inches."""
    if n == 3:
        fig = plt.figure(figsize=(width, 2 * height))
        grid = fig.add_gridspec(2, 2)
        axes = [fig.add_subplot(grid[0, 0], **subplot_kw),
                fig.add_subplot(grid[0, 1], **subplot_kw),
                fig.add_subplot(grid[1, :], **subplot_kw)]
        return fig, np.array(axes, dtype=object)
    rows = 2 if n == 4 else 1
    fig, axes = plt.subplots(rows, n // rows, figsize=(width, rows * height), squeeze=False,
                             subplot_kw=subplot_kw or None)
    return fig, axes.ravel() if n != 4 else axes


def log_ticks(ax, axis: str = "y") -> None:
    """Readable ticks on a log axis: decades when the span is wide, 1-2-5 steps when narrow."""
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    get = ax.get_ylim if axis == "y" else ax.get_xlim
    lo, hi = get()
    target = ax.yaxis if axis == "y" else ax.xaxis
    if lo > 0 and hi / lo < 100:
        target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        fmt = ScalarFormatter()
        fmt.set_scientific(False)
        target.set_major_formatter(fmt)
        target.set_minor_formatter(NullFormatter())
    else:
        target.set_major_locator(LogLocator(base=10))


def metric_by_generation(ax, record, metric: str, *, by: str | None = "regime", theory_curve=None,
                         center: str = "median", spread: str | None = None, log: bool = False,
                         colors: dict | None = None, ylabel: str | None = None, **selection):
    """A metric against generation, one line and band per value of axis ``by``.

    The band runs over every matching run (seeds; or chains when the metric holds
    one value per chain).  ``theory_curve`` is ``(x, y, label)`` or a list of them,
    drawn in the theory style.  Returns the lines by value of ``by``.
    """
    gens = record.generations
    groups = record.values(by) if by else [None]
    lines = {}
    for value in groups:
        sel = dict(selection, **({by: value} if by else {}))
        y = record.metric(metric, **sel)
        if y.ndim == 3:  # (runs, generations, chains): a band over runs and chains
            y = np.moveaxis(y, 2, 1).reshape(-1, y.shape[1])
        color = (colors or {}).get(value, REGIME_COLORS.get(value) if by == "regime" else None)
        label = regime_label(value, record) if by == "regime" else (None if value is None else str(value))
        lines[value] = band(ax, gens, y, label=label, color=color, center=center, spread=spread)
    curves = theory_curve if isinstance(theory_curve, list) else ([theory_curve] if theory_curve else [])
    for x, y, label in curves:
        theory(ax, x, y, label=label)
    ax.set_xlabel("generation")
    ax.set_ylabel(ylabel or metric.replace("_", " "))
    if log:
        ax.set_yscale("log")
        log_ticks(ax)
    if len(lines) > 1 or curves:
        ax.legend()
    return lines


def draw_generational_loop(ax=None):
    """The recursion of learning with generational data, drawn as a diagram.

    Real data D_0 trains model 1; each model's samples (mixed with older or real
    data by weights alpha, beta, gamma) train the next one.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(PAGE_WIDTH, 2.7))
    ax.set_axis_off()
    ax.set_xlim(0, 10.5)
    ax.set_ylim(0, 3)
    box = dict(boxstyle="round,pad=0.35", linewidth=1.2)
    nodes = [(0.7, "$D_0$\nreal data", REGIME_COLORS["real"])]
    for k in range(1, 4):
        nodes.append((0.7 + 2.6 * k - 1.3, f"model\n$p_{{\\theta_{k}}}$", "#555555"))
        nodes.append((0.7 + 2.6 * k, f"$D_{k}$", generation_colors([k], 4)[0]))
    for x, text, color in nodes:
        ax.text(x, 1.7, text, ha="center", va="center", fontsize=9.5,
                bbox={**box, "facecolor": "white", "edgecolor": color})
    arrow = dict(arrowstyle="-|>", color="0.3", lw=1.2)
    for (x0, _, _), (x1, t1, _) in zip(nodes[:-1], nodes[1:]):
        verb = "fit" if t1.startswith("model") else "sample"
        ax.annotate("", xy=(x1 - 0.55, 1.7), xytext=(x0 + 0.55, 1.7), arrowprops=arrow)
        ax.text((x0 + x1) / 2, 2.3, verb, ha="center", fontsize=8, color="0.3")
    ax.text(10.0, 1.7, "...", ha="center", va="center", fontsize=14)
    for k in (2, 3):  # gamma: original data can flow into later generations
        x_to = 0.7 + 2.6 * k
        ax.annotate("", xy=(x_to, 1.3), xytext=(0.7, 1.3),
                    arrowprops=dict(arrowstyle="-|>", color=REGIME_COLORS["real"], lw=0.9,
                                    linestyle=":", connectionstyle=f"arc3,rad={0.12 + 0.05 * k}"))
    ax.text(5.3, 0.15, r"$D_{i+1} \sim \alpha_i\,p_{\theta_{i+1}} + \beta_i\,p_i + \gamma_i\,p_0$"
            r"   (replace: $\beta_i=\gamma_i=0$)", ha="center", fontsize=10)
    return ax
