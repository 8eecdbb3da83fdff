"""Self-consuming loops on a 1-D Gaussian: fully synthetic, synthetic augmentation, fresh data.

A small simulation of its own (the Gaussian chapter's package is not used), for the
three loops of Alemohammad et al. (2023) and the share lambda of generated data of
Bertrand et al. (2023).  Real data are N(0, 1); each generation fits the sample
mean and the unbiased sample variance of its training set, in ``chains`` chains
at once (chains along axis 0, samples along axis 1).

* ``fully-synthetic``: M fresh samples of the newest model (the core's replace);
* ``synthetic-augmentation``: the same M real samples D_0 every generation, plus
  S = lambda M / (1 - lambda) fresh model samples (a share lambda of the set);
* ``fresh-data``: lambda M fresh model samples and (1 - lambda) M real samples never
  seen before.

Exact moments.  Given the previous fit (mu, s2), every new mean is a weighted mean
of independent group means, and the pooled sum of squares splits into within- and
between-group parts, so E mu^2, E mu m_0 (m_0 = the mean of D_0) and E s2 follow a
linear recursion that :func:`loop_moments` iterates without approximation.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..experiments import Experiment, RunOutput, register
from ..loop import rng_for, run_generations
from ..regimes import Regime, Replace, concat
from ..settings import Setting

LOOPS = ("fully-synthetic", "synthetic-augmentation", "fresh-data")


def group_sizes(loop: str, M: int, share: float) -> tuple[int, int]:
    """(model samples, real samples) in each later generation's training set."""
    if loop == "fully-synthetic":
        return M, 0
    if loop == "synthetic-augmentation":
        return int(round(share * M / (1 - share))), M
    a = int(round(share * M))
    return a, M - a


@dataclass(frozen=True, repr=False)
class Augment(Regime):
    """The real data D_0 every generation plus ``synthetic`` fresh model samples."""

    synthetic: int = 0
    name = "synthetic-augmentation"

    def next_data(self, draw, m, *, previous, real, pool, rng, axis=1):
        new = draw(self.synthetic)
        return concat([real, new], axis), new


@dataclass(frozen=True, repr=False)
class FreshData(Regime):
    """``synthetic`` fresh model samples and ``fresh`` real samples never seen before."""

    synthetic: int = 0
    fresh: int = 0
    name = "fresh-data"

    def next_data(self, draw, m, *, previous, real, pool, rng, axis=1):
        new = draw(self.synthetic)
        return concat([new, rng.standard_normal((real.shape[0], self.fresh))], axis), new


def loop_moments(loop: str, M: int, share: float, generations: int) -> dict:
    """Exact E mu_n^2 and E s2_n for n = 0..generations (see the module docstring).

    With a model samples from N(mu, s2) (group mean m_s) and b real ones (mean m_r,
    E m_r^2 = 1/b), n = a + b:  mu' = (a m_s + b m_r) / n, and the pooled sum of
    squares is SS_s + SS_r + (a b / n)(m_s - m_r)^2 with E SS_s = (a - 1) E s2 and
    E SS_r = b - 1.  Under synthetic augmentation m_r is m_0, the mean of D_0 that
    generation 0 fitted, so E[m_s m_r] = E[mu m_0] =: c is tracked too; fresh real
    data are independent of the past (c plays no part).
    """
    a, b = group_sizes(loop, M, share)
    n = a + b
    fixed_real = loop == "synthetic-augmentation"
    mu2, c, s2 = 1.0 / M, 1.0 / M, 1.0          # generation 0: mu = m_0, E s2 = 1
    out = {"mu2": [mu2], "s2": [s2]}
    for _ in range(generations):
        ms2 = mu2 + s2 / a                       # E m_s^2
        mr2 = 1.0 / b if b else 0.0              # E m_r^2
        cross = c if fixed_real else 0.0         # E m_s m_r
        ss = (a - 1) * s2
        if b:
            ss += (b - 1) + (a * b / n) * (ms2 + mr2 - 2 * cross)
        mu2_next = (a * a * ms2 + b * b * mr2 + 2 * a * b * cross) / n ** 2
        c = (a * c + b / M) / n if fixed_real else 0.0
        mu2, s2 = mu2_next, ss / (n - 1)
        out["mu2"].append(mu2)
        out["s2"].append(s2)
    return {k: np.asarray(v) for k, v in out.items()}


SETTINGS = {
    "samples": Setting(50, low=2, help="real samples M of generation 0 (and of fresh data)"),
    "loop": Setting(list(LOOPS), choices=LOOPS, sweep=True, help="how each training set is made"),
    "synthetic_share": Setting([0.5], low=0.0, high=0.95, sweep=True,
                               help="share lambda of model samples in a training set"),
    "generations": Setting((10, 100, 200), low=0, help="generations after the fit to D_0"),
    "chains": Setting((1000, 2000, 10000), low=1, help="independent chains (the band)"),
}


def run_loops(settings, *, seed, run_dir, resume, progress, stop_after=None):
    """One run of ``self-consuming-gaussian``: one loop, one share lambda."""
    loop, M, share = settings["loop"], settings["samples"], settings["synthetic_share"]
    a, b = group_sizes(loop, M, share)
    regime = {"fully-synthetic": Replace(), "synthetic-augmentation": Augment(a),
              "fresh-data": FreshData(a, b)}[loop]
    real = rng_for(seed, "real").standard_normal((settings["chains"], M))
    exact = loop_moments(loop, M, share, settings["generations"])

    def measure(g):
        mu2, s2 = g.model[0][:, 0] ** 2, g.model[1][:, 0]
        q = np.quantile(mu2, (0.1, 0.9))
        return {"mean_error": float(mu2.mean()), "mean_error_se": float(mu2.std(ddof=1) / np.sqrt(mu2.size)),
                "mean_error_q10": float(q[0]), "mean_error_q90": float(q[1]),
                "mean_error_theory": float(exact["mu2"][g.index]),
                "variance": float(s2.mean()), "variance_se": float(s2.std(ddof=1) / np.sqrt(s2.size)),
                "variance_median": float(np.median(s2)), "variance_theory": float(exact["s2"][g.index])}

    result = run_generations(
        lambda x, rng: (x.mean(axis=1, keepdims=True), x.var(axis=1, ddof=1, keepdims=True)),
        lambda m, k, rng: m[0] + np.sqrt(m[1]) * rng.standard_normal((m[0].shape[0], k)),
        real, settings["generations"], regime=regime, sizes=a or M, seed=seed, measure=measure,
        axis=1, run_dir=run_dir, resume=resume, progress=progress, desc=f"{loop} {share:g}",
        stop_after=stop_after)
    return RunOutput(result.generations, result.metrics, None, {"model_samples": a, "real_samples": b})


register(Experiment(
    "self-consuming-gaussian",
    "1-D Gaussian loops: fully synthetic, synthetic augmentation, fresh data (share lambda)",
    settings=SETTINGS, run=run_loops))
