"""The ``vae`` experiment: its settings schema, one run, and the registration.

One run is one chain (a regime and a seed): generation 0 trains on ``n_real`` real
digits drawn from the run's ``"real"`` stream, each later generation on what the
regime gives it (:mod:`collapse_utils.regimes`).  The core sweeps the regimes and
seeds, caches each run and returns one :class:`~collapse_utils.record.Record`.
"""
from __future__ import annotations

import contextlib
import hashlib
import json

import numpy as np

from .. import precision
from ..experiments import Experiment, RunOutput, cache_root, register, source_digest
from ..loop import atomic_write_bytes, folder_lock, generation_rng, rng_for, warn
from ..regimes import REGIMES, Regime, keep_real, make_regime
from ..settings import Setting
from .data import load_mnist
from .measure import digit_reader, latent_statistics, latent_summary, make_measure, overlay_reader
from .model import count_parameters, load_vae, resolve_device, save_vae
from .train import make_fit, run_chain

#: the public notebook's std of the gen-0 encoder's latent means over five runs: its printed
#: "Gen 0..4" train on the previous model's samples, so they are this book's generations 1..5
PAPER_LATENT_STD = {1: (0.67, 0.70), 5: (0.43, 0.47)}

#: keep-real at a fixed share: "keep-real-50" keeps 50% real digits in every epoch
KEEP_SHARES = {"keep-real-25": 0.25, "keep-real-50": 0.5}
VAE_REGIMES = (*REGIMES, *KEEP_SHARES)


def real_share(regime: str, real_fraction: float) -> float:
    """The share of real digits a regime puts in every epoch after generation 0 (keep-real's)."""
    if regime == "keep-real":
        return float(real_fraction)
    return KEEP_SHARES.get(regime, 0.0)


def data_depth(share: float, generations) -> np.ndarray:
    """The mean number of VAE fits between the real digits and generation i's training data.

    Generation i trains on ``share`` real digits (depth 0) and 1 - share samples of
    generation i-1, whose data had depth d_{i-1}: d_0 = 0, d_i = (1 - share)(1 + d_{i-1}),
    so d_i = (1 - share)/share * (1 - (1 - share)^i), and d_i = i under replace (share 0).
    It tends to (1 - share)/share: 9 fits at 10% real, 1 at 50%.
    """
    i = np.asarray(generations, dtype=float)
    if share <= 0:
        return i
    return (1 - share) / share * (1 - (1 - share) ** i)


def cpu_precision(asked: str = "auto") -> str:
    """The precision a CPU run trains in: ``asked`` unless it is "auto", which gives bf16 where
    the CPU multiplies bf16 natively (oneDNN's check: AVX-512 BF16 or AMX, as the AMD EPYC of
    this book's machines) and fp32 elsewhere.  ``python benchmarks/vae.py precision`` measures
    the gain per machine: on that EPYC a training step of the chapter's network runs 1.3 to 1.8
    times as fast in bf16 autocast; without native bf16 the CPU emulates it and runs slower."""
    if asked != "auto":
        return asked
    import torch

    try:
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        native = False
    return "bf16" if native else "fp32"


def regime_for(name: str, real_fraction: float) -> Regime:
    """The core regime of a name of :data:`VAE_REGIMES`."""
    if name in KEEP_SHARES:
        return keep_real(KEEP_SHARES[name])
    return make_regime(name, real_fraction=real_fraction)


SETTINGS = {
    "regime": Setting(["replace", "keep-real", "keep-real-50"], choices=VAE_REGIMES, sweep=True,
                      help="replace is the protocol; keep-real-NN keeps NN% real digits per epoch"),
    "real_fraction": Setting(0.1, low=0.0, high=1.0,
                             help="real share of keep-real (the paper's 10% of setting (c))"),
    "seeds": Setting((2, 2, 5), low=1, help="independent chains per regime"),
    "generations": Setting((3, 5, 20), low=0, help="generation 0 trains on real digits"),
    "n_real": Setting((1024, 5000, 60000), low=1, help="real digits (at most what the source has)"),
    "epochs": Setting((1, 5, 30), low=1, help="passes over M images per generation"),
    "batch_size": Setting((64, 32, 256), low=1,
                          help="default: small batches give more optimiser steps on 5,000 digits"),
    "latent_dim": Setting(20, low=1),
    "capacity": Setting((16, 32, 64), low=1,
                        help="channels: c, then 2c (64: the paper's network; 32 draws the same picture)"),
    "lr": Setting(1e-3, low=1e-12, help="Adam"),
    "weight_decay": Setting(1e-5, low=0.0),
    "beta": Setting(1.0, low=0.0, help="weight of the KL term"),
    "latent_samples": Setting(100, low=2, help="samples encoded per generation (the protocol's 100)"),
    "class_samples": Setting((500, 1000, 1000), low=10, help="samples the digit reader reads"),
    "reader_images": Setting((2000, 2500, 10000), low=100, help="real digits the reader trains on"),
    "cpu_precision": Setting("auto", choices=("auto", "fp32", "bf16"),
                             help="auto: bf16 autocast where the CPU has native bf16, else fp32"),
    "threads": Setting((1, 1, 0), low=0, help="torch threads per run (0: torch's default)"),
    "device": Setting("auto", choices=("auto", "cpu", "cuda")),
}


def run_one(settings: dict, *, seed: int, run_dir=None, resume: bool = False, progress: bool = True,
            stop_after=None) -> RunOutput:
    """One chain of one regime and seed; see the module docstring.

    Facts: ``n_params``, ``n_real`` (digits used), ``real_latent_std`` (the generation-0
    encoder's pooled std on the real digits it was trained on, the same statistic as
    ``latent_std``), the reader's reference on held-out real digits
    (:func:`~collapse_utils.vae.measure.digit_reader`), ``real_recognisable`` (the overlay
    reader's share on them, :func:`~collapse_utils.vae.measure.overlay_reader`), and ``precision``
    and ``device`` (:func:`collapse_utils.precision.choose`; on a CPU :func:`cpu_precision`).
    """
    with torch_threads(settings["threads"]):
        return _run_one(settings, seed, run_dir, resume, progress, stop_after)


@contextlib.contextmanager
def torch_threads(n: int):
    """torch's intra-op threads set to ``n`` inside the block (0: left as they are)."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def real_digits(data, n_real: int, seed: int):
    """The ``n_real`` real digits of a chain (the run's ``"real"`` stream), (n, 1, 28, 28) uint8."""
    import torch

    pick = np.sort(rng_for(seed, "real").choice(len(data), n_real, replace=False))
    return torch.from_numpy(data.images[pick]).unsqueeze(1)


def _run_one(s, seed, run_dir, resume, progress, stop_after) -> RunOutput:
    import torch

    device = resolve_device(s["device"])
    data = load_mnist()
    n_real = min(int(s["n_real"]), len(data))
    stand_in = data.stand_in
    if n_real < s["n_real"]:
        note = f"n_real={s['n_real']} asked, {n_real} real images used"
        stand_in = f"{stand_in} ({note})" if stand_in else note
    reader, reference = digit_reader(min(int(s["reader_images"]), len(data) - 100))
    overlay, recognised = overlay_reader(min(int(s["reader_images"]), len(data) - 100))
    prec = precision.choose(device, cpu=cpu_precision(s["cpu_precision"]))
    real = real_digits(data, n_real, seed)
    fit = make_fit(latent_dim=s["latent_dim"], capacity=s["capacity"], epochs=s["epochs"],
                   batch_size=s["batch_size"], lr=s["lr"], weight_decay=s["weight_decay"],
                   beta=s["beta"], device=device, cpu_precision=prec)
    fit = shared_generation_0(fit, real, seed, generation_0_file(s, seed, real, device, prec), device)
    measure = make_measure(seed=seed, reader=reader, latent_samples=s["latent_samples"],
                           class_samples=s["class_samples"], overlay=overlay)
    result = run_chain(real, s["generations"], regime=regime_for(s["regime"], s["real_fraction"]),
                       fit=fit, measure=measure, seed=seed, device=device, run_dir=run_dir,
                       resume=resume, progress=progress, stop_after=stop_after, keep_models=(0,),
                       desc=f"VAE {s['regime']} seed {seed}")
    first = result.models[0]
    mu = latent_statistics(first, real[: s["latent_samples"]].float() / 255.0)
    facts = {"n_params": count_parameters(first), "n_real": n_real,
             "real_latent_std": latent_summary(mu)["latent_std"], **reference, **recognised,
             "precision": prec, "device": precision.describe(device, prec)}
    return RunOutput(result.generations, result.metrics, stand_in, facts)


#: the settings that generation 0 depends on (it trains on the real digits only)
GENERATION_0_SETTINGS = ("n_real", "epochs", "batch_size", "latent_dim", "capacity", "lr",
                         "weight_decay", "beta")


def generation_0_file(s: dict, seed: int, real, device: str, prec: str = "fp32"):
    """Where generation 0 of ``seed`` is kept for every regime: it is the same model in all.
    The key holds the real digits themselves (MNIST from the Hub and the offline stand-in
    differ)."""
    digits = hashlib.sha256(real.numpy().tobytes()).hexdigest()
    blob = json.dumps({"settings": {k: s[k] for k in GENERATION_0_SETTINGS}, "digits": digits,
                       "seed": seed, "device": device, "precision": prec,
                       "source": source_digest("collapse_utils.vae")},
                      sort_keys=True)
    return cache_root() / "vae" / "generation-0" / f"{hashlib.sha256(blob.encode()).hexdigest()[:16]}.pt"


def shared_generation_0(fit, real, seed: int, path, device: str):
    """``fit``, except that generation 0 (the fit to the real digits ``real``) is trained once
    and read back by the other regimes of the seed: 2 of a default chapter's 18 fits per seed.
    The loop draws each generation's randomness from its own generator, so the draws that the
    read-back skips move nothing else."""
    first = generation_rng(seed, 0).bit_generator.state

    def fit_shared(data, rng):
        if data is not real or rng.bit_generator.state != first:   # not generation 0
            return fit(data, rng)
        stats = path.with_suffix(".json")
        with folder_lock(path.parent, f"{path.name}.lock"):   # one process trains it, others wait
            if path.is_file() and stats.is_file():
                try:
                    model = load_vae(path, device)
                    model.train_stats = json.loads(stats.read_text())
                    return model
                except Exception as err:   # an empty or truncated file: train it again
                    warn(f"{path} cannot be loaded ({type(err).__name__}: {err}); "
                         f"training generation 0 again")
            model = fit(data, rng)
            save_vae(model, path)
            atomic_write_bytes(stats, json.dumps(model.train_stats).encode())
            return model

    return fit_shared


register(Experiment(
    name="vae",
    summary="conv VAE on MNIST trained on its own decoded samples (supplement); replace vs keep-real",
    settings=SETTINGS,
    run=run_one,
    parallel=True,
))
