"""The real data D_0: one unit blob at the origin (the public notebook), or two separated blobs."""
from __future__ import annotations

import numpy as np

from .mixture import Mixture

#: the real data: one unit blob at the origin (the public notebook), or two separated blobs
VARIANTS = ("one-blob", "two-blobs")


def blob_centres(variant: str = "one-blob", separation: float = 6.0, dim: int = 2) -> np.ndarray:
    """Centres of the original unit blobs: the origin, or (+-separation/2, 0, ...)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}; got {variant!r}")
    if variant == "one-blob":
        return np.zeros((1, dim))
    if not separation > 0:
        raise ValueError(f"separation must be positive; got {separation!r}")
    c = np.zeros((2, dim))
    c[:, 0] = (-separation / 2, separation / 2)
    return c


def original_mixture(variant: str = "one-blob", separation: float = 6.0, dim: int = 2) -> Mixture:
    """The distribution the real data are drawn from: equal-weight unit isotropic blobs."""
    c = blob_centres(variant, separation, dim)
    K = c.shape[0]
    return Mixture(np.full(K, 1.0 / K), c, np.broadcast_to(np.eye(dim), (K, dim, dim)).copy())


def real_data(points: int = 1000, variant: str = "one-blob", separation: float = 6.0,
              rng: np.random.Generator | None = None, dim: int = 2) -> np.ndarray:
    """D_0: ``points`` draws from :func:`original_mixture` (two blobs: half the points each).

    A run draws them from its ``rng_for(seed, "real")`` stream.
    """
    if int(points) != points or points < 1:
        raise ValueError(f"points must be a positive integer; got {points!r}")
    rng = np.random.default_rng(0) if rng is None else rng
    c = blob_centres(variant, separation, dim)
    counts = [points // len(c) + (k < points % len(c)) for k in range(len(c))]
    x = np.concatenate([ck + rng.standard_normal((n, dim)) for ck, n in zip(c, counts)])
    return x[rng.permutation(len(x))]
