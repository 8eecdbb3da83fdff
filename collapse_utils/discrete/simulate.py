"""Many chains of the exact-fit recursion at once, on counts (the family's one engine).

Every chain's training set is a vector of K counts, so all chains lie in one
(chains, K) array and each generation is one multinomial draw over all of them.
The real data D_0 is an M-sample of p0 per chain (``rng_for(seed, "real")``);
generation 0 fits it, as in every family (:func:`collapse_utils.loop.run_generations`).

The regimes have the semantics of :mod:`collapse_utils.regimes`; as counts,

* ``replace`` is the core's :class:`~collapse_utils.regimes.Replace` unchanged;
* ``keep-real`` (:class:`KeepRealCounts`) is :func:`~collapse_utils.regimes.keep_real`:
  (1 - f) M model samples and f M of the chain's own real samples, drawn without
  replacement from D_0;
* ``accumulate`` (:class:`AccumulateCounts`) is :class:`~collapse_utils.regimes.Accumulate`:
  D_0 and every generation's samples, kept as one running sum of counts;
* ``verify`` (:class:`VerifyCounts`) is :class:`~collapse_utils.regimes.Verify` with a
  verifier that knows p0: rejection sampling towards p0 on the model's support, a
  share ``error`` of its decisions guesses;
* ``self-correct`` (:class:`SelfCorrectCounts`) is :class:`~collapse_utils.regimes.SelfCorrect`:
  each generation's counts move a share gamma of the way to M p0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.special import xlogy

from ..loop import rng_for, run_generations
from ..regimes import Regime, Replace, split_counts
from .theory import check_distribution


# ----------------------------------------------------------------------------- per-chain measures
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


# ----------------------------------------------------------------------------- the model
def fit_frequencies(counts, rng=None) -> np.ndarray:
    """The exact fit F(p) = p: each chain's empirical frequencies, counts / row sum."""
    P = np.array(counts, dtype=float)
    P /= (P @ np.ones(P.shape[1]))[:, None]  # row sums by a matrix-vector product (fast)
    return P


def sample_counts(P, m: int, rng: np.random.Generator) -> np.ndarray:
    """Counts of m samples from every chain's distribution: one multinomial draw.

    Chains already absorbed in a delta are deterministic (all m samples at that
    state), so the single ``rng.multinomial`` call covers only the other chains.
    The counts come in the smallest unsigned type that holds m.
    """
    P = np.asarray(P, dtype=float)
    dtype = np.min_scalar_type(int(m))
    absorbed = ((P == 1.0) @ np.ones(P.shape[1])) > 0
    if not absorbed.any():
        return rng.multinomial(int(m), P).astype(dtype)
    counts = (P * m).astype(dtype)  # exact for absorbed rows (entries 0 or 1)
    active = np.flatnonzero(~absorbed)
    if active.size:
        counts[active] = rng.multinomial(int(m), P.take(active, axis=0))
    return counts


def draw_without_replacement(pool, k: int, rng: np.random.Generator) -> np.ndarray:
    """Counts of k samples drawn without replacement from each chain's ``pool`` of counts.

    ``pool`` has shape (chains, K) and every row the same total n >= k.  Samples are
    taken one at a time, each uniform among a chain's samples not yet taken (for
    k > n/2 the n - k samples left behind are drawn instead): what
    :func:`collapse_utils.regimes.draw_from` does to the samples themselves.
    """
    pool = np.asarray(pool, dtype=np.int64)
    n = int(pool[0].sum())
    if 2 * k > n:
        return pool - draw_without_replacement(pool, n - k, rng)
    rows = np.arange(pool.shape[0])
    left, out = pool.copy(), np.zeros_like(pool)
    for j in range(int(k)):
        u = rng.integers(0, n - j, size=rows.size)
        state = np.count_nonzero(np.cumsum(left, axis=1) <= u[:, None], axis=1)
        left[rows, state] -= 1
        out[rows, state] += 1
    return out


def real_counts(p0, M: int, chains: int, seed: int) -> np.ndarray:
    """The real data D_0 of every chain: counts of M samples of p0, ``rng_for(seed, "real")``."""
    p0 = check_distribution(p0)
    return rng_for(seed, "real").multinomial(int(M), p0, size=int(chains)).astype(
        np.min_scalar_type(int(M)))


# ----------------------------------------------------------------------------- regimes on counts
@dataclass(frozen=True, repr=False)
class KeepRealCounts(Regime):
    """``keep-real`` on counts: :func:`collapse_utils.regimes.keep_real` semantics.

    Each generation trains on a = (1 - fraction) M fresh model samples and
    c = fraction M samples of the chain's real data D_0, drawn without replacement
    (rounding by :func:`~collapse_utils.regimes.split_counts`, as in ``Mix``).
    """

    fraction: float = 0.1
    name = "keep-real"

    def next_data(self, draw, m, *, previous, real, pool, rng, axis=1):
        a, _, c = split_counts(m, [1.0 - self.fraction, 0.0, self.fraction])
        new = draw(a)
        kept = draw_without_replacement(real, c, rng) if c > 0 else 0
        return new + kept, new

    def describe(self) -> str:
        return f"keep-real(fraction={self.fraction:g})"


class AccumulateCounts(Regime):
    """``accumulate`` on counts: :class:`collapse_utils.regimes.Accumulate` semantics.

    The training set is D_0 and every generation's samples; as counts that is the
    previous training set plus the new counts, one (chains, K) array instead of a
    growing list (the same distribution, O(1) memory).
    """

    name = "accumulate"
    uses_previous = True

    def next_data(self, draw, m, *, previous, real, pool, rng, axis=1):
        new = draw(m)
        return previous.astype(np.int64) + new, new


@dataclass(frozen=True, repr=False)
class VerifyCounts(Regime):
    """``verify`` on counts: :class:`collapse_utils.regimes.Verify` with a verifier that knows p0.

    The model of generation i is the exact fit p = previous / M (so the verifier knows the
    density ratio).  A sample at state k is accepted with probability
    (1 - error) A(k) + error / K, where A = p0_S / (K p) is rejection sampling towards
    p0_S, p0 restricted to the model's support S and renormalised, K = max_S p0_S / p, and
    a share ``error`` of the decisions are guesses at the verifier's own rate 1/K.  So each
    accepted sample is, independently, a draw of p0_S with probability 1 - error and of p
    otherwise (error = 1: ``replace``).  As in ``Verify``, each chain draws up to
    ``max_rounds`` batches of M samples and keeps its first M accepted ones, topped up
    with its first rejected ones; on counts that is, exactly in distribution:
    A ~ Binomial(max_rounds M, 1/K) accepted, min(A, M) of them kept (a multinomial
    sample of the accepted law), the rest a multinomial sample of the rejected law.
    A state the model has lost (p = 0) is never drawn, so no verifier brings it back.
    """

    p0: tuple = ()
    error: float = 0.0
    max_rounds: int = 20
    name = "verify"
    uses_previous = True

    def next_data(self, draw, m, *, previous, real, pool, rng, axis=1):
        p0 = np.asarray(self.p0, dtype=float)
        prev = np.asarray(previous, dtype=float)
        p = prev / prev.sum(axis=1, keepdims=True)
        target = np.where(p > 0, p0, 0.0)
        target /= target.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(p > 0, target / p, 0.0)
        K = np.maximum(ratio.max(axis=1, keepdims=True), 1.0)     # >= 1 up to rounding
        acc = np.minimum((1 - self.error) * ratio / K + self.error / K, 1.0)   # per state
        accepted = (1 - self.error) * target + self.error * p     # = p acc K
        rejected = p * (1 - acc)
        left = rejected.sum(axis=1, keepdims=True)
        rejected = np.where(left > 1e-12, rejected / np.where(left > 0, left, 1.0), p)
        found = rng.binomial(int(self.max_rounds) * int(m), 1.0 / K[:, 0])
        kept = np.minimum(found, int(m))
        counts = rng.multinomial(kept, accepted) + rng.multinomial(int(m) - kept, rejected)
        counts = counts.astype(np.min_scalar_type(int(m)))
        return counts, counts

    def describe(self) -> str:
        return f"verify(error={self.error:g}, max_rounds={self.max_rounds})"


@dataclass(frozen=True, repr=False)
class SelfCorrectCounts(Regime):
    """``self-correct`` on counts: :class:`collapse_utils.regimes.SelfCorrect` with the
    correction c -> (1 - gamma) c + gamma M p0 of each generation's M fresh counts (each
    sample moved a share gamma towards p0, as fractional counts).  Every state keeps
    at least gamma p0(k) of the next model's mass, so no state is ever lost."""

    p0: tuple = ()
    gamma: float = 0.5
    name = "self-correct"

    def next_data(self, draw, m, *, previous, real, pool, rng, axis=1):
        new = (1 - self.gamma) * draw(m) + self.gamma * int(m) * np.asarray(self.p0, dtype=float)
        return new, new

    def describe(self) -> str:
        return f"self-correct(gamma={self.gamma:g})"


def count_regime(regime: str = "replace", real_fraction: float = 0.1, *, p0=None,
                 verifier_error: float = 0.0, max_rounds: int = 20, gamma: float = 0.5) -> Regime:
    """The regime object for counts arrays (``replace``, ``keep-real``, ``accumulate``,
    ``verify`` or ``self-correct``; the last two need ``p0``)."""
    if regime in ("verify", "self-correct"):
        if p0 is None:
            raise ValueError(f"regime {regime} needs p0 (the verifier's or corrector's knowledge)")
        p0 = tuple(float(v) for v in check_distribution(p0))
        if regime == "verify":
            return VerifyCounts(p0, float(verifier_error), int(max_rounds))
        return SelfCorrectCounts(p0, float(gamma))
    if regime == "keep-real":
        return KeepRealCounts(float(real_fraction))
    if regime == "accumulate":
        return AccumulateCounts()
    if regime == "replace":
        return Replace()  # the core's Replace works on counts as it is
    raise ValueError(f"regime must be one of replace, keep-real, accumulate, verify, "
                     f"self-correct; got {regime!r}")


def run_chains(p0, M: int, generations: int, chains: int, seed: int, measure, *,
               regime: str = "replace", real_fraction: float = 0.1, curation: dict | None = None,
               **loop_kw):
    """The core loop on a (chains, K) counts array: D_0 drawn per chain, then the regime.

    ``measure(Generation)`` sees the frequencies ``g.model`` of every chain; ``curation``
    holds ``verifier_error``, ``max_rounds`` and ``gamma`` for the curation regimes; the
    other keywords go to :func:`collapse_utils.loop.run_generations`.
    """
    real = real_counts(p0, M, chains, seed)
    reg = count_regime(regime, real_fraction, p0=p0, **(curation or {}))
    return run_generations(fit_frequencies, sample_counts, real, int(generations),
                           regime=reg, sizes=int(M), seed=seed,
                           measure=measure, axis=1, **loop_kw)


# ----------------------------------------------------------------------------- arrays (tests, benchmarks)
def trajectories(p0, M: int, generations: int, chains: int = 1, seed: int = 0,
                 regime: str = "replace", real_fraction: float = 0.1) -> np.ndarray:
    """Every chain's distribution at every generation: shape (chains, generations + 1, K).

    The engine of the ``discrete`` experiment with the whole trajectory kept, for
    tests and benchmarks (the chapter reads the experiment's records).  Memory:
    chains x (generations + 1) x K float64 (10^4 x 1001 x 10 is 0.8 GB).
    """
    out = np.empty((int(generations) + 1, int(chains), check_distribution(p0).size))

    def keep(g):
        out[g.index] = g.model
        return {}

    run_chains(p0, M, generations, chains, seed, keep, regime=regime,
               real_fraction=real_fraction, progress=False)
    return out.transpose(1, 0, 2)


class Absorption(NamedTuple):
    """Result of :func:`absorption`."""

    times: np.ndarray   # (chains,) first generation with one state left; NaN if none yet
    final: np.ndarray   # (chains, K) distribution at the last generation


def absorption(p0, M: int, generations: int, chains: int = 1, seed: int = 0) -> Absorption:
    """Absorption generations and last distributions under ``replace``, memory O(chains K)."""
    times = np.full(int(chains), np.nan)
    final = [None]

    def track(g):
        newly = np.isnan(times) & (support_size(g.model) == 1)
        times[newly] = g.index
        final[0] = g.model
        return {}

    run_chains(p0, M, generations, chains, seed, track, progress=False)
    return Absorption(times, np.asarray(final[0]))
