"""What is measured on each generation: the protocol's latent statistics and a digit reader.

The protocol (public notebook): decode samples of a generation, encode them with the
**generation-0** encoder and take ``np.std`` of all their latent means pooled over
samples and dimensions (:func:`latent_summary`, ``latent_std``).  Beside it:

* ``latent_spread``: the std across samples of each latent dimension, averaged over
  dimensions; 0 exactly when all samples encode alike (the pooled std is not: the
  20 dimensions of one latent mean differ from each other);
* a digit reader (PCA to 50 dimensions, then logistic regression) trained on real
  digits reads the samples: the class mix and its entropy (log2 10 = 3.32 bits for
  ten equal digits), and how sure the reader is (mean top-class probability).
* blur, apart from diversity: a blurred sample that looks like no digit still gets a
  label, often with high confidence (the reader is linear in 50 PCA features and is
  as sure of an average of 16 real digits as of a real one), so confidence cannot
  tell blur.  :func:`solid_ink` can: the share of an image's ink in nearly black
  pixels (0.78 for the median real digit, 0.16 for an average of 16 of them).  The
  class mix of the samples at least :data:`SHARP` solid separates the loss of
  diversity from the reader's view of blur.
* recognisable, apart from soft: solid ink calls every decoded pixel mean (the protocol's
  samples) blurred, even one that plainly shows a digit.  :func:`overlay_reader` is a second
  reader with an eleventh class, *overlay*: averages of 2 to 4 real digits of different
  classes, images that show no single digit; it also learns averages of 2 and 4 real digits
  of one class as that digit, so softness alone is not held against a sample.  A sample is
  *recognisable* when this reader reads it as one digit with probability at least
  :data:`RECOGNISED` (:func:`recognisable_share`): 0.90 of held-out real digits are, 0.16 of
  averages of 3 random digits, none of averages of 8.
"""
from __future__ import annotations

import functools

import numpy as np

from ..loop import rng_for, seed_for

N_CLASSES = 10
#: fixed bin edges of the latent-mean histograms stored per generation
LATENT_EDGES = np.linspace(-4.0, 4.0, 81)
#: a pixel counts as solid ink at this value or above
SOLID = 0.75
#: a sample counts as sharp when at least this share of its ink is solid (98% of real digits are)
SHARP = 0.6
#: fewest sharp samples for which their class mix is reported (else None)
MIN_SHARP = 20
#: the overlay reader's eleventh class: an average of real digits of different classes
OVERLAY = N_CLASSES
#: a sample is recognisable when the overlay reader reads one digit with this probability or more
RECOGNISED = 0.5


def fit_digit_classifier(images: np.ndarray, labels: np.ndarray, seed: int = 0):
    """The digit reader: PCA to 50 dimensions, then logistic regression, on real digits.

    ``images`` uint8 (n, 28, 28); it reads pixels in [0, 1], shape (n, 784).
    """
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    X = np.asarray(images, dtype=np.float32).reshape(len(images), -1) / 255.0
    return make_pipeline(PCA(50, random_state=seed), LogisticRegression(max_iter=300)).fit(X, labels)


def class_entropy_bits(hist) -> float:
    """Entropy in bits of a class histogram (log2 10 = 3.32 for ten equal classes)."""
    p = np.asarray(hist, dtype=float)
    p = p[p > 0] / p.sum()
    return float(max(0.0, -(p * np.log2(p)).sum()))


def solid_ink(pixels: np.ndarray) -> np.ndarray:
    """Per image (rows of ``pixels`` in [0, 1]), the share of its ink in pixels >= :data:`SOLID`."""
    x = np.asarray(pixels, dtype=np.float64).reshape(len(pixels), -1)
    return (x * (x >= SOLID)).sum(axis=1) / np.maximum(x.sum(axis=1), 1e-12)


def read_digits(reader, pixels: np.ndarray) -> dict:
    """What the reader makes of images ``pixels`` (n, 784) in [0, 1], and how sharp they are.

    ``class_hist``/``class_entropy``: the predicted digits' shares and their entropy;
    ``reader_confidence``: the mean top-class probability; ``solid_ink``: the median
    :func:`solid_ink`; ``sharp_share``: the share of samples at least :data:`SHARP`
    solid; ``sharp_entropy``: the entropy of the class mix of those (None with fewer
    than :data:`MIN_SHARP`).
    """
    pixels = np.asarray(pixels, dtype=np.float32)
    prob = reader.predict_proba(pixels)
    label, top = prob.argmax(axis=1), prob.max(axis=1)
    hist = np.bincount(label, minlength=N_CLASSES) / len(label)
    solid = solid_ink(pixels)
    sharp = solid >= SHARP
    return {"class_hist": hist.tolist(), "class_entropy": class_entropy_bits(hist),
            "reader_confidence": float(top.mean()), "solid_ink": float(np.median(solid)),
            "sharp_share": float(sharp.mean()),
            "sharp_entropy": (class_entropy_bits(np.bincount(label[sharp], minlength=N_CLASSES))
                              if sharp.sum() >= MIN_SHARP else None)}


def overlays(images: np.ndarray, labels: np.ndarray, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """The overlay reader's training images beside the real ones (pixels (n, 784) in [0, 1]):
    n averages of 2 or 4 real digits of one class, labelled that digit, and n averages of 2 to 4
    real digits of different classes, labelled :data:`OVERLAY`."""
    X = np.asarray(images, dtype=np.float32).reshape(len(images), -1) / 255.0
    labels = np.asarray(labels)
    by_class = [np.flatnonzero(labels == d) for d in range(N_CLASSES)]
    soft, soft_label, mixed = [], [], []
    for i in range(n):
        d = int(labels[rng.integers(len(labels))])
        soft.append(X[rng.choice(by_class[d], 2 if i % 2 else 4)].mean(axis=0))
        soft_label.append(d)
        classes = rng.choice(N_CLASSES, int(rng.integers(2, 5)), replace=False)
        mixed.append(np.mean([X[rng.choice(by_class[c])] for c in classes], axis=0))
    pixels = np.concatenate([X, np.array(soft), np.array(mixed)])
    return pixels, np.concatenate([labels, soft_label, np.full(n, OVERLAY)])


def fit_overlay_reader(images: np.ndarray, labels: np.ndarray, seed: int = 0):
    """The recognisability reader: PCA to 50 dimensions and logistic regression over eleven
    classes, the ten digits (real digits and one-class averages) and :data:`OVERLAY`
    (:func:`overlays`, as many of each kind as there are real digits)."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    X, y = overlays(images, labels, len(images), rng_for(seed, "reference", 2))
    return make_pipeline(PCA(50, random_state=seed), LogisticRegression(max_iter=300)).fit(X, y)


def recognisable_share(reader, pixels: np.ndarray) -> float:
    """The share of images (n, 784) in [0, 1] that the overlay reader reads as one digit with
    probability at least :data:`RECOGNISED` (not as an overlay of several)."""
    prob = reader.predict_proba(np.asarray(pixels, dtype=np.float32))
    return float(((prob.argmax(axis=1) != OVERLAY) & (prob.max(axis=1) >= RECOGNISED)).mean())


@functools.lru_cache(maxsize=4)
def _overlay_reader(key, n_train: int, n_reference: int = 2500):
    from .data import load_mnist

    data = load_mnist()
    order = rng_for(0, "reference").permutation(len(data))
    train, held = order[:n_train], order[n_train:n_train + n_reference]
    reader = fit_overlay_reader(data.images[train], data.labels[train])
    pixels = data.images[held].reshape(len(held), -1) / 255.0
    return reader, {"real_recognisable": recognisable_share(reader, pixels)}


def overlay_reader(n_train: int):
    """(reader, reference): :func:`fit_overlay_reader` on the same ``n_train`` real digits as
    :func:`digit_reader`, and ``real_recognisable``, the :func:`recognisable_share` of up to
    2,500 other real digits.  Fitted once per process."""
    from .data import _mnist_cache_path, hub_offline

    reader, ref = _overlay_reader((str(_mnist_cache_path()), hub_offline()), int(n_train))
    return reader, dict(ref)


@functools.lru_cache(maxsize=4)
def _reader(key, n_train: int, n_reference: int = 2500):
    from .data import load_mnist

    data = load_mnist()
    order = rng_for(0, "reference").permutation(len(data))
    train, held = order[:n_train], order[n_train:n_train + n_reference]
    reader = fit_digit_classifier(data.images[train], data.labels[train])
    pixels = data.images[held].reshape(len(held), -1) / 255.0
    ref = {f"real_{k}": v for k, v in read_digits(reader, pixels).items()}
    ref["reader_accuracy"] = float((reader.predict(pixels) == data.labels[held]).mean())
    return reader, ref


def digit_reader(n_train: int):
    """(reader, reference): the reader trained on ``n_train`` real digits (a fixed random
    subset), and what it reads on up to 2,500 other real digits (:func:`read_digits`'s
    keys with ``real_`` in front, and ``reader_accuracy``).  Fitted once per process."""
    from .data import _mnist_cache_path, hub_offline

    reader, ref = _reader((str(_mnist_cache_path()), hub_offline()), int(n_train))
    return reader, dict(ref)


def latent_statistics(encoder_model, images) -> np.ndarray:
    """The latent means mu(x) of ``images`` under ``encoder_model``, shape (n, latent_dim)."""
    import torch

    with torch.no_grad():
        mu, _ = encoder_model.encode(images.to(encoder_model.device))
    return mu.detach().cpu().numpy().astype(np.float64)


def latent_summary(mu: np.ndarray) -> dict:
    """``latent_mean``, ``latent_std`` (``np.std`` of all entries pooled, as the public
    notebook prints it), ``latent_spread`` and ``latent_hist`` of latent means (n, L)."""
    return {"latent_mean": float(mu.mean()), "latent_std": float(np.std(mu)),
            "latent_spread": float(mu.std(axis=0, ddof=1).mean()),
            "latent_hist": np.histogram(mu.ravel(), LATENT_EDGES)[0].tolist()}


def make_measure(*, seed: int, reader=None, latent_samples: int = 100, class_samples: int = 1000,
                 overlay=None):
    """``measure(Generation) -> dict`` for the core loop.

    Decodes max(latent_samples, class_samples) images from N(0, I) latents with the
    generation's model (torch seed from the run's ``"measure"`` stream), then
    reports :func:`latent_summary` of the generation-0 encoder's latent means of the
    first ``latent_samples``, :func:`read_digits` of the first ``class_samples``
    (with a reader), ``recognisable`` (:func:`recognisable_share`, with an overlay reader),
    ``train_loss`` (mean loss per image in the last epoch) and
    ``real_share`` (the share of real images among those fitted).
    """
    import torch

    def measure(g):
        model, first = g.model, g.first_model
        gen = torch.Generator().manual_seed(seed_for(seed, "measure", g.index))
        x = model.sample(max(latent_samples, class_samples), generator=gen)
        out = latent_summary(latent_statistics(first, x[:latent_samples]))
        if reader is not None:
            out.update(read_digits(reader, x[:class_samples].cpu().numpy().reshape(class_samples, -1)))
        if overlay is not None:
            out["recognisable"] = recognisable_share(
                overlay, x[:class_samples].cpu().numpy().reshape(class_samples, -1))
        stats = model.train_stats
        out["train_loss"] = float(stats["loss"])
        out["real_share"] = stats["real_images"] / (stats["real_images"] + stats["synthetic_images"])
        return out

    return measure
