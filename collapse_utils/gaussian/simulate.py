"""Many Gaussian chains refitted at once, through the book's generational loop.

A data set is stored as *sufficient statistics*: an array of records
``[count, mean (d), scatter (d*d)]`` along axis 1, one record per group of samples.
Records of groups pool exactly (Chan, Golub & LeVeque's update), so the regimes of
:mod:`collapse_utils.regimes` (replace, accumulate, keep-real) act on them as they
would on points.  With ``method="stats"`` the record of k fresh samples from
N(m, S) is drawn directly, exact in distribution:

    sample mean ~ N(m, S / k),   scatter ~ Wishart(k - 1, S)  (1-D: S chi2_{k-1}),

independent of each other (Cochran's theorem); ``method="points"`` draws the k
points themselves (one record per point), the reference the tests compare with.

Generations are the loop's: generation 0 fits D_0 (the real data), generation g
is the (g + 1)-th fit and draws its randomness from ``rng_for(seed, "generation", g)``;
D_0 comes from ``rng_for(seed, "real")``.
"""
from __future__ import annotations

import math
from functools import partial

import numpy as np

from ..loop import rng_for, run_generations
from ..regimes import CURATION_REGIMES, REGIMES, Mix, Regime, as_schedule, concat, make_regime
from ..settings import Setting
from .theory import ESTIMATOR
from .w2 import as_gaussian, psd_sqrt

METHODS = ("stats", "points")
SOURCES = ("normal", "laplace", "two-modes")

#: the arguments of :func:`simulate`, checked by the core's schema
ARGUMENTS = {
    "M": Setting(100, low=2),
    "generations": Setting(0, low=0),
    "chains": Setting(1, low=1),
    "estimator": ESTIMATOR,
    "regime": Setting("replace", choices=REGIMES + CURATION_REGIMES),
    "method": Setting("stats", choices=METHODS),
    "seed": Setting(0, low=0),
    "real_fraction": Setting(0.1, low=0.0, high=1.0),
}


# ----------------------------------------------------------------------------- records
def record_width(d: int) -> int:
    """Length of one record [count, mean (d), scatter (d*d)]."""
    return 1 + d + d * d


def _dim(width: int) -> int:
    return int(round((-1 + math.sqrt(1 + 4 * (width - 1))) / 2))


def points_to_stats(points) -> np.ndarray:
    """Records (chains, k, 1 + d + d*d) of single points (chains, k, d): count 1, scatter 0."""
    x = np.asarray(points, dtype=float)
    chains, k, d = x.shape
    rec = np.zeros((chains, k, record_width(d)))
    rec[..., 0] = 1.0
    rec[..., 1:1 + d] = x
    return rec


def pooled_stats(records) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(count (chains,), mean (chains, d), scatter (chains, d, d)) of all records along axis 1.

    Pools exactly: n = sum n_r, mean = sum n_r m_r / n,
    scatter = sum S_r + sum n_r (m_r - mean)(m_r - mean)^T (no cancellation).
    """
    rec = np.asarray(records, dtype=float)
    chains, R, width = rec.shape
    if R == 1 and width == 3:  # one 1-D record
        return rec[:, 0, 0], rec[:, 0, 1:2], rec[:, 0, 2:3].reshape(chains, 1, 1)
    d = _dim(width)
    n_r, m_r = rec[..., 0], rec[..., 1:1 + d]
    S_r = rec[..., 1 + d:].reshape(chains, R, d, d)
    if R == 1:
        return n_r[:, 0], m_r[:, 0], S_r[:, 0]
    n = n_r.sum(1)
    mean = np.einsum("cr,cri->ci", n_r, m_r) / n[:, None]
    dev = m_r - mean[:, None, :]
    if d == 1:
        scatter = (S_r[..., 0, 0].sum(1) + np.einsum("cr,cr->c", n_r, dev[..., 0] ** 2))[:, None, None]
    else:
        scatter = S_r.sum(1) + np.einsum("cr,cri,crj->cij", n_r, dev, dev)
    return n, mean, scatter


def pack(n, mean, scatter) -> np.ndarray:
    """One record per chain, (chains, 1, width), from pooled (count, mean, scatter)."""
    chains, d = mean.shape
    rec = np.empty((chains, 1, record_width(d)))
    rec[:, 0, 0] = n
    rec[:, 0, 1:1 + d] = mean
    rec[:, 0, 1 + d:] = scatter.reshape(chains, d * d)
    return rec


class PooledAccumulate(Regime):
    """``accumulate`` on sufficient statistics: the previous training set, already pooled
    into one record per chain, pooled with the fresh record.

    The same data as :class:`~collapse_utils.regimes.Accumulate` (real data and every
    generation's samples) and the same random draws, but each generation costs O(chains)
    instead of O(chains x generation).
    """

    name = "accumulate"
    uses_previous = True

    def next_data(self, draw, m, *, previous, real, pool, rng, axis=0):
        new = draw(m)
        return pack(*pooled_stats(concat([previous, new], axis))), new


# ----------------------------------------------------------------------------- fit and draw
def fit_gaussian(records, rng=None, estimator: str = "unbiased"):
    """(means (chains, d), covs (chains, d, d)) fitted to each chain's records.

    ``estimator="unbiased"`` divides the scatter by n - 1, ``"mle"`` by n (the
    public notebook's ``np.std``).
    """
    n, mean, scatter = pooled_stats(records)
    denom = n - 1 if estimator == "unbiased" else n
    cov = scatter / denom[:, None, None]
    if cov.shape[-1] > 1:
        cov = 0.5 * (cov + np.swapaxes(cov, -1, -2))
    return mean, cov


def wishart_identity(k: int, d: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` draws of Wishart(k, I_d), shape (size, d, d) (Bartlett when k >= d)."""
    if k >= d:
        A = np.zeros((size, d, d))
        rows, cols = np.tril_indices(d, -1)
        A[:, rows, cols] = rng.standard_normal((size, rows.size))
        A[:, np.arange(d), np.arange(d)] = np.sqrt(rng.chisquare(k - np.arange(d), (size, d)))
        return A @ np.swapaxes(A, -1, -2)
    G = rng.standard_normal((size, d, k))
    return G @ np.swapaxes(G, -1, -2)


def draw_stats(model, k: int, rng: np.random.Generator) -> np.ndarray:
    """The record (chains, 1, width) of k fresh samples per chain, drawn from its law.

    mean ~ N(m, S/k) and scatter ~ Wishart(k - 1, S), independent: exactly the law of
    the sufficient statistics of k i.i.d. N(m, S) points.
    """
    means, covs = model
    chains, d = means.shape
    k = int(k)
    if k == 0:
        return np.zeros((chains, 0, record_width(d)))
    rec = np.empty((chains, 1, record_width(d)))
    rec[:, 0, 0] = k
    if d == 1:  # the hot path of the benchmark: few, in-place operations
        var = covs[:, 0, 0]
        z = rng.standard_normal(chains)
        np.multiply(z, np.sqrt(var * (1.0 / k)), out=z)
        np.add(z, means[:, 0], out=rec[:, 0, 1])
        if k > 1:
            chi2 = rng.standard_gamma(0.5 * (k - 1), chains)  # chi2_{k-1} / 2
            np.multiply(chi2, var, out=chi2)
            np.multiply(chi2, 2.0, out=rec[:, 0, 2])
        else:
            rec[:, 0, 2] = 0.0
        return rec
    root = psd_sqrt(covs)
    rec[:, 0, 1:1 + d] = means + np.einsum("cij,cj->ci", root, rng.standard_normal((chains, d))) / math.sqrt(k)
    if k > 1:
        scatter = root @ wishart_identity(k - 1, d, chains, rng) @ root
        rec[:, 0, 1 + d:] = scatter.reshape(chains, d * d)
    else:
        rec[:, 0, 1 + d:] = 0.0
    return rec


def draw_points(model, k: int, rng: np.random.Generator) -> np.ndarray:
    """k fresh points per chain from N(m, S), as k single-point records (chains, k, width)."""
    means, covs = model
    chains, d = means.shape
    z = rng.standard_normal((chains, int(k), d))
    if d == 1:
        x = means[:, None, :] + np.sqrt(covs[:, 0, 0])[:, None, None] * z
    else:
        x = means[:, None, :] + np.einsum("cij,ckj->cki", psd_sqrt(covs), z)
    return points_to_stats(x)


# ----------------------------------------------------------------------------- D_0
def sample_source(source: str, size, rng: np.random.Generator) -> np.ndarray:
    """Samples of a 1-D D_0 with mean 0 and variance 1.

    ``normal``: N(0, 1).  ``laplace``: Laplace with scale 1/sqrt(2).  ``two-modes``:
    an equal mixture of N(-a, s^2) and N(a, s^2) with s = 0.3, a = sqrt(1 - s^2).
    """
    Setting("normal", choices=SOURCES).check("source", source)
    if source == "normal":
        return rng.standard_normal(size)
    if source == "laplace":
        return rng.laplace(0.0, 1 / math.sqrt(2), size)
    s = 0.3
    sign = np.where(rng.random(size) < 0.5, -1.0, 1.0)
    return sign * math.sqrt(1 - s**2) + s * rng.standard_normal(size)


# ----------------------------------------------------------------------------- the chains
def prepare(mean, cov, M, generations, chains, estimator, seed, regime, schedule,
            real_fraction, method, real, curation: dict | None = None) -> dict:
    """Check the arguments of :func:`simulate` and build what the core loop needs.

    ``curation`` holds the settings of the curation regimes (1-D only): ``verifier_error``,
    ``verify_window`` and ``max_rounds`` for ``verify``, ``gamma`` for ``self-correct``
    (:mod:`.curation`); the verifier and the corrector know the real N(mean, cov)."""
    mean, cov = as_gaussian(mean, cov)
    d = mean.shape[0]
    if seed is None:
        seed = int(np.random.SeedSequence().entropy)
    given = dict(M=M, generations=generations, chains=chains, estimator=estimator, seed=seed,
                 regime=regime, method=method, real_fraction=real_fraction)
    a = {k: ARGUMENTS[k].check(k, v) for k, v in given.items()}
    if a["regime"] == "accumulate-subsample" and a["method"] == "stats":
        raise ValueError("regime 'accumulate-subsample' needs method='points': a random subset "
                         "of pooled samples has no exact sufficient-statistics law")
    sched = as_schedule(schedule, a["M"], name="schedule")
    for k in range(1, a["generations"] + 1):
        Setting(2, low=2).check(f"schedule M_{k}", sched(k))
    sample = draw_points if a["method"] == "points" else draw_stats
    if a["regime"] in CURATION_REGIMES:
        reg, tap = _curation_regime(a["regime"], mean, cov, curation or {})
    else:
        reg = make_regime(a["regime"], real_fraction=a["real_fraction"])  # subsample budget: M_i
    if a["regime"] in CURATION_REGIMES:    # both act on single samples (the core checks M of them)
        sample = tap or draw_points
    as_points = (a["method"] == "points" or isinstance(reg, Mix) or a["regime"] == "accumulate-subsample"
                 or a["regime"] in CURATION_REGIMES)
    if a["regime"] == "accumulate" and not as_points:
        reg = PooledAccumulate()
    c = a["chains"]
    if real is not None:
        pts = np.asarray(real, dtype=float)
        if pts.ndim == 2 and d == 1:
            pts = pts[..., None]
        if pts.ndim != 3 or pts.shape[0] != c or pts.shape[2] != d or pts.shape[1] < 2:
            raise ValueError(f"real must have shape (chains, M_0 >= 2, d) = ({c}, M, {d}); "
                             f"got {np.shape(real)}")
        real_data = points_to_stats(pts)
        if not as_points:
            real_data = pack(*pooled_stats(real_data))
    else:
        model0 = (np.broadcast_to(mean, (c, d)), np.broadcast_to(cov, (c, d, d)))
        draw0 = draw_points if as_points else draw_stats
        real_data = draw0(model0, a["M"], rng_for(a["seed"], "real"))
    return dict(
        mean=mean, cov=cov, d=d, chains=c, generations=a["generations"], seed=a["seed"],
        fit=partial(fit_gaussian, estimator=a["estimator"]),
        sample=sample, real_data=real_data, regime=reg, sizes=sched)


def _curation_regime(name: str, mean, cov, options: dict):
    """(regime, tap) for the real N(mean, cov), 1-D: ``verify`` samples points through a
    :class:`~.curation.ModelTap` (returned); ``self-correct`` needs none (tap None)."""
    from .curation import ModelTap, corrector, verifier

    if mean.shape[0] != 1:
        raise ValueError(f"regime {name} needs a 1-D Gaussian (dim 1); got dim {mean.shape[0]}")
    mu, sigma = float(mean[0]), float(np.sqrt(cov[0, 0]))
    if name == "verify":
        tap = ModelTap(draw_points)
        accept = verifier(tap, mu, sigma, float(options.get("verifier_error", 0.0)),
                          float(options.get("verify_window", 3.0)))
        return make_regime("verify", accept=accept,
                           max_rounds=int(options.get("max_rounds", 50))), tap
    regime = make_regime("self-correct", correct=corrector(mu, sigma),
                         gamma=float(options.get("gamma", 0.5)))
    return regime, None


def run_chains(prep: dict, measure, **loop_kw):
    """The core loop over generations 0..``generations`` of :func:`prepare`'s chains."""
    return run_generations(
        prep["fit"], prep["sample"], prep["real_data"], prep["generations"],
        regime=prep["regime"], sizes=prep["sizes"], seed=prep["seed"], measure=measure, axis=1,
        **loop_kw)


def simulate(mean, cov, M, generations, chains=1, estimator="unbiased", seed=None,
             regime="replace", schedule=None, *, real_fraction=0.1, method="stats", real=None,
             curation=None, progress=False):
    """Generations 0..``generations`` of the Gaussian refit, ``chains`` independent chains at once.

    Generation 0 fits mean and covariance (``estimator``: "unbiased" or "mle") to D_0:
    ``M`` samples of N(mean, cov), or the given ``real`` samples, shape (chains, M_0, d),
    from any distribution whose moments are ``mean``/``cov``.  Generation g >= 1 fits
    a training set built by ``regime`` from generation g-1's samples: "replace" (the
    theorem), "accumulate", "keep-real" (a ``real_fraction`` of each training set drawn
    from D_0) or "accumulate-subsample" (points only), as in :mod:`collapse_utils.regimes`,
    or "verify" and "self-correct" (1-D, points; their settings in ``curation``: :func:`prepare`);
    ``schedule`` gives generation g's fresh sample size M_g (None: constant M, a
    :class:`~collapse_utils.regimes.Schedule`, "linear", "superlinear", or g -> M_g).
    So generation g is the (g + 1)-th fit: compare it with the theory at n = g + 1.

    ``cov`` is a (d, d) covariance, or in 1-D a scalar *variance*.  ``method="stats"``
    draws the sufficient statistics of the fresh samples (exact in distribution,
    independent of M in cost); ``"points"`` draws the points.

    Returns (means, covs) of shapes (chains, generations + 1, d) and
    (chains, generations + 1, d, d); index g is generation g's fitted Gaussian.

    Floating point limit in d > 1: the directions of Sigma_n shrink at different
    exponential rates, so its condition number grows without bound; once it nears
    1/eps ~ 1e16 the smallest direction is lost to rounding (det becomes 0).  With
    generations <= 5 M this stays below ~1e14 (checked for d = 3).
    """
    prep = prepare(mean, cov, M, generations, chains, estimator, seed, regime, schedule,
                   real_fraction, method, real, curation)
    c, g, d = prep["chains"], prep["generations"], prep["d"]
    # generation-major buffers (each generation writes one contiguous block), returned as
    # (chains, generations + 1, ...) views
    means, covs = np.empty((g + 1, c, d)), np.empty((g + 1, c, d, d))

    def store(gen):
        means[gen.index], covs[gen.index] = gen.model
        return {}

    run_chains(prep, store, progress=progress, desc="gaussian")
    return np.moveaxis(means, 0, 1), np.moveaxis(covs, 0, 1)


# ----------------------------------------------------------------------------- the intro's points model
def fit_normal_1d(data, rng=None, ddof: int = 1):
    """Fit (mean, std) along the last axis; ``ddof=1`` is the unbiased variance, 0 the MLE."""
    data = np.asarray(data, dtype=float)
    return data.mean(axis=-1), data.std(axis=-1, ddof=ddof)


def sample_normal_1d(model, m: int, rng: np.random.Generator):
    """m samples from N(mean, std^2) for every chain: shape (chains, m)."""
    mean, std = (np.asarray(v, dtype=float) for v in model)
    return mean[..., None] + std[..., None] * rng.standard_normal(mean.shape + (int(m),))
