"""The curation chapter's figures of selection and sampling bias: Qiao et al.'s Table 1 beside
this book's runs, and precision against recall under a sampling bias (Alemohammad et al.)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..plotting import profile_note
from .selection import PAPER_TABLE, SELECTION_REGIMES_10D

FLOOR = 1e-3   # a dispersion ratio below this is drawn at it ("collapsed")
COLORS = {"replace": "#c0392b", "accumulate": "#2471a3", "select": "#641e16",
          "accumulate-select": "#1b2631"}
LABELS = {"select": "replace + select", "accumulate-select": "accumulate + select"}


def plot_selection_table(record):
    """The dispersion ratio at the last generation, per family (groups) and regime (colours):
    each seed (dots), their mean (bar), and Qiao et al.'s Table 1 (black diamonds, t = 200).
    Log scale, values below :data:`FLOOR` drawn at it.  Returns the figure."""
    families = record.values("family")
    regimes = [r for r in SELECTION_REGIMES_10D if r in record.values("regime")]
    fig, ax = plt.subplots(figsize=(7.0, 3.4), constrained_layout=True)
    width = 0.8 / len(regimes)
    for i, fam in enumerate(families):
        for j, r in enumerate(regimes):
            x = i + (j - (len(regimes) - 1) / 2) * width
            ends = np.maximum(record.metric("dispersion_ratio", family=fam, regime=r)[:, -1], FLOOR)
            ax.bar(x, ends.mean(), width * 0.9, bottom=0, color=COLORS[r], alpha=0.75,
                   label=LABELS.get(r, r) if i == 0 else None)
            ax.plot(np.full(len(ends), x), ends, ".", color="0.2", ms=4)
            paper = PAPER_TABLE[fam][r]
            ax.plot(x, max(paper, FLOOR), "D", mfc="white", mec="black", ms=5,
                    label="Qiao et al., Table 1" if i == 0 and j == 0 else None)
    ax.set_yscale("log")
    ax.set_ylim(FLOOR * 0.7, 5)
    ax.axhline(1.0, color="0.4", linestyle=":", linewidth=1)
    ax.set_xticks(range(len(families)), [f.replace("-", " ") for f in families])
    ax.set_ylabel(r"dispersion ratio at the last generation")
    ax.legend(ncol=5, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    S = record.settings
    profile_note(fig, record.profile, f"d = {S['dim']}, n = {S['points']}, keep {S['keep']:g}, "
                 f"{int(record.generations[-1])} generations, {S['seeds']} seeds; "
                 f"bottom row: below {FLOOR:g}")
    fig.get_layout_engine().set(rect=(0, 0.05, 1, 0.95))
    return fig


def plot_sampling_bias(record):
    """(a) k-NN precision and (b) recall of each generation's biased samples against fresh real
    points, one colour per sampling bias lambda: mean over seeds (line), min-max over seeds
    (band).  (c) The components' standard deviation against spread * lambda^g (dashed, with the
    fit's shrink).  Returns the figure."""
    from .sampling_bias import component_std_theory

    S = record.settings
    lams = sorted(record.values("bias"), reverse=True)
    g = np.asarray(record.generations)
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, len(lams)))
    fig, axes = plt.subplots(1, 3, figsize=(7.0, 2.8), constrained_layout=True)
    for lam, color in zip(lams, colors):
        for ax, key in zip(axes, ("precision", "recall", "component_std")):
            v = record.metric(key, bias=lam)
            ax.fill_between(g, v.min(0), v.max(0), color=color, alpha=0.2, linewidth=0)
            ax.plot(g, v.mean(0), color=color, label=f"λ = {lam:g}" if key != "component_std" else None)
        th = component_std_theory(g[-1], lam, S["spread"], S["points"] // S["components"])
        axes[2].plot(g, th, color="black", linestyle="--", linewidth=1.0,
                     label="theory" if lam == lams[0] else None)
    for ax, title in zip(axes, ("(a) precision (quality)", "(b) recall (diversity)",
                                "(c) component sd")):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("generation")
    axes[0].set_ylim(0, 1.05)
    axes[1].set_ylim(0, 1.05)
    axes[2].set_yscale("log")
    axes[1].legend(fontsize=8, loc="lower left")
    axes[2].legend(fontsize=8, loc="lower left")
    profile_note(fig, record.profile, f"{S['components']} modes, {S['points']} points per generation, "
                 f"{S['seeds']} seeds, k = {S['k']}")
    fig.get_layout_engine().set(rect=(0, 0.06, 1, 0.94))
    return fig
