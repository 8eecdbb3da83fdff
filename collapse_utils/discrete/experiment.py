"""The family's registered experiments, and the readers the chapter uses on their records.

``discrete``             Zipf(K, s) refitted exactly over many chains, one run per regime
                         (replace, keep-real, accumulate; verify and self-correct, whose
                         verifier and corrector know p0: :mod:`.simulate`): support,
                         diversity, per-state survival and mean p per generation.
``discrete-absorption``  absorption times over a sweep of M (two states at p = 1/2 by default).
``discrete-fixation``    where the chains end: Zipf(5, 1), M = 20, many chains.

Generation 0 of every chain fits its real data D_0, an M-sample of p0
(``rng_for(seed, "real")``); generation n is fit n + 1 of :mod:`.theory`.

Checkpoints: a run takes seconds (the default ``discrete`` run, 2,000 chains x
1,000 generations, about two), while saving every generation of 2,000 chains
would write hundreds of megabytes (``accumulate`` re-reads its whole training
set).  So generations are not saved: the core caches each finished run, and an
interrupted one (``stop_after``) is recomputed from its seed on ``resume``,
which gives exactly the uninterrupted result.
"""
from __future__ import annotations

import math

import numpy as np

from ..experiments import Experiment, RunOutput, register
from ..settings import Setting
from .simulate import entropy, gini_simpson, run_chains, support_size
from .theory import check_distribution, zipf

#: the regimes this family runs on counts (:mod:`.simulate`)
REGIME_CHOICES = ("replace", "keep-real", "accumulate", "verify", "self-correct")

P0 = Setting(None, kind=list, optional=True,
             help="an explicit p0 (a JSON list); when given, K and zipf_exponent are not used")

SETTINGS = {
    "K": Setting(20, low=1, help="number of states"),
    "zipf_exponent": Setting(1.5, low=0.0, kind=float,
                             help="p0(k) proportional to k^-s; 0 is uniform, larger is a lighter tail"),
    "M": Setting(100, low=1, help="samples per generation, and in the real data D_0"),
    "generations": Setting((600, 1000, 1200), low=0,
                           help="10 M: the diversity falls by e^-10 under replace"),
    "chains": Setting((300, 2000, 3000), low=1,
                      help="independent chains, advanced by one multinomial draw per generation"),
    "regime": Setting(["replace"], choices=REGIME_CHOICES, sweep=True,
                      help="what each generation trains on (collapse_utils.regimes)"),
    "real_fraction": Setting(0.1, low=0.0, high=1.0,
                             help="keep-real: the share of each training set drawn from D_0"),
    "verifier_error": Setting([0.1], low=0.0, high=1.0, sweep=True,
                              help="verify: probability that a decision is a guess (1: uninformative, replace)"),
    "max_rounds": Setting(20, low=1, help="verify: at most this many batches of M draws per generation"),
    "gamma": Setting([0.3], low=0.0, high=1.0, sweep=True,
                     help="self-correct: share of the way each generation's counts move to M p0"),
    "p0": P0,
}

ABSORPTION = {
    "K": Setting(2, low=1, help="number of states"),
    "zipf_exponent": Setting(0.0, low=0.0, kind=float, help="0: two states at p = 1/2"),
    "M": Setting(([10, 20, 50, 100], [10, 20, 50, 100, 200, 400], [10, 20, 50, 100, 200, 400]),
                 low=1, sweep=True, help="samples per generation, one run each"),
    "chains": Setting((400, 2000, 5000), low=1, help="chains per M"),
    "horizon": Setting(15.0, low=0.0, kind=float, optional=True,
                       help="a run lasts horizon x M generations (at most 'generations'); "
                            "E[T] is about 1.4 M at p = 1/2"),
    "generations": Setting(6000, low=0, help="the most generations of any run"),
    "p0": P0,
}

FIXATION = {
    **ABSORPTION,
    "K": Setting(5, low=1, help="number of states"),
    "zipf_exponent": Setting(1.0, low=0.0, kind=float, help="p0(k) proportional to 1/k"),
    "M": Setting([20], low=1, sweep=True, help="small, so that chains absorb within 400 generations"),
    "chains": Setting((10_000, 40_000, 100_000), low=1,
                      help="binomial intervals of +-0.01 or less around p0(i) at default"),
    "horizon": Setting(None, low=0.0, kind=float, optional=True, help="none: run 'generations'"),
    "generations": Setting(400, low=0, help="all but about 1e-5 of the chains are absorbed"),
}


def initial_distribution(settings: dict) -> np.ndarray:
    """p0 of a run: the explicit ``p0`` setting, else Zipf(K, zipf_exponent)."""
    if settings.get("p0") is not None:
        return check_distribution(settings["p0"])
    return zipf(settings["K"], settings["zipf_exponent"])


def check(settings: dict) -> None:
    """The relation the schema cannot check alone: an explicit p0 is a list of numbers that is
    a distribution."""
    p0 = settings.get("p0")
    if p0 is not None:
        odd = [v for v in p0 if isinstance(v, bool) or not isinstance(v, (int, float))]
        if odd:
            raise ValueError(f"p0 must be a JSON list of K >= 1 probabilities (numbers that sum "
                             f"to 1), e.g. [0.5, 0.3, 0.2]; got {odd[0]!r} in {p0!r}")
        check_distribution(p0)


def summary_metrics(P) -> dict:
    """Metrics of one generation over chains; ``P`` has shape (chains, K).

    Means, standard deviations and 10/90% quantiles over chains of the support
    size and the Gini-Simpson diversity; mean entropy (nats); the fraction of
    chains with one state left; per state, the fraction of chains where it is
    present (``survival``) and its mean probability (``p_mean``, p0 in expectation).
    """
    out = {"entropy_mean": float(entropy(P).mean())}
    support = support_size(P)
    both = np.stack([support.astype(float), gini_simpson(P)])
    lo, hi = np.quantile(both, [0.1, 0.9], axis=1)
    mean, sd = both.mean(axis=1), both.std(axis=1, ddof=1) if P.shape[0] > 1 else np.zeros(2)
    for j, name in enumerate(("support", "gini_simpson")):
        out.update({f"{name}_mean": float(mean[j]), f"{name}_sd": float(sd[j]),
                    f"{name}_q10": float(lo[j]), f"{name}_q90": float(hi[j])})
    out["absorbed_fraction"] = float(np.mean(support == 1))
    out["survival"] = (P > 0).mean(axis=0).tolist()
    out["p_mean"] = P.mean(axis=0).tolist()
    return out


def absorption_metrics(P) -> dict:
    """How many chains have one state left (``absorbed``), and at which state (``fixed``)."""
    return {"absorbed": int(np.sum(support_size(P) == 1)),
            "fixed": np.count_nonzero(P == 1.0, axis=0).tolist()}


def run_discrete(settings: dict, *, seed: int, run_dir=None, resume: bool = False,
                 progress: bool = True, stop_after: int | None = None) -> RunOutput:
    """One run of ``discrete``: one regime, every chain of Zipf(K, s) (see the module docstring)."""
    p0 = initial_distribution(settings)
    result = run_chains(p0, settings["M"], settings["generations"], settings["chains"], seed,
                        lambda g: summary_metrics(g.model), regime=settings["regime"],
                        real_fraction=settings["real_fraction"], progress=progress,
                        curation={k: settings[k] for k in ("verifier_error", "max_rounds", "gamma")},
                        desc=f"discrete {settings['regime']}", stop_after=stop_after)
    return RunOutput(result.generations, result.metrics, None, {"p0": p0.tolist()})


def run_length(settings: dict) -> int:
    """Generations of one absorption run: horizon x M, at most ``generations``."""
    if settings["horizon"] is None:
        return settings["generations"]
    return min(settings["generations"], math.ceil(settings["horizon"] * settings["M"]))


def run_absorption(settings: dict, *, seed: int, run_dir=None, resume: bool = False,
                   progress: bool = True, stop_after: int | None = None) -> RunOutput:
    """One run of ``discrete-absorption`` or ``discrete-fixation``: one M, ``replace``."""
    p0 = initial_distribution(settings)
    result = run_chains(p0, settings["M"], run_length(settings), settings["chains"], seed,
                        lambda g: absorption_metrics(g.model), progress=progress,
                        desc=f"absorption M={settings['M']}", stop_after=stop_after)
    return RunOutput(result.generations, result.metrics, None, {"p0": p0.tolist()})


register(Experiment("discrete", "Zipf(K, s) refitted exactly (empirical frequencies), many "
                    "chains, one run per regime", SETTINGS, run_discrete, check=check))
register(Experiment("discrete-absorption", "absorption times of the exact-fit chain, one run per M",
                    ABSORPTION, run_absorption, check=check))
register(Experiment("discrete-fixation", "where exact-fit chains end: the state each is absorbed at",
                    FIXATION, run_absorption, check=check))


# ----------------------------------------------------------------------------- reading records
def absorption_times(record, **selection) -> np.ndarray:
    """Each chain's absorption time T in fits (generation + 1; NaN if not absorbed), from
    the ``absorbed`` counts of one run of an absorption record (absorption is permanent)."""
    run = record.one(**selection)
    absorbed = np.asarray(run["metrics"]["absorbed"], dtype=np.int64)
    fits = np.asarray(run["generations"]) + 1
    times = np.repeat(fits.astype(float), np.diff(absorbed, prepend=0))
    return np.concatenate([times, np.full(record.settings["chains"] - times.size, np.nan)])


def final_fixed(record, **selection) -> np.ndarray:
    """How many chains ended at each state, at the last generation of one run."""
    return np.asarray(record.one(**selection)["metrics"]["fixed"][-1], dtype=np.int64)


def p0_of(record) -> np.ndarray:
    """The p0 of a record's runs."""
    return np.asarray(record.fact("p0"))
