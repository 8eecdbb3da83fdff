"""The figures of the introduction, the Gaussian chapter and the curation chapter, from records.

Each function takes the record(s) of :func:`collapse_utils.run` and returns the
figure.  Generations are the loop's (generation 0 = the fit to D_0); theory curves
are drawn at n = g + 1 fits.  Simulations are a centre line (mean or median over
chains) with the 10-90% band over chains; theory is the book's dashed black line.
"""
from __future__ import annotations

import math

import matplotlib as mpl
import numpy as np

from ..loop import rng_for
from ..plotting import REGIME_COLORS, band, figure, generation_colors, regime_label, theory
from . import theory as th
from .experiment import REFERENCE_SIZE, example_covariance
from .simulate import sample_source

#: colours that name a setting, from the book's colour-blind-safe palette ("C0".."C7", Okabe-Ito):
#: blue against vermillion; blue, vermillion and reddish purple; blue, orange and reddish purple
ESTIMATOR_COLORS = {"unbiased": "C0", "mle": "C3"}
SCHEDULE_COLORS = {"constant": "C3", "linear": "C0", "superlinear": "C4"}
SOURCE_COLORS = {"laplace": "C4", "two-modes": "C1", "normal": "C0"}
#: one colour per M of a sweep (none of them a red-green pair)
M_COLORS = ("C0", "C1", "C4", "C5", "C6")


def summary_band(ax, x, record, quantity: str, *, center: str = "mean", color=None, label=None,
                 sqrt: bool = False, **selection):
    """``quantity``'s centre (``mean`` or ``median`` over chains) and its 10-90% band, against x.

    ``sqrt=True`` draws the square root (e.g. |mu_n - mu| from ``mean_error_squared``;
    quantiles commute with the square root).
    """
    f = np.sqrt if sqrt else (lambda v: v)
    mid, lo, hi = (f(record.metric(f"{quantity}_{s}", **selection)[0]) for s in (center, "q10", "q90"))
    mask = slice(len(mid) - len(x), None)
    (line,) = ax.plot(x, mid[mask], color=color, label=label)
    ax.fill_between(x, lo[mask], hi[mask], color=line.get_color(), alpha=0.22, linewidth=0)
    return line


def _setting(record, name):
    v = record.settings[name]
    return v[0] if isinstance(v, list) else v


def _chains_note(record, what: str = "") -> str:
    return f"{record.settings['chains']} chains{what}, M = {_setting(record, 'M')}, bands 10–90% over chains"


# ----------------------------------------------------------------------------- the introduction
def plot_intro(record):
    """The intro chapter's figure from a ``gaussian-intro`` record.

    Left: each regime's fitted sigma_g; right: W_2^2 to N(0, 1); mean over chains
    with a 10-90% band.  The replace regime's exact theory is drawn at n = g + 1
    fits, because generation 0 is already a fit to M real samples.
    """
    M, gens = record.settings["M"], record.generations
    fig, (ax1, ax2) = figure(record, 2, height=3.4, note=f"{record.settings['chains']} chains per "
                             f"regime, M = {M}, mean and 10–90% band")
    for regime in record.values("regime"):
        for ax, key in ((ax1, "sigma"), (ax2, "w2_squared")):
            band(ax, gens, record.metric(key, regime=regime)[0].T, center="mean", spread="quantile",
                 color=REGIME_COLORS.get(regime), label=regime_label(regime, record))
    theory(ax1, gens, th.expected_sigma(gens + 1, M), label=r"theory, replace: $c_M^{\,n}$, $n = g+1$")
    theory(ax2, gens, th.expected_w2_squared(gens + 1, M), label=r"theory, replace")
    ax1.set(xlabel="generation $g$", ylabel=r"fitted $\sigma_g$", title="standard deviation")
    ax2.set(xlabel="generation $g$", ylabel=r"$W_2^2$ to $\mathcal{N}(0,1)$", title="distance to the original")
    ax1.legend()
    ax2.legend()
    return fig


# ----------------------------------------------------------------------------- the Gaussian chapter
def plot_mean_median(record, estimator: str = "unbiased"):
    """sigma_n^2 (mean and median over chains), sigma_n (median) and log sigma_n^2 (mean),
    each with its exact theory, against the generation (Steps 2-4)."""
    g = record.generations
    M, sel = _setting(record, "M"), dict(estimator=estimator) if "estimator" in record.axes else {}
    T = th.theory_1d(g + 1, M, estimator=estimator)
    fig, axes = figure(record, 3, note=_chains_note(record))
    summary_band(axes[0], g, record, "sigma_squared", color="C0", label="mean over chains", **sel)
    axes[0].plot(g, record.metric("sigma_squared_median", **sel)[0], color="C1", lw=1.4, label="median over chains")
    theory(axes[0], g, T["sigma_squared"], label=r"$E[\sigma_n^2] = \sigma^2$")
    summary_band(axes[1], g, record, "sigma", center="median", color="C1", label="median over chains", **sel)
    theory(axes[1], g, T["sigma"], label=r"$E[\sigma_n] = \sigma c_M^n$")
    theory(axes[1], g, np.exp(T["log_sigma_squared"] / 2), label=r"$\sigma e^{E[\log \sigma_n^2]/2}$", linestyle=":")
    summary_band(axes[2], g, record, "log_sigma_squared", color="C2", label="mean over chains", **sel)
    theory(axes[2], g, T["log_sigma_squared"], label=r"$E[\log\sigma_n^2]$")
    axes[0].set(ylim=(0, 3), ylabel=r"$\sigma_n^2$", title="variance: mean stays, median falls")
    axes[1].set(ylabel=r"$\sigma_n$", title="standard deviation")
    axes[2].set(ylabel=r"$\log \sigma_n^2$", title="log-variance: drifts down")
    for ax, where in zip(axes, ("upper right", "lower left", "lower left")):   # off the lines
        ax.set_xlabel("generation $g$ ($n = g + 1$ fits)")
        ax.legend(loc=where)
    return fig


def plot_distance(record, estimator: str = "unbiased"):
    """W_2^2 to the original against the generation, with the exact E W_2^2 and the mean's
    random walk n sigma^2 / M alone (Step 6)."""
    g = record.generations
    M, sel = _setting(record, "M"), dict(estimator=estimator) if "estimator" in record.axes else {}
    fig, ax = figure(record, height=3.6, note=_chains_note(record))
    summary_band(ax, g, record, "w2_squared", color=REGIME_COLORS["replace"], label="mean over chains", **sel)
    theory(ax, g, th.expected_w2_squared(g + 1, M), label=r"exact: $n\sigma^2/M + 2\sigma^2(1-c_M^n)$")
    theory(ax, g, (g + 1) / M, label=r"the mean's walk alone: $n\sigma^2/M$", linestyle=":")
    ax.set(xlabel="generation $g$ ($n = g + 1$ fits)", ylabel=r"$W_2^2$ to $\mathcal{N}(\mu,\sigma^2)$",
           title=f"distance to the original (M = {M})")
    ax.legend()
    return fig


def plot_public(record):
    """The public notebook's figure: median |mu - mu_n| and |sigma - sigma_n| with bands, for
    each M of the sweep (MLE variance, as np.std), log-log, against the exact RMS errors."""
    g = record.generations[1:]
    est = _setting(record, "estimator")
    fig, axes = figure(record, 2, height=3.5,
                       note=f"{record.settings['chains']} chains per M, median and 10–90% band")
    for i, M in enumerate(record.values("M")):
        T = th.theory_1d(g + 1, M, estimator=est)
        color = M_COLORS[i % len(M_COLORS)]
        summary_band(axes[0], g, record, "mean_error_squared", center="median", sqrt=True,
                     color=color, label=f"M = {M}", M=M)
        summary_band(axes[1], g, record, "sigma_error_squared", center="median", sqrt=True,
                     color=color, label=f"M = {M}", M=M)
        theory(axes[0], g, np.sqrt(T["mean_error_squared"]), label="exact RMS" if i == 0 else None)
        theory(axes[1], g, np.sqrt(T["sigma_squared"] - 2 * T["sigma"] + 1), label="exact RMS" if i == 0 else None)
    axes[0].set(ylabel=r"$|\mu - \hat\mu|$", title="error of the mean")
    axes[1].set(ylabel=r"$|\sigma - \hat\sigma|$", title="error of the std (np.std)")
    for ax in axes:
        ax.set(xscale="log", yscale="log", xlabel="generation $g$")
        ax.legend(ncol=2)
    return fig


def plot_estimators(record):
    """Unbiased against MLE variance: mean sigma_n^2 (log) and mean W_2^2, with theory (Step 7)."""
    g, M = record.generations, _setting(record, "M")
    fig, axes = figure(record, 2, height=3.4, note=_chains_note(record))
    names = {"unbiased": "unbiased", "mle": "MLE (np.std)"}
    for est in record.values("estimator"):
        T = th.theory_1d(g + 1, M, estimator=est)
        color = ESTIMATOR_COLORS.get(est)
        summary_band(axes[0], g, record, "sigma_squared", color=color, label=names.get(est, est), estimator=est)
        summary_band(axes[1], g, record, "w2_squared", color=color, label=names.get(est, est), estimator=est)
        theory(axes[0], g, T["sigma_squared"], label=None)
        theory(axes[1], g, T["w2_squared"], label=None)
    theory(axes[0], [], [], label="exact")
    axes[0].set(yscale="log", ylim=(1e-5, 10), ylabel=r"$\sigma_n^2$ (mean over chains)",
                title=r"variance: $\sigma^2$ against $\sigma^2(1-1/M)^n$")
    axes[1].set(ylabel="$W_2^2$ (mean over chains)", title=r"distance: grows against settles at $2\sigma^2$")
    for ax in axes:
        ax.set_xlabel("generation $g$")
        ax.legend()
    return fig


def plot_regimes(record):
    """Replace, accumulate, keep-real: mean W_2^2 (log) and mean sigma_n, with replace's theory."""
    g, M = record.generations, _setting(record, "M")
    fig, axes = figure(record, 2, height=3.4, note=_chains_note(record, " per regime"))
    for r in record.values("regime"):
        for ax, q in zip(axes, ("w2_squared", "sigma")):
            summary_band(ax, g, record, q, color=REGIME_COLORS.get(r), label=regime_label(r, record), regime=r)
    theory(axes[0], g, th.expected_w2_squared(g + 1, M), label="exact, replace")
    theory(axes[1], g, th.expected_sigma(g + 1, M), label=r"exact, replace: $c_M^n$")
    axes[0].set(yscale="log", ylabel="$W_2^2$ (mean over chains)", title="distance to the original")
    axes[1].set(ylabel=r"$\sigma_n$ (mean over chains)", title="standard deviation")
    for ax in axes:
        ax.set_xlabel("generation $g$")
        ax.legend()
    return fig


def plot_schedules(record):
    """Constant, linear and superlinear M_i: mean W_2^2 against the exact curve of each, log-log."""
    from ..regimes import Schedule

    g, M = record.generations[1:], _setting(record, "M")
    fig, ax = figure(record, height=3.8, note=_chains_note(record, " per schedule"))
    for kind in record.values("schedule"):
        sch = Schedule(kind, M, float(record.settings["power"]))
        summary_band(ax, g, record, "w2_squared", color=SCHEDULE_COLORS.get(kind),
                     label=f"{kind}: $M_i$ = {sch(1)}, {sch(2)}, {sch(3)}, …", schedule=kind)
        theory(ax, g, th.theory_1d(g + 1, M, schedule=sch)["w2_squared"], label=None)
    theory(ax, [], [], label="exact")
    ax.set(xscale="log", yscale="log", xlabel="generation $g$", ylabel="$W_2^2$ (mean over chains)",
           title=f"sample-size schedules (M = {M})")
    ax.legend()
    return fig


def plot_dimensions(record):
    """d dimensions: mean log det Sigma_n, the spread along a fixed direction and W_2^2 with its
    bounds n tr(Sigma)/M and that plus 2 tr(Sigma)."""
    g, M, d = record.generations, _setting(record, "M"), record.settings["dim"]
    cov0 = example_covariance(d)
    lower = (g + 1) * np.trace(cov0) / M
    fig, axes = figure(record, 3, note=f"d = {d}, " + _chains_note(record))
    summary_band(axes[0], g, record, "log_det", color="C0", label="mean over chains")
    theory(axes[0], g, th.expected_log_det(g + 1, M, cov0), label="exact")
    summary_band(axes[1], g, record, "direction_sigma", color="C1", label="mean over chains")
    theory(axes[1], g, th.c_m(M) ** (g + 1), label=r"1-D theory $c_M^n$")
    summary_band(axes[2], g, record, "w2_squared", color="C3", label="mean over chains")
    theory(axes[2], g, lower, label=r"$n\,\mathrm{tr}\Sigma/M$")
    theory(axes[2], g, lower + 2 * np.trace(cov0), label=r"$+\,2\,\mathrm{tr}\Sigma$", linestyle=":")
    titles = (r"$\log\det\Sigma_n$", r"spread along $v$: $\sqrt{v^\top\Sigma_n v / v^\top\Sigma v}$",
              "$W_2^2$ to the original")
    for ax, t in zip(axes, titles):
        ax.set(xlabel="generation $g$", title=t)
        ax.legend()
    return fig


def plot_sources(record, show=(0, 9, 99), source: str = "two-modes"):
    """Non-Gaussian D_0: one chain's fitted densities over D_0's histogram (left) and mean
    W_2^2 to the empirical D_0 with its exact lower bound, per source (right)."""
    g, M = record.generations, _setting(record, "M")
    fig, axes = figure(record, 2, height=3.4, note=_chains_note(record, " per source"))
    x_ref = sample_source(source, REFERENCE_SIZE, rng_for(record.seed, "reference"))
    axes[0].hist(x_ref, bins=120, density=True, color="0.8", label=r"$\mathcal{D}_0$: " + source)
    xs = np.linspace(-3, 3, 400)
    gens = [k for k in show if k < g[-1]] + [int(g[-1])]
    for k, c in zip(gens, generation_colors(len(gens), len(gens) - 1)):
        m = record.metric("chain0_mean", source=source)[0, k]
        s = record.metric("chain0_sigma", source=source)[0, k]
        axes[0].plot(xs, np.exp(-0.5 * ((xs - m) / s) ** 2) / (s * math.sqrt(2 * math.pi)), color=c,
                     label=f"generation {k}")
    axes[0].set(xlim=(-3, 3), ylim=(0, 2.5), title=f"one chain, refitted from {source}", xlabel="$x$")
    axes[0].legend()
    for src in record.values("source"):
        color = SOURCE_COLORS.get(src)
        summary_band(axes[1], g[1:], record, "w2_squared", color=color, label=src, source=src)
        bound = th.source_lower_bound(g[1:] + 1, M, record.fact("reference_moments", source=src))
        theory(axes[1], g[1:], bound, label=None, color=color)
    theory(axes[1], [], [], label="exact lower bound of each", color="0.3")
    axes[1].set(xscale="log", yscale="log", xlabel="generation $g$", ylabel=r"$W_2^2$ to $\hat{\mathcal{D}}_0$",
                title="distance to the non-Gaussian original")
    axes[1].legend(loc="upper left")
    return fig


# ----------------------------------------------------------------------------- the curation chapter
# (its discrete panel lives here too, beside the chapter's other figures: the discrete
# family's figure module belongs to its own chapter)
#: self-correction's strengths along one sequential ramp, light (weak) to dark (strong)
GAMMA_CMAP = "Oranges"


def gamma_colors(n: int) -> list:
    """``n`` colours of :data:`GAMMA_CMAP`, spread over its readable part (none too pale)."""
    return list(mpl.colormaps[GAMMA_CMAP](np.linspace(0.45, 0.95, n) if n > 1 else [0.7]))


def _last(record, name, **sel):
    return float(record.metric(name, **sel)[0, -1])


def verify_curve(record, quantity: str = "w2_squared") -> tuple[np.ndarray, dict]:
    """(verifier errors, {mean, q10, q90: arrays}) of ``quantity`` at the last generation."""
    qs = np.array(record.values("verifier_error"), dtype=float)
    out = {s: np.array([_last(record, f"{quantity}_{s}", verifier_error=q, regime="verify")
                        for q in qs]) for s in ("mean", "median", "q10", "q90")}
    return qs, out


def plot_verify_transition(verify, baselines, unlimited: dict | None = None):
    """End-of-run E W_2^2 and sigma against the verifier's error rate q.

    (a) the run's mean W_2^2 over chains (band 10-90%), which draws at most ``max_rounds``
    batches per generation; the same loop with an unlimited draw budget (open circles,
    ``unlimited``: :func:`~.curation.verify_unlimited`'s output, drawn here with 2,000
    chains when not given); below them the exact second moments' lower bound
    E e^2 + (sqrt(E sigma^2) - sigma)^2 (dashed, :func:`~.curation.verify_w2_bound`) and
    the linear-noise approximation W_1 (1 - q^(2(g+1))) / (1 - q^2) (dotted; low by a few
    per cent at q >= 0.9, and finite at every q < 1 where the exact moments diverge above
    q_c); the exact ``replace`` value (q = 1), ``keep-real`` and one fit on real data.
    (b) the mean fitted sigma at the last generation (band 10-90%), the unlimited budget's,
    sqrt of the exact E sigma^2 (an upper bound on E sigma, by Jensen) and ``replace``'s
    E sigma_n = c_M^n.
    """
    from .curation import verify_unlimited, verify_w2_bound

    S = verify.settings
    M, G, L = S["M"][0], int(verify.generations[-1]), S["verify_window"]
    qs, w2 = verify_curve(verify, "w2_squared")
    _, sig = verify_curve(verify, "sigma")
    if unlimited is None:
        unlimited = verify_unlimited(M, qs, G, L)
    free_w2 = [float(unlimited[float(q)]["w2_squared"].mean()) for q in qs]
    free_sig = [float(unlimited[float(q)]["sigma"].mean()) for q in qs]
    fine = np.linspace(0, max(qs.max(), 0.95), 200)
    fig, axes = figure(verify, grid=(2, 1), height=3.2,   # (b) below (a): room for the key
                       note=f"{S['chains']} chains per q, M = {M}, bands 10–90% over chains")
    a, b = axes[:, 0]
    col = REGIME_COLORS["verify"]
    a.plot(qs, w2["mean"], "o-", color=col, label=f"verify, ≤ {S['max_rounds']} batches")
    a.fill_between(qs, w2["q10"], w2["q90"], color=col, alpha=0.22, linewidth=0)
    a.plot(qs, free_w2, "o", mfc="white", color=col, label="verify, unlimited budget")
    theory(a, fine, [verify_w2_bound(G, M, q, L) for q in fine],
           label="lower bound (exact moments)")
    a.plot(fine, [th.verify_theory(G, M, q, L)["w2_squared"][-1] for q in fine], color="black",
           ls=":", lw=1.4, label="linear noise (approx.)")
    rep = th.theory_1d(G + 1, M)["w2_squared"]
    a.axhline(rep, color=REGIME_COLORS["replace"], ls=":", lw=1.6, label="replace (exact), q = 1")
    a.axhline(_last(baselines, "w2_squared_mean", regime="keep-real"), color=REGIME_COLORS["keep-real"],
              ls="-.", lw=1.6, label="keep 10% real")
    a.axhline(th.expected_w2_squared(1, M), color="grey", ls=":", lw=1.2, label="one fit on real data")
    a.set(yscale="log", xlabel="verifier error q", ylabel=r"$W_2^2$ to $\mathcal{N}(0,1)$",
          title=f"(a) distance after {G} generations")
    a.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    b.plot(qs, sig["mean"], "o-", color=col, label="verify (mean)")
    b.fill_between(qs, sig["q10"], sig["q90"], color=col, alpha=0.22, linewidth=0)
    b.plot(qs, free_sig, "o", mfc="white", color=col, label="unlimited budget (mean)")
    theory(b, fine, [np.sqrt(th.verify_theory(G, M, q, L)["sigma_squared"][-1])
                     for q in fine], label=r"$\sqrt{E\,\sigma^2} \geq E\,\sigma$ (exact)")
    b.axhline(th.expected_sigma(G + 1, M), color=REGIME_COLORS["replace"], ls=":", lw=1.6,
              label=r"replace: $E\,\sigma_n = c_M^{\,n}$")
    b.set(xlabel="verifier error q", ylabel=r"fitted $\sigma$", title=f"(b) spread after {G} generations")
    b.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return fig


def plot_self_correct(record):
    """E W_2^2 and E sigma over generations under self-correction of several strengths,
    each on its exact curve (:func:`~.theory.self_correct_theory`)."""
    S = record.settings
    M, gens = S["M"][0], np.asarray(record.generations)
    fig, (a, b) = figure(record, 2, height=3.4,
                         note=f"{S['chains']} chains, M = {M}, bands 10–90% over chains")
    for color, gamma in zip(gamma_colors(len(record.values("gamma"))), record.values("gamma")):
        T = th.self_correct_theory(int(gens[-1]), M, gamma)
        for ax, q, center in ((a, "w2_squared", "mean"), (b, "sigma", "mean")):
            sel = dict(regime="self-correct", gamma=gamma)
            mid = record.metric(f"{q}_{center}", **sel)[0]
            lo, hi = record.metric(f"{q}_q10", **sel)[0], record.metric(f"{q}_q90", **sel)[0]
            ax.plot(gens, mid, color=color, label=rf"$\gamma$ = {gamma:g}")
            ax.fill_between(gens, lo, hi, color=color, alpha=0.2, linewidth=0)
            theory(ax, gens, T[q], label="exact" if gamma == record.values("gamma")[-1] else None)
    a.set(yscale="log", xlabel="generation", ylabel=r"$W_2^2$ to $\mathcal{N}(0,1)$",
          title="(a) distance (mean over chains)")
    b.set(xlabel="generation", ylabel=r"fitted $\sigma$", title=r"(b) spread (mean over chains)")
    a.legend(loc="upper left", ncol=2)
    return fig


def plot_curation_discrete(record, regimes: list[tuple[str, dict, str, str]]):
    """Support and Gini-Simpson diversity over generations for the discrete runs in ``regimes``:
    (label, selection, colour, theory kind) with theory kind ``replace``, ``verify-bound``
    (the perfect verifier's support bound; its diversity has no closed form here, since the
    states it loses change the target) or ``self-correct``."""
    from ..discrete import theory as dth

    p0, M = np.asarray(record.fact("p0")), record.settings["M"]
    gens = np.asarray(record.generations)
    n = int(gens[-1]) + 1
    fig, (a, b) = figure(record, 2, height=3.4, note=f"{record.settings['chains']} chains, "
                         f"K = {p0.size}, M = {M}, bands 10–90%")
    for label, sel, color, kind in regimes:
        for ax, q in ((a, "support"), (b, "gini_simpson")):
            mid = record.metric(f"{q}_mean", **sel)[0]
            ax.plot(gens + 1, mid, color=color, label=label)
            ax.fill_between(gens + 1, record.metric(f"{q}_q10", **sel)[0],
                            record.metric(f"{q}_q90", **sel)[0], color=color, alpha=0.2, linewidth=0)
        if kind == "replace":
            theory(a, gens + 1, dth.expected_support(p0, M, n)[1:], label="theory")
            theory(b, gens + 1, dth.expected_gini_simpson(p0, M, n)[1:], label="theory")
        elif kind == "verify-bound":   # lost states never return: only a bound on the support
            theory(a, gens + 1, dth.verified_support_bound(p0, M, n)[1:], label="bound (q = 0)",
                   linestyle=":")
        else:
            theory(b, gens + 1, dth.curation_gini_simpson(p0, M, n, kind, gamma=sel.get("gamma", 0.5),
                                                          verifier_error=sel.get("verifier_error", 0.0))[1:],
                   label=None)
    for ax in (a, b):
        ax.set_xscale("log")
        ax.set_xlabel("fits n (generation + 1)")
    a.set(ylabel="states present", title="(a) support")
    b.set(ylabel="1 − Σ p²", title="(b) Gini–Simpson diversity")
    handles, labels = a.get_legend_handles_labels()
    keep = dict(zip(labels, handles))
    a.legend(keep.values(), keep.keys(), loc="lower left")
    return fig
