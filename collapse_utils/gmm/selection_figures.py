"""The curation chapter's figures of selection and sampling bias: Qiao et al.'s Table 1 beside
this book's runs, and precision against recall under a sampling bias (Alemohammad et al.)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..plotting import REGIME_COLORS, figure, log_ticks
from .selection import PAPER_TABLE, SELECTION_REGIMES_10D

FLOOR = 1e-3   # a dispersion ratio below this is drawn at it ("collapsed")
#: the plain regimes in their colours everywhere; each selecting one in a lighter colour of its
#: own (Okabe-Ito: reddish purple beside replace's vermillion, sky blue beside accumulate's
#: blue), and hatched (:data:`HATCHES`), so that the four read apart without colour vision too
COLORS = {r: REGIME_COLORS[r] for r in ("replace", "accumulate", "select", "accumulate-select")}
HATCHES = {"select": "///", "accumulate-select": "///"}
LABELS = {"select": "replace + select", "accumulate-select": "accumulate + select"}


def plot_selection_table(record):
    """The dispersion ratio at the last generation, per family (groups) and regime (colours):
    each seed (dots), their mean (bar), and Qiao et al.'s Table 1 (black diamonds, t = 200).
    Log scale, values below :data:`FLOOR` drawn at it.  Returns the figure."""
    families = record.values("family")
    regimes = [r for r in SELECTION_REGIMES_10D if r in record.values("regime")]
    S = record.settings
    fig, ax = figure(record, height=3.4,
                     note=f"d = {S['dim']}, n = {S['points']}, keep {S['keep']:g}, "
                          f"{int(record.generations[-1])} generations, {S['seeds']} "
                          f"seed{'s' if S['seeds'] != 1 else ''}; "
                          f"bottom row: below {FLOOR:g}")
    width = 0.8 / len(regimes)
    for i, fam in enumerate(families):
        for j, r in enumerate(regimes):
            x = i + (j - (len(regimes) - 1) / 2) * width
            ends = np.maximum(record.metric("dispersion_ratio", family=fam, regime=r)[:, -1], FLOOR)
            ax.bar(x, ends.mean(), width * 0.9, bottom=0, color=COLORS[r], alpha=0.85,
                   hatch=HATCHES.get(r), edgecolor="white", linewidth=0,
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
    # in columns: replace and its selection, accumulate and its selection, the paper
    handles, labels = ax.get_legend_handles_labels()
    names = [LABELS.get(r, r) for r in ("replace", "select", "accumulate", "accumulate-select")]
    order = [labels.index(n) for n in names if n in labels] + \
        [i for i, lab in enumerate(labels) if lab not in names]
    ax.legend([handles[i] for i in order], [labels[i] for i in order], ncol=3,
              loc="lower center", bbox_to_anchor=(0.5, 1.0))
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
    fig, axes = figure(record, 3, height=2.8,
                       note=f"{S['components']} modes, {S['points']} points per generation, "
                            f"{S['seeds']} seeds, k = {S['k']}")
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
        ax.set_title(title)
        ax.set_xlabel("generation")
    axes[0].set_ylim(0, 1.05)
    axes[1].set_ylim(0, 1.05)
    axes[2].set_yscale("log")
    log_ticks(axes[2])
    axes[1].legend(loc="lower left")
    axes[2].legend(loc="lower left")
    return fig
