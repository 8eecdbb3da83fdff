"""Linear regression, refitted on its own labels: data, fit, samples, curation, in chains.

A data set is an array ``(chains, samples, d + 1)``: features ``x`` in the first d
columns, the label ``y`` in the last.  Every chain is an independent world with the
same true weights ``w*``; the core's regimes take samples along axis 1, so each
chain draws its own subsets and real samples.

* :func:`real_pairs`: real data, ``x ~ N(0, I_d)``, ``y = x . w* + noise``;
* :func:`fit_ols`: ordinary least squares in every chain at once;
* :func:`sample_pairs`: fresh features, labels from a fitted model plus fresh noise
  (how generation i+1's labels come from generation i, Gerstgrasser et al. 2024, Sec. 2);
* :func:`verifier` and :func:`corrector`: the curation regimes' knowledge of ``w*``;
* :class:`FreshReal`: a constant share of model-labelled data, the rest fresh real
  data (Dohmatob et al. 2024, "Strong model collapse").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..regimes import Regime, concat, split_counts


def true_weights(d: int, rng: np.random.Generator) -> np.ndarray:
    """The true weights ``w*``: a random direction of unit length (the excess risk of
    least squares does not depend on it)."""
    w = rng.standard_normal(d)
    return w / np.linalg.norm(w)


def pairs(x: np.ndarray, w: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """``(x, x . w + noise * z)`` as one array; ``w`` is ``(d,)`` or one row per chain."""
    mean = x @ w if w.ndim == 1 else (x @ w[..., None])[..., 0]
    y = mean + noise * rng.standard_normal(mean.shape)
    return np.concatenate([x, y[..., None]], axis=-1)


def real_pairs(w_star: np.ndarray, chains: int, n: int, noise: float,
               rng: np.random.Generator) -> np.ndarray:
    """``n`` real pairs in each of ``chains`` chains."""
    return pairs(rng.standard_normal((chains, n, w_star.size)), w_star, noise, rng)


def fit_ols(data: np.ndarray) -> np.ndarray:
    """Least-squares weights of every chain, ``(chains, d)``: solves X^T X w = X^T y."""
    moments = np.swapaxes(data, -1, -2) @ data   # (chains, d + 1, d + 1), one batched product
    return np.linalg.solve(moments[..., :-1, :-1], moments[..., :-1, -1:])[..., 0]


def sample_pairs(w_hat: np.ndarray, k: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """``k`` fresh pairs per chain labelled by the fitted weights ``w_hat`` plus fresh noise."""
    chains, d = w_hat.shape
    return pairs(rng.standard_normal((chains, k, d)), w_hat, noise, rng)


def excess_risk(w_hat: np.ndarray, w_star: np.ndarray) -> np.ndarray:
    """|w_hat - w*|^2 per chain: the test error above the noise floor for x ~ N(0, I)."""
    return np.sum((w_hat - w_star) ** 2, axis=-1)


def verifier(w_star: np.ndarray, tolerance: float, error: float):
    """A verifier for the ``verify`` regime: accept a pair when its label lies within
    ``tolerance`` of the true prediction x . w*; the decision is flipped with
    probability ``error`` (0: a perfect verifier; 0.5: a coin, no better than none)."""
    def accept(samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        residual = samples[..., -1] - samples[..., :-1] @ w_star
        good = np.abs(residual) <= tolerance
        return good ^ (rng.random(good.shape) < error)
    return accept


def corrector(w_star: np.ndarray):
    """A correction for the ``self-correct`` regime: each label moves a share gamma of
    the way to the true prediction, y + gamma (x . w* - y); the features stay."""
    def correct(samples: np.ndarray, gamma: float, rng: np.random.Generator) -> np.ndarray:
        out = samples.copy()
        out[..., -1] += gamma * (samples[..., :-1] @ w_star - samples[..., -1])
        return out
    return correct


@dataclass(frozen=True, repr=False)
class FreshReal(Regime):
    """A share ``synthetic`` of M_{i+1} pairs labelled by the newest model, the rest fresh
    real pairs (never seen before): the training mix of Dohmatob et al. (2024)."""

    synthetic: float = 0.0
    w_star: np.ndarray = None
    noise: float = 1.0
    name = "fresh-real"

    def next_data(self, draw, m, *, previous, real, pool, rng, axis=1):
        a, b = split_counts(m, [self.synthetic, 1.0 - self.synthetic])
        new = draw(a)
        fresh = real_pairs(self.w_star, real.shape[0], b, self.noise, rng)
        return concat([new, fresh], axis), new
