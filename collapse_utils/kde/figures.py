"""The chapter's figures: distances over generations, and variance and tails.

Each simulated curve is the median over chains (the mean where the theory is about
the mean) with a band from the 10% to the 90% quantile over chains; exact
expectations and the Gaussian reference are drawn in the book's theory style.
Figures read the profile from the record.
"""
from __future__ import annotations

import numpy as np

from ..plotting import band, figure, generation_colors, log_ticks, theory
from . import theory as th

RULE_COLORS = {"scott": "#0072B2", "silverman": "#CC79A7", "fixed": "#D55E00"}


def rule_label(rule: str, rec) -> str:
    """How a bandwidth rule is named in legends."""
    if rule == "fixed":
        return f"fixed h = {rec.settings['fixed_bandwidth']:g}"
    return {"scott": "Scott's rule", "silverman": "Silverman's rule"}.get(rule, rule)


def chains(rec, metric: str, rule: str, regime: str = "replace") -> np.ndarray:
    """One run's per-chain values of ``metric``, shape (chains, generations)."""
    return np.asarray(rec.metric(metric, bandwidth=rule, regime=regime)[0]).T


def _theory_args(rec, rule):
    s = rec.settings
    return dict(rule=rule, M=s["samples"], sigma2=rec.fact("real_variance"), h=s["fixed_bandwidth"])


def plot_distances(rec, regime: str = "replace"):
    """(a) KL(p_0 || p_n) and (b) W2(p_n, p_0) over generations, one band per bandwidth rule,
    each over the Gaussian with the exact expected moments (a reference, dashed)."""
    gens = np.asarray(rec.generations)
    fig, axes = figure(rec, 2, height=3.4, note=_sizes(rec, "median and 10-90% band"))
    gaussian = rec.settings["real"] == "gaussian"
    for i, rule in enumerate(rec.values("bandwidth")):
        color = RULE_COLORS.get(rule)
        for ax, metric, ref in ((axes[0], "kl", th.kl_gaussian), (axes[1], "w2", th.w2_gaussian)):
            band(ax, gens, chains(rec, metric, rule, regime), color=color, label=rule_label(rule, rec))
            if gaussian and regime == "replace":
                theory(ax, gens, ref(gens + 1, **_theory_args(rec, rule)), color=color,
                       label="Gaussian with the exact moments" if i == 0 else None)
    axes[0].set_ylabel(r"KL$(p_0\,\|\,p_n)$ (nats)")
    axes[0].set_title("(a) KL divergence from $p_0$")
    axes[1].set_ylabel(r"$W_2(p_n, p_0)$")
    axes[1].set_yscale("log")
    log_ticks(axes[1])
    axes[1].set_title("(b) 2-Wasserstein distance")
    _generations(axes, "upper left")
    return fig


def plot_variance_tails(rec, regime: str = "replace"):
    """(a) The KDE's variance: mean over chains on its exact expectation.  (b) Its mass
    outside the real 0.135% and 99.865% quantiles, against the real 0.27%."""
    gens = np.asarray(rec.generations)
    fig, axes = figure(rec, 2, height=3.4, note=_sizes(rec, "band 10-90%"))
    for i, rule in enumerate(rec.values("bandwidth")):
        color, label = RULE_COLORS.get(rule), rule_label(rule, rec)
        band(axes[0], gens, chains(rec, "variance", rule, regime), color=color, label=label,
             center="mean", spread="quantile")
        if regime == "replace":
            theory(axes[0], gens, th.expected_variance(gens + 1, **_theory_args(rec, rule)),
                   label="exact expectation" if i == 0 else None)
        tails = np.clip(chains(rec, "tail_mass", rule, regime), 1e-12, None)
        band(axes[1], gens, tails, color=color, label=label)
    axes[1].axhline(rec.fact("real_tail_mass"), color="black", linestyle=":", linewidth=1.2,
                    label="real distribution")
    axes[0].set_yscale("log")
    log_ticks(axes[0])
    axes[0].set_ylabel("variance of the fitted KDE")
    axes[0].set_title("(a) spread: mean over chains")
    axes[1].set_yscale("log")
    axes[1].set_ylim(1e-8, 1.5)
    axes[1].set_ylabel("mass beyond the real 3-sd points")
    axes[1].set_title("(b) tail mass: median over chains")
    _generations(axes, "best")
    return fig


def _sizes(rec, bands: str) -> str:
    """The run's sizes and what the bands are, for the figure's footer."""
    return f"M = {rec.settings['samples']}, {rec.settings['chains']} chains, {bands}"


def _generations(axes, legend: str) -> None:
    """Generation on every x axis, and the legends."""
    for ax in axes:
        ax.set_xlabel("generation")
        ax.legend(loc=legend)


def plot_densities(rec, generations=(0, 10, 40), chain: int = 0, regime: str = "replace"):
    """The fitted KDEs of one chain at a few generations, per bandwidth rule, over p_0."""
    from ..loop import load_generation
    from .measure import kde_logpdf
    from .simulate import real_logpdf

    rules = rec.values("bandwidth")
    fig, axes = figure(rec, grid=(1, len(rules)), height=3.2,
                       note=f"one chain, M = {rec.settings['samples']}")
    x = np.linspace(-6, 6, 601)
    gens = [g for g in generations if g <= rec.generations[-1]]
    for ax, rule in zip(axes[0], rules):
        run_dir = rec.run_dir(bandwidth=rule, regime=regime)
        ax.fill_between(x, np.exp(real_logpdf(rec.settings["real"], x)), color="0.85",
                        label="real $p_0$")
        for g, color in zip(gens, generation_colors(gens, max(gens))):
            kde = load_generation(run_dir, g)
            one = type(kde)(kde.centres[chain:chain + 1], kde.h[chain:chain + 1])
            ax.plot(x, np.exp(kde_logpdf(one, x))[0], color=color, label=f"generation {g}")
        ax.set_title(rule_label(rule, rec))
        ax.set_xlabel("x")
        ax.set_ylabel("density")
        ax.legend(loc="upper right")
    return fig
