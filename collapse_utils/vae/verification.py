"""A verifier that reads digits: it helps, then stops helping (Yi, Liu, Cheng and Xu 2025).

Yi et al. ("Escaping model collapse via synthetic data verification", arXiv:2510.16657,
ICLR 2026; code liuqiyuanhhh/Verified-Synthetic-Data, ``MNIST/full_pipeline.py``) start a
conditional VAE from 500 real digits, then retrain it round after round on its own samples
that a verifier scores best (a discriminator trained once on real data; they keep a quantile
of each round's samples).  Their theory, on linear regression (:mod:`collapse_utils.linreg.
verification`), says the chain moves to the verifier's "knowledge centre": it gains while
the model knows less than the verifier, and ends where the verifier's own bias puts it.

The ``vae-verifier`` experiment is that loop on this book's (unconditional) VAE:

* generation 0 trains on ``n_real`` real digits (500, their start);
* every later generation decodes ``samples / keep`` images from the newest model, the
  verifier scores each, and the next VAE trains on the ``samples`` it scores best
  (a fixed set, as theirs; :class:`Verified`);
* the verifier is a digit reader of the book's own kind (:func:`~collapse_utils.vae.measure.
  fit_overlay_reader`: ten digit classes and an eleventh, an overlay of several digits)
  trained on ``verifier_digits`` real digits, none of them the evaluating reader's; its
  score is its probability of the most likely *digit* (:func:`verifier_score`).  How many
  digits it learned from is its quality.  ``verifier_digits = 0`` is no verifier: the next
  VAE trains on ``samples`` decoded images as they come.

What is measured (:func:`~collapse_utils.vae.measure.make_measure`, the ``vae`` chapter's
readers, trained on other real digits): ``recognisable``, the share of samples the overlay
reader reads as one digit, the quality the verifier checks; ``class_entropy``, the variety of
digits, which it does not check.  The facts give each verifier's accuracy on real digits and
``favourite_entropy``: the class entropy of the real digits it would keep at rate ``keep``
(:func:`favourite_mix`), the variety of its own taste.

Unlike theirs, the VAE here is unconditional, so nothing holds the ten classes in balance:
verification that keeps what it reads most surely also keeps the digits it reads most surely.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import precision
from ..experiments import Experiment, RunOutput, register
from ..loop import rng_for
from ..regimes import Regime
from ..settings import Setting
from .data import load_mnist
from .experiment import (
    cpu_precision, generation_0_file, real_digits, shared_generation_0, torch_threads,
)
from .measure import (
    N_CLASSES, OVERLAY, class_entropy_bits, digit_reader, fit_overlay_reader, make_measure, overlay_reader,
)
from .model import resolve_device
from .train import make_fit, run_chain


def verifier_score(reader, pixels: np.ndarray) -> np.ndarray:
    """A verifier's score of images (n, 784) in [0, 1]: its probability of the most likely digit
    (an image it reads as an overlay of digits scores low)."""
    prob = reader.predict_proba(np.asarray(pixels, dtype=np.float32))
    return np.delete(prob, OVERLAY, axis=1).max(axis=1)


def verifier_digits_index(n_data: int, reader_images: int, digits: int) -> np.ndarray:
    """Which real digits a verifier of ``digits`` learns from: the first ``digits`` of the fixed
    permutation after the ``reader_images`` the evaluating readers learn from, so the verifier
    and the readers that judge the chain never share a digit."""
    order = rng_for(0, "reference").permutation(n_data)
    rest = order[reader_images:]
    if digits > len(rest):
        raise ValueError(f"verifier_digits must be at most {len(rest)} (the real digits the readers "
                         f"do not use); got {digits}")
    return rest[:digits]


def make_verifier(digits: int, reader_images: int, seed: int = 1):
    """The verifier trained on ``digits`` real digits (:func:`verifier_digits_index`), or None
    for ``digits = 0``.  Fitted once per process."""
    if digits == 0:
        return None
    from .data import _mnist_cache_path, hub_offline

    return _verifier((str(_mnist_cache_path()), hub_offline()), int(digits), int(reader_images), seed)


@functools.lru_cache(maxsize=8)
def _verifier(key, digits: int, reader_images: int, seed: int):
    data = load_mnist()
    pick = verifier_digits_index(len(data), reader_images, digits)
    return fit_overlay_reader(data.images[pick], data.labels[pick], seed=seed)


def favourite_mix(verifier, keep: float, reader_images: int) -> dict:
    """What a verifier likes among real digits: the class histogram of the ``keep`` share of the
    evaluating reader's real digits it scores best, that histogram's entropy in bits, and the
    verifier's accuracy on those digits."""
    data = load_mnist()
    held = rng_for(0, "reference").permutation(len(data))[:reader_images]
    pixels = data.images[held].reshape(len(held), -1) / 255.0
    labels = data.labels[held]
    prob = verifier.predict_proba(pixels.astype(np.float32))
    score = np.delete(prob, OVERLAY, axis=1).max(axis=1)
    top = np.argsort(-score, kind="stable")[: max(1, int(round(keep * len(held))))]
    hist = np.bincount(labels[top], minlength=N_CLASSES)
    return {"favourite_hist": hist.tolist(), "favourite_entropy": class_entropy_bits(hist),
            "verifier_accuracy": float((prob.argmax(axis=1) == labels).mean())}


@dataclass(frozen=True, repr=False)
class Verified(Regime):
    """Train on the ``m`` of ``m / keep`` fresh decoded images that ``score`` rates highest
    (``score`` None: the first ``m``, unfiltered).  The images are decoded once and kept as a
    fixed set (the ``vae`` chapter's streams decode fresh images every epoch instead)."""

    keep: float = 0.1
    score: Callable | None = None
    name = "verified"

    def __post_init__(self):
        if not 0 < self.keep <= 1:
            raise ValueError(f"keep must be in (0, 1]; got {self.keep!r}")

    def next_data(self, draw, m, *, previous, real, pool, rng, axis=0):
        import torch

        model = draw(m).model
        n = m if self.score is None else int(np.ceil(m / self.keep))
        gen = torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))
        with torch.no_grad():
            x = model.sample(n, generator=gen).float().cpu()
        if self.score is not None:
            order = np.argsort(-self.score(x.reshape(n, -1).numpy()), kind="stable")[:m]
            x = x[torch.as_tensor(np.sort(order))]
        return x, x

    def describe(self) -> str:
        return f"verified(keep={self.keep:g})" if self.score is not None else "unverified"


SETTINGS = {
    "verifier_digits": Setting(([0, 100, 2500], [0, 100, 2500], [0, 100, 500, 2500]), sweep=True, low=0,
                               help="real digits the verifier learned from (0: no verifier)"),
    "keep": Setting(0.1, low=1e-3, high=1.0, help="share of each generation's decoded images kept"),
    "seeds": Setting((1, 2, 5), low=1, help="independent chains per verifier"),
    "generations": Setting((2, 5, 20), low=0, help="generation 0 trains on real digits"),
    "n_real": Setting((200, 500, 500), low=1, help="real digits of generation 0 (Yi et al.: 500)"),
    "samples": Setting((200, 1000, 5000), low=1, help="verified images each later generation trains on"),
    "steps": Setting((60, 625, 2000), low=1, help="Adam steps per generation (epochs to match)"),
    "batch_size": Setting(32, low=1),
    "latent_dim": Setting(20, low=1),
    "capacity": Setting((8, 32, 64), low=1, help="channels: c, then 2c (64: the paper's network)"),
    "lr": Setting(1e-3, low=1e-12, help="Adam"),
    "weight_decay": Setting(1e-5, low=0.0),
    "beta": Setting(1.0, low=0.0, help="weight of the KL term"),
    "class_samples": Setting((300, 1000, 1000), low=10, help="samples the readers read"),
    "reader_images": Setting((1000, 2500, 10000), low=100, help="real digits the readers train on"),
    "cpu_precision": Setting("auto", choices=("auto", "fp32", "bf16"),
                             help="auto: bf16 autocast where the CPU has native bf16, else fp32"),
    "threads": Setting((1, 1, 0), low=0, help="torch threads per run (0: torch's default)"),
    "device": Setting("auto", choices=("auto", "cpu", "cuda")),
}


def epochs_for(steps: int, batch_size: int, n: int) -> int:
    """Epochs over ``n`` images that give about ``steps`` Adam steps of ``batch_size``."""
    return max(1, int(round(steps * batch_size / max(n, 1))))


def run_one(settings: dict, *, seed: int, run_dir=None, resume: bool = False, progress: bool = True,
            stop_after=None) -> RunOutput:
    """One chain of one verifier and seed; see the module docstring.

    Facts: the verifier's ``verifier_accuracy`` on real digits and its ``favourite_hist`` and
    ``favourite_entropy`` (:func:`favourite_mix`; None without a verifier), ``real_recognisable``
    and the digit reader's ``real_class_entropy`` on held-out real digits, ``n_real``, and the
    ``precision`` and ``device`` that ran.
    """
    with torch_threads(settings["threads"]):
        return _run_one(settings, seed, run_dir, resume, progress, stop_after)


def _run_one(s, seed, run_dir, resume, progress, stop_after) -> RunOutput:
    import torch

    device = resolve_device(s["device"])
    data = load_mnist()
    n_readers = min(int(s["reader_images"]), len(data) - 100)
    verifier = make_verifier(int(s["verifier_digits"]), n_readers)
    reader, reference = digit_reader(n_readers)
    overlay, recognised = overlay_reader(n_readers)
    prec = precision.choose(device, cpu=cpu_precision(s["cpu_precision"]))
    n_real = min(int(s["n_real"]), len(data))
    real = real_digits(data, n_real, seed)
    common = dict(latent_dim=s["latent_dim"], capacity=s["capacity"], batch_size=s["batch_size"],
                  lr=s["lr"], weight_decay=s["weight_decay"], beta=s["beta"], device=device,
                  cpu_precision=prec)
    epochs_0 = epochs_for(s["steps"], s["batch_size"], n_real)
    fit_real = make_fit(epochs=epochs_0, **common)
    fit_synthetic = make_fit(epochs=epochs_for(s["steps"], s["batch_size"], s["samples"]), **common)

    def fit(train, rng):
        return (fit_real if train is real else fit_synthetic)(train, rng)

    key = {**s, "epochs": epochs_0}
    fit = shared_generation_0(fit, real, seed, generation_0_file(key, seed, real, device, prec), device)
    measure = make_measure(seed=seed, reader=reader, latent_samples=100,
                           class_samples=s["class_samples"], overlay=overlay)
    regime = Verified(keep=float(s["keep"]),
                      score=None if verifier is None else lambda px: verifier_score(verifier, px))
    result = run_chain(real, s["generations"], regime=regime, fit=fit, measure=measure, seed=seed,
                       device=device, run_dir=run_dir, resume=resume, progress=progress,
                       stop_after=stop_after, desc=f"VAE verifier {s['verifier_digits']} seed {seed}",
                       sizes=int(s["samples"]))
    mix = (favourite_mix(verifier, float(s["keep"]), n_readers) if verifier is not None
           else {"favourite_hist": None, "favourite_entropy": None, "verifier_accuracy": None})
    facts = {**mix, "n_real": n_real, **recognised,
             "real_class_entropy": reference["real_class_entropy"],
             "precision": prec, "device": precision.describe(device, prec)}
    stand_in = data.stand_in
    return RunOutput(result.generations, result.metrics, stand_in, facts)


register(Experiment(
    name="vae-verifier",
    summary="conv VAE from 500 real digits retrained on the samples a digit-reading verifier "
            "scores best (Yi et al. 2025); verifier quality as the axis",
    settings=SETTINGS,
    run=run_one,
    parallel=True,
))
