"""Gaussian mixtures: the closed-form L2 distance, sampling, tails, the drift theory, the protocol
and its regimes.  Resume, the command line and settings plumbing are tested once for every
experiment in tests/test_experiments.py."""
import json
import math

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import multivariate_normal

from collapse_utils import gmm
from collapse_utils.experiments import resolve_settings, run_experiment


def mixture_pdf(mix, x):
    mix = gmm.as_mixture(mix)
    return sum(w * multivariate_normal(m, S).pdf(x)
               for w, m, S in zip(mix.weights, mix.means, mix.covariances))


def random_mixture(rng, K, d=2, scale=1.0):
    w = rng.dirichlet(np.ones(K))
    mu = rng.normal(0, 1.5, (K, d))
    A = rng.normal(0, 1, (K, d, d)) * 0.5 * scale
    cov = A @ np.swapaxes(A, 1, 2) + 0.3 * scale**2 * np.eye(d)
    return gmm.Mixture(w, mu, cov)


# ----------------------------------------------------------------------------- l2_distance
@pytest.mark.parametrize("Ka,Kb", [(2, 2), (1, 3)])
def test_l2_distance_matches_grid_integration(Ka, Kb):
    rng = np.random.default_rng(Ka * 10 + Kb)
    a, b = random_mixture(rng, Ka), random_mixture(rng, Kb)
    # a fine grid: the trapezoid rule is spectrally accurate for smooth, fast-decaying integrands
    t = np.linspace(-12, 12, 961)
    X, Y = np.meshgrid(t, t, indexing="ij")
    pts = np.stack([X, Y], -1)
    diff2 = (mixture_pdf(a, pts) - mixture_pdf(b, pts)) ** 2
    numeric = integrate.trapezoid(integrate.trapezoid(diff2, t, axis=1), t)
    assert gmm.l2_distance(a, b) == pytest.approx(numeric, rel=1e-7)


def test_l2_distance_1d_matches_quad_and_accepts_tuples():
    a = ([0.3, 0.7], [[-1.0], [0.5]], [[[0.4]], [[1.3]]])
    b = ([1.0], [[0.2]], [[[0.8]]])
    numeric, err = integrate.quad(lambda x: (mixture_pdf(a, [x]) - mixture_pdf(b, [x])) ** 2,
                                  -np.inf, np.inf, epsabs=1e-13)
    assert gmm.l2_distance(a, b) == pytest.approx(numeric, rel=1e-8)


def test_l2_distance_identity_symmetry_and_errors():
    rng = np.random.default_rng(3)
    a, b = random_mixture(rng, 2), random_mixture(rng, 3)
    assert gmm.l2_distance(a, a) == 0.0
    assert gmm.l2_distance(a, b) == pytest.approx(gmm.l2_distance(b, a), rel=1e-12)
    assert gmm.l2_distance(a, b) > 0
    # the same mixture with its components listed in another order is the same density
    perm = gmm.Mixture(a.weights[::-1], a.means[::-1], a.covariances[::-1])
    assert gmm.l2_distance(a, perm) == pytest.approx(0.0, abs=1e-15)
    # two 1-D unit Gaussians at distance delta: 2 (1 - exp(-delta^2/4)) / sqrt(4 pi)
    one = ([1.0], [[0.0]], [[[1.0]]])
    two = ([1.0], [[1.5]], [[[1.0]]])
    assert gmm.l2_distance(one, two) == pytest.approx(
        2 * (1 - math.exp(-1.5**2 / 4)) / math.sqrt(4 * math.pi), rel=1e-12)
    with pytest.raises(ValueError, match="b must have the dimension of a"):
        gmm.l2_distance(a, one)
    with pytest.raises(ValueError, match="model must be"):
        gmm.l2_distance(a, "not a mixture")
    with pytest.raises(ValueError, match="model must be"):
        gmm.l2_distance(a, ([0.5, 0.5], [[0.0, 0.0]], [np.eye(2)]))


@pytest.mark.parametrize("kind", ["full", "tied", "diag", "spherical"])
def test_l2_distance_accepts_sklearn_models(kind):
    from sklearn.mixture import GaussianMixture

    x = gmm.real_data(400, "two-blobs", rng=np.random.default_rng(0))
    sk = GaussianMixture(2, covariance_type=kind, random_state=0).fit(x)
    mine = gmm.as_mixture(sk)
    assert mine.covariances.shape == (2, 2, 2)
    # the converted mixture has sklearn's density everywhere
    pts = np.random.default_rng(1).normal(0, 3, (50, 2))
    assert np.allclose(np.log(mixture_pdf(mine, pts)), sk.score_samples(pts))
    assert gmm.l2_distance(sk, mine) == pytest.approx(0.0, abs=1e-12)


# ----------------------------------------------------------------------------- model, sampling, tails
def test_fit_uses_the_protocol_and_is_seeded(monkeypatch):
    import sklearn.mixture

    seen = {}
    real_cls = sklearn.mixture.GaussianMixture

    class Spy(real_cls):
        def __init__(self, **kw):
            seen.update(kw)
            super().__init__(**kw)

    monkeypatch.setattr(sklearn.mixture, "GaussianMixture", Spy)
    x = gmm.real_data(300, rng=np.random.default_rng(0))
    m1 = gmm.fit_mixture(x, np.random.default_rng(5))
    assert {k: seen[k] for k in ("n_components", "covariance_type", "tol", "max_iter")} == {
        "n_components": 2, "covariance_type": "full", "tol": 1e-5, "max_iter": 2000}
    m2 = gmm.fit_mixture(x, np.random.default_rng(5))
    assert np.array_equal(m1.means, m2.means) and np.array_equal(m1.covariances, m2.covariances)


def test_sample_mixture_reproducible_and_correct_moments():
    mix = gmm.Mixture(np.array([0.25, 0.75]), np.array([[-2.0, 0.0], [1.0, 1.0]]),
                      np.array([[[0.5, 0.2], [0.2, 0.3]], [[1.0, -0.4], [-0.4, 2.0]]]))
    x = gmm.sample_mixture(mix, 200_000, np.random.default_rng(0))
    assert np.array_equal(x, gmm.sample_mixture(mix, 200_000, np.random.default_rng(0)))
    mean, cov = gmm.mixture_moments(mix)
    # standard error of each mean coordinate < sqrt(3.2 / 2e5) = 0.004; 5 se
    assert np.allclose(x.mean(0), mean, atol=0.02)
    assert np.allclose(np.cov(x.T), cov, atol=0.05)


def test_tail_mass_and_coverage():
    one = gmm.original_mixture()
    for r in gmm.TAIL_RADII:
        # 2-D unit blob: P(|x| > r) = exp(-r^2 / 2); quasi-Monte Carlo within 1%
        assert gmm.tail_mass(one, one.means, r) == pytest.approx(math.exp(-r**2 / 2), rel=0.01)
        assert gmm.tail_coverage(one, one, r) == 1.0 and gmm.tail_ratio(one, one, r) == 1.0
    for s in (0.5, 0.7, 0.85):
        # N(0, s^2 I) with s < 1 has less density than p_0 beyond radius
        # sqrt(2 ln(1/s^2) / (1/s^2 - 1)) < 2, so there coverage = mass ratio = exp(-r^2/2 (1/s^2 - 1));
        # 65,536 points resolve it to about 1 / (65536 * 0.011) = 0.0014 of the 3-sd tail
        narrow = ([1.0], [[0.0, 0.0]], [s**2 * np.eye(2)])
        assert math.sqrt(2 * math.log(1 / s**2) / (1 / s**2 - 1)) < 2
        for r in gmm.TAIL_RADII:
            expect = math.exp(-r**2 / 2 * (1 / s**2 - 1))
            assert gmm.tail_coverage(narrow, one, r) == pytest.approx(expect, rel=0.03, abs=0.003)
            assert gmm.tail_ratio(narrow, one, r) == pytest.approx(expect, rel=0.03, abs=0.003)
    # wider than p_0 (beyond radius 1.71 its density is higher): every tail covered, ratio > 1
    wide = ([1.0], [[0.0, 0.0]], [1.5**2 * np.eye(2)])
    assert gmm.tail_coverage(wide, one, 3.0) == pytest.approx(1.0, abs=1e-12)
    assert gmm.tail_ratio(wide, one, 3.0) == pytest.approx(math.exp(-9 / 4.5 + 4.5), rel=0.03)
    # a unit blob moved out to (4, 0): more mass beyond 3 sd than p_0 has, but only part of
    # p_0's tail (the side towards x > 0) is covered
    moved = ([1.0], [[4.0, 0.0]], [np.eye(2)])
    cov, ratio = gmm.tail_coverage(moved, one, 3.0), gmm.tail_ratio(moved, one, 3.0)
    assert 0.1 < cov < 0.6 and ratio > 10
    two = gmm.original_mixture("two-blobs", separation=6.0)
    # well separated blobs: the tail beyond r of both is about exp(-r^2/2)
    assert gmm.tail_mass(two, two.means, 2.0) == pytest.approx(math.exp(-2), rel=0.02)
    assert np.allclose(gmm.tail_coverage(two, two, [2.0, 3.0]), 1.0)
    # only one of the two blobs left: about half of the tails covered (a little more, since
    # the surviving blob also covers the right blob's tail in the gap between them)
    half = ([1.0], [[-3.0, 0.0]], [np.eye(2)])
    assert np.all((gmm.tail_coverage(half, two, [2.0, 3.0]) > 0.5)
                  & (gmm.tail_coverage(half, two, [2.0, 3.0]) < 0.56))


def test_mixture_logpdf():
    mix = random_mixture(np.random.default_rng(8), 3)
    pts = np.random.default_rng(9).normal(0, 3, (40, 2))
    assert np.allclose(gmm.mixture_logpdf(mix, pts), np.log(mixture_pdf(mix, pts)))


def test_measure_at_generation_zero():
    x = gmm.real_data(1000, rng=np.random.default_rng(0))
    m = gmm.fit_mixture(x, np.random.default_rng(0))
    out = gmm.measure_mixture(m, m, gmm.original_mixture())
    # the geometric-mean std is at most the RMS std over axes (AM-GM on the eigenvalues)
    assert np.all(gmm.component_geo_stds(m) <= gmm.component_stds(m) + 1e-12)
    assert out["log_geo_std"] == pytest.approx(np.log(gmm.component_geo_stds(m)).mean())
    assert out["l2_to_gen0"] == 0.0
    # two components fitted to one unit blob: each narrower than the blob, the mixture ~1
    assert 0.6 < out["component_std"] < 1.0
    assert out["total_std"] == pytest.approx(1.0, abs=0.08)
    assert 0.8 < out["tail_2sd"] <= 1 and 0.6 < out["tail_3sd"] <= 1
    assert 0.8 < out["tail_ratio_2sd"] < 1.2 and 0.6 < out["tail_ratio_3sd"] < 1.4
    assert sum(out["weights"]) == pytest.approx(1.0)


# ----------------------------------------------------------------------------- the drift theory
def test_expected_log_std_drift_matches_wishart_simulation():
    rng = np.random.default_rng(0)
    for N in (12, 40):
        x = rng.standard_normal((40_000, N, 2)) @ np.array([[2.0, 0.0], [0.7, 0.5]])
        S = np.einsum("rni,rnj->rij", x - x.mean(1, keepdims=True), x - x.mean(1, keepdims=True)) / N
        true = np.linalg.slogdet(np.array([[4.0, 1.4], [1.4, 0.74]]))[1]
        drift = (np.linalg.slogdet(S)[1] - true) / 4      # log det^(1/2d), d = 2
        assert drift.mean() == pytest.approx(gmm.expected_log_std_drift(N), abs=4 * drift.std() / 200)
        # about -(d + 3) / (4N)
        assert gmm.expected_log_std_drift(N) == pytest.approx(-5 / (4 * N), rel=0.25)
    with pytest.raises(ValueError, match="n_points must exceed dim"):
        gmm.expected_log_std_drift(2)


def test_effective_drift_uses_each_components_share():
    w = np.array([[0.5, 0.5], [0.9, 0.1]])
    d = gmm.effective_drift(w, 1000)
    assert d[0] == pytest.approx(gmm.expected_log_std_drift(500))
    assert d[1] == pytest.approx((gmm.expected_log_std_drift(900) + gmm.expected_log_std_drift(100)) / 2)
    # an uneven split drifts faster than an even one: 1/N is convex
    assert d[1] < d[0]
    # the cumulative version, per seed: (seeds, generations, K) weights
    logs = gmm.effective_log_std(np.array([0.0, 1.0]), np.stack([w, w[::-1]]), 1000)
    assert logs.shape == (2, 2) and logs[0, 0] == 0.0 and logs[1, 0] == 1.0
    assert logs[0, 1] == pytest.approx(d[0]) and logs[1, 1] == pytest.approx(1.0 + d[1])


def test_em_keeps_the_sample_mean_and_covariance():
    """Why the whole mixture is refitted like one Gaussian: EM's M-step moments add up to the
    data's mean and biased covariance (plus sklearn's reg_covar = 1e-6 on the diagonal)."""
    x = gmm.real_data(500, rng=np.random.default_rng(2)) @ np.array([[1.0, 0.3], [0.0, 0.6]])
    mean, cov = gmm.mixture_moments(gmm.fit_mixture(x, np.random.default_rng(3)))
    assert np.allclose(mean, x.mean(0), atol=1e-10)
    assert np.allclose(cov, np.cov(x.T, bias=True) + 1e-6 * np.eye(2), atol=1e-8)


# ----------------------------------------------------------------------------- runs
SMALL = {"points": 200, "generations": 12, "components": 2, "variant": "one-blob",
         "separation": 6.0, "regime": "replace", "real_fraction": 0.1}


def test_run_is_reproducible_and_uses_the_named_streams():
    a = gmm.run_chain(SMALL, seed=1, progress=False)
    b = gmm.run_chain(SMALL, seed=1, progress=False)
    c = gmm.run_chain(SMALL, seed=2, progress=False)
    assert a.metrics == b.metrics
    assert a.metrics["l2_to_gen0"] != c.metrics["l2_to_gen0"]
    assert a.metrics["l2_to_gen0"][0] == 0.0 and len(a.metrics["l2_to_gen0"]) == 13
    # the real data are rng_for(seed, "real") = default_rng([seed, 10**6]); generation 0 fits
    # them with default_rng([seed, 0])
    real = gmm.real_data(200, rng=np.random.default_rng([1, 10**6]))
    assert np.array_equal(gmm.run_real_data(SMALL, 1), real)
    first = gmm.fit_mixture(real, np.random.default_rng([1, 0]))
    assert a.metrics["component_std"][0] == gmm.component_stds(first).mean()


def test_models_are_kept_in_the_run_cache(tmp_path, monkeypatch):
    from collapse_utils.loop import load_generation

    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path))
    rec = run_experiment("gmm", profile="smoke", overrides={"generations": 3}, progress=False)
    model = gmm.as_mixture(load_generation(rec.run_dir(), 3))
    assert gmm.component_stds(model).mean() == rec.metric("component_std")[0, 3]


def test_points_must_cover_the_components():
    with pytest.raises(ValueError, match=r"points must be at least components \(4\); got 3"):
        resolve_settings("gmm", "smoke", {"points": 3, "components": 4})


def test_regimes_training_sets_and_collapse():
    base = dict(SMALL, points=30, generations=40)
    sizes = {r: gmm.run_chain(dict(base, generations=3, regime=r), progress=False).metrics["train_size"]
             for r in ("replace", "keep-real", "accumulate")}
    assert sizes["replace"] == sizes["keep-real"] == [30] * 4
    assert sizes["accumulate"] == [30, 60, 90, 120]
    # M = 30 points, two components of ~15 each: the log std drifts by about -1.25/15 per
    # generation, so after 40 generations the replaced chain's std is ~ e^-3.3 of its start
    # (seeds 0-2 end at 0.02-0.10), while accumulating keeps it (0.75-1.13)
    end = {r: np.median([gmm.run_chain(dict(base, regime=r), seed=k, progress=False)
                         .metrics["component_std"][-1] for k in range(3)])
           for r in ("replace", "accumulate")}
    assert end["replace"] < 0.5 < 0.65 < end["accumulate"]


def test_paper_row_is_the_public_protocol():
    paper = resolve_settings("gmm", "paper")
    assert paper == {"points": 1000, "generations": 2050, "components": 2, "variant": "one-blob",
                     "separation": 6.0, "regime": "replace", "real_fraction": 0.1, "seeds": 1,
                     # used only by the curation regimes verify and self-correct
                     "verify_bound": 3.0, "verifier_error": 0.1, "gamma": 0.5}


def test_recorded_paper_profile_run_is_what_the_code_computes(tmp_path, monkeypatch):
    """The chapter quotes gmm.PAPER_PROFILE_RUN (2050 generations, seed 0) at every profile;
    rerun it through the experiment and check the quoted numbers (about 40 s on the CI machine)."""
    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path))
    rec = run_experiment("gmm", profile="paper", seed=0, progress=False)
    paper = gmm.PAPER_PROFILE_RUN
    std, l2 = rec.metric("component_std")[0], rec.metric("l2_to_gen0")[0]
    assert rec.generations[-1] == paper["generations"] == 2050
    assert abs(std[0] - paper["component_std_start"]) < 5e-6
    assert abs(std[-1] - paper["component_std_end"]) < 5e-6
    assert abs(l2[-1] - paper["l2_to_gen0_end"]) < 0.5
    assert abs(rec.metric("total_std")[0, -1] - paper["total_std_end"]) < 5e-5
    light = rec.metric("weights")[0, :, -1]
    assert abs(light.mean() - paper["lighter_weight_mean"]) < 5e-4 and light.max() < 0.5
    total, comps = (np.diff(rec.metric(k)[0]) for k in ("total_log_geo_std", "log_geo_std"))
    assert abs(total.mean() - paper["total_log_drift"]) < 5e-6
    assert abs(total.std() / np.sqrt(len(total)) - paper["total_log_drift_se"]) < 5e-6
    assert abs(comps.mean() - paper["component_log_drift"]) < 5e-6
    drift = gmm.effective_drift(rec.metric("weights")[0], 1000)[:-1].mean()
    assert abs(drift - paper["effective_drift"]) < 5e-6
