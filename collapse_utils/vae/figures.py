"""The VAE chapter's figures and the numbers its prose quotes, all read from a Record.

Every function takes the record :func:`collapse_utils.run` returned; saved weights
are found through ``record.run_dir(regime=..., seed=...)``.  Titles carry the short
stand-in label; the full sentence is printed once in the chapter.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..loop import load_generation, rng_for, seed_for
from .data import load_mnist, stand_in_label
from .experiment import PAPER_LATENT_STD, data_depth, real_share
from .measure import LATENT_EDGES, N_CLASSES
from .model import load_vae



def _page_width() -> float:
    """The widest a figure is drawn (:data:`collapse_utils.plotting.PAGE_WIDTH`; imported late,
    like matplotlib)."""
    from ..plotting import PAGE_WIDTH

    return PAGE_WIDTH

def regime_name(regime: str, record) -> str:
    """How a regime is named in legends: "replace", "keep 10% real", ..."""
    if regime == "replace":
        return "replace"
    share = real_share(regime, record.settings["real_fraction"])
    return f"keep {100 * share:g}% real" if share else regime


def _color(regime: str, k: int):
    from ..plotting import REGIME_COLORS

    extra = {"keep-real-25": "#7d3c98", "keep-real-50": "#2471a3"}
    return REGIME_COLORS.get(regime) or extra.get(regime) or f"C{k}"


def _title(ax, record, title: str):
    from ..plotting import label_stand_in

    label_stand_in(ax, title, stand_in_label(record.stand_in))


def _integer_ticks(ax):
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


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
    """Per regime a panel: a row of real digits, then one row of samples per generation."""
    import matplotlib.pyplot as plt

    regimes = list(regimes or record.values("regime"))
    gens = [g for g in generations if g in record.generations]
    rows = [real_digits(record, n)]
    size = (min(_page_width(), len(regimes) * (0.42 * n + 1.2)), 0.45 * len(gens) + 1.4)
    fig, axes = plt.subplots(1, len(regimes), figsize=size, squeeze=False)
    for ax, regime in zip(axes[0], regimes):
        grid = rows + [generation_samples(record, g, regime=regime, n=n) for g in gens]
        ax.imshow(np.concatenate([np.concatenate(list(r), axis=1) for r in grid]),
                  cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([]), ax.grid(False)
        ax.set_yticks(14 + 28 * np.arange(len(grid)), ["real"] + [f"gen {g}" for g in gens])
        ax.axhline(28 - 0.5, color="#1e8449", lw=2)
        _title(ax, record, regime_name(regime, record))
    fig.tight_layout()
    return fig


def plot_latent_histograms(record, regimes: Sequence[str] | None = None):
    """Density of the gen-0 encoder's latent means of each generation's samples (all seeds)."""
    import matplotlib.pyplot as plt

    from ..plotting import generation_colorbar, generation_colors

    regimes = list(regimes or record.values("regime"))
    fig, axes = plt.subplots(1, len(regimes), figsize=(_page_width(), 3.4), sharey=True,
                             squeeze=False)
    gens, last = list(record.generations), int(record.generations[-1])
    centres, width = (LATENT_EDGES[:-1] + LATENT_EDGES[1:]) / 2, np.diff(LATENT_EDGES)
    xs = np.linspace(-4, 4, 200)
    for ax, regime in zip(axes[0], regimes):
        counts = record.metric("latent_hist", regime=regime).sum(axis=0)
        for g, color in zip(gens, generation_colors(gens, last)):
            ax.plot(centres, counts[g] / counts[g].sum() / width, color=color)
        ax.plot(xs, np.exp(-xs**2 / 2) / np.sqrt(2 * np.pi), color="black", ls="--", lw=1,
                label="N(0, 1)")
        ax.set_xlabel("latent mean (gen-0 encoder)")
        _title(ax, record, regime_name(regime, record))
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
    _integer_ticks(ax)


def plot_latent_stats(record, regimes: Sequence[str] | None = None, paper: bool = True):
    """The protocol's pooled latent std and the spread across samples against generation,
    a band over seeds per regime, the public notebook's ranges as black bars, the
    real digits' value as a green line."""
    import matplotlib.pyplot as plt

    regimes = list(regimes or record.values("regime"))
    fig, axes = plt.subplots(1, 2, figsize=(_page_width(), 3.4))
    _by_regime(axes[0], record, "latent_std", regimes)
    _by_regime(axes[1], record, "latent_spread", regimes)
    real = np.median([r["facts"].get("real_latent_std", np.nan) for r in record.runs()])
    axes[0].axhline(real, color="#1e8449", ls=":", lw=1.5, label="real digits")
    if paper:
        for g, (lo, hi) in PAPER_LATENT_STD.items():
            if g <= record.generations[-1]:
                axes[0].errorbar([g], [(lo + hi) / 2], yerr=[[(hi - lo) / 2]], fmt="s", color="black",
                                 capsize=4, ms=4, label="public notebook" if g == 1 else None)
    axes[0].set_ylabel("np.std of all latent means")
    axes[1].set_ylabel("std across samples")
    axes[1].set_ylim(bottom=0)
    axes[0].legend(fontsize=8)
    _title(axes[0], record, "pooled latent std")
    _title(axes[1], record, "spread across samples")
    fig.tight_layout()
    return fig


def plot_reader(record, regimes: Sequence[str] | None = None):
    """Blur beside diversity: the samples' sharpness (median solid-ink share), and the entropy
    of the class mix of all samples (solid, band over seeds) and of the sharp ones (dotted)."""
    import matplotlib.pyplot as plt

    regimes = list(regimes or record.values("regime"))
    fig, axes = plt.subplots(1, 2, figsize=(_page_width(), 3.4))
    _by_regime(axes[0], record, "solid_ink", regimes)
    _by_regime(axes[1], record, "class_entropy", regimes)
    for k, regime in enumerate(regimes):
        sharp = record.metric("sharp_entropy", regime=regime)
        if np.isfinite(sharp).any(axis=0).any():
            axes[1].plot(record.generations, _nanmedian(sharp), ls=":", marker="x", ms=4,
                         color=_color(regime, k))
    axes[0].axhline(record.fact("real_solid_ink"), color="#1e8449", ls=":", lw=1.5, label="real digits")
    axes[1].axhline(record.fact("real_class_entropy"), color="#1e8449", ls=":", lw=1.5)
    axes[0].set_ylabel("share of ink that is solid")
    axes[1].set_ylabel("entropy of class mix (bits)")
    axes[0].set_ylim(0, 1)
    axes[1].set_ylim(0, np.log2(N_CLASSES) + 0.1)
    axes[0].legend(fontsize=8)
    _title(axes[0], record, "sharpness of the samples")
    _title(axes[1], record, "class mix: all (solid), sharp (dotted)")
    fig.tight_layout()
    return fig


def plot_class_mix(record, regimes: Sequence[str] | None = None):
    """The share of samples read as each digit against generation (mean over seeds)."""
    import matplotlib.pyplot as plt

    regimes = list(regimes or record.values("regime"))
    fig, axes = plt.subplots(1, len(regimes), figsize=(_page_width(), 3.4), sharey=True,
                             squeeze=False)
    x = record.generations
    cmap = plt.get_cmap("tab10")
    for ax, regime in zip(axes[0], regimes):
        hist = record.metric("class_hist", regime=regime).mean(axis=0)
        bottom = np.zeros(len(x))
        for d in range(N_CLASSES):
            ax.bar(x, hist[:, d], bottom=bottom, color=cmap(d), label=str(d), width=0.8)
            bottom += hist[:, d]
        ax.set_xlabel("generation")
        _integer_ticks(ax)
        _title(ax, record, regime_name(regime, record))
    axes[0, 0].set_ylabel("share read as each digit")
    axes[0, -1].legend(ncol=1, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), title="digit")
    fig.tight_layout()
    return fig


def plot_depth(record, metric: str = "latent_spread", regimes: Sequence[str] | None = None):
    """Left: the theory's mean number of fits between the real digits and each generation's
    data (:func:`~collapse_utils.vae.experiment.data_depth`); right: ``metric`` against it,
    one point per generation and seed: if the data's depth drives the collapse, every
    regime falls on one curve."""
    import matplotlib.pyplot as plt

    from ..plotting import theory

    regimes = list(regimes or record.values("regime"))
    fig, axes = plt.subplots(1, 2, figsize=(_page_width(), 3.4))
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
    _integer_ticks(axes[0])
    axes[0].legend(fontsize=8)
    axes[1].set_xlabel("mean fits since real data (theory)")
    axes[1].set_ylabel(metric.replace("_", " "))
    _title(axes[0], record, "how far the data has drifted")
    _title(axes[1], record, f"{metric.replace('_', ' ')} against it")
    fig.tight_layout()
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
