"""The chapter's figures: the regimes over generations, the strong-collapse floor, curation.

Each simulated curve is the mean over chains (what the theory predicts) with a band
from the 10% to the 90% quantile over chains; each closed form is drawn in the
book's theory style.  Each figure starts with :func:`~collapse_utils.plotting.figure`,
whose footer line gives the record's profile and sizes.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..plotting import REGIME_COLORS, figure, figure_legend, generation_colors, regime_label, theory
from . import theory as th


def _band(ax, x, rec, color, label, **selection):
    """Mean over chains with the 10-90% band, for the single run matching ``selection``."""
    mean = rec.metric("test_error", **selection)[0]
    lo, hi = rec.metric("test_error_q10", **selection)[0], rec.metric("test_error_q90", **selection)[0]
    ax.fill_between(x, lo, hi, color=color, alpha=0.18, linewidth=0)
    return ax.plot(x, mean, color=color, label=label)[0]


def _sizes(rec):
    s = rec.settings
    return s["d"], s["samples"], s["noise"]


def _one(rec, axis):
    """The single value of a sweep axis the record ran (e.g. its one gamma)."""
    values = rec.values(axis)
    return {axis: values[0]} if len(values) == 1 else {}


def plot_regimes(rec):
    """Left: every regime over generations, replace on its linear law.  Right: the
    bounded regimes against the pi^2/6 bound (fixed design) and the exact curve."""
    gens = rec.generations
    d, T, s = _sizes(rec)
    fits = gens + 1
    fixed = {**_one(rec, "verifier_error"), **_one(rec, "gamma")}
    fig, axes = figure(rec, 2, height=3.4,
                       note=f"d = {d}, T = {T}, {rec.settings['chains']} chains, band 10-90%")
    bounded = [r for r in rec.values("regime") if r in ("accumulate", "accumulate-subsample")]
    for ax, regimes in zip(axes, (rec.values("regime"), bounded)):
        for r in regimes:
            _band(ax, gens, rec, REGIME_COLORS.get(r), regime_label(r, rec), regime=r, **fixed)
        ax.set_xlabel("generation")
        ax.set_ylabel(r"excess risk $|\hat w - w^*|^2$")
    theory(axes[0], gens, th.replace_error(fits, d, T, s), label=r"replace: $(n+1)\,v$")
    theory(axes[1], gens, th.accumulate_error(fits, d, T, s), label="accumulate, exact")
    theory(axes[1], gens, th.accumulate_fixed_design(fits, d, T, s), color="0.45",
           label="accumulate, fixed design")
    axes[1].axhline(th.accumulate_bound(d, T, s), color="black", linestyle=":", linewidth=1.2,
                    label=r"bound $v\,\pi^2/6$")
    axes[0].set_title("(a) replace grows, the others do not")
    axes[1].set_title("(b) the accumulating regimes")
    axes[0].legend()
    axes[1].legend(loc="upper left")
    axes[1].set_ylim(0, 4.6 * th.accumulate_bound(d, T, s))   # room for the legend
    return fig


def plot_strong_collapse(rec, generation: int = 1):
    """The test error of generation ``generation`` against the sample size n, one
    curve per synthetic share p, over the first-order theory and the floor p^2 |Delta|^2."""
    ns = np.asarray(rec.values("samples"))
    shares = rec.values("synthetic_share")
    colors = generation_colors(range(len(shares)), len(shares) - 1)
    fig, ax = figure(rec, height=4.2,
                     note=f"d = {rec.settings['d']}, generator fitted on "
                          f"{rec.settings['real_samples']} real pairs, "
                          f"{rec.settings['chains']} chains, band 10-90%")
    for p, color in zip(shares, colors):
        pick = lambda name: np.array([rec.metric(name, samples=n, synthetic_share=p)[0, generation]
                                      for n in ns])
        ax.fill_between(ns, pick("test_error_q10"), pick("test_error_q90"), color=color,
                        alpha=0.18, linewidth=0)
        ax.plot(ns, pick("test_error"), "o-", color=color, markersize=4, label=f"p = {p:g}")
        theory(ax, ns, pick("test_error_theory"), label="first-order theory" if p == shares[0] else None)
        if p > 0:
            ax.axhline(pick("test_error_floor")[-1], color=color, linestyle=":", linewidth=1.2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training pairs n")
    ax.set_ylabel(r"excess risk $|\hat w - w^*|^2$")
    ax.set_title("A constant share p of synthetic labels: a floor at $p^2|\\Delta|^2$ (dotted)")
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: labels[i] == "first-order theory")
    ax.legend([handles[i] for i in order], [labels[i] for i in order], ncol=2,
              loc="lower left")   # small n: every share's error is high there
    return fig


def plot_curation(rec_gamma, rec_verify, rec_replace):
    """Left: self-correction of several strengths over generations, on its exact curve,
    beside replace.  Right: the last generation's error against the verifier's error rate."""
    gens = rec_replace.generations
    d, T, s = _sizes(rec_replace)
    fits = gens + 1
    fig, axes = figure(rec_replace, 2, height=3.4,
                       note=f"d = {d}, T = {T}, {rec_replace.settings['chains']} chains, "
                            "band 10-90%")
    ax = axes[0]
    _band(ax, gens, rec_replace, REGIME_COLORS["replace"], "replace", regime="replace")
    gammas = rec_gamma.values("gamma")
    # the strengths in shades of blue (light to dark), apart from verify's green in panel (b)
    shades = plt.get_cmap("Blues")(np.linspace(0.45, 0.9, len(gammas)))
    for g, color in zip(gammas, shades):
        _band(ax, gens, rec_gamma, color, f"self-correct, $\\gamma$ = {g:g}", gamma=g)
        theory(ax, gens, th.self_correct_error(fits, g, d, T, s),
               label="exact" if g == gammas[0] else None)
    ax.set_yscale("log")
    ax.set_xlabel("generation")
    ax.set_ylabel(r"excess risk $|\hat w - w^*|^2$")
    ax.set_title("(a) self-correction")
    ax = axes[1]
    qs = np.asarray(rec_verify.values("verifier_error"))
    last = lambda name: np.array([rec_verify.metric(name, verifier_error=q)[0, -1] for q in qs])
    color = REGIME_COLORS["verify"]
    ax.fill_between(qs, last("test_error_q10"), last("test_error_q90"), color=color, alpha=0.18,
                    linewidth=0)
    ax.plot(qs, last("test_error"), "o-", color=color, markersize=4,
            label=f"verify, generation {gens[-1]}")
    ax.axhline(th.replace_error(fits[-1], d, T, s), color=REGIME_COLORS["replace"], linestyle="--",
               linewidth=1.2, label=f"replace, generation {gens[-1]}")
    ax.axhline(th.one_fit_error(d, T, s), color="black", linestyle=":", linewidth=1.2,
               label="generation 0 (real data)")
    ax.set_yscale("log")
    ax.set_xlabel("verifier error rate")
    ax.set_ylabel(r"excess risk $|\hat w - w^*|^2$")
    ax.set_title("(b) verify: how good must the verifier be?")
    figure_legend(fig, axes, ncol=3, last=("exact",))
    return fig


LOOP_COLORS = {"fully-synthetic": REGIME_COLORS["replace"],
               "synthetic-augmentation": REGIME_COLORS["keep-real"],
               "fresh-data": REGIME_COLORS["real"]}
#: synthetic augmentation drawn wider, under the others: its curve can lie on fresh data's
LOOP_WIDTHS = {"synthetic-augmentation": 3.4}


def plot_loops(rec_loops, rec_share):
    """Left: E mu^2 over generations for the three self-consuming loops (one share lambda)
    on their exact moments.  Right: the last generation's E mu^2 against lambda."""
    from .loops import loop_moments

    gens = rec_loops.generations
    M = rec_loops.settings["samples"]
    lam = rec_loops.values("synthetic_share")[0]
    fig, axes = figure(rec_loops, 2, height=3.4,
                       note=f"M = {M}, {rec_loops.settings['chains']} chains, band 10-90%")
    ax = axes[0]
    for loop in rec_loops.values("loop"):
        sel = dict(loop=loop, synthetic_share=lam)
        ax.fill_between(gens, rec_loops.metric("mean_error_q10", **sel)[0],
                        rec_loops.metric("mean_error_q90", **sel)[0], color=LOOP_COLORS[loop],
                        alpha=0.18, linewidth=0)
        ax.plot(gens, rec_loops.metric("mean_error", **sel)[0], color=LOOP_COLORS[loop], label=loop,
                linewidth=LOOP_WIDTHS.get(loop))
        theory(ax, gens, loop_moments(loop, M, lam, int(gens[-1]))["mu2"],
               label="exact" if loop == "fully-synthetic" else None)
    ax.set_yscale("log")
    ax.set_xlabel("generation")
    ax.set_ylabel(r"squared error of the mean $\hat\mu_n^2$")
    ax.set_title(f"(a) three loops, $\\lambda$ = {lam:g}")
    ax.set_ylim(top=30 * max((int(gens[-1]) + 1) / M, 1e-9))
    ax = axes[1]
    shares = np.asarray(rec_share.values("synthetic_share"))
    last = int(rec_share.generations[-1])
    for loop in rec_share.values("loop"):
        pick = lambda name: np.array([rec_share.metric(name, loop=loop, synthetic_share=p)[0, -1]
                                      for p in shares])
        ax.fill_between(shares, pick("mean_error_q10"), pick("mean_error_q90"),
                        color=LOOP_COLORS[loop], alpha=0.18, linewidth=0)
        ax.plot(shares, pick("mean_error"), "o-", color=LOOP_COLORS[loop], markersize=4, label=loop,
                linewidth=LOOP_WIDTHS.get(loop))
        theory(ax, shares, [loop_moments(loop, M, p, last)["mu2"][-1] for p in shares],
               label="exact" if loop == rec_share.values("loop")[0] else None)
    ax.axhline((last + 1) / M, color=LOOP_COLORS["fully-synthetic"], linestyle="--", linewidth=1.2,
               label=f"fully-synthetic at generation {last}")
    ax.axhline(1 / M, color="black", linestyle=":", linewidth=1.2, label="generation 0")
    ax.set_yscale("log")
    ax.set_xlabel(r"share $\lambda$ of generated samples")
    ax.set_ylabel(r"$\hat\mu^2$ at generation " + str(last))
    ax.set_title(f"(b) generation {last} against $\\lambda$")
    ax.set_ylim(top=30 * max((last + 1) / M, 1e-9))
    figure_legend(fig, axes, ncol=3, last=("exact",))
    return fig
