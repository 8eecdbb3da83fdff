"""The numbers the chapter "What collapse means" (book/definitions) quotes, one function per
section, computed from its ``kde`` record.

Each function takes the chapter's record of ``run("kde")`` and returns a flat dict of Python
numbers, the keys the chapter glues as ``def_<key>``; each key is documented by one line of
its docstring (``<rule>`` stands for each bandwidth rule of the run, ``scott`` and ``fixed``).
Pure computations on records (and on the formulas of :mod:`.theory`): no plotting, no glue.

Generation g holds the KDE after g + 1 fits; G is the last generation, and the Gaussian
references use the real variance sigma^2 = 1 of the chapter's real data.
"""
from __future__ import annotations

import numpy as np

from . import theory
from .figures import chains

#: the generation at which the chapter compares the two rules (or G, if the run is shorter)
STAR = 40


def _size(rec) -> tuple[int, float, int]:
    """(samples per generation M, fixed bandwidth h, last generation G) of a ``kde`` record."""
    S = rec.settings
    return S["samples"], S["fixed_bandwidth"], int(rec.generations[-1])


def _median(rec, metric: str, rule: str, g: int) -> float:
    """The median over chains of ``metric`` under ``rule`` at generation ``g``."""
    return float(np.median(chains(rec, metric, rule)[:, g]))


def _reference(rec, f, rule: str, g: int) -> float:
    """A formula of :mod:`.theory` at generation ``g`` (g + 1 fits), sigma^2 = 1."""
    M, h, _ = _size(rec)
    return float(f(g + 1, rule=rule, M=M, sigma2=1.0, h=h))


def sizes(rec) -> dict:
    """Section "What you need and how long it takes", and the experiment's sizes.

    M: points per generation (the real data too)
    h: the fixed rule's bandwidth
    G: the last generation
    chains: independent chains per bandwidth rule
    star: the generation at which the text compares the two rules, min(G, 40)
    """
    M, h, G = _size(rec)
    return {"M": M, "h": h, "G": G, "chains": rec.settings["chains"], "star": min(G, STAR)}


def distances(rec) -> dict:
    """Section "Kernel density estimates ...", what the distances figure shows (KL, W2, TV).

    kl_<rule>_0: median KL(p_0 || p_n) over chains at generation 0
    kl_<rule>: the same at the last generation G
    kl_<rule>_star: the same at generation star
    w2_<rule>_0: median W2(p_n, p_0) over chains at generation 0
    w2_<rule>: the same at generation G
    w2_<rule>_star: the same at generation star
    tv_<rule>_0: median TV(p_0, p_n) over chains at generation 0
    tv_<rule>: the same at generation G
    tv_<rule>_star: the same at generation star
    kl_<rule>_ref: KL of the Gaussian with the exact expected moments at generation G
    w2_<rule>_ref: W2 of that Gaussian at generation G
    kl_slope: (1/2) log r, Scott's reference KL per generation
    w2_factor: sqrt r, Scott's reference W2 factor per generation
    kl_ratio: median KL of the fixed rule over Scott's at generation star
    w2_ratio: median W2 of Scott's rule over the fixed one's at generation star
    kl_scott_half: median KL under Scott's rule at generation G // 2
    tv_scott_half: median TV under Scott's rule at generation G // 2
    tv_scott_max: the largest TV of any chain under Scott's rule, any generation
    kl_slope_sim: Scott's median KL per generation from G // 2 to G
    kl_slope_ref: the same slope of its Gaussian reference
    """
    M, _, G = _size(rec)
    star = min(G, STAR)
    r = theory.variance_factor("scott", M)
    out = {}
    for rule in rec.values("bandwidth"):
        for m in ("kl", "w2", "tv"):
            out[f"{m}_{rule}_0"] = _median(rec, m, rule, 0)
            out[f"{m}_{rule}"] = _median(rec, m, rule, G)
            out[f"{m}_{rule}_star"] = _median(rec, m, rule, star)
        out[f"kl_{rule}_ref"] = _reference(rec, theory.kl_gaussian, rule, G)
        out[f"w2_{rule}_ref"] = _reference(rec, theory.w2_gaussian, rule, G)

    def slope(f) -> float:
        return (f(G) - f(G // 2)) / (G - G // 2)

    return {
        **out,
        "kl_slope": float(0.5 * np.log(r)),
        "w2_factor": float(np.sqrt(r)),
        "kl_ratio": _median(rec, "kl", "fixed", star) / _median(rec, "kl", "scott", star),
        "w2_ratio": _median(rec, "w2", "scott", star) / _median(rec, "w2", "fixed", star),
        "kl_scott_half": _median(rec, "kl", "scott", G // 2),
        "tv_scott_half": _median(rec, "tv", "scott", G // 2),
        "tv_scott_max": float(np.max(chains(rec, "tv", "scott"))),
        "kl_slope_sim": slope(lambda g: _median(rec, "kl", "scott", g)),
        "kl_slope_ref": slope(lambda g: _reference(rec, theory.kl_gaussian, "scott", g)),
    }


def shape(rec) -> dict:
    """Section "Kernel density estimates ...", what the variance, tail and density figures show.

    var_<rule>: mean variance of the KDE over chains at the last generation G
    var_<rule>_0: the same at generation 0
    var_<rule>_th: its exact expectation at generation G
    var_<rule>_med: median variance over chains at generation G
    var_<rule>_se: the standard error of var_<rule> (over chains)
    var_<rule>_0_se: the standard error of var_<rule>_0
    tail_mass_<rule>_0: median mass beyond the real 3-sd points over chains at generation 0
    tail_mass_<rule>: the same at generation G
    tail_mass_<rule>_star: the same at generation star
    c: Scott's factor c = M^(-1/5)
    r: Scott's variance factor per fit, (M - 1)/M + c^2
    r_pct: the growth per fit in percent, 100 (r - 1)
    tail_real: the real distribution's mass beyond its 3-sd points
    tail_real_pct: the same in percent
    tail_scott_pct: median tail mass under Scott's rule at generation G, in percent
    tail_fixed_mean_0: mean tail mass over chains under the fixed rule at generation 0
    tail_fixed_mean: the same at generation G
    tail_fixed_zero_pct: percentage of fixed-rule chains with tail mass below 1e-6 at G
    tail_fixed_med: median tail mass under the fixed rule at G (at least 1e-300, for a log format)
    """
    M, _, G = _size(rec)
    star = min(G, STAR)
    r = theory.variance_factor("scott", M)
    out = {}
    for rule in rec.values("bandwidth"):
        var = chains(rec, "variance", rule)
        se = rec.metric("variance_se", bandwidth=rule)[0]
        out[f"var_{rule}"] = float(var[:, G].mean())
        out[f"var_{rule}_0"] = float(var[:, 0].mean())
        out[f"var_{rule}_th"] = _reference(rec, theory.expected_variance, rule, G)
        out[f"var_{rule}_med"] = _median(rec, "variance", rule, G)
        out[f"var_{rule}_se"] = float(se[G])
        out[f"var_{rule}_0_se"] = float(se[0])
        out[f"tail_mass_{rule}_0"] = _median(rec, "tail_mass", rule, 0)
        out[f"tail_mass_{rule}"] = _median(rec, "tail_mass", rule, G)
        out[f"tail_mass_{rule}_star"] = _median(rec, "tail_mass", rule, star)
    tail = chains(rec, "tail_mass", "fixed")
    return {
        **out,
        "c": M**-0.2,
        "r": r,
        "r_pct": 100 * (r - 1),
        "tail_real": float(rec.fact("real_tail_mass")),
        "tail_real_pct": 100 * float(rec.fact("real_tail_mass")),
        "tail_scott_pct": 100 * _median(rec, "tail_mass", "scott", G),
        "tail_fixed_mean_0": float(tail[:, 0].mean()),
        "tail_fixed_mean": float(tail[:, G].mean()),
        "tail_fixed_zero_pct": float(100 * np.mean(tail[:, G] < 1e-6)),
        "tail_fixed_med": max(_median(rec, "tail_mass", "fixed", G), 1e-300),
    }
