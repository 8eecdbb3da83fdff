"""Throughput of the language-model chapter's pipeline, and the projected time of the chapter.

    python benchmarks/lm.py              # the pretrained stand-in (SmolLM2-135M GGUF) on this CPU
    python benchmarks/lm.py --json       # ... and one JSON line last (gemm_gflops, precision,
                                         # finetune/decode/eval tokens per s and their shares)
    python benchmarks/lm.py --tiny       # the tiny random-init OPT, seconds (what the tests run)
    python benchmarks/lm.py --profile paper --blocks 512  # on a GPU: the paper's decoding batch
    python benchmarks/lm.py --cards      # the paper-profile generation projected on T4, L4, A100, H100

Measures, with the code the chapter runs (collapse_utils.lm), on blocks of the chapter's text:
  * fine-tuning: tokens/s (AdamW steps of ``batch`` 64-token blocks);
  * evaluation (per-block loss, forward only): tokens/s;
  * decoding 64 new tokens per prompt: our 5-way beam search against transformers'
    ``generate`` with the same settings on the same prompts (and checks they agree), greedy
    decoding and nucleus sampling: new tokens/s;
  * the projected time of the whole chapter at ``--profile`` (every run of book/lm.ipynb,
    shared runs and generation-0 fits counted once: ``lm.chapter_workload``), and of one
    paper-profile generation (all of wikitext-2's blocks, :func:`paper_generation`) at the
    measured rates;
  * the machine's matrix-product rate at the model's shapes, fp32 and bf16 (``gemm_gflops``,
    :func:`collapse_utils.lm.speed.gemm_gflops`), the precision the pipeline runs in (chosen by
    that measurement, :func:`~collapse_utils.lm.speed.choose_cpu_precision`), and each stage's
    throughput as a share of the best of those rates (``finetune_share``, ``decode_share``,
    ``eval_share``: model FLOPs per second over the matrix-product rate);
  * on a GPU: the precision that ran (``collapse_utils.precision.choose``), the batch plan, and
    fine-tuning's model FLOP utilisation (MFU) against the card's dense 16-bit peak.

``--cards`` needs no model: it counts the FLOPs of one paper-profile generation of OPT-125m
(:func:`generation_flops`) and divides by each card's peak at :data:`ASSUMED_MFU`, a projection
until a GPU measures it, and prints the batch plan each card's memory gives.
Other work on the machine slows every timing, so the load (``os.getloadavg``) is printed
beside them, and each timing also gives an idle estimate from the process's CPU time:
idle seconds = CPU seconds / threads (an upper bound on the speed of a machine of its own).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

#: the share of a card's dense 16-bit peak the projection assumes (the README's target on an H100)
ASSUMED_MFU = 0.4
#: OPT-125m's shape (facebook/opt-125m's config; 125,239,296 parameters)
OPT_125M = {"layers": 12, "width": 768, "heads": 12, "vocab": 50272, "params": 125_239_296,
            "tokens": 64}
#: usable share of a card's memory (CUDA context, ECC) and the base model on it, for the plan
USABLE_MEMORY = 0.9


def paper_generation(epochs: int = 5, beams: int = 5, new_tokens: int = 64) -> dict:
    """The work of one paper-profile generation in tokens, setting (b): fine-tuning on every
    training block for ``epochs`` epochs, the validation split after each, every training block
    continued by ``beams``-way beam search, its continuations scored under generation 0, the
    test split once (wikitext-2's block counts, ``lm.WIKITEXT2_BLOCKS``)."""
    from collapse_utils.lm import WIKITEXT2_BLOCKS as B

    T = 64
    return {"train_tokens": B["train"] * T * epochs,
            "eval_tokens": (B["validation"] * epochs + B["train"] + B["test"]) * T,
            "prompt_tokens": B["train"] * T, "new_tokens": B["train"] * new_tokens, "beams": beams}


def flops_per_token(shape: dict) -> dict:
    """Matrix-product FLOPs per token: 6 N + 12 L d T to train, 2 N + 4 L d T forward
    (Kaplan et al. 2020; PaLM's attention term), with N every parameter (the tied embedding is
    the output layer's product)."""
    n, att = shape["params"], shape["layers"] * shape["width"] * shape["tokens"]
    return {"train": 6 * n + 12 * att, "forward": 2 * n + 4 * att}


def generation_flops(shape: dict = OPT_125M) -> float:
    """FLOPs of one paper-profile generation (:func:`paper_generation`) of a model of ``shape``."""
    w, f = paper_generation(), flops_per_token(shape)
    return (w["train_tokens"] * f["train"]
            + (w["eval_tokens"] + w["prompt_tokens"] + w["new_tokens"] * w["beams"]) * f["forward"])


def card_projection(name: str, shape: dict = OPT_125M) -> dict:
    """Minutes of one paper-profile generation on card ``name`` at :data:`ASSUMED_MFU` of its
    peak, and the batches the plan gives (``lm.batch_plan`` with the card's memory free, less
    the base model): the paper's 128 blocks per step (``micro_batch`` 0) or accumulated pieces,
    and the evaluation and decoding batches."""
    from unittest import mock

    import torch

    from collapse_utils import precision
    from collapse_utils.experiments import resolve_settings
    from collapse_utils.lm.train import batch_plan

    card = precision.CARDS[name]
    free = card.memory_gb * 1e9 * USABLE_MEMORY - 4 * shape["params"]

    class Param:
        device = torch.device("cuda", 0)

        def numel(self):
            return shape["params"]

    class Model:
        config = type("Config", (), {"num_hidden_layers": shape["layers"], "hidden_size": shape["width"],
                                     "num_attention_heads": shape["heads"], "vocab_size": shape["vocab"]})

        def parameters(self):
            return iter([Param()])

    s = {**resolve_settings("lm", "paper", {"backend": "auto"}), "decoding": "beam"}   # one run
    with mock.patch("torch.cuda.get_device_capability", return_value=card.capability), \
            mock.patch("torch.cuda.mem_get_info", return_value=(int(free), int(card.memory_gb * 1e9))), \
            mock.patch("torch.cuda.memory_reserved", return_value=0), \
            mock.patch("torch.cuda.memory_allocated", return_value=0):
        plan = batch_plan(s, Model())
        prec = precision.choose(torch.device("cuda", 0))
    seconds = generation_flops(shape) / (card.peak_16bit * ASSUMED_MFU)
    return {"card": name, "precision": prec, "minutes": round(seconds / 60, 1), **plan}

class Timer:
    """Wall and CPU seconds of a block; ``idle`` = CPU seconds / threads (on a GPU, the wall
    time, measured after the queued work has finished)."""

    def __init__(self, threads: int):
        self.threads = threads

    def __enter__(self):
        _sync()
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        _sync()
        self.wall = time.perf_counter() - self.w
        if _cuda():
            self.idle = self.wall
            return
        self.idle = min(self.wall, (time.process_time() - self.c) / self.threads)


def attention_ms(config, rows: int, positions: int, dtype, repeats: int = 30) -> dict:
    """Milliseconds of one layer's attention for one new token at the decoding shape (``rows``
    beams, ``positions`` cached keys, the model's heads): torch's kernel with ``enable_gqa``
    (transformers' sdpa without a mask) against each key/value head's queries packed
    (:func:`collapse_utils.lm.generate._one_query_attention`); {} for a model without grouped
    heads."""
    import torch
    import torch.nn.functional as F

    heads = config.num_attention_heads
    kv = getattr(config, "num_key_value_heads", heads) or heads
    if kv == heads:
        return {}
    d = config.hidden_size // heads
    q = torch.randn(rows, heads, 1, d, dtype=dtype)
    k, v = (torch.randn(rows, kv, positions, d, dtype=dtype) for _ in range(2))
    ways = {"enable_gqa": lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True),
            "packed": lambda: F.scaled_dot_product_attention(
                q.reshape(rows, kv, heads // kv, d), k, v)}
    out = {}
    with torch.inference_mode():
        for name, f in ways.items():
            f()
            t = time.perf_counter()
            for _ in range(repeats):
                f()
            out[name] = round((time.perf_counter() - t) / repeats * 1e3, 3)
    return out


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _sync() -> None:
    if _cuda():
        import torch

        torch.cuda.synchronize()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="the tiny backend (a pipeline check)")
    p.add_argument("--profile", default="default", choices=("smoke", "default", "paper"),
                   help="the chapter profile to project (default: default)")
    p.add_argument("--blocks", type=int, default=33,
                   help="prompts of the beam-search measurement (default: one decoding batch of "
                        "the default profile, 32 blocks and the example)")
    p.add_argument("--compare", type=int, default=4,
                   help="prompts on which transformers' generate, greedy and nucleus are timed")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                   help="CPU precision (auto: measured, as the chapter chooses it)")
    p.add_argument("--steps", type=int, default=8,
                   help="timed fine-tuning steps (default 8: with 2 or 4 the share moves by 0.1 "
                        "from run to run)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: every core)")
    p.add_argument("--json", action="store_true", help="print a JSON line of the results last")
    p.add_argument("--cards", action="store_true",
                   help="project one paper-profile generation on T4, L4, A100 and H100 (no model)")
    args = p.parse_args(argv)
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    if args.cards:
        rows = [card_projection(name) for name in ("T4", "L4", "A100", "H100")]
        for r in rows:
            print(f"{r['card']:5s} {r['precision']}: one paper generation of OPT-125m ~ {r['minutes']:.1f} min "
                  f"at {ASSUMED_MFU:.0%} of peak; micro_batch {r['micro_batch']}, eval_batch "
                  f"{r['eval_batch']}, gen_batch {r['gen_batch']}")
        if args.json:
            print(json.dumps(rows))
        return 0

    import torch

    from collapse_utils import lm, precision
    from collapse_utils.experiments import resolve_settings

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = args.threads or (1 if args.tiny else cores)
    torch.set_num_threads(threads)
    s = resolve_settings("lm", args.profile, {"backend": "tiny" if args.tiny else "stand-in"})
    load_avg = [round(x, 2) for x in os.getloadavg()]
    with Timer(threads) as t_load:
        backend = lm.load_backend(s)
    from collapse_utils.lm import speed
    from collapse_utils.lm.experiment import run_cpu_precision

    chosen, choice = run_cpu_precision({**s, "cpu_precision": args.precision}, backend)
    with lm.backends.cpu_precision(chosen):
        return _measure(args, s, backend, threads, t_load, load_avg, choice, speed)


def _measure(args, s, backend, threads, t_load, load_avg, choice, speed) -> int:
    import torch

    from collapse_utils import lm, precision

    model, tok = backend.base, backend.tokenizer
    eos, pad = tok.eos_token_id, tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    blocks = backend.blocks["train"]
    dev = next(model.parameters()).device
    prec = lm.backends.run_precision(dev)
    plan = lm.train.batch_plan({**s, "decoding": "beam"}, model)
    batch = s["batch_size"] if not _cuda() else min(128, len(blocks))
    micro = plan["micro_batch"] or batch
    T = s["block_size"]
    res = {"device": precision.describe(dev, prec) if _cuda() else f"CPU ({threads} threads)",
           "precision": prec, "batch_plan": plan, "model": backend.model_name,
           "n_params": backend.n_params, "load_avg_before": load_avg,
           "backend_load_s": round(t_load.wall, 1)}

    # ---------------------------------------------------------------- fine-tuning steps
    opt = lm.train.optimizer(model, 1e-12, 0.01, dev)   # the chapter's AdamW; timing only
    scaler = precision.scaler(prec, dev)
    model.train()
    x_all = torch.as_tensor(np.asarray(blocks[: batch * (args.steps + 1)], dtype=np.int64), device=dev)

    def step(i):   # the fine-tuning step of lm.train, in the plan's pieces
        for x in x_all[i * batch:(i + 1) * batch].split(micro):
            with lm.backends.autocast(dev):
                loss = model(input_ids=x, labels=x).loss
            scaler.scale(loss * len(x) / batch).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)

    step(0)  # warm-up (allocates the optimiser state)
    with Timer(threads) as t:
        for i in range(1, args.steps + 1):
            step(i)
    model.eval()
    n_tok = args.steps * batch * T
    res.update(train_batch=batch, train_tokens_per_s=round(n_tok / t.wall, 1),
               train_tokens_per_s_idle=round(n_tok / t.idle, 1))
    shape = lm.train.shape_of(model, T)
    card = precision.card(dev)
    if card is not None:   # model FLOP utilisation against the card's dense 16-bit peak
        res.update(card=card.name, peak_16bit_flops=card.peak_16bit,
                   train_mfu=round(n_tok / t.wall * flops_per_token(shape)["train"] / card.peak_16bit, 4))

    # ---------------------------------------------------------------- evaluation
    ev = blocks[: 4 * batch]
    with Timer(threads) as t:
        lm.sequence_losses(model, ev, batch_size=plan["eval_batch"])
    res.update(eval_tokens_per_s=round(ev.size / t.wall, 1), eval_tokens_per_s_idle=round(ev.size / t.idle, 1))

    # ---------------------------------------------------------------- decoding
    prompts = blocks[-args.blocks:]
    kw = dict(new_tokens=s["new_tokens"], beams=s["beams"], eos_token_id=eos, pad_token_id=pad,
              batch_size=args.blocks)
    outs = {}
    few = min(args.compare, args.blocks)
    for name, extra in [("beam", {}), ("beam_few", {}), ("hf_generate", {"engine": "hf"}),
                        ("greedy", {"decoding": "greedy"}), ("nucleus", {"decoding": "nucleus"})]:
        x = prompts if name == "beam" else prompts[-few:]
        with Timer(threads) as t:
            outs[name] = lm.generate_continuations(model, x, **kw, **extra)
        new = outs[name].size
        res[f"{name}_new_tokens_per_s"] = round(new / t.wall, 1)
        res[f"{name}_new_tokens_per_s_idle"] = round(new / t.idle, 1)
    res["beam_equals_hf_generate"] = bool((outs["beam_few"] == outs["hf_generate"]).all())
    res["attention_ms"] = attention_ms(model.config, len(prompts) * s["beams"],
                                       T + s["new_tokens"], torch.bfloat16 if prec == "bf16" else
                                       torch.float16 if prec == "fp16" else torch.float32)
    res["compared_prompts"] = few

    # ---------------------------------------------------------------- shares of the machine's rate
    rows = {"train": batch * T, "eval": min(len(ev), plan["eval_batch"]) * T,
            "decode": len(prompts) * s["beams"]}
    rates = {p: {k: round(speed.gemm_gflops(model.config, p, r), 1) for k, r in rows.items()}
             for p in (("fp32", "bf16") if speed.native_bf16() else ("fp32",))}
    best = {k: max(r[k] for r in rates.values()) for k in rows}
    f = speed.flops_per_token(model.config, T)
    res.update(
        gemm_gflops=rates, gemm_rows=rows, precision_choice=choice, cpu=speed.cpu_name(),
        finetune_tokens_per_s=res["train_tokens_per_s"], eval_tokens_per_s=res["eval_tokens_per_s"],
        decode_new_tokens_per_s=res["beam_new_tokens_per_s"],
        finetune_share=round(res["train_tokens_per_s"] * f["train"] / 1e9 / best["train"], 3),
        eval_share=round(res["eval_tokens_per_s"] * f["forward"] / 1e9 / best["eval"], 3),
        # each new token is one forward step of every beam (the prompts' own pass is left out)
        decode_share=round(res["beam_new_tokens_per_s"] * s["beams"] * f["forward"] / 1e9
                           / best["decode"], 3))

    # ---------------------------------------------------------------- the chapter's projection
    work = lm.chapter_workload(args.profile)
    tps_train, tps_eval = res["train_tokens_per_s_idle"], res["eval_tokens_per_s_idle"]
    parts = {"load": t_load.idle, "fine-tune": work["train_block_epochs"] * T / tps_train,
             "evaluate": work["eval_blocks"] * T / tps_eval}
    for d, n in work["decoded_blocks"].items():
        parts[f"decode ({d})"] = n * s["new_tokens"] / res[f"{d}_new_tokens_per_s_idle"]
    g = paper_generation()
    generation = {"fine-tune": g["train_tokens"] / tps_train, "evaluate": g["eval_tokens"] / tps_eval,
                  "decode (beam)": g["new_tokens"] / res["beam_new_tokens_per_s_idle"]}
    res.update(workload=work, projected_chapter_parts_s={k: round(v, 1) for k, v in parts.items()},
               projected_chapter_s=round(sum(parts.values()), 1), profile=args.profile,
               projected_paper_generation_parts_s={k: round(v, 1) for k, v in generation.items()},
               projected_paper_generation_s=round(sum(generation.values()), 1),
               load_avg_after=[round(x, 2) for x in os.getloadavg()], torch=torch.__version__)

    print(f"device         {res['device']}; {backend.model_name}, {backend.n_params / 1e6:.1f} M parameters")
    print(f"machine load   {load_avg} before, {res['load_avg_after']} after (1/5/15-min averages)")
    print("               (busy machine: 'idle' = CPU seconds / threads, the speed on its own)")
    print(f"fine-tuning    {res['train_tokens_per_s']:,.0f} tokens/s (idle {tps_train:,.0f}), "
          f"batch {batch} x {T}, {prec}" + (f", MFU {res['train_mfu']:.1%} of the {res['card']}'s "
                                             f"16-bit peak" if "train_mfu" in res else ""))
    print(f"evaluation     {res['eval_tokens_per_s']:,.0f} tokens/s (idle {tps_eval:,.0f})")
    for name in ("beam", "beam_few", "hf_generate", "greedy", "nucleus"):
        n = args.blocks if name == "beam" else few
        print(f"{name:14s} {res[f'{name}_new_tokens_per_s']:,.1f} new tokens/s "
              f"(idle {res[f'{name}_new_tokens_per_s_idle']:,.1f}), {n} prompts")
    print(f"matrix products at the model's shapes, GFLOP/s: {rates} (rows {rows}); "
          f"precision {prec} ({choice.get('how')})")
    print(f"shares of the best rate: fine-tuning {res['finetune_share']:.0%}, evaluation "
          f"{res['eval_share']:.0%}, decoding {res['decode_share']:.0%}")
    print(f"beam == generate: {res['beam_equals_hf_generate']}")
    if res["attention_ms"]:
        a = res["attention_ms"]
        print(f"attention of one new token, one layer: {a['enable_gqa']} ms with enable_gqa, "
              f"{a['packed']} ms with packed heads (x{a['enable_gqa'] / a['packed']:.1f})")
    detail = ", ".join(f"{k} {v:,.0f} s" for k, v in parts.items())
    print(f"one paper-profile generation (all of wikitext-2's blocks): projected "
          f"{res['projected_paper_generation_s'] / 60:.1f} min at these rates")
    print(f"chapter at {args.profile}: {work['runs']} runs, projected {res['projected_chapter_s'] / 60:.1f} "
          f"min on an idle machine ({detail})")
    if args.json:
        print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
