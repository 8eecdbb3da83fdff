"""The chapter's figures, drawn from a :class:`~collapse_utils.record.Record`.

Each function reads the profile, the settings and (for the scatter grid) the
run's cache folder from the record, and starts its figure with
:func:`~collapse_utils.plotting.figure`, whose footer line says which run made it.
Panels are sized for a phone as well as for a page: at most three per row in the
scatter grid, two elsewhere.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..loop import load_generation, rng_for
from ..plotting import (PAGE_WIDTH, REGIME_COLORS, band, figure, figure_legend, generation_colors,
                        log_ticks, regime_label, theory)
from .experiment import SCATTER_GENERATIONS, run_real_data
from .mixture import as_mixture, sample_mixture
from .theory import expected_log_std_drift


def _headroom(ax, share: float = 0.3) -> None:
    """Extend the y-axis downwards so that the data keep the top ``1 - share`` of the panel and
    a legend at the bottom covers none of them (on a log axis in log units)."""
    lo, hi = ax.get_ylim()
    grow = share / (1 - share)
    ax.set_ylim(lo / (hi / lo) ** grow if ax.get_yscale() == "log" else lo - (hi - lo) * grow, hi)


METRIC_LABELS = {
    "component_std": "component std",
    "geo_std": "components' geometric-mean std",
    "total_geo_std": "mixture's geometric-mean std",
    "l2_to_gen0": r"$\int (p_n - p_0)^2\,dx$",
    "total_std": "std of the whole mixture",
    "mean_shift": "distance of the mean from the origin",
    "weight_max": "largest mixing weight",
    "tail_2sd": "tail coverage beyond 2 sd",
    "tail_3sd": "tail coverage beyond 3 sd",
    "tail_ratio_2sd": "tail mass ratio beyond 2 sd",
    "tail_ratio_3sd": "tail mass ratio beyond 3 sd",
}


#: metrics drawn as exp of a recorded log metric
DERIVED = {"geo_std": "log_geo_std", "total_geo_std": "total_log_geo_std"}


def sweep_metric(record, key: str, **selection) -> np.ndarray:
    """``record.metric(key, ...)``, or exp of the recorded log for a key of :data:`DERIVED`."""
    if key in DERIVED:
        return np.exp(record.metric(DERIVED[key], **selection))
    return record.metric(key, **selection)


def scatter_generations(record) -> list[int]:
    """The public notebook's scatter generations that this record's runs reached."""
    last = int(record.generations[-1])
    return [g for g in SCATTER_GENERATIONS if g <= last]


def load_models(record, generations: Sequence[int], **selection) -> dict:
    """{generation: Mixture} of one run, read from its cache folder (``rec.run_dir``)."""
    folder = record.run_dir(**selection)
    return {int(g): as_mixture(load_generation(folder, int(g))) for g in generations}


def draw_mixture(ax, model, *, color="C0", n_sd: float = 2.0, **kw) -> None:
    """Draw each component's ``n_sd`` standard-deviation ellipse, line width by weight."""
    from matplotlib.patches import Ellipse

    mix = as_mixture(model)
    for w, mu, S in zip(mix.weights, mix.means, mix.covariances):
        vals, vecs = np.linalg.eigh(S)
        angle = math.degrees(math.atan2(vecs[1, -1], vecs[0, -1]))
        width, height = 2 * n_sd * np.sqrt(np.clip(vals[::-1], 0, None))
        ax.add_patch(Ellipse(mu, width, height, angle=angle, fill=False, edgecolor=color,
                             linewidth=0.8 + 2.4 * float(w), **kw))


def plot_scatter_grid(record, generations: Sequence[int] | None = None, *, points: int = 1000,
                      lim: float | None = None, ncol: int = 3, **selection):
    """Real data and samples of the given generations' mixtures of one run, on the same axes.

    Models are loaded from the run's cache folder; each panel shows ``points``
    fresh draws from that generation's mixture (the run's ``figure`` stream) and
    the components' 2-sd ellipses.  ``generations`` defaults to
    :func:`scatter_generations`.
    """
    run = record.one(**selection)
    seed = int(run.get("seed", record.seed))
    gens = list(generations if generations is not None else scatter_generations(record))
    models = load_models(record, gens, **selection)
    real = run_real_data(record.settings, seed)
    lim = float(np.ceil(np.abs(real).max() + 0.5)) if lim is None else lim
    panels = [("real data $D_0$", real, None, REGIME_COLORS["real"])]
    for g, c in zip(gens, generation_colors(gens, int(record.generations[-1]))):
        x = sample_mixture(models[g], points, rng_for(seed, "figure", g))
        panels.append((f"generation {g}", x, models[g], c))
    nrow = math.ceil(len(panels) / ncol)
    fig, axes = figure(record, grid=(nrow, ncol), height=PAGE_WIDTH / ncol, sharex=True,
                       sharey=True, note=f"{points} fresh draws per panel; black: 2-sd ellipses")
    for ax, (title, x, model, color) in zip(axes.flat, panels):
        ax.scatter(x[:, 0], x[:, 1], s=3, alpha=0.4, color=color, linewidths=0)
        if model is not None:
            draw_mixture(ax, model, color="black")
        ax.set_title(title)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_axis_off()
    return fig


def plot_protocol(record, **selection):
    """Four panels against generation for one run: the L2 distance to generation 0 (log
    scale); the spread of the components and of the whole mixture with the sampling-error
    drift of the whole (:func:`~collapse_utils.gmm.theory.expected_log_std_drift`, N = M);
    the lighter component's weight; the tails beside the mixture's overall std."""
    gens = record.generations
    one = lambda key: record.metric(key, **selection)[0]  # noqa: E731
    M = int(record.settings["points"])
    light = one("weights")[:, -1]
    fig, axes = figure(record, grid=(2, 2), height=2.9, note=f"one run, M = {M} points")
    ax1, ax2, ax3, ax4 = axes.flat
    ax1.plot(gens[1:], one("l2_to_gen0")[1:], color="C0")
    ax1.set_yscale("log")
    log_ticks(ax1)
    ax1.set(xlabel="generation", ylabel=r"$\int (p_n - p_0)^2\,dx$",
            title="L2 distance to generation 0")
    total = one("total_log_geo_std")
    ax2.plot(gens, np.exp(total), color="black", label="whole mixture, geometric mean")
    ax2.plot(gens, one("component_std"), color="C3", label="components, mean std")
    theory(ax2, gens, np.exp(total[0] + gens * expected_log_std_drift(M)),
           label=f"one Gaussian, N = M = {M}")
    ax2.set_yscale("log")
    _headroom(ax2)
    log_ticks(ax2)
    ax2.set(xlabel="generation", ylabel="standard deviation", title="Spread")
    ax2.legend(loc="lower left")
    ax3.plot(gens, light, color="0.5", linewidth=0.7)
    ax3.axhline(light.mean(), color="C1", label=f"mean {light.mean():.2f}")
    ax3.axhline(0.5, color="0.3", linewidth=0.8, linestyle=":")
    ax3.set(xlabel="generation", ylabel="weight", ylim=(0, 0.55),
            title="Weight of the lighter component")
    ax3.legend(loc="lower right")
    ax4.plot(gens, one("total_std"), color="black", label="std of the mixture")
    ax4.plot(gens, one("tail_2sd"), color="C1", label="tail coverage, 2 sd")
    ax4.plot(gens, one("tail_3sd"), color="C4", label="tail coverage, 3 sd")
    ax4.axhline(1.0, color="0.5", linewidth=0.8)
    ax4.set(xlabel="generation", ylabel="relative to the original", title="Tails and spread")
    _headroom(ax4)
    ax4.legend(loc="lower left")
    return fig


def plot_sweep(record, variant: str, metrics: Sequence[str] = ("component_std", "l2_to_gen0"), *,
               log: Sequence[str] = ("l2_to_gen0",), reference: dict | None = None,
               title: str | None = None):
    """One panel per metric (two per row): per regime, the median over seeds and a 10-90% band.

    ``reference`` maps a metric to a list of (x, y, label) theory curves on its panel.
    With an odd number of panels, the empty slot holds the legend.
    """
    if variant not in record.values("variant"):
        raise ValueError(f"variant must be one of {', '.join(record.values('variant'))}; "
                         f"got {variant!r}")
    gens = record.generations
    nrow = math.ceil(len(metrics) / 2)
    ncol = min(2, len(metrics))
    n_seeds = len(record.values("seed"))
    fig, axes = figure(record, grid=(nrow, ncol), height=3.0,
                       title=title or f"{variant}: median over {n_seeds} seeds, 10-90% band",
                       note=f"M = {record.settings['points']} points per generation")
    for ax, key in zip(axes.flat, metrics):
        for r in record.values("regime"):
            y, x = sweep_metric(record, key, variant=variant, regime=r), gens
            if key in log and np.all(y[:, 0] <= 0):  # e.g. the distance of generation 0
                x, y = x[1:], y[:, 1:]
            band(ax, x, y, label=regime_label(r, record), color=REGIME_COLORS.get(r))
        for style, (xr, yr, lab) in zip(("--", ":", "-."), (reference or {}).get(key, [])):
            theory(ax, xr, yr, label=lab, linestyle=style)
        if key in log:
            ax.set_yscale("log")
            log_ticks(ax)
        ax.set(xlabel="generation", ylabel=METRIC_LABELS.get(key, key))
        if len(metrics) % 2 == 0:
            ax.legend()
    spare = list(axes.flat)[len(metrics):]
    for ax in spare:
        ax.set_axis_off()
    if spare:  # one legend for every panel, in the empty slot
        handles = {}
        for ax in axes.flat[:len(metrics)]:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(lab, h)
        spare[0].legend(list(handles.values()), list(handles), loc="center")
    return fig


# ----------------------------------------------------------------------------- curation
def _same_sizes(*records) -> None:
    """Raise ValueError unless the records ran the same points, generations and variant."""
    keys = ("points", "generations", "variant", "components")
    first = {k: records[0].settings.get(k) for k in keys}
    for rec in records[1:]:
        other = {k: rec.settings.get(k) for k in keys}
        if other != first:
            raise ValueError(f"records must share {', '.join(keys)}; got {first} and {other}")


def _end_band(record, key: str, axis: str) -> tuple[np.ndarray, np.ndarray]:
    """(axis values, last-generation values per seed: (values, seeds)) of one sweep axis."""
    xs = np.asarray(record.values(axis), dtype=float)
    return xs, np.stack([sweep_metric(record, key, **{axis: x})[:, -1] for x in xs])


def plot_verifier_transition(verify, reference, metrics: Sequence[str] = ("l2_to_gen0", "component_std")):
    """The last generation's ``metrics`` against the verifier's error rate, one panel each.

    ``verify`` ran ``regime=["verify"]`` over ``verifier_error``; ``reference`` ran
    ``replace`` and ``keep-real`` at the same sizes, drawn as horizontal lines (median over
    seeds, with their 10-90% range shaded).  Dotted vertical line: the error rate at which
    the verified share of a training set equals keep-real's real share while the model is
    at p_0 (:func:`~collapse_utils.gmm.curation.error_for_share`), where the two should meet.
    """
    from .curation import error_for_share

    _same_sizes(verify, reference)
    last = int(verify.generations[-1])
    share = float(reference.settings["real_fraction"])
    e_share = error_for_share(share, float(verify.settings["verify_bound"]))
    n_seeds = len(verify.values("seed"))
    fig, axes = figure(verify, grid=(1, len(metrics)), height=3.5,
                       note=f"M = {verify.settings['points']}, {n_seeds} seeds, "
                            "median and 10-90% band")
    for ax, key in zip(axes.flat, metrics):
        qs, y = _end_band(verify, key, "verifier_error")
        color = REGIME_COLORS["verify"]
        ax.fill_between(qs, *np.quantile(y, [0.1, 0.9], axis=1), color=color, alpha=0.25,
                        linewidth=0)
        ax.plot(qs, np.median(y, axis=1), "o-", color=color, markersize=4, label="verify")
        for r in ("replace", "keep-real"):
            level = sweep_metric(reference, key, regime=r)[:, -1]
            c = REGIME_COLORS[r]
            ax.axhspan(*np.quantile(level, [0.1, 0.9]), color=c, alpha=0.10, linewidth=0)
            ax.axhline(np.median(level), color=c, linestyle="--", linewidth=1.4,
                       label=regime_label(r, reference))
        if key == "component_std":
            start = np.median(sweep_metric(verify, key)[:, 0])
            ax.axhline(start, color="black", linestyle=":", linewidth=1.2, label="generation 0")
        ax.axvline(e_share, color="0.45", linestyle=":", linewidth=1.2,
                   label=f"verified share {100 * share:g}% (prediction)")
        if key == "l2_to_gen0":
            ax.set_yscale("log")
            log_ticks(ax)
        ax.set(xlabel="verifier error rate $e$", ylabel=METRIC_LABELS.get(key, key),
               title=f"generation {last}")
    figure_legend(fig, axes.flat)
    return fig


def plot_self_correct(correct, reference, metrics: Sequence[str] = ("total_geo_std", "l2_to_gen0")):
    """``metrics`` against generation under ``self-correct`` for each strength gamma that
    ``correct`` ran, beside ``replace`` from ``reference``: median over seeds and a 10-90% band.
    The whole mixture's geometric-mean std carries its prediction for each gamma
    (:func:`~collapse_utils.gmm.curation.self_corrected_std`; gamma = 0 is replace's drift)."""
    from .curation import self_corrected_std

    _same_sizes(correct, reference)
    gens = correct.generations
    M = int(correct.settings["points"])
    gammas = correct.values("gamma")
    colors = generation_colors(range(len(gammas) + 1), len(gammas) + 1)[1:]
    runs = [(r"replace ($\gamma$ = 0)", REGIME_COLORS["replace"], reference, dict(regime="replace"), 0.0)]
    runs += [(rf"self-correct, $\gamma$ = {g:g}", c, correct, dict(gamma=g), g)
             for g, c in zip(gammas, colors)]
    n_seeds = len(correct.values("seed"))
    fig, axes = figure(correct, grid=(1, len(metrics)), height=3.5,
                       note=f"M = {M}, {n_seeds} seeds, median and 10-90% band")
    for ax, key in zip(axes.flat, metrics):
        for label, color, rec, sel, g in runs:
            y, x = sweep_metric(rec, key, **sel), gens
            if key == "l2_to_gen0":
                x, y = x[1:], y[:, 1:]
            band(ax, x, y, label=label, color=color)
            if key == "total_geo_std":
                start = float(np.exp(np.median(rec.metric("total_log_geo_std", **sel)[:, 0])))
                theory(ax, gens, self_corrected_std(gens, g, start, M),
                       label="prediction" if g == 0.0 else None)
        if key in ("l2_to_gen0", "total_geo_std", "component_std"):
            ax.set_yscale("log")
            log_ticks(ax)
        ax.set(xlabel="generation", ylabel=METRIC_LABELS.get(key, key))
    figure_legend(fig, axes.flat, ncol=4, last=("prediction",))
    return fig
