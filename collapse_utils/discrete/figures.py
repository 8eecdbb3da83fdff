"""The chapter's figures, each drawn from a record (simulation band + exact theory).

Generation n of a record is fit n + 1 of :mod:`.theory` (generation 0 fits the
real data D_0, an M-sample of p0), so every theory curve is read at ``gens + 1``.
"""
from __future__ import annotations

import numpy as np

from ..plotting import (REGIME_COLORS, THEORY_STYLE, figure, generation_colors, log_ticks,
                        regime_label, theory)
from .experiment import absorption_times, final_fixed, p0_of
from .report import forgetting_curves, forgetting_times
from .theory import (absorption_time_pmf, binomial_interval, expected_gini_simpson,
                     expected_support, mean_absorption_time_diffusion, mean_absorption_time_exact,
                     one_step_survival, survival_probability)


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
    fig, ax = figure(record, height=4.6,
                     note=f"{record.settings['chains']:,} chains, 95% binomial bands")
    plot_survival(ax, record, states)
    M, K = record.settings["M"], len(p0_of(record))
    ax.set_title(f"Per-state survival, Zipf({K}, {record.settings['zipf_exponent']:g}), M = {M}")
    return fig


def support_figure(record):
    """Support size and diversity of the ``replace`` chains, each against its exact mean."""
    fig, axes = figure(record, 2, height=3.4,
                       note=f"{record.settings['chains']:,} chains, M = {record.settings['M']}")
    plot_support(axes, record)
    axes[0].set_title("support size")
    axes[1].set_title("diversity")
    return fig


def fixation_figure(record, level: float = 0.95):
    """Fraction of chains ending at each state, with Clopper-Pearson intervals, against p0."""
    p0, chains = p0_of(record), record.settings["chains"]
    M = record.values("M")[0]
    wins = final_fixed(record, M=M)
    lo, hi = binomial_interval(wins, chains, level)
    x, frac = np.arange(1, p0.size + 1), wins / chains
    fig, ax = figure(record, height=3.8, note=f"after {record.settings['generations']} generations")
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
    fig, axes = figure(record, 2, height=3.4, note=f"{record.settings['chains']:,} chains per M")
    plot_absorption_time(axes[0], record, M)
    plot_mean_time(axes[1], record)
    return fig


def regimes_figure(record):
    """Diversity and support size per regime, each with its exact theory."""
    p0, M = p0_of(record), record.settings["M"]
    f = record.settings["real_fraction"]
    gens = record.generations
    fig, axes = figure(record, 2, height=3.5,
                       note=f"{record.settings['chains']:,} chains per regime, M = {M}")
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
    return fig


#: the colours of the forgetting figure: the states drawn in (a), the sizes M in (b)
FORGET_STATE_COLORS = ("C0", "C1", "C2")
FORGET_SIZE_COLORS = ("C3", "C4", "C5")


def plot_forgetting(record, states=(1, 4, 19), counts=None, sizes=(50, 200, 800)):
    """How fast a state is forgotten under ``replace`` (``book/beyond``), from the ``discrete``
    record.  (a) The survival of ``states`` (0-based) against the fit: the chains' share with
    its 95% binomial band, the exact curve (solid), Suresh et al.'s lower bound 1 - e^(-Mq/k)
    (dashed) and the genealogy's upper bound (dotted).  (b) The fits until a state is present
    with probability at most 1/2, against its expected count M q in fit 1 (``counts``, default
    10 from 1 to 20), for each M of ``sizes``: exact (dots) and the upper bound's (dotted), with
    the lower bound's M q / ln 2 and the diffusion's 2 M q / ln 2.  Returns the figure."""
    counts = np.geomspace(1, 20, 10) if counts is None else np.asarray(counts, dtype=float)
    p0, M, chains, present, k, exact, lower, upper = forgetting_curves(record).values()
    times = forgetting_times(counts, sizes)
    fig, (ax, bx) = figure(record, 2, height=4.2,
                           note=f"(a) M = {M}, {chains} chains, band 95% over chains")
    for j, c in zip(states, FORGET_STATE_COLORS):
        ax.fill_between(k, *binomial_interval(np.round(present[j] * chains), chains), color=c,
                        alpha=0.25, lw=0)
        ax.plot(k, exact[j], color=c, label=f"state {j + 1}: $Mq$ = {M * p0[j]:.1f}")
        ax.plot(k, lower[j], color=c, ls="--", lw=1)
        ax.plot(k, upper[j], color=c, ls=":", lw=1.6)
    for style, label in (({}, "exact"), (dict(ls="--", lw=1), r"lower bound $1-e^{-Mq/k}$"),
                         (dict(ls=":", lw=1.6), "upper bound")):   # the line styles' key
        ax.plot([], [], color="0.3", label=label, **style)
    ax.set(xscale="log", ylim=(0, 1.02), xlabel="fit $k$", ylabel="P(state present)",
           title="(a) exact curve between the bounds")
    for m, c in zip(sizes, FORGET_SIZE_COLORS):
        bx.plot(counts, times[m][0], "o-", color=c, ms=4, label=f"exact, $M$ = {m}")
        bx.plot(counts, times[m][1], ":", color=c, lw=1.6)
    bx.plot(counts, counts / np.log(2), "k--", lw=1, label=r"lower bound: $Mq/\ln 2$")
    bx.plot(counts, 2 * counts / np.log(2), color="0.55", lw=1, label=r"diffusion: $2Mq/\ln 2$")
    bx.plot([], [], ":", color="0.3", lw=1.6, label="upper bound")
    bx.set(xscale="log", yscale="log", xlabel="expected count $Mq$",
           ylabel="fits until P(present) $\\leq$ 1/2", title="(b) the time to forget")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=2)   # below: (a) is full
    bx.legend(loc="upper left")
    log_ticks(bx, "x")
    log_ticks(bx, "y")
    bx.xaxis.set_major_formatter("{x:g}")
    return fig

