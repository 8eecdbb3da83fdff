"""The protocol's convolutional VAE (Kingma & Welling 2014), its loss, and saving it.

The network of the authors' public notebook (Zenodo doi:10.5281/zenodo.10866595),
layer for layer::

    encoder  Conv(1->c, k4 s2 p1) -> ReLU -> Conv(c->2c, k4 s2 p1) -> ReLU -> Flatten
    heads    Linear(2c*7*7 -> L) for mu, Linear(2c*7*7 -> L) for log sigma^2
    decoder  Linear(L -> 2c*7*7) -> view (2c, 7, 7) -> ConvT(2c->c) -> ReLU -> ConvT(c->1) -> sigmoid

No ReLU follows the decoder's linear layer (the public ``Decoder`` has none).  With
latent L = 20 and capacity c = 64 it has 647,081 parameters (:data:`PAPER_PARAMETERS`).

torch is imported inside functions, so ``python -m collapse_utils list`` stays fast;
:func:`vae_class` builds the class on first use.
"""
from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np

from ..loop import atomic_write_bytes

PAPER_PARAMETERS = 647_081
"""Parameters of the protocol's VAE (latent 20, capacity 64)."""

IMAGE_SHAPE = (1, 28, 28)

#: the layer types in order, as the public notebook builds them
ENCODER_LAYERS = ("Conv2d", "ReLU", "Conv2d", "ReLU", "Flatten")
DECODER_LAYERS = ("Linear", "Unflatten", "ConvTranspose2d", "ReLU", "ConvTranspose2d", "Sigmoid")


def _build_vae_class():
    import torch
    from torch import nn

    class VAE(nn.Module):
        """The convolutional VAE of the protocol (647,081 parameters at the defaults).

        ``capacity`` c sets the channels (c, then 2c in the encoder; mirrored in the
        decoder); images are (n, 1, 28, 28) in [0, 1].  ``decode`` returns Bernoulli
        pixel means.
        """

        def __init__(self, latent_dim: int = 20, capacity: int = 64):
            for name, value in (("latent_dim", latent_dim), ("capacity", capacity)):
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                    raise ValueError(f"{name} must be a positive integer; got {value!r}")
            super().__init__()
            c, L = int(capacity), int(latent_dim)
            self.latent_dim, self.capacity = L, c
            flat = 2 * c * 7 * 7
            self.encoder = nn.Sequential(
                nn.Conv2d(1, c, 4, stride=2, padding=1), nn.ReLU(),          # 28 -> 14
                nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), nn.ReLU(),      # 14 -> 7
                nn.Flatten())
            self.fc_mu = nn.Linear(flat, L)
            self.fc_logvar = nn.Linear(flat, L)
            self.decoder = nn.Sequential(
                nn.Linear(L, flat), nn.Unflatten(1, (2 * c, 7, 7)),          # no ReLU here
                nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), nn.ReLU(),  # 7 -> 14
                nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1), nn.Sigmoid())  # 14 -> 28
            self.train_stats: dict = {}

        def config(self) -> dict:
            return {"latent_dim": self.latent_dim, "capacity": self.capacity}

        @property
        def device(self):
            return self.fc_mu.weight.device

        def encode(self, x):
            """(mu, log sigma^2) of q(z | x)."""
            h = self.encoder(x)
            return self.fc_mu(h), self.fc_logvar(h)

        def decode(self, z):
            """Pixel means p(x | z), shape (n, 1, 28, 28)."""
            return self.decoder(z)

        def forward(self, x, noise=None):
            """(reconstruction, mu, logvar) with z = mu + sigma * noise (noise ~ N(0, I) if None)."""
            mu, logvar = self.encode(x)
            eps = torch.randn_like(mu) if noise is None else noise
            return self.decode(mu + eps * torch.exp(0.5 * logvar)), mu, logvar

        @torch.no_grad()
        def sample(self, n: int, generator=None):
            """n images (pixel means) decoded from z ~ N(0, I); latents drawn on the CPU."""
            z = torch.randn(int(n), self.latent_dim, generator=generator)
            return self.decode(z.to(self.device))

    VAE.__module__, VAE.__qualname__ = __name__, "VAE"
    return VAE


@functools.lru_cache(maxsize=None)
def vae_class():
    """The ``VAE`` class (built on first use, so importing this module needs no torch)."""
    return _build_vae_class()


def __getattr__(name):  # PEP 562: ``from collapse_utils.vae.model import VAE`` builds it lazily
    if name == "VAE":
        return vae_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def layer_names(model) -> dict:
    """The layer types of the encoder and decoder in order (see :data:`DECODER_LAYERS`)."""
    return {"encoder": tuple(type(m).__name__ for m in model.encoder),
            "decoder": tuple(type(m).__name__ for m in model.decoder)}


def count_parameters(model) -> int:
    """Number of trainable parameters."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def vae_loss(recon, x, mu, logvar, beta: float = 1.0, return_terms: bool = False):
    """Negative ELBO summed over the batch: BCE(recon, x, sum) + beta * KL(q(z|x) || N(0, I)).

    KL = -1/2 sum(1 + log sigma^2 - mu^2 - sigma^2) (Kingma & Welling 2014, appendix B).
    ``x`` may be soft (pixel means), as in the protocol's later generations.
    """
    import torch
    import torch.nn.functional as F

    bce = F.binary_cross_entropy(recon, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    total = bce + beta * kl
    return (total, bce, kl) if return_terms else total


def resolve_device(device: str = "auto") -> str:
    """"auto" -> "cuda" when a GPU is present, else "cpu"; "cpu"/"cuda" as given."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device must be auto or cpu here: no CUDA GPU is available")
    return device


def save_vae(model, path) -> None:
    """Write a VAE's configuration and weights (``torch.save``) atomically to ``path``."""
    import torch

    buf = io.BytesIO()
    torch.save({"config": model.config(),
                "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_vae(path, device: str = "cpu"):
    """A VAE written by :func:`save_vae`, in eval mode on ``device``."""
    import torch

    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    model = vae_class()(**state["config"])
    model.load_state_dict(state["state_dict"])
    return model.to(device).eval()
