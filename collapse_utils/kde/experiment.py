"""The ``kde`` experiment: kernel density estimates refitted on their own samples.

Borji (2024) refits a KDE on samples of the previous KDE and finds that how far the
result lies from the original depends on the distance used.  Here every definition
the chapter tabulates is measured on the same chains: the KDE's variance (with its
exact expectation, :mod:`.theory`), its tail mass, KL(p_0 || p_n) (the real-test
loss minus the real entropy), total variation and W2.  One run is one bandwidth
rule and one regime, with ``chains`` chains along axis 0 of one array.
"""
from __future__ import annotations

import numpy as np

from ..experiments import Experiment, RunOutput, register
from ..loop import rng_for, run_generations
from ..regimes import REGIMES, make_regime
from ..settings import Setting
from . import measure as me
from . import simulate as sim
from . import theory

#: the per-chain metrics (one value per chain and generation)
PER_CHAIN = ("variance", "tail_mass", "kl", "tv", "w2")

SETTINGS = {
    "samples": Setting(100, low=2, help="points per generation, M (the real data too)"),
    "generations": Setting((8, 40, 100), low=0, help="generations after the fit to real data"),
    "chains": Setting((100, 200, 1000), low=1, help="independent chains (the band)"),
    "bandwidth": Setting(["scott", "fixed"], choices=sim.BANDWIDTH_RULES, sweep=True,
                         help="bandwidth rule: scott s M^(-1/5), silverman s (3M/4)^(-1/5), "
                              "or fixed_bandwidth"),
    "fixed_bandwidth": Setting(0.1, low=1e-3, high=10.0,
                               help="h of the fixed rule (0.1 = sigma/sqrt(M): E[variance] "
                                    "stays at sigma^2)"),
    "real": Setting("gaussian", choices=sim.REAL,
                    help="real distribution: N(0, 1), or 0.5 N(-2, 0.25) + 0.5 N(2, 0.25)"),
    "regime": Setting(["replace"], choices=REGIMES, sweep=True, help="data regime"),
    "real_fraction": Setting(0.1, low=0.0, high=1.0, help="share of real points under keep-real"),
}


def variance_theory(settings: dict, fits: int) -> float:
    """E[variance of the KDE] after ``fits`` fits, or NaN where no closed form is known."""
    if settings["regime"] != "replace":
        return float("nan")
    return float(theory.expected_variance(fits, settings["bandwidth"], settings["samples"],
                                          sim.real_variance(settings["real"]),
                                          settings["fixed_bandwidth"]))


def run_kde(settings, *, seed, run_dir, resume, progress, stop_after=None):
    """One run of ``kde``: one bandwidth rule, one regime, ``chains`` chains."""
    rule, real, M = settings["bandwidth"], settings["real"], settings["samples"]
    fixed = settings["fixed_bandwidth"]
    data = sim.real_sample(real, settings["chains"], M, rng_for(seed, "real"))
    regime = make_regime(settings["regime"], real_fraction=settings["real_fraction"])

    def measure(g):
        kde = g.model
        kl, tv = me.kl_tv_to_real(kde, real)
        values = {"variance": kde.variance, "tail_mass": me.tail_mass(kde, real), "kl": kl,
                  "tv": tv, "w2": me.w2_to_real(kde, real)}
        out = {name: values[name].tolist() for name in PER_CHAIN}
        out["variance_theory"] = variance_theory(settings, g.index + 1)
        out["variance_se"] = float(values["variance"].std(ddof=1) / np.sqrt(kde.h.size)
                                   if kde.h.size > 1 else 0.0)
        return out

    result = run_generations(lambda x, rng: sim.fit_kde(x, rule, fixed),
                             lambda kde, k, rng: sim.sample_kde(kde, k, rng),
                             data, settings["generations"], regime=regime, seed=seed,
                             measure=measure, axis=1, run_dir=run_dir, resume=resume,
                             progress=progress, desc=f"KDE, {rule}, {settings['regime']}",
                             stop_after=stop_after)
    facts = {"real_variance": sim.real_variance(real), "real_tail_mass": me.real_tail_mass(real),
             "critical_bandwidth": theory.critical_bandwidth(M, sim.real_variance(real))}
    return RunOutput(result.generations, result.metrics, None, facts)


register(Experiment(
    "kde",
    "kernel density estimates refitted on their own samples: KL, W2, TV, variance and tails "
    "disagree on whether it collapses",
    settings=SETTINGS, run=run_kde, parallel=True))
