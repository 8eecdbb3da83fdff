"""The precision and memory rules of collapse_utils.precision, tested on the CPU by patching what
torch says about a GPU; fp16 training with a gradient scaler on the CPU; the prepared GPU check,
dry-run at toy sizes; the chapters' time boxes against the benchmark's projection."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from collapse_utils import precision  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CUDA = torch.device("cuda", 0)


def on_card(capability, free_gb=None):
    """Patches that make torch describe a GPU of ``capability`` with ``free_gb`` GB free."""
    patches = [mock.patch("torch.cuda.get_device_capability", return_value=capability)]
    if free_gb is not None:
        patches += [mock.patch("torch.cuda.mem_get_info", return_value=(int(free_gb * 1e9), int(80e9))),
                    mock.patch("torch.cuda.memory_reserved", return_value=0),
                    mock.patch("torch.cuda.memory_allocated", return_value=0)]
    es = ExitStack()
    for p in patches:
        es.enter_context(p)
    return es


@pytest.mark.parametrize("capability, expected", [((7, 0), "fp16"), ((7, 5), "fp16"),
                                                  ((8, 0), "bf16"), ((8, 9), "bf16"), ((9, 0), "bf16")])
def test_precision_by_card(capability, expected):
    with on_card(capability):
        assert precision.choose(CUDA) == expected
        assert precision.choose("cuda") == expected


def test_the_cpu_keeps_what_it_is_asked_and_t4s_bf16_emulation_does_not_count():
    assert precision.choose("cpu") == "fp32"
    assert precision.choose("cpu", cpu="bf16") == "bf16"
    with pytest.raises(ValueError, match="precision must be one of"):
        precision.choose("cpu", cpu="fp8")
    # a T4 answers True to is_bf16_supported (emulation); the rule reads the capability only
    with on_card((7, 5)), mock.patch("torch.cuda.is_bf16_supported", return_value=True):
        assert precision.choose(CUDA) == "fp16"


def test_scaler_is_real_for_fp16_only_and_the_others_change_nothing():
    loss = torch.tensor(2.0)
    for prec in ("fp32", "bf16"):
        s = precision.scaler(prec, "cpu")
        assert not s.is_enabled() and s.scale(loss) is loss
    s = precision.scaler("fp16", "cpu")
    assert isinstance(s, torch.amp.GradScaler) and s.is_enabled()
    assert float(s.scale(loss)) == 2.0 * s.get_scale()
    assert precision.autocast("cpu", "fp32").__class__.__name__ == "nullcontext"


def test_lm_autocast_follows_the_card_and_the_cpu_setting():
    from collapse_utils.lm import backends

    assert backends.run_precision(torch.device("cpu")) == "fp32"
    with backends.cpu_precision("bf16"):
        assert backends.run_precision(torch.device("cpu")) == "bf16"
    with on_card((7, 5)):
        assert backends.run_precision(CUDA) == "fp16"
    with on_card((8, 0)):
        assert backends.run_precision(CUDA) == "bf16"


def test_fit_batch_rule_on_patched_memory():
    assert precision.fit_batch(128, 1e9, "cpu", fixed=1e12) == 128      # a CPU: as asked
    with on_card((7, 5), free_gb=10):
        # 0.8 * 10 GB - 2 GB fixed = 6 GB: 60 items of 100 MB
        assert precision.fit_batch(128, 100e6, CUDA, fixed=2e9) == 60
        assert precision.fit_batch(32, 100e6, CUDA, fixed=2e9) == 32
        assert precision.fit_batch(128, 100e9, CUDA) == 1                 # never below one
    with on_card((8, 0), free_gb=10), mock.patch("torch.cuda.memory_reserved", return_value=int(5e9)), \
            mock.patch("torch.cuda.memory_allocated", return_value=int(1e9)):
        assert precision.free_memory(CUDA) == int(14e9)                   # cached but unused counts


class FakeModel:
    """What lm.train.batch_plan reads of a model: its config, its parameters' device and size."""

    def __init__(self, layers=12, width=768, heads=12, vocab=50272, params=125_239_296, device=CUDA):
        self.config = type("C", (), {"num_hidden_layers": layers, "hidden_size": width,
                                     "num_attention_heads": heads, "vocab_size": vocab})
        self.p = type("P", (), {"device": device, "numel": lambda self: params})()

    def parameters(self):
        return iter([self.p])


def paper_settings():
    from collapse_utils.experiments import resolve_settings

    return {**resolve_settings("lm", "paper", {"backend": "auto"}), "decoding": "beam"}


def test_batch_plan_of_opt125m_on_a_t4_an_l4_and_an_a100():
    from collapse_utils.lm.train import batch_plan, pieces_that_fit

    s = paper_settings()
    assert batch_plan(s, FakeModel(device=torch.device("cpu"))) == {
        "micro_batch": 0, "eval_batch": 256, "gen_batch": 512}         # the CPU: the settings
    with on_card((7, 5), free_gb=13.9):   # a 16 GB T4 less the context and the base model
        t4 = batch_plan(s, FakeModel())
    with on_card((8, 9), free_gb=21.1):   # a 24 GB L4
        l4 = batch_plan(s, FakeModel())
    with on_card((8, 0), free_gb=35.5):   # a 40 GB A100
        a100 = batch_plan(s, FakeModel())
    assert 0 < t4["micro_batch"] < 128 and 128 % t4["micro_batch"] == 0   # accumulated in pieces
    assert t4["gen_batch"] < 512 and l4["gen_batch"] < 512
    assert l4["micro_batch"] == 0 and a100 == {"micro_batch": 0, "eval_batch": 256, "gen_batch": 512}
    assert pieces_that_fit(128, 200) == 0 and pieces_that_fit(128, 100) == 64
    assert pieces_that_fit(128, 50) == 43 and pieces_that_fit(128, 1) == 1


def oom():
    return torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_run_in_batches_halves_on_out_of_memory_only():
    calls = []

    def step(start, stop):
        calls.append((start, stop))
        if stop - start > 3:
            raise oom()
        return list(range(start, stop))

    out, batch = precision.run_in_batches(10, 8, step)
    assert sum(out, []) == list(range(10)) and batch == 2
    assert calls[:3] == [(0, 8), (0, 4), (0, 2)]
    assert precision.run_in_batches(5, 2, lambda a, b: (a, b))[0] == [(0, 2), (2, 4), (4, 5)]
    with pytest.raises(ValueError):
        precision.run_in_batches(4, 2, lambda a, b: (_ for _ in ()).throw(ValueError("x")))
    with pytest.raises(torch.OutOfMemoryError):
        precision.run_in_batches(4, 1, lambda a, b: (_ for _ in ()).throw(oom()))


def tiny_opt(max_batch=None):
    """A tiny random-init OPT whose forward runs out of 'GPU memory' above ``max_batch`` rows."""
    from transformers import OPTConfig, OPTForCausalLM

    class Fussy(OPTForCausalLM):
        def forward(self, input_ids=None, **kw):
            if max_batch is not None and input_ids.shape[0] > max_batch:
                raise oom()
            return super().forward(input_ids=input_ids, **kw)

    config = OPTConfig(vocab_size=64, hidden_size=32, word_embed_proj_dim=32, num_hidden_layers=1,
                       num_attention_heads=2, ffn_dim=64, max_position_embeddings=64, dropout=0.0,
                       bos_token_id=0, eos_token_id=0, pad_token_id=1, do_layer_norm_before=True)
    torch.manual_seed(0)
    return Fussy(config).eval()


def blocks(n, T=16, seed=0):
    return np.random.default_rng(seed).integers(2, 64, size=(n, T))


def test_evaluation_and_decoding_give_the_same_numbers_after_halving():
    from collapse_utils.lm import generate_continuations, sequence_losses

    x = blocks(12)
    plain, fussy = tiny_opt(), tiny_opt(max_batch=3)
    fussy.load_state_dict(plain.state_dict())
    np.testing.assert_allclose(sequence_losses(fussy, x, 8), sequence_losses(plain, x, 8), rtol=1e-6)
    kw = dict(beams=2, new_tokens=4, eos_token_id=0, pad_token_id=1, batch_size=8)
    assert (generate_continuations(fussy, x[:6], **kw) == generate_continuations(plain, x[:6], **kw)).all()


def test_a_training_step_out_of_memory_is_done_again_in_halves():
    from collapse_utils.lm.train import fine_tune

    train, val = blocks(8), blocks(4, seed=1)
    kw = dict(epochs=1, lr=1e-3, batch_size=4, eval_batch=4, seed=3)
    model_a, hist_a = fine_tune(tiny_opt(max_batch=2), train, val, **kw)
    model_b, hist_b = fine_tune(tiny_opt(), train, val, micro_batch=2, **kw)
    assert hist_a["micro_batch"] == 2 and hist_a["precision"] == "fp32"
    assert hist_a["train_loss"] == hist_b["train_loss"] and hist_a["val_loss"] == hist_b["val_loss"]
    for p, q in zip(model_a.parameters(), model_b.parameters()):
        assert torch.equal(p, q)


def test_fp16_fine_tuning_with_a_gradient_scaler_on_the_cpu(monkeypatch):
    from collapse_utils.lm import backends, train

    monkeypatch.setattr(backends, "run_precision", lambda dev: "fp16")
    monkeypatch.setattr(train, "run_precision", lambda dev: "fp16")
    base = tiny_opt()
    model, hist = train.fine_tune(base, blocks(8), blocks(4, seed=1), epochs=2, lr=1e-2,
                                  batch_size=4, eval_batch=4, seed=0)
    assert hist["precision"] == "fp16" and hist["loss_scale"] > 0
    assert np.isfinite(hist["train_loss"]).all() and np.isfinite(hist["val_loss"]).all()
    assert hist["val_loss"][-1] < hist["val_loss"][0] + 1e-6 or hist["train_loss"][-1] < hist["train_loss"][0]
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), base.parameters()))
    assert all(p.dtype == torch.float32 for p in model.parameters())   # fp32 master weights


@pytest.mark.parametrize("prec", ["fp16", "bf16"])
def test_vae_trains_under_16_bit_autocast_with_the_likelihood_in_fp32(monkeypatch, prec):
    from collapse_utils.vae import train as vae_train
    from collapse_utils.vae.model import vae_class

    torch.manual_seed(0)
    model = vae_class()(4, 4)
    x, noise = torch.rand(8, 1, 28, 28), torch.randn(8, 4)
    ref = vae_train.forward(model, x, noise)
    for a, b in zip(ref, model(x, noise)):
        assert torch.equal(a, b)                                 # fp32 is the model's own forward
    out = vae_train.forward(model, x, noise, prec)
    assert all(t.dtype == torch.float32 for t in out)
    assert torch.allclose(out[0], ref[0], atol=0.05)
    monkeypatch.setattr(vae_train.precision, "choose", lambda dev, cpu="fp32": prec)
    real = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)
    fitted = vae_train.make_fit(latent_dim=4, capacity=4, epochs=2, batch_size=16)(real, np.random.default_rng(0))
    assert fitted.train_stats["precision"] == prec and np.isfinite(fitted.train_stats["loss"])


def load_benchmark():
    spec = importlib.util.spec_from_file_location("bench_lm", ROOT / "benchmarks" / "lm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def box(notebook: str, heading: str) -> str:
    cells = json.loads((ROOT / "book" / notebook).read_text())["cells"]
    text = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    return next(t for t in text if heading in t)


def test_the_chapters_time_boxes_quote_the_benchmarks_projection():
    bench = load_benchmark()
    rows = {name: bench.card_projection(name) for name in ("T4", "L4", "A100")}
    assert rows["T4"]["precision"] == "fp16" and rows["A100"]["precision"] == "bf16"
    text = box("lm.ipynb", "What you need and how long it takes")
    for name, row in rows.items():
        assert re.search(rf"{name}[^;]*?{row['minutes']:.1f} min", text), (name, row)
    assert f"{bench.ASSUMED_MFU:.0%}" in text and "pending" in text
    assert f"pieces of {rows['T4']['micro_batch']}" in text
    assert f"{rows['T4']['gen_batch']} prompts" in text and f"{rows['L4']['gen_batch']} prompts" in text
    vae_box = box("vae.ipynb", "What you need and how long it takes")
    assert all(name in vae_box for name in ("T4", "L4", "A100")) and "pending" in vae_box
    from collapse_utils.experiments import resolve_settings

    s = resolve_settings("vae", "paper")
    assert f"{-(-s['n_real'] // s['batch_size']) * s['epochs']:,} optimiser steps per generation" in vae_box


def test_the_gpu_check_dry_runs_on_the_cpu_and_prints_one_json_object(tmp_path):
    env = {**os.environ, "GPU_CHECK_DRY": "1", "GPU_CHECK_OUT": str(tmp_path), "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], capture_output=True,
                          text=True, timeout=900, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["dry"] is True
    assert res["lm_benchmark"]["precision"] == "fp32" and res["lm_benchmark"]["beam_equals_hf_generate"]
    assert res["lm_benchmark"]["projected_paper_generation_s"] > 0
    run = res["lm_run"]
    assert run["killed_after_generation_0"] and run["generations"] == [0, 1]
    assert run["precision"] == "fp32" and len(run["test_perplexity"]) == 2
    assert res["vae_generation"]["precision"] == "fp32" and res["vae_generation"]["steps"] == 8
