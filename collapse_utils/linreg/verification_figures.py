"""The curation chapter's figure of a biased verifier on least squares (Yi et al. 2025)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..plotting import REGIME_COLORS, figure, figure_legend, theory, whole_generations


def plot_verifier_bias(verified, replaced=None):
    """|beta_t - beta*|^2 against the generation, one colour per verifier bias a: mean over
    chains (line), +- 2 standard errors (band), the population map with its noise floor
    (dashed), the verifier's own error d a^2 (dotted); ``replaced`` (no verifier) in replace's
    colour.
    Log scale.  Returns the figure."""
    S = verified.settings
    g = np.asarray(verified.generations)
    biases = verified.values("verifier_bias")
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, len(biases)))
    fig, ax = figure(verified, height=3.6,
                     note=f"d = {S['d']}, {S['real']} real pairs, {S['samples']} verified pairs "
                          f"per generation, {S['chains']} chains; dotted: d a²")
    for a, color in zip(biases, colors):
        sel = dict(verifier_bias=a)
        if "regime" in verified.axes:
            sel["regime"] = "verify"
        mean = verified.metric("error", **sel)[0]
        se = verified.metric("error_sd", **sel)[0] / np.sqrt(S["chains"])
        ax.fill_between(g, mean - 2 * se, mean + 2 * se, color=color, alpha=0.25, linewidth=0)
        ax.plot(g, mean, color=color, label=f"verifier bias a = {a:g}")
        theory(ax, g, verified.fact("population", **sel), label="population map" if a == biases[0] else None)
        if a > 0:
            ax.axhline(S["d"] * a**2, color=color, linestyle=":", linewidth=1)
    if replaced is not None:
        ax.plot(np.asarray(replaced.generations), replaced.metric("error")[0],
                color=REGIME_COLORS["replace"], label="no verifier (replace)")
    ax.set_yscale("log")
    ax.set_xlabel("generation")
    whole_generations(ax)
    ax.set_ylabel(r"$|\beta_t - \beta^*|^2$")
    figure_legend(fig, ax, ncol=3, last=["population map"])
    return fig
