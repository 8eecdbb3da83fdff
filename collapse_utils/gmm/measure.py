"""One generation's metrics: distance to generation 0, component spreads, weights, tails."""
from __future__ import annotations

import numpy as np

from .distance import l2_distance
from .mixture import as_mixture, component_geo_stds, component_stds, mixture_moments
from .tails import tail_coverage, tail_ratio


def measure_mixture(model, first_model, original, tails: bool = True) -> dict:
    """One generation's metrics (without the four tail metrics when ``tails`` is False: they
    cost half of a generation's time, and the curation sweep does not draw them).

    l2_to_gen0        :func:`~collapse_utils.gmm.distance.l2_distance` to generation 0's mixture
    component_std     mean over components of :func:`component_stds` (the public notebook's
                      ``sqrt(trace(cov_k) / n_components)`` for K = d = 2)
    component_stds    each component's std, largest first
    log_geo_std       mean over components of log :func:`component_geo_stds`
    total_log_geo_std (1/2d) log det Cov of the whole mixture: EM reproduces the sample
                      covariance of its data, so this drifts like a refitted Gaussian's
    weights           the mixing weights, largest first
    weight_max        the largest mixing weight
    total_std         sqrt(trace(Cov)/d) of the whole mixture (its overall spread)
    mean_shift        distance of the mixture's mean from the original's mean
    tail_2sd, tail_3sd  :func:`tail_coverage` at radius 2 and 3 sd (share of p_0's tail covered)
    tail_ratio_2sd, tail_ratio_3sd  :func:`tail_ratio`: model tail mass / original's
    n_iter, converged the EM run of this generation's fit
    """
    mix = as_mixture(model)
    stds = component_stds(mix)
    mean, cov = mixture_moments(mix)
    omean, _ = mixture_moments(original)
    out = {
        "l2_to_gen0": l2_distance(mix, first_model),
        "component_std": float(stds.mean()),
        "component_stds": sorted(stds.tolist(), reverse=True),
        "log_geo_std": float(np.log(component_geo_stds(mix)).mean()),
        "total_log_geo_std": float(np.linalg.slogdet(cov)[1] / (2 * mix.dim)),
        "weights": sorted(mix.weights.tolist(), reverse=True),
        "weight_max": float(mix.weights.max()),
        "total_std": float(np.sqrt(np.trace(cov) / mix.dim)),
        "mean_shift": float(np.linalg.norm(mean - omean)),
        "n_iter": -1 if mix.n_iter is None else int(mix.n_iter),
        "converged": bool(mix.converged) if mix.converged is not None else True,
    }
    if tails:
        cover = tail_coverage(mix, original, [2.0, 3.0])
        ratios = tail_ratio(mix, original, [2.0, 3.0])
        out.update({"tail_2sd": float(cover[0]), "tail_3sd": float(cover[1]),
                    "tail_ratio_2sd": float(ratios[0]), "tail_ratio_3sd": float(ratios[1])})
    return out
