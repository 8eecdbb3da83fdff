"""Writing the next data set: exactly ``new_tokens`` new tokens for every prompt block.

The paper's decoding is 5-way beam search with ``min_new_tokens = max_new_tokens = 64``
(the public code hard-codes ``repetition_penalty=3.0`` on top).  :func:`beam_search`
is that search, vectorised over prompts and beams; greedy decoding is its one-beam
case; :func:`nucleus_sample` draws instead (top-p sampling, Holtzman et al. 2020).
:func:`generate_continuations` runs any of them in batches, and ``engine="hf"`` runs
transformers' ``generate`` with the same settings (the tests check they agree).
"""
from __future__ import annotations

import math

import numpy as np

from ..precision import run_in_batches
from .backends import autocast, gather_rows, shard

DECODINGS = ("beam", "greedy", "nucleus")


def _penalise(scores, seqs, penalty: float):
    """CTRL's repetition penalty (Keskar et al. 2019) on every token already in the sequence
    (prompt included, as in the public code): a negative score is multiplied, a positive one
    divided by ``penalty``."""
    if penalty == 1.0:
        return scores
    import torch

    seen = scores.gather(1, seqs)
    return scores.scatter(1, seqs, torch.where(seen < 0, seen * penalty, seen / penalty))


def cache_keyword(model) -> str:
    """The name of the key/value cache, as the model's ``forward`` keyword and its output's
    field: ``cache`` where the model takes it (transformers 5.25 renamed ``past_key_values``,
    warns on the old name and drops it in 5.40), else ``past_key_values`` (4.56 to 5.24)."""
    import inspect

    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):  # no signature to read: the old name, which every version took
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


def _first_step(model, prompts, repeat: int, key: str):
    """Logits of the last prompt position and the key/value cache, each row repeated."""
    out = model(input_ids=prompts, use_cache=True, logits_to_keep=1)
    cache = getattr(out, key)
    if cache is None:
        raise RuntimeError(f"{type(model).__name__} returned no key/value cache ({key})")
    if repeat > 1:
        cache.batch_repeat_interleave(repeat)
    return out.logits[:, -1].float().repeat_interleave(repeat, 0), cache


def _next_logits(model, token, cache, position: int, key: str):
    import torch

    pos = torch.full((token.shape[0], 1), position, device=token.device, dtype=torch.long)
    out = model(input_ids=token, **{key: cache}, use_cache=True, position_ids=pos,
                logits_to_keep=1)
    return out.logits[:, -1].float()


def beam_search(model, prompts, *, beams: int = 5, new_tokens: int = 64,
                repetition_penalty: float = 1.0, eos_token_id: int = 2):
    """Beam search for exactly ``new_tokens`` tokens; returns a (B, new_tokens) long tensor.

    ``prompts`` is a (B, L) long tensor (same length, no padding).  The search of
    transformers' ``generate(num_beams=beams, min_new_tokens=max_new_tokens=new_tokens)``:
    per step, log-softmax of the fp32 logits, the repetition penalty on the
    log-probabilities, end-of-sequence masked (no sequence may end early), and the
    ``beams`` best of the ``beams x vocab`` continuations of every prompt kept.  As no
    beam finishes early, every hypothesis has the same length and the best final beam is
    the highest-scoring one.  No value is read back to the host inside the loop.
    ``beams=1`` is greedy decoding.
    """
    import torch

    B, L = prompts.shape
    K = beams
    key = cache_keyword(model)
    logits, cache = _first_step(model, prompts, K, key)
    seqs = prompts.repeat_interleave(K, 0)
    scores = torch.full((B, K), -1.0e9, device=prompts.device)
    scores[:, 0] = 0.0
    offset = (torch.arange(B, device=prompts.device) * K).view(B, 1)
    for t in range(new_tokens):
        logp = _penalise(torch.log_softmax(logits, dim=-1), seqs, repetition_penalty)
        logp[:, eos_token_id] = -math.inf
        V = logp.shape[-1]
        cand = (scores.view(B * K, 1) + logp).view(B, K * V)
        scores, index = cand.topk(K, dim=1)
        src = (offset + torch.div(index, V, rounding_mode="floor")).view(-1)
        token = (index % V).view(-1, 1)
        seqs = torch.cat([seqs.index_select(0, src), token], dim=1)
        if t + 1 < new_tokens:
            if K > 1:
                cache.reorder_cache(src)
            logits = _next_logits(model, token, cache, L + t, key)
    return seqs.view(B, K, -1)[:, 0, L:]  # topk sorts: beam 0 has the highest score


def nucleus_sample(model, prompts, *, new_tokens: int = 64, top_p: float = 0.9,
                   repetition_penalty: float = 1.0, eos_token_id: int = 2, generator=None):
    """Top-p sampling (temperature 1) of exactly ``new_tokens`` tokens per prompt.

    Per step: the repetition penalty on the logits, end-of-sequence masked, the
    smallest set of tokens whose probability reaches ``top_p`` kept, one token drawn
    (from the torch ``generator``, so a run is reproducible).
    """
    import torch

    B, L = prompts.shape
    key = cache_keyword(model)
    logits, cache = _first_step(model, prompts, 1, key)
    seqs = prompts
    for t in range(new_tokens):
        logits = _penalise(logits, seqs, repetition_penalty)
        logits[:, eos_token_id] = -math.inf
        probs = torch.softmax(logits, dim=-1)
        sorted_p, order = probs.sort(dim=-1, descending=True)
        drop = sorted_p.cumsum(-1) - sorted_p >= top_p   # tokens after the nucleus is full
        sorted_p = sorted_p.masked_fill(drop, 0.0)
        pick = torch.multinomial(sorted_p, 1, generator=generator)
        token = order.gather(1, pick)
        seqs = torch.cat([seqs, token], dim=1)
        if t + 1 < new_tokens:
            logits = _next_logits(model, token, cache, L + t, key)
    return seqs[:, L:]


def _hf_generate(model, x, *, decoding, beams, new_tokens, repetition_penalty, eos_token_id,
                 pad_token_id, top_p):
    import torch
    from transformers import GenerationConfig

    config = GenerationConfig(
        num_beams=beams if decoding == "beam" else 1, do_sample=decoding == "nucleus",
        **({"top_p": top_p, "top_k": 0} if decoding == "nucleus" else {}), min_new_tokens=new_tokens,
        max_new_tokens=new_tokens, early_stopping=False, length_penalty=1.0,
        repetition_penalty=None if repetition_penalty == 1.0 else float(repetition_penalty),
        num_return_sequences=1, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
        use_cache=True)
    return model.generate(input_ids=x, attention_mask=torch.ones_like(x),
                          generation_config=config)[:, x.shape[1]:]


def decode_bytes(shape: dict, prec: str, *, beams: int = 5, new_tokens: int = 64) -> float:
    """Bytes per prompt of :func:`generate_continuations`, the rule of the batch plan: per beam
    the key/value cache of every layer at its full length (prompt and new tokens), twice (the
    beams' reordering copies it), and per step the logits in the autocast dtype plus four fp32
    copies of vocabulary size (upcast, log-softmax, penalised scores, candidates), all of
    ``shape`` (:func:`~.train.shape_of`)."""
    b = 4 if prec == "fp32" else 2
    cache = 2 * 2 * shape["layers"] * (shape["tokens"] + new_tokens) * shape["width"] * b
    return max(1, beams) * (cache + shape["vocab"] * (b + 16))


def generate_continuations(model, prompts: np.ndarray, *, decoding: str = "beam", beams: int = 5,
                           new_tokens: int = 64, repetition_penalty: float = 1.0,
                           top_p: float = 0.9, batch_size: int = 256, eos_token_id: int = 2,
                           pad_token_id: int = 1, seed: int = 0, engine: str = "ours",
                           progress: bool = False) -> np.ndarray:
    """The ``new_tokens`` tokens that ``decoding`` appends to each prompt (all of one length,
    so no padding): an (n, new_tokens) array of the prompts' dtype.

    ``decoding`` is ``beam`` (``beams``-way beam search), ``greedy`` or ``nucleus``
    (top-p sampling from one torch generator seeded by ``seed``).  End-of-sequence is masked until
    the last step, so exactly ``new_tokens`` come out for every prompt.  ``engine="hf"``
    calls transformers' ``generate`` with the same settings instead.  A batch that runs out
    of GPU memory is halved (:func:`~collapse_utils.precision.run_in_batches`): beam search
    and greedy decoding continue a block alike in any batch.
    """
    import torch

    from ..loop import progress_bar

    if decoding not in DECODINGS:
        raise ValueError(f"decoding must be one of {', '.join(DECODINGS)}; got {decoding!r}")
    if engine not in ("ours", "hf"):
        raise ValueError(f"engine must be one of ours, hf; got {engine!r}")
    device = next(model.parameters()).device
    n = len(prompts)
    sl, per = shard(n)
    local_prompts = torch.as_tensor(np.asarray(prompts[sl], dtype=np.int64), device=device)
    generator = torch.Generator(device=device).manual_seed(int(seed))

    def decode(start, stop):
        x = local_prompts[start:stop]
        if engine == "hf":
            return _hf_generate(model, x, decoding=decoding, beams=beams, new_tokens=new_tokens,
                                repetition_penalty=repetition_penalty, top_p=top_p,
                                eos_token_id=eos_token_id, pad_token_id=pad_token_id)
        if decoding == "nucleus":
            return nucleus_sample(model, x, new_tokens=new_tokens, top_p=top_p,
                                  repetition_penalty=repetition_penalty,
                                  eos_token_id=eos_token_id, generator=generator)
        return beam_search(model, x, beams=beams if decoding == "beam" else 1,
                           new_tokens=new_tokens, repetition_penalty=repetition_penalty,
                           eos_token_id=eos_token_id)

    bar = progress_bar(total=len(local_prompts), desc=decoding, unit="prompt", leave=False,
                       disable=not progress)
    with torch.inference_mode(), autocast(device):
        out, _ = run_in_batches(len(local_prompts), batch_size, decode, on_batch=bar.update)
    bar.close()
    local = torch.cat(out) if out else torch.zeros((0, new_tokens), dtype=torch.long, device=device)
    result = gather_rows(local, n, per).cpu().numpy()
    if result.shape != (n, new_tokens):
        raise RuntimeError(f"decoding returned shape {result.shape}, expected {(n, new_tokens)}")
    return result.astype(prompts.dtype)
