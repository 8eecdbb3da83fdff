"""2-Wasserstein distances between Gaussians, and from a Gaussian to a 1-D sample.

Between two Gaussians W_2 has a closed form (Dowson & Landau 1982; Gelbrich 1990):

    W_2^2(N(m1, C1), N(m2, C2)) = |m1 - m2|^2 + tr(C1 + C2 - 2 (C2^{1/2} C1 C2^{1/2})^{1/2}).

Against the empirical distribution of a 1-D sample the optimal coupling pairs
quantiles, which gives another closed form (:func:`w2_squared_normal_to_sample`).
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtri


def check_covariance(cov, name: str = "cov", tol: float = 1e-8) -> np.ndarray:
    """``cov`` as a float array (..., d, d), or ValueError if not symmetric positive semi-definite.

    A scalar or an array of shape (...,) whose last axis is not square is *not*
    reinterpreted here; callers decide the 1-D convention.  Tolerances are relative
    to the largest entry.
    """
    c = np.asarray(cov, dtype=float)
    if c.ndim < 2 or c.shape[-1] != c.shape[-2]:
        raise ValueError(f"{name} must be a square matrix (..., d, d); got shape {c.shape}")
    if not np.all(np.isfinite(c)):
        raise ValueError(f"{name} must be finite")
    scale = max(1.0, float(np.max(np.abs(c)))) if c.size else 1.0
    if not np.allclose(c, np.swapaxes(c, -1, -2), rtol=0, atol=tol * scale):
        raise ValueError(f"{name} must be symmetric positive semi-definite; it is not symmetric")
    if c.shape[-1] == 1:
        low = c[..., 0, 0]
    else:
        low = np.linalg.eigvalsh(c)[..., 0] if c.size else np.zeros(0)
    if np.any(low < -tol * scale):
        raise ValueError(f"{name} must be symmetric positive semi-definite; "
                         f"smallest eigenvalue {float(np.min(low)):.3g}")
    return c


def as_gaussian(mean, cov) -> tuple[np.ndarray, np.ndarray]:
    """Validated (mean (d,), cov (d, d)); a scalar cov is a 1-D *variance*."""
    m = np.atleast_1d(np.asarray(mean, dtype=float))
    if m.ndim != 1 or not np.all(np.isfinite(m)):
        raise ValueError(f"mean must be a finite scalar or vector (d,); got shape {m.shape}")
    c = np.asarray(cov, dtype=float)
    if c.ndim == 0:
        c = c.reshape(1, 1)
    c = check_covariance(c, "cov")
    if c.ndim != 2 or c.shape[0] != m.shape[0]:
        raise ValueError(f"cov must have shape ({m.shape[0]}, {m.shape[0]}) to match mean; "
                         f"got {c.shape}")
    return m, c


def psd_sqrt(cov, return_eigenvalues: bool = False):
    """Symmetric square root of PSD matrices (..., d, d) by eigh, eigenvalues clipped at 0."""
    c = np.asarray(cov, dtype=float)
    w, v = np.linalg.eigh(c)
    root = (v * np.sqrt(np.clip(w, 0, None))[..., None, :]) @ np.swapaxes(v, -1, -2)
    return (root, w) if return_eigenvalues else root


def w2_squared(mean1, cov1, mean2, cov2) -> np.ndarray:
    """Squared 2-Wasserstein distance between N(mean1, cov1) and N(mean2, cov2), batched.

    |m1 - m2|^2 + tr(C1 + C2 - 2 (C2^{1/2} C1 C2^{1/2})^{1/2})  (Dowson & Landau 1982;
    Gelbrich 1990).  Means have shape (..., d), covariances (..., d, d); leading axes
    broadcast.  In 1-D this is (m1 - m2)^2 + (s1 - s2)^2, computed that way.
    """
    m1, m2 = np.asarray(mean1, dtype=float), np.asarray(mean2, dtype=float)
    c1, c2 = check_covariance(cov1, "cov1"), check_covariance(cov2, "cov2")
    d = c1.shape[-1]
    if c2.shape[-1] != d or m1.shape[-1:] != (d,) or m2.shape[-1:] != (d,):
        raise ValueError(f"mean1, cov1, mean2, cov2 must share the dimension d; got shapes "
                         f"{m1.shape}, {c1.shape}, {m2.shape}, {c2.shape}")
    mean_part = np.sum((m1 - m2) ** 2, axis=-1)
    if d == 1:
        s1, s2 = np.sqrt(np.clip(c1[..., 0, 0], 0, None)), np.sqrt(np.clip(c2[..., 0, 0], 0, None))
        return mean_part + (s1 - s2) ** 2
    r2 = psd_sqrt(c2)
    inner = r2 @ c1 @ r2
    ev = np.linalg.eigvalsh(0.5 * (inner + np.swapaxes(inner, -1, -2)))
    cross = np.sqrt(np.clip(ev, 0, None)).sum(-1)
    tr = np.trace(c1, axis1=-2, axis2=-1) + np.trace(c2, axis1=-2, axis2=-1)
    return mean_part + np.clip(tr - 2 * cross, 0, None)


def w2(mean1, cov1, mean2, cov2) -> np.ndarray:
    """2-Wasserstein distance between two Gaussians, batched over leading axes (see :func:`w2_squared`)."""
    return np.sqrt(w2_squared(mean1, cov1, mean2, cov2))


def w2_squared_1d(mean, std, mean0: float = 0.0, std0: float = 1.0):
    """W_2^2 between N(mean, std^2) and N(mean0, std0^2): (mean - mean0)^2 + (std - std0)^2."""
    return (np.asarray(mean) - mean0) ** 2 + (np.asarray(std) - std0) ** 2


def quantile_moments(sample) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, biased variance, K) of an empirical 1-D distribution, for :func:`w2_squared_normal_to_sample`.

    K = sum_j x_(j) (phi(z_{(j-1)/N}) - phi(z_{j/N})) = int_0^1 F_N^{-1}(u) Phi^{-1}(u) du, with
    x_(j) the sorted sample and z = Phi^{-1}.  ``sample`` is (N,) or (chains, N).
    """
    x = np.sort(np.asarray(sample, dtype=float), axis=-1)
    N = x.shape[-1]
    if N < 1:
        raise ValueError("sample must hold at least one value")
    z = ndtri(np.arange(N + 1) / N)  # -inf .. inf
    finite = np.isfinite(z)
    phi = np.where(finite, np.exp(-0.5 * np.where(finite, z, 0) ** 2) / math.sqrt(2 * math.pi), 0)
    return x.mean(-1), x.var(-1), x @ (phi[:-1] - phi[1:])


def w2_squared_normal_to_sample(means, stds, sample=None, *, moments=None) -> np.ndarray:
    """W_2^2 between N(mean, std^2) and the empirical distribution of ``sample`` (1-D), exactly.

    Through quantiles: the optimal coupling pairs the u-quantiles,
    W_2^2 = int_0^1 (mean + std z(u) - x_(ceil(uN)))^2 du with z = Phi^{-1}.  On each
    interval ((j-1)/N, j/N] the integrals of z and z^2 are closed form
    (int z du = phi(z_a) - phi(z_b)), which gives
    W_2^2 = (mean - xbar)^2 + s_x^2 + std^2 - 2 std K   (see :func:`quantile_moments`).
    ``means``/``stds`` broadcast; pass ``moments=quantile_moments(sample)`` to reuse them.
    """
    xbar, var, K = quantile_moments(sample) if moments is None else moments
    m, s = np.asarray(means, dtype=float), np.asarray(stds, dtype=float)
    return np.clip((m - xbar) ** 2 + var + s**2 - 2 * s * K, 0, None)
