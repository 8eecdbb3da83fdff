"""The rate of forgetting (issue 12): bounds on a state's survival bracket the exact values.

Under ``replace`` with an exact fit, one state against the rest is a two-state Wright-Fisher
chain, so :func:`survival_probability` is exact.  Suresh et al. (2024)'s lower bound
1 - exp(-M q / k) and the book's genealogy upper bound min(1, M q b_{k-1}) must lie on either
side of it on a grid of q and M, and a seeded simulation of the chain (plain NumPy, independent
of the family's simulator) must agree with the exact curve within binomial error.
"""
import numpy as np
import pytest

from collapse_utils.discrete import theory as th

GRID_M = (2, 5, 10, 20, 50, 100, 200)


def _grid(M):
    q = np.array([0.1 / M, 0.5 / M, 1 / M, 2 / M, 5 / M, 0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
    return q[(q > 0) & (q < 1)]


@pytest.mark.parametrize("M", GRID_M)
def test_bounds_bracket_the_exact_survival(M):
    q, fits = _grid(M), 10 * M
    k = np.arange(fits + 1)
    exact = th.survival_probability(q, M, fits)
    lower = th.survival_lower_bound(q[:, None], M, k)
    upper = th.survival_upper_bound(q, M, fits)
    assert lower.shape == exact.shape == upper.shape
    assert np.all(lower <= exact + 1e-12) and np.all(exact <= upper + 1e-12)
    # both bounds are equalities before any fit and tight at the first (one Binomial draw)
    assert np.allclose(lower[:, 0], 1) and np.allclose(upper[:, 0], 1)
    assert np.allclose(upper[:, 1], np.minimum(1, M * q))
    assert np.all(exact[:, 1] - lower[:, 1] <= M * q * q + 1e-12)   # e^{-Mq} - (1-q)^M <= M q^2


@pytest.mark.parametrize("M", (20, 100))
def test_forgetting_time_is_linear_in_the_count(M):
    """Survival 1/2 is reached no sooner than M q / ln 2 fits (the lower bound), no later
    than the upper bound says, and for rare states the upper bound is within a small factor."""
    q = np.array([0.5, 1, 2, 5]) / M
    exact = th.survival_probability(q, M, 20 * M)
    t = th.forgetting_time(exact)
    t_low = th.forgetting_time(th.survival_lower_bound(q[:, None], M, np.arange(20 * M + 1)))
    t_up = th.forgetting_time(th.survival_upper_bound(q, M, 20 * M))
    assert np.all(t >= M * q / np.log(2) - 1) and np.all(t_low <= t) and np.all(t <= t_up)
    assert np.all(t_up <= 6 * np.maximum(M * q, 1))


def test_ancestor_fraction_bounds_the_simulated_genealogy():
    """b_j >= E[A_j]/M: the number of distinct ancestors of M samples, j resamplings back."""
    M, J, reps = 30, 40, 4000
    rng = np.random.default_rng(2024)
    b = th.ancestor_fraction(M, J)
    a = np.full(reps, M)
    for j in range(1, J + 1):
        parents = rng.integers(0, M, size=(reps, M))
        a = np.array([np.unique(p[:n]).size for p, n in zip(parents, a)])
        assert a.mean() / M <= b[j] + 4 * a.std() / M / np.sqrt(reps) + 1e-12, j
    assert b[0] == 1 and np.all(np.diff(b) <= 0) and b[-1] > 1 / M


def test_seeded_simulation_matches_exact_and_sits_inside_the_bounds():
    """Chains of Binom(M, x/M) counts from q (fit 1 from p0 itself), 20,000 of them:
    the share still present agrees with the exact curve within 4.5 binomial standard
    errors at every fit, so it lies inside the bounds up to that error too."""
    M, fits, chains = 50, 200, 20_000
    q = np.array([0.5 / M, 2 / M, 0.1])
    rng = np.random.default_rng(12)
    counts = rng.binomial(M, np.repeat(q[:, None], chains, axis=1))
    present = [np.mean(counts > 0, axis=1)]
    for _ in range(fits - 1):
        counts = rng.binomial(M, counts / M)
        present.append(np.mean(counts > 0, axis=1))
    sim = np.stack(present, axis=1)                       # fits 1..fits
    exact = th.survival_probability(q, M, fits)[:, 1:]
    se = np.sqrt(exact * (1 - exact) / chains) + 1e-9
    assert np.all(np.abs(sim - exact) <= 4.5 * se + 1e-4)
    lower = th.survival_lower_bound(q[:, None], M, np.arange(1, fits + 1))
    upper = th.survival_upper_bound(q, M, fits)[:, 1:]
    assert np.all(sim >= lower - 4.5 * se - 1e-4) and np.all(sim <= upper + 4.5 * se + 1e-4)


def test_the_lower_bound_is_the_papers_form():
    """1 - exp(-lambda/k) with lambda = M q, the expected count of the state in one fit."""
    assert th.survival_lower_bound(0.01, 100, 4) == pytest.approx(1 - np.exp(-0.25))
    assert th.survival_lower_bound(0.0, 100, 4) == 0.0 and th.survival_lower_bound(0.3, 10, 0) == 1.0
    with pytest.raises(TypeError):
        th.survival_lower_bound(0.1, 2.5, 3)
