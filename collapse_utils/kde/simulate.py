"""Kernel density estimates refitted on their own samples, in many chains at once.

A data set is an array ``(chains, n)``: every row is an independent chain.  A fitted
model is the KDE of one row: its centres (the training points) and one bandwidth
``h``.  Sampling a KDE with a Gaussian kernel is the *smoothed bootstrap*: draw a
centre uniformly, add ``h`` times a standard normal (Silverman 1986, Sec. 6.4).

Bandwidth rules (what a practitioner would pick; ``scipy.stats.gaussian_kde`` uses
the first two, with the unbiased standard deviation ``s``):

* ``scott``:     h = s n^(-1/5)
* ``silverman``: h = s (3n/4)^(-1/5)
* ``fixed``:     h given, the same in every generation

Real data D_0 are draws of :func:`real_sample`: a standard normal, or the bimodal
mixture 0.5 N(-2, 0.5^2) + 0.5 N(2, 0.5^2).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

BANDWIDTH_RULES = ("scott", "silverman", "fixed")
REAL = ("gaussian", "bimodal")

#: the bimodal real distribution: equal weights, modes at -+2, component sd 0.5
BIMODAL = (np.array([0.5, 0.5]), np.array([-2.0, 2.0]), np.array([0.5, 0.5]))


@dataclass
class KDE:
    """The Gaussian KDEs of ``chains`` data sets: centres ``(chains, n)``, bandwidths ``(chains,)``."""

    centres: np.ndarray
    h: np.ndarray

    @property
    def variance(self) -> np.ndarray:
        """Variance of each KDE: the (biased) variance of its centres plus h^2."""
        return self.centres.var(axis=1) + self.h ** 2

    @property
    def mean(self) -> np.ndarray:
        return self.centres.mean(axis=1)


def rule_factor(rule: str, n: int) -> float:
    """The factor c with h = c s for the data-driven rules (n points)."""
    if rule == "scott":
        return float(n) ** (-0.2)
    if rule == "silverman":
        return (3.0 * n / 4.0) ** (-0.2)
    raise ValueError(f"rule_factor needs a data-driven rule (scott or silverman); got {rule!r}")


def bandwidth(data: np.ndarray, rule: str, fixed: float) -> np.ndarray:
    """The bandwidth of each chain's KDE, ``(chains,)``."""
    if rule not in BANDWIDTH_RULES:
        raise ValueError(f"bandwidth must be one of {', '.join(BANDWIDTH_RULES)}; got {rule!r}")
    if rule == "fixed":
        return np.full(data.shape[0], float(fixed))
    return rule_factor(rule, data.shape[1]) * data.std(axis=1, ddof=1)


def fit_kde(data: np.ndarray, rule: str, fixed: float = 0.2) -> KDE:
    """The KDE of every chain's data: the points themselves and one bandwidth each."""
    data = np.asarray(data, dtype=float)
    return KDE(data, bandwidth(data, rule, fixed))


def sample_kde(kde: KDE, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` draws per chain from each KDE: a random centre plus h times N(0, 1)."""
    chains, n = kde.centres.shape
    pick = rng.integers(n, size=(chains, k))
    centres = np.take_along_axis(kde.centres, pick, axis=1)
    return centres + kde.h[:, None] * rng.standard_normal((chains, k))


def real_sample(name: str, chains: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` real points in each of ``chains`` chains from the real distribution ``name``."""
    if name == "gaussian":
        return rng.standard_normal((chains, n))
    if name == "bimodal":
        w, mu, sd = BIMODAL
        comp = rng.random((chains, n)) < w[0]
        return np.where(comp, mu[0], mu[1]) + sd[0] * rng.standard_normal((chains, n))
    raise ValueError(f"real must be one of {', '.join(REAL)}; got {name!r}")


def real_logpdf(name: str, x: np.ndarray) -> np.ndarray:
    """Log density of the real distribution at ``x``."""
    if name == "gaussian":
        return -0.5 * x ** 2 - 0.5 * np.log(2 * np.pi)
    w, mu, sd = BIMODAL
    parts = [np.log(wi) - 0.5 * ((x - m) / s) ** 2 - np.log(s * np.sqrt(2 * np.pi))
             for wi, m, s in zip(w, mu, sd)]
    return np.logaddexp(*parts)


def real_cdf(name: str, x: np.ndarray) -> np.ndarray:
    if name == "gaussian":
        return special.ndtr(x)
    w, mu, sd = BIMODAL
    return sum(wi * special.ndtr((x - m) / s) for wi, m, s in zip(w, mu, sd))


def real_quantile(name: str, u: np.ndarray) -> np.ndarray:
    """The real distribution's quantile function (the mixture's by bisection)."""
    if name == "gaussian":
        return special.ndtri(u)
    lo, hi = np.full_like(u, -10.0), np.full_like(u, 10.0)
    for _ in range(60):   # 20 / 2^60: far below float resolution
        mid = 0.5 * (lo + hi)
        below = real_cdf(name, mid) < u
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def real_variance(name: str) -> float:
    if name == "gaussian":
        return 1.0
    w, mu, sd = BIMODAL
    return float(np.sum(w * (sd ** 2 + mu ** 2)) - np.sum(w * mu) ** 2)
