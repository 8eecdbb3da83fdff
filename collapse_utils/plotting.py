"""One figure style for the whole book.

* generations are coloured along one colormap (:data:`GENERATION_CMAP`);
* a theory curve is a thin black dashed line (:func:`theory`);
* a simulation over seeds or chains is a centre line (median or mean) with a
  shaded band over runs (10-90% quantiles, or +/- one standard deviation):
  :func:`band`;
* each data regime has one colour everywhere (:data:`REGIME_COLORS`);
* a stand-in model or data set is named in the title (:func:`label_stand_in`).
"""
from __future__ import annotations

import textwrap
from typing import Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

GENERATION_CMAP = "viridis"
REGIME_COLORS = {
    "replace": "#c0392b",
    "accumulate": "#2471a3",
    "accumulate-subsample": "#7d3c98",
    "keep-real": "#d68910",
    "real": "#1e8449",
}
THEORY_STYLE = dict(color="black", linestyle="--", linewidth=1.2, zorder=5)

STYLE = {
    "figure.figsize": (6.4, 3.8),
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
    "image.cmap": GENERATION_CMAP,
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


def label_stand_in(ax, title: str, stand_in: str | None, width: int = 70) -> None:
    """Set ``title``, marked as a stand-in run when ``stand_in`` is not None.

    The stand-in sentence is wrapped to ``width`` characters so it fits the axes.
    """
    if not stand_in:
        ax.set_title(title)
        return
    note = textwrap.fill(f"[STAND-IN: {stand_in}]", width=width)
    ax.set_title(f"{title}\n{note}", fontsize=9)


def profile_note(fig, profile: str, extra: str = "") -> None:
    """A small note in the figure's bottom-right corner saying which profile produced it.

    Call it last: it lays the figure out (``tight_layout``) leaving a strip at the
    bottom for the note, so the note never covers an axis label.
    """
    if not fig.get_constrained_layout():
        fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.text(0.995, 0.005, f"profile: {profile}{' · ' + extra if extra else ''}",
             ha="right", va="bottom", fontsize=7, color="0.4")


def draw_generational_loop(ax=None):
    """The recursion of learning with generational data, drawn as a diagram.

    Real data D_0 trains model 1; each model's samples (mixed with older or real
    data by weights alpha, beta, gamma) train the next one.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(8.5, 2.6))
    ax.set_axis_off()
    ax.set_xlim(0, 10.5)
    ax.set_ylim(0, 3)
    box = dict(boxstyle="round,pad=0.35", linewidth=1.2)
    nodes = [(0.7, "$D_0$\nreal data", REGIME_COLORS["real"])]
    for k in range(1, 4):
        nodes.append((0.7 + 2.6 * k - 1.3, f"model\n$p_{{\\theta_{k}}}$", "#555555"))
        nodes.append((0.7 + 2.6 * k, f"$D_{k}$", generation_colors([k], 4)[0]))
    for x, text, color in nodes:
        ax.text(x, 1.7, text, ha="center", va="center", fontsize=10,
                bbox={**box, "facecolor": "white", "edgecolor": color})
    arrow = dict(arrowstyle="-|>", color="0.3", lw=1.2)
    for (x0, _, _), (x1, t1, _) in zip(nodes[:-1], nodes[1:]):
        verb = "fit" if t1.startswith("model") else "sample"
        ax.annotate("", xy=(x1 - 0.55, 1.7), xytext=(x0 + 0.55, 1.7), arrowprops=arrow)
        ax.text((x0 + x1) / 2, 2.05, verb, ha="center", fontsize=8, color="0.3")
    ax.text(10.0, 1.7, "...", ha="center", va="center", fontsize=14)
    for k in (2, 3):  # gamma: original data can flow into later generations
        x_to = 0.7 + 2.6 * k
        ax.annotate("", xy=(x_to, 1.3), xytext=(0.7, 1.3),
                    arrowprops=dict(arrowstyle="-|>", color=REGIME_COLORS["real"], lw=0.9,
                                    linestyle=":", connectionstyle=f"arc3,rad={0.12 + 0.05 * k}"))
    ax.text(5.3, 0.15, r"$D_{i+1} \sim \alpha_i\,p_{\theta_{i+1}} + \beta_i\,p_i + \gamma_i\,p_0$"
            r"   (replace: $\beta_i=\gamma_i=0$)", ha="center", fontsize=10)
    return ax
