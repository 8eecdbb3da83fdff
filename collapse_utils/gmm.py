"""Gaussian mixtures refitted generation after generation (Shumailov et al. 2024, supplement).

The public protocol: the real data D_0 are 1000 points from one 2-D isotropic
unit-variance Gaussian at the origin.  Each generation fits
``sklearn.mixture.GaussianMixture(n_components=2, covariance_type="full",
tol=1e-5, max_iter=2000)`` from scratch (k-means initialisation, as sklearn does
by default) to the current 1000 points and draws 1000 new points from the fit;
2050 generations, one run.  The fit is the paper's "functional approximation"
F_theta; a two-component mixture fitted to one blob adds expressivity and
approximation errors (the split between the two components is arbitrary and
changes from fit to fit) to the sampling error of finite M.

Everything runs through :func:`collapse_utils.loop.run_generations`, so each
generation draws its randomness from ``default_rng([seed, i])``: sklearn is seeded
with an integer drawn from that generator and new points are sampled here, from
the fitted weights, means and covariances, with the same generator.  A fitted
model is kept as a :class:`Mixture` (plain arrays), so runs pickle small and
resume exactly.

Metrics (see :func:`measure_mixture`): the closed-form squared L2 distance to the
generation-0 mixture (:func:`l2_distance`), the components' standard deviations,
the mixture's overall spread and drift, and the tail coverage
(:func:`tail_coverage`).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Sequence

import numpy as np

from .experiments import Experiment, RunOutput, register
from .loop import LoopResult, run_generations
from .profiles import sizes_for
from .regimes import make_regime

#: generations whose models the public notebook draws as scatter plots
SCATTER_GENERATIONS = (0, 50, 100, 150, 200, 350, 2000)
#: the real data: one unit blob at the origin (the public notebook), or two separated blobs
VARIANTS = ("one-blob", "two-blobs")
#: the data regimes this chapter compares (names of :func:`collapse_utils.regimes.make_regime`)
GMM_REGIMES = ("replace", "keep-real", "accumulate", "accumulate-subsample")
#: radii, in standard deviations of the original blobs, of the tail regions
TAIL_RADII = (2.0, 3.0)


# ----------------------------------------------------------------------------- the model
@dataclass(frozen=True, eq=False)
class Mixture:
    """A fitted Gaussian mixture: weights (K,), means (K, d), full covariances (K, d, d).

    ``n_iter`` and ``converged`` record the EM run that produced it (None when the
    mixture was written down rather than fitted).
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    n_iter: int | None = None
    converged: bool | None = None

    @property
    def n_components(self) -> int:
        return int(self.weights.shape[0])

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])


def as_mixture(model) -> Mixture:
    """Weights, means and full covariances of ``model`` as a :class:`Mixture`.

    ``model`` is a :class:`Mixture`, a fitted ``sklearn.mixture.GaussianMixture``
    (any ``covariance_type``), or a tuple ``(weights, means, covariances)`` with
    covariances of shape (K, d, d).
    """
    if isinstance(model, Mixture):
        return model
    if hasattr(model, "weights_") and hasattr(model, "covariances_"):
        w, mu, cov = (np.asarray(a, dtype=float) for a in (model.weights_, model.means_,
                                                           model.covariances_))
        K, d = mu.shape
        kind = getattr(model, "covariance_type", "full")
        if kind == "full":
            pass
        elif kind == "tied":
            cov = np.broadcast_to(cov, (K, d, d)).copy()
        elif kind == "diag":
            cov = cov[:, :, None] * np.eye(d)
        elif kind == "spherical":
            cov = cov[:, None, None] * np.eye(d)
        else:
            raise ValueError(f"covariance_type must be one of full, tied, diag, spherical; "
                             f"got {kind!r}")
        return Mixture(w, mu, cov, getattr(model, "n_iter_", None), getattr(model, "converged_", None))
    if isinstance(model, (tuple, list)) and len(model) == 3:
        w, mu, cov = (np.asarray(a, dtype=float) for a in model)
        if mu.ndim == 1:  # one component given without its component axis
            mu = mu[None, :]
        w = np.atleast_1d(w)
        if cov.ndim == 2:
            cov = cov[None, :, :]
        K, d = mu.shape
        if w.shape != (K,) or cov.shape != (K, d, d):
            raise ValueError(f"model must be (weights (K,), means (K, d), covariances (K, d, d)); "
                             f"got shapes {w.shape}, {mu.shape}, {cov.shape}")
        return Mixture(w, mu, cov)
    raise ValueError("model must be a Mixture, a fitted sklearn GaussianMixture or a tuple "
                     f"(weights, means, covariances); got {type(model).__name__}")


def fit_mixture(data, rng: np.random.Generator, components: int = 2) -> Mixture:
    """Fit the protocol's mixture to ``data`` (n, d) from scratch, as the public code does.

    ``GaussianMixture(components, covariance_type="full", tol=1e-5, max_iter=2000)``
    with sklearn's default k-means initialisation, seeded by an integer drawn from
    ``rng`` so that the fit is a function of the generation's seed.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    gm = GaussianMixture(n_components=int(components), covariance_type="full", tol=1e-5,
                         max_iter=2000, random_state=int(rng.integers(2**31 - 1)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(np.asarray(data, dtype=float))
    return Mixture(gm.weights_.copy(), gm.means_.copy(), gm.covariances_.copy(),
                   int(gm.n_iter_), bool(gm.converged_))


def _cholesky(covariances: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of (K, d, d) covariances (a symmetric square root if not PD)."""
    try:
        return np.linalg.cholesky(covariances)
    except np.linalg.LinAlgError:
        vals, vecs = np.linalg.eigh(covariances)
        return vecs * np.sqrt(np.clip(vals, 0.0, None))[..., None, :]


def sample_mixture(model, m: int, rng: np.random.Generator) -> np.ndarray:
    """m i.i.d. points (m, d) from a mixture: a component by weight, then a Gaussian draw.

    Uses only ``rng`` (not sklearn's ``sample``), so runs are reproducible and the
    points come out in random order.
    """
    mix = as_mixture(model)
    w = np.clip(mix.weights, 0.0, None)
    comps = rng.choice(mix.n_components, size=int(m), p=w / w.sum())
    z = rng.standard_normal((int(m), mix.dim))
    chol = _cholesky(mix.covariances)
    return mix.means[comps] + np.einsum("nij,nj->ni", chol[comps], z)


# ----------------------------------------------------------------------------- distances
def _cross_overlap(a: Mixture, b: Mixture) -> float:
    """sum_ij a_w[i] b_w[j] N(a_mu[i]; b_mu[j], a_S[i] + b_S[j]) = int p_a(x) p_b(x) dx."""
    S = a.covariances[:, None] + b.covariances[None, :]          # (Ka, Kb, d, d)
    diff = a.means[:, None] - b.means[None, :]                   # (Ka, Kb, d)
    d = diff.shape[-1]
    sign, logdet = np.linalg.slogdet(S)
    maha = np.einsum("abi,abi->ab", diff, np.linalg.solve(S, diff[..., None])[..., 0])
    log_n = -0.5 * (d * math.log(2 * math.pi) + logdet + maha)
    return float(np.sum(np.outer(a.weights, b.weights) * np.exp(log_n)))


def l2_distance(a, b) -> float:
    """The squared L2 distance int (p_a(x) - p_b(x))^2 dx between two Gaussian mixtures.

    Closed form (the quantity the public notebook plots against generation): with
    int N(x; m1, S1) N(x; m2, S2) dx = N(m1; m2, S1 + S2),

        int (p - q)^2 = sum_ij w_i w_j N(m_i; m_j, S_i + S_j)
                      + sum_kl v_k v_l N(n_k; n_l, T_k + T_l)
                      - 2 sum_ik w_i v_k N(m_i; n_k, S_i + T_k),

    each sum computed at once over all component pairs.  ``a`` and ``b`` are
    :class:`Mixture` s, fitted sklearn ``GaussianMixture`` s or tuples
    (weights, means, covariances).  Zero for identical mixtures, symmetric, and
    clipped at zero against rounding.  Its unit is 1/volume: a mixture whose
    components shrink has a large int p^2, so the distance grows without bound as
    a model collapses.
    """
    a, b = as_mixture(a), as_mixture(b)
    if a.dim != b.dim:
        raise ValueError(f"b must have the dimension of a ({a.dim}); got {b.dim}")
    value = _cross_overlap(a, a) + _cross_overlap(b, b) - 2.0 * _cross_overlap(a, b)
    return max(value, 0.0)


# ----------------------------------------------------------------------------- the real data
def blob_centres(variant: str = "one-blob", separation: float = 6.0, dim: int = 2) -> np.ndarray:
    """Centres of the original unit blobs: the origin, or (+-separation/2, 0, ...)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}; got {variant!r}")
    if variant == "one-blob":
        return np.zeros((1, dim))
    if not separation > 0:
        raise ValueError(f"separation must be positive; got {separation!r}")
    c = np.zeros((2, dim))
    c[:, 0] = (-separation / 2, separation / 2)
    return c


def original_mixture(variant: str = "one-blob", separation: float = 6.0, dim: int = 2) -> Mixture:
    """The distribution the real data are drawn from: equal-weight unit isotropic blobs."""
    c = blob_centres(variant, separation, dim)
    K = c.shape[0]
    return Mixture(np.full(K, 1.0 / K), c, np.broadcast_to(np.eye(dim), (K, dim, dim)).copy())


def real_data(points: int = 1000, variant: str = "one-blob", separation: float = 6.0,
              rng: np.random.Generator | None = None, dim: int = 2) -> np.ndarray:
    """D_0: ``points`` draws from :func:`original_mixture` (two blobs: half the points each)."""
    if int(points) != points or points < 1:
        raise ValueError(f"points must be a positive integer; got {points!r}")
    rng = np.random.default_rng(0) if rng is None else rng
    c = blob_centres(variant, separation, dim)
    counts = [points // len(c) + (k < points % len(c)) for k in range(len(c))]
    x = np.concatenate([ck + rng.standard_normal((n, dim)) for ck, n in zip(c, counts)])
    return x[rng.permutation(len(x))]


# ----------------------------------------------------------------------------- tails
@lru_cache(maxsize=4)
def _normal_points(dim: int, log2_n: int = 16) -> np.ndarray:
    """2^log2_n scrambled-Sobol points mapped to N(0, I_dim): fixed quasi-random draws."""
    from scipy.stats import norm, qmc

    u = qmc.Sobol(dim, scramble=True, seed=20240724).random_base2(log2_n)
    return norm.ppf(np.clip(u, 1e-12, 1 - 1e-12))


def tail_masses(model, centres, radii: Sequence[float] = TAIL_RADII) -> np.ndarray:
    """Mass a mixture puts farther than each radius in ``radii`` from every row of ``centres``.

    Each component is integrated with the same 65,536 quasi-random standard-normal
    points (x = mean + L z), so the estimate is deterministic, smooth from one
    generation to the next, and within about 1% of a 2-D unit blob's exact 3-sd
    tail exp(-9/2).  Masses below about 1/65,536 are not resolved (a tail coverage
    is exact to about +-0.002 of the original's 3-sd tail).
    """
    mix = as_mixture(model)
    centres = np.atleast_2d(np.asarray(centres, dtype=float))
    radii = np.atleast_1d(np.asarray(radii, dtype=float))
    z = _normal_points(mix.dim)
    chol = _cholesky(mix.covariances)
    total = np.zeros(len(radii))
    for w, mu, L in zip(mix.weights, mix.means, chol):
        x = z @ L.T + mu
        dist2 = np.min([np.einsum("ni,ni->n", x - c, x - c) for c in centres], axis=0)
        total += w * np.mean(dist2[:, None] > radii[None, :] ** 2, axis=0)
    return total


def tail_mass(model, centres, radius: float) -> float:
    """:func:`tail_masses` at one radius."""
    return float(tail_masses(model, centres, [radius])[0])


def mixture_logpdf(model, x) -> np.ndarray:
    """log p(x) of a mixture at the points ``x`` (n, d)."""
    from scipy.special import logsumexp

    mix = as_mixture(model)
    x = np.atleast_2d(np.asarray(x, dtype=float))
    sign, logdet = np.linalg.slogdet(mix.covariances)
    inv = np.linalg.inv(mix.covariances)
    logs = []
    for w, mu, P, ld in zip(mix.weights, mix.means, inv, logdet):
        diff = x - mu
        maha = np.einsum("ni,ni->n", diff @ P, diff)
        logs.append(np.log(max(w, 1e-300)) - 0.5 * (mix.dim * math.log(2 * math.pi) + ld + maha))
    return logsumexp(np.array(logs), axis=0)


def tail_ratio(model, original, radius: float | Sequence[float]):
    """Model mass in the tail region T_r divided by the original's (can exceed 1).

    T_r is the set of points farther than r from every centre of the original blobs
    (see :func:`tail_coverage`); a model whose mass has moved outwards scores above 1.
    """
    orig = as_mixture(original)
    r = np.atleast_1d(np.asarray(radius, dtype=float))
    out = tail_masses(model, orig.means, r) / _original_tail(orig, tuple(r))
    return float(out[0]) if np.ndim(radius) == 0 else out


def tail_coverage(model, original, radius: float | Sequence[float]):
    """The share of the original's mass beyond ``radius`` sd that ``model`` still covers.

    With T_r the points farther than r (in the original blobs' standard deviations)
    from every centre of the original unit blobs,

        c_r = int_{T_r} min(p_model, p_0) dx / int_{T_r} p_0 dx,

    the part of the original's tail mass under which the model still puts at least
    as much density.  c_r lies in [0, 1]: 1 when the model covers the original's
    tails everywhere, 0 when it has left them; unlike the plain mass ratio
    (:func:`tail_ratio`), mass that wanders outwards to where p_0 has none earns no
    credit.  Computed as E_{x ~ p_0}[1{x in T_r} min(1, p_model(x)/p_0(x))] / p_0(T_r)
    with the same quasi-random points as :func:`tail_masses`.  For one 2-D unit blob
    p_0(T_r) = exp(-r^2/2): 0.135 at r = 2, 0.011 at r = 3.  ``radius`` may be a
    list of radii (then an array comes back).
    """
    orig, mix = as_mixture(original), as_mixture(model)
    r = np.atleast_1d(np.asarray(radius, dtype=float))
    z = _normal_points(orig.dim)
    num, den = np.zeros(len(r)), np.zeros(len(r))
    for w, mu, L in zip(orig.weights, orig.means, _cholesky(orig.covariances)):
        x = z @ L.T + mu
        dist2 = np.min([np.einsum("ni,ni->n", x - c, x - c) for c in orig.means], axis=0)
        outer = dist2 > r.min() ** 2              # evaluate densities only in the widest tail
        xt, dt = x[outer], dist2[outer]
        cover = np.minimum(1.0, np.exp(mixture_logpdf(mix, xt) - mixture_logpdf(orig, xt)))
        inside = dt[:, None] > r[None, :] ** 2
        num += w * (cover[:, None] * inside).sum(0) / len(z)
        den += w * inside.sum(0) / len(z)
    out = num / den
    return float(out[0]) if np.ndim(radius) == 0 else out


_ORIGINAL_TAILS: dict = {}


def _original_tail(orig: Mixture, radii: tuple) -> np.ndarray:
    """The original's tail masses, computed once per (original, radii)."""
    key = (orig.weights.tobytes(), orig.means.tobytes(), orig.covariances.tobytes(), radii)
    if key not in _ORIGINAL_TAILS:
        _ORIGINAL_TAILS[key] = tail_masses(orig, orig.means, radii)
    return _ORIGINAL_TAILS[key]


# ----------------------------------------------------------------------------- summaries
def component_stds(model) -> np.ndarray:
    """Each component's standard deviation sqrt(trace(S_k) / d): the RMS std over axes."""
    mix = as_mixture(model)
    return np.sqrt(np.trace(mix.covariances, axis1=1, axis2=2) / mix.dim)


def mixture_moments(model) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the whole mixture (law of total covariance)."""
    mix = as_mixture(model)
    mean = mix.weights @ mix.means
    dev = mix.means - mean
    cov = np.einsum("k,kij->ij", mix.weights, mix.covariances) + np.einsum(
        "k,ki,kj->ij", mix.weights, dev, dev)
    return mean, cov


def measure_mixture(model, first_model, original, *, train_size: int | None = None) -> dict:
    """One generation's metrics.

    l2_to_gen0        :func:`l2_distance` to generation 0's mixture
    component_std     mean over components of :func:`component_stds`
    component_stds    each component's std, largest first
    weights           the mixing weights, largest first
    weight_max        the largest mixing weight
    total_std         sqrt(trace(Cov)/d) of the whole mixture (its overall spread)
    mean_shift        distance of the mixture's mean from the original's mean
    tail_2sd, tail_3sd  :func:`tail_coverage` at radius 2 and 3 sd (share of p_0's tail covered)
    tail_ratio_2sd, tail_ratio_3sd  :func:`tail_ratio`: model tail mass / original's
    n_iter, converged the EM run of this generation's fit
    """
    mix = as_mixture(model)
    stds = component_stds(mix)
    mean, cov = mixture_moments(mix)
    omean, _ = mixture_moments(original)
    tails = tail_coverage(mix, original, [2.0, 3.0])
    ratios = tail_ratio(mix, original, [2.0, 3.0])
    out = {
        "l2_to_gen0": l2_distance(mix, first_model),
        "component_std": float(stds.mean()),
        "component_stds": sorted(stds.tolist(), reverse=True),
        "weights": sorted(mix.weights.tolist(), reverse=True),
        "weight_max": float(mix.weights.max()),
        "total_std": float(np.sqrt(np.trace(cov) / mix.dim)),
        "mean_shift": float(np.linalg.norm(mean - omean)),
        "tail_2sd": float(tails[0]),
        "tail_3sd": float(tails[1]),
        "tail_ratio_2sd": float(ratios[0]),
        "tail_ratio_3sd": float(ratios[1]),
        "n_iter": -1 if mix.n_iter is None else int(mix.n_iter),
        "converged": bool(mix.converged) if mix.converged is not None else True,
    }
    if train_size is not None:
        out["train_size"] = int(train_size)
    return out


#: what ``python -m collapse_utils run gmm --profile paper`` (seed 0) measured on the book's
#: 2-core build machine on 2026-11-23, with the machine otherwise idle (37 s wall; on the same
#: machine busy with other jobs, load average ~6, it took 157 s wall for the same 36 s of CPU).
#: The public notebook printed a component std of ~0.90 at the start and ~0.01 at the end.
PAPER_PROFILE_RUN = {
    "generations": 2050,
    "seed": 0,
    "component_std_start": 0.915503,
    "component_std_end": 0.014906,
    "l2_to_gen0_end": 224.0,
    "cpu_seconds": 36.0,
    "wall_seconds": 37.0,
}


# ----------------------------------------------------------------------------- settings and runs
#: the ``gmm`` experiment: one run of the protocol per seed (the paper row is the public notebook)
GMM_SETTINGS = {
    "smoke": {"points": 1000, "generations": 55, "components": 2, "variant": "one-blob",
              "separation": 6.0, "regime": "replace", "real_fraction": 0.1},
    "default": {"points": 1000, "generations": 400, "components": 2, "variant": "one-blob",
                "separation": 6.0, "regime": "replace", "real_fraction": 0.1},
    "paper": {"points": 1000, "generations": 2050, "components": 2, "variant": "one-blob",
              "separation": 6.0, "regime": "replace", "real_fraction": 0.1},
}
#: the ``gmm-sweep`` experiment: variants x regimes x seeds, for the bands of the chapter.
#: Fewer points than the protocol make the collapse (whose rate is about 1/M per
#: generation) visible in fewer generations, and keep "accumulate" (whose training
#: set grows by M each generation) affordable.
SWEEP_SETTINGS = {
    "smoke": {"points": 100, "generations": 20, "seeds": 3, "components": 2, "separation": 6.0,
              "variants": ["one-blob", "two-blobs"], "regimes": ["replace", "keep-real", "accumulate"],
              "real_fraction": 0.1},
    "default": {"points": 250, "generations": 150, "seeds": 4, "components": 2, "separation": 6.0,
                "variants": ["one-blob", "two-blobs"],
                "regimes": ["replace", "keep-real", "accumulate"], "real_fraction": 0.1},
    "paper": {"points": 250, "generations": 200, "seeds": 5, "components": 2, "separation": 6.0,
              "variants": ["one-blob", "two-blobs"],
              "regimes": ["replace", "keep-real", "accumulate"], "real_fraction": 0.1},
}


def check_settings(settings: dict) -> dict:
    """Raise ValueError naming the first setting out of range; return ``settings``."""
    s = settings

    def positive_int(key, minimum=1):
        v = s[key]
        if (isinstance(v, bool) or not isinstance(v, (int, float, np.integer))
                or not math.isfinite(v) or int(v) != v or v < minimum):
            raise ValueError(f"{key} must be an integer >= {minimum}; got {v!r}")

    positive_int("points", 2)
    positive_int("generations", 0)
    positive_int("components", 1)
    if "seeds" in s:
        positive_int("seeds", 1)
    if s["points"] < s["components"]:
        raise ValueError(f"points must be at least components ({s['components']}); "
                         f"got {s['points']!r}")
    if not (isinstance(s["separation"], (int, float)) and s["separation"] > 0):
        raise ValueError(f"separation must be a positive number; got {s['separation']!r}")
    if not (isinstance(s["real_fraction"], (int, float)) and 0.0 <= s["real_fraction"] <= 1.0):
        raise ValueError(f"real_fraction must lie in [0, 1]; got {s['real_fraction']!r}")
    for key, allowed in (("variant", VARIANTS), ("regime", GMM_REGIMES)):
        if key in s and s[key] not in allowed:
            raise ValueError(f"{key} must be one of {', '.join(allowed)}; got {s[key]!r}")
    for key, allowed in (("variants", VARIANTS), ("regimes", GMM_REGIMES)):
        if key in s:
            if isinstance(s[key], str) or not len(s[key]):
                raise ValueError(f"{key} must be a non-empty list drawn from "
                                 f"{', '.join(allowed)}; got {s[key]!r}")
            for v in s[key]:
                if v not in allowed:
                    raise ValueError(f"{key} must be drawn from {', '.join(allowed)}; got {v!r}")
    return s


@dataclass
class GMMRun:
    """One run of the protocol: the loop's result plus what the figures need."""

    settings: dict
    seed: int
    real: np.ndarray
    original: Mixture
    result: LoopResult
    models: dict[int, Mixture] = field(default_factory=dict)

    @property
    def generations(self) -> list[int]:
        return self.result.generations

    @property
    def metrics(self) -> dict[str, list]:
        return self.result.metrics


def run_gmm(settings: dict | None = None, *, seed: int = 0, run_dir=None, resume: bool = False,
            progress: bool = True, keep: Sequence[int] = SCATTER_GENERATIONS,
            stop_after: int | None = None, profile: str | None = None) -> GMMRun:
    """Run the protocol (or a variant) once through the core loop.

    ``settings`` defaults to the ``gmm`` row of the profile in force
    (:data:`GMM_SETTINGS`).  The models of the generations in ``keep`` that were
    run, and of the last generation, are returned in ``GMMRun.models``.
    """
    import sklearn.mixture  # noqa: F401  (load its BLAS/OpenMP before limiting their threads)
    from threadpoolctl import threadpool_limits

    s = check_settings(dict(sizes_for(GMM_SETTINGS, profile) if settings is None else settings))
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    n, comps = int(s["generations"]), int(s["components"])
    original = original_mixture(s["variant"], s["separation"])
    real = real_data(s["points"], s["variant"], s["separation"],
                     rng=np.random.default_rng([int(seed), 10**6]))
    regime = make_regime(s["regime"], real_fraction=s["real_fraction"])
    keep = sorted({int(k) for k in keep if 0 <= k <= n} | {n})

    def measure(g):
        return measure_mixture(g.model, g.first_model, original, train_size=len(g.train))

    # one BLAS/OpenMP thread: the data are small, and threads only contend here (on a busy
    # 2-core machine k-means with default threads made a fit ~10x slower).  threadpoolctl
    # limits only libraries already loaded, hence the import of sklearn.mixture above.
    with threadpool_limits(limits=1):
        result = run_generations(
            lambda data, rng: fit_mixture(data, rng, comps), sample_mixture, real, n,
            regime=regime, sizes=int(s["points"]), seed=int(seed), measure=measure,
            run_dir=run_dir, resume=resume, keep_models=keep, progress=progress,
            desc=f"gmm {s['variant']} {s['regime']} seed {seed}", stop_after=stop_after)
    return GMMRun(s, int(seed), real, original, result, dict(result.models))


def run_sweep(settings: dict | None = None, *, seed: int = 0, run_dir=None, resume: bool = False,
              progress: bool = True, profile: str | None = None) -> dict:
    """Every variant x regime of ``settings`` over ``seeds`` seeds (seed, seed+1, ...).

    Returns {(variant, regime): {metric: array (seeds, generations + 1)}} for the
    scalar metrics.  ``settings`` defaults to :data:`SWEEP_SETTINGS` at the profile.
    """
    s = check_settings(dict(sizes_for(SWEEP_SETTINGS, profile) if settings is None else settings))
    out = {}
    for variant in s["variants"]:
        for regime in s["regimes"]:
            runs = []
            for k in range(int(s["seeds"])):
                one = {"points": s["points"], "generations": s["generations"],
                       "components": s["components"], "variant": variant,
                       "separation": s["separation"], "regime": regime,
                       "real_fraction": s["real_fraction"]}
                sub = None if run_dir is None else f"{run_dir}/{variant}-{regime}-seed{seed + k}"
                runs.append(run_gmm(one, seed=seed + k, run_dir=sub, resume=resume,
                                    progress=progress, keep=()))
            out[(variant, regime)] = {
                key: np.array([r.metrics[key] for r in runs], dtype=float)
                for key in SCALAR_METRICS}
    return out


#: the per-generation metrics that are one number (bands are drawn over seeds of these)
SCALAR_METRICS = ("l2_to_gen0", "component_std", "total_std", "mean_shift", "weight_max", "tail_2sd",
                  "tail_3sd", "tail_ratio_2sd", "tail_ratio_3sd", "n_iter", "train_size")


def _run_experiment(settings: dict, *, seed: int = 0, run_dir=None, resume: bool = False,
                    progress: bool = True) -> RunOutput:
    run = run_gmm(settings, seed=seed, run_dir=run_dir, resume=resume, progress=progress)
    return RunOutput(list(run.generations), run.metrics, None)


def _run_sweep_experiment(settings: dict, *, seed: int = 0, run_dir=None, resume: bool = False,
                          progress: bool = True) -> RunOutput:
    res = run_sweep(settings, seed=seed, run_dir=run_dir, resume=resume, progress=progress)
    metrics = {}
    for (variant, regime), values in res.items():
        for key, arr in values.items():
            # one value per generation: the list over seeds
            metrics[f"{key}_{variant}_{regime}"] = arr.T.tolist()
    return RunOutput(list(range(int(settings["generations"]) + 1)), metrics, None)


register(Experiment(
    name="gmm",
    summary="2-component Gaussian mixture refitted on its own samples (the public GMM protocol)",
    settings=GMM_SETTINGS,
    run=_run_experiment,
    choices={"variant": VARIANTS, "regime": GMM_REGIMES},
    chapter="book/gmm.ipynb",
))

register(Experiment(
    name="gmm-sweep",
    summary="Gaussian mixtures: one and two blobs x replace / keep 10% real / accumulate, over seeds",
    settings=SWEEP_SETTINGS,
    run=_run_sweep_experiment,
    chapter="book/gmm.ipynb",
))


# ----------------------------------------------------------------------------- figures
def draw_mixture(ax, model, *, color="C0", n_sd: float = 2.0, **kw) -> None:
    """Draw each component's ``n_sd`` standard-deviation ellipse, line width by weight."""
    from matplotlib.patches import Ellipse

    mix = as_mixture(model)
    for w, mu, S in zip(mix.weights, mix.means, mix.covariances):
        vals, vecs = np.linalg.eigh(S)
        angle = math.degrees(math.atan2(vecs[1, -1], vecs[0, -1]))
        width, height = 2 * n_sd * np.sqrt(np.clip(vals[::-1], 0, None))
        ax.add_patch(Ellipse(mu, width, height, angle=angle, fill=False, edgecolor=color,
                             linewidth=0.6 + 2.4 * float(w), **kw))


def plot_scatter_grid(run: GMMRun, generations: Sequence[int] | None = None, *,
                      points: int = 1000, lim: float | None = None, profile: str | None = None):
    """Real data and samples of the kept generations' mixtures, on the same axes.

    Each panel shows ``points`` fresh draws from that generation's mixture (a fixed
    seed per panel) and the components' 2-sd ellipses.
    """
    import matplotlib.pyplot as plt

    from .plotting import REGIME_COLORS, generation_colors, profile_note

    gens = [g for g in (generations or sorted(run.models)) if g in run.models]
    if lim is None:  # wide enough for the real data
        lim = float(np.ceil(np.abs(run.real).max() + 0.5))
    last = max(run.generations)
    colors = generation_colors(gens, last)
    ncol = 4
    nrow = math.ceil((len(gens) + 1) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.5 * ncol, 2.5 * nrow), sharex=True,
                             sharey=True, squeeze=False)
    panels = [("real data $D_0$", run.real, None, REGIME_COLORS["real"])]
    for g, c in zip(gens, colors):
        x = sample_mixture(run.models[g], points, np.random.default_rng([run.seed, g, 7]))
        panels.append((f"generation {g}", x, run.models[g], c))
    for ax, (title, x, model, color) in zip(axes.flat, panels):
        ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.35, color=color, linewidths=0)
        if model is not None:
            draw_mixture(ax, model, color="black")
        ax.set_title(title)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_axis_off()
    fig.tight_layout()
    if profile:
        profile_note(fig, profile)
    return fig


# ----------------------------------------------------------------------------- a sampling-error reference
def expected_log_std_drift(n_points: int, dim: int = 2) -> float:
    """Mean change per generation of log(geometric-mean std) of ONE Gaussian refitted by ML.

    With S the ML covariance of N points from N(mu, Sigma), N S ~ Wishart(Sigma, N - 1),
    so log det S - log det Sigma = sum_{j=1..d} log(chi2_{N-j} / N) and

        E[log det(S)^(1/2d)] - log det(Sigma)^(1/2d) = (1/2d) sum_j [psi((N-j)/2) + log(2/N)]

    (about -(d + 3) / (4N)).  The drift adds up over generations: the sampling
    error alone shrinks the typical std geometrically (Shumailov et al. 2024,
    Theorem 3.1 for d = 1).  A component of a mixture fitted to M points sees
    between M/K and M of them, which brackets the mixture's collapse rate.
    """
    from scipy.special import digamma

    N = int(n_points)
    if N <= dim:
        raise ValueError(f"n_points must exceed dim ({dim}); got {n_points!r}")
    j = np.arange(1, dim + 1)
    return float(np.sum(digamma((N - j) / 2) + np.log(2.0 / N)) / (2 * dim))


def reference_std(generations, start: float, n_points: int, dim: int = 2) -> np.ndarray:
    """start * exp(n * :func:`expected_log_std_drift`): the typical std after n refits."""
    return start * np.exp(np.asarray(generations, dtype=float) * expected_log_std_drift(n_points, dim))


# ----------------------------------------------------------------------------- more figures
def _log_axis(ax) -> None:
    """A log y axis with plain-number labels, denser when the data span fewer decades."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    decades = math.log10(max(hi, 1e-300) / max(lo, 1e-300))
    subs = (1.0,) if decades > 3 else (1.0, 2.0, 5.0) if decades > 1 else (1.0, 2.0, 3.0, 5.0, 7.0)
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def plot_protocol(run: GMMRun, *, profile: str | None = None):
    """Three panels against generation: L2 distance to generation 0 (log scale), component
    std (log scale), and the tails beside the spread of the whole mixture.

    The std panel draws each component (thin), their mean (thick), and the
    sampling-error references of one Gaussian refitted on M and on M/K points
    (:func:`reference_std`).
    """
    import matplotlib.pyplot as plt

    from .plotting import profile_note, theory

    gens = np.asarray(run.generations)
    m = run.metrics
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(13.5, 3.8))
    ax1.plot(gens[1:], np.asarray(m["l2_to_gen0"])[1:], color="C0")
    _log_axis(ax1)
    ax1.set_xlabel("generation")
    ax1.set_ylabel(r"$\int (p_n - p_0)^2\,dx$")
    ax1.set_title("L2 distance to the generation-0 mixture")
    stds = np.asarray(m["component_stds"], dtype=float)
    for k in range(stds.shape[1]):
        ax2.plot(gens, stds[:, k], color="0.6", linewidth=0.7,
                 label="each component (sorted)" if k == 0 else None)
    ax2.plot(gens, m["component_std"], color="C3", label="mean over components")
    M, K, s0 = run.settings["points"], run.settings["components"], m["component_std"][0]
    theory(ax2, gens, reference_std(gens, s0, M), label=f"one Gaussian, N = M = {M}")
    theory(ax2, gens, reference_std(gens, s0, max(M // K, 3)),
           label=f"one Gaussian, N = M/K = {M // K}", linestyle=":")
    _log_axis(ax2)
    ax2.set_xlabel("generation")
    ax2.set_ylabel("component std")
    ax2.set_title("Component standard deviation")
    ax2.legend(loc="lower left")
    ax3.plot(gens, m["total_std"], color="black", label="std of the whole mixture")
    ax3.plot(gens, m["tail_2sd"], color="C1", label="tail coverage beyond 2 sd")
    ax3.plot(gens, m["tail_3sd"], color="C4", label="tail coverage beyond 3 sd")
    ax3.axhline(1.0, color="0.5", linewidth=0.8)
    ax3.set_xlabel("generation")
    ax3.set_ylabel("relative to the original")
    ax3.set_title("Tails and spread")
    ax3.legend(loc="best")
    fig.tight_layout()
    if profile:
        profile_note(fig, profile)
    return fig


METRIC_LABELS = {
    "component_std": "component std",
    "l2_to_gen0": r"$\int (p_n - p_0)^2$",
    "total_std": "std of the whole mixture",
    "mean_shift": "distance of the mean from the origin",
    "weight_max": "largest mixing weight",
    "tail_2sd": "tail coverage beyond 2 sd",
    "tail_3sd": "tail coverage beyond 3 sd",
    "tail_ratio_2sd": "tail mass ratio beyond 2 sd",
    "tail_ratio_3sd": "tail mass ratio beyond 3 sd",
}


def plot_sweep(sweep: dict, variant: str, metrics: Sequence[str] = ("component_std", "l2_to_gen0"),
               *, log: Sequence[str] = ("l2_to_gen0",), reference: dict | None = None,
               profile: str | None = None, title: str | None = None):
    """One panel per metric: for each regime the median over seeds and its 10-90% band.

    ``reference`` maps a metric to a list of (x, y, label) theory curves on its panel.
    """
    import matplotlib.pyplot as plt

    from .plotting import REGIME_COLORS, band, profile_note, theory

    regimes = [r for (v, r) in sweep if v == variant]
    if not regimes:
        raise ValueError(f"variant must be one of {sorted({v for v, _ in sweep})}; got {variant!r}")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 3.6), squeeze=False)
    for ax, key in zip(axes[0], metrics):
        for r in regimes:
            data = sweep[(variant, r)][key]
            x = np.arange(data.shape[1])
            if key in log and np.all(data[:, 0] <= 0):  # e.g. the distance of generation 0
                x, data = x[1:], data[:, 1:]
            band(ax, x, data, label=r, color=REGIME_COLORS.get(r))
        for style, (xr, yr, lab) in zip(("--", ":", "-."), (reference or {}).get(key, [])):
            theory(ax, xr, yr, label=lab, linestyle=style)
        if key in log:
            _log_axis(ax)
        ax.set_xlabel("generation")
        ax.set_ylabel(METRIC_LABELS.get(key, key))
        ax.legend()
    n_seeds = next(iter(sweep.values()))["l2_to_gen0"].shape[0]
    fig.suptitle(title or f"{variant}: median over {n_seeds} seeds, 10-90% band", fontsize=11)
    fig.tight_layout()
    if profile:
        profile_note(fig, profile)
    return fig


def sweep_summary(sweep: dict, metric: str, generation: int = -1) -> dict:
    """{(variant, regime): median over seeds of ``metric`` at ``generation``}."""
    return {k: float(np.median(v[metric][:, generation])) for k, v in sweep.items()}
