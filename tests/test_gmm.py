"""Gaussian mixtures: the closed-form L2 distance, sampling, tails, the protocol, regimes, resume, CLI."""
import json
import math

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import multivariate_normal

from collapse_utils import gmm
from collapse_utils.cli import main as cli_main
from collapse_utils.experiments import resolve_settings


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
    assert out["l2_to_gen0"] == 0.0
    # two components fitted to one unit blob: each narrower than the blob, the mixture ~1
    assert 0.6 < out["component_std"] < 1.0
    assert out["total_std"] == pytest.approx(1.0, abs=0.08)
    assert 0.8 < out["tail_2sd"] <= 1 and 0.6 < out["tail_3sd"] <= 1
    assert 0.8 < out["tail_ratio_2sd"] < 1.2 and 0.6 < out["tail_ratio_3sd"] < 1.4
    assert sum(out["weights"]) == pytest.approx(1.0)


# ----------------------------------------------------------------------------- runs
SMALL = {"points": 200, "generations": 12, "components": 2, "variant": "one-blob",
         "separation": 6.0, "regime": "replace", "real_fraction": 0.1}


def test_run_is_reproducible_and_keeps_models():
    a = gmm.run_gmm(SMALL, seed=1, progress=False)
    b = gmm.run_gmm(SMALL, seed=1, progress=False)
    c = gmm.run_gmm(SMALL, seed=2, progress=False)
    assert a.metrics == b.metrics
    assert a.metrics["l2_to_gen0"] != c.metrics["l2_to_gen0"]
    assert sorted(a.models) == [0, 12]
    assert a.metrics["l2_to_gen0"][0] == 0.0 and len(a.metrics["l2_to_gen0"]) == 13


def test_resume_equals_uninterrupted(tmp_path):
    s = dict(SMALL, regime="keep-real")
    full = gmm.run_gmm(s, seed=4, progress=False, keep=(0, 5, 12))
    part = gmm.run_gmm(s, seed=4, progress=False, run_dir=tmp_path, stop_after=6, keep=(0, 5, 12))
    assert part.generations == list(range(7))
    resumed = gmm.run_gmm(s, seed=4, progress=False, run_dir=tmp_path, resume=True, keep=(0, 5, 12))
    assert resumed.result.resumed_from == 6
    assert resumed.metrics == full.metrics
    for g in (0, 5, 12):
        assert np.array_equal(resumed.models[g].covariances, full.models[g].covariances)


def test_regimes_training_sets_and_collapse():
    base = dict(SMALL, points=30, generations=40)
    sizes = {r: gmm.run_gmm(dict(base, generations=3, regime=r), progress=False).metrics["train_size"]
             for r in ("replace", "keep-real", "accumulate")}
    assert sizes["replace"] == sizes["keep-real"] == [30] * 4
    assert sizes["accumulate"] == [30, 60, 90, 120]
    # M = 30 points, two components of ~15 each: the log std drifts by about -1.25/15 per
    # generation, so after 40 generations the replaced chain's std is ~ e^-3.3 of its start
    # (seeds 0-2 end at 0.02-0.10), while accumulating keeps it (0.75-1.13)
    end = {r: np.median([gmm.run_gmm(dict(base, regime=r), seed=k, progress=False)
                         .metrics["component_std"][-1] for k in range(3)])
           for r in ("replace", "accumulate")}
    assert end["replace"] < 0.5 < 0.65 < end["accumulate"]


def test_sweep_shapes():
    s = {"points": 60, "generations": 3, "seeds": 2, "components": 2, "separation": 6.0,
         "variants": ["two-blobs"], "regimes": ["replace", "keep-real"], "real_fraction": 0.1}
    out = gmm.run_sweep(s, progress=False)
    assert set(out) == {("two-blobs", "replace"), ("two-blobs", "keep-real")}
    assert out[("two-blobs", "replace")]["l2_to_gen0"].shape == (2, 4)


def test_settings_validation_names_the_parameter():
    with pytest.raises(ValueError, match="points must be an integer >= 2"):
        gmm.run_gmm(dict(SMALL, points=1), progress=False)
    with pytest.raises(ValueError, match="generations must be an integer >= 0"):
        gmm.run_gmm(dict(SMALL, generations=-1), progress=False)
    with pytest.raises(ValueError, match="points must be at least components"):
        gmm.run_gmm(dict(SMALL, points=3, components=4), progress=False)
    with pytest.raises(ValueError, match="variant must be one of one-blob, two-blobs"):
        gmm.run_gmm(dict(SMALL, variant="three-blobs"), progress=False)
    with pytest.raises(ValueError, match="regime must be one of"):
        gmm.run_gmm(dict(SMALL, regime="mix"), progress=False)
    with pytest.raises(ValueError, match="real_fraction must lie in"):
        gmm.run_gmm(dict(SMALL, real_fraction=1.5), progress=False)
    with pytest.raises(ValueError, match="separation must be a positive number"):
        gmm.run_gmm(dict(SMALL, separation=0.0), progress=False)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        gmm.run_gmm(SMALL, seed=-1, progress=False)
    with pytest.raises(ValueError, match="regimes must be drawn from"):
        gmm.run_sweep(dict(gmm.SWEEP_SETTINGS["smoke"], regimes=["replace", "nope"]), progress=False)
    with pytest.raises(ValueError, match="variant must be one of"):
        resolve_settings("gmm", "smoke", {"variant": "nope"})


def test_paper_row_is_the_public_protocol():
    paper = resolve_settings("gmm", "paper")
    assert paper == {"points": 1000, "generations": 2050, "components": 2, "variant": "one-blob",
                     "separation": 6.0, "regime": "replace", "real_fraction": 0.1}


def test_cli_smoke_run(tmp_path, capsys):
    rc = cli_main(["run", "gmm", "--profile", "smoke", "--generations", "4", "--variant",
                   "two-blobs", "--out", str(tmp_path), "--quiet"])
    assert rc == 0
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["experiment"] == "gmm" and record["generations"] == [0, 1, 2, 3, 4]
    assert record["settings"]["variant"] == "two-blobs"
    for key in ("l2_to_gen0", "component_std", "tail_2sd", "tail_3sd"):
        assert len(record["metrics"][key]) == 5
    assert cli_main(["run", "gmm", "--regime", "nope", "--quiet"]) == 2
    assert "regime must be one of" in capsys.readouterr().err


def test_recorded_paper_profile_run_is_what_the_code_computes():
    """The chapter quotes gmm.PAPER_PROFILE_RUN (2050 generations, seed 0) at every profile;
    rerun it and check the quoted numbers (about 40 s on the CI machine)."""
    from collapse_utils import gmm

    run = gmm.run_gmm(profile="paper", seed=0, progress=False, keep=())
    rec = gmm.PAPER_PROFILE_RUN
    m = run.metrics
    assert run.generations[-1] == rec["generations"] == 2050
    assert abs(m["component_std"][0] - rec["component_std_start"]) < 5e-6
    assert abs(m["component_std"][-1] - rec["component_std_end"]) < 5e-6
    assert abs(m["l2_to_gen0"][-1] - rec["l2_to_gen0_end"]) < 0.5
