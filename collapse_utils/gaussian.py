"""Gaussians refitted generation after generation (Shumailov et al. 2024, Sec. 3.2, Theorem 3.1).

Each generation estimates the mean and the (unbiased) variance of M samples and
draws M new samples from the fitted Gaussian.  Exact one-dimensional facts, with
sigma the original standard deviation and
c_M = E[sqrt(chi2_{M-1}/(M-1))] = sqrt(2/(M-1)) Gamma(M/2) / Gamma((M-1)/2):

    E[sigma_n^2] = sigma^2                 (a martingale)
    E[sigma_n]   = sigma c_M^n             (so the typical sigma_n shrinks)
    E[(mu_n - mu)^2] = n sigma^2 / M
    E[W_2^2(N(mu_n, sigma_n^2), N(mu, sigma^2))] = n sigma^2 / M + 2 sigma^2 (1 - c_M^n)

The simulation (:func:`simulate`) runs many independent chains at once through
the book's generational loop (:func:`collapse_utils.loop.run_generations`).  A
data set is stored as *sufficient statistics*: an array of records
``[count, mean (d), scatter (d*d)]`` along axis 1, one record per group of
samples.  Records of groups pool exactly (Chan, Golub & LeVeque's update), so the
regimes of :mod:`collapse_utils.regimes` (replace, accumulate, keep-real) act on
them as they would on points.  With ``method="stats"`` the record of k fresh
samples from N(m, S) is drawn directly, exact in distribution:

    sample mean ~ N(m, S / k),   scatter ~ Wishart(k - 1, S)  (1-D: S chi2_{k-1}),

independent of each other (Cochran's theorem); ``method="points"`` draws the k
points themselves (one record per point), the reference the tests compare with.
"""
from __future__ import annotations

import math
from functools import partial
from numbers import Integral

import numpy as np
from scipy.special import digamma, gammaln, ndtri, polygamma

from .experiments import Experiment, RunOutput, register
from .loop import run_generations
from .regimes import Mix, Schedule, as_schedule, make_regime

ESTIMATORS = ("unbiased", "mle")
SIM_REGIMES = ("replace", "accumulate", "keep-real", "accumulate-subsample")
METHODS = ("stats", "points")
SOURCES = ("normal", "laplace", "two-modes")


# ----------------------------------------------------------------------------- validation
def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (Integral, float)) \
            or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _check_choice(name: str, value, allowed: tuple) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


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


def _as_gaussian(mean, cov) -> tuple[np.ndarray, np.ndarray]:
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


# ----------------------------------------------------------------------------- theory
def log_c_m(M):
    """log c_M, accurate for every M >= 2.

    With x = (M - 1)/2, log c_M = log Gamma(x + 1/2) - log Gamma(x) - (1/2) log x.  For
    x > 50 the difference of two large gammaln values loses digits, so the asymptotic
    series -1/(8x) + 1/(192x^3) - 1/(640x^5) + O(x^-7) (Bernoulli polynomials) is used.
    """
    M = np.asarray(M, dtype=float)
    if np.any(M < 2):
        raise ValueError(f"M must be at least 2; got {M}")
    x = (M - 1) / 2  # c_M = Gamma(x + 1/2) / (Gamma(x) sqrt(x))
    big = x > 50
    xs = np.where(big, 1.0, x)
    xb = np.where(big, x, 100.0)
    exact = gammaln(xs + 0.5) - gammaln(xs) - 0.5 * np.log(xs)
    series = -1 / (8 * xb) + 1 / (192 * xb**3) - 1 / (640 * xb**5)
    out = np.where(big, series, exact)
    return out.item() if out.ndim == 0 else out


def c_m(M) -> np.ndarray | float:
    """c_M = E[sqrt(chi2_{M-1} / (M-1))], the mean shrink factor of one refit's std (M >= 2)."""
    out = np.exp(log_c_m(M))
    return out.item() if np.ndim(out) == 0 else out


def expected_sigma(n, M, sigma: float = 1.0):
    """E[sigma_n] = sigma c_M^n for the unbiased-variance refit (1-D)."""
    return sigma * c_m(M) ** np.asarray(n, dtype=float)


def expected_w2_squared(n, M, sigma: float = 1.0):
    """E[W_2^2] between generation n's Gaussian and the original N(mu, sigma^2), exactly.

    n sigma^2 / M from the mean's random walk plus 2 sigma^2 (1 - c_M^n) from the
    standard deviation (1-D, unbiased variance, constant M).
    """
    n = np.asarray(n, dtype=float)
    if np.any(n < 0):
        raise ValueError(f"n must be non-negative; got {n}")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive; got {sigma}")
    out = n * sigma**2 / M + 2 * sigma**2 * (1 - c_m(M) ** n)
    return out.item() if np.ndim(out) == 0 else out


def _sizes(M, schedule, steps: int) -> np.ndarray:
    """M_k for the fits k = 0..steps-1: M_0 = M (the real data), M_k = schedule(k)."""
    sched = as_schedule(schedule, M, name="schedule")
    return np.array([M] + [sched(k) for k in range(1, steps)], dtype=float)[:steps]


def theory_1d(n, M, sigma: float = 1.0, estimator: str = "unbiased", schedule=None) -> dict:
    """Exact moments after n refits of N(mu, sigma^2), each on M_k samples (1-D, Gaussian D_0).

    One refit multiplies the variance by xi_k = chi2_{M_k-1} / (M_k - 1) (unbiased) or
    / M_k (MLE), independent of the past, and moves the mean by N(0, sigma_k^2 / M_k).
    Hence, with products and sums over the fits k < n:

        E[sigma_n^2]      = sigma^2 prod E[xi_k]            (= sigma^2 unbiased; ((M-1)/M)^n MLE)
        E[sigma_n]        = sigma prod E[sqrt(xi_k)]         (= sigma c_M^n unbiased)
        E[log sigma_n^2]  = log sigma^2 + sum E[log xi_k],   E[log xi] = psi((M-1)/2) + log(2/(M-1))
        Var[log sigma_n^2] = sum psi'((M_k-1)/2)
        Var[sigma_n^2]    = sigma^4 (prod E[xi_k^2] - prod E[xi_k]^2)
        E[(mu_n - mu)^2]  = sum E[sigma_k^2] / M_k           (= n sigma^2 / M unbiased)
        E[W_2^2]          = E[(mu_n - mu)^2] + E[sigma_n^2] - 2 sigma E[sigma_n] + sigma^2

    ``schedule``: None (constant M), a :class:`~collapse_utils.regimes.Schedule`, its
    kind as a string, or a callable k -> M_k; M_0 = M is the real data's size.
    Returns a dict of arrays shaped like ``n``.
    """
    _check_choice("estimator", estimator, ESTIMATORS)
    if not sigma > 0:
        raise ValueError(f"sigma must be positive; got {sigma}")
    n = np.asarray(n)
    if np.any(n < 0) or np.any(n != np.round(n)):
        raise ValueError(f"n must hold non-negative integers; got {n}")
    _check_int("M", M, 2)
    steps = int(n.max()) if n.size else 0
    Mk = _sizes(M, schedule, steps)
    if np.any(Mk < 2):
        raise ValueError("schedule must give M_k >= 2 for every generation")
    x = (Mk - 1) / 2
    if estimator == "unbiased":
        e_xi = np.ones_like(Mk)
        e_sqrt = np.exp(log_c_m(Mk))
        e_log = digamma(x) - np.log(x)
        e_xi2 = 1 + 2 / (Mk - 1)
    else:
        r = (Mk - 1) / Mk
        e_xi = r
        e_sqrt = np.exp(log_c_m(Mk)) * np.sqrt(r)
        e_log = digamma(x) + np.log(2 / Mk)
        e_xi2 = r**2 * (1 + 2 / (Mk - 1))
    cum = lambda a, op: np.concatenate([[0.0 if op is np.cumsum else 1.0], op(a)])
    s2 = sigma**2 * cum(e_xi, np.cumprod)            # E[sigma_k^2], k = 0..steps
    with np.errstate(over="ignore"):                 # Var[sigma_n^2] may overflow to inf
        var_s2 = sigma**4 * (cum(e_xi2, np.cumprod) - cum(e_xi, np.cumprod) ** 2)
    out = {
        "sigma_squared": s2,
        "sigma": sigma * np.exp(cum(np.log(e_sqrt), np.cumsum)),
        "log_sigma_squared": np.log(sigma**2) + cum(e_log, np.cumsum),
        "log_sigma_squared_var": cum(polygamma(1, x), np.cumsum),
        "sigma_squared_var": var_s2,
        "mean_error_squared": cum(s2[:-1] / Mk, np.cumsum),
    }
    out["w2_squared"] = (out["mean_error_squared"] + out["sigma_squared"]
                         - 2 * sigma * out["sigma"] + sigma**2)
    idx = n.astype(int)
    return {k: v[idx] for k, v in out.items()}


def expected_log_det(n, M, cov) -> np.ndarray:
    """E[log det Sigma_n] = log det Sigma + n [sum_{j<d} psi((M-1-j)/2) + d log(2/(M-1))].

    Each refit maps Sigma to Sigma^{1/2} W Sigma^{1/2} / (M - 1) with W ~ Wishart(M-1, I_d),
    and E[log det W] = sum_{j<d} psi((M-1-j)/2) + d log 2 (d-D, unbiased, constant M, M > d).
    """
    c = check_covariance(np.atleast_2d(cov))
    d = c.shape[-1]
    M = _check_int("M", M, d + 1)
    step = sum(digamma((M - 1 - j) / 2) for j in range(d)) + d * np.log(2 / (M - 1))
    sign, logdet = np.linalg.slogdet(c)
    return logdet + np.asarray(n, dtype=float) * step


# ----------------------------------------------------------------------------- W2
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


# ----------------------------------------------------------------------------- data as sufficient statistics
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


def _pack(n, mean, scatter) -> np.ndarray:
    chains, d = mean.shape
    rec = np.empty((chains, 1, record_width(d)))
    rec[:, 0, 0] = n
    rec[:, 0, 1:1 + d] = mean
    rec[:, 0, 1 + d:] = scatter.reshape(chains, d * d)
    return rec


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
def source_moments(source: str) -> tuple[float, float]:
    """(mean, variance) of the 1-D D_0 called ``source``; each has mean 0 and variance 1."""
    _check_choice("source", source, SOURCES)
    return 0.0, 1.0


def sample_source(source: str, size, rng: np.random.Generator) -> np.ndarray:
    """Samples of a 1-D D_0 with mean 0 and variance 1.

    ``normal``: N(0, 1).  ``laplace``: Laplace with scale 1/sqrt(2).  ``two-modes``:
    an equal mixture of N(-a, s^2) and N(a, s^2) with s = 0.3, a = sqrt(1 - s^2).
    """
    _check_choice("source", source, SOURCES)
    if source == "normal":
        return rng.standard_normal(size)
    if source == "laplace":
        return rng.laplace(0.0, 1 / math.sqrt(2), size)
    s = 0.3
    sign = np.where(rng.random(size) < 0.5, -1.0, 1.0)
    return sign * math.sqrt(1 - s**2) + s * rng.standard_normal(size)


def _real_rng(seed: int) -> np.random.Generator:
    """D_0's generator: distinct from every generation's ``default_rng([seed, i])``."""
    return np.random.default_rng([int(seed), 2**32 - 1])


# ----------------------------------------------------------------------------- the chains
def _prepare(mean, cov, M, generations, chains, estimator, seed, regime, schedule,
             real_fraction, method, real):
    """Validate the arguments of :func:`simulate` and build what the core loop needs."""
    mean, cov = _as_gaussian(mean, cov)
    d = mean.shape[0]
    M = _check_int("M", M, 2)
    generations = _check_int("generations", generations, 0)
    chains = _check_int("chains", chains, 1)
    _check_choice("estimator", estimator, ESTIMATORS)
    _check_choice("regime", regime, SIM_REGIMES)
    _check_choice("method", method, METHODS)
    if regime == "accumulate-subsample" and method == "stats":
        raise ValueError("regime 'accumulate-subsample' needs method='points': a random subset "
                         "of pooled samples has no exact sufficient-statistics law")
    if seed is None:
        seed = int(np.random.SeedSequence().entropy)
    seed = _check_int("seed", seed, 0)
    sched = as_schedule(schedule, M, name="schedule")
    for k in range(1, generations):
        _check_int(f"schedule M_{k}", sched(k), 2)
    reg = make_regime(regime, real_fraction=real_fraction)  # subsample budget: M_i
    as_points = method == "points" or isinstance(reg, Mix) or regime == "accumulate-subsample"
    if real is not None:
        pts = np.asarray(real, dtype=float)
        if pts.ndim == 2 and d == 1:
            pts = pts[..., None]
        if pts.ndim != 3 or pts.shape[0] != chains or pts.shape[2] != d or pts.shape[1] < 2:
            raise ValueError(f"real must have shape (chains, M_0 >= 2, d) = ({chains}, M, {d}); "
                             f"got {np.shape(real)}")
        real_data = points_to_stats(pts)
        if not as_points:
            real_data = _pack(*pooled_stats(real_data))
    else:
        model0 = (np.broadcast_to(mean, (chains, d)), np.broadcast_to(cov, (chains, d, d)))
        draw0 = draw_points if as_points else draw_stats
        real_data = draw0(model0, M, _real_rng(seed))
    return dict(
        mean=mean, cov=cov, d=d, chains=chains, generations=generations, seed=seed,
        fit=partial(fit_gaussian, estimator=estimator),
        sample=draw_points if method == "points" else draw_stats,
        real_data=real_data, regime=reg, sizes=sched)


def _run_chains(prep: dict, measure, *, run_dir=None, resume=False, progress=False, desc=None,
                stop_after=None):
    """The core loop over loop generations 0..generations-1 (= refits 1..generations)."""
    return run_generations(
        prep["fit"], prep["sample"], prep["real_data"], prep["generations"] - 1,
        regime=prep["regime"], sizes=prep["sizes"], seed=prep["seed"], measure=measure, axis=1,
        run_dir=run_dir, resume=resume, progress=progress, desc=desc, stop_after=stop_after)


def simulate(mean, cov, M, generations, chains=1, estimator="unbiased", seed=None,
             regime="replace", schedule=None, *, real_fraction=0.1, method="stats", real=None,
             progress=False):
    """Refit a Gaussian ``generations`` times, ``chains`` independent chains at once.

    Generation n >= 1 fits mean and covariance (``estimator``: "unbiased" or "mle") to
    its training set, whose fresh samples come from generation n-1's Gaussian;
    generation 1 fits D_0, ``M`` samples of N(mean, cov) (or the given ``real``
    samples, shape (chains, M_0, d), from any distribution whose moments are
    ``mean``/``cov``).  ``regime`` is "replace" (the theorem), "accumulate",
    "keep-real" (a ``real_fraction`` of each training set drawn from D_0) or
    "accumulate-subsample" (points only), as in :mod:`collapse_utils.regimes`;
    ``schedule`` gives the fresh sample size M_n of generation n+1 (None: constant M,
    a :class:`~collapse_utils.regimes.Schedule`, "linear", "superlinear", or k -> M_k).

    ``cov`` is a (d, d) covariance, or in 1-D a scalar *variance*.  ``method="stats"``
    draws the sufficient statistics of the fresh samples (exact in distribution,
    independent of M in cost); ``"points"`` draws the points.  Generation n uses the
    random generator ``default_rng([seed, n - 1])`` of the core loop.

    Returns (means, covs) of shapes (chains, generations + 1, d) and
    (chains, generations + 1, d, d); index 0 is the input (mean, cov).

    Floating point limit in d > 1: the directions of Sigma_n shrink at different
    exponential rates, so its condition number grows without bound; once it nears
    1/eps ~ 1e16 the smallest direction is lost to rounding (det becomes 0).  With
    generations <= 5 M this stays below ~1e14 (checked for d = 3).
    """
    prep = _prepare(mean, cov, M, generations, chains, estimator, seed, regime, schedule,
                    real_fraction, method, real)
    c, g, d = prep["chains"], prep["generations"], prep["d"]
    # generation-major buffers (each generation writes one contiguous block), returned as
    # (chains, generations + 1, ...) views
    means = np.empty((g + 1, c, d))
    covs = np.empty((g + 1, c, d, d))
    means[0], covs[0] = prep["mean"], prep["cov"]

    def store(gen):
        means[gen.index + 1], covs[gen.index + 1] = gen.model
        return {}

    if g > 0:
        _run_chains(prep, store, progress=progress, desc="gaussian")
    return np.moveaxis(means, 0, 1), np.moveaxis(covs, 0, 1)


# ----------------------------------------------------------------------------- the chapter's sizes
#: sizes of book/gaussian.ipynb per profile (1-D runs draw sufficient statistics, so their cost
#: does not depend on M; ``regime_*`` runs accumulate data, whose cost grows with generations^2)
CHAPTER_SIZES = {
    "smoke": {"chains": 1000, "generations": 300, "public_chains": 200, "public_generations": 1000,
              "regime_chains": 300, "regime_generations": 100, "dd_chains": 300,
              "dd_generations": 100, "source_chains": 500, "source_generations": 300},
    "default": {"chains": 5000, "generations": 1000, "public_chains": 1000,
                "public_generations": 1000, "regime_chains": 1000, "regime_generations": 300,
                "dd_chains": 2000, "dd_generations": 100, "source_chains": 2000,
                "source_generations": 1000},
    "paper": {"chains": 10000, "generations": 1000, "public_chains": 1000,
              "public_generations": 1000, "regime_chains": 2000, "regime_generations": 500,
              "dd_chains": 5000, "dd_generations": 100, "source_chains": 5000,
              "source_generations": 1000},
}


# ----------------------------------------------------------------------------- summaries and the CLI experiment
def example_covariance(d: int, rho: float = 0.5) -> np.ndarray:
    """The book's d-D covariance: unit variances, every correlation ``rho``."""
    d = _check_int("d", d, 1)
    return (1 - rho) * np.eye(d) + rho * np.ones((d, d))


def chain_summaries(means, covs, mean0, cov0, sample=None, *, moments=None) -> dict:
    """Per-chain quantities of fitted Gaussians (..., d), (..., d, d) against D_0.

    ``sigma`` = sqrt(tr(Sigma_n) / d) (the std in 1-D), ``sigma_squared``, ``log_sigma_squared``,
    ``log_det``, ``mean_error_squared`` = |mu_n - mu|^2 and ``w2_squared``: W_2^2 to
    N(mean0, cov0), or, when ``sample`` (1-D values from D_0) is given, to its
    empirical distribution (:func:`w2_squared_normal_to_sample`).
    """
    means, covs = np.asarray(means, dtype=float), np.asarray(covs, dtype=float)
    mean0, cov0 = _as_gaussian(mean0, cov0)
    d = means.shape[-1]
    s2 = np.trace(covs, axis1=-2, axis2=-1) / d
    with np.errstate(divide="ignore"):
        out = {
            "sigma": np.sqrt(np.clip(s2, 0, None)),
            "sigma_squared": s2,
            "log_sigma_squared": np.log(s2),
            "log_det": np.log(covs[..., 0, 0]) if d == 1 else np.linalg.slogdet(covs)[1],
            "mean_error_squared": np.sum((means - mean0) ** 2, axis=-1),
        }
    if sample is None and moments is None:
        out["w2_squared"] = w2_squared(means, covs, mean0, cov0)
    else:
        if d != 1:
            raise ValueError("sample (an empirical D_0) is only supported in 1-D")
        out["w2_squared"] = w2_squared_normal_to_sample(means[..., 0], out["sigma"], sample,
                                                        moments=moments)
    return out


GAUSSIAN_SETTINGS = {
    "smoke": {"M": 100, "generations": 50, "chains": 500, "dim": 1, "estimator": "unbiased",
              "regime": "replace", "real_fraction": 0.1, "schedule": "constant", "power": 2.0,
              "source": "normal", "method": "stats"},
    "default": {"M": 100, "generations": 1000, "chains": 1000, "dim": 1, "estimator": "unbiased",
                "regime": "replace", "real_fraction": 0.1, "schedule": "constant", "power": 2.0,
                "source": "normal", "method": "stats"},
    "paper": {"M": 100, "generations": 1000, "chains": 10000, "dim": 1, "estimator": "unbiased",
              "regime": "replace", "real_fraction": 0.1, "schedule": "constant", "power": 2.0,
              "source": "normal", "method": "stats"},
}
GAUSSIAN_CHOICES = {"estimator": ESTIMATORS, "regime": SIM_REGIMES, "method": METHODS,
                    "schedule": ("constant", "linear", "superlinear"), "source": SOURCES}
REFERENCE_SIZE = 100_000  # size of the empirical D_0 that W_2 is measured against (non-normal)


def _metrics_row(summary: dict, theory: dict | None, n: int) -> dict:
    row = {}
    for key in ("w2_squared", "sigma", "sigma_squared", "log_sigma_squared", "log_det",
                "mean_error_squared"):
        v = summary[key]
        row[f"{key}_mean"] = float(np.mean(v))
        row[f"{key}_median"] = float(np.median(v))
    w = np.sqrt(summary["w2_squared"])
    row["w2_mean"], row["w2_median"] = float(w.mean()), float(np.median(w))
    row["w2_q10"], row["w2_q90"] = (float(q) for q in np.quantile(w, [0.1, 0.9]))
    row["sigma_q10"], row["sigma_q90"] = (float(q) for q in np.quantile(summary["sigma"], [0.1, 0.9]))
    if theory is not None:
        for key in ("w2_squared", "sigma", "sigma_squared", "log_sigma_squared"):
            row[f"theory_{key}"] = float(theory[key][n])
    return row


def run_gaussian(settings: dict, *, seed: int = 0, run_dir=None, resume: bool = False,
                 progress: bool = True, stop_after: int | None = None) -> RunOutput:
    """The ``gaussian`` experiment: :func:`simulate`'s chains through the core loop, measured.

    Generation 0 is D_0 itself (W_2 = 0); generation n >= 1 is the n-th refit.  Per
    generation, over chains: mean and median of W_2 and W_2^2 to D_0 (closed form
    for a normal D_0, through quantiles against 10^5 samples otherwise), of sigma,
    sigma^2 (E[sigma_n^2]), log sigma^2, log det Sigma_n and |mu_n - mu|^2; 10% and 90%
    quantiles of W_2 and sigma; and, where exact (1-D normal D_0, replace), the
    theory of :func:`theory_1d`.  Each finished generation is saved by the core loop
    under ``run_dir``; ``resume`` continues exactly.
    """
    d, source = _check_int("dim", settings["dim"], 1), settings["source"]
    _check_choice("source", source, SOURCES)
    if source != "normal" and d != 1:
        raise ValueError(f"source {source!r} is one-dimensional; use dim=1 or source='normal'")
    M, chains = settings["M"], settings["chains"]
    schedule = Schedule(_check_choice("schedule", settings["schedule"],
                                      GAUSSIAN_CHOICES["schedule"]), _check_int("M", M, 2),
                        float(settings["power"]))
    mean0 = np.zeros(d)
    cov0 = example_covariance(d) if source == "normal" else np.eye(1) * source_moments(source)[1]
    real = reference = None
    if source != "normal":
        real = sample_source(source, (_check_int("chains", chains, 1), M), _real_rng(seed))
        reference = quantile_moments(
            sample_source(source, REFERENCE_SIZE, np.random.default_rng([seed, 2**32 - 2])))
    prep = _prepare(mean0, cov0, M, settings["generations"], chains, settings["estimator"], seed,
                    settings["regime"], schedule, settings["real_fraction"], settings["method"],
                    real)
    G = prep["generations"]
    theory = None
    if d == 1 and source == "normal" and settings["regime"] == "replace":
        theory = theory_1d(np.arange(G + 1), M, 1.0, settings["estimator"], schedule)

    def measure(g):
        summary = chain_summaries(*g.model, mean0, cov0, moments=reference)
        return _metrics_row(summary, theory, g.index + 1)

    first = _metrics_row(chain_summaries(np.broadcast_to(mean0, (chains, d)),
                                         np.broadcast_to(cov0, (chains, d, d)), mean0, cov0),
                         theory, 0)
    for key in ("w2_squared_mean", "w2_squared_median", "w2_mean", "w2_median", "w2_q10", "w2_q90"):
        first[key] = 0.0  # generation 0 is D_0 itself
    metrics = {k: [v] for k, v in first.items()}
    if G > 0:
        result = _run_chains(prep, measure, run_dir=run_dir, resume=resume, progress=progress,
                             desc="gaussian", stop_after=stop_after)
        for k, values in result.metrics.items():
            metrics[k].extend(values)
    n_done = len(next(iter(metrics.values())))
    return RunOutput(list(range(n_done)), metrics, None)


register(Experiment(
    name="gaussian",
    summary="Gaussian refitted each generation (Theorem 3.1): W2, sigma, E[sigma^2] per generation",
    settings=GAUSSIAN_SETTINGS,
    run=run_gaussian,
    choices=GAUSSIAN_CHOICES,
    chapter="book/gaussian.ipynb",
))


# ----------------------------------------------------------------------------- 1-D model for the core loop
def fit_normal_1d(data, rng=None, ddof: int = 1):
    """Fit (mean, std) along the last axis; ``ddof=1`` is the unbiased variance, 0 the MLE."""
    data = np.asarray(data, dtype=float)
    return data.mean(axis=-1), data.std(axis=-1, ddof=ddof)


def sample_normal_1d(model, m: int, rng: np.random.Generator):
    """m samples from N(mean, std^2) for every chain: shape (chains, m)."""
    mean, std = (np.asarray(v, dtype=float) for v in model)
    return mean[..., None] + std[..., None] * rng.standard_normal(mean.shape + (int(m),))


def w2_squared_1d(mean, std, mean0: float = 0.0, std0: float = 1.0):
    """W_2^2 between N(mean, std^2) and N(mean0, std0^2): (mean - mean0)^2 + (std - std0)^2."""
    return (np.asarray(mean) - mean0) ** 2 + (np.asarray(std) - std0) ** 2


# ----------------------------------------------------------------------------- intro experiment
INTRO_SETTINGS = {
    "smoke": {"M": 100, "generations": 60, "chains": 100, "regimes": ["replace", "accumulate"]},
    "default": {"M": 100, "generations": 150, "chains": 500, "regimes": ["replace", "accumulate"]},
    "paper": {"M": 100, "generations": 200, "chains": 1000, "regimes": ["replace", "accumulate"]},
}


def run_intro(settings: dict, *, seed: int = 0, run_dir=None, resume: bool = False,
              progress: bool = True) -> RunOutput:
    """A 1-D N(0, 1) refitted by unbiased mean and variance, many chains at once, per regime.

    All chains share one array (chains x samples), so the core loop runs once per
    regime.  Metrics per generation: each chain's sigma and W_2^2 to N(0, 1), and
    their means across chains.
    """
    M, n, chains = settings["M"], settings["generations"], settings["chains"]
    if M < 2:
        raise ValueError(f"M must be at least 2; got {M}")
    if chains < 1:
        raise ValueError(f"chains must be at least 1; got {chains}")
    real = np.random.default_rng([seed, 10**6]).standard_normal((chains, M))
    metrics: dict[str, list] = {}

    def measure(g):
        mean, std = g.model
        w2 = w2_squared_1d(mean, std)
        return {"sigma": std, "w2_squared": w2, "sigma_mean": float(std.mean()),
                "sigma_squared_mean": float((std**2).mean()), "w2_squared_mean": float(w2.mean()),
                "train_size": int(np.shape(g.train)[1])}

    for name in settings["regimes"]:
        result = run_generations(
            fit_normal_1d, sample_normal_1d, real, n, regime=make_regime(name), sizes=M,
            seed=seed, measure=measure, axis=1, progress=progress, desc=name,
            run_dir=None if run_dir is None else f"{run_dir}/{name}", resume=resume)
        for key, values in result.metrics.items():
            metrics[f"{key}_{name}"] = [np.asarray(v).tolist() for v in values]
    return RunOutput(list(range(n + 1)), metrics, None)


def plot_intro(record: dict, profile: str | None = None):
    """The intro chapter's figure from a ``gaussian-intro`` record.

    Left: each regime's fitted sigma_g; right: W_2^2 to N(0, 1); mean over chains
    with a 10-90% band.  The replace regime's exact theory is drawn at n = g + 1
    fits, because generation 0 is already a fit to M real samples.
    """
    import matplotlib.pyplot as plt

    from .plotting import REGIME_COLORS, band, profile_note, theory

    m, M = record["metrics"], record["settings"]["M"]
    gens = np.asarray(record["generations"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    for regime in record["settings"]["regimes"]:
        color = REGIME_COLORS.get(regime)
        for ax, key in ((ax1, "sigma"), (ax2, "w2_squared")):
            band(ax, gens, np.asarray(m[f"{key}_{regime}"]).T, center="mean", spread="quantile",
                 color=color, label=regime)
    theory(ax1, gens, expected_sigma(gens + 1, M), label=r"theory, replace: $c_M^{\,n}$, $n = g+1$")
    theory(ax2, gens, expected_w2_squared(gens + 1, M), label=r"theory, replace: $n/M + 2(1-c_M^{\,n})$")
    ax1.set(xlabel="generation $g$", ylabel=r"fitted $\sigma_g$", title="standard deviation (mean, 10–90% band)")
    ax2.set(xlabel="generation $g$", ylabel=r"$W_2^2$ to $\mathcal{N}(0,1)$",
            title="distance to the original (mean, 10–90% band)")
    ax1.legend()
    ax2.legend()
    profile_note(fig, record.get("profile", profile or ""),
                 f"{record['settings']['chains']} chains per regime, M = {M}")
    return fig


register(Experiment(
    name="gaussian-intro",
    summary="1-D Gaussian refitted each generation, replace vs accumulate (intro chapter)",
    settings=INTRO_SETTINGS,
    run=run_intro,
    chapter="book/intro.ipynb",
))
