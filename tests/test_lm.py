"""Tests of collapse_utils.lm on the offline stand-in (tiny OPT, CPU)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from collapse_utils import lm  # noqa: E402
from collapse_utils.experiments import resolve_settings, run_experiment  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TIMING_KEYS = {"fit_seconds", "sample_seconds", "measure_seconds", "backend_load_seconds"}


def tiny_settings(**over):
    s = dict(lm.LM_SETTINGS["smoke"])
    s.update(train_blocks=24, val_blocks=16, test_blocks=16, generations=2, epochs=1)
    s.update(over)
    return s


@pytest.fixture(scope="module")
def backend():
    torch.set_num_threads(1)
    return lm.load_backend(tiny_settings())


@pytest.fixture(scope="module")
def trained(backend):
    """Generation 0 of the stand-in: the tiny OPT trained from scratch on 48 real blocks."""
    real = lm.subset_blocks(backend.blocks["train"], 48, 0)
    val = lm.subset_blocks(backend.blocks["validation"], 16, 1)
    model, history = lm.fine_tune(backend.base, real, val, epochs=3, lr=5e-3, batch_size=8)
    return model, history, real, val


def test_blocks_are_64_tokens_and_cover_the_text(backend):
    rows = [[1, 2, 3], [], [4] * 70, [5, 6], list(range(7, 100))]
    flat = [t for r in rows for t in r]
    blocks = lm.blocks_from_token_lists(rows, 64)
    assert blocks.shape == (len(flat) // 64, 64)
    assert blocks.ravel().tolist() == flat[: blocks.size]          # in order, nothing skipped
    assert len(flat) - blocks.size < 64                              # only the remainder dropped
    # the stand-in corpus: every split is the concatenation of its tokenized rows, cut in 64s
    rows = lm.stand_in_rows()
    for split in lm.SPLITS:
        n_tokens = sum(len(r) for r in lm.tokenize_rows(backend.tokenizer, rows[split]))
        assert backend.blocks[split].shape == (n_tokens // 64, 64)
        assert backend.blocks[split].dtype == np.uint16              # compact token ids
    with pytest.raises(ValueError, match="block_size"):
        lm.blocks_from_token_lists(rows["train"][:2], 0)


def test_generation_gives_exactly_64_new_tokens_per_block(backend, trained):
    model, _, real, _ = trained
    prompts = real[:12]
    eos = backend.tokenizer.eos_token_id
    out = lm.generate_continuations(model, prompts, eos_token_id=eos, pad_token_id=1, batch_size=5)
    assert out.shape == (12, 64) and out.dtype == prompts.dtype
    assert not (out == eos).any()                                    # EOS cannot end a block early
    # our vectorised beam search is transformers' beam search with the same settings
    for rp in (1.0, 2.0):
        hf = lm.generate_continuations(backend.base, prompts[:6], eos_token_id=eos, pad_token_id=1,
                                       repetition_penalty=rp, engine="hf")
        ours = lm.generate_continuations(backend.base, prompts[:6], eos_token_id=eos, pad_token_id=1,
                                         repetition_penalty=rp)
        assert (hf == ours).all()


def test_perplexity_is_exp_of_mean_token_loss(backend, trained):
    model, _, _, val = trained
    test = backend.blocks["test"][:10]
    total, count = 0.0, 0
    with torch.no_grad():
        for row in test:
            x = torch.as_tensor(row[None].astype(np.int64))
            logp = torch.log_softmax(model(input_ids=x).logits[0, :-1].double(), -1)
            nll = -logp.gather(1, x[0, 1:, None]).squeeze(1)
            total, count = total + float(nll.sum()), count + nll.numel()
    assert count == 10 * 63
    assert lm.perplexity(model, test, batch_size=4) == pytest.approx(math.exp(total / count), rel=1e-5)
    per_seq = lm.sequence_perplexities(model, test)
    assert per_seq.shape == (10,) and np.all(per_seq > 1)


def test_best_validation_checkpoint_is_the_one_returned(backend, trained):
    model0, history0, real, val = trained
    assert len(history0["val_loss"]) == 3
    assert history0["best_val_loss"] == min(history0["val_loss"])
    # continue from the trained model on uniformly random tokens: the real validation loss
    # gets worse epoch after epoch, so the best checkpoint is the first, not the last
    noise = np.random.default_rng(0).integers(2, len(backend.tokenizer), (48, 64)).astype(np.uint16)
    model, history = lm.fine_tune(model0, noise, val, epochs=3, lr=5e-3, batch_size=8)
    assert history["best_epoch"] == int(np.argmin(history["val_loss"]))
    assert history["val_loss"][-1] > min(history["val_loss"])
    returned = float(lm.sequence_losses(model, val).mean())
    assert returned == pytest.approx(min(history["val_loss"]), abs=1e-5)
    assert returned != pytest.approx(history["val_loss"][-1], abs=1e-4)


def test_keep_real_mixes_exactly_the_requested_fraction(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path))
    record = run_experiment("lm", profile="smoke", overrides=dict(
        regime="keep-real", train_blocks=30, val_blocks=8, test_blocks=8, generations=2, epochs=1),
        progress=False)
    m = record["metrics"]
    assert m["train_blocks"] == [30, 30, 30]                         # same size every generation
    assert m["real_blocks"] == [30, 3, 3]                            # 10% of 30 original blocks
    assert record["settings"]["block_size"] == 64 and record["settings"]["beams"] == 5
    assert all(len(m[k]) == 3 for k in ("test_perplexity", "generated_perplexity_median",
                                         "generated_perplexity_hist", "rare_coverage"))
    assert m["epochs"] == [1, 1, 1]
    assert record["stand_in"] and "stand-in" in record["stand_in"]


def test_resume_after_interruption_gives_the_same_metrics(tmp_path, backend):
    s = tiny_settings()
    full = lm.run_lm(s, seed=3, run_dir=tmp_path / "full", progress=False, backend=backend)
    lm.run_lm(s, seed=3, run_dir=tmp_path / "cut", progress=False, backend=backend, stop_after=0)
    saved = sorted(p.name for p in (tmp_path / "cut" / "stand-in").iterdir())
    assert "gen_0000.pkl" in saved and "model_0000" in saved and "gen_0001.pkl" not in saved
    resumed = lm.run_lm(s, seed=3, run_dir=tmp_path / "cut", resume=True, progress=False,
                        backend=backend)
    assert resumed.generations == full.generations == [0, 1, 2]
    for key, values in full.metrics.items():
        if key not in TIMING_KEYS:
            assert resumed.metrics[key] == values, key
    for i in range(3):  # every generation's token ids stay; old weights are pruned
        ids = np.load(tmp_path / "full" / "stand-in" / f"model_{i:04d}" / "train_ids.npy")
        assert ids.dtype == np.uint16 and ids.shape == (24, 64)
    assert (tmp_path / "full" / "stand-in" / "model_0000" / "model.safetensors").exists()
    # pruning: weights of generations 1..i-2 go, their token ids stay
    prune = tmp_path / "prune"
    for i in range(4):
        lm.save_fitted(lm.FittedLM(backend.base, np.full((2, 64), i, np.uint16), {}),
                       prune / f"model_{i:04d}")
    assert [(prune / f"model_{i:04d}" / "model.safetensors").exists() for i in range(4)] == \
        [True, False, True, True]
    assert lm.load_fitted(prune / "model_0003").train[0, 0] == 3
    assert np.load(prune / "model_0001" / "train_ids.npy")[0, 0] == 1


def test_offline_fallback_is_immediate_and_labelled(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    s = dict(lm.LM_SETTINGS["default"])
    assert s["backend"] == "auto" and s["model"] == "facebook/opt-125m"
    t0 = time.perf_counter()
    kind, reason = lm.choose_backend(s)
    assert time.perf_counter() - t0 < 5.0
    assert kind == "stand-in" and "HF_HUB_OFFLINE" in reason
    b = lm.load_backend(s)
    assert b.kind == "stand-in" and "pydoc_data" in b.stand_in and "facebook/opt-125m" in b.stand_in
    # asking for the Hub explicitly fails fast instead of waiting on the network
    t0 = time.perf_counter()
    with pytest.raises(OSError):
        lm.load_hub_backend({**s, "backend": "hub"})
    assert time.perf_counter() - t0 < 15.0


def test_settings_and_tail_measures():
    for profile in ("smoke", "default", "paper"):
        s = resolve_settings("lm", profile)
        assert (s["block_size"], s["beams"], s["new_tokens"]) == (64, 5, 64)
    assert resolve_settings("lm", "paper")["generations"] == 9
    with pytest.raises(ValueError, match="regime"):
        resolve_settings("lm", "smoke", {"regime": "accumulate"})
    with pytest.raises(ValueError, match="new_tokens"):
        lm.check_settings({**lm.LM_SETTINGS["smoke"], "new_tokens": 32})
    loop = np.tile(np.array([5, 6, 7, 8], dtype=np.uint16), (2, 16))
    t = lm.tail_measures(loop, np.array([9, 10]))
    assert t["distinct_tokens"] == 4 and t["rare_coverage"] == 0.0
    assert t["repetition"] == pytest.approx(57 / 61)                 # only 4 distinct 4-grams
    real = np.repeat(np.arange(20), np.arange(20, 0, -1))[None, :]    # id 0 most frequent
    rare = lm.rare_token_types(real)
    counts = np.bincount(real.ravel())
    assert counts[rare].sum() <= 0.1 * counts.sum() < counts[rare].sum() + counts[rare.min() - 1]


def test_tiny_benchmark_runs():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "lm.py"), "--tiny", "--json",
                           "--threads", "1"],
                          capture_output=True, text=True, timeout=240,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["train_tokens_per_s"] > 0 and result["generate_new_tokens_per_s"] > 0
    assert result["projected_generation_s"] > 0


def test_command_line_writes_metrics(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLLAPSE_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "collapse_utils", "run", "lm", "--profile", "smoke", "--quiet",
           "--regime", "keep-real", "--repetition-penalty", "2.0", "--seed", "1", "--out",
           str(tmp_path), "--generations", "1", "--train-blocks", "20", "--val-blocks", "8",
           "--test-blocks", "8", "--epochs", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "STAND-IN" in proc.stdout
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["settings"]["repetition_penalty"] == 2.0 and record["seed"] == 1
    assert record["settings"]["regime"] == "keep-real" and record["generations"] == [0, 1]
    for key in ("test_perplexity", "generated_perplexity_median", "generated_perplexity_hist"):
        assert len(record["metrics"][key]) == 2
    bad = subprocess.run(cmd[:5] + ["--regime", "accumulate"], capture_output=True, text=True,
                         timeout=60, env=env, cwd=ROOT)
    assert bad.returncode == 2 and "regime must be one of replace, keep-real" in bad.stderr


def test_pretrained_model_path_runs_from_a_local_folder(tmp_path, backend):
    """The real-model code path (AutoTokenizer/AutoModelForCausalLM, fine-tuning from saved
    weights at the real learning rate) on a saved tiny OPT and the stand-in text."""
    folder = tmp_path / "tiny-opt"
    backend.base.save_pretrained(folder)
    backend.tokenizer.save_pretrained(folder)
    s = tiny_settings(model=str(folder), backend="hub", lr=1e-3, generations=1)
    hub = lm.load_hub_backend(s, rows=lm.stand_in_rows())
    assert hub.kind == "hub" and hub.stand_in is None
    assert all((hub.blocks[k] == backend.blocks[k]).all() for k in lm.SPLITS)
    out = lm.run_lm(s, seed=0, run_dir=tmp_path / "run", progress=False, backend=hub)
    assert out.stand_in is None and out.generations == [0, 1]
    assert (tmp_path / "run" / "hub" / "model_0001" / "model.safetensors").exists()
    assert out.metrics["zero_shot_perplexity"][0] == pytest.approx(
        lm.perplexity(backend.base, lm.subset_blocks(backend.blocks["test"], 16, 2)))
    with pytest.raises(OSError, match="not on disk"):
        lm.load_pretrained(str(tmp_path / "missing"))


def test_two_processes_split_the_work_and_agree(tmp_path):
    """`torchrun`/`accelerate launch` with two CPU processes: training is data-parallel, beam
    search and evaluation are split and gathered; metrics match one process up to dropout noise."""
    base = ["--profile", "smoke", "--quiet", "--generations", "1", "--train-blocks", "16",
            "--val-blocks", "8", "--test-blocks", "8", "--epochs", "2"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ACCELERATE_USE_CPU": "true",
           "COLLAPSE_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun not installed")
    two = subprocess.run([str(torchrun), "--nproc_per_node", "2", "-m", "collapse_utils", "run",
                          "lm", *base, "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    assert two.returncode == 0, two.stderr[-2000:]
    one = subprocess.run([sys.executable, "-m", "collapse_utils", "run", "lm", *base, "--out",
                          str(tmp_path / "one")], capture_output=True, text=True, timeout=240,
                         env={**env, "COLLAPSE_CACHE": str(tmp_path / "cache1")}, cwd=ROOT)
    assert one.returncode == 0, one.stderr[-2000:]
    a = json.loads((tmp_path / "two" / "metrics.json").read_text())["metrics"]
    b = json.loads((tmp_path / "one" / "metrics.json").read_text())["metrics"]
    assert a["train_blocks"] == b["train_blocks"] == [16, 16]
    assert np.allclose(a["test_perplexity"], b["test_perplexity"], rtol=0.05)
    assert len(a["generated_perplexity_values"][1]) == 16
