"""Selection bias in 10 dimensions: Qiao et al.'s families, selector and dispersion ratio.

Qiao et al. ("When sample selection bias precipitates model collapse", OpenReview
FFXvnzM254; public code XinbaoQiao/When-Sample-Selection-Bias-Precipitates-Model-Collapse,
``subexperiments/NonGaussian_Modeling``) run four families in d = 10 dimensions, each under
replace and accumulate, with and without a selector, and report the dispersion ratio
Disp(P_t) / Disp(P_0), Disp(P) = E||X - X'||^2 = 2 tr Cov(P), at t = 200.  This module
rebuilds their set-up from their code:

* the truth: mu* ~ N(0, I_d), Sigma* = A A' + 0.1 I with A standard normal; ``gaussian`` is
  N(mu*, Sigma*) (their "anisotropic"); ``mixture`` puts two components at mu* +- 0.9 u (u a
  random unit vector) with covariances 0.7 Sigma* and 0.9 Sigma* and weights 1/2, 1/2;
  ``unequal-mixture`` the same with weights 0.8, 0.2; ``laplace`` has independent Laplace
  coordinates with location mu* and scale sqrt(diag(Sigma*) / 2);
* the fits: mean and maximum-likelihood covariance (+1e-6 I); a 2-component EM with full
  covariances, warm-started from the previous generation's mixture (their sklearn
  ``GaussianMixture(reg_covar=1e-6, max_iter=100)`` with weights/means/precisions_init);
  coordinate-wise median and mean absolute deviation for the Laplace family;
* the selector: of n / 0.05 draws, keep the n with the smallest Mahalanobis distance to a
  *fixed biased point* u = mu* with half the coordinates shifted by 3 N(0, 1), under
  Sigma_b = 0.3 Sigma* (their ``select_samples``).

Where this differs from their code, and why: generation 0 here is a fit to n real points
(theirs starts from the true model, so its first fit is already to selected samples), so the
pool of ``accumulate`` also holds the real data; the dispersion is computed in closed form from
the fitted model (theirs from 4,096 model samples, a few per cent of noise); the mixture is
fitted by this module's EM (the same updates and stopping rule as sklearn's, vectorised),
because sklearn's fit of the 60,000 points that accumulate gathers takes seconds per
generation here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..experiments import Experiment, RunOutput, register
from ..loop import rng_for, run_generations
from ..regimes import make_regime
from ..settings import Setting
from .mixture import Mixture, cholesky, mixture_moments, sample_mixture

#: the families of Qiao et al.'s non-Gaussian experiment (their names in brackets in the docs)
SELECTION_FAMILIES = ("gaussian", "mixture", "unequal-mixture", "laplace")
#: the regimes of their Table 1
SELECTION_REGIMES_10D = ("replace", "accumulate", "select", "accumulate-select")
#: Table 1 of their README: dispersion ratio at t = 200 (n = 300), per family and regime
PAPER_TABLE = {
    "gaussian": {"accumulate": 0.9646, "accumulate-select": 0.0652, "replace": 0.4221, "select": 0.0},
    "mixture": {"accumulate": 1.0162, "accumulate-select": 0.0729, "replace": 0.5798, "select": 0.0},
    "unequal-mixture": {"accumulate": 1.0263, "accumulate-select": 0.1422, "replace": 0.6449, "select": 0.0},
    "laplace": {"accumulate": 0.9803, "accumulate-select": 0.0161, "replace": 2.2282, "select": 0.0},
}
#: their Table 2: the smallest component weight of the unequal mixture at t = 200 (n = 300)
PAPER_MINORITY_WEIGHT = {"accumulate": 0.2123, "accumulate-select": 0.1692, "replace": 0.1087, "select": 0.0}


@dataclass(frozen=True, eq=False)
class Laplace:
    """Independent Laplace coordinates: location (d,), scale (d,)."""

    loc: np.ndarray
    scale: np.ndarray


@dataclass(frozen=True, eq=False)
class Truth:
    """One run's true distribution and its selector's biased point and metric."""

    model: object          # a Mixture (one component for gaussian) or a Laplace
    target: np.ndarray     # u, the selector's fixed biased point
    metric: np.ndarray     # Sigma_b^-1, the selector's Mahalanobis metric


def make_truth(family: str, dim: int, rng: np.random.Generator) -> Truth:
    """Qiao et al.'s truth and selector for ``family`` (see the module docstring)."""
    mu = rng.normal(size=dim)
    A = rng.normal(size=(dim, dim))
    sigma = A @ A.T + 0.1 * np.eye(dim)
    target = mu.copy()
    shifted = rng.choice(dim, size=max(1, dim // 2), replace=False)
    target[shifted] += 3.0 * rng.normal(size=len(shifted))
    metric = np.linalg.inv(0.3 * sigma)
    direction = rng.normal(size=dim)
    direction /= np.linalg.norm(direction) + 1e-12
    if family == "gaussian":
        model = Mixture(np.ones(1), mu[None], sigma[None])
    elif family in ("mixture", "unequal-mixture"):
        w = np.array([0.5, 0.5]) if family == "mixture" else np.array([0.8, 0.2])
        means = np.stack([mu + 0.9 * direction, mu - 0.9 * direction])
        covs = np.stack([0.7 * sigma, 0.9 * sigma]) + 1e-6 * np.eye(dim)
        model = Mixture(w, means, covs)
    elif family == "laplace":
        model = Laplace(mu.copy(), np.sqrt(np.maximum(np.diag(sigma), 1e-8) / 2.0))
    else:
        raise ValueError(f"family must be one of {', '.join(SELECTION_FAMILIES)}; got {family!r}")
    return Truth(model, target, metric)


def sample_model(model, m: int, rng: np.random.Generator) -> np.ndarray:
    """m points (m, d) from a fitted model of this module."""
    if isinstance(model, Laplace):
        return rng.laplace(model.loc, model.scale, size=(int(m), model.loc.shape[0]))
    return sample_mixture(model, m, rng)


def dispersion(model) -> float:
    """Disp(P) = E||X - X'||^2 = 2 tr Cov(P), in closed form."""
    if isinstance(model, Laplace):
        return float(2.0 * np.sum(2.0 * model.scale**2))
    return float(2.0 * np.trace(mixture_moments(model)[1]))


def _log_gauss(x, means, covs):
    """log N(x; mean_k, cov_k) for each component: (n, K)."""
    chol = cholesky(covs)
    out = np.empty((x.shape[0], means.shape[0]))
    for k in range(means.shape[0]):
        z = np.linalg.solve(chol[k], (x - means[k]).T)
        logdet = 2.0 * np.sum(np.log(np.abs(np.diag(chol[k]))))
        out[:, k] = -0.5 * (np.sum(z**2, axis=0) + logdet + x.shape[1] * math.log(2 * math.pi))
    return out


def em_fit(x: np.ndarray, start: Mixture, reg: float = 1e-6, max_iter: int = 100,
           tol: float = 1e-3) -> Mixture:
    """EM for a full-covariance mixture from ``start``, as sklearn's warm-started
    ``GaussianMixture``: stop when the mean log-likelihood changes by less than ``tol``."""
    from scipy.special import logsumexp

    w, means, covs = start.weights, start.means, start.covariances
    d, last, it, converged = x.shape[1], -np.inf, 0, False
    for it in range(1, max_iter + 1):
        logp = _log_gauss(x, means, covs) + np.log(np.maximum(w, 1e-300))
        norm = logsumexp(logp, axis=1)
        resp = np.exp(logp - norm[:, None])
        nk = resp.sum(axis=0) + 10 * np.finfo(float).eps
        w = nk / x.shape[0]
        means = (resp.T @ x) / nk[:, None]
        covs = np.stack([((resp[:, k, None] * (x - means[k])).T @ (x - means[k])) / nk[k]
                         for k in range(len(nk))]) + reg * np.eye(d)
        ll = float(norm.mean())
        if abs(ll - last) < tol:
            converged = True
            break
        last = ll
    return Mixture(w, means, covs, it, converged)


def fit_model(family: str, data: np.ndarray, previous) -> object:
    """The family's fit (see the module docstring); ``previous`` warm-starts the mixture."""
    x = np.asarray(data, dtype=float)
    if family == "laplace":
        loc = np.median(x, axis=0)
        return Laplace(loc, np.mean(np.abs(x - loc), axis=0) + 1e-6)
    if family == "gaussian":
        cov = np.cov(x.T, bias=True) + 1e-6 * np.eye(x.shape[1])
        return Mixture(np.ones(1), x.mean(axis=0)[None], cov[None])
    return em_fit(x, previous)


def mahalanobis_score(truth: Truth):
    """The selector's ``score(samples, rng)``: minus the squared Mahalanobis distance to u."""
    def score(samples, rng):
        diff = np.asarray(samples) - truth.target
        return -np.einsum("ni,ij,nj->n", diff, truth.metric, diff)
    return score


SETTINGS = {
    # default: the Gaussian, mixture and heavy-tailed rows of their Table 1 (the unequal
    # mixture's accumulate runs cost as much again); paper: all four
    "family": Setting((["gaussian", "mixture", "laplace"], ["gaussian", "mixture", "laplace"],
                       list(SELECTION_FAMILIES)), choices=SELECTION_FAMILIES, sweep=True,
                      help="the true distribution (Qiao et al.'s anisotropic, gmm, unequal_gmm, laplace)"),
    "regime": Setting(list(SELECTION_REGIMES_10D), choices=SELECTION_REGIMES_10D, sweep=True,
                      help="replace or accumulate, with or without the selector"),
    "dim": Setting(10, low=1, help="dimension d (theirs: 10)"),
    "points": Setting((100, 300, 300), low=2, help="n: samples kept per generation (theirs: 300)"),
    "keep": Setting(0.05, low=1e-3, high=1.0, help="selection ratio: keep n of n / keep draws (theirs: 0.05)"),
    "generations": Setting((20, 200, 200), low=0, help="generations after generation 0 (theirs: t = 200)"),
    "seeds": Setting((1, 2, 5), low=1, help="independent runs (theirs: 5)"),
}


def check(s: dict) -> None:
    """Relations between the settings of ``gmm-selection``."""
    if s["points"] <= s["dim"]:
        raise ValueError(f"points must exceed dim ({s['dim']}): a covariance fitted to fewer "
                         f"points is singular; got {s['points']}")


def table_report(record) -> dict:
    """The numbers the curation chapter quotes from a ``gmm-selection`` record: for every family
    and regime the mean over seeds of the dispersion ratio at the last generation
    (``<family>_<regime>``, dashes as underscores) and Qiao et al.'s value (``paper_...``); the
    unequal mixture's smallest weight (``minority_<regime>``) when it ran; and the sizes."""
    S = record.settings
    out = {"n": S["points"], "d": S["dim"], "G": int(record.generations[-1]), "seeds": S["seeds"],
           "keep": S["keep"]}
    for fam in record.values("family"):
        for r in record.values("regime"):
            key = f"{fam}_{r}".replace("-", "_")
            out[key] = float(np.mean(record.metric("dispersion_ratio", family=fam, regime=r)[:, -1]))
            out[f"paper_{key}"] = PAPER_TABLE[fam][r]
            if fam == "unequal-mixture":
                out[f"minority_{r}".replace("-", "_")] = float(np.mean(
                    record.metric("smallest_weight", family=fam, regime=r)[:, -1]))
    return out


def run_selection(settings: dict, *, seed: int = 0, run_dir=None, resume: bool = False,
                  progress: bool = True, stop_after: int | None = None) -> RunOutput:
    """One run of ``gmm-selection``: the family's truth, n real points, then the loop.

    Metrics per generation: ``dispersion_ratio`` = Disp(model) / Disp(truth) (closed form),
    ``mean_error`` = |mean - mu*|^2, and for the mixtures ``smallest_weight`` (their
    "smallest component weight"), for the Laplace family ``mean_abs_scale``.
    """
    family, n = settings["family"], settings["points"]
    truth = make_truth(family, settings["dim"], rng_for(seed, "real", 0))
    real = sample_model(truth.model, n, rng_for(seed, "real", 1))
    disp0 = dispersion(truth.model)
    mu_star = (truth.model.loc if isinstance(truth.model, Laplace)
               else mixture_moments(truth.model)[0])
    previous = {"model": truth.model}   # the EM's warm start: generation 0 starts from the truth

    def fit(data, rng):
        model = fit_model(family, data, previous["model"])
        previous["model"] = model
        return model

    def sample(model, m, rng):
        previous["model"] = model       # a resumed run warm-starts from the restored model
        return sample_model(model, m, rng)

    def measure(g):
        model = g.model
        mean = model.loc if isinstance(model, Laplace) else mixture_moments(model)[0]
        row = {"dispersion_ratio": dispersion(model) / disp0,
               "mean_error": float(np.sum((mean - mu_star) ** 2))}
        if family in ("mixture", "unequal-mixture"):
            row["smallest_weight"] = float(np.min(model.weights))
        if family == "laplace":
            row["mean_abs_scale"] = float(np.mean(model.scale))
        return row

    regime = make_regime(settings["regime"], score=mahalanobis_score(truth), keep=settings["keep"])
    result = run_generations(fit, sample, real, settings["generations"], regime=regime, sizes=n,
                             seed=seed, measure=measure, progress=progress,
                             desc=f"{family} {settings['regime']}", run_dir=run_dir,
                             resume=resume, stop_after=stop_after)
    return RunOutput(result.generations, result.metrics, None, {"dispersion0": disp0})


register(Experiment(
    name="gmm-selection",
    summary="Qiao et al.'s selection bias in 10-D: Gaussian, mixtures, Laplace; replace/accumulate +- select",
    settings=SETTINGS,
    run=run_selection,
    check=check,
    parallel=True,
))
