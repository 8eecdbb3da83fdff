"""Timings of the VAE chapter: one optimiser step per model size, and one generation.

    python benchmarks/vae.py [--device auto|cpu|cuda] [--threads N]

Prints wall and CPU seconds per training step (batch of real images, then a batch
of freshly decoded images, as generations >= 1 train), and the time of one
generation at each profile's sizes, extrapolated to the whole experiment.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from collapse_utils import vae
from collapse_utils.experiments import resolve_settings


def step_time(capacity: int, batch: int, device: str, steps: int = 10) -> tuple[float, float]:
    fit = vae.make_fit(capacity=capacity, epochs=1, batch_size=batch, device=device)
    real = torch.randint(0, 256, (batch * steps, 1, 28, 28), dtype=torch.uint8)
    rng = np.random.default_rng(0)
    fit(real[: batch * 2], rng)                                  # warm-up
    model = fit(real[: batch * 2], rng)
    out = []
    for data in (real, vae.DecodedStream(model, batch * steps)):
        if device == "cuda":
            torch.cuda.synchronize()
        w, c = time.perf_counter(), time.process_time()
        fit(data, rng)
        if device == "cuda":
            torch.cuda.synchronize()
        out.append(((time.perf_counter() - w) / steps, (time.process_time() - c) / steps))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    device = vae.resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device {device}, torch threads {torch.get_num_threads()}")
    for profile in ("smoke", "default", "paper"):
        s = resolve_settings("vae", profile)
        (w_real, c_real), (w_syn, c_syn) = step_time(s["capacity"], s["batch_size"], device)
        steps = -(-min(s["n_real"], 60000) // s["batch_size"]) * s["epochs"]
        fits = (s["generations"] + 1) * s["seeds"] * len(s["regimes"])
        total = fits * steps * w_syn
        print(f"{profile:<8} capacity {s['capacity']:>2} batch {s['batch_size']:>3}: "
              f"step {w_real * 1e3:7.1f} ms real / {w_syn * 1e3:7.1f} ms decoded "
              f"(cpu {c_real * 1e3:.0f} / {c_syn * 1e3:.0f} ms); "
              f"{steps} steps x {fits} fits ~ {total / 60:.1f} min of training")


if __name__ == "__main__":
    main()
