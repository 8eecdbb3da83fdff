"""Closed forms for least squares refitted on its own labels (isotropic Gaussian features).

Notation: d features, T pairs per fit, label noise sigma, ``fits`` = the number of
least-squares fits made so far (generation i is fit number i + 1).  The excess
risk of a fit w_hat is |w_hat - w*|^2, its test error above the noise floor.

One fit.  For T pairs with x ~ N(0, I_d), E[(X^T X)^{-1}] = I / (T - d - 1) (the
mean of an inverse Wishart matrix), so one least-squares fit has expected excess
risk v = sigma^2 d / (T - d - 1) (needs T > d + 1).

Replace.  Generation i+1 fits fresh features labelled by generation i, so its
error is generation i's error plus an independent least-squares error:
E = v * fits, linear growth (Dohmatob, Feng & Kempe 2024; Gerstgrasser et al.
2024, Sec. 2).

Accumulate.  With S_n the Gram matrix of all data so far, the fit after the n-th
addition obeys e_n = e_{n-1} + S_n^{-1} X_n^T eps_n: only the new labels' noise is
new, and it is averaged over everything seen.  Gerstgrasser et al. (2024) keep the
design X fixed across iterations; then S_n = n X^T X and
E = v * sum_{k=1}^{fits} 1/k^2 < v * pi^2 / 6.  This book draws fresh features
each generation; exchangeability of the n blocks gives
E tr(S_n^{-1} X_n^T X_n S_n^{-1}) = E tr(S_n^{-1}) / n = d / (n (n T - d - 1)), hence
E = sigma^2 d * sum_{k=1}^{fits} 1 / (k (k T - d - 1)), which lies below the fixed-design
value term by term (k T - d - 1 >= k (T - d - 1)) and so below v pi^2 / 6 as well.

Self-correct.  Moving every label a share gamma of the way to x . w* gives
e_{n+1} = (1 - gamma)(e_n + A eps): E_{n+1} = (1 - gamma)^2 (E_n + v), E_1 = v.

A constant share p of synthetic labels (Dohmatob, Feng, Subramonian & Kempe 2024,
"Strong model collapse").  Fit n pairs, a share p labelled by a fixed model whose
weights are off by Delta, the rest real.  The fit tends to w* + p Delta as n grows,
so the excess risk tends to p^2 |Delta|^2, not to 0.  To first order in 1/n
(Wishart fluctuations of the two Gram matrices), E = sigma^2 d / (n - d - 1)
+ |Delta|^2 (p^2 + p (1 - p)(d + 1) / n).
"""
from __future__ import annotations

import math

import numpy as np


def _check(d: int, T: int) -> None:
    if not T > d + 1:
        raise ValueError(f"samples must exceed d + 1 = {d + 1} for a finite mean error; got {T}")


def one_fit_error(d: int, T: int, noise: float) -> float:
    """E|w_hat - w*|^2 of one least-squares fit on T real pairs: sigma^2 d / (T - d - 1)."""
    _check(d, T)
    return noise ** 2 * d / (T - d - 1)


def replace_error(fits, d: int, T: int, noise: float) -> np.ndarray:
    """Expected excess risk after ``fits`` fits under ``replace``: v * fits (exact)."""
    return one_fit_error(d, T, noise) * np.asarray(fits, dtype=float)


def accumulate_error(fits, d: int, T: int, noise: float) -> np.ndarray:
    """Expected excess risk after ``fits`` fits under ``accumulate`` with fresh features
    each generation (exact): sigma^2 d sum_{k=1}^{fits} 1 / (k (k T - d - 1))."""
    _check(d, T)
    fits = np.asarray(fits, dtype=int)
    k = np.arange(1, max(int(fits.max(initial=1)), 1) + 1)
    terms = np.cumsum(1.0 / (k * (k * T - d - 1)))
    return noise ** 2 * d * np.where(fits > 0, terms[np.maximum(fits, 1) - 1], 0.0)


def accumulate_fixed_design(fits, d: int, T: int, noise: float) -> np.ndarray:
    """Gerstgrasser et al.'s accumulate result (design fixed across fits):
    v * sum_{k=1}^{fits} 1/k^2."""
    fits = np.asarray(fits, dtype=int)
    k = np.arange(1, max(int(fits.max(initial=1)), 1) + 1)
    terms = np.cumsum(1.0 / k ** 2)
    return one_fit_error(d, T, noise) * np.where(fits > 0, terms[np.maximum(fits, 1) - 1], 0.0)


def accumulate_bound(d: int, T: int, noise: float) -> float:
    """The bound that no number of fits under ``accumulate`` exceeds: v * pi^2 / 6."""
    return one_fit_error(d, T, noise) * math.pi ** 2 / 6


def self_correct_error(fits, gamma: float, d: int, T: int, noise: float) -> np.ndarray:
    """Expected excess risk under ``self-correct`` (labels moved a share gamma to x . w*):
    E_1 = v, E_{k+1} = (1 - gamma)^2 (E_k + v) (exact)."""
    v = one_fit_error(d, T, noise)
    fits = np.asarray(fits, dtype=int)
    out, e = [], v
    for k in range(1, max(int(fits.max(initial=1)), 1) + 1):
        out.append(e)
        e = (1 - gamma) ** 2 * (e + v)
    table = np.asarray(out)
    return np.where(fits > 0, table[np.maximum(fits, 1) - 1], 0.0)


def self_correct_limit(gamma: float, d: int, T: int, noise: float) -> float:
    """The fixed point of :func:`self_correct_error`: v (1 - gamma)^2 / (1 - (1 - gamma)^2)."""
    if gamma <= 0:
        return math.inf
    c = (1 - gamma) ** 2
    return one_fit_error(d, T, noise) * c / (1 - c)


def mixed_error(n, p, delta2, d: int, noise: float) -> np.ndarray:
    """Excess risk of one fit on n pairs, a share p labelled by weights off by |Delta|^2 =
    ``delta2``, to first order in 1/n: sigma^2 d/(n-d-1) + delta2 (p^2 + p(1-p)(d+1)/n)."""
    n, p = np.asarray(n, dtype=float), np.asarray(p, dtype=float)
    return noise ** 2 * d / (n - d - 1) + delta2 * (p ** 2 + p * (1 - p) * (d + 1) / n)


def mixed_floor(p, delta2) -> np.ndarray:
    """What the excess risk tends to as n grows with a constant share p: p^2 |Delta|^2."""
    return np.asarray(p, dtype=float) ** 2 * delta2
