"""Data regimes and sample-size schedules of learning with generational data.

The paper (Shumailov et al. 2024, Sec. 2) builds the data of generation i+1 as
samples from the mixture

    p_{i+1} = alpha_i * p_theta_{i+1} + beta_i * p_i + gamma_i * p_0,   alpha+beta+gamma = 1,

of the newest model, the previous generation's data and the original data.  The
theory uses beta = gamma = 0 (:class:`Replace`).  Follow-up work adds regimes that
keep data: :class:`Accumulate` (Gerstgrasser et al. 2024) and
:class:`AccumulateSubsample` (Kazdan et al. 2024).

Every regime answers one question: given the newest model, the previous training
set, the real data and the pool of all data seen so far, which M_{i+1} samples
does generation i+1 train on?  Samples lie along one axis of an array (``axis``),
so many independent chains can share one array and one loop.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

Draw = Callable[[int], np.ndarray]  # k -> k fresh samples from the newest model


# ----------------------------------------------------------------------------- helpers
def n_samples(data, axis: int = 0) -> int:
    """Number of samples along ``axis``."""
    return int(np.shape(data)[axis])


def take(data, index, axis: int = 0):
    """The samples at ``index`` along ``axis``.

    Works for numpy arrays and torch tensors.  Any other data type joins in by
    defining ``take_samples(index, axis)`` and ``concat_samples(parts, axis)`` (a
    classmethod): the VAE's lazily decoded training sets do.
    """
    index = np.asarray(index, dtype=np.int64)
    if hasattr(data, "take_samples"):
        return data.take_samples(index, axis)
    if hasattr(data, "index_select"):  # torch.Tensor, without importing torch
        import torch

        return data.index_select(axis, torch.as_tensor(index, device=data.device))
    return np.take(data, index, axis=axis)


def concat(parts: Sequence, axis: int = 0):
    """Join sample arrays along ``axis`` (see :func:`take` for data types of your own)."""
    parts = [p for p in parts if p is not None and n_samples(p, axis) > 0]
    own = next((p for p in parts if hasattr(p, "concat_samples")), None)
    if own is not None:
        return type(own).concat_samples(parts, axis)
    if hasattr(parts[0], "index_select"):
        import torch

        return torch.cat(list(parts), dim=axis)
    return np.concatenate(parts, axis=axis)


def _chain_indices(chains: tuple, n: int, k: int, rng: np.random.Generator, replace: bool,
                   sort: bool = False) -> np.ndarray:
    """Independent index sets, one per chain: an array ``chains + (k,)`` of indices below n."""
    if replace:
        index = rng.integers(n, size=(*chains, k))
    else:
        index = np.argsort(rng.random((*chains, n)), axis=-1)[..., :k]
    return np.sort(index, axis=-1) if sort else index


def take_per_chain(data: np.ndarray, index: np.ndarray, axis: int) -> np.ndarray:
    """``data`` (chains along the axes before ``axis``) at each chain's own ``index``: the
    values of ``np.take_along_axis``, gathered as one ``np.take`` of rows (about 3x faster
    for the Gaussian chapter's 5,000 chains)."""
    data = np.asarray(data)
    chains, n, rest = data.shape[:axis], data.shape[axis], data.shape[axis + 1:]
    c, k = int(np.prod(chains)), index.shape[-1]
    rows = (np.arange(c)[:, None] * n + index.reshape(c, k)).ravel()
    return np.take(data.reshape(c * n, *rest), rows, axis=0).reshape(*chains, k, *rest)


def draw_from(data, k: int, rng: np.random.Generator, axis: int = 0):
    """k samples of ``data``: without replacement when it has at least k, else with.

    With ``axis > 0`` the axes before it index independent chains (a numpy array
    of shape chains x samples x ...), and every chain draws its own samples.
    """
    n = n_samples(data, axis)
    if k == 0:
        return take(data, np.zeros(0, dtype=np.int64), axis)
    if n == 0:
        raise ValueError("cannot draw samples from an empty data set")
    if axis > 0 and isinstance(data, np.ndarray):
        index = _chain_indices(data.shape[:axis], n, k, rng, replace=k > n)
        return take_per_chain(data, index, axis)
    index = rng.choice(n, size=k, replace=k > n)
    return take(data, index, axis)


def split_counts(m: int, weights: Sequence[float]) -> list[int]:
    """Split m into integer counts proportional to ``weights`` that sum to m exactly.

    Largest-remainder rounding: each count is the floor of its share, and the units
    left over go to the largest fractional parts (ties to the earlier entry).
    """
    w = np.asarray(weights, dtype=float)
    raw = m * w / w.sum()
    counts = np.floor(raw).astype(int)
    left = m - counts.sum()
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[:left]] += 1
    return [int(c) for c in counts]


# ----------------------------------------------------------------------------- regimes
class Regime:
    """How generation i+1's training set is made.  Subclasses implement ``next_data``."""

    name = "regime"
    #: whether the regime reads the pool of all data seen so far
    uses_pool = False
    #: whether the regime reads the previous generation's training set
    uses_previous = False

    def next_data(self, draw: Draw, m: int, *, previous, real, pool: list,
                  rng: np.random.Generator, axis: int = 0):
        """Return (training set of the next generation, the fresh model samples in it).

        ``draw(k)`` gives k new samples from the newest model; ``m`` is M_{i+1};
        ``previous`` is generation i's training set; ``real`` the original data;
        ``pool`` the list [real, new_1, ..., new_i] of every array seen so far.
        """
        raise NotImplementedError

    def describe(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<{self.describe()}>"


class Replace(Regime):
    """Train only on M_{i+1} fresh samples of the newest model (alpha = 1, beta = gamma = 0)."""

    name = "replace"

    def next_data(self, draw, m, *, previous, real, pool, rng, axis=0):
        new = draw(m)
        return new, new


class Accumulate(Regime):
    """Train on everything so far: the real data and every generation's samples.

    Each generation adds M_{i+1} fresh samples, so the training set grows
    (Gerstgrasser et al. 2024).
    """

    name = "accumulate"
    uses_pool = True

    def next_data(self, draw, m, *, previous, real, pool, rng, axis=0):
        new = draw(m)
        return concat([*pool, new], axis), new


@dataclass(frozen=True, repr=False)
class AccumulateSubsample(Regime):
    """Add M_{i+1} fresh samples to the pool, then train on ``budget`` of the pool.

    The subset is drawn uniformly without replacement from the real data and every
    generation's samples (Kazdan et al. 2024); ``budget=None`` means M_{i+1}.
    """

    budget: int | None = None
    name = "accumulate-subsample"
    uses_pool = True

    def __post_init__(self):
        if self.budget is not None and self.budget < 1:
            raise ValueError(f"budget must be a positive integer or None; got {self.budget!r}")

    def next_data(self, draw, m, *, previous, real, pool, rng, axis=0):
        new = draw(m)
        everything = concat([*pool, new], axis)
        n = n_samples(everything, axis)
        k = min(self.budget or m, n)
        if axis > 0 and isinstance(everything, np.ndarray):  # each chain its own subset
            index = _chain_indices(everything.shape[:axis], n, k, rng, replace=False, sort=True)
            return take_per_chain(everything, index, axis), new
        index = np.sort(rng.choice(n, size=k, replace=False))
        return take(everything, index, axis), new

    def describe(self) -> str:
        return f"accumulate-subsample(budget={self.budget})"


@dataclass(frozen=True, repr=False)
class Mix(Regime):
    """alpha*M fresh model samples + beta*M from the previous data + gamma*M real samples.

    Counts are rounded so they sum to M_{i+1} exactly (:func:`split_counts`).  Samples
    taken from the previous or the real data are drawn without replacement when
    there are enough, else with replacement.  The three parts are concatenated in
    that order: model, previous, real.
    """

    alpha: float = 1.0
    beta: float = 0.0
    gamma: float = 0.0
    name = "mix"

    def __post_init__(self):
        for key in ("alpha", "beta", "gamma"):
            v = getattr(self, key)
            if not (0.0 <= v <= 1.0) or not math.isfinite(v):
                raise ValueError(f"{key} must lie in [0, 1]; got {v!r}")
        if not math.isclose(self.alpha + self.beta + self.gamma, 1.0, abs_tol=1e-9):
            raise ValueError(
                f"alpha + beta + gamma must equal 1; got {self.alpha} + {self.beta} + {self.gamma}"
            )

    @property
    def uses_previous(self):  # type: ignore[override]
        return self.beta > 0

    def next_data(self, draw, m, *, previous, real, pool, rng, axis=0):
        a, b, c = split_counts(m, [self.alpha, self.beta, self.gamma])
        new = draw(a)
        parts = [new, draw_from(previous, b, rng, axis), draw_from(real, c, rng, axis)]
        return concat(parts, axis), new

    def describe(self) -> str:
        return f"mix(alpha={self.alpha:g}, beta={self.beta:g}, gamma={self.gamma:g})"


def keep_real(fraction: float) -> Mix:
    """Each generation keeps ``fraction`` of its data real: Mix(1 - fraction, 0, fraction)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1]; got {fraction!r}")
    return Mix(alpha=1.0 - fraction, beta=0.0, gamma=fraction)


REGIMES = ("replace", "accumulate", "accumulate-subsample", "keep-real")


def make_regime(name: str, *, real_fraction: float = 0.1, budget: int | None = None,
                accept: Callable | None = None, correct: Callable | None = None,
                gamma: float = 0.5, max_rounds: int = 20, score: Callable | None = None,
                keep: float = 0.05) -> Regime:
    """A regime by name: one of :data:`REGIMES` (``keep-real`` keeps ``real_fraction``), of
    :data:`CURATION_REGIMES` (``verify`` needs ``accept``, ``self-correct`` needs
    ``correct`` and ``gamma``; see :class:`Verify` and :class:`SelfCorrect`) or of
    :data:`SELECTION_REGIMES` (``score`` and ``keep``; see :class:`Select`)."""
    if name in ("select", "accumulate-select"):
        if score is None:
            raise ValueError(f"regime {name} needs a score(samples, rng) function")
        return make_selection_regime(name, score, keep)
    if name in ("verify", "self-correct"):
        return _make_curation_regime(name, accept=accept, correct=correct, gamma=gamma,
                                     max_rounds=max_rounds)
    if name == "replace":
        return Replace()
    if name == "accumulate":
        return Accumulate()
    if name == "accumulate-subsample":
        return AccumulateSubsample(budget)
    if name == "keep-real":
        return keep_real(real_fraction)
    raise ValueError(f"regime must be one of {', '.join(REGIMES)}; got {name!r}")


# ----------------------------------------------------------------------------- schedules
SCHEDULES = ("constant", "linear", "superlinear")


@dataclass(frozen=True)
class Schedule:
    """Sample-size schedule M_i for i >= 1 (generation 0 trains on the real data).

    ``constant``:    M_i = M
    ``linear``:      M_i = M (i + 1)
    ``superlinear``: M_i = ceil(M (i + 1)^power), power > 1

    The supplement of Shumailov et al. (2024) states that the Gaussian's distance to
    the original stays bounded only if M_i grows superlinearly.  What bounds it is
    the sum: the variance of the mean's random walk is sum_i sigma^2 / M_i, finite
    exactly when sum_i 1 / M_i converges; superlinear growth is necessary for that,
    not sufficient (M_i = M (i + 1) log(i + 2) grows superlinearly, yet the sum diverges).
    """

    kind: str = "constant"
    M: int = 100
    power: float = 2.0

    def __post_init__(self):
        if self.kind not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}; got {self.kind!r}")
        if int(self.M) != self.M or self.M < 1:
            raise ValueError(f"M must be a positive integer; got {self.M!r}")
        if self.kind == "superlinear" and not self.power > 1:
            raise ValueError(f"power must be > 1 for a superlinear schedule; got {self.power!r}")

    def __call__(self, i: int) -> int:
        if self.kind == "constant":
            return int(self.M)
        if self.kind == "linear":
            return int(self.M * (i + 1))
        return int(math.ceil(self.M * (i + 1) ** self.power))


def as_schedule(sizes, M: int | None = None, name: str = "sizes") -> Callable[[int], int]:
    """M_i as a callable: an int means constant; a callable is used as given; a schedule
    name (``constant``, ``linear``, ``superlinear``) or None needs the base size ``M``.
    ``name`` is the caller's parameter, for the error message."""
    if isinstance(sizes, (int, np.integer)) and not isinstance(sizes, bool):
        return Schedule("constant", int(sizes))
    if callable(sizes):
        return sizes
    if M is not None and (sizes is None or isinstance(sizes, str)):
        return Schedule(sizes or "constant", M)
    raise ValueError(f"{name} must be an int, a callable i -> M_i or one of "
                     f"{', '.join(SCHEDULES)}; got {sizes!r}")


# ----------------------------------------------------------------------------- curation
def accepted_first(mask: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Per chain (leading axes of ``mask``), the indices of the first ``m`` accepted samples
    in draw order, topped up with the first rejected ones when fewer than ``m`` were accepted;
    and the number of accepted samples of each chain (capped at ``m``)."""
    order = np.argsort(~mask, axis=-1, kind="stable")[..., :m]
    return order, np.minimum(mask.sum(axis=-1), m)


@dataclass(frozen=True, repr=False)
class Verify(Regime):
    """Train only on fresh model samples that a verifier accepts (Feng et al. 2024).

    ``accept(samples, rng)`` returns a boolean mask over the samples (shape: the
    chain axes and the sample axis, ``samples.shape[:axis + 1]``).  Each generation
    draws M_{i+1} samples at a time, keeps the accepted ones in draw order, and draws
    again until every chain holds M_{i+1} accepted samples or ``max_rounds`` draws
    were made; a chain still short then fills up with its earliest rejected samples,
    so the training set always holds M_{i+1} samples (the cap stands for a finite
    sampling budget).  How good the verifier is belongs to ``accept``: a family
    makes it err at a rate of its own setting.
    """

    accept: Callable = None
    max_rounds: int = 20
    name = "verify"

    def __post_init__(self):
        if not callable(self.accept):
            raise ValueError("accept must be a callable (samples, rng) -> boolean mask")
        if int(self.max_rounds) != self.max_rounds or self.max_rounds < 1:
            raise ValueError(f"max_rounds must be a positive integer; got {self.max_rounds!r}")

    def next_data(self, draw, m, *, previous, real, pool, rng, axis=0):
        draws, masks = [], []
        for _ in range(int(self.max_rounds)):
            batch = draw(m)
            mask = np.asarray(self.accept(batch, rng), dtype=bool)
            if mask.shape != tuple(np.shape(batch)[:axis + 1]):
                raise ValueError(f"accept must return a mask of shape {np.shape(batch)[:axis + 1]}; "
                                 f"got {mask.shape}")
            draws.append(batch)
            masks.append(mask)
            accepted = mask.sum(axis=-1) if len(masks) == 1 else accepted + mask.sum(axis=-1)
            if np.all(accepted >= m):
                break
        everything = concat(draws, axis) if len(draws) > 1 else draws[0]
        mask = np.concatenate(masks, axis=-1)
        index, _ = accepted_first(mask, m)
        if axis > 0 and isinstance(everything, np.ndarray):
            kept = take_per_chain(everything, index, axis)
        else:
            kept = take(everything, index, axis)
        return kept, kept

    def describe(self) -> str:
        return f"verify(max_rounds={self.max_rounds})"


@dataclass(frozen=True, repr=False)
class SelfCorrect(Regime):
    """Train on fresh model samples, each moved towards the real distribution (Gillman et al. 2024).

    ``correct(samples, gamma, rng)`` returns the samples corrected with strength
    ``gamma``: 0 leaves them as drawn (then this is :class:`Replace`), 1 applies the
    full correction.  Which direction is "towards the real distribution" is the
    family's knowledge (an expert, a simulator, the true regression function).
    """

    correct: Callable = None
    gamma: float = 0.5
    name = "self-correct"

    def __post_init__(self):
        if not callable(self.correct):
            raise ValueError("correct must be a callable (samples, gamma, rng) -> samples")
        if not (0.0 <= self.gamma <= 1.0) or not math.isfinite(self.gamma):
            raise ValueError(f"gamma must lie in [0, 1]; got {self.gamma!r}")

    def next_data(self, draw, m, *, previous, real, pool, rng, axis=0):
        new = self.correct(draw(m), self.gamma, rng)
        if n_samples(new, axis) != m:
            raise ValueError(f"correct must keep the {m} samples; got {n_samples(new, axis)}")
        return new, new

    def describe(self) -> str:
        return f"self-correct(gamma={self.gamma:g})"


#: the curation regimes; families that can verify or correct their samples accept them
CURATION_REGIMES = ("verify", "self-correct")


# ----------------------------------------------------------------------------- selection
def top_k(scores: np.ndarray, m: int) -> np.ndarray:
    """Per chain (leading axes of ``scores``), the indices of the ``m`` highest scores, in
    draw order.  A partition, not a sort (linear time: the selector ranks thousands of draws
    per chain and generation); ties at the cut-off are broken by ``np.argpartition``,
    deterministically."""
    scores = np.asarray(scores, dtype=float)
    n = scores.shape[-1]
    if m >= n:
        return np.broadcast_to(np.arange(n), scores.shape).copy()
    order = np.argpartition(-scores, m - 1, axis=-1)[..., :m]
    return np.sort(order, axis=-1)


@dataclass(frozen=True, repr=False)
class Select(Regime):
    """Keep the "best" fresh model samples: draw M_{i+1} / ``keep`` samples, keep the M_{i+1}
    with the highest ``score``, then train on them alone (``base="replace"``, the regime
    ``select``) or add them to everything so far (``base="accumulate"``, the regime
    ``accumulate-select``) (Qiao et al., "When sample selection bias precipitates model
    collapse": the README's Table 1 compares the four cells replace / accumulate, with and
    without selection).

    ``score(samples, rng)`` returns one number per sample (shape ``samples.shape[:axis + 1]``),
    higher for a sample the selector prefers: the likelihood under the current model, minus
    the distance to a target.  Unlike :class:`Verify`, whose verifier knows the *real*
    distribution, the selector's preference comes from inside the loop or from a fixed bias,
    so what it keeps is narrower than what the model drew, and nothing pulls it back.
    """

    score: Callable = None
    keep: float = 0.05
    base: str = "replace"
    name = "select"

    def __post_init__(self):
        if not callable(self.score):
            raise ValueError("score must be a callable (samples, rng) -> one score per sample")
        if not (0.0 < self.keep <= 1.0) or not math.isfinite(self.keep):
            raise ValueError(f"keep must lie in (0, 1]; got {self.keep!r}")
        if self.base not in ("replace", "accumulate"):
            raise ValueError(f"base must be one of replace, accumulate; got {self.base!r}")

    @property
    def uses_pool(self):  # type: ignore[override]
        return self.base == "accumulate"

    def drawn(self, m: int) -> int:
        """How many samples are drawn to keep ``m``: ceil(m / keep) (rounded for float noise)."""
        return int(math.ceil(round(m / self.keep, 9)))

    def next_data(self, draw, m, *, previous, real, pool, rng, axis=0):
        batch = draw(self.drawn(m))
        scores = np.asarray(self.score(batch, rng), dtype=float)
        if scores.shape != tuple(np.shape(batch)[:axis + 1]):
            raise ValueError(f"score must return one number per sample, shape "
                             f"{np.shape(batch)[:axis + 1]}; got {scores.shape}")
        index = top_k(scores, m)
        if axis > 0 and isinstance(batch, np.ndarray):
            kept = take_per_chain(batch, index, axis)
        else:
            kept = take(batch, index, axis)
        if self.base == "accumulate":
            return concat([*pool, kept], axis), kept
        return kept, kept

    def describe(self) -> str:
        prefix = "accumulate-select" if self.base == "accumulate" else "select"
        return f"{prefix}(keep={self.keep:g})"


#: the selection regimes: replace or accumulate, training on the samples a selector prefers
SELECTION_REGIMES = ("select", "accumulate-select")


def make_selection_regime(name: str, score: Callable, keep: float = 0.05) -> Select:
    """``select`` (replace + select) or ``accumulate-select`` with ``score`` and ``keep``."""
    if name not in SELECTION_REGIMES:
        raise ValueError(f"regime must be one of {', '.join(SELECTION_REGIMES)}; got {name!r}")
    return Select(score, keep, "accumulate" if name == "accumulate-select" else "replace")


def _make_curation_regime(name: str, *, accept, correct, gamma, max_rounds) -> Regime:
    if name == "verify":
        if accept is None:
            raise ValueError("regime verify needs an accept(samples, rng) function")
        return Verify(accept, max_rounds)
    if correct is None:
        raise ValueError("regime self-correct needs a correct(samples, gamma, rng) function")
    return SelfCorrect(correct, gamma)
