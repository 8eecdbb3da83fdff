"""Writing the next data set: exactly ``new_tokens`` new tokens for every prompt block.

The paper's decoding is 5-way beam search with ``min_new_tokens = max_new_tokens = 64``
(the public code hard-codes ``repetition_penalty=3.0`` on top).  :func:`beam_search`
is that search, vectorised over prompts and beams; greedy decoding is its one-beam
case; :func:`nucleus_sample` draws instead (top-p sampling, Holtzman et al. 2020).
:func:`generate_continuations` runs any of them in batches, and ``engine="hf"`` runs
transformers' ``generate`` with the same settings (the tests check they agree).
"""
from __future__ import annotations

import contextlib
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


def _first_step(model, prompts, repeat: int, key: str, new_tokens: int = 0):
    """Logits of the last prompt position and the key/value cache, each row repeated; with
    ``new_tokens``, every layer of the cache holds room for that many more positions
    (:class:`BeamLayer`)."""
    out = model(input_ids=prompts, use_cache=True, logits_to_keep=1)
    cache = getattr(out, key)
    if cache is None:
        raise RuntimeError(f"{type(model).__name__} returned no key/value cache ({key})")
    if repeat > 1:
        cache.batch_repeat_interleave(repeat)
    if new_tokens and hasattr(cache, "layers"):
        cache.layers = [BeamLayer.of(layer, new_tokens) for layer in cache.layers]
    return out.logits[:, -1].float().repeat_interleave(repeat, 0), cache


def _beam_layer_class():
    from transformers.cache_utils import DynamicLayer

    class _BeamLayer(DynamicLayer):
        """A key/value cache layer for beam search with room for every new token: a step writes
        its position in place (no copy of the cache, as ``DynamicLayer``'s concatenation makes),
        and a reorder moves only the rows whose beam changed (one gather of those rows)."""

        @classmethod
        def of(cls, layer, new_tokens: int):
            initialized = getattr(layer, "is_initialized", getattr(layer, "keys", None) is not None)
            if type(layer) is not DynamicLayer or not initialized:   # older transformers: no flag
                return layer    # sliding windows, quantised or empty layers: left as they are
            keys, values = layer.keys, layer.values
            fresh = cls()
            fresh.is_initialized = True
            fresh.dtype, fresh.device = keys.dtype, keys.device
            rows, heads, n, dim = keys.shape
            fresh._k = keys.new_empty((rows, heads, n + new_tokens, dim))
            fresh._v = values.new_empty((rows, values.shape[1], n + new_tokens, values.shape[-1]))
            fresh._k[:, :, :n] = keys
            fresh._v[:, :, :n] = values
            fresh._n = n
            fresh._view()
            return fresh

        def _view(self):
            self.keys, self.values = self._k[:, :, :self._n], self._v[:, :, :self._n]

        def update(self, key_states, value_states, *args, **kwargs):
            q = key_states.shape[-2]
            if self._n + q > self._k.shape[2]:    # more than planned: grow as DynamicLayer does
                self._k = torch_cat(self._k[:, :, :self._n], key_states)
                self._v = torch_cat(self._v[:, :, :self._n], value_states)
            else:
                self._k[:, :, self._n:self._n + q] = key_states
                self._v[:, :, self._n:self._n + q] = value_states
            self._n += q
            self._view()
            return self.keys, self.values

        def reorder_cache(self, beam_idx):
            import torch

            moved = torch.nonzero(beam_idx != torch.arange(len(beam_idx), device=beam_idx.device))
            if len(moved):
                dst = moved.view(-1)
                src = beam_idx[dst]
                self._k[dst, :, :self._n] = self._k[src, :, :self._n]   # gathered, then written
                self._v[dst, :, :self._n] = self._v[src, :, :self._n]
            self._view()

    return _BeamLayer


def torch_cat(a, b):
    import torch

    return torch.cat([a, b], dim=-2)


class BeamLayer:
    """:func:`_beam_layer_class`'s layer, built on first use (transformers is imported lazily)."""

    _cls = None

    @classmethod
    def of(cls, layer, new_tokens: int):
        if cls._cls is None:
            cls._cls = _beam_layer_class()
        return cls._cls.of(layer, new_tokens)


@contextlib.contextmanager
def precast(model, prec: str):
    """Inside the block, the weights and biases of ``model``'s linear layers are held in the
    autocast dtype of ``prec`` (bf16 or fp16; nothing changes in fp32).

    Autocast casts an fp32 weight to the same 16-bit values at every call; decoding calls every
    layer once per new token on a few hundred rows, so on a CPU the casts took a quarter of the
    time.  Cast once here instead, the products are the very ones autocast computes (its input
    cast is unchanged; a test checks the tokens are equal).  A weight shared with an embedding
    (tied output layer) is swapped in the linear layer only; every weight is put back after."""
    from .. import precision

    dtype = precision.dtype(prec)
    if dtype is None:
        yield model
        return
    import torch

    swapped = []
    try:
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                for name in ("weight", "bias"):
                    p = getattr(module, name)
                    if p is not None and p.dtype == torch.float32:
                        swapped.append((module, name, p))
                        setattr(module, name, torch.nn.Parameter(p.detach().to(dtype),
                                                                 requires_grad=False))
        yield model
    finally:
        for module, name, p in reversed(swapped):
            setattr(module, name, p)


def _one_query_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None,
                         is_causal=None, **kwargs):
    """transformers' ``sdpa`` attention, except for one new token with no mask: there the heads
    that share a key/value head are packed as that head's queries, (B, H, 1, D) to
    (B, KV, H/KV, D), and attend without ``enable_gqa``.  The same products and softmax (query
    head ``h`` reads key/value head ``h // (H/KV)``, as ``repeat_kv`` pairs them); on a CPU,
    torch's kernel with ``enable_gqa`` took 4.3 times as long at the decoding shape (165 rows,
    9 query and 3 key/value heads, 128 positions, bf16; ``benchmarks/lm.py`` prints both)."""
    groups = getattr(module, "num_key_value_groups", 1)
    if (query.shape[2] == 1 and groups > 1 and attention_mask is None and not dropout
            and kwargs.get("position_bias") is None and not kwargs.get("output_attentions")):
        import torch

        b, h, _, d = query.shape
        out = torch.nn.functional.scaled_dot_product_attention(
            query.reshape(b, h // groups, groups, d), key, value, scale=scaling)
        return out.reshape(b, h, 1, d).transpose(1, 2).contiguous(), None
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                  scaling=scaling, is_causal=is_causal, **kwargs)


@contextlib.contextmanager
def packed_heads(model):
    """Inside the block, a model that runs transformers' ``sdpa`` attention runs
    :func:`_one_query_attention` instead (every other model, and transformers without an
    attention registry, as it is); the registry's entry is put back after."""
    try:
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    except ImportError:
        ALL_ATTENTION_FUNCTIONS = None
    if ALL_ATTENTION_FUNCTIONS is None or \
            getattr(model.config, "_attn_implementation", None) != "sdpa":
        yield model
        return
    local = ALL_ATTENTION_FUNCTIONS._local_mapping
    before = local.get("sdpa")
    ALL_ATTENTION_FUNCTIONS["sdpa"] = _one_query_attention
    try:
        yield model
    finally:
        if before is None:
            local.pop("sdpa", None)
        else:
            local["sdpa"] = before


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
    ``beams`` best of the ``beams x vocab`` continuations of every prompt kept (ranked among
    each beam's own ``beams`` best: the same candidates, without a ``beams x vocab`` sum; where
    two candidates score exactly the same, the order of the two top-k calls may differ from
    ``generate``'s, which is defined by neither).  As no beam finishes early, every hypothesis
    has the same length and the best final beam is the highest-scoring one.  The key/value
    cache is a :class:`BeamLayer` per layer (written in place, reordered row by row); the only
    value read back to the host inside the loop is which rows a reorder moves.
    ``beams=1`` is greedy decoding.
    """
    import torch

    B, L = prompts.shape
    K = beams
    key = cache_keyword(model)
    logits, cache = _first_step(model, prompts, K, key, new_tokens)
    seqs = prompts.repeat_interleave(K, 0)
    scores = torch.full((B, K), -1.0e9, device=prompts.device)
    scores[:, 0] = 0.0
    offset = (torch.arange(B, device=prompts.device) * K).view(B, 1)
    for t in range(new_tokens):
        logp = _penalise(torch.log_softmax(logits, dim=-1), seqs, repetition_penalty)
        logp[:, eos_token_id] = -math.inf
        # the K best of a prompt's K x V continuations are among each beam's own K best, so
        # only those K x K candidates are ranked (the same additions as over K x V)
        top, token_of = logp.topk(K, dim=1)
        cand = (scores.view(B * K, 1) + top).view(B, K * K)
        scores, index = cand.topk(K, dim=1)
        src = (offset + torch.div(index, K, rounding_mode="floor")).view(-1)
        token = token_of.view(B, K * K).gather(1, index).view(-1, 1)
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
    logits, cache = _first_step(model, prompts, 1, key, new_tokens)
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
    and greedy decoding continue a block alike in any batch.  Under 16-bit autocast the linear
    layers' weights are cast once for the whole call (:func:`precast`); ``engine="hf"`` runs
    the model as it is.
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
    from .backends import run_precision

    ours = engine == "ours"
    with torch.inference_mode(), autocast(device), \
            precast(model, run_precision(device) if ours else "fp32"), \
            (packed_heads(model) if ours else contextlib.nullcontext()):
        out, _ = run_in_batches(len(local_prompts), batch_size, decode, on_batch=bar.update)
    bar.close()
    local = torch.cat(out) if out else torch.zeros((0, new_tokens), dtype=torch.long, device=device)
    result = gather_rows(local, n, per).cpu().numpy()
    if result.shape != (n, new_tokens):
        raise RuntimeError(f"decoding returned shape {result.shape}, expected {(n, new_tokens)}")
    return result.astype(prompts.dtype)
