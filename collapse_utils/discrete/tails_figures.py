"""The curation chapter's figure of a cut tail (Dohmatob et al. 2024): the scaling law's floor."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..plotting import figure, log_ticks, theory, whole_generations
from .tails import rate_terms, tail_cut_error
from .theory import zipf


def plot_tails(record):
    """(a) Test error of generation 0 against T, log-log, one colour per cut k: mean over chains
    (dots, +- 2 standard errors), the exact sum (line), the clean power law (dashed) and each
    floor, the mass beyond k (dotted).  (b) The error against the generation at the largest T.  Returns the figure."""
    S = record.settings
    beta, vocab = S["beta"], S["vocab"]
    Ts = np.array(sorted(record.values("samples")))
    cuts = record.values("cut")
    grid = np.geomspace(Ts.min(), Ts.max(), 40)
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.8, len(cuts)))
    fig, (a, b) = figure(record, 2, height=3.2, note=f"Zipf beta = {beta:g}, {vocab:,} items, "
                         f"{S['chains']} chains; lines: exact sums; dotted: floors")
    for k, color in zip(cuts, colors):
        label = "no cut" if not k else f"cut at k = {k:,}"
        mean = np.array([record.metric("error", cut=k, samples=T)[0, 0] for T in Ts])
        se = np.array([record.metric("error_sd", cut=k, samples=T)[0, 0] for T in Ts]) / np.sqrt(S["chains"])
        a.errorbar(Ts, mean, yerr=2 * se, fmt="o", ms=4, color=color, label=label)
        a.plot(grid, tail_cut_error(grid, beta, vocab, k), color=color, linewidth=1.2)
        if k:
            a.axhline(float(zipf(vocab, beta)[k:].sum()), color=color, linestyle=":", linewidth=1)
        g = np.asarray(record.generations)
        sel = dict(cut=k, samples=int(Ts.max()))
        m = record.metric("error", **sel)[0]
        s = record.metric("error_sd", **sel)[0] / np.sqrt(S["chains"])
        b.fill_between(g, m - 2 * s, m + 2 * s, color=color, alpha=0.25, linewidth=0)
        b.plot(g, m, "o-", ms=3, color=color, label=label)
    theory(a, grid, rate_terms(grid, beta, 0), label=r"$\propto T^{-(1-1/\beta)}$")
    a.set_xscale("log")
    a.set_yscale("log")
    log_ticks(a)
    a.set_xlabel("T, samples memorised")
    a.set_ylabel("test error")
    a.set_title("(a) generation 0")
    a.legend(loc="lower left")
    b.set_xlabel("generation")
    whole_generations(b)
    b.set_title(f"(b) T = {int(Ts.max()):,}")
    b.legend()
    return fig
