"""Linear regression refitted on its own labels: the closed forms against simulation.

Tolerances: a simulated mean over chains must lie within 4 standard errors (over
chains) of an exact expectation; the first-order strong-collapse formula within
4 standard errors plus 2% (its neglected
O(1/n^2) terms) where n >= 10 d.  The experiment's resume, CLI and tiny-sweep checks live in
tests/test_experiments.py.
"""
import math
import time

import numpy as np
import pytest

import collapse_utils as cu
from collapse_utils.experiments import resolve_settings
from collapse_utils.linreg import simulate as sim
from collapse_utils.linreg import theory


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path / "cache"))


def _run(**over):
    return cu.run("linear-regression", profile="smoke", progress=False, **over)


def _close(rec, regime, k=4.0):
    mean = rec.metric("test_error", regime=regime)[0]
    se = rec.metric("test_error_se", regime=regime)[0]
    expected = rec.metric("test_error_theory", regime=regime)[0]
    assert np.all(np.abs(mean - expected) <= k * se), (regime, mean, expected, se)


def test_theory_closed_forms():
    d, T, s = 10, 50, 1.0
    v = theory.one_fit_error(d, T, s)
    assert v == pytest.approx(10 / 39)
    fits = np.arange(1, 201)
    assert np.allclose(theory.replace_error(fits, d, T, s), v * fits)
    acc, fixed = theory.accumulate_error(fits, d, T, s), theory.accumulate_fixed_design(fits, d, T, s)
    assert acc[0] == pytest.approx(v) and fixed[0] == pytest.approx(v)
    assert np.all(np.diff(acc) > 0) and np.all(acc <= fixed + 1e-15)
    assert fixed[-1] < theory.accumulate_bound(d, T, s) == pytest.approx(v * math.pi ** 2 / 6)
    assert fixed[-1] == pytest.approx(v * math.pi ** 2 / 6, rel=0.005)
    sc = theory.self_correct_error(fits, 0.3, d, T, s)
    assert sc[0] == pytest.approx(v) and sc[-1] == pytest.approx(theory.self_correct_limit(0.3, d, T, s))
    assert np.allclose(theory.self_correct_error(fits[:5], 0.0, d, T, s), v * fits[:5])
    with pytest.raises(ValueError, match="samples must exceed d \\+ 1 = 11"):
        theory.one_fit_error(10, 11, 1.0)


def test_replace_accumulate_and_self_correct_match_their_exact_expectations():
    rec = _run(regime=["replace", "accumulate", "self-correct"], chains=2000)
    for regime in ("replace", "accumulate", "self-correct"):
        _close(rec, regime)
    bound = rec.fact("accumulate_bound")
    assert np.all(rec.metric("test_error", regime="accumulate") < bound)


def test_accumulate_subsample_lies_between_accumulate_and_replace():
    rec = _run(regime=["replace", "accumulate", "accumulate-subsample"], chains=1000)
    last = {r: rec.metric("test_error", regime=r)[0, -1] for r in rec.values("regime")}
    assert last["accumulate"] < last["accumulate-subsample"] < last["replace"], last
    gen0 = {r: rec.metric("test_error", regime=r)[0, 0] for r in rec.values("regime")}
    assert len(set(gen0.values())) == 1  # generation 0 fits the same real data in every regime


def test_verification_quality():
    """A perfect verifier pulls the error below generation 0's; a coin is no verifier."""
    good = _run(regime=["verify"], verifier_error=0.0)
    coin = _run(regime=["verify"], verifier_error=0.5, chains=2000)
    err = good.metric("test_error", regime="verify")[0]
    assert err[-1] < 0.7 * err[0]
    mean = coin.metric("test_error", regime="verify")[0]
    se = coin.metric("test_error_se", regime="verify")[0]
    s = resolve_settings("linear-regression", "smoke")
    expected = theory.replace_error(np.arange(1, len(mean) + 1), s["d"], s["samples"], s["noise"])
    assert np.all(np.abs(mean - expected) <= 4 * se)


def test_constant_synthetic_share_puts_a_floor_under_the_error():
    rec = cu.run("linear-regression-mix", profile="smoke", progress=False,
                 samples=[100, 1000, 4000], synthetic_share=[0.0, 0.5], chains=400)
    for n in (100, 1000, 4000):
        for p in (0.0, 0.5):
            sel = dict(samples=n, synthetic_share=p)
            err, se = rec.metric("test_error", **sel)[0, 1], rec.metric("test_error_se", **sel)[0, 1]
            expected = rec.metric("test_error_theory", **sel)[0, 1]
            assert abs(err - expected) <= 4 * se + 0.02 * expected, (n, p, err, expected, se)
    clean = [rec.metric("test_error", samples=n, synthetic_share=0.0)[0, 1] for n in (1000, 4000)]
    mixed = [rec.metric("test_error", samples=n, synthetic_share=0.5)[0, 1] for n in (1000, 4000)]
    floor = rec.metric("test_error_floor", samples=4000, synthetic_share=0.5)[0, 1]
    assert clean[1] < 0.35 * clean[0]          # real data alone: 4x the data, ~1/4 the error
    assert mixed[1] > 0.85 * mixed[0] and mixed[1] > floor   # half synthetic: stuck at the floor


def test_mix_formula_first_order_in_one_over_n():
    rng = np.random.default_rng(3)
    d, chains, n, p = 5, 4000, 200, 0.3
    w = sim.true_weights(d, rng)
    w0 = w + 0.5 * rng.standard_normal((chains, d))
    a = round(p * n)
    data = np.concatenate([sim.sample_pairs(w0, a, 1.0, rng),
                           sim.real_pairs(w, chains, n - a, 1.0, rng)], axis=1)
    err = sim.excess_risk(sim.fit_ols(data), w)
    expected = theory.mixed_error(n, p, sim.excess_risk(w0, w).mean(), d, 1.0)
    assert err.mean() == pytest.approx(expected, rel=0.03)


@pytest.mark.parametrize("over,needle", [
    ({"samples": 11}, "samples must exceed d + 1 = 11 (least squares needs it); got 11"),
    ({"regime": "recycle"}, "regime must be a list of values, each one of replace"),
    ({"verifier_error": 0.7}, "verifier_error must be a list of values, each a number in [0, 0.5]; got 0.7"),
    ({"gamma": -0.1}, "gamma must be a list of values, each a number in [0, 1]"),
])
def test_bad_settings_are_rejected_in_one_line(over, needle):
    with pytest.raises(ValueError) as err:
        resolve_settings("linear-regression", "smoke", over)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_bad_mix_settings_are_rejected_in_one_line():
    with pytest.raises(ValueError) as err:
        resolve_settings("linear-regression-mix", "smoke", {"samples": [50, 8]})
    assert str(err.value) == "samples must exceed d + 1 = 11 (least squares needs it); got 8"
    with pytest.raises(ValueError, match="real_samples must exceed d \\+ 1"):
        resolve_settings("linear-regression-mix", "smoke", {"real_samples": 5})


def test_smoke_sweeps_take_seconds():
    t0 = time.perf_counter()
    _run(regime=["replace", "accumulate", "accumulate-subsample", "keep-real", "verify",
                 "self-correct"])
    cu.run("linear-regression-mix", profile="smoke", progress=False)
    assert time.perf_counter() - t0 < 30


# ----------------------------------------------------------------------------- Gaussian loops
def test_gaussian_loops_match_their_exact_moments():
    from collapse_utils.linreg.loops import loop_moments

    rec = cu.run("self-consuming-gaussian", profile="smoke", progress=False, chains=4000,
                 synthetic_share=[0.5, 0.9])
    for loop in rec.values("loop"):
        for lam in rec.values("synthetic_share"):
            sel = dict(loop=loop, synthetic_share=lam)
            for name in ("mean_error", "variance"):
                mean, se = rec.metric(name, **sel)[0], rec.metric(f"{name}_se", **sel)[0]
                expected = rec.metric(f"{name}_theory", **sel)[0]
                assert np.all(np.abs(mean - expected) <= 4.5 * se), (loop, lam, name)
    M = rec.settings["samples"]
    full = loop_moments("fully-synthetic", M, 0.5, 100)
    assert np.allclose(full["mu2"], np.arange(1, 102) / M) and np.allclose(full["s2"], 1.0)
    fresh = loop_moments("fresh-data", M, 0.5, 400)["mu2"][-1]
    assert fresh == pytest.approx(1 / (M * (1 - 0.25)), rel=0.01)   # fixed point 1 / (M (1 - lambda^2))
