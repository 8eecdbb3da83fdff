"""What the chapter measures: perplexities of real and generated blocks, and the text's tails.

* test perplexity, exp(mean next-token loss) over 64-token blocks (:func:`perplexity`);
* per-sequence perplexity of each generation's training blocks under the generation-0
  model, as the paper's Fig. 1b/1c histograms (:func:`perplexity_summary`);
* how much of the real text's tail the generated blocks keep (:func:`tail_measures`).
"""
from __future__ import annotations

import numpy as np

from ..precision import run_in_batches
from .backends import autocast, gather_rows, shard

#: log-spaced bin edges of the per-sequence perplexity histograms (Fig. 1b/1c)
PERPLEXITY_BIN_EDGES = np.logspace(0, 5, 61)
#: at most this many per-sequence perplexities are stored per generation
MAX_STORED_VALUES = 5000


def sequence_losses(model, blocks: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Mean next-token loss of each block (its ``block_size - 1`` predictions), float64.

    Blocks are scored on their own (no context from outside the block), in
    ``batch_size`` chunks under the backend's autocast; the losses stay on the device
    until the end (one host transfer).  A chunk that runs out of GPU memory is halved
    (:func:`~collapse_utils.precision.run_in_batches`).
    """
    import torch
    import torch.nn.functional as F

    device = next(model.parameters()).device
    n = len(blocks)
    sl, per = shard(n)
    x_all = torch.as_tensor(np.asarray(blocks[sl], dtype=np.int64), device=device)
    was_training = model.training
    model.eval()

    def losses(start, stop):
        x = x_all[start:stop]
        logits = model(input_ids=x).logits[:, :-1].float()
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1),
                               reduction="none").view(x.shape[0], -1).mean(1)

    with torch.inference_mode(), autocast(device):
        out, _ = run_in_batches(len(x_all), batch_size, losses)
    local = torch.cat(out) if out else torch.zeros(0, device=device)
    model.train(was_training)
    return gather_rows(local, n, per).double().cpu().numpy()


def eval_bytes(shape: dict, prec: str) -> float:
    """Bytes per block of :func:`sequence_losses`, the rule of the batch plan: the logits in the
    autocast dtype plus two fp32 copies of vocabulary size per token (the upcast and the loss's
    log-softmax), one layer's transient activations (16 d per token) and its attention scores
    (a T per token), all of ``shape`` (:func:`~.train.shape_of`)."""
    b = 4 if prec == "fp32" else 2
    T = shape["tokens"]
    return T * (shape["vocab"] * (b + 8) + (16 * shape["width"] + shape["heads"] * T) * b)


def perplexity(model, blocks: np.ndarray, batch_size: int = 256) -> float:
    """exp(mean token loss) over all blocks: every block has the same number of
    predictions, so the mean over tokens is the mean of the per-block means."""
    return float(np.exp(sequence_losses(model, blocks, batch_size).mean()))


def sequence_perplexities(model, blocks: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """exp(mean token loss) of each block: the per-sequence perplexity of Fig. 1b/1c."""
    return np.exp(sequence_losses(model, blocks, batch_size))


def perplexity_summary(values: np.ndarray, rng: np.random.Generator) -> dict:
    """Histogram counts over :data:`PERPLEXITY_BIN_EDGES` (overflow in the end bins), quantiles,
    and the values themselves (a random subset when there are more than MAX_STORED_VALUES)."""
    v = np.asarray(values, dtype=float)
    clipped = np.clip(v, PERPLEXITY_BIN_EDGES[0], PERPLEXITY_BIN_EDGES[-1] * (1 - 1e-12))
    counts, _ = np.histogram(clipped, PERPLEXITY_BIN_EDGES)
    stored = v if len(v) <= MAX_STORED_VALUES else rng.choice(v, MAX_STORED_VALUES, replace=False)
    q10, q50, q90 = np.quantile(v, [0.1, 0.5, 0.9])
    return {"generated_perplexity_median": float(q50), "generated_perplexity_q10": float(q10),
            "generated_perplexity_q90": float(q90), "generated_perplexity_mean": float(v.mean()),
            "generated_perplexity_hist": counts.tolist(),
            "generated_perplexity_values": np.round(stored, 4).tolist()}


def rare_token_types(real: np.ndarray, tail_mass: float = 0.1) -> np.ndarray:
    """The real data's rare tokens: the least frequent types that together make up
    ``tail_mass`` of its tokens (the types outside the most frequent 90% of the mass)."""
    counts = np.bincount(np.asarray(real, dtype=np.int64).ravel())
    types = np.flatnonzero(counts)
    order = types[np.argsort(-counts[types], kind="stable")]
    cum = np.cumsum(counts[order]) / counts.sum()
    return np.sort(order[np.searchsorted(cum, 1.0 - tail_mass, side="left") + 1:])


def _ngram_codes(blocks: np.ndarray, n: int) -> np.ndarray:
    """Each within-block n-gram as one int64 code (exact: base = max id + 1), shape (N, L-n+1)."""
    b = np.asarray(blocks, dtype=np.int64)
    base = int(b.max(initial=0)) + 1
    if base ** n >= 2**63:
        raise ValueError(f"n-grams of length {n} over {base} token ids do not fit in int64")
    codes = np.zeros((b.shape[0], b.shape[1] - n + 1), dtype=np.int64)
    for k in range(n):
        codes = codes * base + b[:, k:b.shape[1] - n + 1 + k]
    return codes


def tail_measures(blocks: np.ndarray, rare_types: np.ndarray) -> dict:
    """How much of the distribution's tail a set of blocks keeps.

    ``distinct_tokens``   number of token types used;
    ``distinct_2``        distinct bigrams / all bigrams (within blocks), Li et al.'s distinct-n;
    ``rare_coverage``     share of the real data's rare types (:func:`rare_token_types`) still used;
    ``repetition``        share of within-block 4-grams that repeat an earlier 4-gram of the
                          same block (text that loops on itself).
    """
    b = np.asarray(blocks, dtype=np.int64)
    bigrams = _ngram_codes(b, 2)
    four = np.sort(_ngram_codes(b, 4), axis=1)
    repeats = (four[:, 1:] == four[:, :-1]).sum(1) / four.shape[1]
    used = np.unique(b)
    return {
        "distinct_tokens": int(used.size),
        "distinct_2": float(np.unique(bigrams).size / bigrams.size),
        "rare_coverage": float(np.isin(rare_types, used).mean()) if len(rare_types) else float("nan"),
        "repetition": float(repeats.mean()),
    }


def distinct_share(ids) -> float:
    """Distinct tokens / tokens of one continuation: near 1 for prose, small for a loop."""
    ids = np.asarray(ids).ravel()
    return float(np.unique(ids).size / max(ids.size, 1))


def histogram_overlap(hist_a, hist_b) -> float:
    """Shared mass of two perplexity histograms (0 to 1)."""
    a, b = np.asarray(hist_a, dtype=float), np.asarray(hist_b, dtype=float)
    return float(np.minimum(a / a.sum(), b / b.sum()).sum())
