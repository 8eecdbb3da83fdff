"""Training one generation's VAE, and one chain of generations through the core loop.

:func:`make_fit` is the protocol's training step (Adam, lr 1e-3, weight decay
1e-5; BCE summed + beta * KL); :func:`run_chain` hands it, :func:`sample_stream`
and a measurement to :func:`collapse_utils.loop.run_generations`, which saves each
generation's weights and resumes after the last finished one.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .. import precision
from ..loop import run_generations
from ..regimes import Regime
from .data import DecodedStream, as_training_set
from .model import load_vae, save_vae, vae_class, vae_loss


def make_fit(*, latent_dim: int = 20, capacity: int = 64, epochs: int = 30, batch_size: int = 256,
             lr: float = 1e-3, weight_decay: float = 1e-5, beta: float = 1.0, device: str = "cpu",
             cpu_precision: str = "fp32"):
    """``fit(data, rng) -> VAE`` for the core loop: the protocol's training of one generation.

    A fresh VAE (initialised from a seed drawn from ``rng``) is trained with Adam for
    ``epochs`` passes over ``data`` (a :class:`~collapse_utils.vae.data.TrainingSet`):
    each epoch shuffles the positions, and each batch is built then, decoded streams
    drawing fresh latents.  All randomness (initialisation, shuffling, latents,
    reparameterisation noise) comes from ``rng`` through CPU torch generators, so a
    generation is a pure function of (seed, generation) and, on the CPU, a resumed
    run equals an uninterrupted one bit for bit (on a GPU, cuDNN's non-deterministic
    kernels can change the rounding).  The model comes back in eval mode with
    ``train_stats``: the mean loss per image of the last epoch and the real and
    synthetic images fed in all, and the ``precision`` it ran in: on a CPU ``cpu_precision``
    (bf16: :func:`forward`'s autocast, as on a GPU; see :func:`collapse_utils.vae.experiment.cpu_precision`).

    On a GPU: the real images are moved to it once per generation, the reparameterisation
    noise is drawn there (from a CUDA generator seeded from ``rng``), the loss is summed there
    (in fp64, as the CPU sums it in Python floats) and read once per generation; the network
    runs under :func:`collapse_utils.precision.choose`'s precision (bf16 from capability 8.0,
    else fp16 with a gradient scaler) with the Bernoulli likelihood in fp32 (:func:`forward`).
    """

    def fit(data, rng):
        import torch

        ts = as_training_set(data)
        if len(ts) == 0:
            raise ValueError("cannot fit a VAE to an empty training set")
        seed_init, seed_train = (int(s) for s in rng.integers(0, 2**63 - 1, size=2))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed_init)
            model = vae_class()(latent_dim, capacity)
        dev = torch.device(device)
        model.to(dev).train()
        prec = precision.choose(dev, cpu=cpu_precision)
        scaler = precision.scaler(prec, dev)
        gen = torch.Generator().manual_seed(seed_train)
        on_gpu = dev.type == "cuda"
        if on_gpu:   # the real digits once, and the noise drawn where it is used
            ts = type(ts)(None if ts.real is None else ts.real.to(dev), ts.streams)
            noise_gen = torch.Generator(device=dev).manual_seed(seed_train)
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        n_real = n_seen = 0
        for _ in range(int(epochs)):
            total, seen = torch.zeros((), dtype=torch.float64, device=dev), 0
            for pos in torch.randperm(len(ts), generator=gen).split(int(batch_size)):
                x, k_real = ts.batch(pos, gen, dev)
                if on_gpu:
                    noise = torch.randn(len(x), latent_dim, generator=noise_gen, device=dev)
                else:
                    noise = torch.randn(len(x), latent_dim, generator=gen)
                recon, mu, logvar = forward(model, x, noise, prec)
                loss = vae_loss(recon, x, mu, logvar, beta)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                total, seen = total + loss.detach().double(), seen + len(x)
                n_real, n_seen = n_real + k_real, n_seen + len(x)
        model.eval()
        model.train_stats = {"loss": float(total) / seen, "real_images": n_real,
                             "synthetic_images": n_seen - n_real, "precision": prec}
        return model

    return fit


def forward(model, x, noise, prec: str = "fp32"):
    """(reconstruction, mu, logvar) of ``model`` under ``prec``: the model's own forward in
    fp32; under bf16 or fp16 the network up to the decoder's last layer is autocast and the
    sigmoid and the loss see fp32 logits, since a 16-bit sigmoid rounds pixel means near 1 to
    exactly 1 (fp16 from a logit of about 8, bf16 from about 5.5), where the Bernoulli
    likelihood's gradient is infinite."""
    import torch

    if prec == "fp32":
        return model(x, noise)
    head, last = model.decoder[:-1], model.decoder[-1]
    if not isinstance(last, torch.nn.Sigmoid):
        raise TypeError(f"the decoder must end in a Sigmoid; got {type(last).__name__}")
    with precision.autocast(x.device, prec):
        mu, logvar = model.encode(x)
        mu, logvar = mu.float(), logvar.float()
        logits = head(mu + noise * torch.exp(0.5 * logvar))
    return torch.sigmoid(logits.float()), mu, logvar


def sample_stream(model, m: int, rng=None) -> DecodedStream:
    """``sample`` for the core loop: m fresh decoded images per epoch."""
    return DecodedStream(model, m)


def run_chain(real_images, generations: int, *, regime: Regime, fit, measure, seed: int = 0,
              device: str = "cpu", run_dir=None, resume: bool = False, progress: bool = True,
              stop_after=None, keep_models: Sequence[int] = (), desc: str = "VAE", sizes=None):
    """Generations 0..``generations`` of one VAE chain through the core loop.

    ``real_images``: uint8 (n, 28, 28) or (n, 1, 28, 28), or a float tensor in [0, 1].
    Each generation's weights go to ``run_dir/model_XXXX`` (:func:`save_vae`); with
    ``resume=True`` the run continues after the last finished generation.  ``sizes`` is
    M_i for i >= 1 (:func:`~collapse_utils.loop.run_generations`; default: the real digits').
    Returns the core :class:`~collapse_utils.loop.LoopResult`.
    """
    import torch

    real = real_images if torch.is_tensor(real_images) else torch.as_tensor(np.asarray(real_images))
    if real.ndim == 3:
        real = real.unsqueeze(1)
    real = as_training_set(real).real
    return run_generations(
        fit, sample_stream, real, generations, regime=regime, sizes=sizes, seed=seed, measure=measure,
        run_dir=run_dir, resume=resume, save_model=save_vae,
        load_model=lambda p: load_vae(p, device), keep_models=keep_models, progress=progress,
        desc=desc, stop_after=stop_after)
