"""The science of collapse_utils.discrete: simulation against exact theory.

Statistical tolerances: a proportion over n chains is checked within 4 binomial
standard deviations (two-sided false-alarm rate 6e-5 per check), a mean within
4 standard errors, an empirical CDF within the DKW bound at alpha = 1e-4.  Every
simulation has a fixed seed, so a pass is deterministic; the tolerances say how
unlucky a seed would have to be to fail.  Resume, the command line and setting
validation are tested once for every experiment in tests/test_experiments.py.

Generation 0 fits the real data D_0 (an M-sample of p0), so generation n is
fit n + 1 of the theory.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from collapse_utils import discrete as d
from collapse_utils.discrete import simulate as sim
from collapse_utils.experiments import run_experiment
from collapse_utils.loop import rng_for, run_generations

P0 = np.array([0.5, 0.3, 0.15, 0.045, 0.005])


@pytest.fixture(autouse=True)
def _fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path / "cache"))


def within_binomial(successes, n, p, k=4.0):
    """|successes/n - p| <= k standard deviations of a Binomial(n, p) proportion."""
    sd = math.sqrt(max(p * (1 - p), 1e-12) / n)
    return abs(successes / n - p) <= k * sd


# ----------------------------------------------------------------------------- engine
def test_generation_0_fits_an_M_sample_of_p0_drawn_from_the_real_stream():
    P = sim.trajectories(P0, 40, 15, chains=7, seed=1)
    assert P.shape == (7, 16, 5)
    real = rng_for(1, "real").multinomial(40, P0, size=7)
    np.testing.assert_array_equal(P[:, 0], real / 40)
    np.testing.assert_allclose(P.sum(axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(P * 40, np.round(P * 40), atol=1e-9)  # multiples of 1/M
    np.testing.assert_array_equal(P, sim.trajectories(P0, 40, 15, chains=7, seed=1))
    assert not np.array_equal(P, sim.trajectories(P0, 40, 15, chains=7, seed=2))


def test_one_multinomial_draw_over_all_chains_per_generation():
    calls = []

    class Counting:  # wraps the generation's rng and records each multinomial call
        def __init__(self, rng):
            self.rng = rng

        def multinomial(self, n, pvals):
            calls.append(np.shape(pvals))
            return self.rng.multinomial(n, pvals)

    real = sim.real_counts(np.full(4, 0.25), 50, 300, 0)
    run_generations(sim.fit_frequencies, lambda P, m, rng: sim.sample_counts(P, m, Counting(rng)),
                    real, 12, sizes=50, axis=1, progress=False)
    assert len(calls) == 12 and calls[0] == (300, 4)


def test_draw_without_replacement_is_hypergeometric():
    rng = np.random.default_rng(0)
    pool = rng.multinomial(100, [0.5, 0.3, 0.2], size=40_000)
    for k in (10, 90):
        x = sim.draw_without_replacement(pool, k, rng)
        assert np.all(x.sum(axis=1) == k) and np.all(x <= pool)
        r = pool[:, 0] / 100  # hypergeometric mean k r and variance k r (1 - r)(n - k)/(n - 1)
        var = np.mean(k * r * (1 - r) * (100 - k) / 99)
        assert abs(np.mean(x[:, 0] - k * r)) <= 4 * math.sqrt(var / x.shape[0])
        assert np.var(x[:, 0] - k * r) == pytest.approx(var, rel=0.05)
    np.testing.assert_array_equal(sim.draw_without_replacement(pool[:5], 100, rng), pool[:5])


def test_regime_training_sets_follow_the_core_semantics():
    M = 100
    sizes = {"replace": lambda i: M, "keep-real": lambda i: M, "accumulate": lambda i: M * (i + 1)}
    for regime, size in sizes.items():
        real = sim.real_counts(P0, M, 3, 0)
        res = run_generations(sim.fit_frequencies, sim.sample_counts, real, 6,
                              regime=d.count_regime(regime, 0.1), sizes=M, seed=0, axis=1,
                              measure=lambda g: {"n": float(np.sum(g.train[0])),
                                                 "real_in": bool(np.all(g.train >= 0))},
                              progress=False)
        assert res.metrics["n"] == pytest.approx([size(i) for i in range(7)]), regime
    with pytest.raises(ValueError, match="regime must be one of replace, keep-real, accumulate"):
        d.count_regime("bogus")


def test_accumulate_keeps_exactly_the_states_of_D0_and_keep_real_never_adds_one():
    P = sim.trajectories(P0, 100, 200, chains=300, seed=1, regime="accumulate")
    in_d0 = P[:, 0] > 0
    assert np.all((P > 0) == in_d0[:, None, :])     # nothing lost, nothing gained
    assert not in_d0[:, 4].all()                    # the q = 0.005 state is often missing
    K = sim.trajectories(P0, 100, 300, chains=300, seed=1, regime="keep-real")
    np.testing.assert_array_equal(K[:, 0], P[:, 0])  # the same D_0 (the "real" stream)
    assert np.all((K > 0) <= in_d0[:, None, :])
    assert not np.any(d.support_size(K[:, 1:]) == 1)


# ----------------------------------------------------------------------------- theory
def test_theory_helpers_exact_values():
    assert d.one_step_survival(0.01, 100) == pytest.approx(1 - 0.99**100)
    assert d.mean_absorption_time_diffusion(0.5, 100) == pytest.approx(200 * math.log(2))
    assert d.mean_absorption_time_diffusion([0.3, 0.7], 50) == pytest.approx(
        d.mean_absorption_time_diffusion(0.3, 50))
    S = d.survival_probability(P0, 20, 3000)
    np.testing.assert_allclose(S[:, 1], d.one_step_survival(P0, 20))
    np.testing.assert_allclose(S[:, -1], P0, atol=1e-9)          # -> fixation probability q
    assert np.all(np.diff(S[:, 1:], axis=1) <= 1e-12)              # survival only falls
    np.testing.assert_array_equal(d.fixation_probability(P0), P0)
    pmf = d.absorption_time_pmf(0.3, 25, 4000)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-9)
    assert (np.arange(pmf.size) @ pmf) == pytest.approx(d.mean_absorption_time_exact(0.3, 25),
                                                        rel=1e-8)
    G0 = 1 - np.sum(P0**2)
    g = d.expected_gini_simpson(P0, 100, 2000, "accumulate")
    assert g[1] == pytest.approx(G0 * 0.99) and g[-1] >= G0 * (1 - math.pi**2 / 600)
    g = d.expected_gini_simpson(P0, 100, 3000, "keep-real", 0.1)
    assert g[-1] == pytest.approx(d.keep_real_stationary_gini_simpson(P0, 100, 0.1), rel=1e-9)
    assert d.keep_real_stationary_gini_simpson(P0, 100, 1.0) == pytest.approx(G0 * 0.99)
    assert d.keep_real_stationary_gini_simpson(P0, 100, 0.0) == pytest.approx(0.0, abs=1e-12)
    assert d.zipf(4, 0) == pytest.approx(np.full(4, 0.25))
    lo, hi = d.binomial_interval(30, 100)
    assert 0.2 < lo < 0.3 < hi < 0.4


@pytest.mark.parametrize("p, needle", [([0.5, -0.1, 0.6], "non-negative"), ([0.5, 0.4], "sum to 1"),
                                       ([[0.5, 0.5]], "1-D"), ([np.nan, 1.0], "finite")])
def test_check_distribution_names_p0_and_what_is_wrong(p, needle):
    with pytest.raises(ValueError, match=rf"^p0 must.*{needle}"):
        d.check_distribution(p)


def test_survival_matches_simulation_one_fit_per_generation():
    M, chains = 100, 20_000
    P = sim.trajectories(P0, M, 9, chains=chains, seed=11)
    exact = d.survival_probability(P0, M, 10)
    for n in (0, 2, 9):
        for i in (2, 3, 4):  # the tail states 0.15, 0.045 and 0.005 (< 1/M)
            alive = int((P[:, n, i] > 0).sum())
            assert within_binomial(alive, chains, exact[i, n + 1]), (n, i, alive / chains)
    assert within_binomial(int((P[:, 0, 4] > 0).sum()), chains, 1 - (1 - 0.005) ** M)


def test_martingale_mean_in_every_regime():
    """E[p_n] = p0 at every generation (replace, keep-real, accumulate, self-correct); not
    under verify, whose lost states' mass goes to the states it keeps."""
    for regime in d.REGIME_CHOICES:
        P = sim.trajectories(P0, 50, 60, chains=4000, seed=5, regime=regime)
        for n in (0, 20, 60):
            se = P[:, n].std(axis=0, ddof=1) / math.sqrt(4000)
            ok = np.abs(P[:, n].mean(axis=0) - P0) <= 4 * se + 1e-12
            if regime == "verify" and n > 0:
                assert P[:, n, 0].mean() > P0[0] + 4 * se[0] and P[:, n, -1].mean() < P0[-1]
            else:
                assert np.all(ok), (regime, n)


@pytest.mark.parametrize("regime", ["replace", "keep-real", "accumulate"])
def test_expected_gini_simpson_matches_simulation(regime):
    M, chains, n = 40, 3000, 80
    P = sim.trajectories(P0, M, n, chains=chains, seed=21, regime=regime, real_fraction=0.2)
    g = d.gini_simpson(P)
    exact = d.expected_gini_simpson(P0, M, n + 1, regime, 0.2)[1:]
    se = g.std(axis=0, ddof=1) / math.sqrt(chains)
    at = [0, 1, 5, 20, 80]
    assert np.all(np.abs(g.mean(axis=0) - exact)[at] <= 4 * se[at]), (regime, g.mean(axis=0)[at])


def test_absorption_and_fixation_probabilities():
    chains = 10_000
    res = sim.absorption(P0, 20, 600, chains=chains, seed=2)
    assert np.isfinite(res.times).all() and np.all(d.support_size(res.final) == 1)
    wins = (res.final == 1.0).sum(axis=0)
    for i, p in enumerate(P0):
        assert within_binomial(wins[i], chains, p), (i, wins[i] / chains, p)
    from scipy.stats import chisquare

    assert chisquare(wins, chains * P0).pvalue > 1e-4


def test_two_state_absorption_time_distribution_in_fits():
    M, p, chains = 30, 0.3, 4000
    t = sim.absorption([p, 1 - p], M, 1500, chains=chains, seed=9).times + 1  # fits
    assert np.isfinite(t).all()
    exact = d.mean_absorption_time_exact(p, M)
    assert abs(t.mean() - exact) <= 4 * t.std(ddof=1) / math.sqrt(chains)
    cdf = np.cumsum(d.absorption_time_pmf(p, M, 1501))
    ecdf = np.searchsorted(np.sort(t), np.arange(1502), side="right") / chains
    assert np.max(np.abs(ecdf - cdf)) <= math.sqrt(math.log(2 / 1e-4) / (2 * chains))
    assert d.mean_absorption_time_diffusion(p, M) == pytest.approx(exact, rel=0.05)


# ----------------------------------------------------------------------------- records
def test_records_hold_the_engine_s_numbers():
    over = {"generations": 40, "chains": 150, "K": 6, "regime": ["replace", "accumulate"]}
    rec = run_experiment("discrete", profile="smoke", overrides=over, progress=False)
    p0 = d.zipf(6, rec.settings["zipf_exponent"])
    np.testing.assert_allclose(d.p0_of(rec), p0)
    for regime in over["regime"]:
        P = sim.trajectories(p0, rec.settings["M"], 40, 150, seed=0, regime=regime)
        for n in (0, 10, 40):
            expected = d.summary_metrics(P[:, n])
            for key, value in expected.items():
                got = rec.metric(key, regime=regime)[0, n]
                assert got == pytest.approx(value), (regime, key, n)
    absorbed = rec.metric("absorbed_fraction", regime="replace")[0]
    assert np.all(np.diff(absorbed) >= 0)  # a delta is absorbing


def test_absorption_record_reads_back_each_chain_s_time():
    rec = run_experiment("discrete-absorption", profile="smoke", progress=False,
                         overrides={"M": [10, 20], "chains": 300})
    assert rec.values("M") == [10, 20]
    for M in (10, 20):
        assert rec.one(M=M)["generations"][-1] == d.run_length({**rec.settings, "M": M}) == 15 * M
        t = d.absorption_times(rec, M=M)
        ref = sim.absorption([0.5, 0.5], M, 15 * M, chains=300, seed=0)
        np.testing.assert_array_equal(np.sort(t), np.sort(ref.times + 1))
        np.testing.assert_array_equal(d.final_fixed(rec, M=M), (ref.final == 1.0).sum(axis=0))
    fix = run_experiment("discrete-fixation", profile="smoke", progress=False,
                         overrides={"chains": 500, "generations": 50})
    assert d.run_length(fix.settings | {"M": 20}) == 50 and len(d.p0_of(fix)) == 5


def test_explorer_builds_sliders_and_redraws(monkeypatch):
    """The notebook's explorer cell is tagged skip-execution (widgets can stall nbclient),
    so its widget is checked here: three sliders, and a redraw at another M draws a figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import importlib

    ex = importlib.import_module("collapse_utils.discrete.explorer")  # the module, not the function
    asked = []
    monkeypatch.setattr(ex, "explore_record", lambda *a, **k: asked.append((a, k)) or None)
    monkeypatch.setattr(ex, "explore_figure", lambda rec: plt.figure())
    widget = ex.explorer().widget  # interact returns the function, its widget attached
    sliders = {c.description: c for c in widget.children if hasattr(c, "value")}
    assert {"M", "Zipf s", "generations"} <= set(sliders)
    assert sliders["M"].value == ex.EXPLORER_DEFAULTS["M"]
    sliders["M"].value = 120
    assert asked[-1][0][0] == 120


def test_explore_figure_draws_from_a_record():
    import matplotlib

    matplotlib.use("Agg")
    rec = d.explore_record(**{**d.EXPLORER_DEFAULTS, "generations": 30}, chains=50)
    fig = d.explore_figure(rec)
    assert len(fig.axes) == 3


# ----------------------------------------------------------------------------- curation (issue 12)
HEAD = np.array([0.4, 0.3, 0.2, 0.1])   # every state expects >= 10 of M = 100 samples


def _curated(p0, regime, generations, chains, seed, **curation):
    rows = []
    sim.run_chains(p0, 100, generations, chains, seed, lambda g: rows.append(g.model) or {},
                   regime=regime, curation=curation, progress=False)
    return np.asarray(rows)   # (generations + 1, chains, K)


def test_self_correct_keeps_every_state_and_matches_its_exact_diversity():
    P = _curated(P0, "self-correct", 40, 3000, 3, gamma=0.2)
    assert np.all(P[1:] > 0)                       # gamma p0 > 0 in every state, every chain
    T = d.curation_gini_simpson(P0, 100, 41, "self-correct", gamma=0.2)
    for gen in (1, 10, 40):
        gs = d.gini_simpson(P[gen])
        assert abs(gs.mean() - T[gen + 1]) <= 4 * gs.std(ddof=1) / math.sqrt(gs.size)
    np.testing.assert_allclose(P[-1].mean(axis=0), P0, atol=0.01)   # E p = p0


@pytest.mark.parametrize("error", [0.0, 0.5, 1.0])
def test_verify_matches_its_full_support_diversity(error):
    P = _curated(HEAD, "verify", 30, 3000, 4, verifier_error=error)
    T = d.curation_gini_simpson(HEAD, 100, 31, "verify", verifier_error=error)
    gs = d.gini_simpson(P[-1])
    assert abs(gs.mean() - T[-1]) <= 4 * gs.std(ddof=1) / math.sqrt(gs.size)
    if error == 1.0:   # an uninformative verifier is replace
        rep = d.expected_gini_simpson(HEAD, 100, 31)
        assert abs(T[-1] - rep[-1]) < 1e-12


def test_verify_cannot_bring_back_a_lost_state():
    regime = sim.count_regime("verify", p0=P0, verifier_error=0.0)
    previous = np.tile([60, 40, 0, 0, 0], (500, 1))
    counts, _ = regime.next_data(None, 100, previous=previous, real=None, pool=[],
                                 rng=np.random.default_rng(0))
    assert counts.sum(axis=1).tolist() == [100] * 500 and np.all(counts[:, 2:] == 0)
    share = counts[:, 0].mean() / 100                     # p0 restricted to {0, 1}: 0.5/0.8
    assert abs(share - 0.5 / 0.8) < 4 * math.sqrt(0.625 * 0.375 / 50_000)


def test_perfect_verifier_support_stays_above_its_bound():
    P = _curated(P0, "verify", 60, 2000, 6, verifier_error=0.0)
    support = d.support_size(P).mean(axis=1)
    bound = d.verified_support_bound(P0, 100, 61)[1:]
    assert np.all(support >= bound - 4 * 0.5 / math.sqrt(2000))
    rep = _curated(P0, "replace", 60, 2000, 6)
    assert support[-1] > d.support_size(rep[-1]).mean()
