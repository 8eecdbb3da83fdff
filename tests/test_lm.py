"""The language-model family: the pipeline on the tiny backend (CPU, seconds), the pretrained
GGUF stand-in, local models and corpora, and the errors a user sees."""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import collapse_utils as cu  # noqa: E402
from collapse_utils import lm  # noqa: E402
from collapse_utils.experiments import resolve_settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "COLLAPSE_PROGRESS": "off"}


def tiny_settings(**over):
    return {**resolve_settings("lm", "smoke"), **over}


def has_stand_in() -> bool:
    try:
        lm.stand_in_file()
        import gguf  # noqa: F401
    except (FileNotFoundError, ImportError):
        return False
    return True


needs_gguf = pytest.mark.skipif(not has_stand_in(), reason=f"needs {lm.STAND_IN_WHEEL} and gguf")


@pytest.fixture(scope="module")
def backend():
    torch.set_num_threads(1)
    return lm.load_backend(tiny_settings())


@pytest.fixture(scope="module")
def trained(backend):
    """Generation 0 of the tiny backend: the tiny OPT trained from scratch on 48 real blocks."""
    real = lm.subset_blocks(backend.blocks["train"], 48, "train")
    val = lm.subset_blocks(backend.blocks["validation"], 16, "validation")
    model, history = lm.fine_tune(backend.base, real, val, epochs=3, lr=5e-3, batch_size=8)
    return model, history, real, val


# ----------------------------------------------------------------------------- the pipeline (tiny)
def test_blocks_are_64_tokens_and_cover_the_text(backend):
    rows = [[1, 2, 3], [], [4] * 70, [5, 6], list(range(7, 100))]
    flat = [t for r in rows for t in r]
    blocks = lm.blocks_from_token_lists(rows, 64)
    assert blocks.shape == (len(flat) // 64, 64)
    assert blocks.ravel().tolist() == flat[: blocks.size]          # in order, nothing skipped
    text = lm.python_docs_rows()
    for split in lm.SPLITS:
        n_tokens = sum(len(r) for r in lm.tokenize_rows(backend.tokenizer, text[split]))
        assert backend.blocks[split].shape == (n_tokens // 64, 64)
        assert backend.blocks[split].dtype == np.uint16              # compact token ids
    assert not any(row[0].isspace() for rows in text.values() for row in rows)  # prose, no code
    with pytest.raises(ValueError, match="block_size"):
        lm.blocks_from_token_lists(rows, 0)
    # the block counts of wikitext-2 follow from the numbers in their own comment
    assert lm.WIKITEXT2_BLOCKS == {"train": 37_661, "validation": 3_898, "test": 4_532}


def test_decoding_gives_exactly_64_new_tokens_and_matches_transformers(backend, trained):
    model, _, real, _ = trained
    prompts = real[:12]
    eos = backend.tokenizer.eos_token_id
    out = lm.generate_continuations(model, prompts, eos_token_id=eos, pad_token_id=1, batch_size=5)
    assert out.shape == (12, 64) and out.dtype == prompts.dtype
    assert not (out == eos).any()                                    # EOS cannot end a block early
    for decoding, rp in [("beam", 1.0), ("beam", 2.0), ("greedy", 3.0)]:
        kw = dict(decoding=decoding, eos_token_id=eos, pad_token_id=1, repetition_penalty=rp)
        hf = lm.generate_continuations(backend.base, prompts[:6], engine="hf", **kw)
        assert (hf == lm.generate_continuations(backend.base, prompts[:6], **kw)).all()
    a, b = (lm.generate_continuations(model, prompts[:4], decoding="nucleus", seed=s,
                                      eos_token_id=eos) for s in (1, 2))
    assert a.shape == (4, 64) and not (a == eos).any() and (a != b).any()
    assert (a == lm.generate_continuations(model, prompts[:4], decoding="nucleus", seed=1,
                                           eos_token_id=eos)).all()   # seeded


def test_perplexity_is_exp_of_mean_token_loss(backend, trained):
    model, _, _, _ = trained
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
    assert np.all(lm.sequence_perplexities(model, test) > 1)


def test_best_validation_checkpoint_is_the_one_returned(backend, trained):
    model0, history0, real, val = trained
    assert len(history0["val_loss"]) == 3 and history0["best_val_loss"] == min(history0["val_loss"])
    # continue on uniformly random tokens: the real validation loss gets worse epoch after
    # epoch, so the best checkpoint is the first, not the last
    noise = np.random.default_rng(0).integers(2, len(backend.tokenizer), (48, 64)).astype(np.uint16)
    model, history = lm.fine_tune(model0, noise, val, epochs=3, lr=5e-3, batch_size=8)
    assert history["best_epoch"] == int(np.argmin(history["val_loss"]))
    assert history["val_loss"][-1] > min(history["val_loss"])
    returned = float(lm.sequence_losses(model, val).mean())
    assert returned == pytest.approx(min(history["val_loss"]), abs=1e-5)


def test_regimes_keep_what_they_say_and_generation_0_is_trained_once(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path))
    rec = cu.run("lm", profile="smoke", regime=["keep-real", "keep-current"], train_blocks=30,
                 val_blocks=8, test_blocks=8, generations=2, seeds=1, progress=False)
    assert rec.metric("train_blocks").tolist() == [[30, 30, 30]] * 2  # same size every generation
    assert rec.metric("real_blocks", regime="keep-real").tolist() == [[30, 3, 3]]  # 10% original
    kept = rec.metric("real_blocks", regime="keep-current")[0]       # 10% of the current set:
    assert kept[1] == 3 and kept[2] < 3                              # real blocks thin out
    assert rec.fact("epochs") == 1 and rec.fact("n_params") > 0 and "PIPELINE CHECK" in rec.stand_in
    fits = [r["facts"]["seconds"]["fit"] for r in rec.data["runs"]]
    saved = [p for p in (tmp_path / "lm" / "generation-0").iterdir() if p.suffix != ".lock"]
    assert len(saved) == 1  # shared by both runs (beside it, the lock its training held)
    m0 = [r["metrics"]["test_perplexity"][0] for r in rec.data["runs"]]
    assert m0[0] == m0[1] and len(fits) == 2
    for run in rec.data["runs"]:         # a finished run keeps no weights but generation 0's
        kept = {p.parent.name: p.name for p in Path(run["dir"]).rglob("*")
                if p.is_file() and p.parent.name.startswith("model_")}
        later = {p.name for p in Path(run["dir"]).rglob("model_000[12]/*")}
        assert kept and later == {"train_ids.npy", "history.json"}, later
        assert (next(Path(run["dir"]).rglob("model_0000")) / "weights_from.txt").is_file()


def test_protocol_baseline_is_the_main_runs_replace_seed_and_examples_follow_the_setting(
        tmp_path, monkeypatch):
    """The chapter's protocol figures draw penalty 1.0 / beam search from the main record
    (lm.baseline) instead of running it again: that must be the very run a sweep would make."""
    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path))
    small = dict(profile="smoke", train_blocks=12, val_blocks=4, test_blocks=4, progress=False)
    main = cu.run("lm", regime=["replace", "keep-real"], seeds=1, generations=2, **small)
    own = cu.run("lm", **{**lm.CHAPTER["penalty"], "repetition_penalty": [1.0]}, **small)
    assert 1.0 not in lm.CHAPTER["penalty"]["repetition_penalty"]
    assert "beam" not in lm.CHAPTER["decoding"]["decoding"]
    for metric in ("test_perplexity", "repetition", "distinct_tokens", "generated_perplexity_median"):
        assert lm.baseline(main, own, metric).tolist() == own.metric(metric)[0].tolist(), metric
    assert len(lm.baseline(main, own, "test_perplexity")) == 2 < len(main.generations)
    # examples="replace" (the default): the replace run continues the example, keep-real does not
    assert len(main.metric("example_continuation", regime="replace")[0]) == 3
    assert "example_continuation" not in main.one(regime="keep-real")["metrics"]
    assert "example_continuation" not in own.one(repetition_penalty=1.0)["metrics"]
    every = cu.run("lm", regime=["keep-real"], seeds=1, generations=1, examples="all", **small)
    assert len(every.metric("example_continuation")[0]) == 2
    assert every.metric("test_perplexity").tolist() == [main.metric(   # the examples move nothing
        "test_perplexity", regime="keep-real")[0, :2].tolist()]
    with pytest.raises(ValueError, match="examples must be one of all, replace, none; got 'some'"):
        cu.run("lm", examples="some", **small)


def test_one_decoding_of_generation_0_serves_every_run_and_the_example_rides_along(tmp_path, monkeypatch):
    """Beam search continues a block the same whatever else is in its batch, so generation 0's
    continuations of the real blocks are decoded once for every run that shares the model, and
    the example block is one more row of the batch that the next generation's data come from."""
    from collapse_utils.lm import run as lm_run

    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path))
    calls = []
    real_generate = lm_run.generate_continuations
    monkeypatch.setattr(lm_run, "generate_continuations",
                        lambda model, prompts, **kw: calls.append(len(prompts)) or real_generate(model, prompts, **kw))
    small = dict(profile="smoke", train_blocks=6, val_blocks=2, test_blocks=2, seeds=1, progress=False)
    first = cu.run("lm", regime=["replace"], generations=2, **small)
    assert calls == [6 + 1, 6 + 1, 1]      # generations 0 and 1 with their data; the last alone
    (saved,) = (tmp_path / "lm" / "generation-0").glob("*/continued-*.npy")
    before = set(tmp_path.glob("lm/smoke-*-seed0"))
    calls.clear()
    keep = cu.run("lm", regime=["keep-real"], generations=1, **small)
    assert calls == []                      # generation 1's data: generation 0's shared decoding
    (run,) = set(tmp_path.glob("lm/smoke-*-seed0")) - before
    kept = np.load(run / "tiny" / "model_0001" / "train_ids.npy")
    real = np.load(run / "tiny" / "model_0000" / "train_ids.npy")
    written = [row for row in kept if not any((row == r).all() for r in real)]
    continued = np.load(saved)
    assert len(written) == 5 == 6 - keep.metric("real_blocks")[0, 1]
    assert all(any((row == c).all() for c in continued) for row in written)
    model = lm.load_fitted(run / "tiny" / "model_0000").model   # the claim itself: alone or in a batch
    kw = dict(new_tokens=64, eos_token_id=0, pad_token_id=1)
    one_by_one = np.concatenate([real_generate(model, real[i:i + 1], batch_size=1, **kw) for i in range(6)])
    assert (one_by_one == continued).all() and (real_generate(model, real, **kw) == continued).all()


def test_tail_measures_and_settings_relations():
    loop = np.tile(np.array([5, 6, 7, 8], dtype=np.uint16), (2, 16))
    t = lm.tail_measures(loop, np.array([9, 10]))
    assert t["distinct_tokens"] == 4 and t["rare_coverage"] == 0.0
    assert t["repetition"] == pytest.approx(57 / 61)                 # only 4 distinct 4-grams
    assert lm.distinct_share(loop[0]) == 4 / 64
    real = np.repeat(np.arange(20), np.arange(20, 0, -1))[None, :]
    rare = lm.rare_token_types(real)
    counts = np.bincount(real.ravel())
    assert counts[rare].sum() <= 0.1 * counts.sum() < counts[rare].sum() + counts[rare.min() - 1]
    for profile in ("smoke", "default", "paper"):
        s = resolve_settings("lm", profile)
        assert (s["block_size"], s["beams"], s["new_tokens"]) == (64, 5, 64)
    with pytest.raises(ValueError, match="new_tokens must equal block_size"):
        resolve_settings("lm", "smoke", {"new_tokens": 32})
    with pytest.raises(ValueError, match="model must be a local folder"):
        resolve_settings("lm", "smoke", {"backend": "local"})


def test_offline_auto_is_immediate_and_other_errors_are_not_swallowed(monkeypatch):
    s = resolve_settings("lm", "default")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert lm.choose_backend(s) == ("stand-in", "Hub offline: HF_HUB_OFFLINE=1")
    from collapse_utils.lm import backends

    def broken(*a, **k):
        raise TypeError("OPTForCausalLM.__init__() got an unexpected keyword argument 'dtype'")

    monkeypatch.setattr(backends, "choose_backend", lambda s: ("hub", None))
    monkeypatch.setattr(backends, "load_pretrained", broken)
    with pytest.raises(TypeError, match="dtype"):                   # not replaced by the stand-in
        backends.load_backend({**s, "model": "not/cached"})


# ----------------------------------------------------------------------------- verify (Feng et al. 2024)
VERIFY_METRICS = ("accepted_share", "verify_rounds", "accepted_blocks")


def _train_ids(rec, regime, i):
    return np.load(rec.run_dir(regime=regime) / "tiny" / f"model_{i:04d}" / "train_ids.npy")


def _count_scored(monkeypatch):
    """Count the blocks scored under a model with sequence_perplexities in the lm run."""
    from collapse_utils.lm import run as lm_run
    from collapse_utils.lm import verify

    scored = []

    def counting(model, blocks, batch_size=256):
        scored.append(len(blocks))
        return lm.sequence_perplexities(model, blocks, batch_size)

    monkeypatch.setattr(lm_run, "sequence_perplexities", counting)
    monkeypatch.setattr(verify, "sequence_perplexities", counting)
    return scored


def test_verify_accepting_everything_is_replace_and_scores_each_block_once(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path))
    scored = _count_scored(monkeypatch)
    rec = cu.run("lm", profile="smoke", regime=["replace", "verify"], verify_low=0.0,
                 verify_high=1.0, generations=2, seeds=1, examples="all", progress=False)
    n = rec.settings["train_blocks"]
    rep, ver = (rec.one(regime=r)["metrics"] for r in ("replace", "verify"))
    assert set(ver) - set(rep) == set(VERIFY_METRICS)
    assert {k: ver[k] for k in rep} == rep                           # the same numbers, every one
    assert (_train_ids(rec, "verify", 2) == _train_ids(rec, "replace", 2)).all()
    assert ver["accepted_share"] == [None, 1.0, 1.0] and ver["verify_rounds"] == [0, 1, 1]
    assert ver["accepted_blocks"] == [None, n, n]
    # replace scores real + 2 generated sets in measure; verify scores the real set (gen 0's
    # measure is shared) and each generated set once, in the verifier, never again in measure
    assert scored == [n, n, n] + [n, n]


def test_verify_with_an_impossible_band_tops_up_with_round_one(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path))
    from collapse_utils.lm import run as lm_run

    calls = []

    def recording(model, prompts, **kw):
        out = lm.generate_continuations(model, prompts, **kw)
        calls.append((np.array(prompts), out))
        return out

    monkeypatch.setattr(lm_run, "generate_continuations", recording)
    base = cu.run("lm", profile="smoke", regime=["replace"], generations=1, seeds=1,
                  progress=False)
    calls.clear()
    rec = cu.run("lm", profile="smoke", regime=["verify"], verify_low=0.5, verify_high=0.5,
                 max_rounds=3, generations=1, seeds=1, progress=False)
    n = rec.settings["train_blocks"]
    m = rec.one()["metrics"]
    assert m["accepted_share"][1] == 0.0 and m["accepted_blocks"][1] == 0
    assert m["verify_rounds"][1] == 3                                 # every round was made
    (shared,) = (tmp_path / "lm" / "generation-0").glob("*/continued-*.npy")
    # round 1 is generation 0's decoding of the real blocks, made once by the replace run
    rounds = [(None, np.load(shared))] + [c for c in calls if len(c[0]) == n]
    assert len(rounds) == 3 and all(c[1].shape == (n, 64) for c in rounds)
    for (_, before), (prompts, _) in zip(rounds, rounds[1:]):         # round r+1 continues round r
        assert (prompts == before).all()
    assert (_train_ids(rec, "verify", 1) == rounds[0][1]).all()      # topped up: round 1, in order
    assert (_train_ids(rec, "verify", 1) == _train_ids(base, "replace", 1)).all()
    assert (m["generated_perplexity_values"][1]
            == base.one()["metrics"]["generated_perplexity_values"][1])


def test_verify_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    from collapse_utils.experiments import run_experiment

    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path))
    over = {"regime": ["verify"], "generations": 2, "seeds": 1, "verify_low": 0.0,
            "verify_high": 0.9}
    full = run_experiment("lm", profile="smoke", overrides=over, resume=False, progress=False)
    part = run_experiment("lm", profile="smoke", overrides=over, resume=False, stop_after=1,
                          progress=False)
    assert part.data["runs"][0]["generations"] == [0, 1]
    resumed = run_experiment("lm", profile="smoke", overrides=over, resume=True, progress=False)
    assert resumed.data["runs"][0]["metrics"] == full.data["runs"][0]["metrics"]
    share = full.metric("accepted_share")[0]
    assert np.isnan(share[0]) and np.all((share[1:] >= 0) & (share[1:] <= 1))
    assert full.metric("train_blocks").tolist() == [[full.settings["train_blocks"]] * 3]


def test_verify_band_and_bad_settings():
    from collapse_utils.lm.verify import perplexity_band

    v = np.arange(1.0, 102.0)
    assert perplexity_band(v, 0.0, 1.0) == (-np.inf, np.inf)         # no limits: accept all
    assert perplexity_band(v, 0.1, 0.9) == pytest.approx((11.0, 91.0))
    for over, needle in [({"verify_low": 0.8, "verify_high": 0.2}, "verify_high must be at least"),
                         ({"max_rounds": 0}, "max_rounds must be an integer >= 1"),
                         ({"verify_high": 1.5}, "verify_high must be a number in [0, 1]"),
                         ({"regime": "verified"}, "regime must be")]:
        with pytest.raises(ValueError, match=re.escape(needle)) as err:
            resolve_settings("lm", "smoke", over)
        assert "\n" not in str(err.value)
    assert lm.paper_epochs("verify") == lm.paper_epochs("replace") == 5


# ----------------------------------------------------------------------------- local models, corpora
def test_local_folder_model_and_corpus_and_one_line_errors(tmp_path, backend):
    folder = tmp_path / "tiny-opt"
    backend.base.save_pretrained(folder)
    backend.tokenizer.save_pretrained(folder)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rows = lm.python_docs_rows()
    for split, name in [("train", "train.txt"), ("validation", "valid.txt"), ("test", "test.txt")]:
        (corpus / name).write_text("".join(rows[split]))
    local = lm.load_backend(tiny_settings(backend="local", model=str(folder), corpus=str(corpus)))
    assert local.kind == "local" and "a local model" in local.stand_in   # labelled: not the paper's
    assert local.label == "tiny-opt on corpus" and local.data_name == "the text in corpus"
    assert all((local.blocks[k] == backend.blocks[k]).all() for k in lm.SPLITS)
    for over, needle in [({"backend": "local", "model": str(tmp_path / "nope")}, "model must be"),
                         ({"corpus": str(tmp_path / "nowhere")}, "corpus must be a folder")]:
        with pytest.raises(ValueError, match=needle) as err:
            lm.load_backend(tiny_settings(**over))
        assert "\n" not in str(err.value)
    env = {**ENV, "COLLAPSE_CACHE": str(tmp_path / "cache")}
    bad = subprocess.run([sys.executable, "-m", "collapse_utils", "run", "lm", "--profile", "smoke",
                          "--backend", "local", "--model", str(tmp_path / "missing.gguf")],
                         capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and len(lines) == 1 and "model must be" in lines[0], bad.stderr


# ----------------------------------------------------------------------------- the GGUF stand-in
@pytest.fixture(scope="module")
def stand_in_cache(tmp_path_factory):
    """A run cache holding the dequantised stand-in, written by its first load."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLLAPSE_CACHE", str(cache))
        lm.load_stand_in()
    return cache


@needs_gguf
def test_gguf_stand_in_loads_fine_tunes_and_generates(tmp_path, stand_in_cache, monkeypatch, capfd):
    link = tmp_path / "model.gguf"
    link.symlink_to(lm.stand_in_file())
    import tqdm.auto  # noqa: F401  imported first, as in a chapter: TQDM_DISABLE is read then
    capfd.readouterr()
    tok, model = lm.load_local(str(link))                            # --model FILE.gguf
    out, err = capfd.readouterr()
    assert "GGUF" not in out + err and "it/s" not in out + err       # no progress bar leaks
    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    assert gguf_utils.tqdm is tqdm.auto.tqdm                         # and the bar is put back
    assert type(model).__name__ == "LlamaForCausalLM" and len(tok) == 49_152
    import gguf                                                      # the GGUF load's swaps undone
    assert gguf.GGUFReader is gguf.gguf_reader.GGUFReader
    assert gguf.get_tensor_name_map is gguf.tensor_mapping.get_tensor_name_map
    monkeypatch.setenv("COLLAPSE_CACHE", str(stand_in_cache))
    saved = list((stand_in_cache / "lm" / "stand-in").iterdir())
    assert len(saved) == 1 and (saved[0] / "config.json").is_file()   # the dequantised copy
    tok2, model2 = lm.load_stand_in()                                # read from that copy
    rows = lm.python_docs_rows()["train"][:200]
    assert lm.tokenize_rows(tok2, rows) == lm.tokenize_rows(tok, rows)
    x = torch.as_tensor(lm.blocks_from_token_lists(lm.tokenize_rows(tok, rows), 64,
                                                   np.uint16)[:2].astype(np.int64))
    with torch.inference_mode():
        assert torch.equal(model2(input_ids=x).logits, model(input_ids=x).logits)
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    assert next(model.parameters()).dtype == torch.float32          # dequantised
    ids = lm.tokenize_rows(tok, lm.python_docs_rows()["train"][:40])
    blocks = lm.blocks_from_token_lists(ids, 64, np.uint16)[:3]
    tuned, history = lm.fine_tune(model, blocks[:2], blocks[2:], epochs=1, lr=2e-5, batch_size=2)
    assert history["steps"] == 1 and np.isfinite(history["best_val_loss"])
    kw = dict(new_tokens=4, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    ours = lm.generate_continuations(tuned, blocks[:2], **kw)
    assert ours.shape == (2, 4)
    assert (ours == lm.generate_continuations(tuned, blocks[:2], engine="hf", **kw)).all()
    lm.save_fitted(lm.FittedLM(tuned, blocks[:2], history), tmp_path / "model_0000")
    back = lm.load_fitted(tmp_path / "model_0000")                  # a generation saved, reloaded
    assert (lm.sequence_losses(back.model, blocks) == lm.sequence_losses(tuned, blocks)).all()


@needs_gguf
def test_default_profile_runs_offline_with_the_pretrained_stand_in(tmp_path, stand_in_cache):
    env = {**ENV, "COLLAPSE_CACHE": str(stand_in_cache)}
    cmd = [sys.executable, "-m", "collapse_utils", "run", "lm", "--profile", "default", "--quiet",
           "--out", str(tmp_path), "--regime", "replace", "--seeds", "1", "--generations", "0",
           "--train-blocks", "4", "--val-blocks", "2", "--test-blocks", "4", "--epochs", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rec = cu.Record.load(tmp_path)
    assert "STAND-IN" in proc.stdout and "SmolLM2-135M" in rec.stand_in
    assert rec.fact("n_params") > 1e8 and rec.fact("zero_shot_perplexity") > 1
    assert rec.fact("label") == lm.STAND_IN_LABEL
    text = rec.metric("example_continuation")[0]
    assert len(text) == 1 and len(text[0]) > 20      # generation 0's continuation of the example


def test_tiny_benchmark_runs():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "lm.py"), "--tiny", "--json"],
                          capture_output=True, text=True, timeout=300, env=ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["train_tokens_per_s"] > 0 and result["beam_new_tokens_per_s"] > 0
    assert result["hf_generate_new_tokens_per_s"] > 0 and result["projected_chapter_s"] > 0


def test_generation_uses_the_current_cache_keyword_and_warns_nothing(backend):
    """transformers 5.25 renamed the key/value cache ``past_key_values`` -> ``cache`` (the old
    name warns and goes in 5.40): a generation passes whichever name the model takes."""
    import warnings

    from collapse_utils.lm.generate import cache_keyword

    class Old(torch.nn.Module):
        def forward(self, input_ids=None, past_key_values=None, **kwargs): ...

    class New(torch.nn.Module):
        def forward(self, input_ids=None, cache=None, **kwargs): ...

    assert cache_keyword(Old()) == "past_key_values" and cache_keyword(New()) == "cache"
    prompts = backend.blocks["train"][:3]
    eos = backend.tokenizer.eos_token_id
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for decoding in ("beam", "greedy", "nucleus"):
            for engine in ("ours", "hf"):
                lm.generate_continuations(backend.base, prompts, decoding=decoding, engine=engine,
                                          new_tokens=4, eos_token_id=eos, repetition_penalty=2.0)
    bad = [w for w in caught if issubclass(w.category, (FutureWarning, DeprecationWarning))
           and re.search(r"past_key_values|cache", str(w.message))]
    assert not bad, [str(w.message) for w in bad]


def test_chapter_workload_counts_all_of_wikitext2_where_the_paper_profile_says_all():
    """train_blocks = 0 means every block: the paper profile's projection once counted no
    fine-tuning at all."""
    from collapse_utils.lm.data import WIKITEXT2_BLOCKS
    from collapse_utils.lm.experiment import chapter_workload

    paper = chapter_workload("paper")
    assert paper["train_block_epochs"] >= WIKITEXT2_BLOCKS["train"] * 5   # one run of 5 epochs
    assert paper["eval_blocks"] > WIKITEXT2_BLOCKS["test"]
    assert chapter_workload("default")["train_block_epochs"] > 0


def test_one_new_token_attends_with_packed_heads_as_sdpa_does(monkeypatch):
    """Decoding runs grouped-query attention (a Llama with fewer key/value heads) with each
    key/value head's queries packed (lm.generate.packed_heads): the same attention as
    transformers' sdpa, the same tokens as its generate, on every step after the prompt, and the
    attention registry as it was afterwards."""
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    from collapse_utils.lm import generate as gen

    torch.manual_seed(0)
    q, k, v = torch.randn(5, 6, 1, 8), torch.randn(5, 2, 7, 8), torch.randn(5, 2, 7, 8)
    module = torch.nn.Module()
    module.num_key_value_groups, module.training = 3, False
    ours, _ = gen._one_query_attention(module, q, k, v, None, scaling=0.3)
    theirs, _ = sdpa_attention_forward(module, q, k, v, None, scaling=0.3)
    assert ours.shape == theirs.shape == (5, 1, 6, 8)
    assert torch.allclose(ours, theirs, atol=1e-6)

    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, attn_implementation="sdpa")
    model = LlamaForCausalLM(config).eval()
    calls = []
    packed = gen._one_query_attention

    def counted(module, query, *args, **kwargs):
        calls.append(query.shape[2])
        return packed(module, query, *args, **kwargs)

    monkeypatch.setattr(gen, "_one_query_attention", counted)
    prompts = np.random.default_rng(0).integers(3, 97, size=(3, 10))
    kw = dict(new_tokens=6, eos_token_id=2, pad_token_id=1, repetition_penalty=3.0)
    out = lm.generate_continuations(model, prompts, **kw)
    assert (out == lm.generate_continuations(model, prompts, engine="hf", **kw)).all()
    assert calls.count(1) == 2 * (6 - 1)           # both layers, every step after the prompt
    assert "sdpa" not in ALL_ATTENTION_FUNCTIONS._local_mapping
    assert ALL_ATTENTION_FUNCTIONS["sdpa"] is sdpa_attention_forward
