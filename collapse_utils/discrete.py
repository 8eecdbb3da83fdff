"""Discrete distributions refitted exactly (Shumailov et al. 2024, Sec. 3.1).

A model of a K-state distribution that fits *exactly*, F(p) = p, has no
functional error at all: each generation draws M samples from the current
distribution p_n and the next distribution is their empirical frequencies,

    counts_{n+1} ~ Multinomial(M, p_n),      p_{n+1} = counts_{n+1} / M.

Only the statistical (sampling) error acts, and it is enough:

* a state of probability q appears in the next sample with probability
  1 - (1 - q)^M (:func:`one_step_survival`), so states with q <= 1/M are soon lost;
* E[p_{n+1} | p_n] = p_n: the frequencies are a martingale, so the chain is
  absorbed in a delta with probability 1, at state i with probability p_0(i)
  (:func:`fixation_probability`);
* the count of one state against the rest is a two-state Wright-Fisher chain, so
  its survival curve and the two-state absorption time are exact
  (:func:`survival_probability`, :func:`absorption_time_pmf`,
  :func:`mean_absorption_time_exact`), and Kimura's diffusion approximation
  E[T] ~ -2M [p ln p + (1-p) ln(1-p)] (Kimura 1955; Ewens 2004) gives
  the mean time scale (:func:`mean_absorption_time_diffusion`);
* the Gini-Simpson diversity 1 - sum_i p_n(i)^2 has an exact mean in every regime
  (:func:`expected_gini_simpson`); under ``replace`` it is (1 - sum p_0^2)(1 - 1/M)^n.

One engine.  :func:`simulate`, :func:`simulate_absorption` and the CLI experiment
``discrete`` all run the shared core loop
(:func:`collapse_utils.loop.run_generations`) with every chain in one array of
counts (chains, K) and one multinomial draw over all chains per generation; the
experiment adds the loop's atomic per-generation cache and resume.
"""
from __future__ import annotations

import io
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy.special import xlogy

from .experiments import Experiment, RunOutput, register
from .loop import atomic_write_bytes, run_generations
from .regimes import Regime, Replace, split_counts

#: the data regimes of this chapter (same meaning as in :mod:`collapse_utils.regimes`)
REGIMES = ("replace", "keep-real", "accumulate")

_SUM_TOL = 1e-8


# ============================================================================ validation
def _check_int(name: str, value, minimum: int) -> int:
    """``value`` as an int >= ``minimum``, or ValueError naming ``name``."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok and isinstance(value, float) and value.is_integer():
        ok = True
    if not ok or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


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


def _check_regime(regime: str, real_fraction: float) -> tuple[str, float]:
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {', '.join(REGIMES)}; got {regime!r}")
    f = float(real_fraction)
    if not (0.0 <= f <= 1.0):
        raise ValueError(f"real_fraction must lie in [0, 1]; got {real_fraction!r}")
    return regime, f


def _check_seed(seed) -> int:
    if seed is None:
        return int(np.random.SeedSequence().entropy)
    return _check_int("seed", seed, 0)


# ============================================================================ p0 helpers
def zipf(K: int, exponent: float = 1.0) -> np.ndarray:
    """The Zipf distribution p(k) = k^(-exponent) / sum_j j^(-exponent), k = 1..K.

    ``exponent = 0`` is uniform; larger exponents put less mass in the tail.
    """
    K = _check_int("K", K, 1)
    if not (isinstance(exponent, numbers.Real) and math.isfinite(exponent) and exponent >= 0):
        raise ValueError(f"exponent must be a finite number >= 0; got {exponent!r}")
    w = np.arange(1, K + 1, dtype=float) ** (-float(exponent))
    return w / w.sum()


# ============================================================================ theory
def one_step_survival(q, M: int):
    """P(a state of probability q appears among M samples) = 1 - (1 - q)^M."""
    M = _check_int("M", M, 1)
    out = 1.0 - (1.0 - np.asarray(q, dtype=float)) ** M
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

    M = _check_int("M", M, 1)
    j = np.arange(M + 1)
    return binom.pmf(j[None, :], M, j[:, None] / M)


def _lost_and_fixed(q, M: int, generations: int) -> tuple[np.ndarray, np.ndarray]:
    """P(count = 0) and P(count = M) at generations 0..n, each of shape (len(q), generations + 1).

    Generation 0 holds frequency q exactly (not necessarily a multiple of 1/M), so
    generation 1 is Binom(M, q); later generations follow :func:`wright_fisher_matrix`.
    """
    from scipy.stats import binom

    q = np.atleast_1d(np.asarray(q, dtype=float))
    T = wright_fisher_matrix(M)
    lost = np.zeros((q.size, generations + 1))
    fixed = np.zeros((q.size, generations + 1))
    lost[:, 0], fixed[:, 0] = (q == 0), (q == 1)
    if generations >= 1:
        dist = binom.pmf(np.arange(M + 1)[None, :], M, q[:, None])
        for n in range(1, generations + 1):
            if n > 1:
                dist = dist @ T
            lost[:, n], fixed[:, n] = dist[:, 0], dist[:, M]
    return lost, fixed


def survival_probability(q, M: int, generations: int) -> np.ndarray:
    """Exact P(a state of initial probability q is still present at generation n), ``replace``.

    Shape (len(q), generations + 1) (squeezed to (generations + 1,) for scalar q);
    generation 0 is 1 where q > 0, generation 1 is :func:`one_step_survival`, and
    the curve falls to the fixation probability q as n grows.  Exact for any K,
    because one state against the rest is a two-state Wright-Fisher chain.
    Cost O(generations M^2) per state: fine for M up to a few hundred.
    """
    M = _check_int("M", M, 1)
    generations = _check_int("generations", generations, 0)
    out = 1.0 - _lost_and_fixed(q, M, generations)[0]
    return out[0] if np.ndim(q) == 0 else out


def expected_support(p0, M: int, generations: int) -> np.ndarray:
    """E[number of states present at generation n] = sum_i survival(p0(i), n), ``replace``."""
    p0 = check_distribution(p0)
    return survival_probability(p0, M, generations).sum(axis=0)


def expected_gini_simpson(p0, M: int, generations: int, regime: str = "replace",
                          real_fraction: float = 0.1) -> np.ndarray:
    """Exact E[1 - sum_i p_n(i)^2] for n = 0..generations in each regime.

    With s = sum p0^2, x_n = E[sum p_n^2], y_n = E[sum_i p_n(i) p0(i)]:

    * ``replace``:    1 - x_n = (1 - s)(1 - 1/M)^n (the heterozygosity of Wright-Fisher);
    * ``keep-real``:  a model and c = M - a real samples (split as in :func:`regimes.keep_real`),
      x_{n+1} = [(a^2 - a) x_n + 2ac y_n + (c^2 - c) s + M] / M^2,
      y_{n+1} = (a y_n + c s) / M;
    * ``accumulate``: the pool holds M(n+1) samples at generation n, so
      1 - x_{n+1} = (1 - x_n)(1 - 1 / ((n+2)^2 M)), bounded below by
      (1 - s)(1 - (pi^2/6 - 1)/M).
    """
    p0 = check_distribution(p0)
    M = _check_int("M", M, 1)
    generations = _check_int("generations", generations, 0)
    regime, f = _check_regime(regime, real_fraction)
    s = float(np.sum(p0**2))
    n = np.arange(generations + 1)
    if regime == "replace":
        return (1 - s) * (1 - 1 / M) ** n
    out = np.empty(generations + 1)
    out[0] = 1 - s
    if regime == "accumulate":
        out[1:] = (1 - s) * np.cumprod(1 - 1 / ((n[1:] + 1) ** 2 * M))
        return out
    a, _, c = split_counts(M, [1 - f, 0.0, f])
    x, y = s, s
    for k in range(1, generations + 1):
        x, y = ((a * a - a) * x + 2 * a * c * y + (c * c - c) * s + M) / M**2, (a * y + c * s) / M
        out[k] = 1 - x
    return out


def keep_real_stationary_gini_simpson(p0, M: int, real_fraction: float) -> float:
    """The fixed point of :func:`expected_gini_simpson` under ``keep-real``:

    (1 - sum p0^2) (1 - M / (M^2 - a^2 + a)), with a the model samples per generation.
    """
    p0 = check_distribution(p0)
    M = _check_int("M", M, 1)
    _, f = _check_regime("keep-real", real_fraction)
    a = split_counts(M, [1 - f, 0.0, f])[0]
    if a == M:  # no real data: replace, whose diversity falls to 0
        return 0.0
    return float((1 - np.sum(p0**2)) * (1 - M / (M * M - a * a + a)))


def mean_absorption_time_diffusion(p, M: int) -> float:
    """Kimura's diffusion approximation to the mean number of generations until one state is left.

    Two states (``p`` a number, the frequency of one of them):
    E[T] ~ -2M [p ln p + (1 - p) ln(1 - p)]  (Kimura 1955; Ewens 2004).
    K states (``p`` a distribution): E[T] ~ -2M sum_i (1 - p_i) ln(1 - p_i), which
    reduces to the two-state formula for K = 2 (Ewens 2004).
    M is the number of samples per generation (the haploid population size).
    """
    M = _check_int("M", M, 1)
    if np.ndim(p) == 0:
        p = float(p)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must lie in [0, 1]; got {p!r}")
        return float(-2 * M * (xlogy(p, p) + xlogy(1 - p, 1 - p)))
    p = check_distribution(p, "p")
    return float(-2 * M * np.sum(xlogy(1 - p, 1 - p)))


def mean_absorption_time_exact(p: float, M: int) -> float:
    """Exact mean absorption time of the two-state chain started at frequency p.

    Solves (I - Q) t = 1 on the transient counts 1..M-1 of :func:`wright_fisher_matrix`,
    then E[T] = 1 + sum_k Binom(M, p)(k) t_k for 0 < p < 1 (0 at p in {0, 1}).
    """
    from scipy.stats import binom

    M = _check_int("M", M, 1)
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must lie in [0, 1]; got {p!r}")
    if p in (0.0, 1.0):
        return 0.0
    if M == 1:
        return 1.0
    T = wright_fisher_matrix(M)
    Q = T[1:M, 1:M]
    t = np.linalg.solve(np.eye(M - 1) - Q, np.ones(M - 1))
    return float(1.0 + binom.pmf(np.arange(1, M), M, p) @ t)


def absorption_time_pmf(p: float, M: int, generations: int) -> np.ndarray:
    """Exact P(T = n), n = 0..generations, for the two-state chain started at frequency p."""
    M = _check_int("M", M, 1)
    generations = _check_int("generations", generations, 0)
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must lie in [0, 1]; got {p!r}")
    lost, fixed = _lost_and_fixed(p, M, generations)
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


# ============================================================================ per-chain measures
def support_size(P) -> np.ndarray:
    """Number of states with positive probability (along the last axis)."""
    return np.count_nonzero(np.asarray(P) > 0, axis=-1)


def entropy(P) -> np.ndarray:
    """Shannon entropy -sum p ln p in nats (along the last axis; 0 ln 0 = 0)."""
    return -xlogy(P, P).sum(axis=-1)


def gini_simpson(P) -> np.ndarray:
    """Gini-Simpson diversity 1 - sum p^2: the chance two samples differ (last axis)."""
    P = np.asarray(P, dtype=float)
    return 1.0 - np.einsum("...k,...k->...", P, P)


def absorption_time(P) -> np.ndarray:
    """First generation at which each chain has a single state left.

    ``P`` has shape (chains, generations + 1, K) as returned by :func:`simulate`;
    the result has shape (chains,), float, NaN for chains not yet absorbed.
    """
    single = support_size(P) == 1
    t = np.argmax(single, axis=-1).astype(float)
    t[~single.any(axis=-1)] = np.nan
    return t


# ============================================================================ the model in the core loop
def fit_frequencies(counts, rng=None) -> np.ndarray:
    """The exact fit F(p) = p: each chain's empirical frequencies, counts / row sum.

    ``counts`` has shape (chains, K); the result is a new float64 array.
    """
    P = np.array(counts, dtype=float)
    P /= (P @ np.ones(P.shape[1]))[:, None]  # row sums by a matrix-vector product (fast)
    return P


def sample_counts(P, m: int, rng: np.random.Generator) -> np.ndarray:
    """Counts of m samples from every chain's distribution: one multinomial draw.

    ``P`` has shape (chains, K); the result is an int64 array of the same shape.
    Chains already absorbed in a delta are deterministic (all m samples at that
    state), so the single ``rng.multinomial`` call covers only the chains with
    two or more states left.
    """
    P = np.asarray(P, dtype=float)
    absorbed = ((P == 1.0) @ np.ones(P.shape[1])) > 0  # a matrix-vector product: fast
    if not absorbed.any():
        return rng.multinomial(int(m), P)
    counts = (P * m).astype(np.int64)  # exact for absorbed rows (entries 0 or 1)
    active = np.flatnonzero(~absorbed)
    if active.size:
        counts[active] = rng.multinomial(int(m), P.take(active, axis=0))
    return counts


def _compact_counts(P, m: int, rng: np.random.Generator) -> np.ndarray:
    """:func:`sample_counts` stored in the smallest unsigned type that holds m (small caches)."""
    return sample_counts(P, m, rng).astype(np.min_scalar_type(int(m)))


@dataclass(frozen=True, repr=False)
class KeepRealCounts(Regime):
    """``keep-real`` on counts: :func:`collapse_utils.regimes.keep_real` semantics.

    Each generation trains on a = (1 - fraction) M fresh model samples and
    c = fraction M real samples, with the same rounding (:func:`regimes.split_counts`)
    as :class:`regimes.Mix`.  The real data here is the population p0 itself, so
    drawing real samples without replacement is a fresh Multinomial(c, p0) draw
    (the paper's gamma_i p_0 term).
    """

    fraction: float = 0.1
    name = "keep-real"

    def next_data(self, draw, m, *, previous, real, pool, rng, axis=1):
        a, _, c = split_counts(m, [1.0 - self.fraction, 0.0, self.fraction])
        new = draw(a)
        fresh = rng.multinomial(c, fit_frequencies(real)) if c > 0 else 0
        return new + fresh, new

    def describe(self) -> str:
        return f"keep-real(fraction={self.fraction:g})"


class AccumulateCounts(Regime):
    """``accumulate`` on counts: :class:`collapse_utils.regimes.Accumulate` semantics.

    The training set is the real data and every generation's samples; as counts
    that is the previous training set plus the new counts, so the pool is one
    (chains, K) array instead of a growing list (same distribution, O(1) memory).
    The real data weighs M samples at exactly the frequencies p0.
    """

    name = "accumulate"
    uses_previous = True

    def next_data(self, draw, m, *, previous, real, pool, rng, axis=1):
        new = draw(m)
        return previous + new, new


def count_regime(regime: str = "replace", real_fraction: float = 0.1) -> Regime:
    """The regime object for counts arrays: one of :data:`REGIMES`."""
    regime, f = _check_regime(regime, real_fraction)
    if regime == "replace":
        return Replace()  # the core's Replace works on counts as it is
    if regime == "keep-real":
        return KeepRealCounts(f)
    return AccumulateCounts()


def _run(p0, M, generations, chains, seed, regime, real_fraction, measure, *,
         run_dir=None, resume=False, progress=False, desc=None, stop_after=None,
         save_model=None, load_model=None, sample=sample_counts):
    """Validate, then run the core loop on a (chains, K) counts array (the one engine)."""
    p0 = check_distribution(p0)
    M = _check_int("M", M, 1)
    generations = _check_int("generations", generations, 0)
    chains = _check_int("chains", chains, 1)
    seed = _check_seed(seed)
    reg = count_regime(regime, real_fraction)
    # the real data: the population p0, weighing M samples, identical in every chain
    real = np.broadcast_to(M * p0, (chains, p0.size))
    return run_generations(fit_frequencies, sample, real, generations, regime=reg,
                           sizes=M, seed=seed, measure=measure, axis=1, run_dir=run_dir,
                           resume=resume, progress=progress, desc=desc, stop_after=stop_after,
                           save_model=save_model, load_model=load_model)


def simulate(p0, M: int, generations: int, chains: int = 1, seed: int | None = None,
             regime: str = "replace", real_fraction: float = 0.1) -> np.ndarray:
    """Each chain's distribution at every generation: shape (chains, generations + 1, K).

    Index 0 is ``p0``; generation n + 1 is the empirical frequencies of M samples
    from generation n (``regime="replace"``, the paper's setting).  ``keep-real``
    mixes in ``real_fraction`` of fresh real samples each generation and
    ``accumulate`` trains on all data so far (real data weighing M samples); both
    have the semantics of :mod:`collapse_utils.regimes`.  All chains are advanced
    together by one multinomial draw per generation.

    Memory: the result holds chains x (generations + 1) x K float64 numbers
    (10^4 x 1001 x 10 is 0.8 GB); :func:`simulate_absorption` keeps only summaries.
    The result is a view of a generation-major array (each generation is written
    in one contiguous block), so ``P[:, n]`` is contiguous and ``P[c]`` is strided.
    """
    p0 = check_distribution(p0)
    _check_int("M", M, 1)
    generations = _check_int("generations", generations, 0)
    chains = _check_int("chains", chains, 1)
    _check_regime(regime, real_fraction)
    seed = _check_seed(seed)  # all checked before the (possibly large) result is allocated
    out = np.empty((generations + 1, chains, p0.size))

    def keep(g):
        out[g.index] = g.model
        return {}

    _run(p0, M, generations, chains, seed, regime, real_fraction, keep)
    return out.transpose(1, 0, 2)


class Absorption(NamedTuple):
    """Result of :func:`simulate_absorption`."""

    times: np.ndarray   # (chains,) first generation with one state left; NaN if none yet
    final: np.ndarray   # (chains, K) distribution at the last generation


def simulate_absorption(p0, M: int, generations: int, chains: int = 1,
                        seed: int | None = None) -> Absorption:
    """Absorption times and final distributions of :func:`simulate` (``replace``), without
    storing the trajectories: memory O(chains K) however many generations.

    Same engine and seed as :func:`simulate`, so the times equal
    ``absorption_time(simulate(...))``.
    """
    chains = _check_int("chains", chains, 1)
    times = np.full(chains, np.nan)
    final = [None]

    def track(g):
        newly = np.isnan(times) & (support_size(g.model) == 1)
        times[newly] = g.index
        final[0] = g.model
        return {}

    _run(p0, M, generations, chains, seed, "replace", 0.0, track)
    return Absorption(times, np.asarray(final[0]))


# ============================================================================ CLI experiment
#: settings of the ``discrete`` experiment per profile (the paper runs no discrete experiment;
#: ``paper`` only adds chains and generations)
SETTINGS = {
    "smoke": {"K": 10, "zipf_exponent": 1.0, "M": 100, "generations": 200, "chains": 500,
              "regime": "replace", "real_fraction": 0.1},
    "default": {"K": 10, "zipf_exponent": 1.0, "M": 100, "generations": 800, "chains": 2000,
                "regime": "replace", "real_fraction": 0.1},
    "paper": {"K": 10, "zipf_exponent": 1.0, "M": 100, "generations": 1500, "chains": 5000,
              "regime": "replace", "real_fraction": 0.1},
}


def summary_metrics(P) -> dict:
    """Metrics of one generation over chains; ``P`` has shape (chains, K).

    support_mean, entropy_mean (nats), gini_simpson_mean, absorbed_fraction (one
    state left), survival[i] (fraction of chains where state i is present),
    p_mean[i] (mean probability of state i: p0(i) in expectation, a martingale),
    fixed_fraction[i] (fraction of chains absorbed at state i).
    """
    P = np.asarray(P, dtype=float)
    support = support_size(P)
    absorbed = support == 1
    return {
        "support_mean": float(support.mean()),
        "entropy_mean": float(entropy(P).mean()),
        "gini_simpson_mean": float(gini_simpson(P).mean()),
        "absorbed_fraction": float(absorbed.mean()),
        "survival": (P > 0).mean(axis=0).tolist(),
        "p_mean": P.mean(axis=0).tolist(),
        "fixed_fraction": (absorbed[:, None] & (P == 1.0)).mean(axis=0).tolist(),
    }


def _save_model(P, path) -> None:
    """Write a generation's frequencies compressed and atomically (absorbed chains compress well)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, p=P)
    atomic_write_bytes(Path(f"{path}.npz"), buffer.getvalue())


def _load_model(path) -> np.ndarray:
    with np.load(f"{path}.npz") as f:
        return f["p"]


def run_discrete(settings: dict, *, seed: int = 0, run_dir=None, resume: bool = False,
                 progress: bool = True, stop_after: int | None = None) -> RunOutput:
    """The ``discrete`` experiment: Zipf(K, zipf_exponent) refitted exactly, many chains.

    Runs the same engine as :func:`simulate` through the core loop, saving each
    generation under ``run_dir`` (models compressed) so that ``resume`` continues exactly.
    """
    p0 = zipf(settings["K"], settings["zipf_exponent"])
    result = _run(p0, settings["M"], settings["generations"], settings["chains"], seed,
                  settings["regime"], settings["real_fraction"], lambda g: summary_metrics(g.model),
                  run_dir=run_dir, resume=resume, progress=progress,
                  desc=f"discrete {settings['regime']}", stop_after=stop_after,
                  save_model=_save_model if run_dir is not None else None,
                  load_model=_load_model if run_dir is not None else None,
                  sample=_compact_counts)
    return RunOutput(result.generations, result.metrics, None)


register(Experiment(
    name="discrete",
    summary="K-state distribution refitted exactly (empirical frequencies), many chains",
    settings=SETTINGS,
    run=run_discrete,
    choices={"regime": REGIMES},
    chapter="book/discrete.ipynb",
))


# ============================================================================ chapter sizes and figures
#: sizes of the chapter's simulations per profile
CHAPTER_SIZES = {
    "smoke": {"chains": 300, "generations": 600, "fixation_chains": 10_000,
              "time_chains": 400, "time_Ms": [10, 20, 50, 100], "ktime_chains": 1500,
              "regime_chains": 200, "regime_generations": 300, "explorer_chains": 100},
    "default": {"chains": 2000, "generations": 1000, "fixation_chains": 40_000,
                "time_chains": 2000, "time_Ms": [10, 20, 50, 100, 200, 400], "ktime_chains": 5000,
                "regime_chains": 1000, "regime_generations": 600, "explorer_chains": 300},
    "paper": {"chains": 3000, "generations": 1200, "fixation_chains": 100_000,
              "time_chains": 5000, "time_Ms": [10, 20, 50, 100, 200, 400], "ktime_chains": 10_000,
              "regime_chains": 2000, "regime_generations": 1000, "explorer_chains": 500},
}


def _plt():
    from . import plotting  # noqa: F401  (applies the book's style)
    import matplotlib.pyplot as plt

    return plt


def interval_band(ax, x, successes, trials, *, label=None, color=None, level=0.95, **kw):
    """A proportion over chains (line) with its Clopper-Pearson band."""
    successes = np.asarray(successes, dtype=float)
    lo, hi = binomial_interval(successes, trials, level)
    (line,) = ax.plot(x, successes / trials, label=label, color=color, **kw)
    ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.25, linewidth=0)
    return line


def plot_survival(ax, P, p0, M: int, states, legend_kw: dict | None = None) -> None:
    """Per-state survival against generation: simulation (95% band) and exact theory,
    with the one-step survival 1 - (1 - q)^M marked at generation 1."""
    from .plotting import generation_colors, theory

    p0 = check_distribution(p0)
    chains, n1, _ = P.shape
    gens = np.arange(n1)
    exact = survival_probability(p0[list(states)], M, n1 - 1)
    colors = generation_colors(range(len(states)), max(len(states) - 1, 1))
    for j, (i, c) in enumerate(zip(states, colors)):
        interval_band(ax, gens[1:], (P[:, 1:, i] > 0).sum(axis=0), chains, color=c,
                      label=f"state {i + 1}: $q$ = {p0[i]:.3f}")
        theory(ax, gens[1:], exact[j, 1:], label="exact theory" if j == 0 else None)
        ax.plot([1], [one_step_survival(p0[i], M)], marker="o", color=c, mec="black", ms=6,
                ls="none", zorder=6,
                label=r"one step: $1-(1-q)^M$" if j == 0 else None)
        ax.axhline(p0[i], color=c, lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("generation $n$")
    ax.set_ylabel("P(state still present)")
    ax.legend(**(legend_kw or dict(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))))


def plot_support(axes, P, p0, M: int) -> None:
    """Left: support size per chain (median, 10-90% band; mean and its exact theory).
    Right: mean Gini-Simpson diversity with its exact theory (1 - sum p0^2)(1 - 1/M)^n."""
    from .plotting import REGIME_COLORS, band, theory

    n1 = P.shape[1]
    gens = np.arange(n1)
    color = REGIME_COLORS["replace"]
    support = support_size(P)
    band(axes[0], gens, support, label="chains: mean, 10-90%", color=color, center="mean",
         spread="quantile")
    theory(axes[0], gens, expected_support(p0, M, n1 - 1), label="exact E[support]")
    axes[0].set_xscale("symlog", linthresh=1)
    axes[0].set_xlabel("generation $n$")
    axes[0].set_ylabel("states present")
    axes[0].legend(fontsize=8)
    band(axes[1], gens, gini_simpson(P), label="chains: mean, 10-90%", color=color,
         center="mean", spread="quantile")
    theory(axes[1], gens, expected_gini_simpson(p0, M, n1 - 1),
           label=r"exact $(1-\sum p_0^2)(1-1/M)^n$")
    axes[1].set_xlabel("generation $n$")
    axes[1].set_ylabel(r"diversity $1-\sum_i p_n(i)^2$")
    axes[1].legend(fontsize=8)


def plot_fixation(ax, final, p0, level: float = 0.95) -> None:
    """Fraction of chains ending at each state, with Clopper-Pearson intervals, against p0."""
    from .plotting import REGIME_COLORS, THEORY_STYLE

    p0 = check_distribution(p0)
    chains, K = final.shape
    wins = (final == 1.0).sum(axis=0)
    lo, hi = binomial_interval(wins, chains, level)
    x = np.arange(1, K + 1)
    frac = wins / chains
    ax.bar(x, frac, color=REGIME_COLORS["replace"], alpha=0.7,
           label=f"simulation ({chains:,} chains)")
    ax.errorbar(x, frac, yerr=[frac - lo, hi - frac], fmt="none", ecolor="black", capsize=3,
                label=f"{level:.0%} binomial interval")
    ax.scatter(x, p0, marker="_", s=500, color=THEORY_STYLE["color"], zorder=6,
               label="theory: $p_0(i)$")
    ax.set_xticks(x)
    ax.set_xlabel("state $i$")
    ax.set_ylabel("P(chain ends at state $i$)")
    ax.legend(fontsize=8)


def plot_absorption_time(ax, times, p: float, M: int) -> None:
    """Histogram of two-state absorption times against the exact distribution and the means."""
    from .plotting import REGIME_COLORS, theory

    times = np.asarray(times, dtype=float)
    times = times[np.isfinite(times)]
    top = int(np.quantile(times, 0.995)) + 1
    width = max(1, top // 40)
    edges = np.arange(0, top + width, width)
    ax.hist(times, bins=edges, density=True, color=REGIME_COLORS["replace"], alpha=0.6,
            label=f"simulation ({times.size:,} chains)")
    pmf = absorption_time_pmf(p, M, int(edges[-1]))
    centres = np.arange(pmf.size)
    theory(ax, centres, pmf, label="exact P(T = n)")
    ax.axvline(mean_absorption_time_exact(p, M), color="black", lw=1, label="exact mean")
    ax.axvline(mean_absorption_time_diffusion(p, M), color="0.4", lw=1, ls=":",
               label="diffusion mean")
    ax.set_xlabel("absorption time $T$ (generations)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)


def plot_mean_time(ax, Ms, times_by_M, p: float) -> None:
    """Mean absorption time per sample, E[T] / M, against M (mean ± 2 standard errors),
    with the exact curve and the diffusion approximation (a constant in these units)."""
    import matplotlib as mpl

    from .plotting import REGIME_COLORS, theory

    Ms = np.asarray(Ms)
    means = np.array([np.mean(t) for t in times_by_M])
    se = np.array([np.std(t, ddof=1) / np.sqrt(len(t)) for t in times_by_M])
    ax.errorbar(Ms, means / Ms, yerr=2 * se / Ms, fmt="o", color=REGIME_COLORS["replace"],
                capsize=3, label="simulation: mean ± 2 s.e.")
    grid = np.unique(np.geomspace(Ms.min(), Ms.max(), 30).astype(int))
    theory(ax, grid, [mean_absorption_time_exact(p, m) / m for m in grid], label="exact")
    ax.plot(grid, [mean_absorption_time_diffusion(p, m) / m for m in grid], color="0.4", ls=":",
            label=r"diffusion $-2[p\ln p+(1-p)\ln(1-p)]$")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(mpl.ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
    ax.set_xticks(Ms)
    ax.set_xlabel("samples per generation $M$")
    ax.set_ylabel("mean absorption time / $M$")
    ax.legend(fontsize=8, loc="lower right")


def plot_regimes(axes, runs: dict, p0, M: int, real_fraction: float) -> None:
    """Diversity (with exact theory per regime) and support size, for each regime.

    ``runs`` maps a regime name to its :func:`simulate` output."""
    from .plotting import REGIME_COLORS, band, theory

    for k, (name, P) in enumerate(runs.items()):
        gens = np.arange(P.shape[1])
        color = REGIME_COLORS[name]
        band(axes[0], gens, gini_simpson(P), color=color, center="mean", spread="quantile",
             label=name)
        theory(axes[0], gens,
               expected_gini_simpson(p0, M, gens[-1], name, real_fraction),
               label="exact theory" if k == 0 else None)
        band(axes[1], gens, support_size(P), color=color, center="mean", spread="quantile")
    exact = theory(axes[1], gens, expected_support(p0, M, gens[-1]), label="exact, replace")
    axes[0].set_ylabel(r"diversity $1-\sum_i p_n(i)^2$")
    axes[1].set_ylabel("states present")
    axes[0].set_title("diversity (mean, 10-90% band)")
    axes[1].set_title("support size (mean, 10-90% band)")
    for ax in axes:
        ax.set_xlabel("generation $n$")
    axes[0].legend(fontsize=8, loc="lower left")
    axes[1].legend(handles=[exact], fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 0.12))


#: the explorer's starting values (the static figure beside it uses the same)
EXPLORER_DEFAULTS = {"M": 50, "exponent": 1.0, "generations": 300}


def explore_figure(M: int = 50, exponent: float = 1.0, generations: int = 300, K: int = 20,
                   chains: int = 200, seed: int = 0, profile: str | None = None):
    """The explorer's figure for Zipf(K, exponent): survival of a head, a middle and a tail
    state, the support size and the diversity, each against its exact theory."""
    from .plotting import profile_note

    plt = _plt()
    p0 = zipf(K, exponent)
    P = simulate(p0, M, generations, chains, seed=seed)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.4))
    plot_survival(axes[0], P, p0, M, states=[0, K // 2 - 1, K - 1],
                  legend_kw=dict(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2),
                                 ncol=2))
    plot_support(axes[1:], P, p0, M)
    fig.suptitle(f"Zipf(K={K}, s={exponent:g}), M = {M}: tails go first, the support shrinks",
                 fontsize=11)
    if profile:
        profile_note(fig, profile, f"{chains} chains")
    fig.subplots_adjust(wspace=0.3, bottom=0.32, top=0.88)  # cheaper than tight_layout
    return fig


def explorer(chains: int = 200, K: int = 20, profile: str | None = None):
    """An ipywidgets explorer of :func:`explore_figure`: sliders for M, the Zipf exponent
    and the number of generations, starting at :data:`EXPLORER_DEFAULTS`."""
    try:
        import ipywidgets as w
    except ImportError:  # pragma: no cover - the static figure stands beside it
        print("ipywidgets is not installed (pip install ipywidgets); the static figure above "
              "shows the starting values")
        return None
    plt = _plt()

    def show(M, exponent, generations):
        fig = explore_figure(M, exponent, generations, K=K, chains=chains, profile=profile)
        plt.show()
        plt.close(fig)

    start = EXPLORER_DEFAULTS
    return w.interact(
        show,
        M=w.IntSlider(value=start["M"], min=10, max=400, step=10, description="M",
                      continuous_update=False),
        exponent=w.FloatSlider(value=start["exponent"], min=0.0, max=3.0, step=0.1,
                               description="Zipf s", continuous_update=False),
        generations=w.IntSlider(value=start["generations"], min=10, max=1000, step=10,
                                description="generations", continuous_update=False),
    )
