"""The VAE under a digit-reading verifier (Yi et al. 2025): the regime, the verifier, a run."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import collapse_utils as cu  # noqa: E402
from collapse_utils.experiments import resolve_settings  # noqa: E402
from collapse_utils.vae import verification as vv  # noqa: E402
from collapse_utils.vae.verification_figures import (  # noqa: E402
    plot_vae_verifier, plot_verifier_samples, verifier_report,
)


class _Bright:
    """A stand-in model whose i-th sample is an image of constant brightness u_i ~ U(0, 1)."""

    def sample(self, n, generator=None):
        u = torch.rand(n, generator=generator)
        return u[:, None, None, None].expand(n, 1, 28, 28).clone()


class _Stream:
    model = _Bright()


def test_verified_keeps_the_best_scored_share_in_draw_order():
    rng = np.random.default_rng(0)
    kept, new = vv.Verified(keep=0.1, score=lambda px: px.mean(axis=1)).next_data(
        lambda m: _Stream(), 50, previous=None, real=None, pool=[], rng=rng)
    assert kept is new and kept.shape == (50, 1, 28, 28)
    # the best 10% of 500 uniform brightnesses sit above the 0.9 quantile (a few below by chance)
    assert kept.mean(dim=(1, 2, 3)).min() > 0.85
    unfiltered, _ = vv.Verified(keep=0.1, score=None).next_data(
        lambda m: _Stream(), 50, previous=None, real=None, pool=[], rng=np.random.default_rng(0))
    assert unfiltered.shape == (50, 1, 28, 28) and unfiltered.mean() < 0.7


def test_bad_keep_and_too_many_verifier_digits_fail_in_one_line():
    with pytest.raises(ValueError, match=r"keep must be in \(0, 1\]"):
        vv.Verified(keep=0.0)
    with pytest.raises(ValueError, match="verifier_digits must be at most 10"):
        vv.verifier_digits_index(20, 10, 11)
    with pytest.raises(ValueError, match="keep"):
        resolve_settings("vae-verifier", "smoke", {"keep": 1.5})


def test_verifier_and_readers_never_share_a_digit():
    order = vv.verifier_digits_index(5000, 2500, 2500)
    readers = cu.rng_for(0, "reference").permutation(5000)[:2500]
    assert len(set(order) & set(readers)) == 0 and len(set(order)) == 2500


def test_a_better_verifier_reads_real_digits_better():
    weak, strong = vv.make_verifier(100, 1000), vv.make_verifier(1000, 1000)
    assert vv.make_verifier(0, 1000) is None
    a, b = vv.favourite_mix(weak, 0.1, 1000), vv.favourite_mix(strong, 0.1, 1000)
    assert 0.3 < a["verifier_accuracy"] < b["verifier_accuracy"] < 1
    assert sum(a["favourite_hist"]) == 100 and 0 < a["favourite_entropy"] <= np.log2(10)


def test_a_tiny_run_records_both_readouts_and_the_verifiers_taste():
    rec = cu.run("vae-verifier", "smoke", progress=False, generations=1, samples=40, steps=4,
                 capacity=4, class_samples=40, reader_images=400, verifier_digits=[0, 200])
    assert rec.values("verifier_digits") == [0, 200]
    for d in (0, 200):
        r = rec.metric("recognisable", verifier_digits=d)
        assert r.shape == (1, 2) and np.all((0 <= r) & (r <= 1))
    assert rec.fact("favourite_entropy", verifier_digits=0, seed=0) is None
    assert 0 < rec.fact("favourite_entropy", verifier_digits=200, seed=0) <= np.log2(10)
    # both chains start from the same generation 0, shared through the cache
    assert np.array_equal(rec.metric("class_entropy", verifier_digits=0)[:, 0],
                          rec.metric("class_entropy", verifier_digits=200)[:, 0])
    out = verifier_report(rec)
    assert out["rec_start_none"] == out["rec_start_v200"] and "fav_v200" in out and out["G"] == 1
    assert out["ink_start_none"] == out["ink_start_v200"] and 0 < out["real_ink"] <= 1
    assert len(plot_vae_verifier(rec).axes) == 3
    assert len(plot_verifier_samples(rec, n=4).axes) == 4   # real, generation 0, two chains
