"""Gaussian mixtures under the curation regimes: the verifier (Feng et al. 2024), the corrector
(Gillman et al. 2024), their predictions, and both in the loop.  Resume and the command line of
``gmm-curation`` are tested with every experiment in tests/test_experiments.py (its tiny sweep
runs ``replace``); here the verifier's resume, which depends on the model it last saw."""
import numpy as np
import pytest

from collapse_utils import gmm
from collapse_utils.experiments import resolve_settings
from collapse_utils.regimes import Verify

BASE = {"points": 40, "generations": 25, "components": 2, "variant": "one-blob", "separation": 6.0,
        "regime": "replace", "real_fraction": 0.1, "verify_bound": 3.0, "verifier_error": 0.0,
        "gamma": 0.5}


def run(seed=0, **overrides):
    return gmm.run_curation(dict(BASE, **overrides), seed=seed, progress=False).metrics


def narrow(std=0.85):
    """A two-component model of the unit blob whose components are too narrow."""
    return gmm.Mixture(np.array([0.5, 0.5]), np.array([[0.2, 0.0], [-0.2, 0.0]]),
                       np.array([std**2 * np.eye(2)] * 2))


def verified_batch(model, error, bound, m=20_000, seed=0):
    tracker = gmm.ModelTracker()
    regime = Verify(gmm.verifier(gmm.original_mixture(), tracker, error, bound), max_rounds=60)
    rng = np.random.default_rng(seed)
    train, new = regime.next_data(lambda k: tracker.sample(model, k, rng), m, previous=None,
                                  real=None, pool=[], rng=rng)
    assert train.shape == (m, 2) and new is train
    return train


# ----------------------------------------------------------------------------- the verifier
def test_acceptance_is_the_bounded_density_ratio():
    p0, model = gmm.original_mixture(), narrow()
    x = np.random.default_rng(0).normal(0, 2, (500, 2))
    ratio = np.exp(gmm.mixture_logpdf(p0, x) - gmm.mixture_logpdf(model, x))
    assert np.allclose(gmm.acceptance(x, p0, model, 0.0, 3.0), np.minimum(1, ratio / 3))
    # a flipped decision: accept with e + (1 - 2e) a(x); a coin at e = 1/2
    assert np.allclose(gmm.acceptance(x, p0, model, 0.2, 3.0), 0.2 + 0.6 * np.minimum(1, ratio / 3))
    assert np.allclose(gmm.acceptance(x, p0, model, 0.5, 3.0), 0.5)
    # a model at p_0 passes the perfect rule with probability 1/c everywhere
    assert np.allclose(gmm.acceptance(x, p0, p0, 0.0, 4.0), 0.25)


def test_perfect_verifier_keeps_samples_distributed_like_the_real_data():
    # sup p_0 / p_n of this model exceeds c = 6 only beyond 3.3 sd, where p_0 has 0.4% of its mass
    kept = verified_batch(narrow(0.85), 0.0, 6.0)
    assert np.allclose(kept.mean(0), 0.0, atol=0.03)
    assert np.allclose(np.cov(kept.T), np.eye(2), atol=0.04)   # the model's own is 0.76 I


def test_coin_verifier_keeps_the_models_samples():
    """e = 1/2: each generation trains on a random half of its draws, replace in distribution."""
    model = narrow(0.85)
    kept = verified_batch(model, 0.5, 3.0)
    _, cov = gmm.mixture_moments(model)
    assert np.allclose(np.cov(kept.T), cov, atol=0.04) and np.allclose(kept.mean(0), 0, atol=0.03)


def test_always_accepting_verifier_is_replace_exactly(monkeypatch):
    from collapse_utils.gmm import experiment

    monkeypatch.setattr(experiment, "verifier", lambda *a: lambda x, rng: np.ones(len(x), bool))
    assert run(regime="verify", generations=8) == run(regime="replace", generations=8)


def test_perfect_verifier_keeps_the_distance_far_below_replace():
    # M = 40 points: replace's components shrink by about e^-1.5 in 25 generations
    end = {r: np.median([run(seed=s, regime=r)["l2_to_gen0"][-1] for s in range(3)])
           for r in ("replace", "verify")}
    assert end["verify"] < 0.2 * end["replace"]


def test_verifier_resumes_exactly(tmp_path):
    s = dict(BASE, regime="verify", verifier_error=0.2, generations=6)
    full = gmm.run_curation(s, seed=1, progress=False).metrics
    gmm.run_curation(s, seed=1, run_dir=tmp_path, progress=False, stop_after=3)
    assert gmm.run_curation(s, seed=1, run_dir=tmp_path, resume=True, progress=False).metrics == full


def test_verified_share_and_its_inverse():
    assert gmm.verified_share(0.0) == 1.0 and gmm.verified_share(0.5) == 0.0
    e = np.array([0.05, 0.2, 0.4])
    assert np.allclose([gmm.error_for_share(s, 3.0) for s in gmm.verified_share(e, 3.0)], e)
    assert gmm.error_for_share(0.1, 3.0) == pytest.approx(0.9 / 2.1)
    assert np.all(np.diff(gmm.verified_share(np.linspace(0, 0.5, 11))) < 0)


# ----------------------------------------------------------------------------- the corrector
def test_transport_map_carries_one_gaussian_onto_another():
    rng = np.random.default_rng(2)
    B, C = rng.normal(size=(2, 2, 2))
    S, T = B @ B.T + 0.1 * np.eye(2), C @ C.T + 0.1 * np.eye(2)
    A, b = gmm.transport_map([1.0, -1.0], S, [0.5, 2.0], T)
    assert np.allclose(A, A.T) and np.all(np.linalg.eigvalsh(A) > 0)   # a gradient of a convex map
    assert np.allclose(A @ S @ A, T) and np.allclose(A @ [1.0, -1.0] + b, [0.5, 2.0])


def test_corrector_moves_each_axis_std_along_the_geodesic():
    rng = np.random.default_rng(3)
    x = gmm.sample_mixture(narrow(0.6), 2000, rng) @ np.array([[1.0, 0.3], [0.0, 0.7]]) + [0.4, 0.1]
    correct = gmm.corrector(gmm.original_mixture())
    assert np.array_equal(correct(x, 0.0, rng), x)
    full = correct(x, 1.0, rng)
    assert np.allclose(full.mean(0), 0, atol=1e-12) and np.allclose(np.cov(full.T, bias=True), np.eye(2))
    half = correct(x, 0.3, rng)
    before = np.sqrt(np.linalg.eigvalsh(np.cov(x.T, bias=True)))
    after = np.sqrt(np.linalg.eigvalsh(np.cov(half.T, bias=True)))
    assert np.allclose(after, 0.7 * before + 0.3) and np.allclose(half.mean(0), 0.7 * x.mean(0))


def test_corrector_maps_each_blob_onto_its_own():
    rng = np.random.default_rng(4)
    model = gmm.Mixture(np.array([0.7, 0.3]), np.array([[-2.5, 0.5], [3.4, 0.0]]),
                        np.array([0.5 * np.eye(2), [[0.8, 0.2], [0.2, 0.3]]]))
    x = gmm.sample_mixture(model, 3000, rng)
    y = gmm.corrector(gmm.original_mixture("two-blobs", 6.0))(x, 1.0, rng)
    # samples are grouped by the nearer real blob (x < 0 or x > 0) before they move
    for side, centre in ((x[:, 0] < 0, -3.0), (x[:, 0] > 0, 3.0)):
        assert np.allclose(y[side].mean(0), [centre, 0], atol=1e-9)
        assert np.allclose(np.cov(y[side].T, bias=True), np.eye(2))
    assert abs((x[:, 0] < 0).mean() - 0.7) < 0.03   # the weights are not corrected


def test_self_correct_gamma_zero_is_replace_exactly():
    assert run(regime="self-correct", gamma=0.0, generations=8) == run(regime="replace", generations=8)


def test_full_correction_pins_the_whole_mixture_to_the_real_spread():
    m = run(regime="self-correct", gamma=1.0, generations=10)
    # each batch is mapped onto mean 0 and covariance I; EM keeps them (plus reg_covar 1e-6)
    assert np.allclose(m["total_log_geo_std"][1:], 0.5e-6, atol=1e-8)
    assert np.allclose(m["mean_shift"][1:], 0.0, atol=1e-9)


def test_self_corrected_std_prediction():
    gens = np.arange(50)
    assert np.allclose(gmm.self_corrected_std(gens, 0.0, 0.9, 100), gmm.reference_std(gens, 0.9, 100))
    r = np.exp(gmm.expected_log_std_drift(100))
    y = gmm.self_corrected_std(gens, 0.2, 0.9, 100)
    assert np.allclose(y[1:], 0.8 * r * y[:-1] + 0.2)               # the recursion
    assert y[-1] == pytest.approx(0.2 / (1 - 0.8 * r), rel=1e-3) and y[-1] < 1


# ----------------------------------------------------------------------------- settings
@pytest.mark.parametrize("experiment,overrides,message", [
    ("gmm-curation", {"verifier_error": [0.0, 0.7]},
     r"verifier_error must be a list of values, each a number in \[0, 0.5\]; got 0.7"),
    ("gmm-sweep", {"gamma": "1.5"}, r"gamma must be a list of values, each a number in \[0, 1\]; got '1.5'"),
    ("gmm", {"verify_bound": 0.5}, r"verify_bound must be a number >= 1; got 0.5"),
    ("gmm", {"regime": "verfy"}, r"regime must be one of replace, .*, verify, self-correct; got 'verfy'"),
])
def test_bad_curation_settings_fail_in_one_line(experiment, overrides, message):
    with pytest.raises(ValueError, match=message) as err:
        resolve_settings(experiment, "smoke", overrides)
    assert "\n" not in str(err.value)


def test_curation_sizes():
    s = [resolve_settings("gmm-curation", p) for p in ("smoke", "default", "paper")]
    assert [(x["points"], x["generations"], x["seeds"]) for x in s] == [(60, 5, 2), (100, 100, 4),
                                                                        (250, 300, 10)]
    assert s[1]["regime"] == ["replace", "keep-real", "verify", "self-correct"]
