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
import json
import os
import time
from pathlib import Path

import numpy as np

from ..experiments import Experiment, RunOutput, register
from ..loop import run_generations
from ..regimes import Mix, make_regime
from ..settings import Setting
from .backends import (BACKENDS, HUB_MODEL, check_corpus, check_model, cpu_precision,
                       load_backend)
from .data import WIKITEXT2_BLOCKS
from .evaluate import perplexity
from .generate import DECODINGS
from .run import LMRun
from .speed import choose_cpu_precision
from .store import drop_weights, save_fitted
from .train import batch_plan

REGIMES = ("replace", "keep-real", "keep-current", "verify")
#: which runs continue the example block (``examples``): each costs one decoding per generation
EXAMPLES = ("all", "replace", "none")
PAPER = {
    "zero_shot_perplexity": 115.0,       # OPT-125m on wikitext-2 test, no fine-tuning
    "fine_tuned_perplexity": 34.0,       # generation 0, fine-tuned on real data
    "rise_replace": (20.0, 28.0),        # setting (b): rise of test perplexity over generations
}

SETTINGS = {
    "generations": Setting((2, 4, 9), low=0, help="the last generation (0 = fine-tune on real data only)"),
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
                  help="AdamW learning rate of a pretrained model (paper 2e-5; default: 16 steps must move it)"),
    "lr_min": Setting(1e-6, low=0.0, help="end of the cosine schedule"),
    "weight_decay": Setting(0.01, low=0.0),
    "batch_size": Setting((8, 4, 128), low=1, help="blocks per optimiser step (paper 128)"),
    "block_size": Setting(64, low=2, help="tokens per block (paper 64)"),
    "new_tokens": Setting(64, low=1, help="new tokens per block; equals block_size"),
    "beams": Setting(5, low=1, help="beam width of decoding=beam (paper 5)"),
    "top_p": Setting(0.9, low=1e-6, high=1.0, help="nucleus of decoding=nucleus"),
    "train_blocks": Setting((24, 32, 0), low=0,
                            help="a fixed random subset of the train split; 0 = all (default: 32, "
                            "the fewest at which 10% real is 3 blocks and the model moves)"),
    "val_blocks": Setting((8, 8, 0), low=0, help="validation blocks (best epoch); 0 = all"),
    "test_blocks": Setting((16, 16, 0), low=0, help="test blocks (test perplexity); 0 = all"),
    "example_block": Setting(0, low=0,
                             help="where the example prompt starts: the first word that begins in "
                             "this test block (64 tokens from there)"),
    "examples": Setting("replace", choices=EXAMPLES,
                        help="runs that continue the example block every generation (the chapter's "
                        "Example 1): all, replace runs only (the chapter prints those), or none"),
    "gen_batch": Setting((64, 48, 512), low=1,
                         help="prompts per decoding batch (memory); default's 48 holds the 32 blocks "
                         "and the example: 165 rows of 5 beams keep the matrix units busy"),
    "eval_batch": Setting((64, 64, 256), low=1, help="blocks per evaluation batch (memory)"),
    "micro_batch": Setting(0, low=0, help="gradient-accumulation piece; 0 = none"),
    "tiny_vocab": Setting(1024, low=16, help="backend tiny: BPE vocabulary"),
    "tiny_layers": Setting(2, low=1),
    "tiny_width": Setting(64, low=16, help="a multiple of 16"),
    "tiny_lr": Setting(5e-3, low=1e-12, help="backend tiny: learning rate (trained from scratch)"),
    "cpu_threads": Setting(0, low=0, help="torch threads on a CPU; 0 = every core (1 for backend tiny)"),
    "cpu_precision": Setting("auto", choices=("auto", "fp32", "bf16"),
                             help="auto: bf16 autocast where this CPU multiplies bf16 faster "
                             "(measured once, remembered in the cache; lm.speed), else fp32"),
}


#: the chapter's sweeps (book/lm.ipynb): both settings over seeds, then the protocol section
CHAPTER = {
    "settings": {},
    # the paper's penalty 1.0 and beam search are the main run's replace seed 0 (figures.baseline)
    "penalty": {"regime": ["replace"], "repetition_penalty": [2.0, 3.0], "seeds": 1,
                "generations": 1, "examples": "none"},
    "decoding": {"regime": ["replace"], "decoding": [d for d in DECODINGS if d != "beam"],
                 "seeds": 1, "generations": 1, "examples": "none"},
    # keep-real's seed 0 is the main run's (figures.baseline): only keep-current is new, and
    # two generations show its real share thinning out
    "keep": {"regime": ["keep-current"], "seeds": 1, "generations": 2, "examples": "none"},
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


def run_lm(settings: dict, *, seed: int = 0, run_dir=None, resume: bool = False,
           progress: bool = True, stop_after: int | None = None) -> RunOutput:
    """One run: generations 0..``generations`` (see the module docstring).

    Metrics per generation: ``test_perplexity``; ``best_val_loss``, ``best_epoch``,
    ``val_loss``/``train_loss`` histories; the per-sequence perplexity of the
    generation's training data under the generation-0 model (``generated_perplexity_*``);
    tail measures of the generated blocks (real blocks at generation 0);
    ``real_blocks``; where ``examples`` says so, the continuation of a fixed test prompt and
    its share of distinct tokens; ``own_perplexity``, the perplexity of the model that wrote
    the generation's new blocks on them (None at generation 0); under ``verify`` also ``accepted_share``, ``verify_rounds`` and ``accepted_blocks``
    (:meth:`~collapse_utils.lm.verify.PerplexityVerifier.finish`; None at generation 0).
    Facts: ``n_params``, ``epochs``, ``zero_shot_perplexity``, ``example_prompt``,
    ``perplexity_bin_edges``, ``backend``, ``label``, ``data_name``, ``precision`` and
    ``precision_choice`` (:func:`run_cpu_precision`), timings; under ``verify`` the band
    ``verify_band`` of accepted perplexities.
    """
    import torch

    threads = torch.get_num_threads()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if not torch.cuda.is_available():  # a tiny model runs fastest on one thread
        auto = 1 if settings["backend"] == "tiny" else cores or 1
        torch.set_num_threads(settings["cpu_threads"] or auto)
    try:
        t0 = time.perf_counter()
        backend = load_backend(settings)
        load_seconds = time.perf_counter() - t0
        prec, choice = run_cpu_precision(settings, backend)
        s = {**settings, "cpu_precision": prec}
        with cpu_precision(prec):
            return _run(s, backend, load_seconds, choice, seed, run_dir, resume, progress,
                        stop_after)
    finally:
        torch.set_num_threads(threads)


def run_cpu_precision(s: dict, backend) -> tuple[str, dict]:
    """(the precision this run takes on a CPU, how it was chosen): ``cpu_precision`` fp32 or
    bf16 as given; ``auto`` fp32 for the tiny backend (a pipeline check, too small to gain),
    else :func:`~.speed.choose_cpu_precision` (measured once per machine).  On a GPU the card
    decides (:func:`collapse_utils.precision.choose`) and this is not read."""
    import torch

    if torch.cuda.is_available():
        return "fp32", {"how": "a GPU: the card decides"}
    if s["cpu_precision"] == "auto" and backend.kind == "tiny":
        return "fp32", {"precision": "fp32", "how": "backend tiny: fp32"}
    return choose_cpu_precision(s["cpu_precision"], backend.base.config)


def _run(s, backend, load_seconds, choice, seed, run_dir, resume, progress,
         stop_after) -> RunOutput:
    planned = batch_plan(s, backend.base)   # on a GPU, the batches that fit its memory
    steps = LMRun(s, backend, planned, seed, progress)
    zero_shot = _zero_shot(backend, steps.test, planned["eval_batch"])
    sub = Path(run_dir) / backend.kind if run_dir is not None else None
    result = run_generations(
        steps.fit, steps.sample, steps.real, s["generations"], regime=steps.regime, seed=seed,
        measure=steps.measure, run_dir=sub, resume=resume, save_model=save_fitted,
        load_model=steps.load_model, progress=progress, stop_after=stop_after,
        desc=f"lm {s['regime']} seed {seed}")
    if stop_after is None and sub is not None:   # finished: its metrics hold what is read
        drop_weights(sub)
    return RunOutput(result.generations, result.metrics, backend.stand_in,
                     steps.facts(zero_shot, load_seconds, choice))


def _zero_shot(backend, test: np.ndarray, batch: int) -> float:
    """Test perplexity of the base model, once per backend and test set in a process."""
    memo = backend.__dict__.setdefault("_zero_shot", {})
    key = hashlib.sha256(np.ascontiguousarray(test).tobytes()).hexdigest()
    if key not in memo:
        memo[key] = perplexity(backend.base, test, batch)
    return memo[key]


register(Experiment(
    name="lm",
    summary="a pretrained LM fine-tuned on its own beam-search output (Fig. 1b/1c; OPT-125m on wikitext-2)",
    settings=SETTINGS,
    run=run_lm,
    check=check,
))
