"""Selection bias (Qiao et al.): the Select regime, the Gaussian's exact recursion, the 10-D set-up.

Resume equal to an uninterrupted run is tested for every registered experiment in
tests/test_experiments.py (gaussian-selection and gmm-selection included).
"""
from __future__ import annotations

import numpy as np
import pytest

import collapse_utils as cu
from collapse_utils import regimes
from collapse_utils.experiments import resolve_settings
from collapse_utils.gaussian import selection as gsel
from collapse_utils.gaussian.theory import truncated_variance
from collapse_utils.gmm import selection as msel


# ----------------------------------------------------------------------------- the regime
def test_select_keeps_the_top_scores_of_each_chain_in_draw_order():
    rng = np.random.default_rng(0)
    batch = rng.standard_normal((3, 40))
    regime = regimes.Select(lambda x, rng: -np.abs(x), keep=0.25)
    kept, new = regime.next_data(lambda k: batch[:, :k], 10, previous=None, real=None, pool=[],
                                 rng=rng, axis=1)
    assert kept.shape == (3, 10) and kept is new
    for c in range(3):
        expected = batch[c][np.sort(np.argsort(np.abs(batch[c]))[:10])]
        assert np.array_equal(kept[c], expected)


def test_accumulate_select_adds_the_kept_samples_to_the_pool():
    rng = np.random.default_rng(1)
    real = rng.standard_normal(5)
    regime = regimes.make_regime("accumulate-select", score=lambda x, rng: x, keep=0.5)
    assert regime.uses_pool and regime.drawn(5) == 10
    train, new = regime.next_data(lambda k: np.arange(k, dtype=float), 5, previous=real, real=real,
                                  pool=[real], rng=rng)
    assert np.array_equal(new, [5, 6, 7, 8, 9]) and np.array_equal(train, np.r_[real, new])
    assert regimes.make_regime("select", score=lambda x, rng: x).uses_pool is False


@pytest.mark.parametrize("kwargs, needle", [
    (dict(keep=0.0), "keep must lie in (0, 1]"),
    (dict(keep=1.5), "keep must lie in (0, 1]"),
    (dict(base="subsample"), "base must be one of replace, accumulate"),
    (dict(score=None), "score must be a callable"),
])
def test_bad_select_arguments_fail_in_one_line(kwargs, needle):
    args = {"score": lambda x, rng: x, **kwargs}
    with pytest.raises(ValueError) as err:
        regimes.Select(**args)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_make_regime_needs_a_score_for_selection():
    with pytest.raises(ValueError, match="needs a score"):
        regimes.make_regime("select")


# ----------------------------------------------------------------------------- the 1-D theory
def test_selection_theory_reduces_to_the_plain_regimes():
    M = 50
    plain = gsel.selection_theory(30, M, 1.0, "select")
    assert np.allclose(plain, ((M - 1) / M) ** np.arange(1, 32))
    assert np.allclose(gsel.selection_theory(30, M, 0.3, "replace"), plain)
    assert gsel.selection_kappa(1.0) == 1.0
    assert gsel.selection_kappa(0.5) == pytest.approx(truncated_variance(0.6744897501960817))
    acc = gsel.selection_theory(2000, M, 0.05, "accumulate")
    assert acc[-1] > 0.97 * acc[0]   # accumulate alone keeps the variance


def test_accumulate_select_is_a_power_law_with_exponent_one_minus_kappa():
    keep = 0.2
    th = gsel.selection_theory(4000, 10_000, keep, "accumulate-select")
    slope = np.log(th[4000] / th[2000]) / np.log(4001 / 2001)
    assert slope == pytest.approx(-gsel.power_law_exponent(keep), rel=0.02)


@pytest.mark.parametrize("regime", ["select", "accumulate-select", "replace", "accumulate"])
def test_gaussian_selection_follows_its_recursion(regime):
    """Mean over 400 chains of S_g^2 against the recursion: within 4 standard errors plus 3% (the
    top-M rule keeps the M nearest of finitely many draws; the recursion is their limit)."""
    M, G, keep = 100, 12, 0.1
    rec = cu.run("gaussian-selection", "smoke", progress=False, M=M, generations=G, chains=400,
                 keep=[keep], regime=[regime])
    sim = rec.metric("dispersion_ratio_mean")[0]
    se = rec.metric("dispersion_ratio_sd")[0] / np.sqrt(400)
    th = gsel.selection_theory(G, M, keep, regime)
    for g in (1, 3, G) if regime != "select" else (1, 2):
        assert abs(sim[g] - th[g]) < 4 * se[g] + 0.03 * th[g], (g, sim[g], th[g])


def test_accumulate_select_collapses_where_accumulate_does_not():
    rec = cu.run("gaussian-selection", "smoke", progress=False, M=50, generations=40, chains=100)
    end = {r: rec.metric("dispersion_ratio_mean", regime=r)[0, -1] for r in gsel.SELECTION_CHOICES}
    assert end["accumulate"] > 0.9 and end["accumulate-select"] < 0.05 and end["select"] < 1e-20


@pytest.mark.parametrize("overrides, needle", [
    (dict(keep=[0.0]), "keep must be"),
    (dict(regime=["verify"]), "regime must be"),
    (dict(M=1), "M must be"),
])
def test_gaussian_selection_rejects_bad_settings_in_one_line(overrides, needle):
    with pytest.raises(ValueError) as err:
        resolve_settings("gaussian-selection", "smoke", overrides)
    assert needle in str(err.value) and "\n" not in str(err.value)


# ----------------------------------------------------------------------------- Qiao et al.'s 10-D set-up
def test_truth_and_dispersion_follow_their_code():
    truth = msel.make_truth("unequal-mixture", 10, np.random.default_rng(3))
    assert np.allclose(truth.model.weights, [0.8, 0.2])
    x = msel.sample_model(truth.model, 200_000, np.random.default_rng(4))
    assert msel.dispersion(truth.model) == pytest.approx(2 * np.trace(np.cov(x.T)), rel=0.02)
    lap = msel.make_truth("laplace", 4, np.random.default_rng(5)).model
    y = msel.sample_model(lap, 200_000, np.random.default_rng(6))
    assert msel.dispersion(lap) == pytest.approx(2 * np.trace(np.cov(y.T)), rel=0.02)


def test_em_recovers_a_mixture():
    truth = msel.make_truth("mixture", 3, np.random.default_rng(7)).model
    x = msel.sample_model(truth, 20_000, np.random.default_rng(8))
    fit = msel.em_fit(x, truth)
    assert fit.converged and np.allclose(np.sort(fit.weights), [0.5, 0.5], atol=0.03)
    assert msel.dispersion(fit) == pytest.approx(msel.dispersion(truth), rel=0.05)


def test_selection_collapses_every_family_at_small_sizes():
    rec = cu.run("gmm-selection", "smoke", progress=False, dim=3, points=40, generations=15, seeds=1,
                 family=list(msel.SELECTION_FAMILIES))
    for fam in msel.SELECTION_FAMILIES:
        end = {r: rec.metric("dispersion_ratio", family=fam, regime=r)[0, -1] for r in msel.SELECTION_REGIMES_10D}
        assert end["select"] < 1e-3, fam
        assert end["accumulate-select"] < 0.5 * end["accumulate"], (fam, end)


def test_gmm_selection_rejects_bad_settings_in_one_line():
    with pytest.raises(ValueError) as err:
        resolve_settings("gmm-selection", "smoke", {"points": 5, "dim": 10})
    assert "points must exceed dim" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ValueError) as err:
        resolve_settings("gmm-selection", "smoke", {"family": ["cauchy"]})
    assert "family must be" in str(err.value) and "\n" not in str(err.value)


# ----------------------------------------------------------------------------- sampling bias (MAD)
from collapse_utils.gmm import sampling_bias as sb   # noqa: E402


def test_precision_and_recall_of_identical_and_shrunk_samples():
    rng = np.random.default_rng(9)
    truth = sb.ring_mixture(8, 4.0, 0.5)
    real, same = sb.sample_biased(truth, 800, 1.0, rng), sb.sample_biased(truth, 800, 1.0, rng)
    p, r = sb.precision_recall(real, same, 5)
    assert p > 0.9 and r > 0.9
    p, r = sb.precision_recall(real, sb.sample_biased(truth, 800, 0.2, rng), 5)
    assert p > 0.99 and r < 0.5      # quality kept, diversity lost


def test_sampling_bias_shrinks_components_as_lambda_to_the_g():
    """Mean over 3 seeds of the components' sd at the last generation against spread * lambda^g
    (with the fit's shrink), within 10% (EM noise on 1000 points)."""
    rec = cu.run("gmm-sampling-bias", "smoke", progress=False, bias=[0.8], points=1000,
                 generations=6, seeds=3, reference=300)
    sim = rec.metric("component_std").mean(0)
    th = sb.component_std_theory(6, 0.8, 0.5, 1000 // 8)
    assert np.allclose(sim, th, rtol=0.1), (sim, th)
    assert rec.metric("precision")[:, -1].min() > 0.95 and rec.metric("recall")[:, -1].max() < 0.6


def test_sampling_bias_rejects_bad_settings_in_one_line():
    for overrides, needle in (({"bias": [0.0]}, "bias must be"), ({"k": 400, "reference": 300}, "k must be below")):
        with pytest.raises(ValueError) as err:
            resolve_settings("gmm-sampling-bias", "smoke", overrides)
        assert needle in str(err.value) and "\n" not in str(err.value)


# ----------------------------------------------------------------------------- a biased verifier (Yi et al.)
from collapse_utils.linreg import verification as lv   # noqa: E402


def test_contraction_is_below_the_identity_and_zero_at_zero():
    s = np.array([1e-3, 0.1, 0.5, 1.0, 3.0])
    h = lv.contraction(s)
    assert np.all(h < s) and np.all(h > 0) and abs(float(lv.contraction(0.0))) < 1e-12


def test_contraction_matches_least_squares_on_many_verified_pairs():
    rng = np.random.default_rng(11)
    d, s = 3, 0.6
    delta = np.array([s, 0.0, 0.0])
    x = rng.standard_normal((400_000, d))
    r = x @ delta + rng.standard_normal(400_000)
    keep = np.abs(r) <= np.sqrt(2 / np.pi)
    fit = np.linalg.lstsq(x[keep], r[keep], rcond=None)[0]
    assert fit[0] == pytest.approx(float(lv.contraction(s)), abs=0.01) and np.all(np.abs(fit[1:]) < 0.01)


@pytest.mark.parametrize("bias", [0.0, 0.1])
def test_verified_loop_follows_the_population_map(bias):
    """Mean over 150 chains of |beta_t - beta*|^2 against the map with its noise floor: within
    4 standard errors plus 5% (the floor is a linearisation)."""
    rec = cu.run("linear-regression-verifier", "smoke", progress=False, verifier_bias=[bias],
                 regime=["verify"], chains=150, samples=400, generations=5)
    e, sd = rec.metric("error")[0], rec.metric("error_sd")[0] / np.sqrt(150)
    pop = np.asarray(rec.fact("population"))
    assert np.all(np.abs(e - pop) < 4 * sd + 0.05 * pop), (e, pop)
    assert abs(e[-1] - 5 * bias**2) < 0.01   # converges to the verifier's own error


def test_verifier_bias_rejects_bad_settings_in_one_line():
    with pytest.raises(ValueError) as err:
        resolve_settings("linear-regression-verifier", "smoke", {"samples": 5, "d": 5})
    assert "must exceed d + 1" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ValueError) as err:
        resolve_settings("linear-regression-verifier", "smoke", {"verifier_bias": [-0.1]})
    assert "verifier_bias must be" in str(err.value) and "\n" not in str(err.value)


# ----------------------------------------------------------------------------- a cut tail (Dohmatob et al.)
from collapse_utils.discrete import tails as zt   # noqa: E402


def test_tail_cut_error_is_the_exact_miss_probability():
    beta, vocab, k, T = 1.5, 500, 50, 200
    p = zt.zipf(vocab, beta)
    q = zt.cut(p, k)
    assert zt.tail_cut_error(T, beta, vocab, k)[0] == pytest.approx(np.sum(p * (1 - q) ** T))
    assert zt.tail_cut_error(10**9, beta, vocab, k)[0] == pytest.approx(p[k:].sum(), rel=1e-6)   # the floor
    assert zt.tail_cut_error(10**9, beta, vocab, 0)[0] < 1e-6


def test_the_clean_rate_has_exponent_one_minus_one_over_beta():
    beta, T = 2.0, np.array([1e3, 1e4])
    exact = zt.tail_cut_error(T, beta, 10**7, 0)
    slope = np.log(exact[1] / exact[0]) / np.log(10)
    assert slope == pytest.approx(-(1 - 1 / beta), abs=0.02)
    assert exact[1] == pytest.approx(zt.rate_terms(T[1], beta, 0)[0], rel=0.05)


def test_zipf_tails_generation_zero_matches_the_exact_sum_and_grows():
    rec = cu.run("zipf-tails", "smoke", progress=False, samples=[1000], cut=[0, 100], chains=30,
                 vocab=5000, generations=4)
    for k in (0, 100):
        e, sd = rec.metric("error", cut=k)[0], rec.metric("error_sd", cut=k)[0] / np.sqrt(30)
        assert abs(e[0] - rec.fact("exact", cut=k)) < 4 * sd[0] + 1e-3
        assert e[-1] > e[0]


def test_zipf_tails_rejects_bad_settings_in_one_line():
    with pytest.raises(ValueError) as err:
        resolve_settings("zipf-tails", "smoke", {"cut": [20000], "vocab": 1000})
    assert "cut must not exceed vocab" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ValueError) as err:
        resolve_settings("zipf-tails", "smoke", {"beta": 1.0})
    assert "beta must be" in str(err.value) and "\n" not in str(err.value)
