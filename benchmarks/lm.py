"""Throughput of the language-model chapter's pipeline, and the projected time of the chapter.

    python benchmarks/lm.py              # the pretrained stand-in (SmolLM2-135M GGUF) on this CPU
    python benchmarks/lm.py --tiny       # the tiny random-init OPT, seconds (what the tests run)
    python benchmarks/lm.py --profile paper --blocks 64   # on a GPU: the paper profile's projection

Measures, with the code the chapter runs (collapse_utils.lm), on blocks of the chapter's text:
  * fine-tuning: tokens/s (AdamW steps of ``batch`` 64-token blocks);
  * evaluation (per-block loss, forward only): tokens/s;
  * decoding 64 new tokens per prompt: our 5-way beam search against transformers'
    ``generate`` with the same settings on the same prompts (and checks they agree), greedy
    decoding and nucleus sampling: new tokens/s;
  * the projected time of the whole chapter at ``--profile`` (every run of book/lm.ipynb,
    shared runs and generation-0 fits counted once: ``lm.chapter_workload``).
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


class Timer:
    """Wall and CPU seconds of a block; ``idle`` = CPU seconds / threads."""

    def __init__(self, threads: int):
        self.threads = threads

    def __enter__(self):
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.w
        self.idle = min(self.wall, (time.process_time() - self.c) / self.threads)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="the tiny backend (a pipeline check)")
    p.add_argument("--profile", default="default", choices=("smoke", "default", "paper"),
                   help="the chapter profile to project (default: default)")
    p.add_argument("--blocks", type=int, default=4, help="prompts per decoding measurement")
    p.add_argument("--steps", type=int, default=2, help="timed fine-tuning steps")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: every core)")
    p.add_argument("--json", action="store_true", help="print a JSON line of the results last")
    args = p.parse_args(argv)

    import torch

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from collapse_utils import lm
    from collapse_utils.experiments import resolve_settings

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = args.threads or (1 if args.tiny else cores)
    torch.set_num_threads(threads)
    s = resolve_settings("lm", args.profile, {"backend": "tiny" if args.tiny else "stand-in"})
    load_avg = [round(x, 2) for x in os.getloadavg()]
    with Timer(threads) as t_load:
        backend = lm.load_backend(s)
    model, tok = backend.base, backend.tokenizer
    eos, pad = tok.eos_token_id, tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    blocks = backend.blocks["train"]
    batch = s["batch_size"] if not torch.cuda.is_available() else min(128, len(blocks))
    T = s["block_size"]
    res = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else
           f"CPU ({threads} threads)", "model": backend.model_name, "n_params": backend.n_params,
           "load_avg_before": load_avg, "backend_load_s": round(t_load.wall, 1)}

    # ---------------------------------------------------------------- fine-tuning steps
    opt = torch.optim.AdamW(model.parameters(), lr=1e-12)   # timing only: weights barely move
    model.train()
    x_all = torch.as_tensor(np.asarray(blocks[: batch * (args.steps + 1)], dtype=np.int64))

    def step(i):
        x = x_all[i * batch:(i + 1) * batch]
        model(input_ids=x, labels=x).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step(0)  # warm-up (allocates the optimiser state)
    with Timer(threads) as t:
        for i in range(1, args.steps + 1):
            step(i)
    model.eval()
    n_tok = args.steps * batch * T
    res.update(train_batch=batch, train_tokens_per_s=round(n_tok / t.wall, 1),
               train_tokens_per_s_idle=round(n_tok / t.idle, 1))

    # ---------------------------------------------------------------- evaluation
    ev = blocks[: 4 * batch]
    with Timer(threads) as t:
        lm.sequence_losses(model, ev, batch_size=s["eval_batch"])
    res.update(eval_tokens_per_s=round(ev.size / t.wall, 1), eval_tokens_per_s_idle=round(ev.size / t.idle, 1))

    # ---------------------------------------------------------------- decoding
    prompts = blocks[-args.blocks:]
    kw = dict(new_tokens=s["new_tokens"], beams=s["beams"], eos_token_id=eos, pad_token_id=pad,
              batch_size=args.blocks)
    outs = {}
    for name, extra in [("beam", {}), ("hf_generate", {"engine": "hf"}),
                        ("greedy", {"decoding": "greedy"}), ("nucleus", {"decoding": "nucleus"})]:
        with Timer(threads) as t:
            outs[name] = lm.generate_continuations(model, prompts, **kw, **extra)
        new = outs[name].size
        res[f"{name}_new_tokens_per_s"] = round(new / t.wall, 1)
        res[f"{name}_new_tokens_per_s_idle"] = round(new / t.idle, 1)
    res["beam_equals_hf_generate"] = bool((outs["beam"] == outs["hf_generate"]).all())

    # ---------------------------------------------------------------- the chapter's projection
    work = lm.chapter_workload(args.profile)
    tps_train, tps_eval = res["train_tokens_per_s_idle"], res["eval_tokens_per_s_idle"]
    parts = {"load": t_load.idle, "fine-tune": work["train_block_epochs"] * T / tps_train,
             "evaluate": work["eval_blocks"] * T / tps_eval}
    for d, n in work["decoded_blocks"].items():
        parts[f"decode ({d})"] = n * s["new_tokens"] / res[f"{d}_new_tokens_per_s_idle"]
    res.update(workload=work, projected_chapter_parts_s={k: round(v, 1) for k, v in parts.items()},
               projected_chapter_s=round(sum(parts.values()), 1), profile=args.profile,
               load_avg_after=[round(x, 2) for x in os.getloadavg()], torch=torch.__version__)

    print(f"device         {res['device']}; {backend.model_name}, {backend.n_params / 1e6:.1f} M parameters")
    print(f"machine load   {load_avg} before, {res['load_avg_after']} after (1/5/15-min averages)")
    print("               (busy machine: 'idle' = CPU seconds / threads, the speed on its own)")
    print(f"fine-tuning    {res['train_tokens_per_s']:,.0f} tokens/s (idle {tps_train:,.0f}), "
          f"batch {batch} x {T}")
    print(f"evaluation     {res['eval_tokens_per_s']:,.0f} tokens/s (idle {tps_eval:,.0f})")
    for name in ("beam", "hf_generate", "greedy", "nucleus"):
        print(f"{name:14s} {res[f'{name}_new_tokens_per_s']:,.1f} new tokens/s "
              f"(idle {res[f'{name}_new_tokens_per_s_idle']:,.1f}), {args.blocks} prompts")
    print(f"beam == generate: {res['beam_equals_hf_generate']}")
    detail = ", ".join(f"{k} {v:,.0f} s" for k, v in parts.items())
    print(f"chapter at {args.profile}: {work['runs']} runs, projected {res['projected_chapter_s'] / 60:.1f} "
          f"min on an idle machine ({detail})")
    if args.json:
        print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
