"""The ``lm`` experiment: fine-tune, write the next data set, fine-tune on that (Fig. 1).

Each generation fine-tunes the *pretrained* model on 64-token blocks: generation 0 on
the real training split, every later one on the continuations that the previous
generation's best checkpoint (on the real validation split) wrote for every block of
its own training set.  Settings of the paper (Shumailov et al. 2024, and its code):

* (b) ``regime="replace"``: 5 epochs, no original data after generation 0;
* (c) ``regime="keep-real"``: 10 epochs, a random 10% of every later training set are
  original blocks (:func:`~collapse_utils.regimes.keep_real`);
* ``regime="keep-current"``: what the public code's ``-gen_percent`` does instead: 10%
  of the *current* (already generated) training set kept as it is;
* ``regime="verify"`` (beyond the paper; Feng et al. 2024): only generated blocks whose
  perplexity under the generation-0 model lies between the ``verify_low`` and
  ``verify_high`` quantiles of the real training blocks' are kept, with at most
  ``max_rounds`` rounds of decoding, topped up with the earliest rejected blocks
  (:mod:`~collapse_utils.lm.verify`);
* AdamW, lr 2e-5, batch 128, cosine schedule to 1e-6, weight decay 0.01;
* 5-way beam search, exactly 64 new tokens; ``repetition_penalty`` 1.0 in the main
  runs, 2.0 in the paper's ablation, 3.0 hard-coded in the public code; ``decoding``
  compares beam search with greedy decoding and nucleus sampling.

``regime``, ``repetition_penalty`` and ``decoding`` are sweep axes; ``seeds`` counts runs.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ..experiments import Experiment, RunOutput, cache_root, register, source_digest
from ..loop import atomic_write_bytes, folder_lock, run_generations, warn
from ..regimes import Mix, make_regime
from ..settings import Setting
from .backends import (BACKENDS, HUB_MODEL, check_corpus, check_model, cpu_precision,
                       load_backend)
from .data import WIKITEXT2_BLOCKS, subset_blocks
from .evaluate import (PERPLEXITY_BIN_EDGES, distinct_share, perplexity, perplexity_summary,
                       rare_token_types, sequence_perplexities, tail_measures)
from .generate import DECODINGS, generate_continuations
from .store import (FittedLM, drop_weights, load_fitted, load_weights, replace_folder, save_fitted,
                    save_weights)
from .train import batch_plan, device_facts, fine_tune
from .verify import GENERATION_0 as VERIFY_GENERATION_0
from .verify import PerplexityVerifier

REGIMES = ("replace", "keep-real", "keep-current", "verify")
#: which runs continue the example block (``examples``): each costs one decoding per generation
EXAMPLES = ("all", "replace", "none")
PAPER = {
    "zero_shot_perplexity": 115.0,       # OPT-125m on wikitext-2 test, no fine-tuning
    "fine_tuned_perplexity": 34.0,       # generation 0, fine-tuned on real data
    "rise_replace": (20.0, 28.0),        # setting (b): rise of test perplexity over generations
}

SETTINGS = {
    "generations": Setting((2, 2, 9), low=0, help="the last generation (0 = fine-tune on real data only)"),
    "seeds": Setting((1, 2, 5), low=1, help="independent runs per setting (the paper: 5)"),
    "regime": Setting(["replace", "keep-real"], choices=REGIMES, sweep=True,
                      help="replace (b); keep-real (c): 10% original blocks; keep-current: the public code's 10% of the current set; verify: only blocks that generation 0 finds as likely as real text"),
    "repetition_penalty": Setting([1.0], low=1e-3, sweep=True,
                                  help="CTRL penalty in decoding: 1.0 none (paper), 2.0 its ablation, 3.0 its code"),
    "decoding": Setting(["beam"], choices=DECODINGS, sweep=True,
                        help="beam (the paper's 5-way), greedy, or nucleus sampling"),
    "backend": Setting(("tiny", "auto", "auto"), choices=BACKENDS,
                       help="auto: the Hub, else the stand-in; local: model and corpus on disk"),
    "model": Setting(HUB_MODEL, help="a Hub id, or (backend local) a model folder or .gguf file"),
    "corpus": Setting(None, kind=str, optional=True,
                      help="a folder with train.txt, validation.txt (or valid.txt), test.txt"),
    "real_fraction": Setting(0.1, low=0.0, high=1.0, help="keep-real/keep-current: share kept"),
    "verify_low": Setting(0.05, low=0.0, high=1.0,
                          help="verify: accept a block whose perplexity under generation 0 is at least this quantile of the real training blocks' (0: no lower limit)"),
    "verify_high": Setting(0.95, low=0.0, high=1.0,
                           help="verify: ... and at most this quantile (1: no upper limit; 0 and 1 accept every block, as replace)"),
    "max_rounds": Setting(2, low=1,
                          help="verify: rounds of decoding per generation, each continuing the last round's text; still short, the earliest rejected blocks fill up"),
    "epochs": Setting((1, 2, 0), low=0, help="epochs per generation; 0: the paper's 5 (replace) or 10"),
    "lr": Setting((2e-5, 1e-4, 2e-5), low=1e-12,
                  help="AdamW learning rate of a pretrained model (paper 2e-5; default: 4 steps must move it)"),
    "lr_min": Setting(1e-6, low=0.0, help="end of the cosine schedule"),
    "weight_decay": Setting(0.01, low=0.0),
    "batch_size": Setting((8, 4, 128), low=1, help="blocks per optimiser step (paper 128)"),
    "block_size": Setting(64, low=2, help="tokens per block (paper 64)"),
    "new_tokens": Setting(64, low=1, help="new tokens per block; equals block_size"),
    "beams": Setting(5, low=1, help="beam width of decoding=beam (paper 5)"),
    "top_p": Setting(0.9, low=1e-6, high=1.0, help="nucleus of decoding=nucleus"),
    "train_blocks": Setting((24, 8, 0), low=0, help="a fixed random subset of the train split; 0 = all"),
    "val_blocks": Setting((8, 4, 0), low=0, help="validation blocks (best epoch); 0 = all"),
    "test_blocks": Setting((16, 8, 0), low=0, help="test blocks (test perplexity); 0 = all"),
    "example_block": Setting(0, low=0, help="the test block whose continuation is shown"),
    "examples": Setting("replace", choices=EXAMPLES,
                        help="runs that continue the example block every generation (the chapter's "
                        "Example 1): all, replace runs only (the chapter prints those), or none"),
    "gen_batch": Setting((64, 16, 512), low=1,
                         help="prompts per decoding batch (memory); default's 16 holds the 8 blocks and the example"),
    "eval_batch": Setting((64, 16, 256), low=1, help="blocks per evaluation batch (memory)"),
    "micro_batch": Setting(0, low=0, help="gradient-accumulation piece; 0 = none"),
    "tiny_vocab": Setting(1024, low=16, help="backend tiny: BPE vocabulary"),
    "tiny_layers": Setting(2, low=1),
    "tiny_width": Setting(64, low=16, help="a multiple of 16"),
    "tiny_lr": Setting(5e-3, low=1e-12, help="backend tiny: learning rate (trained from scratch)"),
    "cpu_threads": Setting(0, low=0, help="torch threads on a CPU; 0 = every core (1 for backend tiny)"),
    "cpu_precision": Setting("fp32", choices=("fp32", "bf16"), help="bf16 = autocast on CPU"),
}


#: the chapter's sweeps (book/lm.ipynb): both settings over seeds, then the protocol section
CHAPTER = {
    "settings": {},
    # the paper's penalty 1.0 and beam search are the main run's replace seed 0 (figures.baseline)
    "penalty": {"regime": ["replace"], "repetition_penalty": [2.0, 3.0], "seeds": 1,
                "generations": 1, "examples": "none"},
    "decoding": {"regime": ["replace"], "decoding": [d for d in DECODINGS if d != "beam"],
                 "seeds": 1, "generations": 1, "examples": "none"},
    # keep-real's seed 0 is the main run's: only keep-current is new
    "keep": {"regime": ["keep-real", "keep-current"], "seeds": 1},
}


def chapter_workload(profile: str) -> dict:
    """What the whole chapter computes at ``profile``, counted in blocks (for the benchmark's
    projection): block-epochs of fine-tuning, blocks evaluated (validation per epoch, test,
    scoring under generation 0), blocks decoded per decoding.  Runs that two sweeps share,
    generation-0 fits that runs share, and generation 0's continuations of the real blocks
    under one deterministic decoding (shared as well), are counted once."""
    from ..experiments import get_experiment, resolve_settings, sweep_points

    exp = get_experiment("lm")
    runs, fits, continued = {}, set(), set()
    for over in CHAPTER.values():
        for _, own, seed in sweep_points(exp, resolve_settings(exp, profile, over), 0):
            runs[(json.dumps(own, sort_keys=True), seed)] = own
    out = {"train_block_epochs": 0, "eval_blocks": 0, "runs": len(runs),
           "decoded_blocks": {d: 0 for d in DECODINGS}}

    def blocks(s, setting, split):   # 0: all of wikitext-2's 64-token blocks (OPT's tokenizer)
        return s[setting] or WIKITEXT2_BLOCKS[split] * 64 // s["block_size"]

    for (_, seed), s in runs.items():
        s = {**s, "train_blocks": blocks(s, "train_blocks", "train"),
             "val_blocks": blocks(s, "val_blocks", "validation"),
             "test_blocks": blocks(s, "test_blocks", "test")}
        n, e, g = s["train_blocks"], s["epochs"] or paper_epochs(s["regime"]), s["generations"]
        new = (n if s["regime"] == "replace" else n * s["max_rounds"] if s["regime"] == "verify"
               else n - round(s["real_fraction"] * n))   # verify: at most max_rounds rounds
        first = (seed, e) not in fits
        fits.add((seed, e))
        out["train_block_epochs"] += n * e * (g + first)
        out["eval_blocks"] += (s["val_blocks"] * e + s["test_blocks"] + n) * (g + first)
        decoded = new * g + (g + 1 if with_examples(s) else 0)
        if g and s["decoding"] != "nucleus":   # generation 0 continues every real block, once
            done = (seed, e, s["decoding"], s["repetition_penalty"])
            decoded += (0 if done in continued else n) - (n if s["regime"] == "verify" else new)
            continued.add(done)
        out["decoded_blocks"][s["decoding"]] += decoded
    if runs:   # the zero-shot test perplexity, once
        out["eval_blocks"] += blocks(next(iter(runs.values())), "test_blocks", "test")
    return out


def with_examples(s: dict) -> bool:
    """Whether the run of settings ``s`` continues the example block (setting ``examples``)."""
    return s["examples"] == "all" or s["examples"] == s["regime"]


def paper_epochs(regime: str) -> int:
    """Epochs per generation in the paper: 5 in setting (b) (replace), 10 in (c) (keep-real).
    ``verify`` keeps no original data either, so it takes (b)'s 5."""
    return 5 if regime in ("replace", "verify") else 10


def check(s: dict) -> None:
    """Relations between settings (one line each)."""
    if s["new_tokens"] != s["block_size"]:
        raise ValueError(f"new_tokens must equal block_size ({s['block_size']}), so that each "
                         f"continuation is one block of the next data set; got {s['new_tokens']}")
    if s["tiny_width"] % 16:
        raise ValueError(f"tiny_width must be a multiple of 16; got {s['tiny_width']}")
    check_model(s)
    check_corpus(s["corpus"])
    if s["verify_low"] > s["verify_high"]:
        raise ValueError(f"verify_high must be at least verify_low ({s['verify_low']:g}), the band "
                         f"of accepted perplexity quantiles; got {s['verify_high']:g}")


def make_lm_regime(name: str, fraction: float, accept=None, max_rounds: int = 2):
    """keep-current keeps ``fraction`` of the previous (current) training set: Mix(1-f, f, 0);
    verify is the core's Verify with the verifier ``accept`` and ``max_rounds``."""
    if name == "keep-current":
        return Mix(alpha=1.0 - fraction, beta=fraction, gamma=0.0)
    return make_regime(name, real_fraction=fraction, accept=accept, max_rounds=max_rounds)


def _gen0_folder(s: dict, kind: str, epochs: int, lr: float, seed: int) -> Path:
    """Where the generation-0 model of these data, epochs and seed lives (shared by runs)."""
    keys = ("model", "corpus", "block_size", "train_blocks", "val_blocks", "test_blocks",
            "eval_batch", "batch_size",
            "lr_min", "weight_decay", "micro_batch", "tiny_vocab", "tiny_layers", "tiny_width",
            "cpu_precision")
    blob = json.dumps({"s": {k: s[k] for k in keys}, "kind": kind, "epochs": epochs, "lr": lr,
                       "seed": seed, "source": source_digest("collapse_utils.lm")}, sort_keys=True)
    return cache_root() / "lm" / "generation-0" / hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_lm(settings: dict, *, seed: int = 0, run_dir=None, resume: bool = False,
           progress: bool = True, stop_after: int | None = None) -> RunOutput:
    """One run: generations 0..``generations`` (see the module docstring).

    Metrics per generation: ``test_perplexity``; ``best_val_loss``, ``best_epoch``,
    ``val_loss``/``train_loss`` histories; the per-sequence perplexity of the
    generation's training data under the generation-0 model (``generated_perplexity_*``);
    tail measures of the generated blocks (real blocks at generation 0);
    ``real_blocks``; where ``examples`` says so, the continuation of a fixed test prompt and
    its share of distinct tokens; under ``verify`` also ``accepted_share``, ``verify_rounds`` and ``accepted_blocks``
    (:meth:`~collapse_utils.lm.verify.PerplexityVerifier.finish`; None at generation 0).
    Facts: ``n_params``, ``epochs``, ``zero_shot_perplexity``, ``example_prompt``,
    ``perplexity_bin_edges``, ``backend``, ``label``, timings; under ``verify`` the band
    ``verify_band`` of accepted perplexities.
    """
    import torch

    threads = torch.get_num_threads()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if not torch.cuda.is_available():  # a tiny model runs fastest on one thread
        auto = 1 if settings["backend"] == "tiny" else cores or 1
        torch.set_num_threads(settings["cpu_threads"] or auto)
    try:
        with cpu_precision(settings["cpu_precision"]):
            return _run(dict(settings), seed, run_dir, resume, progress, stop_after)
    finally:
        torch.set_num_threads(threads)


def _run(s, seed, run_dir, resume, progress, stop_after) -> RunOutput:
    t0 = time.perf_counter()
    backend = load_backend(s)
    load_seconds = time.perf_counter() - t0
    planned = batch_plan(s, backend.base)   # on a GPU, the batches that fit its memory
    lr = s["tiny_lr"] if backend.kind == "tiny" else s["lr"]
    epochs = s["epochs"] or paper_epochs(s["regime"])
    real = subset_blocks(backend.blocks["train"], s["train_blocks"], "train")
    val = subset_blocks(backend.blocks["validation"], s["val_blocks"], "validation")
    test = subset_blocks(backend.blocks["test"], s["test_blocks"], "test")
    if min(len(real), len(val), len(test)) == 0:
        raise ValueError("block_size must leave every data split at least one complete block")
    tok = backend.tokenizer
    eos = tok.eos_token_id if tok.eos_token_id is not None else 2
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos
    decode_kw = dict(decoding=s["decoding"], beams=s["beams"], new_tokens=s["new_tokens"],
                     repetition_penalty=s["repetition_penalty"], top_p=s["top_p"],
                     eos_token_id=eos, pad_token_id=pad)
    rare = rare_token_types(real)
    real_rows = {row.tobytes() for row in real}
    example = test[s["example_block"] % len(test)][None, :]
    sub = Path(run_dir) / backend.kind if run_dir is not None else None
    zero_shot = _zero_shot(backend, test, planned["eval_batch"])
    seconds = {"fit": [], "sample": [], "measure": []}
    gen0 = _gen0_folder(s, backend.kind, epochs, lr, seed)
    s = {**s, **planned}   # generation 0's folder is keyed by the settings as given
    first = {}   # generation 0's FittedLM and the real blocks' perplexities under it

    def first_model():
        if "fitted" not in first:      # neither fitted nor restored in this process
            first["fitted"] = FittedLM(load_weights(gen0), real, {}, str(gen0))
        return first["fitted"].model

    def real_perplexities():
        if "real" not in first:
            first["real"] = _real_perplexities(gen0, first_model, real, s["eval_batch"])
        return first["real"]

    verifier = None
    if s["regime"] == "verify":
        verifier = PerplexityVerifier(s["verify_low"], s["verify_high"], first_model,
                                      real_perplexities, s["eval_batch"])
    regime = make_lm_regime(s["regime"], s["real_fraction"],
                            accept=verifier.accept if verifier else None,
                            max_rounds=s["max_rounds"])

    def train(data, fit_seed):
        model, history = fine_tune(
            backend.base, data, val, epochs=epochs, lr=lr, lr_min=s["lr_min"],
            batch_size=s["batch_size"], weight_decay=s["weight_decay"],
            micro_batch=s["micro_batch"], eval_batch=s["eval_batch"], seed=fit_seed,
            progress=progress)
        return FittedLM(model, np.asarray(data), history)

    def fit(data, rng):
        t = time.perf_counter()
        fit_seed = int(rng.integers(2**31))
        if data is real:   # generation 0: trained once, by the first run (or process) to get here
            with folder_lock(gen0.parent, f"{gen0.name}.lock"):
                fitted = _load_gen0(gen0, real)
                if fitted is None:
                    fitted = train(data, fit_seed)
                    _save_gen0(fitted, gen0)
            first["fitted"] = fitted
        else:
            fitted = train(data, fit_seed)
        seconds["fit"].append(round(time.perf_counter() - t, 2))
        return fitted

    def load_model(path):
        fitted = load_fitted(path)
        if Path(path).name == "model_0000":   # generation 0, restored by a resumed run
            first["fitted"] = fitted
        return fitted

    # a block's continuation under beam search or greedy decoding does not depend on the rest of
    # its batch (a test checks it), so one decoding of a model's whole training set serves every
    # subset a regime draws, and the example block rides along as one more row
    deterministic = s["decoding"] != "nucleus"
    decoded = hashlib.sha256(json.dumps(decode_kw, sort_keys=True).encode()).hexdigest()[:12]
    ahead = {}   # the continuations decoded with a model's example, for the sample that follows

    def continue_all(fitted, with_example=False):
        """(continuations of every block ``fitted`` trained on, the example's or None), one
        decoding; generation 0's are kept beside its weights for every run that shares it."""
        n = len(fitted.train)
        path = gen0 / f"continued-{decoded}.npy"
        shared = first.get("fitted") is fitted and gen0.is_dir()
        if shared and path.is_file():
            blocks = np.load(path)
            return blocks, (continue_example(fitted.model) if with_example else None)
        prompts = np.concatenate([fitted.train, example]) if with_example else fitted.train
        out = generate_continuations(fitted.model, prompts, batch_size=s["gen_batch"],
                                     progress=progress, **decode_kw)
        if shared:
            _save_npy(path, out[:n])
        return out[:n], (out[n] if with_example else None)

    def continue_example(model, example_seed: int = 0):
        """The example block's continuation, decoded on its own."""
        return generate_continuations(model, example, batch_size=1, seed=example_seed, **decode_kw)[0]

    def continues(index: int, n: int) -> bool:
        """Whether generation ``index + 1`` continues blocks of generation ``index``'s set."""
        kept = 0 if s["regime"] in ("replace", "verify") else round(s["real_fraction"] * n)
        return deterministic and index < s["generations"] and kept < n

    def sample(fitted, m, rng):
        """Continuations of m of the training blocks: all of them, in order, when m is the set.
        A further round of verify continues the blocks its last round wrote instead."""
        t = time.perf_counter()
        n = len(fitted.train)
        prompts = verifier.previous_round() if verifier is not None else None
        if prompts is None or len(prompts) != m:
            index = np.arange(n) if m == n else np.sort(rng.choice(n, m, replace=m > n))
            seed = int(rng.integers(2**31))
            if deterministic and ahead.get("model") is fitted:
                out = ahead.pop("blocks")[index]
            elif deterministic and first.get("fitted") is fitted:
                out = continue_all(fitted)[0][index]
            else:
                out = generate_continuations(fitted.model, fitted.train[index], batch_size=s["gen_batch"],
                                             seed=seed, progress=progress, **decode_kw)
        else:
            out = generate_continuations(fitted.model, prompts, batch_size=s["gen_batch"],
                                         seed=int(rng.integers(2**31)), progress=progress, **decode_kw)
        ahead.clear()
        seconds["sample"].append(round(time.perf_counter() - t, 2))
        return out

    def example_values(fitted, index, example_seed):
        """The continuation of the example block; generation 0's is computed once per decoding
        and shared by every run on the same generation-0 model (beside its weights).  When the
        next generation continues this one's blocks, the example is decoded with them."""
        key = json.dumps({**decode_kw, "prompt": example.tolist(), "seed": example_seed})
        path = gen0 / f"example-{hashlib.sha256(key.encode()).hexdigest()[:12]}.json"
        if index == 0 and path.is_file():
            return json.loads(path.read_text())
        if continues(index, len(fitted.train)):
            blocks, cont = continue_all(fitted, with_example=True)
            ahead.update(model=fitted, blocks=blocks)
        else:
            cont = continue_example(fitted.model, example_seed)
        values = {"example_continuation": tok.decode([int(t) for t in cont]),
                  "example_distinct": distinct_share(cont)}
        if index == 0 and gen0.is_dir():
            atomic_write_bytes(path, json.dumps(values).encode())
        return values

    def measure(g):
        t = time.perf_counter()
        fitted = g.model
        example_seed = int(g.rng.integers(2**31))
        shared = gen0 / "measure.json"
        scored, verified = None, {}
        if verifier is not None:
            verified = dict(VERIFY_GENERATION_0)
            if g.index > 0:   # the kept blocks' perplexities were computed by the verifier
                scored, verified = verifier.finish(g.train)
        if g.index == 0 and shared.is_file():
            values = json.loads(shared.read_text())
        else:
            written = g.train if g.new is None else g.new
            if scored is None:
                scored = sequence_perplexities(g.first_model.model, g.train, s["eval_batch"])
            values = {"test_perplexity": perplexity(fitted.model, test, s["eval_batch"]),
                      **perplexity_summary(scored, g.rng), **tail_measures(written, rare)}
            if g.index == 0:
                first["real"] = scored
            if g.index == 0 and gen0.is_dir():
                _save_npy(gen0 / REAL_PERPLEXITIES, scored)   # before measure.json: see there
                atomic_write_bytes(shared, json.dumps(values).encode())
        values.update(verified)
        if with_examples(s):   # the seed is drawn either way, so the other numbers do not move
            values.update(example_values(fitted, g.index, example_seed))
        values.update({
            "best_val_loss": fitted.history["best_val_loss"],
            "best_epoch": fitted.history["best_epoch"],
            "val_loss": fitted.history["val_loss"],
            "train_loss": fitted.history["train_loss"],
            "train_blocks": int(len(g.train)),
            "real_blocks": int(sum(row.tobytes() in real_rows for row in g.train)),
        })
        seconds["measure"].append(round(time.perf_counter() - t, 2))
        return values

    result = run_generations(
        fit, sample, real, s["generations"], regime=regime, seed=seed, measure=measure,
        run_dir=sub, resume=resume, save_model=save_fitted, load_model=load_model,
        progress=progress, stop_after=stop_after, desc=f"lm {s['regime']} seed {seed}")
    if stop_after is None and sub is not None:   # finished: its metrics hold what is read
        drop_weights(sub)
    facts = {"n_params": backend.n_params, "epochs": epochs, "zero_shot_perplexity": zero_shot,
             "example_prompt": tok.decode([int(t) for t in example[0]]),
             "perplexity_bin_edges": PERPLEXITY_BIN_EDGES.tolist(), "backend": backend.kind,
             "model_name": backend.model_name, "label": backend.label,
             "real_blocks_per_split": [len(real), len(val), len(test)],
             **device_facts(backend.base), "batches": planned,
             "seconds": {"backend_load": round(load_seconds, 2), **seconds}}
    if verifier is not None and s["generations"] > 0:   # the accepted perplexities (None: no limit)
        facts["verify_band"] = [v if np.isfinite(v) else None for v in verifier.band()]
    return RunOutput(result.generations, result.metrics, backend.stand_in, facts)


def _zero_shot(backend, test: np.ndarray, batch: int) -> float:
    """Test perplexity of the base model, once per backend and test set in a process."""
    memo = backend.__dict__.setdefault("_zero_shot", {})
    key = hashlib.sha256(np.ascontiguousarray(test).tobytes()).hexdigest()
    if key not in memo:
        memo[key] = perplexity(backend.base, test, batch)
    return memo[key]


#: the real training blocks' perplexities under generation 0, beside its weights
REAL_PERPLEXITIES = "real_perplexities.npy"


def _save_npy(path: Path, values: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, np.asarray(values))
    atomic_write_bytes(path, buf.getvalue())


def _real_perplexities(gen0: Path, first_model, real: np.ndarray, batch: int) -> np.ndarray:
    """The real blocks' perplexities under generation 0: saved by generation 0's measurement
    (written before its shared ``measure.json``), else scored once now and saved."""
    path = gen0 / REAL_PERPLEXITIES
    if path.is_file():
        values = np.load(path)
        if len(values) == len(real):
            return values
    values = sequence_perplexities(first_model(), real, batch)
    if gen0.is_dir():
        _save_npy(path, values)
    return values


def _load_gen0(folder: Path, real: np.ndarray) -> FittedLM | None:
    """The shared generation-0 model saved in ``folder``, or None when there is none yet or it
    cannot be read (then it is trained again, and a line says so)."""
    if not (folder / "history.json").is_file():
        return None
    try:
        history = json.loads((folder / "history.json").read_text())
        return FittedLM(load_weights(folder), real, history, str(folder))
    except Exception as err:   # a truncated weights file, a half-written history
        warn(f"{folder} cannot be loaded ({type(err).__name__}: {err}); training generation 0 again")
        return None


def _save_gen0(fitted: FittedLM, folder: Path) -> None:
    """Save a freshly trained generation-0 model where runs sharing it will find it."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp"))
    try:
        save_weights(fitted.model, tmp)
        (tmp / "history.json").write_text(json.dumps(fitted.history))
        replace_folder(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    fitted.weights_from = str(folder)


register(Experiment(
    name="lm",
    summary="a pretrained LM fine-tuned on its own beam-search output (Fig. 1b/1c; OPT-125m on wikitext-2)",
    settings=SETTINGS,
    run=run_lm,
    check=check,
))
