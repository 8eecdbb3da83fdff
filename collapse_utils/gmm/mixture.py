"""The model: a Gaussian mixture as plain arrays, its EM fit, sampling and density.

The public protocol fits ``sklearn.mixture.GaussianMixture(n_components=2,
covariance_type="full", tol=1e-5, max_iter=2000)`` from scratch (k-means
initialisation, sklearn's default) to each generation's points
(Shumailov et al. 2024, supplement; the public notebook).  A fitted model is
kept as a :class:`Mixture`, so runs pickle small and resume exactly.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Mixture:
    """A fitted Gaussian mixture: weights (K,), means (K, d), full covariances (K, d, d).

    ``n_iter`` and ``converged`` record the EM run that produced it (None when the
    mixture was written down rather than fitted).
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    n_iter: int | None = None
    converged: bool | None = None

    @property
    def n_components(self) -> int:
        return int(self.weights.shape[0])

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])


def as_mixture(model) -> Mixture:
    """Weights, means and full covariances of ``model`` as a :class:`Mixture`.

    ``model`` is a :class:`Mixture`, a fitted ``sklearn.mixture.GaussianMixture``
    (any ``covariance_type``), or a tuple ``(weights, means, covariances)`` with
    covariances of shape (K, d, d).
    """
    if isinstance(model, Mixture):
        return model
    if hasattr(model, "weights_") and hasattr(model, "covariances_"):
        w, mu, cov = (np.asarray(a, dtype=float) for a in (model.weights_, model.means_,
                                                           model.covariances_))
        K, d = mu.shape
        kind = getattr(model, "covariance_type", "full")
        if kind == "full":
            pass
        elif kind == "tied":
            cov = np.broadcast_to(cov, (K, d, d)).copy()
        elif kind == "diag":
            cov = cov[:, :, None] * np.eye(d)
        elif kind == "spherical":
            cov = cov[:, None, None] * np.eye(d)
        else:
            raise ValueError(f"covariance_type must be one of full, tied, diag, spherical; "
                             f"got {kind!r}")
        return Mixture(w, mu, cov, getattr(model, "n_iter_", None), getattr(model, "converged_", None))
    if isinstance(model, (tuple, list)) and len(model) == 3:
        w, mu, cov = (np.asarray(a, dtype=float) for a in model)
        if mu.ndim == 1:  # one component given without its component axis
            mu = mu[None, :]
        w = np.atleast_1d(w)
        if cov.ndim == 2:
            cov = cov[None, :, :]
        K, d = mu.shape
        if w.shape != (K,) or cov.shape != (K, d, d):
            raise ValueError(f"model must be (weights (K,), means (K, d), covariances (K, d, d)); "
                             f"got shapes {w.shape}, {mu.shape}, {cov.shape}")
        return Mixture(w, mu, cov)
    raise ValueError("model must be a Mixture, a fitted sklearn GaussianMixture or a tuple "
                     f"(weights, means, covariances); got {type(model).__name__}")


def fit_mixture(data, rng: np.random.Generator, components: int = 2) -> Mixture:
    """Fit the protocol's mixture to ``data`` (n, d) from scratch, as the public code does.

    ``GaussianMixture(components, covariance_type="full", tol=1e-5, max_iter=2000)``
    with sklearn's default k-means initialisation, seeded by an integer drawn from
    ``rng`` so that the fit is a function of the generation's seed.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    gm = GaussianMixture(n_components=int(components), covariance_type="full", tol=1e-5,
                         max_iter=2000, random_state=int(rng.integers(2**31 - 1)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(np.asarray(data, dtype=float))
    return Mixture(gm.weights_.copy(), gm.means_.copy(), gm.covariances_.copy(),
                   int(gm.n_iter_), bool(gm.converged_))


def cholesky(covariances: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of (K, d, d) covariances (a symmetric square root if not PD)."""
    try:
        return np.linalg.cholesky(covariances)
    except np.linalg.LinAlgError:
        vals, vecs = np.linalg.eigh(covariances)
        return vecs * np.sqrt(np.clip(vals, 0.0, None))[..., None, :]


def sample_mixture(model, m: int, rng: np.random.Generator) -> np.ndarray:
    """m i.i.d. points (m, d) from a mixture: a component by weight, then a Gaussian draw.

    Uses only ``rng`` (not sklearn's ``sample``), so runs are reproducible and the
    points come out in random order.
    """
    mix = as_mixture(model)
    w = np.clip(mix.weights, 0.0, None)
    comps = rng.choice(mix.n_components, size=int(m), p=w / w.sum())
    z = rng.standard_normal((int(m), mix.dim))
    chol = cholesky(mix.covariances)
    return mix.means[comps] + np.einsum("nij,nj->ni", chol[comps], z)


def mixture_logpdf(model, x) -> np.ndarray:
    """log p(x) of a mixture at the points ``x`` (n, d)."""
    from scipy.special import logsumexp

    mix = as_mixture(model)
    x = np.atleast_2d(np.asarray(x, dtype=float))
    sign, logdet = np.linalg.slogdet(mix.covariances)
    inv = np.linalg.inv(mix.covariances)
    logs = []
    for w, mu, P, ld in zip(mix.weights, mix.means, inv, logdet):
        diff = x - mu
        maha = np.einsum("ni,ni->n", diff @ P, diff)
        logs.append(np.log(max(w, 1e-300)) - 0.5 * (mix.dim * math.log(2 * math.pi) + ld + maha))
    return logsumexp(np.array(logs), axis=0)


def mixture_moments(model) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the whole mixture (law of total covariance)."""
    mix = as_mixture(model)
    mean = mix.weights @ mix.means
    dev = mix.means - mean
    cov = np.einsum("k,kij->ij", mix.weights, mix.covariances) + np.einsum(
        "k,ki,kj->ij", mix.weights, dev, dev)
    return mean, cov


def component_stds(model) -> np.ndarray:
    """Each component's standard deviation sqrt(trace(S_k) / d): the RMS std over axes.

    For the protocol (K = 2 components in d = 2 dimensions) this is the public
    notebook's printed ``sqrt(trace(cov_k) / n_components)``.
    """
    mix = as_mixture(model)
    return np.sqrt(np.trace(mix.covariances, axis1=1, axis2=2) / mix.dim)


def component_geo_stds(model) -> np.ndarray:
    """Each component's geometric-mean standard deviation det(S_k)^(1/2d).

    Its logarithm, (1/2d) log det S_k, is what the exact sampling-error drift of
    :func:`collapse_utils.gmm.theory.expected_log_std_drift` describes.
    """
    mix = as_mixture(model)
    sign, logdet = np.linalg.slogdet(mix.covariances)
    return np.exp(logdet / (2 * mix.dim))
