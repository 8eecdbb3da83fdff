"""Exact moments of the KDE resampling chain, and a Gaussian reference for KL and W2.

Fit a Gaussian KDE with bandwidth h to M points, draw M new points from it (the
smoothed bootstrap), refit, repeat.  Let V be the variance of the fitted KDE: the
(biased) variance S^2 of its M centres plus h^2.  Given the KDE, the next M points
have E[S^2] = (M - 1)/M * V, so

    fixed h:                 E[V_{k+1}] = (M - 1)/M * E[V_k] + h^2,
    h = c s (s the unbiased  E[V_{k+1}] = ((M - 1)/M + c^2) * E[V_k],
      sd of the centres):

both exact in expectation under ``replace``.  The recursion starts from the real
variance sigma^2 (the real data are M draws of it), so after k fits
E[V] = M h^2 + (sigma^2 - M h^2) ((M - 1)/M)^k for a fixed h: a fixed point at
M h^2, reached from above or below; and E[V] = sigma^2 r^k, r = (M - 1)/M + c^2 > 1,
for Scott's (c = M^(-1/5)) or Silverman's (c = (3M/4)^(-1/5)) rule: the variance
*grows* geometrically.  The mean of the centres is a martingale whose increments
have variance E[V]/M, so E[(mean - mu_0)^2] = (1/M) sum_{j < k} E[V after j fits].

KL and W2 have no closed form for a KDE; :func:`kl_gaussian` and
:func:`w2_gaussian` are what they would be if each generation were the Gaussian
with these expected moments: a reference, not a theorem.
"""
from __future__ import annotations

import numpy as np

from .simulate import rule_factor


def variance_factor(rule: str, M: int) -> float:
    """r = (M - 1)/M + c^2: one fit's factor on E[V] for a data-driven rule."""
    return (M - 1) / M + rule_factor(rule, M) ** 2


def expected_variance(fits, rule: str, M: int, sigma2: float = 1.0, h: float = 0.0) -> np.ndarray:
    """E[V] of the KDE after ``fits`` fits (generation n is fit n + 1) under ``replace``."""
    k = np.asarray(fits, dtype=float)
    if rule == "fixed":
        a = (M - 1) / M
        return M * h ** 2 + (sigma2 - M * h ** 2) * a ** k
    return sigma2 * variance_factor(rule, M) ** k


def expected_mean_square(fits, rule: str, M: int, sigma2: float = 1.0, h: float = 0.0) -> np.ndarray:
    """E[(mean of the centres - real mean)^2] after ``fits`` fits: (1/M) sum_{j<k} E[V_j]."""
    k = np.atleast_1d(np.asarray(fits, dtype=int))
    steps = expected_variance(np.arange(int(k.max()) if k.size else 0), rule, M, sigma2, h) / M
    total = np.concatenate([[0.0], np.cumsum(steps)])
    out = total[k]
    return out if np.ndim(fits) else float(out[0])


def kl_gaussian(fits, rule: str, M: int, sigma2: float = 1.0, h: float = 0.0) -> np.ndarray:
    """KL(N(0, sigma^2) || N(m, V)) with the expected moments V and m^2 plugged in."""
    V = expected_variance(fits, rule, M, sigma2, h)
    m2 = expected_mean_square(fits, rule, M, sigma2, h)
    return 0.5 * (np.log(V / sigma2) + (sigma2 + m2) / V - 1.0)


def w2_gaussian(fits, rule: str, M: int, sigma2: float = 1.0, h: float = 0.0) -> np.ndarray:
    """W2(N(m, V), N(0, sigma^2)) = sqrt(m^2 + (sqrt V - sigma)^2) with the expected moments."""
    V = expected_variance(fits, rule, M, sigma2, h)
    m2 = expected_mean_square(fits, rule, M, sigma2, h)
    return np.sqrt(m2 + (np.sqrt(V) - np.sqrt(sigma2)) ** 2)


def critical_bandwidth(M: int, sigma2: float = 1.0) -> float:
    """The fixed h with M h^2 = sigma^2: E[V] stays at sigma^2 in every generation."""
    return float(np.sqrt(sigma2 / M))
