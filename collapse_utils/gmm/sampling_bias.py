"""Sampling bias in a fully synthetic loop: quality holds, diversity falls (Alemohammad et al.).

Alemohammad et al. ("Self-consuming generative models go MAD", ICLR 2024) find that in a
fully synthetic loop, samples biased towards quality (their sampling-bias parameter
lambda < 1: the truncation of GANs, the guidance of diffusion models) keep their quality,
measured by precision, while their diversity, measured by recall, falls generation after
generation.  This module runs that loop on a 2-D Gaussian mixture:

* p_0: ``components`` equal-weight Gaussians of standard deviation ``spread`` on a circle
  of radius ``radius`` (the book's choice of a many-mode toy);
* the model: a mixture of as many components with full covariances, fitted by EM
  (:func:`collapse_utils.gmm.selection.em_fit`) warm-started from the previous generation
  (generation 0 from p_0 itself, so no component starts stranded);
* sampling with bias lambda: a sample of component k is N(mu_k, Sigma_k) pulled a share
  1 - lambda towards its component's mean, x = mu_k + lambda (x' - mu_k), so its covariance is
  lambda^2 Sigma_k.  (lambda = 1 is unbiased sampling; the paper's knobs act on images and
  its Gaussian toy may parametrise the bias differently: this is the book's stand-in.)
  Each generation trains only on the previous model's biased samples (``replace``);
* the measures: k-nearest-neighbour precision and recall (Kynkaenniemi et al. 2019, k = 5)
  between ``reference`` fresh points of p_0 and as many biased samples of the model.
  Precision is the share of model samples inside some real point's k-NN ball (quality);
  recall the share of real points inside some model sample's k-NN ball (diversity).

Theory: sampling shrinks every component's covariance by lambda^2 per generation, and the fit
by a further (n_k - 1)/n_k in expectation, so a component's standard deviation after g
generations is about spread * lambda^g times the fit's shrink (:func:`component_std_theory`).
"""
from __future__ import annotations

import numpy as np

from ..experiments import Experiment, RunOutput, register
from ..loop import rng_for, run_generations
from ..settings import Setting
from .mixture import Mixture, cholesky
from .selection import em_fit


def ring_mixture(components: int, radius: float, spread: float) -> Mixture:
    """p_0: equal-weight isotropic Gaussians of sd ``spread`` on a circle of ``radius``."""
    angles = 2 * np.pi * np.arange(components) / components
    means = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    covs = np.broadcast_to(spread**2 * np.eye(2), (components, 2, 2)).copy()
    return Mixture(np.full(components, 1.0 / components), means, covs)


def sample_biased(model: Mixture, m: int, lam: float, rng: np.random.Generator) -> np.ndarray:
    """m points of ``model`` with sampling bias ``lam``: each pulled a share 1 - lam towards
    its component's mean (covariance lam^2 Sigma_k)."""
    w = np.clip(model.weights, 0.0, None)
    comps = rng.choice(model.n_components, size=int(m), p=w / w.sum())
    z = rng.standard_normal((int(m), model.dim))
    chol = cholesky(model.covariances)
    return model.means[comps] + lam * np.einsum("nij,nj->ni", chol[comps], z)


def knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Each point's distance to its k-th nearest other point of ``x``."""
    from scipy.spatial import cKDTree

    dist, _ = cKDTree(x).query(x, k=k + 1)
    return dist[:, -1]


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 5) -> tuple[float, float]:
    """k-NN precision and recall (Kynkaenniemi et al. 2019): the share of ``fake`` inside the
    union of the real points' k-NN balls, and of ``real`` inside the fake points' balls."""
    from scipy.spatial.distance import cdist

    d = cdist(fake, real)
    precision = float(np.mean(np.any(d <= knn_radii(real, k)[None, :], axis=1)))
    recall = float(np.mean(np.any(d.T <= knn_radii(fake, k)[None, :], axis=1)))
    return precision, recall


def component_std_theory(generations: int, lam: float, spread: float, per_component: int) -> np.ndarray:
    """sqrt(E var) of a component for g = 0..``generations``: spread * lam^g times the fit's
    shrink sqrt(((n - 1)/n)^(g + 1)) with n = ``per_component`` points per component (the
    maximum-likelihood covariance of n points has expectation (n - 1)/n times the truth)."""
    g = np.arange(int(generations) + 1)
    n = float(per_component)
    return spread * float(lam) ** g * np.sqrt(((n - 1) / n) ** (g + 1))


def sampling_bias_report(record) -> dict:
    """The numbers the curation chapter quotes from a ``gmm-sampling-bias`` record: per bias
    (``<tag>`` = the bias without its dot, e.g. ``09``) the mean over seeds of precision,
    recall and component sd at the last generation, and the theory's sd; and the sizes."""
    S = record.settings
    G = int(record.generations[-1])
    out = {"G": G, "points": S["points"], "seeds": S["seeds"], "components": S["components"],
           "reference": S["reference"], "k": S["k"]}
    for lam in record.values("bias"):
        tag = f"{lam:g}".replace(".", "")
        for key in ("precision", "recall", "component_std"):
            out[f"{key}_{tag}"] = float(np.mean(record.metric(key, bias=lam)[:, -1]))
        out[f"recall0_{tag}"] = float(np.mean(record.metric("recall", bias=lam)[:, 0]))
        out[f"theory_std_{tag}"] = float(component_std_theory(
            G, lam, S["spread"], S["points"] // S["components"])[-1])
    return out


SETTINGS = {
    "bias": Setting([1.0, 0.9, 0.8, 0.7], low=0.05, high=1.0, sweep=True,
                    help="sampling bias lambda: samples pulled a share 1 - lambda to their mode (1: none)"),
    "points": Setting((400, 1000, 2000), low=10, help="samples per generation"),
    "generations": Setting((5, 15, 30), low=0, help="generations after generation 0"),
    "components": Setting(8, low=1, help="modes of p_0 (and components of the model)"),
    "radius": Setting(4.0, low=0.0, help="the modes' circle"),
    "spread": Setting(0.5, low=1e-3, help="each mode's standard deviation"),
    "reference": Setting((500, 1000, 2000), low=10, help="real points (and model samples) for precision and recall"),
    "k": Setting(5, low=1, help="k of the k-NN balls (Kynkaenniemi et al.: 3 to 5)"),
    "seeds": Setting((2, 3, 5), low=1, help="independent runs"),
}


def check(s: dict) -> None:
    if s["k"] >= s["reference"]:
        raise ValueError(f"k must be below reference ({s['reference']}); got {s['k']}")


def run_sampling_bias(settings: dict, *, seed: int = 0, run_dir=None, resume: bool = False,
                      progress: bool = True, stop_after: int | None = None) -> RunOutput:
    """One run of ``gmm-sampling-bias`` (see the module docstring).  Metrics per generation:
    ``precision``, ``recall`` and ``component_std`` (RMS of sqrt(trace(Sigma_k)/2) over the
    components, the spread of the *unbiased* model)."""
    lam = float(settings["bias"])
    truth = ring_mixture(settings["components"], settings["radius"], settings["spread"])
    real = sample_biased(truth, settings["points"], 1.0, rng_for(seed, "real"))
    reference = sample_biased(truth, settings["reference"], 1.0, rng_for(seed, "reference"))
    previous = {"model": truth}

    def fit(data, rng):
        previous["model"] = em_fit(np.asarray(data), previous["model"])
        return previous["model"]

    def sample(model, m, rng):
        previous["model"] = model
        return sample_biased(model, m, lam, rng)

    def measure(g):
        fake = sample_biased(g.model, settings["reference"], lam, g.rng)
        p, r = precision_recall(reference, fake, settings["k"])
        std = np.sqrt(np.trace(g.model.covariances, axis1=1, axis2=2) / 2)
        return {"precision": p, "recall": r, "component_std": float(np.sqrt(np.mean(std**2)))}

    result = run_generations(fit, sample, real, settings["generations"], seed=seed,
                             measure=measure, progress=progress, desc=f"bias {lam:g}",
                             run_dir=run_dir, resume=resume, stop_after=stop_after)
    return RunOutput(result.generations, result.metrics, None)


register(Experiment(
    name="gmm-sampling-bias",
    summary="2-D mixture, fully synthetic, samples biased to their modes: precision vs recall (MAD)",
    settings=SETTINGS,
    run=run_sampling_bias,
    check=check,
    parallel=True,
))
