"""The numbers the chapter "Replace, accumulate, mix" (book/beyond) quotes from its least-squares
and Gaussian-loop runs, one function per section.

Each function takes the section's record(s) and returns a flat dict of Python numbers, the keys
the chapter glues as ``bey_<key>``; each key is documented by one line of its docstring
(``<regime>``, ``<loop>`` and ``<g>`` stand for each regime and each loop of the record and
for 10 gamma).  Pure computations on records and on the closed forms of :mod:`.theory`: no
plotting, no glue.  The chapter's last section, on a ``discrete`` run, reads
``collapse_utils.discrete.report.beyond_forgetting``.
"""
from __future__ import annotations

import numpy as np

from . import theory

#: the many fits at which the chapter reads accumulate's limit
LIMIT_FITS = 10**6


def _at(rec, name: str, index: int = -1, **sel) -> float:
    """``name`` (a mean over chains) at generation ``index`` of the selection ``sel``."""
    return float(rec.metric(name, **sel)[0, index])


def _z(value: float, expected: float, se: float) -> float:
    """|value - expected| / se (0 where they are equal)."""
    return 0.0 if value == expected else abs(value - expected) / se


def _size(rec) -> tuple:
    """(d, T, sigma, last generation G) of a ``linear-regression`` record."""
    S = rec.settings
    return S["d"], S["samples"], S["noise"], int(rec.generations[-1])


def regimes(rec) -> dict:
    """Section "Least squares, refitted on its own labels": the ``linear-regression`` record of
    its regimes (keys of a regime the record lacks are left out).

    d: number of features
    T: pairs per generation
    G: the last generation
    G1: the fits made by generation G, G + 1
    sigma: the label noise's standard deviation
    chains: independent chains per regime
    v: one fit's error on real data, sigma^2 d / (T - d - 1)
    keep_pct: keep-real's share of real pairs, in percent
    <regime>_last: the regime's mean excess risk over chains at generation G
    <regime>_se: its standard error
    rep_th: replace's exact mean at generation G, (G + 1) v
    rep_ratio: replace's mean at generation G over v
    acc_th: accumulate's exact mean at generation G (fresh features in every generation)
    acc_limit: accumulate's exact mean after LIMIT_FITS fits, its limit
    acc_max: accumulate's largest mean over the generations
    fixed_th: the fixed-design sum at G + 1 fits, v sum_k 1 / k^2
    fixed_limit: the fixed-design sum after LIMIT_FITS fits
    bound: the bound accumulate never crosses, v pi^2 / 6
    sub_ratio: accumulate-subsample's mean at generation G over accumulate's
    sub_mid: accumulate-subsample's mean at generation G // 2
    keep_mid: keep-real's mean at generation G // 2
    """
    d, T, sigma, G = _size(rec)
    S, v, have = rec.settings, theory.one_fit_error(d, T, sigma), rec.values("regime")
    out = {"d": d, "T": T, "G": G, "G1": G + 1, "sigma": sigma, "chains": S["chains"], "v": v,
           "keep_pct": 100 * S["real_fraction"]}
    for r in have:
        out[f"{r}_last"] = _at(rec, "test_error", regime=r)
        out[f"{r}_se"] = _at(rec, "test_error_se", regime=r)
    out.update({
        "rep_th": float(theory.replace_error(G + 1, d, T, sigma)),
        "acc_th": float(theory.accumulate_error(G + 1, d, T, sigma)),
        "acc_limit": float(theory.accumulate_error(LIMIT_FITS, d, T, sigma)),
        "fixed_th": float(theory.accumulate_fixed_design(G + 1, d, T, sigma)),
        "fixed_limit": float(theory.accumulate_fixed_design(LIMIT_FITS, d, T, sigma)),
        "bound": theory.accumulate_bound(d, T, sigma),
    })
    if "replace" in have:
        out["rep_ratio"] = out["replace_last"] / v
    if "accumulate" in have:
        out["acc_max"] = float(np.max(rec.metric("test_error", regime="accumulate")))
    if "accumulate" in have and "accumulate-subsample" in have:
        out["sub_ratio"] = out["accumulate-subsample_last"] / out["accumulate_last"]
        out["sub_mid"] = _at(rec, "test_error", G // 2, regime="accumulate-subsample")
    if "keep-real" in have:
        out["keep_mid"] = _at(rec, "test_error", G // 2, regime="keep-real")
    return out


def strong_collapse(mix) -> dict:
    """Section "A constant share of synthetic data": the ``linear-regression-mix`` record,
    means over chains at generation 1 unless said otherwise.

    n0: real pairs of generation 0, the generator
    E0: the generator's mean excess risk (generation 0 of the first n and share)
    E0_th: its expected value, sigma^2 d / (n0 - d - 1)
    nmax: the largest n
    nmid: the second largest n
    pmin: the smallest synthetic share p (0: real data only)
    pmax: the largest share
    clean_big: p = 0: the mean excess risk at n = nmax
    top_big: p = pmax: the same
    top_floor: p = pmax: the floor p^2 |Delta|^2 it tends to, at n = nmax
    clean_gain: p = 0: the error at n = nmid over the error at n = nmax
    top_gain: p = pmax: the same
    theory_gap: the largest |mean - first-order theory| / (4 se + 2% theory) at n >= 10 d
    """
    S, ns, ps = mix.settings, mix.values("samples"), mix.values("synthetic_share")
    big, mid, top = ns[-1], ns[-2], ps[-1]

    def at(name, n, p):
        return _at(mix, name, 1, samples=n, synthetic_share=p)

    gap = [abs(at("test_error", n, p) - at("test_error_theory", n, p))
           / (4 * at("test_error_se", n, p) + 0.02 * at("test_error_theory", n, p))
           for n in ns if n >= 10 * S["d"] for p in ps]
    return {
        "n0": S["real_samples"],
        "E0": _at(mix, "test_error", 0, samples=ns[0], synthetic_share=ps[0]),
        "E0_th": theory.one_fit_error(S["d"], S["real_samples"], S["noise"]),
        "nmax": int(big),
        "nmid": int(mid),
        "pmin": float(ps[0]),
        "pmax": float(top),
        "clean_big": at("test_error", big, 0.0),
        "top_big": at("test_error", big, top),
        "top_floor": at("test_error_floor", big, top),
        "clean_gain": at("test_error", mid, 0.0) / at("test_error", big, 0.0),
        "top_gain": at("test_error", mid, top) / at("test_error", big, top),
        "theory_gap": float(max(gap)),
    }


def loops(loops, shares) -> dict:
    """Section "Fresh data against self-consumption": the ``self-consuming-gaussian`` record of
    the three loops at one share lambda, and ``shares``, the two mixed loops at several shares;
    mean mu_hat^2 over chains at the last generation.

    M: samples per generation
    lam: the share lambda of model samples in ``loops``
    GL: the last generation
    full_th: the fully synthetic loop's exact E mu_hat^2 there, (GL + 1) / M
    <loop>: the loop's mean mu_hat^2 at generation GL
    <loop>_th: its exact value (loop_moments)
    fresh09: fresh data at lambda = 0.9 (``shares``)
    aug09: synthetic augmentation at lambda = 0.9 (``shares``)
    fresh_fix: the fresh-data loop's approximate limit 1 / (M (1 - lambda^2))
    gen0_mu: generation 0's E mu_hat^2, 1 / M
    loops_z: the largest |mean - exact| / se over ``loops`` and shares 0.1 and 0.9
    """
    M, GL = loops.settings["samples"], int(loops.generations[-1])
    lam = float(loops.values("synthetic_share")[0])

    def end(name, loop, rec=loops, p=lam):
        return _at(rec, name, loop=loop, synthetic_share=p)

    out = {"M": M, "lam": lam, "GL": GL, "full_th": (GL + 1) / M}
    for loop in loops.values("loop"):
        out[loop] = end("mean_error", loop)
        out[f"{loop}_th"] = end("mean_error_theory", loop)
    z = [_z(end("mean_error", loop, rec, p), end("mean_error_theory", loop, rec, p),
            end("mean_error_se", loop, rec, p))
         for rec, p in ((loops, lam), (shares, 0.1), (shares, 0.9)) for loop in rec.values("loop")]
    out.update({
        "fresh09": end("mean_error", "fresh-data", shares, 0.9),
        "aug09": end("mean_error", "synthetic-augmentation", shares, 0.9),
        "fresh_fix": 1 / (M * (1 - lam**2)),
        "gen0_mu": 1 / M,
        "loops_z": max(z),
    })
    return out


def curation(gammas, verify) -> dict:
    """Section "Curation: verify and self-correct": the ``linear-regression`` records of
    ``self-correct`` over gamma and of ``verify`` over the verifier's error rate q; mean excess
    risk over chains at the last generation.

    v0_verify: verify with a perfect verifier, q = 0 (the first rate)
    vhalf_verify: verify with a coin, q = 0.5 (the last rate)
    vhalf_th: replace's exact mean there, (G + 1) v
    vhalf_se: the standard error of vhalf_verify
    verify_rise: the smallest rise of the error from one rate q to the next
    q_below: the largest q whose error is at most v
    q_cross: the smallest q whose error exceeds v
    sc<g>: self-correct with gamma = g / 10
    sc<g>_lim: its limit v (1 - gamma)^2 / (1 - (1 - gamma)^2)
    sc_z: the largest |mean - exact| / se over the gammas
    gamma_star: the gamma whose limit is v, 1 - 1 / sqrt(2)
    """
    d, T, sigma, G = _size(verify)
    v = theory.one_fit_error(d, T, sigma)
    qs = verify.values("verifier_error")
    vq = [_at(verify, "test_error", verifier_error=q) for q in qs]
    out = {
        "v0_verify": vq[0],
        "vhalf_verify": vq[-1],
        "vhalf_th": float(theory.replace_error(G + 1, d, T, sigma)),
        "vhalf_se": _at(verify, "test_error_se", verifier_error=qs[-1]),
        "verify_rise": float(np.min(np.diff(vq))),
        "q_below": float(max(q for q, e in zip(qs, vq) if e <= v)),
        "q_cross": float([q for q, e in zip(qs, vq) if e > v][0]),
    }
    d, T, sigma, G = _size(gammas)
    z = []
    for g in gammas.values("gamma"):
        out[f"sc{round(10 * g)}"] = _at(gammas, "test_error", gamma=g)
        out[f"sc{round(10 * g)}_lim"] = theory.self_correct_limit(g, d, T, sigma)
        exact = float(theory.self_correct_error(G + 1, g, d, T, sigma))
        z.append(_z(out[f"sc{round(10 * g)}"], exact, _at(gammas, "test_error_se", gamma=g)))
    out["sc_z"] = max(z)
    out["gamma_star"] = float(1 - 1 / np.sqrt(2))
    return out


def exercises() -> dict:
    """Section "Exercises": exercise 3's generator (d = 10, n0 = 20, sigma = 1).

    ex3_p: the largest synthetic share p whose floor is at most the real-data error at n = 5000
    """
    return {"ex3_p": float(np.sqrt(theory.one_fit_error(10, 5000, 1.0)
                                   / theory.one_fit_error(10, 20, 1.0)))}


# --- book/curation: a verifier that is itself wrong (glued there as ``ver_<key>``) ---


def curation_verifier(verified, unverified) -> dict:
    """Curation, a biased verifier: ``linear-regression-verifier`` (verify; replace at a = 0).

    <tag> below is the verifier's bias a without its dot (0, 005, 01, 02).
    d: the dimension
    real: the real pairs of generation 0
    samples: the verified pairs each later generation trains on
    chains: the independent chains of the run
    G: the last generation
    floor: the finite-sample floor near the verifier's belief
    start_<tag>: the mean error at generation 0
    first_<tag>: the same at generation 1
    min_<tag>: its minimum over generations
    end_<tag>: the same at the last generation
    own_<tag>: the verifier's own error d a^2
    pop_<tag>: the population map's value at the last generation
    se_<tag>: the standard error of the end over chains
    replace_end: the mean error at the last generation without a verifier
    """
    from .verification import verifier_report

    return verifier_report(verified, unverified)
