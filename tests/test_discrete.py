"""Tests of collapse_utils.discrete: simulation against exact theory, seeds, errors, CLI, resume.

Statistical tolerances: a proportion over n chains is checked within 4 binomial
standard deviations (two-sided false-alarm rate 6e-5 per check), a mean within
4 standard errors, an empirical CDF within the DKW bound at alpha = 1e-4.  Every
simulation has a fixed seed, so a pass is deterministic; the tolerances say how
unlucky a seed would have to be to fail.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from collapse_utils import discrete as d
from collapse_utils.experiments import resolve_settings, run_experiment
from collapse_utils.loop import run_generations

P0 = np.array([0.5, 0.3, 0.15, 0.045, 0.005])


def within_binomial(successes, n, p, k=4.0):
    """|successes/n - p| <= k standard deviations of a Binomial(n, p) proportion."""
    sd = math.sqrt(max(p * (1 - p), 1e-12) / n)
    return abs(successes / n - p) <= k * sd


# ----------------------------------------------------------------------------- shape, seeds
def test_shape_index0_and_lattice():
    P = d.simulate(P0, 40, 15, chains=7, seed=1)
    assert P.shape == (7, 16, 5)
    np.testing.assert_array_equal(P[:, 0], np.broadcast_to(P0, (7, 5)))
    np.testing.assert_allclose(P.sum(axis=-1), 1.0, atol=1e-12)
    # replace: every later generation is a multiple of 1/M
    np.testing.assert_allclose(P[:, 1:] * 40, np.round(P[:, 1:] * 40), atol=1e-9)
    assert d.simulate([1.0], 10, 3).shape == (1, 4, 1)


def test_reproducible_from_seed():
    a = d.simulate(P0, 30, 20, chains=50, seed=7)
    b = d.simulate(P0, 30, 20, chains=50, seed=7)
    c = d.simulate(P0, 30, 20, chains=50, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    for regime in ("keep-real", "accumulate"):
        np.testing.assert_array_equal(d.simulate(P0, 30, 10, 20, seed=3, regime=regime),
                                      d.simulate(P0, 30, 10, 20, seed=3, regime=regime))
    assert d.simulate(P0, 30, 5, chains=3).shape == (3, 6, 5)  # seed=None runs


# ----------------------------------------------------------------------------- theory
def test_theory_helpers_exact_values():
    assert d.one_step_survival(0.01, 100) == pytest.approx(1 - 0.99**100)
    assert d.mean_absorption_time_diffusion(0.5, 100) == pytest.approx(200 * math.log(2))
    # the K-state formula reduces to the two-state one
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
    g = d.expected_gini_simpson(P0, 100, 2000, "accumulate")
    assert g[-1] >= (1 - np.sum(P0**2)) * (1 - (math.pi**2 / 6 - 1) / 100)
    g = d.expected_gini_simpson(P0, 100, 3000, "keep-real", 0.1)
    assert g[-1] == pytest.approx(d.keep_real_stationary_gini_simpson(P0, 100, 0.1), rel=1e-9)
    assert d.zipf(4, 0) == pytest.approx(np.full(4, 0.25))
    lo, hi = d.binomial_interval(30, 100)
    assert lo < 0.3 < hi and 0.2 < lo and hi < 0.4


def test_one_step_and_multi_step_survival_match_simulation():
    M, chains = 100, 20_000
    P = d.simulate(P0, M, 10, chains=chains, seed=11)
    exact = d.survival_probability(P0, M, 10)
    for n in (1, 3, 10):
        for i in (2, 3, 4):  # the tail states 0.15, 0.045 and 0.005 (< 1/M)
            alive = int((P[:, n, i] > 0).sum())
            assert within_binomial(alive, chains, exact[i, n]), (n, i, alive / chains, exact[i, n])
    alive = int((P[:, 1, 4] > 0).sum())
    assert within_binomial(alive, chains, 1 - (1 - 0.005) ** M)


def test_martingale_mean():
    """E[p_n] = p0 at every generation (replace, keep-real and accumulate)."""
    for regime in d.REGIMES:
        P = d.simulate(P0, 50, 60, chains=4000, seed=5, regime=regime)
        for n in (1, 20, 60):
            mean = P[:, n].mean(axis=0)
            se = P[:, n].std(axis=0, ddof=1) / math.sqrt(4000)
            assert np.all(np.abs(mean - P0) <= 4 * se + 1e-12), (regime, n, mean)


def test_absorption_and_fixation_probabilities():
    chains = 10_000
    res = d.simulate_absorption(P0, 20, 600, chains=chains, seed=2)
    assert np.isfinite(res.times).all()                       # absorbed with probability 1
    assert np.all(d.support_size(res.final) == 1)
    wins = (res.final == 1.0).sum(axis=0)
    for i, p in enumerate(P0):
        assert within_binomial(wins[i], chains, p), (i, wins[i] / chains, p)
    from scipy.stats import chisquare

    assert chisquare(wins, chains * P0).pvalue > 1e-4


def test_two_state_absorption_time_distribution():
    M, p, chains = 30, 0.3, 4000
    t = d.simulate_absorption([p, 1 - p], M, 1500, chains=chains, seed=9).times
    assert np.isfinite(t).all()
    exact = d.mean_absorption_time_exact(p, M)
    assert abs(t.mean() - exact) <= 4 * t.std(ddof=1) / math.sqrt(chains)
    # whole distribution: empirical CDF within the DKW band of the exact CDF
    cdf = np.cumsum(d.absorption_time_pmf(p, M, 1500))
    ecdf = np.searchsorted(np.sort(t), np.arange(1501), side="right") / chains
    assert np.max(np.abs(ecdf - cdf)) <= math.sqrt(math.log(2 / 1e-4) / (2 * chains))
    # the diffusion approximation is within 5% of the exact mean already at M = 30
    assert d.mean_absorption_time_diffusion(p, M) == pytest.approx(exact, rel=0.05)


def test_absorption_time_agrees_between_simulate_and_simulate_absorption():
    P = d.simulate(P0, 15, 120, chains=300, seed=4)
    res = d.simulate_absorption(P0, 15, 120, chains=300, seed=4)
    np.testing.assert_array_equal(d.absorption_time(P), res.times)
    np.testing.assert_array_equal(P[:, -1], res.final)


@pytest.mark.parametrize("regime", d.REGIMES)
def test_expected_gini_simpson_matches_simulation(regime):
    M, chains, n = 40, 3000, 80
    P = d.simulate(P0, M, n, chains=chains, seed=21, regime=regime, real_fraction=0.2)
    g = d.gini_simpson(P)
    exact = d.expected_gini_simpson(P0, M, n, regime, 0.2)
    se = g.std(axis=0, ddof=1) / math.sqrt(chains)
    n = [1, 5, 20, 80]
    assert np.all(np.abs(g.mean(axis=0) - exact)[n] <= 4 * se[n]), (regime, g.mean(axis=0)[n], exact[n])


def test_regimes_keep_data_sizes_and_support():
    M = 100
    # accumulate: the real data stays in the pool, so no state is ever lost
    P = d.simulate(P0, M, 200, chains=200, seed=1, regime="accumulate")
    assert np.all(d.support_size(P) == P0.size)
    # keep-real: 10 fresh real samples a generation, never absorbed in 300 generations
    P = d.simulate(P0, M, 300, chains=200, seed=1, regime="keep-real", real_fraction=0.1)
    assert not np.any(d.support_size(P[:, 1:]) == 1)
    # the training-set sizes follow the core regimes: M for keep-real, M (n + 1) for accumulate
    for regime, size in (("keep-real", lambda i: M), ("accumulate", lambda i: M * (i + 1))):
        real = np.broadcast_to(M * P0, (3, 5))
        res = run_generations(d.fit_frequencies, d.sample_counts, real, 6,
                              regime=d.count_regime(regime, 0.1), sizes=M, seed=0, axis=1,
                              measure=lambda g: {"n": float(np.sum(g.train[0]))}, progress=False)
        assert res.metrics["n"] == pytest.approx([size(i) for i in range(7)])


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs, name", [
    (dict(M=0), "M"), (dict(M=2.5), "M"), (dict(M=-3), "M"),
    (dict(p0=[0.5, -0.1, 0.6]), "p0"), (dict(p0=[0.5, 0.4]), "p0"), (dict(p0=[[0.5, 0.5]]), "p0"),
    (dict(p0=[np.nan, 1.0]), "p0"),
    (dict(generations=-1), "generations"), (dict(chains=-2), "chains"), (dict(chains=0), "chains"),
    (dict(regime="bogus"), "regime"), (dict(real_fraction=1.5), "real_fraction"),
    (dict(seed=-1), "seed"),
])
def test_bad_parameters_raise_value_error_naming_them(kwargs, name):
    args = dict(p0=[0.5, 0.5], M=10, generations=3, chains=2, seed=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=rf"^{name} must"):
        d.simulate(**args)


def test_error_messages_name_allowed_values():
    with pytest.raises(ValueError, match="replace, keep-real, accumulate"):
        d.simulate([1.0], 5, 2, regime="replace-all")
    with pytest.raises(ValueError, match=r"integer >= 1"):
        d.simulate([1.0], 0, 2)
    with pytest.raises(ValueError, match=r"sum to 1"):
        d.simulate([0.2, 0.2], 5, 2)
    with pytest.raises(ValueError, match=r"non-negative"):
        d.simulate([1.2, -0.2], 5, 2)
    with pytest.raises(ValueError, match=r"^K must"):
        d.zipf(0)
    with pytest.raises(ValueError, match=r"^exponent must"):
        d.zipf(5, -1.0)
    with pytest.raises(ValueError, match=r"^M must"):
        d.one_step_survival(0.1, 0)
    with pytest.raises(ValueError, match=r"^p must"):
        d.mean_absorption_time_diffusion(1.5, 10)
    with pytest.raises(ValueError, match=r"^regime must"):
        d.expected_gini_simpson([1.0], 5, 3, "bogus")
    with pytest.raises(ValueError, match=r"regime must be one of"):
        resolve_settings("discrete", "smoke", {"regime": "bogus"})


# ----------------------------------------------------------------------------- CLI experiment, resume
SMALL = {"generations": 25, "chains": 150, "K": 6}


@pytest.mark.parametrize("regime", d.REGIMES)
def test_experiment_resume_gives_identical_metrics(tmp_path, regime):
    settings = resolve_settings("discrete", "smoke", {**SMALL, "regime": regime})
    full = d.run_discrete(settings, seed=3, run_dir=tmp_path / "full", progress=False)
    part = d.run_discrete(settings, seed=3, run_dir=tmp_path / "cut", progress=False, stop_after=11)
    assert part.generations == list(range(12))                  # interrupted after generation 11
    resumed = d.run_discrete(settings, seed=3, run_dir=tmp_path / "cut", resume=True,
                             progress=False)
    assert resumed.generations == full.generations == list(range(26))
    assert resumed.metrics == full.metrics


def test_experiment_uses_the_same_engine_as_simulate(tmp_path):
    settings = resolve_settings("discrete", "smoke", SMALL)
    out = d.run_discrete(settings, seed=4, run_dir=None, progress=False)
    P = d.simulate(d.zipf(6, settings["zipf_exponent"]), settings["M"], 25, 150, seed=4)
    for n in (0, 10, 25):
        expected = d.summary_metrics(P[:, n])
        for key, value in expected.items():
            assert out.metrics[key][n] == pytest.approx(value), (key, n)
    # the martingale shows in the saved metrics: mean p stays at p0 within 4 s.e.
    # (a [0, 1] variable with mean p0 has variance <= p0 (1 - p0))
    p0 = d.zipf(6, settings["zipf_exponent"])
    se = np.sqrt(p0 * (1 - p0) / 150)
    assert np.all(np.abs(np.array(out.metrics["p_mean"][25]) - p0) <= 4 * se)


def test_cli_run_writes_metrics_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path / "cache"))
    args = ["--generations", "12", "--chains", "40", "--K", "5"]
    cmd = [sys.executable, "-m", "collapse_utils", "run", "discrete", "--profile", "smoke",
           "--seed", "1", "--quiet", "--out", str(tmp_path / "a"), *args]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    record = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert record["experiment"] == "discrete" and record["generations"] == list(range(13))
    assert set(record["metrics"]) >= {"support_mean", "entropy_mean", "absorbed_fraction",
                                      "survival", "gini_simpson_mean"}
    assert len(record["metrics"]["survival"][3]) == 5
    again = subprocess.run([*cmd[:-len(args) - 2], "--out", str(tmp_path / "b"), "--resume", *args],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["metrics"] == record["metrics"]
    bad = subprocess.run([*cmd, "--regime", "bogus"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "regime must be one of" in bad.stderr


def test_run_experiment_api(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path))
    rec = run_experiment("discrete", profile="smoke", seed=0, progress=False,
                         overrides={"generations": 5, "chains": 30, "regime": "accumulate"})
    assert rec["metrics"]["support_mean"] == [10.0] * 6  # accumulate keeps every state


def test_one_multinomial_draw_over_all_chains_per_generation():
    calls = []

    class Counting:  # wraps the generation's rng and records each multinomial call
        def __init__(self, rng):
            self.rng = rng

        def multinomial(self, n, pvals):
            calls.append(np.shape(pvals))
            return self.rng.multinomial(n, pvals)

    d._run(np.full(4, 0.25), 50, 12, 300, 0, "replace", 0.0, lambda g: {},
           sample=lambda P, m, rng: d.sample_counts(P, m, Counting(rng)))
    assert len(calls) == 12                                    # one per generation
    assert calls[0] == (300, 4) and all(c[1] == 4 for c in calls)  # all (active) chains at once


def test_explorer_builds_sliders_and_redraws(monkeypatch):
    """The notebook's explorer cell is tagged skip-execution (widgets can stall nbclient),
    so its widget is checked here: three sliders, and a redraw at another M draws a figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from collapse_utils import discrete as dc

    drawn = []
    monkeypatch.setattr(dc, "explore_figure", lambda *a, **k: drawn.append((a, k)) or plt.figure())
    widget = dc.explorer(chains=20).widget  # interact returns the function, its widget attached
    sliders = {c.description: c for c in widget.children if hasattr(c, "value")}
    assert {"M", "Zipf s", "generations"} <= set(sliders)
    assert sliders["M"].value == dc.EXPLORER_DEFAULTS["M"]
    sliders["M"].value = 120
    assert drawn[-1][0][0] == 120
