"""Throughput of the language-model chapter's pipeline, and the projected time of one
paper-profile generation.

    python benchmarks/lm.py            # OPT-125m's architecture (random weights), GPU if present
    python benchmarks/lm.py --tiny     # a tiny OPT, seconds on a CPU (what the tests run)
    python benchmarks/lm.py --compile  # torch.compile the training step's model

Measures, with the code the chapter runs (collapse_utils.lm):
  * fine-tuning: tokens/s and model FLOP utilisation (MFU) against the GPU's dense bf16
    peak, counting 6 N FLOPs per token for the N weights of the matrix multiplies
    (lm_head included) plus 12 L d T for attention (Kaplan et al. 2020; PaLM appendix B);
  * beam search (5 beams, exactly 64 new tokens per 64-token prompt): new tokens/s;
  * evaluation (per-block loss, forward only): tokens/s;
  * the projected wall time of one paper-profile generation: 5 epochs (setting b) or
    10 (setting c) over wikitext-2 train, a validation pass per epoch, regenerating
    every training block, test perplexity and scoring the new blocks with the
    generation-0 model.
Target (issue 5): under 10 minutes per generation on one H100, training at >= 40% MFU.
Random weights are fine for timing: the cost does not depend on the values.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

# Dense bf16 peak (TFLOP/s, no sparsity) of common GPUs, by a substring of the device name.
BF16_PEAK_TFLOPS = {"H200": 989.0, "H100 SXM": 989.0, "H100 PCIe": 756.0, "H100 NVL": 835.0,
                    "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10G": 70.0,
                    "T4": 65.0, "V100": 125.0, "RTX 4090": 165.0}


def opt125m_config(tiny: bool):
    from transformers import OPTConfig

    if tiny:
        return OPTConfig(vocab_size=1024, hidden_size=64, word_embed_proj_dim=64, num_hidden_layers=2,
                         num_attention_heads=4, ffn_dim=256, max_position_embeddings=256,
                         do_layer_norm_before=True, bos_token_id=0, eos_token_id=0, pad_token_id=1)
    # facebook/opt-125m's config.json
    return OPTConfig(vocab_size=50272, hidden_size=768, word_embed_proj_dim=768, num_hidden_layers=12,
                     num_attention_heads=12, ffn_dim=3072, max_position_embeddings=2048,
                     do_layer_norm_before=True, dropout=0.1, attention_dropout=0.0,
                     bos_token_id=2, eos_token_id=2, pad_token_id=1)


def flops_per_token(config, seq: int = 64) -> tuple[float, int]:
    """Training FLOPs per token (6 N + 12 L d T) and N, the weights of the matmuls incl. lm_head."""
    d, L, f, V = config.hidden_size, config.num_hidden_layers, config.ffn_dim, config.vocab_size
    n_matmul = L * (4 * d * d + 2 * d * f) + V * d
    return 6.0 * n_matmul + 12.0 * L * d * seq, n_matmul


def peak_tflops(device_name: str) -> float | None:
    for key, value in BF16_PEAK_TFLOPS.items():
        if key.lower() in device_name.lower():
            return value
    return None


def real_block_counts():
    """Block counts of wikitext-2 with OPT's tokenizer when both are cached (no network)."""
    from collapse_utils import lm

    try:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

        backend = lm.load_hub_backend({**lm.LM_SETTINGS["paper"]})
        return {k: int(len(v)) for k, v in backend.blocks.items()}, "measured with OPT's tokenizer"
    except Exception as err:  # noqa: BLE001
        return dict(lm.WIKITEXT2_BLOCKS), f"assumed (wikitext-2 or OPT not on disk: {type(err).__name__})"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="tiny OPT, CPU-sized batches")
    p.add_argument("--compile", action="store_true", help="torch.compile the model for training")
    p.add_argument("--batch", type=int, default=None, help="training batch (blocks); default 128")
    p.add_argument("--gen-batch", type=int, default=None, help="prompts per beam search call")
    p.add_argument("--steps", type=int, default=None, help="timed training steps")
    p.add_argument("--json", action="store_true", help="print a JSON line of the results last")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    args = p.parse_args(argv)

    import torch

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from collapse_utils import lm
    from transformers import OPTForCausalLM

    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    device_name = torch.cuda.get_device_name(0) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    tiny = args.tiny
    batch = args.batch or (16 if tiny else 128)
    gen_batch = args.gen_batch or (16 if tiny else 512)
    steps = args.steps or (4 if tiny else 30)
    warmup = 1 if tiny else 5
    T = 64
    config = opt125m_config(tiny)
    torch.manual_seed(0)
    model = OPTForCausalLM(config).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    fpt, n_matmul = flops_per_token(config, T)
    V = config.vocab_size
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    # ---------------------------------------------------------------- fine-tuning step
    train_model = torch.compile(model) if args.compile else model
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01, fused=cuda)
    data = torch.randint(3, V, (batch * (steps + warmup), T), device=device)
    model.train()

    def step(i):
        x = data[i * batch:(i + 1) * batch]
        with lm._autocast():
            loss = train_model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for i in range(warmup):
        step(i)
    sync()
    t0 = time.perf_counter()
    for i in range(warmup, warmup + steps):
        step(i)
    sync()
    train_s = time.perf_counter() - t0
    train_tps = batch * T * steps / train_s
    peak = peak_tflops(device_name) if cuda else None
    mfu = train_tps * fpt / (peak * 1e12) if peak else None

    # ---------------------------------------------------------------- evaluation (forward)
    model.eval()
    eval_blocks = np.random.default_rng(0).integers(3, V, (batch * (2 if tiny else 8), T))
    lm.sequence_losses(model, eval_blocks[:batch], batch_size=4 * batch)  # warm-up
    sync()
    t0 = time.perf_counter()
    lm.sequence_losses(model, eval_blocks, batch_size=4 * batch)
    sync()
    eval_tps = eval_blocks.size / (time.perf_counter() - t0)

    # ---------------------------------------------------------------- beam search
    prompts = np.random.default_rng(1).integers(3, V, (gen_batch, T)).astype(np.int64)
    lm.generate_continuations(model, prompts[: max(1, gen_batch // 8)], batch_size=gen_batch,
                              eos_token_id=config.eos_token_id)  # warm-up
    sync()
    t0 = time.perf_counter()
    out = lm.generate_continuations(model, prompts, batch_size=gen_batch,
                                    eos_token_id=config.eos_token_id)
    sync()
    gen_s = time.perf_counter() - t0
    assert out.shape == (gen_batch, 64)
    gen_tps = gen_batch * 64 / gen_s

    # ---------------------------------------------------------------- projection
    blocks, source = real_block_counts()
    projection = {}
    for regime, epochs in (("replace", 5), ("keep-real", 10)):
        n_train = blocks["train"]
        parts = {
            "fine-tune": epochs * n_train * T / train_tps,
            "validation per epoch": epochs * blocks["validation"] * T / eval_tps,
            "beam search": (n_train if regime == "replace" else 0.9 * n_train) * 64 / gen_tps,
            "test + gen-0 scoring": (blocks["test"] + n_train) * T / eval_tps,
        }
        projection[regime] = {**{k: round(v, 2) for k, v in parts.items()},
                              "total_s": round(sum(parts.values()), 2)}

    result = {
        "device": device_name, "config": "tiny OPT" if tiny else "OPT-125m architecture",
        "parameters": n_params, "matmul_parameters": n_matmul, "flops_per_token": fpt,
        "train_batch": batch, "train_tokens_per_s": round(train_tps, 1),
        "train_tflops": round(train_tps * fpt / 1e12, 4),
        "bf16_peak_tflops": peak, "mfu": None if mfu is None else round(mfu, 4),
        "eval_tokens_per_s": round(eval_tps, 1),
        "gen_batch": gen_batch, "generate_new_tokens_per_s": round(gen_tps, 1),
        "blocks": blocks, "blocks_source": source,
        "projection_s": projection, "projected_generation_s": projection["replace"]["total_s"],
        "compile": args.compile, "torch": torch.__version__,
    }
    print(f"device            {device_name}   ({result['config']}, {n_params / 1e6:.2f} M parameters)")
    print(f"fine-tuning       {train_tps:,.0f} tokens/s  batch {batch}x{T}  "
          f"{result['train_tflops']:.3f} TFLOP/s  MFU "
          + (f"{mfu:.1%} of {peak:.0f} TFLOP/s bf16" if mfu is not None else "n/a (no GPU peak)"))
    print(f"evaluation        {eval_tps:,.0f} tokens/s (forward only)")
    print(f"beam search       {gen_tps:,.0f} new tokens/s  (5 beams, 64 new tokens, {gen_batch} prompts)")
    print(f"blocks            {blocks} ({source})")
    for regime, parts in projection.items():
        detail = ", ".join(f"{k} {v:,.0f} s" for k, v in parts.items() if k != "total_s")
        print(f"one generation    {regime:9s} {parts['total_s'] / 60:,.1f} min  ({detail})")
    if not tiny:
        ok = projection["replace"]["total_s"] < 600 and (mfu or 0) >= 0.4
        print(f"target            < 10 min per generation and >= 40% MFU: {'met' if ok else 'NOT met'}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
