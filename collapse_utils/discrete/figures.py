"""The chapter's figures, each drawn from a record (simulation band + exact theory).

Generation n of a record is fit n + 1 of :mod:`.theory` (generation 0 fits the
real data D_0, an M-sample of p0), so every theory curve is read at ``gens + 1``.
"""
from __future__ import annotations

import numpy as np

from ..plotting import (PAGE_WIDTH, REGIME_COLORS, THEORY_STYLE, generation_colors, profile_note,
                        regime_label, theory)
from .experiment import absorption_times, final_fixed, p0_of
from .theory import (absorption_time_pmf, binomial_interval, expected_gini_simpson,
                     expected_support, mean_absorption_time_diffusion, mean_absorption_time_exact,
                     one_step_survival, survival_probability)


def _plt():
    import matplotlib.pyplot as plt

    return plt


def interval_band(ax, x, successes, trials, *, label=None, color=None, level=0.95, **kw):
    """A proportion over chains (line) with its Clopper-Pearson band."""
    successes = np.asarray(successes, dtype=float)
    lo, hi = binomial_interval(successes, trials, level)
    (line,) = ax.plot(x, successes / trials, label=label, color=color, **kw)
    ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.25, linewidth=0)
    return line


def summary_band(ax, record, name: str, *, label=None, color=None, **selection):
    """Mean over chains of ``name`` with its 10-90% band over chains (stored quantiles)."""
    gens = record.generations
    mean, lo, hi = (record.metric(f"{name}_{s}", **selection)[0] for s in ("mean", "q10", "q90"))
    (line,) = ax.plot(gens, mean, label=label, color=color)
    ax.fill_between(gens, lo, hi, color=line.get_color(), alpha=0.25, linewidth=0)
    return line


def plot_survival(ax, record, states, legend_kw: dict | None = None, regime="replace") -> None:
    """Per-state survival against generation: chains (95% band) and the exact theory,
    with the one-step survival 1 - (1 - q)^M (the real data D_0) at generation 0."""
    p0, M, chains = p0_of(record), record.settings["M"], record.settings["chains"]
    gens = record.generations
    alive = record.metric("survival", regime=regime)[0] * chains
    exact = survival_probability(p0[list(states)], M, gens[-1] + 1)
    for j, (i, c) in enumerate(zip(states, generation_colors(range(len(states)),
                                                             max(len(states) - 1, 1)))):
        interval_band(ax, gens, np.rint(alive[:, i]), chains, color=c,
                      label=f"state {i + 1}: $q$ = {p0[i]:.3f}")
        theory(ax, gens, exact[j, gens + 1], label="exact theory" if j == 0 else None)
        ax.plot([0], [one_step_survival(p0[i], M)], marker="o", color=c, mec="black", ms=6,
                ls="none", zorder=6, label=r"in $D_0$: $1-(1-q)^M$" if j == 0 else None)
        ax.axhline(p0[i], color=c, lw=0.8, ls=":")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(0, gens[-1])
    ax.set_xlabel("generation $n$")
    ax.set_ylabel("P(state still present)")
    ax.legend(**(legend_kw or dict(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)))


def plot_support(axes, record, regime="replace") -> None:
    """Left: support size (mean, 10-90% band over chains) and its exact mean.
    Right: diversity with its exact mean G(p0) (1 - 1/M)^(n+1)."""
    p0, M = p0_of(record), record.settings["M"]
    gens = record.generations
    color = REGIME_COLORS[regime]
    summary_band(axes[0], record, "support", label="chains: mean, 10-90%", color=color,
                 regime=regime)
    theory(axes[0], gens, expected_support(p0, M, gens[-1] + 1)[gens + 1],
           label="exact E[support]")
    axes[0].set_xscale("symlog", linthresh=1)
    axes[0].set_xlim(0, gens[-1])
    axes[0].set_ylabel("states present")
    summary_band(axes[1], record, "gini_simpson", label="chains: mean, 10-90%", color=color,
                 regime=regime)
    theory(axes[1], gens, expected_gini_simpson(p0, M, gens[-1] + 1)[gens + 1],
           label=r"exact $G(p_0)(1-1/M)^{n+1}$")
    axes[1].set_ylabel(r"diversity $1-\sum_i \hat p_n(i)^2$")
    for ax in axes:
        ax.set_xlabel("generation $n$")
        ax.legend()


def survival_figure(record, states=(0, 4, 9, 19)):
    """Per-state survival of the ``replace`` chains (one panel, legend below)."""
    fig, ax = _plt().subplots(figsize=(PAGE_WIDTH, 5.0))
    plot_survival(ax, record, states)
    M, K = record.settings["M"], len(p0_of(record))
    ax.set_title(f"Per-state survival, Zipf({K}, {record.settings['zipf_exponent']:g}), M = {M}")
    profile_note(fig, record, f"{record.settings['chains']:,} chains, 95% binomial bands")
    return fig


def support_figure(record):
    """Support size and diversity of the ``replace`` chains, each against its exact mean."""
    fig, axes = _plt().subplots(1, 2, figsize=(PAGE_WIDTH, 3.4))
    plot_support(axes, record)
    axes[0].set_title("support size")
    axes[1].set_title("diversity")
    profile_note(fig, record, f"{record.settings['chains']:,} chains, M = {record.settings['M']}")
    return fig


def fixation_figure(record, level: float = 0.95):
    """Fraction of chains ending at each state, with Clopper-Pearson intervals, against p0."""
    p0, chains = p0_of(record), record.settings["chains"]
    M = record.values("M")[0]
    wins = final_fixed(record, M=M)
    lo, hi = binomial_interval(wins, chains, level)
    x, frac = np.arange(1, p0.size + 1), wins / chains
    fig, ax = _plt().subplots(figsize=(6.4, 4.0))
    ax.bar(x, frac, color=REGIME_COLORS["replace"], alpha=0.7, label=f"{chains:,} chains")
    ax.errorbar(x, frac, yerr=[frac - lo, hi - frac], fmt="none", ecolor="black", capsize=3,
                label=f"{level:.0%} binomial interval")
    ax.scatter(x, p0, marker="_", s=500, color=THEORY_STYLE["color"], zorder=6,
               label="theory: $p_0(i)$")
    ax.set_xticks(x)
    ax.set_xlabel("state $i$")
    ax.set_ylabel("P(chain ends at state $i$)")
    ax.set_title(f"Where the chains end: Zipf({p0.size}, {record.settings['zipf_exponent']:g}), "
                 f"M = {M}")
    ax.legend()
    profile_note(fig, record, f"after {record.settings['generations']} generations")
    return fig


def plot_absorption_time(ax, record, M: int, p: float = 0.5) -> None:
    """Histogram of two-state absorption times (in fits) against the exact P(T = n)."""
    times = absorption_times(record, M=M)
    times = times[np.isfinite(times)]
    top = int(np.quantile(times, 0.995)) + 1
    width = max(1, top // 40)
    edges = np.arange(0.5, top + width, width)
    ax.hist(times, bins=edges, density=True, color=REGIME_COLORS["replace"], alpha=0.6,
            label="chains")
    pmf = absorption_time_pmf(p, M, int(edges[-1]))
    theory(ax, np.arange(pmf.size), pmf, label="exact P(T = n)")
    ax.axvline(mean_absorption_time_exact(p, M), color="black", lw=1, label="exact mean")
    ax.axvline(mean_absorption_time_diffusion(p, M), color="0.4", lw=1, ls=":",
               label="diffusion mean")
    ax.set_xlabel("absorption time $T$ (fits)")
    ax.set_ylabel("density")
    ax.set_title(f"two states, p = {p:g}, M = {M}")
    ax.legend()


def plot_mean_time(ax, record, p: float = 0.5) -> None:
    """E[T] / M against M (mean +- 2 standard errors), the exact curve and the diffusion."""
    import matplotlib as mpl

    Ms = np.asarray(record.values("M"))
    times = [absorption_times(record, M=int(m)) for m in Ms]
    means = np.array([np.mean(t) for t in times])
    se = np.array([np.std(t, ddof=1) / np.sqrt(t.size) for t in times])
    ax.errorbar(Ms, means / Ms, yerr=2 * se / Ms, fmt="o", color=REGIME_COLORS["replace"],
                capsize=3, label="chains: mean ± 2 s.e.")
    grid = np.unique(np.geomspace(Ms.min(), Ms.max(), 30).astype(int))
    theory(ax, grid, [mean_absorption_time_exact(p, m) / m for m in grid], label="exact")
    ax.plot(grid, [mean_absorption_time_diffusion(p, m) / m for m in grid], color="0.4", ls=":",
            label="diffusion")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(mpl.ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
    ax.set_xticks(Ms)
    ax.set_xlabel("samples per generation $M$")
    ax.set_ylabel("mean absorption time / $M$")
    ax.set_title("the mean, in units of M")
    ax.legend(loc="lower right")


def absorption_figure(record, M: int = 50):
    """Left: the absorption-time histogram at one M. Right: E[T] / M over the sweep."""
    fig, axes = _plt().subplots(1, 2, figsize=(PAGE_WIDTH, 3.4))
    plot_absorption_time(axes[0], record, M)
    plot_mean_time(axes[1], record)
    profile_note(fig, record, f"{record.settings['chains']:,} chains per M")
    return fig


def regimes_figure(record):
    """Diversity and support size per regime, each with its exact theory."""
    p0, M = p0_of(record), record.settings["M"]
    f = record.settings["real_fraction"]
    gens = record.generations
    fig, axes = _plt().subplots(1, 2, figsize=(PAGE_WIDTH, 3.5))
    for k, name in enumerate(record.values("regime")):
        color, label = REGIME_COLORS[name], regime_label(name, record)
        summary_band(axes[0], record, "gini_simpson", color=color, label=label, regime=name)
        theory(axes[0], gens, expected_gini_simpson(p0, M, gens[-1] + 1, name, f)[gens + 1],
               label="exact theory" if k == 0 else None)
        summary_band(axes[1], record, "support", color=color, regime=name)
    exact = expected_support(p0, M, gens[-1] + 1)
    if "replace" in record.values("regime"):
        theory(axes[1], gens, exact[gens + 1], label="exact, replace")
    if "accumulate" in record.values("regime"):  # the support of D_0, at every generation
        theory(axes[1], gens, np.full(gens.size, exact[1]), label="exact, accumulate",
               linestyle=":")
    axes[0].set_ylabel(r"diversity $1-\sum_i \hat p_n(i)^2$")
    axes[1].set_ylabel("states present")
    axes[0].set_title("diversity (mean, 10-90%)")
    axes[1].set_title("support size (mean, 10-90%)")
    for ax in axes:
        ax.set_xlabel("generation $n$")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="center right", bbox_to_anchor=(1.0, 0.38))  # the empty lower right
    profile_note(fig, record, f"{record.settings['chains']:,} chains per regime, M = {M}")
    return fig

