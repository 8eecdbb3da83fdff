"""Gaussians refitted generation after generation (Shumailov et al. 2024, Sec. 3.2, Theorem 3.1).

Each generation estimates the mean and the (unbiased) variance of M samples and
draws M new samples from the fitted Gaussian.  Exact one-dimensional facts, with
sigma the original standard deviation and
c_M = E[sqrt(chi2_{M-1}/(M-1))] = sqrt(2/(M-1)) Gamma(M/2) / Gamma((M-1)/2):

    E[sigma_n^2] = sigma^2                 (a martingale)
    E[sigma_n]   = sigma c_M^n             (so the typical sigma_n shrinks)
    E[(mu_n - mu)^2] = n sigma^2 / M
    E[W_2^2(N(mu_n, sigma_n^2), N(mu, sigma^2))] = n sigma^2 / M + 2 sigma^2 (1 - c_M^n)
"""
from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from .experiments import Experiment, RunOutput, register
from .loop import run_generations
from .regimes import make_regime


# ----------------------------------------------------------------------------- theory
def c_m(M) -> np.ndarray | float:
    """c_M = E[sqrt(chi2_{M-1} / (M-1))], the mean shrink factor of one refit's std (M >= 2)."""
    M = np.asarray(M, dtype=float)
    if np.any(M < 2):
        raise ValueError(f"M must be at least 2; got {M}")
    out = np.sqrt(2.0 / (M - 1)) * np.exp(gammaln(M / 2) - gammaln((M - 1) / 2))
    return out.item() if out.ndim == 0 else out


def expected_sigma(n, M, sigma: float = 1.0):
    """E[sigma_n] = sigma c_M^n for the unbiased-variance refit (1-D)."""
    return sigma * c_m(M) ** np.asarray(n, dtype=float)


def expected_w2_squared(n, M, sigma: float = 1.0):
    """E[W_2^2] between generation n's Gaussian and the original N(mu, sigma^2), exactly.

    n sigma^2 / M from the mean's random walk plus 2 sigma^2 (1 - c_M^n) from the
    standard deviation (1-D, unbiased variance, constant M).
    """
    n = np.asarray(n, dtype=float)
    if np.any(n < 0):
        raise ValueError(f"n must be non-negative; got {n}")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive; got {sigma}")
    out = n * sigma**2 / M + 2 * sigma**2 * (1 - c_m(M) ** n)
    return out.item() if np.ndim(out) == 0 else out


# ----------------------------------------------------------------------------- 1-D model for the core loop
def fit_normal_1d(data, rng=None, ddof: int = 1):
    """Fit (mean, std) along the last axis; ``ddof=1`` is the unbiased variance, 0 the MLE."""
    data = np.asarray(data, dtype=float)
    return data.mean(axis=-1), data.std(axis=-1, ddof=ddof)


def sample_normal_1d(model, m: int, rng: np.random.Generator):
    """m samples from N(mean, std^2) for every chain: shape (chains, m)."""
    mean, std = (np.asarray(v, dtype=float) for v in model)
    return mean[..., None] + std[..., None] * rng.standard_normal(mean.shape + (int(m),))


def w2_squared_1d(mean, std, mean0: float = 0.0, std0: float = 1.0):
    """W_2^2 between N(mean, std^2) and N(mean0, std0^2): (mean - mean0)^2 + (std - std0)^2."""
    return (np.asarray(mean) - mean0) ** 2 + (np.asarray(std) - std0) ** 2


# ----------------------------------------------------------------------------- intro experiment
INTRO_SETTINGS = {
    "smoke": {"M": 100, "generations": 60, "chains": 100, "regimes": ["replace", "accumulate"]},
    "default": {"M": 100, "generations": 150, "chains": 500, "regimes": ["replace", "accumulate"]},
    "paper": {"M": 100, "generations": 200, "chains": 1000, "regimes": ["replace", "accumulate"]},
}


def run_intro(settings: dict, *, seed: int = 0, run_dir=None, resume: bool = False,
              progress: bool = True) -> RunOutput:
    """A 1-D N(0, 1) refitted by unbiased mean and variance, many chains at once, per regime.

    All chains share one array (chains x samples), so the core loop runs once per
    regime.  Metrics per generation: each chain's sigma and W_2^2 to N(0, 1), and
    their means across chains.
    """
    M, n, chains = settings["M"], settings["generations"], settings["chains"]
    if M < 2:
        raise ValueError(f"M must be at least 2; got {M}")
    if chains < 1:
        raise ValueError(f"chains must be at least 1; got {chains}")
    regimes = [make_regime(name) for name in settings["regimes"]]  # fail early on a bad name
    real = np.random.default_rng([seed, 10**6]).standard_normal((chains, M))
    metrics: dict[str, list] = {}

    def measure(g):
        mean, std = g.model
        w2 = w2_squared_1d(mean, std)
        return {"sigma": std, "w2_squared": w2, "sigma_mean": float(std.mean()),
                "sigma_squared_mean": float((std**2).mean()), "w2_squared_mean": float(w2.mean()),
                "train_size": int(np.shape(g.train)[1])}

    for name, regime in zip(settings["regimes"], regimes):
        result = run_generations(
            fit_normal_1d, sample_normal_1d, real, n, regime=regime, sizes=M,
            seed=seed, measure=measure, axis=1, progress=progress, desc=name,
            run_dir=None if run_dir is None else f"{run_dir}/{name}", resume=resume)
        for key, values in result.metrics.items():
            metrics[f"{key}_{name}"] = [np.asarray(v).tolist() for v in values]
    return RunOutput(list(range(n + 1)), metrics, None)


register(Experiment(
    name="gaussian-intro",
    summary="1-D Gaussian refitted each generation, replace vs accumulate (intro chapter)",
    settings=INTRO_SETTINGS,
    run=run_intro,
    chapter="book/intro.ipynb",
))
