"""The ``verify`` regime of the language model: generation 0's perplexity as the verifier.

Verification of synthesized data (Feng et al. 2024, arXiv:2406.07515): generation i+1
trains only on generated blocks that a verifier accepts.  Here the verifier is the
generation-0 model (fine-tuned on the real data) and its rule is a band of real text:

    accept a generated 64-token block when its per-sequence perplexity under the
    generation-0 model lies in [q_low, q_high], the ``verify_low`` and ``verify_high``
    quantiles of the real training blocks' perplexities under the same model.

``verify_low = 0`` means no lower limit and ``verify_high = 1`` no upper limit, so the
pair (0, 1) accepts every block and ``verify`` is then ``replace`` exactly (same data,
same numbers for the same seed).  A band that is too narrow accepts few blocks or none.

Rounds and top-up are the core's :class:`~collapse_utils.regimes.Verify`: each round
writes one 64-token continuation for every block of the current training set
(``train_blocks`` of them), the accepted blocks are kept in the order written, and
rounds go on until ``train_blocks`` are accepted or ``max_rounds`` rounds were made.
Beam search and greedy decoding are deterministic, so a round on the same prompts
would write the same blocks again: round r+1 therefore *continues* the text of round r
(its prompt is the block written in round r, for every block).  Still short after
``max_rounds`` rounds, the training set is topped up with the earliest rejected blocks
(round 1's first, in block order), so it always holds ``train_blocks`` blocks; an
impossible band thus trains on round 1's blocks, as ``replace`` does.  Each round costs
one full decoding of the training set, so ``max_rounds`` is small.

The generation-0 perplexity of every written block is computed once, here; the
generation's measurements (the Fig. 1b/1c histograms) read those of the blocks kept
instead of scoring them again.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..regimes import accepted_first
from .evaluate import sequence_perplexities


def perplexity_band(real_perplexities: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """The accepted range [q_low, q_high] of perplexities: the ``low`` and ``high`` quantiles
    of the real blocks' perplexities, with ``low = 0`` as -inf and ``high = 1`` as +inf."""
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"verify_low and verify_high must satisfy 0 <= verify_low <= verify_high "
                         f"<= 1; got {low!r} and {high!r}")
    v = np.asarray(real_perplexities, dtype=float)
    lo = -np.inf if low == 0.0 else float(np.quantile(v, low))
    hi = np.inf if high == 1.0 else float(np.quantile(v, high))
    return lo, hi


class PerplexityVerifier:
    """``accept(blocks, rng)`` for :class:`~collapse_utils.regimes.Verify`, and the record of
    one generation's rounds (written blocks, their generation-0 perplexities, the decisions).

    ``first_model()`` returns the generation-0 network, ``real_perplexities()`` the real
    training blocks' perplexities under it (both read lazily: a resumed run finds them
    on disk).  :meth:`finish` hands the kept blocks' perplexities to the measurement and
    starts the next generation's record.
    """

    def __init__(self, low: float, high: float, first_model: Callable[[], Any],
                 real_perplexities: Callable[[], np.ndarray], eval_batch: int = 256):
        perplexity_band(np.ones(1), low, high)   # the settings' check, before any work
        self.low, self.high, self.eval_batch = low, high, eval_batch
        self._first_model, self._real = first_model, real_perplexities
        self._band: tuple[float, float] | None = None
        self.rounds: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def band(self) -> tuple[float, float]:
        if self._band is None:
            self._band = perplexity_band(self._real(), self.low, self.high)
        return self._band

    def accept(self, blocks: np.ndarray, rng=None) -> np.ndarray:
        """Score ``blocks`` under generation 0 (once) and accept those inside the band."""
        lo, hi = self.band()
        ppl = sequence_perplexities(self._first_model(), blocks, self.eval_batch)
        mask = (ppl >= lo) & (ppl <= hi)          # NaN perplexities are rejected
        self.rounds.append((np.asarray(blocks), ppl, mask))
        return mask

    def previous_round(self) -> np.ndarray | None:
        """The blocks written in this generation's last round (the next round's prompts)."""
        return self.rounds[-1][0] if self.rounds else None

    def finish(self, train: np.ndarray) -> tuple[np.ndarray, dict]:
        """The generation-0 perplexities of the kept blocks ``train`` (in its order) and the
        generation's verify metrics; clears the record for the next generation.

        ``accepted_share``: accepted / written blocks over all rounds; ``verify_rounds``:
        rounds of decoding; ``accepted_blocks``: blocks of the training set that the
        verifier accepted (the others are the earliest rejected, topped up).
        """
        if not self.rounds:
            raise RuntimeError("verify: no round was scored in this generation")
        written = np.concatenate([r[0] for r in self.rounds])
        ppl = np.concatenate([r[1] for r in self.rounds])
        mask = np.concatenate([r[2] for r in self.rounds])
        index, _ = accepted_first(mask, len(train))
        if written[index].shape != np.shape(train) or not (written[index] == train).all():
            raise RuntimeError("verify: the kept blocks are not the first accepted ones topped up "
                               "with the earliest rejected (has the core's Verify changed?)")
        metrics = {"accepted_share": float(mask.mean()), "verify_rounds": len(self.rounds),
                   "accepted_blocks": int(mask[index].sum())}
        self.rounds = []
        return ppl[index], metrics


#: the verify metrics of generation 0 (the real data: nothing written, nothing verified)
GENERATION_0 = {"accepted_share": None, "verify_rounds": 0, "accepted_blocks": None}
