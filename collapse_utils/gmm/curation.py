"""What the curation regimes know about a Gaussian mixture's real distribution p_0.

The core's ``verify`` and ``self-correct`` regimes (:mod:`collapse_utils.regimes`) see only
samples; this module supplies the knowledge from outside the loop that they need.  Both
know p_0, the mixture the real data were drawn from (generation 0's data-generating
distribution, :func:`~collapse_utils.gmm.data.original_mixture`), not the real sample D_0.

**Verify** (Feng et al. 2024).  A verifier that also knows the model p_n that drew the
samples accepts a sample x with probability

    a(x) = min(1, p_0(x) / (c p_n(x))),                                  (rejection sampling)

so the accepted samples have the density min(p_n, p_0 / c), normalised: exactly p_0 wherever
p_0 <= c p_n, and p_n beyond (in tails the model no longer covers, a verifier can keep only
what the generator still produces).  A model equal to p_0 loses nothing, a model that
over-produces a region is thinned there, and since the rule uses the *ratio* of densities,
not the density, it does not favour the model's high-density core (which would shrink the
components by itself).  The verifier errs at rate e: with probability e its decision is
flipped, so it accepts with probability e + (1 - 2e) a(x).  At e = 1/2 it is a coin and
``verify`` is ``replace`` in distribution (each generation trains on a random half of twice
the samples).  With the model at p_0 a share a_v = 1/c of the draws passes the perfect rule,
so the accepted samples are the mixture

    (1 - s) p_n + s p_0,   s = (1 - 2e) / c / (e + (1 - 2e) / c)               (:func:`verified_share`)

like ``keep-real`` with a share s of fresh real points.

**Self-correct** (Gillman et al. 2024).  Each sample moves a share gamma of the way along the
optimal-transport (Wasserstein-2) map from the Gaussian that matches its group's moments to
the real component of its group: samples are grouped by the component of p_0 most likely to
have produced them, group k has mean m and covariance S (biased, as EM's), and

    x -> x + gamma (T_k(x) - x),   T_k(x) = mu_k + A (x - m),
    A = S^(-1/2) (S^(1/2) Sigma_k S^(1/2))^(1/2) S^(-1/2),

the Monge map between N(m, S) and N(mu_k, Sigma_k).  gamma = 0 leaves every sample as drawn
(``replace``, bit for bit); gamma = 1 gives each group exactly the real component's mean and
covariance; in between, each axis's standard deviation becomes the convex combination
(1 - gamma) s + gamma sigma_k (for Sigma_k = I), a point on the Wasserstein geodesic.  Why a
move and not a share of samples redrawn from p_0: Gillman et al.'s practical corrector (a
physics simulator) maps each synthetic sample to a nearby plausible one and keeps it, and a
share redrawn from p_0 would only be ``keep-real`` with fresh points (which the verifier
already reduces to, above).  The map corrects each group's location and spread, not the
mixing weights: a blob whose samples are gone is not brought back.
"""
from __future__ import annotations

import numpy as np

from .mixture import as_mixture, mixture_logpdf, sample_mixture
from .theory import expected_log_std_drift


class ModelTracker:
    """Remembers the model the loop last drew samples from.

    The core's regimes hand ``accept`` only the samples; the verifier also needs p_n, the
    density of the model that drew them.  The loop's ``draw(k)`` always calls the sampler
    with that model just before ``accept`` sees the batch (also after a resume, which
    restores the model), so a sampler that records its model tells the verifier exactly
    which p_n made the batch.
    """

    def __init__(self):
        self.model = None

    def sample(self, model, m: int, rng: np.random.Generator) -> np.ndarray:
        """:func:`~collapse_utils.gmm.mixture.sample_mixture`, remembering ``model``."""
        self.model = model
        return sample_mixture(model, m, rng)


def acceptance(samples, original, model, error: float = 0.0, bound: float = 3.0) -> np.ndarray:
    """The probability e + (1 - 2e) min(1, p_0(x) / (c p_n(x))) that the verifier accepts each
    sample x (see the module docstring); ``error`` is e, ``bound`` is c."""
    log_ratio = mixture_logpdf(original, samples) - mixture_logpdf(model, samples)
    perfect = np.exp(np.minimum(log_ratio - np.log(bound), 0.0))
    return error + (1.0 - 2.0 * error) * perfect


def verifier(original, tracker: ModelTracker, error: float, bound: float = 3.0):
    """``accept(samples, rng)`` for the ``verify`` regime: a Bernoulli draw of
    :func:`acceptance` per sample, with p_n the model ``tracker`` saw last."""
    if not 0.0 <= error <= 0.5:
        raise ValueError(f"verifier_error must lie in [0, 0.5]; got {error!r}")
    if not bound >= 1.0:
        raise ValueError(f"verify_bound must be at least 1; got {bound!r}")
    original = as_mixture(original)

    def accept(samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if tracker.model is None:
            raise RuntimeError("the verifier has seen no model: draw through ModelTracker.sample")
        p = acceptance(samples, original, tracker.model, error, bound)
        return rng.random(len(samples)) < p
    return accept


def _sqrtm(S: np.ndarray, inverse: bool = False) -> np.ndarray:
    """The symmetric square root (or inverse square root) of a covariance matrix."""
    vals, vecs = np.linalg.eigh(S)
    vals = np.clip(vals, 1e-300, None)
    return (vecs * (vals ** (-0.5 if inverse else 0.5))) @ vecs.T


def transport_map(mean, cov, target_mean, target_cov):
    """(A, b) with T(x) = A x + b the optimal-transport map from N(mean, cov) to
    N(target_mean, target_cov): A = S^(-1/2) (S^(1/2) T S^(1/2))^(1/2) S^(-1/2)."""
    root, inv_root = _sqrtm(cov), _sqrtm(cov, inverse=True)
    A = inv_root @ _sqrtm(root @ target_cov @ root) @ inv_root
    A = (A + A.T) / 2
    return A, np.asarray(target_mean) - A @ np.asarray(mean)


def corrector(original):
    """``correct(samples, gamma, rng)`` for the ``self-correct`` regime (module docstring):
    each group of samples (by the real component most likely to have produced it) moves a
    share gamma along the optimal-transport map of its moments onto that component.  Groups
    of at most d samples have no covariance to map and are left as drawn."""
    original = as_mixture(original)

    def correct(samples: np.ndarray, gamma: float, rng: np.random.Generator) -> np.ndarray:
        x = np.asarray(samples, dtype=float)
        if gamma == 0.0:
            return x
        out = x.copy()
        if original.n_components == 1:
            group = np.zeros(len(x), dtype=int)
        else:
            group = np.argmax(np.stack([np.log(w) + mixture_logpdf(([1.0], [m], [S]), x)
                                        for w, m, S in zip(original.weights, original.means,
                                                           original.covariances)]), axis=0)
        for k in range(original.n_components):
            rows = group == k
            if rows.sum() <= x.shape[1]:
                continue
            pts = x[rows]
            A, b = transport_map(pts.mean(0), np.cov(pts.T, bias=True), original.means[k],
                                 original.covariances[k])
            out[rows] = pts + gamma * (pts @ A.T + b - pts)
        return out
    return correct


# ----------------------------------------------------------------------------- predictions
def verified_share(error, bound: float = 3.0):
    """The share s of a training set that passed the perfect rule, while the model is at p_0:
    s = (1 - 2e)/c / (e + (1 - 2e)/c).  1 for a perfect verifier, 0 for a coin (e = 1/2)."""
    e = np.asarray(error, dtype=float)
    good = (1.0 - 2.0 * e) / bound
    out = good / (e + good)
    return float(out) if out.ndim == 0 else out


def error_for_share(share: float, bound: float = 3.0) -> float:
    """The verifier error e at which :func:`verified_share` equals ``share``:
    e = (1 - s) / (c s + 2 (1 - s)).  Below it, more than ``share`` of each training set is
    effectively fresh real data."""
    s = float(share)
    if not 0.0 < s <= 1.0:
        raise ValueError(f"share must lie in (0, 1]; got {share!r}")
    return (1.0 - s) / (bound * s + 2.0 * (1.0 - s))


def self_corrected_std(generations, gamma: float, start: float, points: int, dim: int = 2,
                       target: float = 1.0) -> np.ndarray:
    """The typical std of the whole mixture under ``self-correct`` on one blob, generation by
    generation.

    EM keeps its data's covariance, and the correction turns each axis's std s of a batch into
    (1 - gamma) s + gamma * target; a batch of M points drawn from a model of std sigma has a
    typical std sigma * r with log r = :func:`~collapse_utils.gmm.theory.expected_log_std_drift`
    (M).  So sigma_{n+1} = (1 - gamma) r sigma_n + gamma target: a geometric approach to the
    fixed point gamma target / (1 - (1 - gamma) r), just below the target; gamma = 0 is the
    sampling-error drift of ``replace``.  (Typical values: the fluctuations of r around its
    typical value are left out.)
    """
    n = np.asarray(generations, dtype=float)
    q = (1.0 - gamma) * np.exp(expected_log_std_drift(points, dim))
    if gamma == 0.0:
        return start * q ** n
    fixed = gamma * target / (1.0 - q)
    return fixed + (start - fixed) * q ** n
