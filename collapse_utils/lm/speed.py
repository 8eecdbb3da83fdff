"""How fast this machine multiplies matrices at the model's shapes, and the CPU precision chosen
from it.

A CPU with native bf16 (AVX-512 BF16 or AMX) runs bf16 matrix products 2 to 3 times as fast as
fp32 ones; one without emulates bf16 and runs it slower.  Machines of one cloud type differ, so
the precision is not a flag a reader must know: :func:`choose_cpu_precision` times the model's
own matrix products (:func:`gemm_gflops`) in fp32 and under bf16 autocast once per machine,
keeps the faster, and remembers the answer in the run cache (``lm/precision-*.json``), so that
every later run on the machine, and every generation-0 model it shares, runs in the same one.
The record says which precision ran (``precision`` and ``precision_choice`` in its facts).
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import time

#: bf16 must be at least this much faster to be chosen (the timing's noise on a shared CPU)
BF16_MARGIN = 1.15
#: rows of the timed products: a fine-tuning step's tokens (4 blocks of 64) and a decoding step
#: (33 prompts x 5 beams)
TIMED_ROWS = (256, 165)


def linear_shapes(config) -> list[tuple[int, int, int]]:
    """(in, out, times) of every matrix product a token goes through in a causal LM of
    ``config``: per layer the attention's query, key, value and output projections and the
    MLP's (two or three) products, then the output layer (vocabulary)."""
    d = config.hidden_size
    heads = config.num_attention_heads
    kv = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or d // heads
    ffn = getattr(config, "intermediate_size", None) or getattr(config, "ffn_dim", 4 * d)
    gated = hasattr(config, "intermediate_size")        # Llama's SwiGLU: gate, up, down
    layers = config.num_hidden_layers
    per_layer = [(d, heads * head_dim), (d, kv * head_dim), (d, kv * head_dim),
                 (heads * head_dim, d), (d, ffn), (ffn, d)] + ([(d, ffn)] if gated else [])
    return [(i, o, layers) for i, o in per_layer] + [(d, config.vocab_size, 1)]


def flops_per_token(config, tokens: int = 64) -> dict:
    """Matrix-product FLOPs per token of :func:`linear_shapes`, forward (2 per weight) and
    training (6 per weight), plus attention's scores and mixing over ``tokens`` positions
    (4 L d T forward, 12 L d T training; Kaplan et al. 2020)."""
    weights = sum(i * o * n for i, o, n in linear_shapes(config))
    att = config.num_hidden_layers * config.hidden_size * tokens
    return {"forward": 2 * weights + 4 * att, "train": 6 * weights + 12 * att}


def gemm_gflops(config, precision: str, rows: int = 256, seconds: float = 0.6) -> float:
    """GFLOP/s of the model's matrix products (:func:`linear_shapes`, each weighted by how often
    a token meets it) on ``rows`` rows in ``precision`` (fp32 or bf16 operands; autocast casts
    the weights once per context, so the products themselves are what it runs), on this
    process's torch threads: the best of repeated passes over ``seconds``.  The rate the
    pipeline's shares are measured against."""
    import torch
    import torch.nn.functional as F

    dtype = torch.float32 if precision == "fp32" else torch.bfloat16
    gen = torch.Generator().manual_seed(0)
    shapes = linear_shapes(config)
    x = {i: torch.randn(rows, i, generator=gen).to(dtype) for i, _, _ in shapes}
    w = [((torch.randn(o, i, generator=gen) * i ** -0.5).to(dtype), i, n) for i, o, n in shapes]
    total = sum(2 * rows * t.shape[0] * i * n for t, i, n in w)

    def once() -> float:
        spent = 0.0
        for t, i, n in w:   # each shape timed once, counted n times
            s = time.perf_counter()
            F.linear(x[i], t)
            spent += (time.perf_counter() - s) * n
        return spent

    with torch.inference_mode():
        once()   # warm-up: oneDNN builds its kernels on the first call
        best, deadline = float("inf"), time.perf_counter() + seconds
        while time.perf_counter() < deadline or best == float("inf"):
            best = min(best, once())
    return total / best / 1e9


def native_bf16() -> bool:
    """Whether oneDNN multiplies bf16 natively on this CPU (AVX-512 BF16 or AMX)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else the platform's processor string."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memo_path(config, threads: int):
    import torch

    from ..experiments import cache_root

    key = json.dumps({"cpu": cpu_name(), "flags": native_bf16(), "torch": torch.__version__,
                      "threads": threads, "shapes": linear_shapes(config)}, sort_keys=True)
    return cache_root() / "lm" / f"precision-{hashlib.sha256(key.encode()).hexdigest()[:12]}.json"


def measure_precisions(config) -> dict:
    """GFLOP/s in fp32 and bf16 at each of :data:`TIMED_ROWS` (bf16 only where it is native),
    and the precision whose slower shape is faster."""
    rates = {p: [round(gemm_gflops(config, p, rows), 1) for rows in TIMED_ROWS]
             for p in (("fp32", "bf16") if native_bf16() else ("fp32",))}
    bf16 = rates.get("bf16")
    choice = "bf16" if bf16 and min(bf16) >= BF16_MARGIN * min(rates["fp32"]) else "fp32"
    return {"precision": choice, "gflops": rates, "rows": list(TIMED_ROWS), "cpu": cpu_name()}


#: how an ``auto`` precision was chosen: the same words whether this run measured it or read
#: an earlier run's measurement, so that every run of a record shares the fact
MEASURED = "measured on this machine (once, remembered in the run cache)"


def choose_cpu_precision(asked: str, config) -> tuple[str, dict]:
    """(the CPU precision to run, how it was chosen).  ``asked`` fp32 or bf16 is taken as it
    is; ``auto`` is :func:`measure_precisions` on this machine, measured once (about 5 s) and
    read back from the run cache after that, the same answer either way."""
    import torch

    if asked != "auto":
        return asked, {"precision": asked, "how": "asked"}
    path = _memo_path(config, torch.get_num_threads())
    try:
        memo = json.loads(path.read_text())
        return memo["precision"], {**memo, "how": MEASURED}
    except (OSError, ValueError, KeyError):
        pass
    memo = measure_precisions(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(memo))
    os.replace(tmp, path)
    return memo["precision"], {**memo, "how": MEASURED}
