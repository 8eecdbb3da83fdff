"""Exact theory of the Gaussian refitted on its own samples (Shumailov et al. 2024, Sec. 3.2).

Every function here takes an explicit number of *fits* n.  In the book's loop
generation 0 is the fit to the real data, so generation g holds the model after
n = g + 1 fits.  With sigma the original standard deviation and
c_M = E[sqrt(chi2_{M-1}/(M-1))] = sqrt(2/(M-1)) Gamma(M/2) / Gamma((M-1)/2), after n fits
of M samples each (unbiased variance, Gaussian D_0):

    E[sigma_n^2] = sigma^2                 (a martingale)
    E[sigma_n]   = sigma c_M^n             (so the typical sigma_n shrinks)
    E[(mu_n - mu)^2] = n sigma^2 / M
    E[W_2^2(N(mu_n, sigma_n^2), N(mu, sigma^2))] = n sigma^2 / M + 2 sigma^2 (1 - c_M^n)
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import digamma, gammaln, polygamma

from ..regimes import as_schedule
from ..settings import Setting
from .w2 import check_covariance

ESTIMATORS = ("unbiased", "mle")

#: argument checks shared with :mod:`.simulate` (the core's schema does the checking)
ESTIMATOR = Setting("unbiased", choices=ESTIMATORS, help="variance estimator: unbiased or mle (np.std)")


def _fits(n) -> np.ndarray:
    """``n`` as an array of non-negative integers (numbers of fits), or ValueError."""
    n = np.asarray(n)
    if np.any(n < 0) or np.any(n != np.round(n)):
        raise ValueError(f"n (the number of fits) must hold non-negative integers; got {n}")
    return n


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
    """E[sigma_n] = sigma c_M^n after n fits (unbiased variance, 1-D, constant M).

    Generation g of the loop has n = g + 1 fits.
    """
    return sigma * c_m(M) ** _fits(n).astype(float)


def expected_w2_squared(n, M, sigma: float = 1.0):
    """E[W_2^2] between the Gaussian after n fits and the original N(mu, sigma^2), exactly.

    n sigma^2 / M from the mean's random walk plus 2 sigma^2 (1 - c_M^n) from the
    standard deviation (1-D, unbiased variance, constant M).  Generation g has n = g + 1.
    """
    n = _fits(n).astype(float)
    if sigma <= 0:
        raise ValueError(f"sigma must be positive; got {sigma}")
    out = n * sigma**2 / M + 2 * sigma**2 * (1 - c_m(M) ** n)
    return out.item() if np.ndim(out) == 0 else out


def fit_sizes(M: int, schedule, fits: int) -> np.ndarray:
    """M_k of the fits k = 0..fits-1: fit 0 (generation 0) sees the real data, M_0 = M;
    fit k (generation k) sees M_k = schedule(k) fresh samples."""
    sched = as_schedule(schedule, M, name="schedule")
    return np.array([M] + [sched(k) for k in range(1, fits)], dtype=float)[:fits]


def theory_1d(n, M, sigma: float = 1.0, estimator: str = "unbiased", schedule=None) -> dict:
    """Exact moments after n fits of N(mu, sigma^2), fit k on M_k samples (1-D, Gaussian D_0).

    ``n`` counts fits: the model of generation g is the (g + 1)-th, so pass n = g + 1
    (n = 0 is D_0 itself).  One fit multiplies the variance by
    xi_k = chi2_{M_k-1} / (M_k - 1) (unbiased) or / M_k (MLE), independent of the past,
    and moves the mean by N(0, sigma_k^2 / M_k).  Hence, with products and sums over
    the fits k < n:

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
    ESTIMATOR.check("estimator", estimator)
    if not sigma > 0:
        raise ValueError(f"sigma must be positive; got {sigma}")
    n = _fits(n)
    M = Setting(2, low=2).check("M", M)
    steps = int(n.max()) if n.size else 0
    Mk = fit_sizes(M, schedule, steps)
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


def log_det_drift(M: int, d: int) -> float:
    """E[log det Sigma_{n+1} - log det Sigma_n] = sum_{j<d} psi((M-1-j)/2) + d log(2/(M-1)).

    Each refit maps Sigma to Sigma^{1/2} W Sigma^{1/2} / (M - 1) with W ~ Wishart(M-1, I_d),
    and E[log det W] = sum_{j<d} psi((M-1-j)/2) + d log 2 (Bartlett; unbiased, M > d).
    """
    M = Setting(2, low=d + 1).check("M", M)
    return float(sum(digamma((M - 1 - j) / 2) for j in range(d)) + d * np.log(2 / (M - 1)))


def expected_log_det(n, M, cov) -> np.ndarray:
    """E[log det Sigma_n] = log det Sigma + n * :func:`log_det_drift` after n fits (d-D).

    Generation g has n = g + 1 fits (unbiased, constant M, Gaussian D_0).
    """
    c = check_covariance(np.atleast_2d(cov))
    step = log_det_drift(M, c.shape[-1])
    sign, logdet = np.linalg.slogdet(c)
    return logdet + _fits(n).astype(float) * step


def accumulate_mean_bound(M: int, sigma: float = 1.0) -> float:
    """pi^2/6 sigma^2/M: the bound on E(mu_n - mu)^2 under accumulate, for every n.

    Fit k pools (k + 1) M points, so M fresh points move the mean by 1/(k + 1) of
    their own error, with variance at most sigma^2 / (M (k + 1)^2); the sum over k is
    pi^2/6 sigma^2 / M.  (This book's Gaussian computation; Gerstgrasser et al. 2024
    prove the analogous bound for linear regression.)
    """
    return float(np.pi**2 / 6 * sigma**2 / M)


def source_lower_bound(n, M, moments, sigma: float = 1.0):
    """Exact lower bound on E W_2^2 after n fits (n >= 1) from a non-Gaussian D_0.

    ``moments`` = (xbar, s_x^2, K) of the empirical D_0 (:func:`~.w2.quantile_moments`):
    E W_2^2 >= n sigma^2/M + xbar^2 + s_x^2 + sigma^2 - 2 K sigma c_M^(n-1), from
    E sigma_n^2 = sigma^2, E(mu_n - mu)^2 = n sigma^2/M and E sigma_n <= sigma c_M^(n-1)
    (the first fit has E sigma_1 <= sigma for any D_0, each later one a factor c_M).
    """
    xbar, var, K = moments
    n = np.asarray(n, dtype=float)
    return n * sigma**2 / M + xbar**2 + var + sigma**2 - 2 * K * sigma * c_m(M) ** (n - 1)


# ----------------------------------------------------------------------------- curation
def truncated_variance(window: float, sigma: float = 1.0) -> float:
    """Variance of N(mu, sigma^2) restricted to |x - mu| <= window * sigma:
    sigma^2 (1 - 2 L phi(L) / (2 Phi(L) - 1)), L = ``window`` (sigma^2 for L = inf)."""
    from scipy.stats import norm

    L = float(window)
    if not L > 0:
        raise ValueError(f"window must be positive; got {window!r}")
    if math.isinf(L):
        return float(sigma**2)
    return float(sigma**2 * (1 - 2 * L * norm.pdf(L) / (2 * norm.cdf(L) - 1)))


def self_correct_theory(generations: int, M: int, gamma: float, sigma: float = 1.0) -> dict:
    """Exact moments of generations g = 0..``generations`` under ``self-correct``.

    The correction moves each sample x of a batch a share gamma along the affine map
    that gives the batch the real mean and standard deviation,
    x -> x + gamma (mu + sigma (x - xbar)/s - x), so with a = 1 - gamma the next fit is
    exactly mu_{g+1} - mu = a (xbar - mu) and sigma_{g+1} = a s + gamma sigma, where xbar and
    s are the plain refit's (xbar ~ N(mu_g, sigma_g^2/M), s = sigma_g sqrt(chi2_{M-1}/(M-1))).
    Hence, from generation 0 (the fit to D_0: E sigma_0 = c_M sigma, E sigma_0^2 = sigma^2,
    E e_0^2 = sigma^2/M):

        E sigma_{g+1}   = a c_M E sigma_g + gamma sigma
        E sigma_{g+1}^2 = a^2 E sigma_g^2 + 2 a gamma sigma c_M E sigma_g + gamma^2 sigma^2
        E e_{g+1}^2     = a^2 (E e_g^2 + E sigma_g^2 / M)
        E W_2^2         = E e^2 + E sigma^2 - 2 sigma E sigma + sigma^2

    (1-D, unbiased variance, constant M).  gamma = 0 is ``replace``
    (:func:`theory_1d` at n = g + 1 fits).  Returns arrays of length generations + 1.
    """
    G = int(generations)
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1]; got {gamma!r}")
    a, c = 1.0 - gamma, c_m(M)
    m1, m2, e2 = (np.empty(G + 1) for _ in range(3))
    m1[0], m2[0], e2[0] = sigma * c, sigma**2, sigma**2 / M
    for g in range(G):
        m1[g + 1] = a * c * m1[g] + gamma * sigma
        m2[g + 1] = a * a * m2[g] + 2 * a * gamma * sigma * c * m1[g] + gamma**2 * sigma**2
        e2[g + 1] = a * a * (e2[g] + m2[g] / M)
    return {"sigma": m1, "sigma_squared": m2, "mean_error_squared": e2,
            "w2_squared": e2 + m2 - 2 * sigma * m1 + sigma**2}


def self_correct_limit(M: int, gamma: float, sigma: float = 1.0) -> dict:
    """The fixed point of :func:`self_correct_theory` (gamma > 0): E sigma, E sigma^2,
    E e^2 and E W_2^2 as generations -> infinity."""
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must lie in (0, 1]; got {gamma!r}")
    a, c = 1.0 - gamma, c_m(M)
    m1 = gamma * sigma / (1 - a * c)
    m2 = (2 * a * gamma * sigma * c * m1 + gamma**2 * sigma**2) / (1 - a * a)
    e2 = a * a * m2 / M / (1 - a * a)
    return {"sigma": m1, "sigma_squared": m2, "mean_error_squared": e2,
            "w2_squared": e2 + m2 - 2 * sigma * m1 + sigma**2}


def verify_theory(generations: int, M: int, error: float, window: float = 3.0,
                  sigma: float = 1.0) -> dict:
    """Moments of generations g = 0..``generations`` under ``verify`` with error rate q.

    The verifier (:func:`collapse_utils.gaussian.curation.verifier`) accepts a sample x of
    the model N(m, s^2) with probability (1 - q) A(x) + q / K, where A = p_L / (K g) is
    rejection sampling towards p_L, the real N(mu, sigma^2) restricted to
    |x - mu| <= L sigma (L = ``window``), and K = sup p_L / g on that window; with
    probability q its decision is a guess at its own acceptance rate 1/K.  So every
    accepted sample is, independently, from p_L with probability 1 - q and from the
    model with probability q, and the M accepted samples are an i.i.d. sample of the
    mixture (1 - q) p_L + q g (as long as the draw budget is not exhausted).  With
    v_L = :func:`truncated_variance`, e_g = mu_g - mu and the unbiased variance,
    exactly:

        E sigma_{g+1}^2 = (1 - q) v_L + q E sigma_g^2 + q (1 - q) E e_g^2
        E e_{g+1}^2     = q^2 E e_g^2 + E sigma_{g+1}^2 / M

    from E sigma_0^2 = sigma^2, E e_0^2 = sigma^2 / M (generation 0 fits D_0).  ``w2_squared``
    is a linear-noise approximation, not exact: each fit adds W_1 = sigma^2/M + 2 sigma^2 (1 - c_M)
    (one fit's E W_2^2) and the verifier keeps a share q of the deviation, so
    E W_2^2_{g+1} ~ q^2 E W_2^2_g + W_1 (small deviations; q = 1 is ``replace``, where the
    exact :func:`theory_1d` applies instead).
    """
    G, q = int(generations), float(error)
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"error must lie in [0, 1]; got {error!r}")
    vL = truncated_variance(window, sigma)
    w1 = sigma**2 / M + 2 * sigma**2 * (1 - c_m(M))
    v, e2, w2 = (np.empty(G + 1) for _ in range(3))
    v[0], e2[0], w2[0] = sigma**2, sigma**2 / M, w1
    for g in range(G):
        v[g + 1] = (1 - q) * vL + q * v[g] + q * (1 - q) * e2[g]
        e2[g + 1] = q * q * e2[g] + v[g + 1] / M
        w2[g + 1] = q * q * w2[g] + w1
    return {"sigma_squared": v, "mean_error_squared": e2, "w2_squared": w2}


def verify_limit(M: int, error: float, window: float = 3.0, sigma: float = 1.0) -> dict:
    """The fixed point of :func:`verify_theory`'s exact recursion, and where it stops existing.

    E e^2* = v_L / (M (1 - q^2) - q) and E sigma^2* = v_L + q E e^2*: finite exactly while
    M (1 - q^2) > q, that is for q below ``critical_error(M)`` = (sqrt(1 + 4 M^2) - 1) / (2 M)
    ~ 1 - 1/(2M); beyond it the second moments grow without bound.  ``w2_squared``: the
    linear-noise value W_1 / (1 - q^2).
    """
    q = float(error)
    vL = truncated_variance(window, sigma)
    den = M * (1 - q * q) - q
    e2 = vL / den if den > 0 else math.inf
    w1 = sigma**2 / M + 2 * sigma**2 * (1 - c_m(M))
    return {"mean_error_squared": e2, "sigma_squared": vL + q * e2,
            "w2_squared": w1 / (1 - q * q) if q < 1 else math.inf}


def critical_error(M: int) -> float:
    """The verifier error above which :func:`verify_limit` has no finite fixed point."""
    return float((math.sqrt(1 + 4 * M * M) - 1) / (2 * M))
