"""The intro chapter's experiment against the exact 1-D theory.

Generation 0 of the core loop is already a fit to M real samples, so generation g
is the (g+1)-th fit: E[sigma_g] = c_M^(g+1).  With 20,000 chains the standard error
of the mean sigma at g = 0 is about 0.0005, so the off-by-one value c_M^g = 1 lies
five standard errors away and would fail this test.
"""
import numpy as np

from collapse_utils.experiments import run_experiment
from collapse_utils.gaussian import c_m, expected_sigma, expected_w2_squared


def test_intro_matches_theory_fit_by_fit():
    rec = run_experiment("gaussian-intro", profile="smoke", seed=11, progress=False,
                         overrides={"chains": 20000, "generations": 3, "regime": ["replace"]})
    sigma = rec.metric("sigma", regime="replace")[0]        # generations x chains
    w2 = rec.metric("w2_squared", regime="replace")[0]
    se = lambda x: x.std(ddof=1) / np.sqrt(len(x))
    for g in range(4):
        assert abs(sigma[g].mean() - expected_sigma(g + 1, 100)) < 4 * se(sigma[g]), g
        assert abs(w2[g].mean() - expected_w2_squared(g + 1, 100)) < 4 * se(w2[g]), g
        assert abs((sigma[g] ** 2).mean() - 1) < 4 * se(sigma[g] ** 2), g  # the martingale
    assert abs(sigma[0].mean() - 1.0) > 3 * se(sigma[0])  # one fit already shrinks sigma
    assert abs(c_m(100) - 0.99748) < 1e-5


def test_accumulate_stays_close_and_grows_its_training_set():
    rec = run_experiment("gaussian-intro", profile="smoke", seed=2, progress=False,
                         overrides={"chains": 200, "generations": 40})
    assert rec.metric("train_size", regime="replace")[0].tolist() == [100] * 41
    assert rec.metric("train_size", regime="accumulate")[0].tolist() == [100 * (g + 1) for g in range(41)]
    w2 = {r: rec.metric("w2_squared_mean", regime=r)[0] for r in rec.values("regime")}
    assert w2["accumulate"][-1] < 0.2 * w2["replace"][-1]
    # both regimes fit the same real data at generation 0
    np.testing.assert_array_equal(rec.metric("sigma", regime="replace")[0, 0],
                                  rec.metric("sigma", regime="accumulate")[0, 0])
