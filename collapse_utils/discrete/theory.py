"""Exact theory of a discrete distribution refitted exactly (Shumailov et al. 2024, Sec. 3.1).

Each fit draws M samples from the current distribution and the next distribution
is their empirical frequencies, F(p) = p: counts ~ Multinomial(M, p), p' = counts / M.
Only the statistical (sampling) error acts.  Every function here takes an
explicit number of **fits** (sampling rounds from p0); in the experiments
generation 0 is the fit to the real data D_0 (an M-sample of p0), so generation
n is fit n + 1.

* a state of probability q appears among M samples with probability
  1 - (1 - q)^M (:func:`one_step_survival`);
* E[p'] = p: the frequencies are a martingale, absorbed in a delta with
  probability 1, at state i with probability p0(i) (:func:`fixation_probability`);
* one state against the rest is a two-state Wright-Fisher chain, so its survival
  curve and the two-state absorption time are exact (:func:`survival_probability`,
  :func:`absorption_time_pmf`, :func:`mean_absorption_time_exact`); Kimura's
  diffusion approximation E[T] ~ -2M [p ln p + (1-p) ln(1-p)] (Kimura 1955;
  Ewens 2004) gives the time scale (:func:`mean_absorption_time_diffusion`);
* the Gini-Simpson diversity 1 - sum_i p(i)^2 has an exact mean in every regime
  (:func:`expected_gini_simpson`).
"""
from __future__ import annotations

import operator

import numpy as np
from scipy.special import xlogy

from ..regimes import split_counts

_SUM_TOL = 1e-8


def check_distribution(p, name: str = "p0") -> np.ndarray:
    """``p`` as a float array over K >= 1 states, checked and renormalised.

    ValueError (naming ``name``) unless ``p`` is a finite, non-negative, 1-D array
    whose entries sum to 1 within 1e-8.
    """
    arr = np.asarray(p, dtype=float)
    if arr.ndim != 1 or arr.size < 1:
        raise ValueError(f"{name} must be a 1-D array of K >= 1 probabilities; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must hold finite probabilities; got {arr.tolist()}")
    if np.any(arr < 0):
        raise ValueError(f"{name} must hold non-negative probabilities (>= 0); "
                         f"got minimum {arr.min():g}")
    total = arr.sum()
    if abs(total - 1.0) > _SUM_TOL:
        raise ValueError(f"{name} must sum to 1 (within {_SUM_TOL:g}); got sum {total:.10g}")
    return arr / total


def _probability(p, name: str = "p") -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1]; got {p!r}")
    return p


def zipf(K: int, exponent: float = 1.0) -> np.ndarray:
    """The Zipf distribution p(k) = k^(-exponent) / sum_j j^(-exponent), k = 1..K.

    ``exponent = 0`` is uniform; larger exponents put less mass in the tail.
    """
    w = np.arange(1, operator.index(K) + 1, dtype=float) ** (-float(exponent))
    return check_distribution(w / w.sum())


# ----------------------------------------------------------------------------- survival
def one_step_survival(q, M: int):
    """P(a state of probability q appears among M samples) = 1 - (1 - q)^M."""
    out = 1.0 - (1.0 - np.asarray(q, dtype=float)) ** operator.index(M)
    return out.item() if out.ndim == 0 else out


def fixation_probability(p0) -> np.ndarray:
    """P(the chain ends as the delta at state i) = p0(i), under ``replace``.

    The frequencies are a bounded martingale absorbed in {0, 1}, so by optional
    stopping E[p_T(i)] = p_0(i) = P(p_T(i) = 1) (Shumailov et al. 2024, Sec. 3.1).
    """
    return check_distribution(p0).copy()


def wright_fisher_matrix(M: int) -> np.ndarray:
    """Transition matrix T[j, k] = P(k copies next | j copies now) = Binom(M, j/M)(k).

    The count of one state against all the others under multinomial resampling
    (the two-state Wright-Fisher chain); states 0 and M are absorbing.
    """
    from scipy.stats import binom

    j = np.arange(operator.index(M) + 1)
    return binom.pmf(j[None, :], M, j[:, None] / M)


def _lost_and_fixed(q, M: int, fits: int) -> tuple[np.ndarray, np.ndarray]:
    """P(count = 0) and P(count = M) after 0..``fits`` fits, each (len(q), fits + 1).

    Before any fit the frequency is q exactly (not necessarily a multiple of 1/M),
    so fit 1 is Binom(M, q); later fits follow :func:`wright_fisher_matrix`.
    """
    from scipy.stats import binom

    q = np.atleast_1d(np.asarray(q, dtype=float))
    M, fits = operator.index(M), operator.index(fits)
    T = wright_fisher_matrix(M) if fits > 1 else None
    lost = np.zeros((q.size, fits + 1))
    fixed = np.zeros((q.size, fits + 1))
    lost[:, 0], fixed[:, 0] = (q == 0), (q == 1)
    if fits >= 1:
        dist = binom.pmf(np.arange(M + 1)[None, :], M, q[:, None])
        for n in range(1, fits + 1):
            if n > 1:
                dist = dist @ T
            lost[:, n], fixed[:, n] = dist[:, 0], dist[:, M]
    return lost, fixed


def survival_probability(q, M: int, fits: int) -> np.ndarray:
    """Exact P(a state of initial probability q is still present after n fits), ``replace``.

    Shape (len(q), fits + 1) (squeezed to (fits + 1,) for scalar q); index 0 is 1
    where q > 0, index 1 is :func:`one_step_survival` (the real data D_0), and the
    curve falls to the fixation probability q.  Exact for any K, because one state
    against the rest is a two-state Wright-Fisher chain.  Cost O(fits M^2).
    """
    out = 1.0 - _lost_and_fixed(q, M, fits)[0]
    return out[0] if np.ndim(q) == 0 else out


def expected_support(p0, M: int, fits: int) -> np.ndarray:
    """E[number of states present after n fits] = sum_i survival(p0(i), n), ``replace``.

    Under ``accumulate`` the support stays that of D_0: this curve at n = 1.
    """
    return survival_probability(check_distribution(p0), M, fits).sum(axis=0)


# ----------------------------------------------------------------------------- diversity
def expected_gini_simpson(p0, M: int, fits: int, regime: str = "replace",
                          real_fraction: float = 0.1) -> np.ndarray:
    """Exact E[1 - sum_i p(i)^2] after n = 0..``fits`` fits in each regime.

    Fit 1 is the real data D_0, an M-sample of p0 with frequencies r; later fits
    follow the regime.  With s = sum p0^2 and G0 = 1 - s:

    * ``replace``:    G0 (1 - 1/M)^n (the heterozygosity of Wright-Fisher);
    * ``accumulate``: fit n pools M n samples, so E[G] = G0 prod_{k=1}^{n} (1 - 1/(k^2 M)),
      bounded below by G0 (1 - pi^2 / (6 M));
    * ``keep-real``:  a model samples and c = M - a of D_0's samples drawn without
      replacement (split as :func:`collapse_utils.regimes.keep_real`).  Given r, with
      s_r = sum r^2, x = E[sum p^2], y = E[sum_i p(i) r(i)],
      x' = [(a^2 - a) x + 2ac y + c^2 s_r + c (1 - s_r)(M - c)/(M - 1) + a] / M^2,
      y' = (a y + c s_r) / M, from x = y = s_r.  That is affine in s_r, so the mean
      over D_0 is the same recursion at E[s_r] = s + (1 - s)/M.
    """
    p0 = check_distribution(p0)
    M, fits = operator.index(M), operator.index(fits)
    if regime not in ("replace", "keep-real", "accumulate"):
        raise ValueError(f"regime must be one of replace, keep-real, accumulate; got {regime!r}")
    s = float(np.sum(p0**2))
    n = np.arange(fits + 1)
    if regime == "replace":
        return (1 - s) * (1 - 1 / M) ** n
    out = np.empty(fits + 1)
    out[0] = 1 - s
    if regime == "accumulate":
        out[1:] = (1 - s) * np.cumprod(1 - 1 / (n[1:] ** 2 * M))
        return out
    a, c, s_r = *_keep_real_split(M, real_fraction), s + (1 - s) / M
    x = y = s_r
    for k in range(1, fits + 1):
        out[k] = 1 - x
        x, y = _keep_real_step(x, y, s_r, M, a, c)
    return out


def _keep_real_split(M: int, real_fraction: float) -> tuple[int, int]:
    a, _, c = split_counts(M, [1 - _probability(real_fraction, "real_fraction"), 0.0,
                               float(real_fraction)])
    return a, c


def _keep_real_step(x, y, s_r, M, a, c):
    fpc = (M - c) / (M - 1) if M > 1 else 0.0  # without replacement from D_0's M samples
    x_next = ((a * a - a) * x + 2 * a * c * y + c * c * s_r + c * (1 - s_r) * fpc + a) / M**2
    return x_next, (a * y + c * s_r) / M


def keep_real_stationary_gini_simpson(p0, M: int, real_fraction: float) -> float:
    """The fixed point of :func:`expected_gini_simpson` under ``keep-real``.

    With y = s_r at the fixed point, 1 - x* = 1 - [(2a + c) c s_r + c (1 - s_r)(M - c)/(M - 1) + a]
    / (M^2 - a^2 + a), evaluated at E[s_r] (it is affine in s_r); 0 without real data.
    """
    p0 = check_distribution(p0)
    M = operator.index(M)
    a, c = _keep_real_split(M, real_fraction)
    s = float(np.sum(p0**2))
    s_r = s + (1 - s) / M
    fpc = (M - c) / (M - 1) if M > 1 else 0.0
    x = ((2 * a + c) * c * s_r + c * (1 - s_r) * fpc + a) / (M * M - a * a + a)
    return float(1 - x)


# ----------------------------------------------------------------------------- absorption
def mean_absorption_time_diffusion(p, M: int) -> float:
    """Kimura's diffusion approximation to the mean number of fits until one state is left.

    Two states (``p`` a number, the frequency of one of them):
    E[T] ~ -2M [p ln p + (1 - p) ln(1 - p)]  (Kimura 1955; Ewens 2004).
    K states (``p`` a distribution): E[T] ~ -2M sum_i (1 - p_i) ln(1 - p_i), which
    reduces to the two-state formula for K = 2 (Ewens 2004).
    """
    M = operator.index(M)
    if np.ndim(p) == 0:
        p = _probability(p)
        return float(-2 * M * (xlogy(p, p) + xlogy(1 - p, 1 - p)))
    p = check_distribution(p, "p")
    return float(-2 * M * np.sum(xlogy(1 - p, 1 - p)))


def mean_absorption_time_exact(p: float, M: int) -> float:
    """Exact mean number of fits until the two-state chain started at frequency p is absorbed.

    Solves (I - Q) t = 1 on the transient counts 1..M-1 of :func:`wright_fisher_matrix`,
    then E[T] = 1 + sum_k Binom(M, p)(k) t_k for 0 < p < 1 (0 at p in {0, 1}).
    """
    from scipy.stats import binom

    M, p = operator.index(M), _probability(p)
    if p in (0.0, 1.0):
        return 0.0
    if M == 1:
        return 1.0
    Q = wright_fisher_matrix(M)[1:M, 1:M]
    t = np.linalg.solve(np.eye(M - 1) - Q, np.ones(M - 1))
    return float(1.0 + binom.pmf(np.arange(1, M), M, p) @ t)


def absorption_time_pmf(p: float, M: int, fits: int) -> np.ndarray:
    """Exact P(T = n), n = 0..``fits``, for the two-state chain started at frequency p."""
    lost, fixed = _lost_and_fixed(_probability(p), M, fits)
    return np.diff(lost[0] + fixed[0], prepend=0.0)


def binomial_interval(successes, trials, level: float = 0.95):
    """Clopper-Pearson (exact) interval for a binomial proportion: arrays (low, high)."""
    from scipy.stats import beta

    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    a = (1 - level) / 2
    lo = np.where(k > 0, beta.ppf(a, k, n - k + 1), 0.0)
    hi = np.where(k < n, beta.ppf(1 - a, k + 1, n - k), 1.0)
    return lo, hi



# ============================================================================= rate of forgetting
# Bounds on how fast one state is forgotten under ``replace`` (Suresh et al. 2024), beside the
# exact :func:`survival_probability`.  Fits are counted as above: fit 1 draws M samples of p0.
def survival_lower_bound(q, M: int, fits):
    """Suresh et al. (2024)'s bound P(state present after k fits) >= 1 - exp(-M q / k).

    Proof in the book's notation: with f(s) = 1 - e^{-s} and Binom(M, x/M) counts,
    E[e^{-s X'} | X] = (1 - (X/M) f(s))^M <= e^{-X f(s)}.  Iterating from P(X_k = 0 | X_{k-1})
    <= e^{-X_{k-1}} gives P(X_k = 0) <= exp(-M q s_k), s_1 = 1, s_{j+1} = f(s_j); and
    f(s) >= s / (1 + s) gives 1/s_k <= k.  ``fits`` may be an array; k = 0 gives 1 for q > 0.
    """
    q, k = np.asarray(q, dtype=float), np.asarray(fits, dtype=float)
    M = operator.index(M)
    with np.errstate(divide="ignore"):
        out = np.where(k > 0, -np.expm1(-M * q / np.where(k > 0, k, 1.0)), (q > 0).astype(float))
    return out.item() if out.ndim == 0 else out


def ancestor_fraction(M: int, fits: int) -> np.ndarray:
    """b_j, j = 0..``fits``: a bound on E[A_j] / M, A_j the number of distinct ancestors j
    resamplings back of the M current samples (Wright-Fisher genealogy).

    Each of a lineages picks one of M parents, so E[A_{j+1} | A_j = a] = M (1 - (1 - 1/M)^a),
    concave in a: by Jensen E[A_j] / M <= b_j with b_0 = 1, b_{j+1} = 1 - (1 - 1/M)^{M b_j}.
    b_j falls like 2/j while j << M and levels off near 1/M (the common ancestor).
    """
    M, fits = operator.index(M), operator.index(fits)
    b = np.empty(fits + 1)
    b[0] = 1.0
    for j in range(fits):
        b[j + 1] = -np.expm1(M * b[j] * np.log1p(-1.0 / M)) if M > 1 else 1.0
    return b


def survival_upper_bound(q, M: int, fits: int) -> np.ndarray:
    """P(state present after k fits) <= min(1, M q b_{k-1}), k = 0..``fits`` (the book's bound).

    Fit 1 holds X_1 ~ Binom(M, q) copies.  The state is present at fit k exactly when one of
    them is an ancestor of fit k's samples; each is one with probability E[A_{k-1}] / M
    (exchangeability), so a union bound over the X_1 copies gives E[X_1] b_{k-1} = M q b_{k-1}
    (:func:`ancestor_fraction`).  Shape as :func:`survival_probability`.
    """
    q = np.asarray(q, dtype=float)
    b = ancestor_fraction(M, max(operator.index(fits) - 1, 0))
    scale = np.concatenate([[np.inf], b])[: operator.index(fits) + 1]  # k = 0: 1 if q > 0
    out = np.minimum(1.0, operator.index(M) * q[..., None] * scale)
    out = np.where(q[..., None] > 0, out, 0.0)
    return out


def forgetting_time(survival, level: float = 0.5) -> np.ndarray:
    """The first fit at which a survival curve (last axis: fits 0, 1, ...) is at most ``level``
    (NaN where it never is): the 'time to forget' of a state."""
    s = np.asarray(survival, dtype=float)
    below = s <= level
    first = np.argmax(below, axis=-1).astype(float)
    return np.where(below.any(axis=-1), first, np.nan)


# ----------------------------------------------------------------------------- curation
def curation_gini_simpson(p0, M: int, fits: int, regime: str, *, verifier_error: float = 0.0,
                          gamma: float = 0.5) -> np.ndarray:
    """E[1 - sum_i p(i)^2] after n = 0..``fits`` fits under ``self-correct`` or ``verify``.

    Fit 1 fits D_0 (E sum r^2 = s + (1 - s)/M, s = sum p0^2) and E p = p0 at every fit.
    With x = E sum p^2 and E[sum phat^2 | p] = (1 - 1/M) sum p^2 + 1/M for an M-sample phat:

    * ``self-correct`` (p' = (1 - g) phat + g p0), exact:
      x' = (1 - g)^2 ((1 - 1/M) x + 1/M) + (1 - (1 - g)^2) s;
    * ``verify`` (phat an M-sample of (1 - q) p0 + q p), exact while no state is lost and
      the draw budget suffices: x' = (1 - 1/M) ((1 - q^2) s + q^2 x) + 1/M.  A lost state
      never returns, so over many generations this overstates the diversity of p0's tail.
    """
    p0 = check_distribution(p0)
    M, fits = operator.index(M), operator.index(fits)
    if regime not in ("self-correct", "verify"):
        raise ValueError(f"regime must be self-correct or verify; got {regime!r}")
    s = float(np.sum(p0**2))
    out = np.empty(fits + 1)
    out[0] = 1 - s
    x = s + (1 - s) / M
    for k in range(1, fits + 1):
        out[k] = 1 - x
        if regime == "self-correct":
            a2 = (1 - _probability(gamma, "gamma")) ** 2
            x = a2 * ((1 - 1 / M) * x + 1 / M) + (1 - a2) * s
        else:
            q2 = _probability(verifier_error, "verifier_error") ** 2
            x = (1 - 1 / M) * ((1 - q2) * s + q2 * x) + 1 / M
    return out


def verified_support_bound(p0, M: int, fits: int) -> np.ndarray:
    """A lower bound on E[support] after n = 0..``fits`` fits under a perfect verifier.

    Each fit is an M-sample of p0 restricted to the states still present, so state i
    survives a fit with probability at least 1 - (1 - p0(i))^M (renormalising over fewer
    states only raises its share); a lost state never returns.  Hence
    E[support_n] >= sum_i (1 - (1 - p0(i))^M)^n.
    """
    p0 = check_distribution(p0)
    keep = 1 - (1 - p0) ** operator.index(M)
    n = np.arange(operator.index(fits) + 1)[:, None]
    return np.where(n == 0, (p0 > 0).astype(float), keep ** n).sum(axis=1)
