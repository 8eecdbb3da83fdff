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


# ----------------------------------------------------------------------------- the verify transition
def verify_unlimited(M: int, errors, generations: int, window: float = 3.0, *,
                     chains: int = 2000, seed: int = 0) -> dict:
    """The ``verify`` loop with an unlimited draw budget, sampled directly: {q: per-chain arrays}.

    With any number of batches allowed, the M accepted samples of a generation are i.i.d.
    draws of the mixture (1 - q) p_L + q g (module docstring; :func:`~.theory.verify_theory`),
    so they are drawn from it directly: p_L by inverse-CDF sampling of N(0, 1) restricted to
    |x| <= L, the model's share from N(m_g, s_g^2).  Generation 0 fits M draws of N(0, 1);
    each later one refits by the unbiased mean and variance, as the chapter's run does.
    This is the run's limit as ``max_rounds`` grows, so the run's excess over it is the
    finite budget's.  Returns, per verifier error q, the last generation's per-chain
    ``w2_squared`` (to N(0, 1)) and ``sigma`` (arrays of length ``chains``).
    """
    from scipy.special import ndtri

    rng = np.random.default_rng([int(seed), int(M), int(generations)])
    lo, hi = ndtr(-float(window)), ndtr(float(window))
    out = {}
    for q in errors:
        q = float(q)
        x = rng.standard_normal((chains, M))
        m, s = x.mean(axis=1), x.std(axis=1, ddof=1)
        for _ in range(int(generations)):
            real = ndtri(lo + (hi - lo) * rng.random((chains, M)))
            own = m[:, None] + s[:, None] * rng.standard_normal((chains, M))
            x = np.where(rng.random((chains, M)) < q, own, real)
            m, s = x.mean(axis=1), x.std(axis=1, ddof=1)
        out[q] = {"w2_squared": m**2 + (s - 1.0) ** 2, "sigma": s}
    return out


def verify_w2_bound(generations: int, M: int, error: float, window: float = 3.0,
                    sigma: float = 1.0) -> float:
    """A lower bound on E W_2^2 after ``generations`` under ``verify`` (unlimited budget).

    W_2^2 = e^2 + (sigma_g - sigma)^2, and E sigma_g <= sqrt(E sigma_g^2) (Jensen), so
    E W_2^2 >= E e^2 + (sqrt(E sigma_g^2) - sigma)^2 with the exact second moments of
    :func:`~.theory.verify_theory`.  Unlike the linear-noise curve it grows without bound
    with the generations for q above :func:`~.theory.critical_error`; it is loose by the
    chains' spread of sigma_g, Var sigma_g (about a third of one fit's E W_2^2)."""
    from .theory import verify_theory

    T = verify_theory(generations, M, error, window, sigma)
    return float(T["mean_error_squared"][-1] + (math.sqrt(T["sigma_squared"][-1]) - sigma) ** 2)


def verify_budget_report(verify, unlimited: dict) -> dict:
    """The numbers the curation chapter quotes about the verify transition's top error rate.

    ``verify`` is the ``gaussian-curation`` record, ``unlimited`` :func:`verify_unlimited`'s
    output for its errors; q = the record's largest verifier error.

    * ``qtop``: that q; ``w2top``: the run's mean W_2^2 there at the last generation,
      ``w2top_se`` its standard error over chains;
    * ``w2top_unlimited`` (``_se``): the same loop with an unlimited draw budget;
    * ``w2top_lin``: the linear-noise approximation; ``w2top_bound``: the exact-moment lower
      bound (:func:`verify_w2_bound`);
    * ``lin_low_pct``: how far the linear-noise curve lies below the unlimited-budget loop,
      in percent of the latter;
    * ``budget_share_pct``: the share of the run's excess over the linear-noise curve that
      the finite budget makes, 100 (run - unlimited) / (run - linear noise);
    * ``sigma_top`` / ``sigma_top_unlimited``: mean fitted sigma there, budget and not.
    """
    from .theory import verify_theory

    S = verify.settings
    M, G, L = S["M"][0], int(verify.generations[-1]), S["verify_window"]
    q = float(max(verify.values("verifier_error")))

    def last(name):
        return float(verify.metric(name, verifier_error=q, regime="verify")[0, -1])

    w2, se = last("w2_squared_mean"), last("w2_squared_sd") / math.sqrt(S["chains"])
    free = unlimited[q]["w2_squared"]
    w2_free, se_free = float(free.mean()), float(free.std(ddof=1) / math.sqrt(free.size))
    lin = float(verify_theory(G, M, q, L)["w2_squared"][-1])
    return {"qtop": q, "w2top": w2, "w2top_se": se,
            "w2top_unlimited": w2_free, "w2top_unlimited_se": se_free,
            "w2top_lin": lin, "w2top_bound": verify_w2_bound(G, M, q, L),
            "lin_low_pct": 100 * (1 - lin / w2_free),
            "budget_share_pct": 100 * (w2 - w2_free) / (w2 - lin),
            "sigma_top": last("sigma_mean"),
            "sigma_top_unlimited": float(unlimited[q]["sigma"].mean())}
