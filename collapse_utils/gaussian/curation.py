"""What the Gaussian family's curation regimes know: a verifier and a corrector.

Both know the real distribution N(mu, sigma^2) (1-D); the core's regimes
(:class:`~collapse_utils.regimes.Verify`, :class:`~collapse_utils.regimes.SelfCorrect`)
call them on each batch of fresh model samples, stored as the family's records
``[count, mean, scatter]`` (:mod:`.simulate`).

* :func:`verifier`: rejection sampling with the density ratio.  A sample x of the
  model g = N(m, s^2) is accepted with probability A(x) = p_L(x) / (K g(x)), where p_L
  is the real density restricted to |x - mu| <= L sigma and K = sup p_L / g there, so
  the accepted samples are distributed as p_L, whatever the model.  (A plain window
  test |x - mu| < L sigma would keep the model's own, narrower shape and shrink the
  variance further.)  With probability ``error`` a decision is a guess: accept with
  the verifier's own acceptance rate 1/K, whatever the sample.  Then each accepted
  sample is from p_L with probability 1 - error and from the model otherwise; at
  error = 1 the verifier is uninformative and ``verify`` is ``replace``.  The
  verifier is told which model drew the batch (:class:`ModelTap`), as a perfect
  discriminator would know the density ratio.
* :func:`corrector`: each sample moves a share gamma along the affine map that gives
  its batch the real mean and standard deviation (the 1-D optimal transport map
  between Gaussians, with the batch's own moments): x -> x + gamma (T(x) - x),
  T(x) = mu + sigma (x - xbar) / s.  The batch then has mean (1 - gamma) xbar + gamma mu
  and standard deviation (1 - gamma) s + gamma sigma, exactly.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

from .simulate import pooled_stats


class ModelTap:
    """Wraps a sample function and remembers the model it last drew from.

    The core's ``Verify`` draws a batch (``sample(model, k, rng)``), then asks the
    verifier about it; the tap hands the verifier that batch's model, including in a
    resumed run (the loop samples from the restored model)."""

    def __init__(self, sample):
        self.sample, self.model = sample, None

    def __call__(self, model, k, rng):
        self.model = model
        return self.sample(model, k, rng)


def log_ratio_sup(m, s, mu: float, sigma: float, window: float) -> np.ndarray:
    """sup over |x - mu| <= window sigma of log[N(x; mu, sigma^2) / N(x; m, s^2)], per chain.

    The log ratio is a quadratic in x; its maximum over the interval lies at an end
    or at the vertex (when the vertex is a maximum inside the interval)."""
    m, s = np.asarray(m, float), np.asarray(s, float)
    lo, hi = mu - window * sigma, mu + window * sigma

    def f(x):
        return np.log(s / sigma) - (x - mu) ** 2 / (2 * sigma**2) + (x - m) ** 2 / (2 * s**2)

    best = np.maximum(f(lo), f(hi))
    curv = 1 / s**2 - 1 / sigma**2          # f'' ; a maximum inside needs curv < 0
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = (m / s**2 - mu / sigma**2) / curv
    inside = (curv < 0) & (vertex > lo) & (vertex < hi)
    return np.where(inside, np.maximum(best, f(np.where(inside, vertex, mu))), best)


class Verifier:
    """The ``accept(records, rng)`` of :class:`~collapse_utils.regimes.Verify` (see the module
    docstring): records of single points (chains, k, 3) -> boolean mask (chains, k).

    It also counts, per chain, the samples it accepted from the current model
    (``accepted``, reset when the tap's model changes), so a run can record how many
    chains ran out of draws before M were accepted."""

    def __init__(self, tap: ModelTap, mu: float, sigma: float, error: float, window: float = 3.0):
        self.tap, self.mu, self.sigma, self.error, self.window = tap, mu, sigma, float(error), float(window)
        self.log_mass = math.log(ndtr(self.window) - ndtr(-self.window))   # p_L = p0 / mass
        self.accepted, self._model = None, None

    def __call__(self, records, rng):
        means, covs = self.tap.model
        m, s = means[:, 0][:, None], np.sqrt(covs[:, 0, 0])[:, None]
        x = records[..., 1]
        mu, sigma = self.mu, self.sigma
        sup = log_ratio_sup(m, s, mu, sigma, self.window)       # log K = sup - log mass
        f = np.log(s / sigma) - (x - mu) ** 2 / (2 * sigma**2) + (x - m) ** 2 / (2 * s**2)
        a = np.where(np.abs(x - mu) <= self.window * sigma, np.exp(np.minimum(f - sup, 0.0)), 0.0)
        p = (1 - self.error) * a + self.error * np.exp(self.log_mass - sup)
        mask = rng.random(x.shape) < p
        if self._model is not self.tap.model:
            self._model, self.accepted = self.tap.model, np.zeros(x.shape[0], dtype=np.int64)
        self.accepted += mask.sum(axis=-1)
        return mask


def verifier(tap: ModelTap, mu: float, sigma: float, error: float, window: float = 3.0) -> Verifier:
    """The verifier of the ``verify`` regime for the real N(mu, sigma^2): a :class:`Verifier`."""
    return Verifier(tap, mu, sigma, error, window)


def corrector(mu: float, sigma: float):
    """The ``correct(records, gamma, rng)`` of :class:`~collapse_utils.regimes.SelfCorrect`:
    the affine map of the module docstring applied to a batch of records (points or
    pooled statistics alike: a record's mean maps like a point, its scatter scales by A^2)."""
    def correct(records, gamma, rng):
        n, xbar, scatter = pooled_stats(records)
        s = np.sqrt(scatter[:, 0, 0] / (n - 1))
        A = (1 - gamma) + gamma * sigma / s                 # x -> A x + B
        B = gamma * mu - gamma * sigma * xbar[:, 0] / s
        out = np.array(records, dtype=float)
        out[..., 1] = A[:, None] * out[..., 1] + B[:, None]
        out[..., 2] = (A**2)[:, None] * out[..., 2]
        return out
    return correct
