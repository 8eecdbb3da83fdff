"""How far a generation's KDE is from the real distribution, by several definitions.

Every function takes a :class:`~collapse_utils.kde.simulate.KDE` of many chains and
returns one value per chain:

* :func:`kl_to_real`: KL(p_0 || p_n) = E_{p_0}[log p_0 - log p_n], by the trapezoid
  rule on a fixed grid over the real distribution's support (the integrand vanishes
  where p_0 does, so the grid need not follow the KDE).  It is the model's
  cross-entropy on real data (its real-test loss) minus the real entropy.
* :func:`tv_to_real`: total variation 1 - integral of min(p_0, p_n), on the same grid.
* :func:`w2_to_real`: the 2-Wasserstein distance through the quantile coupling,
  W_2^2 = integral_0^1 (Q_n(u) - Q_0(u))^2 du, with Q_n inverted from the KDE's CDF
  on a fine per-chain grid (midpoint rule in u).
* :func:`tail_mass`: the KDE's mass outside the real 0.135% and 99.865% quantiles
  (the +-3 sd points of a standard normal), 0.27% for the real distribution.

For KL and TV the KDE is evaluated exactly (every centre, every grid point), in
chunks of chains so that memory stays small; the cost grows with the number of
centres, so ``accumulate`` runs are the slow ones.
"""
from __future__ import annotations

import numpy as np
from scipy import integrate, special

from .simulate import KDE, real_cdf, real_logpdf, real_quantile

#: the grid for KL and TV: the real distribution's mass outside it is below 1e-8, and
#: its step is a quarter of the smallest bandwidth the book uses
GRID = np.linspace(-6.0, 6.0, 481)
#: quantile levels of the W2 integral (midpoints), and points of each chain's CDF grid
LEVELS = (np.arange(400) + 0.5) / 400
CDF_POINTS = 2048
#: the real tail: outside these quantiles (the +-3 sd points of N(0, 1))
TAIL = (special.ndtr(-3.0), special.ndtr(3.0))
CHUNK = 2_000_000   # array elements per chunk of chains
TINY = 1e-250       # below this the direct kernel sum is redone in log space


def _chunks(kde: KDE, points: int):
    chains, n = kde.centres.shape
    step = max(1, CHUNK // max(1, points * n))
    for start in range(0, chains, step):
        yield slice(start, min(chains, start + step))


def kde_logpdf(kde: KDE, x: np.ndarray) -> np.ndarray:
    """log p_n at the points ``x`` (shared by all chains), ``(chains, len(x))``, exact.

    The kernel sum is done directly; the few points where it underflows (far from
    every centre) are redone with log-sum-exp, so log p_n is right there too."""
    out = np.empty((kde.centres.shape[0], x.size))
    n = kde.centres.shape[1]
    for sl in _chunks(kde, x.size):
        z2 = ((x[None, :, None] - kde.centres[sl, None, :]) / kde.h[sl, None, None]) ** 2
        total = np.exp(-0.5 * z2).sum(axis=2)
        low = total < TINY
        log_total = np.log(np.where(low, 1.0, total))
        if low.any():
            log_total[low] = special.logsumexp(-0.5 * z2[low], axis=-1)
        out[sl] = log_total - np.log(n * kde.h[sl, None] * np.sqrt(2 * np.pi))
    return out


def kl_tv_to_real(kde: KDE, real: str) -> tuple[np.ndarray, np.ndarray]:
    """KL(p_0 || p_n) and TV(p_0, p_n) per chain, by the trapezoid rule on :data:`GRID`."""
    log_p0 = real_logpdf(real, GRID)
    log_pn = kde_logpdf(kde, GRID)
    p0 = np.exp(log_p0)
    kl = integrate.trapezoid(p0 * (log_p0 - log_pn), GRID, axis=1)
    overlap = integrate.trapezoid(np.minimum(p0, np.exp(log_pn)), GRID, axis=1)
    return kl, np.clip(1.0 - overlap, 0.0, 1.0)


def kl_to_real(kde: KDE, real: str) -> np.ndarray:
    """KL(p_0 || p_n) per chain."""
    return kl_tv_to_real(kde, real)[0]


def tv_to_real(kde: KDE, real: str) -> np.ndarray:
    """Total variation distance per chain: 1 - integral of min(p_0, p_n)."""
    return kl_tv_to_real(kde, real)[1]


def kde_cdf_grid(kde: KDE, points: int = CDF_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Each chain's KDE CDF on its own grid spanning its centres +- 7 h, ``(x, cdf)``.

    The centres are binned linearly onto the grid and smoothed with the Gaussian
    kernel in Fourier space (exact for the binned centres; the binning error is of
    order (dx/h)^2, with h/dx above 20 here)."""
    chains, n = kde.centres.shape
    lo = kde.centres.min(axis=1) - 7 * kde.h
    hi = kde.centres.max(axis=1) + 7 * kde.h
    dx = (hi - lo) / (points - 1)
    pos = (kde.centres - lo[:, None]) / dx[:, None]
    left = np.clip(np.floor(pos).astype(np.int64), 0, points - 2)
    frac = pos - left
    rows = np.arange(chains)[:, None] * points
    mass = np.bincount((rows + left).ravel(), (1 - frac).ravel(), chains * points)
    mass += np.bincount((rows + left + 1).ravel(), frac.ravel(), chains * points)
    size = 2 * points   # zero padding: no wrap-around of the kernel
    freq = np.fft.rfftfreq(size)
    smooth = np.exp(-2 * (np.pi * freq[None, :] * (kde.h / dx)[:, None]) ** 2)
    dens = np.fft.irfft(np.fft.rfft(mass.reshape(chains, points), size) * smooth, size)[:, :points]
    cdf = np.cumsum(np.clip(dens, 0.0, None), axis=1)
    cdf /= cdf[:, -1:]
    x = lo[:, None] + dx[:, None] * np.arange(points)[None, :]
    return x, cdf


def kde_quantile(kde: KDE, u: np.ndarray = LEVELS) -> np.ndarray:
    """Q_n(u) per chain, ``(chains, len(u))``, by inverting the CDF of :func:`kde_cdf_grid`."""
    x, cdf = kde_cdf_grid(kde)
    # the cumulative sum up to point i holds the mass of the cell around it, so the
    # CDF it gives belongs to the cell's right edge, half a step to the right
    mid = x + 0.5 * (x[:, 1:2] - x[:, :1])
    return np.stack([np.interp(u, f, xs) for f, xs in zip(cdf, mid)])


def w2_to_real(kde: KDE, real: str) -> np.ndarray:
    """W_2(p_n, p_0) per chain through the quantile coupling (midpoint rule in u)."""
    diff = kde_quantile(kde, LEVELS) - real_quantile(real, LEVELS)[None, :]
    return np.sqrt(np.mean(diff ** 2, axis=1))


def tail_mass(kde: KDE, real: str) -> np.ndarray:
    """The KDE's mass outside the real distribution's 0.135% and 99.865% quantiles."""
    a, b = real_quantile(real, np.array(TAIL))
    inside = (special.ndtr((b - kde.centres) / kde.h[:, None])
              - special.ndtr((a - kde.centres) / kde.h[:, None])).mean(axis=1)
    return 1.0 - inside


def real_tail_mass(real: str) -> float:
    """The real distribution's own mass outside :data:`TAIL` (0.0027)."""
    a, b = real_quantile(real, np.array(TAIL))
    return float(1.0 - (real_cdf(real, b) - real_cdf(real, a)))


def w2_samples(x: np.ndarray, y: np.ndarray) -> float:
    """W_2 between two 1-D samples of equal size: pair the sorted values (the quantile
    coupling of the two empirical distributions)."""
    x, y = np.sort(np.ravel(x)), np.sort(np.ravel(y))
    if x.size != y.size:
        raise ValueError(f"w2_samples needs samples of equal size; got {x.size} and {y.size}")
    return float(np.sqrt(np.mean((x - y) ** 2)))
