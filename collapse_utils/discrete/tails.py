"""Cutting the tail changes the scaling law (Dohmatob, Feng, Yang, Charton and Kempe 2024).

"A tale of tails" (arXiv:2402.07043) studies data whose items follow a Zipf law,
p_i proportional to i^-beta, learned by a model that memorises what it has seen (the
"infinite-memory" model of Hutter 2021): after T training samples its test error is the
probability that a test item was never seen.  Generated data lose the tail: a model that
samples only its k most likely items (top-k decoding) cuts p at rank k.  A learner trained
on T samples of the cut distribution q (p restricted to i <= k, renormalised) has, exactly,

    E(T) = sum_{i <= k} p_i (1 - q_i)^T + sum_{i > k} p_i                  (:func:`tail_cut_error`)

The first sum is the clean scaling law; with no cut it behaves like T^-(1 - 1/beta) (the
item of rank i is missed while T p_i < 1, i.e. for i > T^(1/beta), whose mass is about
T^-(beta - 1)/beta; this book's derivation from the exact sum).  The second is a floor set by
k, about k^-(beta - 1) / ((beta - 1) zeta(beta)): more data stop helping once T^(1/beta)
reaches k.  The paper's Theorem 2.1 states the same law up to constants,
E ~ T^-c + k^-(beta - 1) with c = 1 - 1/beta; the constants are this book's.

The generational loop (experiment ``zipf-tails``): generation 0 memorises T samples of the cut
teacher; generation g + 1 memorises T samples that generation g emits with top-k sampling
from its own memorised frequencies (``replace``).  Each generation can only lose items, so
the error grows over generations; the exact sum is generation 0's.  ``cut = 0`` means no cut.
A vocabulary of ``vocab`` items keeps p finite (its own floor, the mass beyond ``vocab``, is
zero by construction).
"""
from __future__ import annotations

import numpy as np

from ..experiments import Experiment, RunOutput, register
from ..loop import rng_for, run_generations
from ..settings import Setting
from .theory import zipf


def cut(p: np.ndarray, k: int) -> np.ndarray:
    """p restricted to its first k items and renormalised (k = 0: no cut)."""
    if not k or k >= p.shape[-1]:
        return p
    q = np.zeros_like(p)
    q[..., :k] = p[..., :k]
    return q / q.sum(axis=-1, keepdims=True)


def tail_cut_error(T, beta: float, vocab: int, k: int = 0) -> np.ndarray:
    """E(T): the exact test error of a memoriser trained on T samples of Zipf(beta) cut at k."""
    p = zipf(vocab, beta)
    q = cut(p, k)
    T = np.atleast_1d(np.asarray(T, dtype=float))
    seen_part = (p[None, :] * (1.0 - q[None, :]) ** T[:, None]).sum(axis=1)
    return seen_part


def rate_terms(T, beta: float, k: int = 0) -> np.ndarray:
    """The two power laws of the module docstring, from the exact sum by integrals (this book's
    derivation): the clean part Gamma(1 - 1/beta) zeta(beta)^(-1/beta) T^-(1 - 1/beta) / beta
    (the integral of p(x) exp(-T p(x)) over x, p(x) = x^-beta / zeta(beta)) plus the floor
    k^-(beta - 1) / ((beta - 1) zeta(beta)) (the mass beyond rank k)."""
    from scipy.special import gamma, zeta

    T = np.atleast_1d(np.asarray(T, dtype=float))
    z = zeta(beta)
    clean = gamma(1 - 1 / beta) * z ** (-1 / beta) * T ** (-(1 - 1 / beta)) / beta
    floor = 0.0 if not k else k ** (-(beta - 1)) / ((beta - 1) * z)
    return clean + floor


def top_k_sample(counts: np.ndarray, m: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """m samples (as counts) from each chain's memorised frequencies cut to its k most frequent
    items (k = 0: all it has seen)."""
    counts = np.asarray(counts, dtype=float)
    if k and k < counts.shape[-1]:
        keep = np.argpartition(-counts, k - 1, axis=-1)[..., :k]
        cut_counts = np.zeros_like(counts)
        np.put_along_axis(cut_counts, keep, np.take_along_axis(counts, keep, axis=-1), axis=-1)
        counts = cut_counts
    return rng.multinomial(int(m), counts / counts.sum(axis=-1, keepdims=True))


def tails_report(record) -> dict:
    """The numbers the curation chapter quotes from a ``zipf-tails`` record: per cut (``<k>``,
    0 for none) and T the mean error at generation 0 and at the last generation
    (``start_<k>_<T>``, ``end_<k>_<T>``), its standard error, the exact sum (``exact_<k>_<T>``)
    and the floor (``floor_<k>``: the integral's; ``tail_<k>``: the exact mass beyond k), the same at
    the largest T as ``start_<k>_max`` ...; the clean exponent 1 - 1/beta and the sizes."""
    S = record.settings
    out = {"beta": S["beta"], "vocab": S["vocab"], "chains": S["chains"],
           "G": int(record.generations[-1]), "exponent": 1 - 1 / S["beta"],
           "T_max": int(max(record.values("samples"))), "T_min": int(min(record.values("samples")))}
    for k in record.values("cut"):
        out[f"floor_{k}"] = float(rate_terms(1e300, S["beta"], k)[0]) if k else 0.0
        out[f"tail_{k}"] = float(zipf(S["vocab"], S["beta"])[k:].sum()) if k else 0.0
        for T in record.values("samples"):
            e = record.metric("error", cut=k, samples=T)[0]
            sd = record.metric("error_sd", cut=k, samples=T)[0]
            out.update({f"start_{k}_{T}": float(e[0]), f"end_{k}_{T}": float(e[-1]),
                        f"se_{k}_{T}": float(sd[0]) / np.sqrt(S["chains"]),
                        f"exact_{k}_{T}": float(record.fact("exact", cut=k, samples=T))})
        for key in ("start", "end", "exact"):   # the largest T under a name of every profile
            out[f"{key}_{k}_max"] = out[f"{key}_{k}_{out['T_max']}"]
    return out


SETTINGS = {
    "beta": Setting(1.5, low=1.01, help="Zipf exponent beta > 1"),
    "vocab": Setting((10_000, 100_000, 1_000_000), low=10, help="items of the Zipf law"),
    "samples": Setting(([100, 1000, 10000], [100, 1000, 10_000, 100_000],
                        [100, 1000, 10_000, 100_000, 1_000_000]), low=1, sweep=True,
                       help="T: samples each generation memorises (the scaling axis)"),
    "cut": Setting(([0, 100], [0, 100, 1000], [0, 100, 1000, 10_000]), low=0, sweep=True,
                   help="k: the generator samples only its k most frequent items (0: no cut)"),
    "generations": Setting((3, 5, 10), low=0, help="generations after generation 0"),
    "chains": Setting((10, 20, 50), low=1, help="independent chains (the band)"),
}


def check(s: dict) -> None:
    if max(s["cut"]) > s["vocab"]:
        raise ValueError(f"cut must not exceed vocab ({s['vocab']}); got {max(s['cut'])}")


def run_tails(settings: dict, *, seed: int = 0, run_dir=None, resume: bool = False,
              progress: bool = True, stop_after: int | None = None) -> RunOutput:
    """One run of ``zipf-tails``: per generation the mean and sd over chains of the test error
    sum_i p_i [item i unseen] (``error``, ``error_sd``) and the number of items seen
    (``seen``).  Fact ``exact``: generation 0's exact E(T)."""
    p = zipf(settings["vocab"], settings["beta"])
    k, T, chains = settings["cut"], settings["samples"], settings["chains"]
    real = rng_for(seed, "real").multinomial(T, np.broadcast_to(cut(p, k), (chains, p.size)))

    def measure(g):
        err = (p[None, :] * (g.model == 0)).sum(axis=1)
        return {"error": float(err.mean()), "error_sd": float(err.std(ddof=1)) if chains > 1 else 0.0,
                "seen": float((g.model > 0).sum(axis=1).mean())}

    result = run_generations(
        lambda counts, rng: np.asarray(counts), lambda c, m, rng: top_k_sample(c, m, k, rng), real,
        settings["generations"], sizes=T, seed=seed, measure=measure, axis=1, progress=progress,
        desc=f"T={T} k={k}", run_dir=run_dir, resume=resume, stop_after=stop_after)
    exact = float(tail_cut_error(T, settings["beta"], settings["vocab"], k)[0])
    return RunOutput(result.generations, result.metrics, None, {"exact": exact})


register(Experiment(
    name="zipf-tails",
    summary="a memoriser of Zipf-distributed items trained on top-k generated data: the scaling law's floor",
    settings=SETTINGS,
    run=run_tails,
    check=check,
))
