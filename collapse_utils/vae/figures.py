"""The VAE chapter's figures and the numbers its prose quotes, all read from a Record.

Every function takes the record :func:`collapse_utils.run` returned; saved weights
are found through ``record.run_dir(regime=..., seed=...)``.  Every figure starts with
:func:`collapse_utils.plotting.figure`: drawn at the page's width, with one footer line that
names the stand-in (its short label, :func:`~collapse_utils.vae.data.stand_in_label`) and the
profile; the full stand-in sentence is printed once in the chapter.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..loop import load_generation, rng_for, seed_for
from ..plotting import figure_legend, whole_generations
from .data import load_mnist, stand_in_label
from .experiment import PAPER_LATENT_STD, data_depth, real_share
from .measure import LATENT_EDGES, N_CLASSES
from .model import load_vae

#: the ten digits' colours in :func:`plot_class_mix`: Paul Tol's "muted" scheme (nine colours
#: that stay apart for colour-blind readers) and its pale grey; each segment tall enough is
#: labelled with its digit too, so that colour is not the only cue
DIGIT_COLORS = ("#332288", "#DDCC77", "#44AA99", "#882255", "#88CCEE", "#CC6677", "#117733",
                "#DDDDDD", "#AA4499", "#999933")


def _figure(record, n=1, **kw):
    """:func:`collapse_utils.plotting.figure` with the VAE's short stand-in label (imported
    late, like matplotlib)."""
    from ..plotting import figure

    return figure(record, n, stand_in=stand_in_label(record.stand_in), **kw)


def regime_name(regime: str, record) -> str:
    """How a regime is named in legends: "replace", "keep 10% real", ..."""
    if regime == "replace":
        return "replace"
    share = real_share(regime, record.settings["real_fraction"])
    return f"keep {100 * share:g}% real" if share else regime


def _color(regime: str, k: int):
    """A regime's colour: the book's (:data:`~collapse_utils.plotting.REGIME_COLORS`), and for
    the larger kept shares two more of its Okabe-Ito palette."""
    from ..plotting import PALETTE, REGIME_COLORS

    extra = {"keep-real-25": PALETTE[4], "keep-real-50": PALETTE[0]}
    return REGIME_COLORS.get(regime) or extra.get(regime) or f"C{k}"


def _real_line(ax, value, label=None):
    """The real digits' value: a dotted line in the book's colour of real data (grey)."""
    from ..plotting import REGIME_COLORS

    ax.axhline(value, color=REGIME_COLORS["real"], ls=":", lw=1.5, label=label)


def _seeds(record) -> str:
    n = len(record.values("seed"))
    return f"{n} seed{'s' if n != 1 else ''}"


def _bands(record) -> str:
    """What a line and band of :func:`_by_regime` are, for a figure's footer."""
    n = len(record.values("seed"))
    return f"median over {n} seeds, band 10-90%" if n > 1 else "1 seed"


def generation_samples(record, generation: int, *, regime: str, seed: int | None = None,
                       n: int = 8) -> np.ndarray:
    """n images (n, 28, 28) decoded by a saved generation's model; the same latents
    (the run's ``"figure"`` stream) for every generation."""
    import torch

    seed = record.values("seed")[0] if seed is None else seed
    model = load_generation(record.run_dir(regime=regime, seed=seed), generation, load_model=load_vae)
    gen = torch.Generator().manual_seed(seed_for(seed, "figure"))
    return model.sample(n, generator=gen).squeeze(1).numpy()


def real_digits(record, n: int = 8, seed: int | None = None) -> np.ndarray:
    """n real digits (n, 28, 28) in [0, 1], for the reference row of the sample grids."""
    seed = record.values("seed")[0] if seed is None else seed
    data = load_mnist()
    pick = rng_for(seed, "figure", 1).choice(len(data), n, replace=False)
    return data.images[pick] / 255.0


def plot_sample_grids(record, regimes: Sequence[str] | None = None,
                      generations: Sequence[int] = (0, 1, 2, 3, 4, 5, 10, 20), *, n: int = 8):
    """Per regime a panel: a row of real digits, then one row of samples per generation, the
    same ``n`` latents (the first seed's) decoded by every generation."""
    from ..plotting import PAGE_WIDTH, REGIME_COLORS

    regimes = list(regimes or record.values("regime"))
    gens = [g for g in generations if g in record.generations]
    rows = [real_digits(record, n)]
    width = min(PAGE_WIDTH, len(regimes) * (0.42 * n + 1.2))
    image = width / len(regimes) - 0.7   # the width of one panel's images, inches
    fig, axes = _figure(record, grid=(1, len(regimes)), width=width,
                        height=image * (len(gens) + 1) / n + 0.45,
                        note=f"the same {n} latents in every row, seed {record.values('seed')[0]}")
    for ax, regime in zip(axes[0], regimes):
        grid = rows + [generation_samples(record, g, regime=regime, n=n) for g in gens]
        ax.imshow(np.concatenate([np.concatenate(list(r), axis=1) for r in grid]),
                  cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.grid(False)
        ax.set_yticks(14 + 28 * np.arange(len(grid)), ["real"] + [f"gen {g}" for g in gens])
        ax.tick_params(axis="y", length=0)
        for side in ax.spines.values():
            side.set_visible(False)
        ax.axhline(28 - 0.5, color=REGIME_COLORS["real"], lw=2)
        ax.set_title(regime_name(regime, record))
    return fig


def plot_latent_histograms(record, regimes: Sequence[str] | None = None):
    """Density of the gen-0 encoder's latent means of each generation's samples (all seeds)."""
    from ..plotting import generation_colorbar, generation_colors, theory

    regimes = list(regimes or record.values("regime"))
    fig, axes = _figure(record, grid=(1, len(regimes)), height=3.2, sharey=True,
                        note=f"latent means of every dimension, {_seeds(record)} pooled")
    gens, last = list(record.generations), int(record.generations[-1])
    centres, width = (LATENT_EDGES[:-1] + LATENT_EDGES[1:]) / 2, np.diff(LATENT_EDGES)
    xs = np.linspace(-4, 4, 200)
    for ax, regime in zip(axes[0], regimes):
        counts = record.metric("latent_hist", regime=regime).sum(axis=0)
        for g, color in zip(gens, generation_colors(gens, last)):
            ax.plot(centres, counts[g] / counts[g].sum() / width, color=color)
        theory(ax, xs, np.exp(-xs**2 / 2) / np.sqrt(2 * np.pi), label="N(0, 1)")
        ax.set_xlabel("latent mean (gen-0 encoder)")
        ax.set_title(regime_name(regime, record))
    axes[0, 0].set_ylabel("density")
    axes[0, 0].legend(loc="upper left")
    generation_colorbar(axes[0, -1], last)
    return fig


def _by_regime(ax, record, metric, regimes, **kw):
    from ..plotting import band

    x = record.generations
    for k, regime in enumerate(regimes):
        band(ax, x, record.metric(metric, regime=regime), label=regime_name(regime, record),
             color=_color(regime, k), marker="o", ms=3, **kw)
    ax.set_xlabel("generation")
    whole_generations(ax)


def plot_latent_stats(record, regimes: Sequence[str] | None = None, paper: bool = True):
    """The protocol's pooled latent std and the spread across samples against generation,
    a band over seeds per regime, the public notebook's ranges as black bars, the
    real digits' value as a grey dotted line."""
    regimes = list(regimes or record.values("regime"))
    fig, axes = _figure(record, 2, height=3.0, note=_bands(record))
    _by_regime(axes[0], record, "latent_std", regimes)
    _by_regime(axes[1], record, "latent_spread", regimes)
    real = np.median([r["facts"].get("real_latent_std", np.nan) for r in record.runs()])
    _real_line(axes[0], real, "real digits")
    if paper:
        for g, (lo, hi) in PAPER_LATENT_STD.items():
            if g <= record.generations[-1]:
                axes[0].errorbar([g], [(lo + hi) / 2], yerr=[[(hi - lo) / 2]], fmt="s", color="black",
                                 capsize=4, ms=4, label="public notebook" if g == 1 else None)
    axes[0].set_ylabel("np.std of all latent means")
    axes[1].set_ylabel("std across samples")
    axes[1].set_ylim(bottom=0)
    axes[0].set_title("pooled latent std")
    axes[1].set_title("spread across samples")
    figure_legend(fig, axes, ncol=4)
    return fig


def plot_reader(record, regimes: Sequence[str] | None = None):
    """Blur beside diversity: the samples' sharpness (median solid-ink share), and the entropy
    of the class mix of all samples (solid, band over seeds) and of the sharp ones (dotted)."""
    regimes = list(regimes or record.values("regime"))
    fig, axes = _figure(record, 2, height=3.0, note=_bands(record))
    _by_regime(axes[0], record, "solid_ink", regimes)
    _by_regime(axes[1], record, "class_entropy", regimes)
    for k, regime in enumerate(regimes):
        sharp = record.metric("sharp_entropy", regime=regime)
        if np.isfinite(sharp).any(axis=0).any():
            axes[1].plot(record.generations, _nanmedian(sharp), ls=":", marker="x", ms=4,
                         color=_color(regime, k))
    _real_line(axes[0], record.fact("real_solid_ink"), "real digits")
    _real_line(axes[1], record.fact("real_class_entropy"))
    axes[0].set_ylabel("share of ink that is solid")
    axes[1].set_ylabel("entropy of class mix (bits)")
    axes[0].set_ylim(0, 1)
    axes[1].set_ylim(0, np.log2(N_CLASSES) + 0.1)
    axes[0].set_title("sharpness of the samples")
    axes[1].set_title("class mix: all (solid), sharp (dotted)")
    figure_legend(fig, axes, ncol=4)
    return fig


def _ink(color) -> str:
    """Black or white, whichever reads on ``color``."""
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(color)
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def plot_class_mix(record, regimes: Sequence[str] | None = None):
    """The share of samples read as each digit against generation (mean over seeds): one
    stacked bar per generation, one full-width panel per regime (one above the other), each
    segment labelled with its digit where it is tall enough, the ten colours
    (:data:`DIGIT_COLORS`) in one legend above."""
    from matplotlib.patches import Patch

    regimes = list(regimes or record.values("regime"))
    fig, axes = _figure(record, grid=(len(regimes), 1), height=2.7, sharex=True,
                        note=f"mean over {_seeds(record)}")
    x = np.asarray(record.generations)
    size = 8.5   # the digits in the bars, as the legend's
    hists = {}
    for ax, regime in zip(axes[:, 0], regimes):
        hist = record.metric("class_hist", regime=regime).mean(axis=0)
        hist = hists[regime] = hist / np.maximum(hist.sum(axis=1, keepdims=True), 1e-12)
        bottom = np.zeros(len(x))
        for d in range(N_CLASSES):
            ax.bar(x, hist[:, d], bottom=bottom, color=DIGIT_COLORS[d], width=0.8,
                   edgecolor="white", linewidth=0.5)
            bottom += hist[:, d]
        ax.set_ylim(0, 1)
        ax.set_xlim(x[0] - 0.6, x[-1] + 0.6)
        ax.grid(False)
        ax.set_ylabel("share read as digit")
        ax.set_title(regime_name(regime, record))
        whole_generations(ax)
    axes[-1, 0].set_xlabel("generation")
    fig.legend([Patch(facecolor=c, edgecolor="0.6", linewidth=0.5) for c in DIGIT_COLORS],
               [str(d) for d in range(N_CLASSES)],
               loc="outside upper center", ncol=N_CLASSES, title="digit read by the reader",
               handlelength=1.4, columnspacing=1.4)
    # a digit in a segment where it fits: at least 1.15 lines tall and as wide as the text
    fig.draw_without_rendering()
    for ax, regime in zip(axes[:, 0], regimes):
        box = ax.get_window_extent()
        pt_y = box.height / fig.dpi * 72                          # points per unit of share
        pt_x = box.width / fig.dpi * 72 / np.ptp(ax.get_xlim())   # points per generation
        if 0.8 * pt_x < 1.2 * size:
            continue
        hist = hists[regime]
        tops = np.cumsum(hist, axis=1)
        for i, g in enumerate(x):
            for d in range(N_CLASSES):
                if hist[i, d] * pt_y >= 1.15 * size:
                    ax.text(g, tops[i, d] - hist[i, d] / 2, str(d), ha="center", va="center",
                            fontsize=size, color=_ink(DIGIT_COLORS[d]))
    return fig


def plot_depth(record, metric: str = "latent_spread", regimes: Sequence[str] | None = None):
    """Left: the theory's mean number of fits between the real digits and each generation's
    data (:func:`~collapse_utils.vae.experiment.data_depth`); right: ``metric`` against it,
    one point per generation and seed: if the data's depth drives the collapse, every
    regime falls on one curve."""
    from ..plotting import theory

    regimes = list(regimes or record.values("regime"))
    fig, axes = _figure(record, 2, height=3.0,
                        note=f"one point per generation and seed ({_seeds(record)})")
    x = record.generations
    fine = np.linspace(0, x[-1], 200)
    for k, regime in enumerate(regimes):
        share = real_share(regime, record.settings["real_fraction"])
        theory(axes[0], fine, data_depth(share, fine), label=None, color=_color(regime, k))
        axes[0].plot(x, data_depth(share, x), "o", ms=4, color=_color(regime, k),
                     label=regime_name(regime, record))
        y = record.metric(metric, regime=regime)
        axes[1].plot(np.broadcast_to(data_depth(share, x), y.shape).ravel(), y.ravel(), "o", ms=4,
                     alpha=0.75, color=_color(regime, k), label=regime_name(regime, record))
    axes[0].set_xlabel("generation")
    axes[0].set_ylabel("mean fits since real data")
    whole_generations(axes[0])
    axes[0].legend()
    axes[1].set_xlabel("mean fits since real data (theory)")
    axes[1].set_ylabel(metric.replace("_", " "))
    axes[0].set_title("how far the data has drifted")
    axes[1].set_title(f"{metric.replace('_', ' ')} against it")
    return fig


def _nanmedian(values) -> np.ndarray:
    """The median over seeds (axis 0) of the finite values; NaN, quietly, where there are none
    (the sharp samples' class mix once fewer than 20 samples are sharp)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(values, axis=0)


def summary(record, regime: str = "replace") -> dict:
    """Medians over seeds of the numbers the prose quotes, for one regime.

    ``std``/``spread``/``entropy``/``sharp_entropy``/``confidence``/``solid_ink``/``sharp_share``/
    ``recognisable``: arrays over
    generations; ``top_share_last``/``top_digit_last``: the most common digit's share
    at the last generation.
    """
    med = lambda name: _nanmedian(record.metric(name, regime=regime))  # noqa: E731
    hist = record.metric("class_hist", regime=regime)[:, -1].mean(axis=0)
    return {"std": med("latent_std"), "spread": med("latent_spread"), "entropy": med("class_entropy"),
            "sharp_entropy": med("sharp_entropy"), "confidence": med("reader_confidence"),
            "sharp_share": med("sharp_share"), "solid_ink": med("solid_ink"),
            "recognisable": med("recognisable"),
            "top_share_last": float(hist.max()), "top_digit_last": int(hist.argmax())}
