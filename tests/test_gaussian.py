"""Tests of collapse_utils.gaussian: theory, simulation against theory, W2, sufficient statistics.

Generations are the loop's: ``simulate(..., generations=G)`` returns generations 0..G,
and generation g is the model after n = g + 1 fits, so it is compared with the theory
at n = g + 1 (``FITS[g]``).  Resume, the CLI and the checking of single settings are
tested once for every experiment in tests/test_experiments.py.

Statistical tolerances: a chain average is compared with its expectation within
Z = 5 standard errors (SE = sd / sqrt(chains), the sd from theory where it is known
exactly, else from the sample).  For a normal-ish average that fails with
probability below 1e-6; the seeds are fixed, so the tests are deterministic.
Distributional agreement (sufficient statistics against points) uses two-sample
Kolmogorov-Smirnov tests at level 1e-3.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import linalg, stats

from collapse_utils import gaussian as g
from collapse_utils.experiments import resolve_settings, run_experiment
from collapse_utils.loop import rng_for
from collapse_utils.regimes import Accumulate, Schedule

Z = 5.0


def within(sample, expected, sd=None, z=Z):
    """Assert that the mean of ``sample`` is within z standard errors of ``expected``."""
    sample = np.asarray(sample, dtype=float)
    sd = sample.std(ddof=1) if sd is None else sd
    se = sd / math.sqrt(sample.size)
    assert abs(sample.mean() - expected) <= z * se, (sample.mean(), expected, se)


# ----------------------------------------------------------------------------- theory
def test_c_m_and_exact_formula():
    assert g.c_m(2) == pytest.approx(math.sqrt(2 / math.pi), rel=1e-12)  # E|Z|
    # the large-M series agrees with gammaln where both are accurate
    from scipy.special import gammaln
    for M in (102, 1000, 10**5):   # gammaln's own absolute error is ~1e-10 at 10^5
        x = (M - 1) / 2
        direct = gammaln(x + 0.5) - gammaln(x) - 0.5 * math.log(x)
        assert g.log_c_m(M) == pytest.approx(direct, abs=1e-9 if M > 1000 else 1e-12)
    assert g.log_c_m(10**9) == pytest.approx(-1 / (4 * (10**9 - 1)), rel=1e-6)
    assert g.expected_w2_squared(10, 100) == pytest.approx(0.150, abs=5e-4)
    n = np.arange(50)
    th = g.theory_1d(n, 100)
    np.testing.assert_allclose(th["w2_squared"], g.expected_w2_squared(n, 100), atol=1e-13)
    np.testing.assert_allclose(th["sigma"], g.expected_sigma(n, 100), rtol=1e-13)
    np.testing.assert_allclose(th["sigma_squared"], 1.0)
    np.testing.assert_allclose(th["mean_error_squared"], n / 100, rtol=1e-13)
    mle = g.theory_1d(n, 100, estimator="mle")
    np.testing.assert_allclose(mle["sigma_squared"], (99 / 100) ** n, rtol=1e-12)
    # a constant Schedule gives the constant-M theory
    sch = g.theory_1d(n, 100, schedule=Schedule("constant", 100))
    np.testing.assert_allclose(sch["w2_squared"], th["w2_squared"], rtol=1e-13)


# ----------------------------------------------------------------------------- simulation vs theory
def fits(generations: int) -> np.ndarray:
    """The number of fits n = g + 1 of generations g = 0..generations."""
    return np.arange(generations + 1) + 1


def test_simulation_matches_exact_1d_theory():
    M, G, chains = 20, 29, 40_000
    means, covs = g.simulate(0.0, 1.0, M, G, chains=chains, seed=1)
    th = g.theory_1d(fits(G), M)
    var, mu = covs[:, :, 0, 0], means[:, :, 0]
    for k in (0, 4, 14, 29):    # generation k: k + 1 fits
        within(var[:, k], th["sigma_squared"][k], math.sqrt(th["sigma_squared_var"][k]))
        within(np.sqrt(var[:, k]), th["sigma"][k], math.sqrt(1 - th["sigma"][k] ** 2))
        within(np.log(var[:, k]), th["log_sigma_squared"][k], math.sqrt(th["log_sigma_squared_var"][k]))
        within(mu[:, k] ** 2, th["mean_error_squared"][k])
        within(g.w2_squared_1d(mu[:, k], np.sqrt(var[:, k])), th["w2_squared"][k])
    # the typical chain collapses although E[sigma_n^2] = 1: median sigma_30^2 well below 1
    assert np.median(var[:, 29]) < 0.35
    # the paper's number: E[W2^2] at M = 100, n = 10 fits (generation 9) is 0.150
    means, covs = g.simulate(0.0, 1.0, 100, 9, chains=chains, seed=2)
    within(g.w2_squared_1d(means[:, 9, 0], np.sqrt(covs[:, 9, 0, 0])), 0.150, z=Z)


def test_generation_0_is_the_first_fit_to_the_real_stream():
    """Generation 0 fits D_0 drawn from rng_for(seed, "real"); generation 1 draws from stream 1."""
    means, covs = g.simulate(0.0, 1.0, 10, 1, chains=3, seed=7, method="points")
    x = rng_for(7, "real").standard_normal((3, 10, 1))
    np.testing.assert_allclose(means[:, 0, 0], x[..., 0].mean(1), rtol=1e-12)
    np.testing.assert_allclose(covs[:, 0, 0, 0], x[..., 0].var(1, ddof=1), rtol=1e-12)


def test_mle_variance_decays():
    M, G = 10, 19
    means, covs = g.simulate(0.0, 4.0, M, G, chains=40_000, estimator="mle", seed=3)
    th = g.theory_1d(fits(G), M, sigma=2.0, estimator="mle")
    for k in (0, 9, 19):
        within(covs[:, k, 0, 0], 4.0 * (0.9 ** (k + 1)), math.sqrt(th["sigma_squared_var"][k]))
        within(np.sqrt(covs[:, k, 0, 0]), th["sigma"][k])
    assert th["sigma_squared"][19] == pytest.approx(4.0 * 0.9**20)   # generation 19: 20 fits


@pytest.mark.parametrize("kind", ["linear", "superlinear"])
def test_schedules_match_theory(kind):
    M, G = 10, 39
    schedule = Schedule(kind, M, 2.0)
    means, covs = g.simulate(0.0, 1.0, M, G, chains=20_000, seed=4, schedule=schedule)
    th = g.theory_1d(fits(G), M, schedule=schedule)
    w = g.w2_squared_1d(means[:, :, 0], np.sqrt(covs[:, :, 0, 0]))
    for k in (4, 39):
        within(w[:, k], th["w2_squared"][k])
        within(means[:, k, 0] ** 2, th["mean_error_squared"][k])
    # bounded when sum 1/M_k converges (here: superlinear); the mean's variance sums sigma^2 / M_k
    far = g.theory_1d([10**4], M, schedule=schedule)["w2_squared"][0]
    if kind == "superlinear":
        assert far < 1.2 * th["w2_squared"][G]
    else:
        assert far > 1.5 * th["w2_squared"][G]


def test_superlinear_is_not_enough():
    """M_k = M (k+1) log(k+2) grows faster than linearly, yet sum 1/M_k diverges (like log log n):
    what bounds the distance is sum 1/M_k < infinity, not superlinear growth."""
    M = 10
    slow = lambda k: int(math.ceil(M * (k + 1) * math.log(k + 2)))
    w = g.theory_1d([10**2, 10**3, 10**4, 10**5], M, schedule=slow)["mean_error_squared"]
    assert np.all(np.diff(w) > 0.004)
    H = np.sum(1 / np.array([M] + [slow(k) for k in range(1, 10**5)], dtype=float))
    assert w[-1] == pytest.approx(H, rel=1e-12)


def test_d_dimensional_theory():
    cov = g.example_covariance(3)
    M, n = 12, 20
    means, covs = g.simulate(np.ones(3), cov, M, n - 1, chains=20_000, seed=5)
    means, covs = means[:, n - 1], covs[:, n - 1]          # generation n - 1: n fits
    logdet = np.linalg.slogdet(covs)[1]
    within(logdet, g.expected_log_det(n, M, cov))
    within(np.trace(covs, axis1=-2, axis2=-1), np.trace(cov))       # martingale
    within(np.sum((means - 1) ** 2, -1), n * np.trace(cov) / M)     # random walk
    # every projection v^T Sigma_n v is the 1-D chain: E[sqrt(v^T Sigma_n v / v^T Sigma v)] = c_M^n
    v = np.array([1.0, -2.0, 0.5])
    ratio = np.einsum("i,cij,j->c", v, covs, v) / (v @ cov @ v)
    within(np.sqrt(ratio), g.c_m(M) ** n)


@pytest.mark.parametrize("source", ["laplace", "two-modes"])
def test_non_gaussian_source(source):
    M, n, chains = 20, 10, 20_000
    real = g.sample_source(source, (chains, M), np.random.default_rng(6))
    means, covs = g.simulate(0.0, 1.0, M, n - 1, chains=chains, seed=6, real=real)
    within(covs[:, n - 1, 0, 0], 1.0)             # still a martingale: unbiased for any D_0
    within(means[:, n - 1, 0] ** 2, n / M)        # still n sigma^2 / M after n fits
    ref = g.sample_source(source, 200_000, np.random.default_rng(7))
    w = g.w2_squared_normal_to_sample(means[:, n - 1, 0], np.sqrt(covs[:, n - 1, 0, 0]), ref)
    assert w.mean() > n / M                       # W2^2 >= (mean difference)^2


# ----------------------------------------------------------------------------- sufficient statistics vs points
@pytest.mark.parametrize("regime", ["replace", "accumulate", "keep-real"])
def test_stats_agree_with_points_1d(regime):
    kw = dict(M=10, generations=5, chains=4000, regime=regime, real_fraction=0.3)
    a = g.simulate(0.5, 2.0, seed=8, method="stats", **kw)
    b = g.simulate(0.5, 2.0, seed=9, method="points", **kw)
    for k in (0, 5):
        assert stats.ks_2samp(a[1][:, k, 0, 0], b[1][:, k, 0, 0]).pvalue > 1e-3
        assert stats.ks_2samp(a[0][:, k, 0], b[0][:, k, 0]).pvalue > 1e-3
    # and not trivially: the test tells a wrong law apart (6 points instead of 10)
    c = g.simulate(0.5, 2.0, seed=8, method="stats", **{**kw, "M": 6})
    assert stats.ks_2samp(c[1][:, 5, 0, 0], b[1][:, 5, 0, 0]).pvalue < 1e-3


def test_pooled_accumulate_is_the_core_accumulate():
    """The family's accumulate on pooled records gives the core Accumulate's training sets."""
    from collapse_utils.gaussian.simulate import PooledAccumulate, draw_stats

    model = (np.zeros((50, 1)), np.ones((50, 1, 1)))
    real = draw_stats(model, 10, np.random.default_rng(0))
    pool, prev_core, prev_own = [real], real, real
    for i in range(1, 6):
        draw = lambda k, i=i: draw_stats(model, k, np.random.default_rng(i))
        core, new = Accumulate().next_data(draw, 10, previous=prev_core, real=real, pool=pool,
                                           rng=None, axis=1)
        own, _ = PooledAccumulate().next_data(draw, 10, previous=prev_own, real=real, pool=[],
                                              rng=None, axis=1)
        pool.append(new)
        prev_core, prev_own = core, own
        np.testing.assert_allclose(np.concatenate(g.pooled_stats(own)[:2], axis=None),
                                   np.concatenate(g.pooled_stats(core)[:2], axis=None), rtol=1e-12)
        np.testing.assert_allclose(g.pooled_stats(own)[2], g.pooled_stats(core)[2], rtol=1e-12)


@pytest.mark.parametrize("M", [3, 8])  # 3 <= d: the singular Wishart branch
def test_stats_agree_with_points_dd(M):
    cov = g.example_covariance(3, 0.6)
    kw = dict(M=M, generations=3, chains=3000)
    a = g.simulate(np.zeros(3), cov, seed=10, method="stats", **kw)
    b = g.simulate(np.zeros(3), cov, seed=11, method="points", **kw)
    for f in (lambda m, c: c[:, -1, 0, 1], lambda m, c: np.trace(c[:, -1], axis1=-2, axis2=-1),
              lambda m, c: m[:, -1, 2], lambda m, c: c[:, 1, 2, 2]):
        assert stats.ks_2samp(f(*a), f(*b)).pvalue > 1e-3


def test_pooled_stats_are_exact():
    rng = np.random.default_rng(12)
    x = rng.normal(3.0, 1e-3, (4, 30, 2)) + 1e4      # large mean, tiny spread
    rec = g.points_to_stats(x)
    grouped = np.concatenate([g.pack(*g.pooled_stats(rec[:, :7])), g.pack(*g.pooled_stats(rec[:, 7:]))], 1)
    n, mean, scatter = g.pooled_stats(grouped)
    dev = x - x.mean(1, keepdims=True)
    np.testing.assert_allclose(n, 30)
    np.testing.assert_allclose(mean, x.mean(1), rtol=1e-14)
    np.testing.assert_allclose(scatter, np.einsum("cki,ckj->cij", dev, dev), rtol=1e-9)


# ----------------------------------------------------------------------------- W2
def _w2_reference(m1, c1, m2, c2):
    r2 = linalg.sqrtm(c2)
    cross = linalg.sqrtm(r2 @ c1 @ r2)
    return float(np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * np.real(cross)))


def test_w2_against_sqrtm_and_closed_forms():
    rng = np.random.default_rng(13)
    d = 4
    A, B = rng.normal(size=(6, d, d)), rng.normal(size=(6, d, d))
    c1, c2 = A @ A.transpose(0, 2, 1), B @ B.transpose(0, 2, 1) + 0.1 * np.eye(d)
    m1, m2 = rng.normal(size=(6, d)), rng.normal(size=(6, d))
    got = g.w2_squared(m1, c1, m2, c2)
    ref = [_w2_reference(m1[i], c1[i], m2[i], c2[i]) for i in range(6)]
    np.testing.assert_allclose(got, ref, rtol=1e-7)
    np.testing.assert_allclose(g.w2(m1, c1, m2, c2), np.sqrt(ref), rtol=1e-7)
    np.testing.assert_allclose(got, g.w2_squared(m2, c2, m1, c1), rtol=1e-7)   # symmetric
    np.testing.assert_allclose(g.w2_squared(m1, c1, m1, c1), 0, atol=1e-9)
    # commuting (diagonal) covariances: sum of (sqrt a - sqrt b)^2
    a, b = rng.uniform(0.1, 3, (2, d))
    assert g.w2_squared(np.zeros(d), np.diag(a), np.zeros(d), np.diag(b)) == pytest.approx(
        np.sum((np.sqrt(a) - np.sqrt(b)) ** 2), rel=1e-10)
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2, also for a collapsed sigma of 1e-30
    assert g.w2_squared([1.0], [[4.0]], [0.0], [[1e-60]]) == pytest.approx(1 + 4, rel=1e-14)
    assert float(g.w2([0.5], [[1.0]], [0.0], [[9.0]])) == pytest.approx(math.sqrt(0.25 + 4))


def test_w2_batched_shapes():
    cov = g.example_covariance(2)
    means = np.zeros((5, 3, 2))
    covs = np.broadcast_to(cov, (5, 3, 2, 2))
    assert g.w2(means, covs, np.zeros(2), cov).shape == (5, 3)
    assert g.w2(means[:, :, :1], covs[..., :1, :1], np.zeros(1), np.eye(1)).shape == (5, 3)
    m, c = g.simulate(np.zeros(2), cov, 10, 7, chains=4, seed=0)   # generations 0..7
    assert g.w2(m, c, np.zeros(2), cov).shape == (4, 8)


def test_w2_to_sample_through_quantiles():
    rng = np.random.default_rng(14)
    x = rng.laplace(size=50)
    u = (np.arange(10**6) + 0.5) / 10**6   # midpoint rule on the quantile coupling
    numeric = np.mean((0.3 + 1.7 * stats.norm.ppf(u) - np.sort(x)[(u * 50).astype(int)]) ** 2)
    assert g.w2_squared_normal_to_sample(0.3, 1.7, x) == pytest.approx(numeric, rel=1e-4)
    big = rng.normal(1.0, 2.0, 400_000)    # a normal sample: the Gaussian closed form
    assert g.w2_squared_normal_to_sample(0.0, 1.0, big) == pytest.approx(1 + 1, abs=0.02)
    per_chain = g.w2_squared_normal_to_sample(np.zeros(3), np.ones(3), rng.normal(size=(3, 20)))
    assert per_chain.shape == (3,)


# ----------------------------------------------------------------------------- API
def test_shapes_and_reproducibility():
    cov = g.example_covariance(3)
    m, c = g.simulate(np.arange(3.0), cov, 10, 5, chains=7, seed=3)
    assert m.shape == (7, 6, 3) and c.shape == (7, 6, 3, 3)     # generations 0..5
    np.testing.assert_allclose(c, np.swapaxes(c, -1, -2))
    m2, c2 = g.simulate(np.arange(3.0), cov, 10, 5, chains=7, seed=3)
    np.testing.assert_array_equal(m, m2)
    np.testing.assert_array_equal(c, c2)
    assert not np.array_equal(g.simulate(np.arange(3.0), cov, 10, 5, chains=7, seed=4)[0], m)
    m1, c1 = g.simulate(0, 1, 10, 0)
    assert m1.shape == (1, 1, 1) and c1.shape == (1, 1, 1, 1)   # generation 0 only
    assert g.simulate(0, 1, 10, 3, seed=None)[0].shape == (1, 4, 1)


@pytest.mark.parametrize("kwargs, name", [
    (dict(M=1), "M"), (dict(M=2.5), "M"), (dict(generations=-1), "generations"),
    (dict(chains=0), "chains"), (dict(chains=-3), "chains"), (dict(estimator="biased"), "estimator"),
    (dict(regime="mixed"), "regime"), (dict(method="exact"), "method"),
    (dict(regime="accumulate-subsample"), "accumulate-subsample"), (dict(seed=-1), "seed"),
    (dict(cov=[[1.0, 0.5], [0.0, 1.0]], mean=[0, 0]), "cov"),
    (dict(cov=[[1.0, 2.0], [2.0, 1.0]], mean=[0, 0]), "cov"),
    (dict(cov=-1.0), "cov"), (dict(cov=np.eye(3), mean=[0, 0]), "cov"),
    (dict(schedule="quadratic"), "schedule"), (dict(real_fraction=1.5, regime="keep-real"), "fraction"),
])
def test_errors_name_the_parameter(kwargs, name):
    args = dict(mean=0.0, cov=1.0, M=10, generations=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        g.simulate(**args)


def test_other_errors():
    with pytest.raises(ValueError, match="cov1"):
        g.w2([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]], [0.0, 0.0], np.eye(2))
    with pytest.raises(ValueError, match="cov2"):
        g.w2([0.0], [[1.0]], [0.0], [[-1.0]])
    with pytest.raises(ValueError, match="M"):
        g.expected_w2_squared(3, 1)
    with pytest.raises(ValueError, match="n"):
        g.expected_w2_squared(-1, 10)
    with pytest.raises(ValueError, match="estimator"):
        g.theory_1d(3, 10, estimator="x")
    with pytest.raises(ValueError, match="source"):
        g.sample_source("cauchy", 3, np.random.default_rng(0))


# ----------------------------------------------------------------------------- the experiment
def test_experiment_metrics_summarise_the_engine(tmp_path, monkeypatch):
    """``gaussian``'s per-generation summaries are those of simulate's chains (same seed)."""
    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path))
    rec = run_experiment("gaussian", profile="smoke", seed=2, progress=False,
                         overrides={"generations": 12, "chains": 64})
    assert list(rec.generations) == list(range(13))
    means, covs = g.simulate(0.0, 1.0, 100, 12, chains=64, seed=2)
    w = g.w2_squared(means, covs, np.zeros(1), np.eye(1))
    np.testing.assert_allclose(rec.metric("w2_squared_mean")[0], w.mean(0), rtol=1e-12)
    np.testing.assert_allclose(rec.metric("w2_squared_median")[0], np.median(w, 0), rtol=1e-12)
    np.testing.assert_allclose(rec.metric("sigma_squared_mean")[0], covs[:, :, 0, 0].mean(0), rtol=1e-12)
    np.testing.assert_allclose(rec.metric("sigma_sd")[0], np.sqrt(covs[:, :, 0, 0]).std(0, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(rec.fact("last_sigma_squared"), covs[:, 12, 0, 0], rtol=1e-12)
    mean, se = g.chain_mean(rec, "sigma_squared")
    np.testing.assert_allclose(se, rec.metric("sigma_squared_sd")[0] / 8)


def test_experiment_sweeps_and_relations(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path))
    rec = run_experiment("gaussian", profile="smoke", progress=False, overrides={
        "generations": 3, "chains": 20, "regime": ["replace", "accumulate"], "M": [10, 20]})
    assert len(rec.data["runs"]) == 4 and rec.metric("sigma_mean", regime="accumulate", M=20).shape == (1, 4)
    src = run_experiment("gaussian", profile="smoke", progress=False,
                         overrides={"generations": 2, "chains": 20, "source": "two-modes"})
    assert 0.1 < src.fact("expressivity_w2_squared") < 0.3
    for bad, needle in [({"dim": 2, "source": "laplace"}, "source must be normal"),
                        ({"schedule": "superlinear", "power": 1.0}, "power must be > 1"),
                        ({"regime": "accumulate-subsample"}, "method must be points")]:
        with pytest.raises(ValueError, match=needle):
            resolve_settings("gaussian", "smoke", bad)


# ----------------------------------------------------------------------------- curation (issue 12)
from collapse_utils.gaussian import curation as cur  # noqa: E402
from collapse_utils.gaussian import (critical_error, self_correct_limit, self_correct_theory,  # noqa: E402
                                            truncated_variance, verify_limit, verify_theory)


def test_self_correct_corrector_gives_the_batch_the_interpolated_moments():
    rng = np.random.default_rng(3)
    x = 0.7 + 0.4 * rng.standard_normal((5, 50))
    recs = g.points_to_stats(x[..., None])
    out = cur.corrector(0.0, 1.0)(recs, 0.25, rng)[..., 1]
    np.testing.assert_allclose(out.mean(1), 0.75 * x.mean(1), atol=1e-12)
    np.testing.assert_allclose(out.std(1, ddof=1), 0.75 * x.std(1, ddof=1) + 0.25, atol=1e-12)
    pooled = cur.corrector(0.0, 1.0)(g.pack(*g.pooled_stats(recs)), 0.25, rng)   # one record
    np.testing.assert_allclose(pooled[:, 0, 1], out.mean(1), atol=1e-12)
    np.testing.assert_allclose(pooled[:, 0, 2], out.var(1, ddof=1) * 49, rtol=1e-10)


def test_self_correct_matches_its_exact_theory():
    G, M, chains, gamma = 30, 100, 4000, 0.3
    means, covs = g.simulate(0.0, 1.0, M, G, chains, seed=5, regime="self-correct",
                             curation={"gamma": gamma})
    sig, mu = np.sqrt(covs[:, :, 0, 0]), means[:, :, 0]
    T = self_correct_theory(G, M, gamma)
    for k in (1, 5, G):
        within(sig[:, k], T["sigma"][k])
        within(sig[:, k] ** 2, T["sigma_squared"][k])
        within(mu[:, k] ** 2, T["mean_error_squared"][k])
        within(mu[:, k] ** 2 + (sig[:, k] - 1) ** 2, T["w2_squared"][k])
    lim = self_correct_limit(M, gamma)
    assert abs(self_correct_theory(400, M, gamma)["w2_squared"][-1] - lim["w2_squared"]) < 1e-12
    zero = self_correct_theory(20, M, 0.0)   # gamma = 0 is replace
    exact = g.theory_1d(np.arange(1, 22), M)
    for k in ("sigma", "sigma_squared", "mean_error_squared", "w2_squared"):
        np.testing.assert_allclose(zero[k], exact[k], rtol=1e-12)


def test_verifier_accepts_samples_distributed_like_the_truncated_real_law():
    rng = np.random.default_rng(7)
    model = (np.array([[0.3], [-0.2]]), np.array([[[0.8**2]], [[1.3**2]]]))   # narrow, wide
    tap = cur.ModelTap(g.draw_points)
    vL = truncated_variance(3.0)
    for error in (0.0, 1.0):
        acc = cur.verifier(tap, 0.0, 1.0, error, 3.0)
        batch = tap(model, 200_000, rng)
        mask, x = acc(batch, rng), batch[..., 1]
        K = np.exp(cur.log_ratio_sup(model[0][:, 0], np.sqrt(model[1][:, 0, 0]), 0.0, 1.0, 3.0)) / (
            stats.norm.cdf(3) - stats.norm.cdf(-3))
        for c in range(2):
            kept = x[c][mask[c]]
            rate = 1 / K[c]
            assert abs(mask[c].mean() - rate) < 5 * math.sqrt(rate * (1 - rate) / x.shape[1])
            mean, var = (0.0, vL) if error == 0 else (model[0][c, 0], model[1][c, 0, 0])
            within(kept, mean, sd=math.sqrt(var))
            within((kept - mean) ** 2, var, sd=var * math.sqrt(2))
    # a plain window test keeps the model's shape and shrinks the variance further
    window = np.abs(x[0]) < 3.0
    assert x[0][window].var() < 0.8**2 < vL


def test_verify_matches_its_theory_while_the_budget_suffices():
    G, M, chains = 25, 100, 300
    for error in (0.0, 0.5):
        means, covs = g.simulate(0.0, 1.0, M, G, chains, seed=11, regime="verify",
                                 curation={"verifier_error": error})
        T = verify_theory(G, M, error)
        s2, e2 = covs[:, -1, 0, 0], means[:, -1, 0] ** 2
        within(s2, T["sigma_squared"][-1])
        within(e2, T["mean_error_squared"][-1])
    lim, qc = verify_limit(M, 0.5), critical_error(M)
    assert abs(verify_theory(300, M, 0.5)["mean_error_squared"][-1] - lim["mean_error_squared"]) < 1e-9
    assert M * (1 - qc**2) == pytest.approx(qc) and 0.99 < qc < 1
    assert math.isinf(verify_limit(M, 0.999)["mean_error_squared"])


def test_curation_needs_one_dimension_and_a_normal_source(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path))
    with pytest.raises(ValueError, match="need dim 1 and source normal"):
        run_experiment("gaussian", profile="smoke", overrides={"regime": ["verify"], "dim": 2},
                       progress=False)


def test_accumulate_mean_bound_holds_in_simulation():
    """pi^2/6 sigma^2/M bounds E(mu_n - mu)^2 under accumulate (refit mean and unbiased
    variance on every point so far): checked against 20,000 simulated chains, not against its
    own constant.  The error also exceeds the first two terms of the series (it is not loose)."""
    from collapse_utils.gaussian.theory import accumulate_mean_bound

    M, sigma, n, chains = 50, 2.0, 30, 20_000
    rng = np.random.default_rng(11)
    pool = sigma * rng.standard_normal((chains, M))      # D_0 from N(0, sigma^2)
    total, sq, count = pool.sum(1), (pool ** 2).sum(1), M
    for _ in range(n):
        mu = total / count
        s = np.sqrt((sq - count * mu ** 2) / (count - 1))
        fresh = mu[:, None] + s[:, None] * rng.standard_normal((chains, M))
        total, sq, count = total + fresh.sum(1), sq + (fresh ** 2).sum(1), count + M
    err = (total / count) ** 2
    se = err.std() / np.sqrt(chains)
    bound = accumulate_mean_bound(M, sigma)
    assert err.mean() <= bound + 4 * se, (err.mean(), bound)
    assert err.mean() > 0.9 * sigma ** 2 / M * (1 + 1 / 4), err.mean()
