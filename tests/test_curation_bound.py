"""The verify transition's curves (curation chapter): the unlimited-budget loop against the exact
second moments, the exact-moment lower bound, and how low the linear-noise approximation lies."""
import math

import numpy as np
import pytest

import collapse_utils as cu
from collapse_utils.gaussian import theory
from collapse_utils.gaussian.curation import verify_unlimited, verify_w2_bound

M, L = 100, 3.0


@pytest.fixture(scope="module")
def unlimited():
    return verify_unlimited(M, [0.5, 0.95], 100, L, chains=4000, seed=1)


def _mean_se(values):
    return float(np.mean(values)), float(np.std(values, ddof=1) / math.sqrt(np.size(values)))


@pytest.mark.parametrize("q", [0.5, 0.95])
def test_unlimited_budget_loop_has_the_exact_second_moments(unlimited, q):
    run = unlimited[q]
    exact = theory.verify_theory(100, M, q, L)
    sigma_squared = run["sigma"] ** 2
    mean_error_squared = run["w2_squared"] - (run["sigma"] - 1) ** 2
    for values, name in ((sigma_squared, "sigma_squared"), (mean_error_squared, "mean_error_squared")):
        mean, se = _mean_se(values)
        assert abs(mean - exact[name][-1]) < 4 * se, (name, mean, exact[name][-1], se)


@pytest.mark.parametrize("q", [0.5, 0.95])
def test_exact_moment_bound_lies_below_the_loop(unlimited, q):
    mean, se = _mean_se(unlimited[q]["w2_squared"])
    bound = verify_w2_bound(100, M, q, L)
    assert bound < mean - 4 * se
    # loose by about Var sigma, a third of one fit's E W_2^2, at small q
    if q == 0.5:
        assert 0.2 < (mean - bound) / theory.expected_w2_squared(1, M) < 0.5


def test_linear_noise_lies_low_at_high_error(unlimited):
    """The curve the chapter drew as theory is some 10% low at q = 0.95 after 100 generations."""
    mean, se = _mean_se(unlimited[0.95]["w2_squared"])
    linear = theory.verify_theory(100, M, 0.95, L)["w2_squared"][-1]
    assert linear < mean - 2 * se and 0.05 < 1 - linear / mean < 0.25


def test_bound_outgrows_linear_noise_above_the_critical_error():
    """Above q_c the exact moments (and with them the bound) grow without limit; the linear-noise
    curve settles at W_1 / (1 - q^2) for every q < 1."""
    q = 0.999
    assert q > theory.critical_error(M)
    linear_limit = theory.verify_limit(M, q, L)["w2_squared"]
    assert verify_w2_bound(4000, M, q, L) > verify_w2_bound(2000, M, q, L) > linear_limit
    assert theory.verify_theory(4000, M, q, L)["w2_squared"][-1] == pytest.approx(linear_limit, rel=1e-3)


def test_ample_budget_run_matches_the_unlimited_loop(tmp_path, monkeypatch):
    """The chapter's run with a budget that never runs out is the directly sampled loop."""
    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path))
    q, G, chains = 0.75, 30, 300
    rec = cu.run("gaussian-curation", progress=False, profile="smoke", verifier_error=[q],
                 generations=G, chains=chains, max_rounds=500)
    short = rec.metric("verify_short_fraction", verifier_error=q)[0, 1:]
    assert short.mean() < 0.002
    run_mean = float(rec.metric("w2_squared_mean", verifier_error=q)[0, -1])
    run_se = float(rec.metric("w2_squared_sd", verifier_error=q)[0, -1]) / math.sqrt(chains)
    mean, se = _mean_se(verify_unlimited(M, [q], G, L, chains=4000)[q]["w2_squared"])
    assert abs(run_mean - mean) < 4 * math.hypot(run_se, se)
