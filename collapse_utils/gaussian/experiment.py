"""The experiments ``gaussian`` (the Gaussian chapter) and ``gaussian-intro`` (the introduction).

``gaussian`` runs many independent chains of :mod:`.simulate` in one run and records,
per generation, summaries over the chains (mean, standard deviation, median, 10% and
90% quantiles) of each chain's fitted sigma, sigma^2, log sigma^2, log det Sigma,
errors of the mean and of sigma, W_2^2 to D_0, and the spread along a fixed direction;
under ``verify`` also the share of chains whose draw budget ran out
(``verify_short_fraction``).  The curation regimes ``verify`` and ``self-correct``
(1-D, normal D_0) are those of :mod:`.curation`.
Its sweep axes are M, estimator, regime, schedule and source, so one call draws a
figure's every curve, e.g. ``run("gaussian", M=[100, 500, 1000, 10000], estimator="mle")``.

Generations are the loop's: generation 0 is the fit to D_0, generation g the
(g + 1)-th fit, so theory is evaluated at n = g + 1 fits.
"""
from __future__ import annotations

import numpy as np

from ..experiments import Experiment, RunOutput, register
from ..loop import rng_for, run_generations
from ..regimes import CURATION_REGIMES, REGIMES, SCHEDULES, Schedule, make_regime
from ..settings import Setting
from .simulate import (METHODS, SOURCES, fit_normal_1d, prepare, run_chains, sample_normal_1d,
                       sample_source)
from .theory import ESTIMATORS
from .w2 import as_gaussian, quantile_moments, w2_squared, w2_squared_1d, w2_squared_normal_to_sample

#: size of the empirical D_0 that W_2 is measured against when D_0 is not normal
REFERENCE_SIZE = 100_000
#: the statistics over chains recorded for every per-chain quantity
STATS = ("mean", "sd", "median", "q10", "q90")

GAUSSIAN_SETTINGS = {
    "M": Setting([100], low=2, sweep=True, help="samples per generation (M_0 and constant M_i)"),
    "generations": Setting((300, 1000, 1000), low=0,
                           help="generations after generation 0, the fit to D_0"),
    "chains": Setting((1000, 5000, 10000), low=1, help="independent chains in one run"),
    "dim": Setting(1, low=1, help="dimension d (unit variances, every correlation 0.5)"),
    "estimator": Setting(["unbiased"], choices=ESTIMATORS, sweep=True,
                         help="variance estimator: unbiased, or mle as the public code's np.std"),
    "regime": Setting(["replace"], choices=REGIMES + CURATION_REGIMES, sweep=True,
                      help="what each generation trains on"),
    "real_fraction": Setting(0.1, low=0.0, high=1.0, help="share of real data under keep-real"),
    "verifier_error": Setting([0.1], low=0.0, high=1.0, sweep=True,
                              help="verify: probability that a decision is a guess (1: uninformative, replace)"),
    "verify_window": Setting(3.0, low=0.5, help="verify: the verifier certifies |x - mu| <= this many sigma"),
    "max_rounds": Setting(50, low=1, help="verify: at most this many batches of M draws per generation"),
    "gamma": Setting([0.3], low=0.0, high=1.0, sweep=True,
                     help="self-correct: share of the way each sample moves to the real distribution"),
    "schedule": Setting(["constant"], choices=SCHEDULES, sweep=True, help="sample sizes M_i"),
    "power": Setting(2.0, low=1.0, help="M_i = M (i+1)^power for the superlinear schedule (> 1)"),
    "source": Setting(["normal"], choices=SOURCES, sweep=True,
                      help="D_0: normal, or a 1-D laplace or two-modes law with mean 0, variance 1"),
    "method": Setting("stats", choices=METHODS,
                      help="draw sufficient statistics (exact, fast) or the points themselves"),
}


def check_gaussian(s: dict) -> None:
    """Relations between the settings of ``gaussian``."""
    if min(s["M"]) <= s["dim"]:
        raise ValueError(f"M must exceed dim ({s['dim']}): a fit to M <= dim points in dim "
                         f"dimensions has a singular covariance; got M {min(s['M'])}")
    if "superlinear" in s["schedule"] and not s["power"] > 1:
        raise ValueError(f"power must be > 1 for a superlinear schedule; got {s['power']}")
    if s["dim"] > 1 and any(src != "normal" for src in s["source"]):
        raise ValueError(f"source must be normal when dim > 1 (the others are 1-D); got {s['source']}")
    if set(CURATION_REGIMES) & set(s["regime"]) and (s["dim"] > 1 or any(src != "normal" for src in s["source"])):
        raise ValueError("regime verify and self-correct need dim 1 and source normal (they know the "
                         f"real N(0, 1)); got dim {s['dim']}, source {s['source']}")
    if "accumulate-subsample" in s["regime"] and s["method"] != "points":
        raise ValueError("method must be points for regime accumulate-subsample (a random subset "
                         "of pooled samples has no exact sufficient-statistics law)")


def example_covariance(d: int, rho: float = 0.5) -> np.ndarray:
    """The book's d-D covariance: unit variances, every correlation ``rho``."""
    d = Setting(1, low=1).check("d", d)
    return (1 - rho) * np.eye(d) + rho * np.ones((d, d))


def probe_direction(d: int) -> np.ndarray:
    """The fixed direction v of the ``direction_sigma`` metric: (1, -1, 0.5, 1, -1, ...)[:d]."""
    return np.resize(np.array([1.0, -1.0, 0.5]), d)


def chain_summaries(means, covs, mean0, cov0, *, moments=None) -> dict:
    """Per-chain quantities of fitted Gaussians (..., d), (..., d, d) against D_0.

    ``sigma`` = sqrt(tr(Sigma_n) / d) (the std in 1-D), ``sigma_squared``,
    ``log_sigma_squared``, ``mean_error_squared`` = |mu_n - mu|^2,
    ``sigma_error_squared`` = (sigma_n - sigma_0)^2 and ``w2_squared``: W_2^2 to
    N(mean0, cov0), or, given ``moments`` of a 1-D sample of D_0, to its empirical
    distribution.  For d > 1 also ``log_det``, ``direction_sigma`` =
    sqrt(v' Sigma_n v / v' Sigma v) along :func:`probe_direction`, ``top_eigenvalue``
    and ``log10_condition``.
    """
    means, covs = np.asarray(means, dtype=float), np.asarray(covs, dtype=float)
    mean0, cov0 = as_gaussian(mean0, cov0)
    d = means.shape[-1]
    s2 = covs[..., 0, 0] if d == 1 else np.trace(covs, axis1=-2, axis2=-1) / d
    sigma = np.sqrt(np.clip(s2, 0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {
            "sigma": sigma,
            "sigma_squared": s2,
            "log_sigma_squared": np.log(s2),
            "mean_error_squared": np.sum((means - mean0) ** 2, axis=-1),
            "sigma_error_squared": (sigma - np.sqrt(np.trace(cov0) / d)) ** 2,
        }
        if d > 1:
            v, ev = probe_direction(d), np.linalg.eigvalsh(covs)
            out["log_det"] = np.linalg.slogdet(covs)[1]
            out["direction_sigma"] = np.sqrt(np.einsum("i,...ij,j->...", v, covs, v) / (v @ cov0 @ v))
            out["top_eigenvalue"] = ev[..., -1]
            out["log10_condition"] = np.log10(ev[..., -1] / ev[..., 0])
    if moments is None and d == 1:   # (m - m0)^2 + (s - s0)^2, without re-checking covariances
        out["w2_squared"] = out["mean_error_squared"] + out["sigma_error_squared"]
    elif moments is None:
        out["w2_squared"] = w2_squared(means, covs, mean0, cov0)
    else:
        if d != 1:
            raise ValueError("moments (of an empirical D_0) are only supported in 1-D")
        out["w2_squared"] = w2_squared_normal_to_sample(means[..., 0], sigma, moments=moments)
    return out


def summarise(per_chain: dict, sigma0: float = 1.0) -> dict:
    """One generation's metrics: :data:`STATS` over chains of every per-chain quantity
    (``sigma_mean``, ``sigma_sd``, ...) and the share of chains whose sigma fell below
    the original ``sigma0`` (``frac_sigma_below_original``)."""
    names = list(per_chain)
    table = np.stack([per_chain[k] for k in names])            # (quantities, chains)
    with np.errstate(invalid="ignore"):
        q10, median, q90 = np.quantile(table, [0.1, 0.5, 0.9], axis=1)
        stats = {"mean": table.mean(1), "median": median, "q10": q10, "q90": q90,
                 "sd": table.std(1, ddof=1) if table.shape[1] > 1 else np.zeros(len(names))}
    row = {f"{k}_{s}": float(stats[s][i]) for i, k in enumerate(names) for s in STATS}
    row["frac_sigma_below_original"] = float(np.mean(per_chain["sigma"] < sigma0))
    if "log10_condition" in per_chain:
        row["log10_condition_max"] = float(np.max(per_chain["log10_condition"]))
    return row


def chain_mean(record, quantity: str, **selection) -> tuple[np.ndarray, np.ndarray]:
    """(mean over chains, its standard error sd / sqrt(chains)) of ``quantity`` per generation,
    for the one run of ``record`` that ``selection`` names."""
    record.one(**selection)
    mean = record.metric(f"{quantity}_mean", **selection)[0]
    sd = record.metric(f"{quantity}_sd", **selection)[0]
    return mean, sd / np.sqrt(record.settings["chains"])


def run_gaussian(settings: dict, *, seed: int = 0, run_dir=None, resume: bool = False,
                 progress: bool = True, stop_after: int | None = None) -> RunOutput:
    """One run of ``gaussian``: ``chains`` chains through the core loop, summarised per generation.

    W_2 is measured in closed form to a normal D_0, and through quantiles against
    :data:`REFERENCE_SIZE` samples of D_0 (stream "reference") otherwise.  Facts: each
    chain's sigma^2 at the last generation; for a non-normal D_0 also the reference's
    quantile moments and the expressivity error W_2^2(N(0, 1), D_0).
    """
    d, source, M, chains = settings["dim"], settings["source"], settings["M"], settings["chains"]
    schedule = Schedule(settings["schedule"], M, float(settings["power"]))
    mean0 = np.zeros(d)
    cov0 = example_covariance(d) if source == "normal" else np.eye(1)
    real = reference = None
    facts = {}
    if source != "normal":
        real = sample_source(source, (chains, M), rng_for(seed, "real"))
        reference = quantile_moments(sample_source(source, REFERENCE_SIZE, rng_for(seed, "reference")))
        facts["reference_moments"] = [float(x) for x in reference]
        facts["expressivity_w2_squared"] = float(w2_squared_normal_to_sample(0.0, 1.0, moments=reference))
    curation = {k: settings[k] for k in ("verifier_error", "verify_window", "max_rounds", "gamma")}
    prep = prepare(mean0, cov0, M, settings["generations"], chains, settings["estimator"], seed,
                   settings["regime"], schedule, settings["real_fraction"], settings["method"], real,
                   curation)
    G = prep["generations"]

    verifier = getattr(prep["regime"], "accept", None)

    def measure(g):
        per_chain = chain_summaries(*g.model, mean0, cov0, moments=reference)
        row = summarise(per_chain, 1.0)
        row["chain0_mean"], row["chain0_sigma"] = float(g.model[0][0, 0]), float(per_chain["sigma"][0])
        if verifier is not None:   # the share of chains whose draw budget ran out before M were accepted
            short = 0.0 if g.index == 0 else float(np.mean(verifier.accepted < M))
            row["verify_short_fraction"] = short
        return row

    result = run_chains(prep, measure, run_dir=run_dir, resume=resume, progress=progress,
                        desc="gaussian", stop_after=stop_after, keep_models=[G])
    if G in result.models:
        covs = result.models[G][1]
        facts["last_sigma_squared"] = (np.trace(covs, axis1=-2, axis2=-1) / d).tolist()
    return RunOutput(result.generations, result.metrics, None, facts)


register(Experiment(
    name="gaussian",
    summary="Gaussian refitted each generation (Theorem 3.1): W2, sigma, E[sigma^2] per generation",
    settings=GAUSSIAN_SETTINGS,
    run=run_gaussian,
    check=check_gaussian,
))


#: the curation chapter's sizes: ``verify`` draws up to ``max_rounds`` batches of points per
#: generation, so it runs fewer chains than the Gaussian chapter
CURATION_SETTINGS = {
    **GAUSSIAN_SETTINGS,
    "generations": Setting((30, 100, 300), low=0, help="generations after generation 0, the fit to D_0"),
    "chains": Setting((60, 200, 1000), low=1, help="independent chains in one run (the band)"),
    "regime": Setting(["verify"], choices=REGIMES + CURATION_REGIMES, sweep=True,
                      help="what each generation trains on"),
    "verifier_error": Setting(([0.0, 0.5, 0.95], [0.0, 0.25, 0.5, 0.75, 0.9, 0.95],
                               [0.0, 0.25, 0.5, 0.75, 0.9, 0.95]), low=0.0, high=1.0, sweep=True,
                              help="verify: probability that a decision is a guess (1: uninformative, replace)"),
    "gamma": Setting([0.2], low=0.0, high=1.0, sweep=True,
                     help="self-correct: share of the way each sample moves to the real distribution"),
    "method": Setting("points", choices=METHODS, help="the curation regimes act on single points"),
}

register(Experiment(
    name="gaussian-curation",
    summary="1-D Gaussian refitted each generation under verify and self-correct (curation chapter)",
    settings=CURATION_SETTINGS,
    run=run_gaussian,
    check=check_gaussian,
))


# ----------------------------------------------------------------------------- the introduction's experiment
INTRO_SETTINGS = {
    "M": Setting(100, low=2, help="samples per generation"),
    "generations": Setting((60, 150, 200), low=0, help="generations after generation 0"),
    "chains": Setting((100, 500, 1000), low=1, help="independent chains per regime"),
    "regime": Setting(["replace", "accumulate"], choices=REGIMES, sweep=True,
                      help="what each generation trains on"),
}


def run_intro(settings: dict, *, seed: int = 0, run_dir=None, resume: bool = False,
              progress: bool = True, stop_after: int | None = None) -> RunOutput:
    """One regime of ``gaussian-intro``: N(0, 1) refitted by unbiased mean and variance, drawing
    the points themselves, many chains in one array (chains x samples).

    Metrics per generation: each chain's sigma and W_2^2 to N(0, 1), their means across
    chains, the mean of sigma^2, and the training set's size.
    """
    M, n, chains = settings["M"], settings["generations"], settings["chains"]
    real = rng_for(seed, "real").standard_normal((chains, M))

    def measure(g):
        mean, std = g.model
        w2 = w2_squared_1d(mean, std)
        return {"sigma": std, "w2_squared": w2, "sigma_mean": float(std.mean()),
                "sigma_squared_mean": float((std**2).mean()), "w2_squared_mean": float(w2.mean()),
                "train_size": int(np.shape(g.train)[1])}

    result = run_generations(
        fit_normal_1d, sample_normal_1d, real, n, regime=make_regime(settings["regime"]), sizes=M,
        seed=seed, measure=measure, axis=1, progress=progress, desc=settings["regime"],
        run_dir=run_dir, resume=resume, stop_after=stop_after)
    return RunOutput(result.generations, result.metrics, None)


register(Experiment(
    name="gaussian-intro",
    summary="1-D Gaussian refitted each generation, replace vs accumulate (intro chapter)",
    settings=INTRO_SETTINGS,
    run=run_intro,
))
