"""The core's curation regimes: verify (Feng et al. 2024) and self-correct (Gillman et al. 2024)."""
import numpy as np
import pytest

from collapse_utils.loop import run_generations
from collapse_utils.regimes import CURATION_REGIMES, REGIMES, SelfCorrect, Verify, make_regime


def _draws(chains=None):
    """A draw function numbering its samples 0, 1, 2, ... in draw order (per chain)."""
    count = [0]

    def draw(k):
        values = np.arange(count[0], count[0] + k, dtype=float)
        count[0] += k
        return values if chains is None else np.tile(values, (chains, 1)) + 1000 * np.arange(chains)[:, None]
    return draw, count


def test_verify_keeps_accepted_samples_in_draw_order_per_chain():
    draw, count = _draws(chains=3)
    # chain c accepts samples whose number (mod 1000) is divisible by c + 2
    accept = lambda x, rng: (x % 1000) % (np.arange(3)[:, None] + 2) == 0
    train, new = Verify(accept).next_data(draw, 5, previous=None, real=None, pool=[], rng=None, axis=1)
    assert train.shape == (3, 5) and new is train
    assert train[0].tolist() == [0, 2, 4, 6, 8]
    assert (train[1] - 1000).tolist() == [0, 3, 6, 9, 12]
    assert (train[2] - 2000).tolist() == [0, 4, 8, 12, 16]
    assert count[0] == 20  # four rounds of 5 were needed by the pickiest chain


def test_verify_fills_up_with_rejected_samples_at_the_cap():
    draw, count = _draws()
    accept = lambda x, rng: x == 3   # one acceptable sample ever
    train, _ = Verify(accept, max_rounds=2).next_data(draw, 4, previous=None, real=None, pool=[],
                                                    rng=None)
    assert count[0] == 8 and train.tolist() == [3, 0, 1, 2]


def test_verify_with_a_coin_for_a_verifier_is_replace_in_distribution():
    rng = np.random.default_rng(0)
    draw = lambda k: rng.standard_normal((2000, k))
    coin = lambda x, r: r.random(x.shape) < 0.5
    train, _ = Verify(coin).next_data(draw, 50, previous=None, real=None, pool=[], rng=rng, axis=1)
    assert train.shape == (2000, 50)
    assert abs(train.var() - 1) < 0.02 and abs(train.mean()) < 0.01


def test_verify_checks_its_arguments():
    with pytest.raises(ValueError, match="accept must be a callable"):
        Verify(None)
    with pytest.raises(ValueError, match="max_rounds must be a positive integer"):
        Verify(lambda x, r: x > 0, max_rounds=0)
    bad = Verify(lambda x, r: np.ones(3, bool))
    with pytest.raises(ValueError, match="accept must return a mask of shape"):
        bad.next_data(lambda k: np.zeros((2, k)), 4, previous=None, real=None, pool=[], rng=None,
                      axis=1)


def test_self_correct_moves_samples_by_gamma():
    correct = lambda x, gamma, rng: x + gamma * (0.0 - x)   # towards 0
    draw = lambda k: np.full((2, k), 10.0)
    for gamma, expected in [(0.0, 10.0), (0.3, 7.0), (1.0, 0.0)]:
        train, new = SelfCorrect(correct, gamma).next_data(draw, 4, previous=None, real=None,
                                                           pool=[], rng=None, axis=1)
        assert train.shape == (2, 4) and np.allclose(train, expected) and new is train
    with pytest.raises(ValueError, match="gamma must lie in"):
        SelfCorrect(correct, 1.5)
    with pytest.raises(ValueError, match="correct must be a callable"):
        SelfCorrect(None, 0.5)
    drop = SelfCorrect(lambda x, g, r: x[:, :1], 0.5)
    with pytest.raises(ValueError, match="correct must keep the 4 samples"):
        drop.next_data(draw, 4, previous=None, real=None, pool=[], rng=None, axis=1)


def test_make_regime_builds_the_curation_regimes():
    assert set(CURATION_REGIMES) == {"verify", "self-correct"} and not set(CURATION_REGIMES) & set(REGIMES)
    assert isinstance(make_regime("verify", accept=lambda x, r: x > 0), Verify)
    sc = make_regime("self-correct", correct=lambda x, g, r: x, gamma=0.25)
    assert isinstance(sc, SelfCorrect) and sc.gamma == 0.25 and sc.describe() == "self-correct(gamma=0.25)"
    with pytest.raises(ValueError, match="regime verify needs an accept"):
        make_regime("verify")
    with pytest.raises(ValueError, match="regime self-correct needs a correct"):
        make_regime("self-correct")


def _gaussian_chains(regime, generations=30, seed=0):
    """1-D Gaussian chains (N(0, 1) real data, M = 20) refitted by mean and std."""
    real = np.random.default_rng(seed).standard_normal((500, 20))
    out = run_generations(
        lambda x, rng: (x.mean(axis=1, keepdims=True), x.std(axis=1, ddof=1, keepdims=True)),
        lambda m, k, rng: m[0] + m[1] * rng.standard_normal((m[0].shape[0], k)),
        real, generations, regime=regime, seed=seed, axis=1, progress=False,
        measure=lambda g: {"mu2": float(np.mean(g.model[0] ** 2))})
    return np.asarray(out.metrics["mu2"])


def test_curation_in_the_loop_keeps_the_mean_near_the_truth():
    replace = _gaussian_chains(make_regime("replace"))
    verify = _gaussian_chains(make_regime("verify", accept=lambda x, r: np.abs(x) < 1.5))
    correct = _gaussian_chains(make_regime("self-correct", correct=lambda x, g, r: (1 - g) * x,
                                           gamma=0.2))
    # replace: the mean's squared error grows like n / M; curation holds it down
    assert replace[-1] > 0.8 * 31 / 20
    assert verify[-1] < 0.3 * replace[-1] and correct[-1] < 0.3 * replace[-1]
