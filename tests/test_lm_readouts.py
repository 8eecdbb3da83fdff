"""The language-model chapter's fast decoding, the CPU precision chosen by measurement, the
readouts and findings the chapter quotes, and the check of a recorded run (issue 26)."""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import collapse_utils as cu  # noqa: E402
from collapse_utils import lm  # noqa: E402
from collapse_utils.experiments import resolve_settings  # noqa: E402
from collapse_utils.lm import figures, speed  # noqa: E402
from collapse_utils.lm.backends import cpu_precision  # noqa: E402
from collapse_utils.lm.generate import precast  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(profile="smoke", train_blocks=12, val_blocks=4, test_blocks=4, progress=False)


@pytest.fixture(scope="module")
def tiny():
    """The tiny backend and a generation 0 trained on 48 of its blocks (peaked enough that beam
    search has real choices to make)."""
    torch.set_num_threads(1)
    backend = lm.load_backend(resolve_settings("lm", "smoke"))
    real = lm.subset_blocks(backend.blocks["train"], 48, "train")
    val = lm.subset_blocks(backend.blocks["validation"], 16, "validation")
    model, _ = lm.fine_tune(backend.base, real, val, epochs=2, lr=5e-3, batch_size=8)
    return backend, model, real


# ----------------------------------------------------------------------------- decoding
@pytest.mark.parametrize("prec", ["fp32", "bf16"])
def test_batched_beam_search_equals_transformers_generate(tiny, prec):
    """Beam search over many prompts and all 5 beams at once, with the in-place key/value cache,
    the pre-cast weights and the top-k ranking, writes what ``generate`` writes, prompt by
    prompt, in fp32 and under bf16 autocast."""
    backend, model, real = tiny
    eos = backend.tokenizer.eos_token_id
    with cpu_precision(prec):
        kw = dict(eos_token_id=eos, pad_token_id=1, new_tokens=24)
        ours = lm.generate_continuations(model, real[:10], batch_size=10, **kw)
        hf = lm.generate_continuations(model, real[:10], engine="hf", batch_size=5, **kw)
    assert ours.shape == (10, 24) and (ours == hf).all()


def test_precast_weights_give_the_products_autocast_gives(tiny):
    """Linear weights cast once to bf16 give the very logits that autocast's casts give, and the
    model's own fp32 weights (a tied output layer included) are back after the block."""
    backend, model, real = tiny
    x = torch.as_tensor(real[:3].astype(np.int64))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        plain = model(input_ids=x).logits
        with precast(model, "bf16"):
            assert model.lm_head.weight.dtype == torch.bfloat16
            cast = model(input_ids=x).logits
    assert torch.equal(plain, cast)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) and after[k].dtype == before[k].dtype for k in before)
    assert model.lm_head.weight is model.get_input_embeddings().weight   # tied again
    with precast(model, "fp32"):
        assert model.lm_head.weight.dtype == torch.float32


def test_the_beam_cache_layer_reorders_like_transformers_dynamic_layer():
    from transformers.cache_utils import DynamicLayer

    from collapse_utils.lm.generate import BeamLayer

    g = torch.Generator().manual_seed(0)
    k, v = torch.randn(6, 2, 5, 4, generator=g), torch.randn(6, 2, 5, 4, generator=g)
    ref = DynamicLayer()
    ref.update(k, v)
    ours = BeamLayer.of(copy.deepcopy(ref), new_tokens=3)
    for step in range(4):   # one step past the room it was given: it grows
        idx = torch.randint(0, 6, (6,), generator=g)
        nk, nv = torch.randn(6, 2, 1, 4, generator=g), torch.randn(6, 2, 1, 4, generator=g)
        ref.reorder_cache(idx)
        ours.reorder_cache(idx)
        a, b = ref.update(nk, nv), ours.update(nk, nv)
        assert all(torch.equal(x, y) for x, y in zip(a, b)), step
        assert ours.get_seq_length() == ref.get_seq_length() == 6 + step


# ----------------------------------------------------------------------------- precision
def test_cpu_precision_is_measured_once_and_remembered(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path))
    config = lm.load_backend(resolve_settings("lm", "smoke")).base.config
    assert speed.choose_cpu_precision("fp32", config) == ("fp32", {"precision": "fp32", "how": "asked"})
    calls = []

    def fake(cfg):
        calls.append(1)
        return {"precision": "bf16", "gflops": {"fp32": [100.0, 90.0], "bf16": [300.0, 250.0]}}

    monkeypatch.setattr(speed, "measure_precisions", fake)
    first = speed.choose_cpu_precision("auto", config)
    again = speed.choose_cpu_precision("auto", config)
    assert first[0] == again[0] == "bf16" and len(calls) == 1     # remembered in the cache
    # the same fact whether this run measured or read it: a record's runs share it (from an
    # empty cache the first run measures and the others read, and the chapter reads the fact)
    assert first[1] == again[1] and first[1]["how"] == speed.MEASURED
    assert list((tmp_path / "lm").glob("precision-*.json"))


def test_the_measurement_picks_bf16_only_where_it_is_faster(monkeypatch):
    config = lm.load_backend(resolve_settings("lm", "smoke")).base.config
    rates = {"fp32": 100.0, "bf16": 300.0}
    monkeypatch.setattr(speed, "gemm_gflops", lambda cfg, p, rows: rates[p])
    monkeypatch.setattr(speed, "native_bf16", lambda: True)
    assert speed.measure_precisions(config)["precision"] == "bf16"
    rates["bf16"] = 105.0                                           # within the margin: fp32
    assert speed.measure_precisions(config)["precision"] == "fp32"
    monkeypatch.setattr(speed, "native_bf16", lambda: False)        # emulated bf16: not timed
    out = speed.measure_precisions(config)
    assert out["precision"] == "fp32" and set(out["gflops"]) == {"fp32"}


def test_gemm_rate_counts_the_model_flops():
    config = lm.load_backend(resolve_settings("lm", "smoke")).base.config
    shapes = speed.linear_shapes(config)
    d, layers, V = config.hidden_size, config.num_hidden_layers, config.vocab_size
    weights = sum(i * o * n for i, o, n in shapes)
    assert weights == layers * (4 * d * d + 2 * d * config.ffn_dim) + d * V   # OPT: no gate
    f = speed.flops_per_token(config, 64)
    assert f["train"] == 3 * f["forward"]
    assert speed.gemm_gflops(config, "fp32", rows=8, seconds=0.05) > 0


def test_a_tiny_run_records_its_precision_and_a_local_run_its_label(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path))
    rec = cu.run("lm", regime=["replace"], seeds=1, generations=1, **SMALL)
    assert rec.fact("precision") == "fp32"
    assert rec.fact("precision_choice") == {"precision": "fp32", "how": "backend tiny: fp32"}
    assert rec.fact("data_name") and rec.stand_in and "PIPELINE CHECK" in rec.stand_in
    own = rec.metric("own_perplexity")[0]
    assert np.isnan(own[0]) and own[1] > 1                          # none at generation 0
    assert "STAND-IN" in figures.what_ran(rec) and "tiny OPT" in figures.what_ran(rec)


# ----------------------------------------------------------------------------- readouts, findings
def fake_record(tp_b, tp_c, seeds=2):
    """A main record of two settings with the metrics the report reads, made up."""
    gens = list(range(len(tp_b[0])))
    runs = []
    for regime, tps in (("replace", tp_b), ("keep-real", tp_c)):
        for seed, tp in enumerate(tps):
            shrink = 1.0 if regime == "keep-real" else 0.8
            values = [list(np.linspace(10, 30, 40) * (shrink ** g if g else 1)) for g in gens]
            values[-1] = values[-1][:-4] + [500.0] * 4 if regime == "replace" else values[-1]
            m = {"test_perplexity": tp, "generated_perplexity_values": values,
                 "generated_perplexity_median": [float(np.median(v)) for v in values],
                 "generated_perplexity_q90": [float(np.quantile(v, 0.9)) for v in values],
                 "distinct_tokens": [400 - (50 if regime == "replace" else 20) * g for g in gens],
                 "rare_coverage": [0.5 - (0.1 if regime == "replace" else 0.05) * g for g in gens],
                 "distinct_2": [0.9 - 0.1 * g for g in gens], "repetition": [0.0] * len(gens),
                 "own_perplexity": [None] + [5.0 - g for g in gens[1:]]}
            runs.append({"regime": regime, "seed": seed, "metrics": m, "facts": {}})
    data = {"format": cu.record.FORMAT, "experiment": "lm", "profile": "default", "seed": 0,
            "settings": {"seeds": seeds, "train_blocks": 32, "block_size": 64, "batch_size": 4,
                         "real_fraction": 0.1},
            "axes": {"regime": ["replace", "keep-real"], "seed": list(range(seeds))},
            "stand_in": "a stand-in", "facts": {"epochs": 2, "zero_shot_perplexity": 30.0,
                                                "model_name": "m", "data_name": "d",
                                                "precision": "bf16", "device": "CPU, bf16"},
            "generations": gens, "runs": runs}
    return cu.Record(json.loads(json.dumps(data)))


def test_report_and_findings_follow_the_numbers():
    rec = fake_record([[20, 24, 26], [20, 25, 27]], [[20, 21, 21.5], [20, 21.5, 22]])
    n = figures.report(rec)
    assert n["rise_b"] == pytest.approx(6.5) and n["rise_c"] == pytest.approx(1.75)
    assert n["rise_spread"] == pytest.approx(1.0) and n["held"]
    assert n["tail0"] == pytest.approx(2 / 40) and n["tail_b"] == pytest.approx(4 / 40)
    assert n["own1_b"] == 4.0 and n["own_b"] == 3.0
    shown = {f["finding"][:30]: f["shown"] for f in figures.findings(rec, n)}
    assert all(shown.values()), shown
    # the seeds disagree by more than the gap: (c) holding the rise back is not shown
    close = fake_record([[20, 24, 30], [20, 21, 21]], [[20, 21, 22], [20, 21, 23]])
    n2 = figures.report(close)
    assert not n2["held"] and n2["rise_spread"] == pytest.approx(9.0)
    verdict = [f for f in figures.findings(close, n2) if "holds the rise back" in f["finding"]]
    assert len(verdict) == 1 and not verdict[0]["shown"]
    assert "spread of 9.0" in verdict[0]["measured"]
    table = figures.findings_table(close, n2).data
    assert list(table["this run"]).count("not shown") >= 1 and "recorded run" not in table
    both = figures.findings_table(close, n2, recorded=rec).data   # rec shows all five
    assert list(both["recorded run"]) == ["shown"] * 5
    assert list(both["this run"]) == list(table["this run"])
    from collapse_utils.lm import report as lm_report

    assert lm_report.recorded_summary(None) == "This build holds no larger recorded run."
    line = lm_report.recorded_summary(rec)
    assert " shows 5 of them" in line and lm_report.what_ran(rec) in line
    import report_keys

    numbers = lm_report.recorded(rec)
    report_keys.check_report({lm_report.recorded: numbers}, kinds=(int, float, str))
    assert numbers["shown"] == 5 and numbers["keep"].startswith("keeping 10% real data held")
    assert numbers["real_blocks"] == 3   # 10% of 32
    assert numbers["tail"].startswith("the tail grew")
    assert lm_report.recorded(close)["keep"].startswith("keeping 10% real data did not")
    assert lm_report.recorded(None) == {}


def test_example_and_protocol_numbers_are_documented_and_read_the_records():
    """lm.report.example and lm.report.protocol: every key on one line of the docstring, each
    number read from the record it names."""
    import inspect

    from collapse_utils.lm import report

    rec = fake_record([[20, 24, 26], [20, 25, 27]], [[20, 21, 21.5], [20, 21.5, 22]])
    for run in rec.data["runs"]:
        m = run["metrics"]
        m["example_distinct"] = [0.5, 0.4, 0.3] if run["seed"] else [0.25, 0.2, 0.1]
        m["example_continuation"] = ["  Hello   world, again " * 8, "b", "c"]
        m["real_blocks"] = [32, 3, 3] if run["regime"] == "keep-real" else [32, 0, 0]
        m["repetition"] = [0.0, 0.2, 0.4] if run["regime"] == "replace" else [0.0] * 3
    rec.data["settings"]["new_tokens"] = 64
    ex = report.example(rec)
    assert ex["ex0_distinct"] == 16.0                # the fewest over seeds: 0.25 x 64
    assert ex["ex0_text"].startswith("Hello world, again Hello") and len(ex["ex0_text"]) <= 90

    def sweep(by, values, metric, rows):
        runs = [{by: v, "seed": 0, "regime": "replace" if by != "regime" else v,
                 "metrics": {metric: row}, "facts": {}} for v, row in zip(values, rows)]
        return cu.Record(json.loads(json.dumps({
            "format": cu.record.FORMAT, "experiment": "lm", "profile": "default", "seed": 0,
            "settings": {"seeds": 1}, "axes": {by: values, "seed": [0]}, "facts": {},
            "generations": [0, 1], "runs": runs})))

    pen = sweep("repetition_penalty", [2.0, 3.0], "repetition", [[0.0, 0.3], [0.0, 0.1]])
    dec = sweep("decoding", ["greedy", "nucleus"], "distinct_tokens", [[400, 300], [400, 380]])
    keep = sweep("regime", ["keep-current"], "real_blocks", [[32, 2]])
    p = report.protocol(rec, pen, dec, keep)
    assert p["pen_rep3"] == pytest.approx(0.1) and p["nuc_dist"] == 380 and p["keep_cur"] == 2
    assert p["keep_gen"] == 1 and p["keep_real"] == 3
    for fn, out in ((report.example, ex), (report.protocol, p)):
        doc = inspect.getdoc(fn)
        assert all(sum(line.startswith(f"{k}: ") for line in doc.splitlines()) == 1 for k in out)


# ----------------------------------------------------------------------------- the recorded run
def test_compare_to_record_finds_a_number_the_code_does_not_compute(tmp_path, monkeypatch):
    """The check of a recorded run, on a tiny record made here: recomputed it agrees, and a
    recorded number moved by more than the tolerance is named."""
    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path / "cache"))
    over = dict(regime=["replace"], seeds=1, generations=1, **SMALL)
    recorded = cu.run("lm", **over)
    folder = tmp_path / "records" / "lm-tiny"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(recorded.data))
    (folder / "stray.npy").write_bytes(b"x")
    made = figures.write_provenance(folder, "the command")
    assert made["command"] == "the command" and made["date"] and made["cpu"]
    assert sorted(p.name for p in folder.iterdir()) == ["made.json", "metrics.json"]
    back, provenance = figures.load_recorded(tmp_path / "records")
    assert provenance == made and list(back.generations) == list(recorded.generations)
    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path / "fresh"))   # computed again from nothing
    again = cu.run("lm", **over)
    assert figures.compare_to_record(back, again, regime="replace") == []
    moved = json.loads(json.dumps(back.data))
    moved["runs"][0]["metrics"]["test_perplexity"][1] *= 1.5
    bad = figures.compare_to_record(cu.Record(moved), again, regime="replace")
    assert len(bad) == 1 and bad[0].startswith("test_perplexity at generation 1")
    assert figures.load_recorded(tmp_path / "nowhere") == (None, None)
    monkeypatch.chdir(tmp_path)   # as a notebook of book/ reads "book/records": from book/ itself
    assert figures.load_recorded("book/records")[1] == made


def test_a_figure_names_the_recorded_runs_own_model(tmp_path, monkeypatch):
    """The dashed lines of the book's recorded run are named in the footer by their own model and
    sizes; the footer's one STAND-IN stays the live run's."""
    recorded, _ = figures.load_recorded(ROOT / figures.RECORDS)
    if recorded is None:
        pytest.skip(f"no recorded run under {figures.RECORDS}")
    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path))
    live = cu.run("lm", regime=["replace"], seeds=1, generations=1, **SMALL)
    for fig in (figures.plot_test_perplexity(live, recorded=recorded),
                figures.plot_readouts(live, recorded=recorded)):
        footer = " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
        s = recorded.settings
        assert (f"dashed: the recorded run ({figures.short_label(recorded)}, "
                f"{s['train_blocks']} training blocks, {s['seeds']} seeds, generations 0-"
                f"{max(recorded.generations)})") in footer, footer
        assert footer.count("STAND-IN: ") == 1 and f"STAND-IN: {figures.short_label(live)}" in footer
        plt.close(fig)


def test_the_books_recorded_run_is_what_the_code_computes(tmp_path, monkeypatch):
    """Generation 0 to 1 of seed 0, setting (b), recomputed at the recorded run's sizes and
    compared within :data:`collapse_utils.lm.figures.RECORD_TOLERANCE`."""
    recorded, made = figures.load_recorded(ROOT / figures.RECORDS)
    if recorded is None:
        pytest.skip(f"no recorded run under {figures.RECORDS} yet (made by: "
                    f"{figures.RECORDED_COMMAND})")
    if recorded.fact("backend") == "stand-in":
        try:   # the file, and the GGUF reader with its tokenizer (sentencepiece)
            lm.stand_in_file()
            import gguf.vocab  # noqa: F401
        except (FileNotFoundError, ImportError):
            pytest.skip(f"the recorded run ran the stand-in, which needs {lm.STAND_IN_WHEEL}, "
                        "gguf and sentencepiece")
    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path))
    keep = {k: v for k, v in recorded.settings.items() if k not in ("seeds", "regime")}
    again = cu.run("lm", profile=recorded.profile, progress=False,
                   **{**keep, "regime": ["replace"], "seeds": 1, "generations": 1,
                      "examples": "none"})
    assert figures.compare_to_record(recorded, again, regime="replace", seed=0) == []


def test_the_example_prompt_starts_at_a_word():
    """Example 1's prompt once began in the middle of a word (a test block cut at 64 tokens)."""
    from collapse_utils.lm.run import example_prompt

    backend = lm.load_backend(resolve_settings("lm", "smoke"))
    tok, test = backend.tokenizer, backend.blocks["test"]
    for block in (0, 1, 5):
        prompt = example_prompt(test, tok, block)
        assert prompt.shape == (1, test.shape[1]) and prompt.dtype == test.dtype
        first = tok.decode([int(prompt[0, 0])])
        assert first[:1].isspace() and first.strip(), (block, first)
        flat = test.ravel()
        start = int(np.flatnonzero(np.all(np.lib.stride_tricks.sliding_window_view(
            flat, test.shape[1]) == prompt[0], axis=1))[0])
        assert block * test.shape[1] <= start < (block + 1) * test.shape[1]   # within its block
