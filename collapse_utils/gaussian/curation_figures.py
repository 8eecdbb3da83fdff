"""The figures of the chapter "Curation and verification", drawn from records.

The Gaussian panels read ``gaussian-curation`` records, the discrete panel a
``discrete`` record (it lives here, beside the chapter's other figures, because the
discrete family's figure module belongs to its own chapter).  Simulations are a
centre line over chains with the 10-90% band over chains; theory is the book's
dashed black line; generation g is compared with the theory at n = g + 1 fits.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..plotting import REGIME_COLORS, profile_note, theory
from . import theory as th
from .figures import FONT, _styled

GAMMA_COLORS = ("#f5b041", "#dc7633", "#a04000", "#6e2c00")


def _last(record, name, **sel):
    return float(record.metric(name, **sel)[0, -1])


def verify_curve(record, quantity: str = "w2_squared") -> tuple[np.ndarray, dict]:
    """(verifier errors, {mean, q10, q90: arrays}) of ``quantity`` at the last generation."""
    qs = np.array(record.values("verifier_error"), dtype=float)
    out = {s: np.array([_last(record, f"{quantity}_{s}", verifier_error=q, regime="verify")
                        for q in qs]) for s in ("mean", "median", "q10", "q90")}
    return qs, out


@_styled
def plot_transition(verify, baselines):
    """End-of-run E W_2^2 and sigma against the verifier's error rate q.

    (a) mean W_2^2 over chains (band 10-90%) with the fixed-point theory at the run's
    length (dashed: exact for the mean's part, linear-noise for the spread's), the
    exact ``replace`` value (q = 1), ``keep-real`` and one fit on real data; (b) the
    fitted sigma at the last generation (median, band), with sqrt of the exact
    E sigma^2 and ``replace``'s E sigma_n = c_M^n.
    """
    S = verify.settings
    M, G = S["M"][0], int(verify.generations[-1])
    qs, w2 = verify_curve(verify, "w2_squared")
    _, sig = verify_curve(verify, "sigma")
    fine = np.linspace(0, max(qs.max(), 0.95), 200)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11.5, 4.4))
    col = REGIME_COLORS["verify"]
    a.plot(qs, w2["mean"], "o-", color=col, label="verify (mean over chains)")
    a.fill_between(qs, w2["q10"], w2["q90"], color=col, alpha=0.22, linewidth=0)
    theory(a, fine, [th.verify_theory(G, M, q, S["verify_window"])["w2_squared"][-1] for q in fine],
           label="theory (linear noise)")
    rep = th.theory_1d(G + 1, M)["w2_squared"]
    a.axhline(rep, color=REGIME_COLORS["replace"], ls=":", lw=1.6, label=f"replace (exact), q = 1")
    a.axhline(_last(baselines, "w2_squared_mean", regime="keep-real"), color=REGIME_COLORS["keep-real"],
              ls="-.", lw=1.6, label="keep 10% real")
    a.axhline(th.expected_w2_squared(1, M), color="grey", ls=":", lw=1.2, label="one fit on real data")
    a.set(yscale="log", xlabel="verifier error q", ylabel=r"$W_2^2$ to $\mathcal{N}(0,1)$",
          title=f"(a) distance after {G} generations")
    a.legend(loc="lower right", fontsize=10, frameon=True, framealpha=0.9, edgecolor="none")
    b.plot(qs, sig["median"], "o-", color=col, label="verify (median)")
    b.fill_between(qs, sig["q10"], sig["q90"], color=col, alpha=0.22, linewidth=0)
    theory(b, fine, [np.sqrt(th.verify_theory(G, M, q, S["verify_window"])["sigma_squared"][-1])
                     for q in fine], label=r"$\sqrt{E\,\sigma^2}$ (exact)")
    b.axhline(th.expected_sigma(G + 1, M), color=REGIME_COLORS["replace"], ls=":", lw=1.6,
              label=r"replace: $E\,\sigma_n = c_M^{\,n}$")
    b.set(xlabel="verifier error q", ylabel=r"fitted $\sigma$", title=f"(b) spread after {G} generations")
    b.legend(loc="lower left")
    profile_note(fig, verify, f"{S['chains']} chains per q, M = {M}, bands 10–90% over chains")
    return fig


@_styled
def plot_self_correct(record):
    """E W_2^2 and E sigma over generations under self-correction of several strengths,
    each on its exact curve (:func:`~.theory.self_correct_theory`)."""
    S = record.settings
    M, gens = S["M"][0], np.asarray(record.generations)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11.5, 4.4))
    for color, gamma in zip(GAMMA_COLORS, record.values("gamma")):
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
    profile_note(fig, record, f"{S['chains']} chains, M = {M}, bands 10–90% over chains")
    return fig


@_styled
def plot_discrete(record, regimes: list[tuple[str, dict, str, str]]):
    """Support and Gini-Simpson diversity over generations for the discrete runs in ``regimes``:
    (label, selection, colour, theory kind) with theory kind ``replace``, ``verify-bound``
    (the perfect verifier's support bound; its diversity has no closed form here, since the
    states it loses change the target) or ``self-correct``."""
    from ..discrete import theory as dth

    p0, M = np.asarray(record.fact("p0")), record.settings["M"]
    gens = np.asarray(record.generations)
    n = int(gens[-1]) + 1
    fig, (a, b) = plt.subplots(1, 2, figsize=(11.5, 4.4))
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
    profile_note(fig, record, f"{record.settings['chains']} chains, K = {p0.size}, M = {M}, bands 10–90%")
    return fig
