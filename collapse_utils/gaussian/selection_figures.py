"""The selection-bias figure of the curation chapter: the 1-D Gaussian against its recursion."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..plotting import REGIME_COLORS, figure, log_ticks, regime_label, theory
from .selection import SELECTION_CHOICES, selection_theory

#: the selection regimes' colours, as in every figure of the book (plotting.REGIME_COLORS)
SELECTION_COLORS = {r: REGIME_COLORS[r] for r in ("replace", "accumulate", "select",
                                                 "accumulate-select")}
SELECTION_LABELS = {"select": "replace + select", "accumulate-select": "accumulate + select"}
FLOOR = 1e-6   # the lowest dispersion ratio drawn (replace + select falls past it at once)


def selection_label(regime: str) -> str:
    return SELECTION_LABELS.get(regime, regime_label(regime))


def plot_gaussian_selection(record, *more):
    """(a) The dispersion ratio E S_g^2 / sigma^2 of the four regimes of ``record`` at its first
    ``keep``: mean over chains (line), 10-90% of the chains (band), the recursion (dashed).
    (b) accumulate + select at every ``keep`` of ``record`` and of ``more`` (records of the same
    M and generations) against the recursion, log-log: the power law g^-(1 - kappa).
    Returns the figure."""
    S = record.settings
    M, G = S["M"], int(record.generations[-1])
    keeps = list(record.values("keep"))
    sources = [(record, k) for k in keeps] + [(r, k) for r in more for k in r.values("keep")]
    g = np.asarray(record.generations)
    fig, (a, b) = figure(record, 2, height=3.3,
                         note=f"M = {M}, {S['chains']} chains; dashed: the recursion")
    for r in SELECTION_CHOICES:
        sel = dict(regime=r, keep=keeps[0])
        mean = np.maximum(record.metric("dispersion_ratio_mean", **sel)[0], FLOOR / 10)
        lo = np.maximum(record.metric("dispersion_ratio_q10", **sel)[0], FLOOR / 10)
        hi = np.maximum(record.metric("dispersion_ratio_q90", **sel)[0], FLOOR / 10)
        color = SELECTION_COLORS[r]
        a.fill_between(g, lo, hi, color=color, alpha=0.18, linewidth=0)
        a.plot(g, mean, color=color, label=selection_label(r))
        theory(a, g, np.maximum(selection_theory(G, M, keeps[0], r), FLOOR / 10),
               label="recursion" if r == "replace" else None)
    a.set_yscale("log")
    a.set_ylim(FLOOR, 2.0)
    a.set_xlabel("generation")
    a.set_ylabel(r"dispersion ratio $S_g^2/\sigma^2$")
    a.set_title(f"(a) keep {keeps[0]:g} of the draws")
    a.legend(loc="lower left")
    # accumulate + select's hue, lighter for a milder selection (a larger share kept)
    ranks = {k: i for i, k in enumerate(sorted({k for _, k in sources}))}
    shades = plt.get_cmap("Blues")(np.linspace(0.85, 0.45, max(len(ranks), 2)))
    x = g[1:]
    for rec, k in sources:
        color = shades[ranks[k]]
        sel = dict(regime="accumulate-select", keep=k)
        b.fill_between(x, rec.metric("dispersion_ratio_q10", **sel)[0][1:],
                       rec.metric("dispersion_ratio_q90", **sel)[0][1:], color=color, alpha=0.2,
                       linewidth=0)
        b.plot(x, rec.metric("dispersion_ratio_mean", **sel)[0][1:], color=color,
               label=f"keep {k:g}")
        theory(b, x, selection_theory(G, M, k, "accumulate-select")[1:], label=None)
    b.set_xscale("log")
    b.set_yscale("log")
    log_ticks(b)
    b.set_xlabel("generation")
    b.set_title("(b) accumulate + select")
    b.legend(loc="lower left")
    return fig
