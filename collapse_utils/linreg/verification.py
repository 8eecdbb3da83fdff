"""An imperfect verifier: it helps, then stops helping (Yi, Liu, Cheng and Xu 2025).

Yi et al. ("Escaping model collapse via synthetic data verification", arXiv:2510.16657,
ICLR 2026; code liuqiyuanhhh/Verified-Synthetic-Data, ``simulation/``) study a verifier
whose own knowledge is biased: in linear regression it believes the weights are
beta' = beta* + a (1, ..., 1) and keeps a synthetic pair (x, y) when
|y - x . beta'| <= gamma |x| + sqrt(2/pi) sigma (their ``threshold``).  Retraining on verified
synthetic data then moves the model towards beta', the verifier's "knowledge centre": it
gains while the model is further from beta* than the verifier is, and converges to the
verifier's own error |beta' - beta*|^2 = d a^2.

Here the loop is the book's: generation 0 fits ``real`` real pairs; every later generation
draws pairs from the newest model (fresh features, labels x . beta_t + noise) and trains on
``samples`` of them that the verifier accepts, through the core's ``verify`` regime (which
draws batches until that many are accepted).  The verifier's bias a is the quality axis.

**The population map** (gamma = 0, the constant threshold c = sqrt(2/pi) sigma).  With
delta = beta_t - beta' and u = x . delta / |delta| ~ N(0, 1), a pair's residual against
beta' is r = |delta| u + sigma z, and only the direction of delta carries signal, so least
squares on infinitely many accepted pairs gives beta_{t+1} - beta' = h(|delta|) delta / |delta|
with

    h(s) = E[u m_s(u)] / E[u^2 P_s(u)],   P_s(u) = Phi(b) - Phi(a),
    m_s(u) = s u P_s(u) + sigma (phi(a) - phi(b)),   a, b = (-c - s u) / sigma, (c - s u) / sigma

(the mean of N(s u, sigma^2) truncated to [-c, c] times its mass; :func:`contraction`).
h(s) < s: the model walks straight towards beta', by a factor rho_t = h^t(s_0)/s_0 of its
starting offset, so beta_t - beta* = rho_t e_0 + (1 - rho_t) b with e_0 = beta_0 - beta* and
b = beta' - beta*, and E|beta_t - beta*|^2 = rho_t^2 E|e_0|^2 + (1 - rho_t)^2 d a^2 when e_0
and rho are independent.  It dips below both the generator's error E|e_0|^2 and the
verifier's d a^2 (at rho = d a^2 / (E|e_0|^2 + d a^2)) and then rises to d a^2.
The finite samples of each generation add a floor near beta' (:func:`noise_floor`).
:func:`population_error` iterates the map from each chain's own generation 0.
"""
from __future__ import annotations

import math

import numpy as np

from ..experiments import Experiment, RunOutput, register
from ..loop import rng_for, run_generations
from ..regimes import Verify, Replace
from ..settings import Setting
from . import simulate as sim

_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(120)   # E f(u), u ~ N(0, 1)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def threshold(x: np.ndarray, sigma: float, width: float) -> np.ndarray:
    """Their acceptance threshold gamma |x| + sqrt(2/pi) sigma (``width`` is gamma)."""
    return width * np.linalg.norm(x, axis=-1) + math.sqrt(2 / math.pi) * sigma


def verifier(belief: np.ndarray, sigma: float, width: float = 0.0):
    """``accept(pairs, rng)`` of the core's ``verify``: keep a pair when its label lies within
    the threshold of the verifier's prediction x . beta' (``belief``)."""
    def accept(samples, rng):
        x, y = samples[..., :-1], samples[..., -1]
        return np.abs(y - x @ belief) <= threshold(x, sigma, width)
    return accept


def contraction(s, sigma: float = 1.0, c: float | None = None) -> np.ndarray:
    """h(s): the offset |beta_{t+1} - beta'| after one generation of infinitely many verified
    pairs, from an offset s (module docstring).  ``c`` defaults to sqrt(2/pi) sigma."""
    from scipy.stats import norm

    c = math.sqrt(2 / math.pi) * sigma if c is None else c
    s = np.asarray(s, dtype=float)[..., None]
    u = _NODES
    a, b = (-c - s * u) / sigma, (c - s * u) / sigma
    P = norm.cdf(b) - norm.cdf(a)
    m = s * u * P + sigma * (norm.pdf(a) - norm.pdf(b))
    return (u * m) @ _WEIGHTS / ((u**2 * P) @ _WEIGHTS)


def noise_floor(d: int, samples: int, sigma: float = 1.0) -> float:
    """The least-squares error that ``samples`` verified pairs add each generation once the model
    sits at beta': their residuals are N(0, sigma^2) cut to [-c, c], of variance
    kappa sigma^2 (:func:`~collapse_utils.gaussian.theory.truncated_variance`), so one fit adds
    kappa sigma^2 d / (samples - d - 1); the map carries a share h'(0)^2 of it on, hence the
    geometric sum."""
    from ..gaussian.theory import truncated_variance

    kappa = truncated_variance(math.sqrt(2 / math.pi))
    slope = float(contraction(1e-6, sigma)) / 1e-6
    return kappa * sigma**2 * d / (samples - d - 1) / (1 - slope**2)


def population_error(e0: np.ndarray, bias: np.ndarray, generations: int, sigma: float = 1.0,
                     samples: int | None = None) -> np.ndarray:
    """Mean over chains of |beta_t - beta*|^2 for t = 0..``generations`` when every later
    generation follows the population map from the chain's own generation 0; ``e0`` is
    (chains, d) of beta_0 - beta*, ``bias`` is b = beta' - beta*.  With ``samples``, each later
    generation also carries :func:`noise_floor` (the finite-sample error near beta')."""
    delta = e0 - bias
    s0 = np.linalg.norm(delta, axis=-1)
    s, out = s0.copy(), []
    floor = 0.0 if samples is None else noise_floor(e0.shape[-1], samples, sigma)
    for t in range(int(generations) + 1):
        rho = np.where(s0 > 0, s / np.where(s0 > 0, s0, 1.0), 0.0)
        out.append(float(np.mean(np.sum((rho[:, None] * delta + bias) ** 2, axis=-1)))
                   + (floor if t > 0 else 0.0))
        s = contraction(s, sigma)
    return np.array(out)


def verifier_report(verified, replaced=None) -> dict:
    """The numbers the curation chapter quotes: per verifier bias (``<tag>``, the bias without
    its dot) the mean error at generation 0, 1, its minimum and the last generation, the
    population map's last value and the verifier's own error d a^2 (``own_<tag>``), and the
    standard error at the end; with ``replaced``, the last error without a verifier."""
    S = verified.settings
    out = {"d": S["d"], "real": S["real"], "samples": S["samples"], "chains": S["chains"],
           "G": int(verified.generations[-1]), "floor": noise_floor(S["d"], S["samples"], S["noise"])}
    for a in verified.values("verifier_bias"):
        tag = f"{a:g}".replace(".", "")
        sel = dict(verifier_bias=a, **({"regime": "verify"} if "regime" in verified.axes else {}))
        e = verified.metric("error", **sel)[0]
        out.update({f"start_{tag}": float(e[0]), f"first_{tag}": float(e[1]), f"min_{tag}": float(e.min()),
                    f"end_{tag}": float(e[-1]), f"own_{tag}": S["d"] * a**2,
                    f"pop_{tag}": float(verified.fact("population", **sel)[-1]),
                    f"se_{tag}": float(verified.metric("error_sd", **sel)[0, -1]) / math.sqrt(S["chains"])})
    if replaced is not None:
        out["replace_end"] = float(replaced.metric("error")[0, -1])
    return out


SETTINGS = {
    "d": Setting(5, low=1, help="number of features (theirs: 5)"),
    "real": Setting(100, low=3, help="real pairs of generation 0 (theirs: n1 = 100)"),
    "samples": Setting((200, 1000, 1000), low=3, help="verified pairs each later generation trains on"),
    "noise": Setting(1.0, low=0.0, help="label noise sigma"),
    "verifier_bias": Setting([0.0, 0.05, 0.1, 0.2], low=0.0, sweep=True,
                             help="a: the verifier believes beta* + a (1, ..., 1) (theirs: 0 to 0.25)"),
    "width": Setting(0.0, low=0.0, help="gamma of the threshold gamma |x| + sqrt(2/pi) sigma (0: constant)"),
    "regime": Setting(["replace", "verify"], choices=("replace", "verify"), sweep=True,
                      help="replace: no verifier; verify: train on accepted pairs only"),
    "max_rounds": Setting(50, low=1, help="verify: at most this many batches per generation"),
    "generations": Setting((8, 20, 60), low=0, help="generations after generation 0"),
    "chains": Setting((100, 200, 1000), low=1, help="independent chains (the band)"),
}


def check(s: dict) -> None:
    if min(s["real"], s["samples"]) <= s["d"] + 1:
        raise ValueError(f"real and samples must exceed d + 1 ({s['d'] + 1}) for least squares; "
                         f"got real {s['real']}, samples {s['samples']}")


def run_verifier(settings: dict, *, seed: int = 0, run_dir=None, resume: bool = False,
                 progress: bool = True, stop_after: int | None = None) -> RunOutput:
    """One run of ``linear-regression-verifier``: metrics per generation are the mean over
    chains of |beta_t - beta*|^2 (``error``), its sd over chains (``error_sd``), the mean of
    |beta_t - beta'|^2 (``to_verifier``) and the population map's error (``population``)."""
    d, sigma, chains = settings["d"], settings["noise"], settings["chains"]
    w_star = sim.true_weights(d, rng_for(seed, "real", 0))
    bias = np.full(d, float(settings["verifier_bias"]))
    belief = w_star + bias
    real = sim.real_pairs(w_star, chains, settings["real"], sigma, rng_for(seed, "real", 1))
    regime = (Verify(verifier(belief, sigma, settings["width"]), settings["max_rounds"])
              if settings["regime"] == "verify" else Replace())
    def measure(g):
        err = np.sum((g.model - w_star) ** 2, axis=-1)
        return {"error": float(err.mean()), "error_sd": float(err.std(ddof=1)) if chains > 1 else 0.0,
                "to_verifier": float(np.mean(np.sum((g.model - belief) ** 2, axis=-1)))}

    result = run_generations(
        lambda data, rng: sim.fit_ols(data), lambda w, k, rng: sim.sample_pairs(w, k, sigma, rng),
        real, settings["generations"], regime=regime, sizes=settings["samples"], seed=seed,
        measure=measure, axis=1, progress=progress, desc=f"{settings['regime']} a={bias[0]:g}",
        run_dir=run_dir, resume=resume, stop_after=stop_after)
    # the population map from each chain's generation 0 (recomputed on resume: deterministic)
    e0 = sim.fit_ols(real) - w_star
    facts = {"verifier_error": float(np.sum(bias**2)),
             "population": population_error(e0, bias, settings["generations"], sigma,
                                            settings["samples"]).tolist()
             if settings["width"] == 0 else None}
    return RunOutput(result.generations, result.metrics, None, facts)


register(Experiment(
    name="linear-regression-verifier",
    summary="least squares retrained on pairs a biased verifier accepts: gains, then the verifier's bias (Yi et al.)",
    settings=SETTINGS,
    run=run_verifier,
    check=check,
))
