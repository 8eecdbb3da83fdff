"""One run of the language-model experiment, as an object whose methods are its steps.

:class:`LMRun` holds what the steps share (the backend, the data splits, the decoding
settings, the generation-0 model and its folder) and gives the core loop
(:func:`collapse_utils.loop.run_generations`) its ``fit``, ``sample`` and ``measure``:

* :meth:`LMRun.fit`      fine-tune the pretrained model on one generation's blocks; generation 0
                         is trained once and shared (:meth:`LMRun.share_generation_0`);
* :meth:`LMRun.sample`   write the next data set: a continuation of every block;
* :meth:`LMRun.measure`  the generation's metrics (test perplexity, Fig. 1b/1c, tails, example,
                         and ``own_perplexity``: the writer's perplexity on the blocks it wrote);
* :meth:`LMRun.facts`    what the record says of the run (model, label, precision, timings).

A generation-0 model shared by several runs (same data, epochs and seed) lives in a folder
of its own (:func:`~.store.generation_0_folder`) with what every run would otherwise compute
again: its continuations of the real blocks, its measurement, the example's continuation.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from ..loop import atomic_write_bytes, folder_lock
from .evaluate import (PERPLEXITY_BIN_EDGES, distinct_share, perplexity, perplexity_summary,
                       rare_token_types, sequence_perplexities, tail_measures)
from .generate import generate_continuations
from .store import (REAL_PERPLEXITIES, FittedLM, generation_0_folder, load_fitted,
                    load_generation_0, load_weights, save_generation_0, save_npy)
from .train import device_facts, fine_tune
from .verify import GENERATION_0 as VERIFY_GENERATION_0
from .verify import PerplexityVerifier


def example_prompt(test: np.ndarray, tokenizer, block: int) -> np.ndarray:
    """A (1, block_size) prompt from the test split that starts at a word: the first token at or
    after the start of test block ``block`` (modulo the blocks) whose text begins with a space
    or a line break, and the block's length of tokens from there (the stream wraps around)."""
    n, size = test.shape
    flat = test.ravel()
    start = (block % n) * size
    for k in range(start, start + size):
        text = tokenizer.decode([int(flat[k])])
        if text[:1].isspace() and text.strip():
            start = k
            break
    index = (start + np.arange(size)) % flat.size
    return flat[index][None, :]


class LMRun:
    """The state one run's steps share; :meth:`fit`, :meth:`sample` and :meth:`measure` are the
    core loop's callbacks (see the module docstring)."""

    def __init__(self, s: dict, backend, planned: dict, seed: int, progress: bool = False):
        from .data import subset_blocks
        from .experiment import make_lm_regime, paper_epochs

        self.backend, self.progress = backend, progress
        self.lr = s["tiny_lr"] if backend.kind == "tiny" else s["lr"]
        self.epochs = s["epochs"] or paper_epochs(s["regime"])
        self.real = subset_blocks(backend.blocks["train"], s["train_blocks"], "train")
        self.val = subset_blocks(backend.blocks["validation"], s["val_blocks"], "validation")
        self.test = subset_blocks(backend.blocks["test"], s["test_blocks"], "test")
        if min(len(self.real), len(self.val), len(self.test)) == 0:
            raise ValueError("block_size must leave every data split at least one complete block")
        tok = self.tokenizer = backend.tokenizer
        eos = tok.eos_token_id if tok.eos_token_id is not None else 2
        pad = tok.pad_token_id if tok.pad_token_id is not None else eos
        self.decode_kw = dict(decoding=s["decoding"], beams=s["beams"], new_tokens=s["new_tokens"],
                              repetition_penalty=s["repetition_penalty"], top_p=s["top_p"],
                              eos_token_id=eos, pad_token_id=pad)
        self.rare = rare_token_types(self.real)
        self.real_rows = {row.tobytes() for row in self.real}
        self.example = example_prompt(self.test, tok, s["example_block"])
        self.gen0 = generation_0_folder(s, backend.kind, self.epochs, self.lr, seed)
        self.s = {**s, **planned}   # generation 0's folder is keyed by the settings as given
        self.seconds = {"fit": [], "sample": [], "measure": []}
        self.first: FittedLM | None = None        # generation 0's model, once fitted or read
        self.real_ppl: np.ndarray | None = None   # the real blocks' perplexities under it
        # a block's continuation under beam search or greedy decoding does not depend on the
        # rest of its batch (a test checks it), so one decoding of a model's whole training set
        # serves every subset a regime draws, and the example block rides along as one more row
        self.deterministic = s["decoding"] != "nucleus"
        self.decoded = hashlib.sha256(json.dumps(self.decode_kw, sort_keys=True).encode()
                                      ).hexdigest()[:12]
        self.ahead: dict = {}   # continuations decoded with a model's example, for its sample
        self.own: float | None = None   # the last sample's perplexity under the model that wrote it
        self.verifier = None
        if s["regime"] == "verify":
            self.verifier = PerplexityVerifier(s["verify_low"], s["verify_high"],
                                               self.first_model, self.real_perplexities,
                                               self.s["eval_batch"])
        self.regime = make_lm_regime(s["regime"], s["real_fraction"],
                                     accept=self.verifier.accept if self.verifier else None,
                                     max_rounds=s["max_rounds"])

    # ------------------------------------------------------------------ generation 0, shared
    def first_model(self):
        """Generation 0's network (read from its folder when this process has not fitted it)."""
        if self.first is None:
            self.first = FittedLM(load_weights(self.gen0), self.real, {}, str(self.gen0))
        return self.first.model

    def real_perplexities(self) -> np.ndarray:
        """The real blocks' perplexities under generation 0: saved beside its weights by its
        measurement (before its shared ``measure.json``), else scored once now and saved."""
        if self.real_ppl is None:
            path = self.gen0 / REAL_PERPLEXITIES
            values = np.load(path) if path.is_file() else None
            if values is None or len(values) != len(self.real):
                values = sequence_perplexities(self.first_model(), self.real, self.s["eval_batch"])
                if self.gen0.is_dir():
                    save_npy(path, values)
            self.real_ppl = values
        return self.real_ppl

    def share_generation_0(self, fit_seed: int) -> FittedLM:
        """Generation 0: trained once, by the first run (or process) to get here, and saved
        where every run with the same data, epochs and seed finds it."""
        with folder_lock(self.gen0.parent, f"{self.gen0.name}.lock"):
            fitted = load_generation_0(self.gen0, self.real)
            if fitted is None:
                fitted = self.train(self.real, fit_seed)
                save_generation_0(fitted, self.gen0)
        self.first = fitted
        return fitted

    # ------------------------------------------------------------------ fit
    def train(self, data, fit_seed: int) -> FittedLM:
        s = self.s
        model, history = fine_tune(
            self.backend.base, data, self.val, epochs=self.epochs, lr=self.lr, lr_min=s["lr_min"],
            batch_size=s["batch_size"], weight_decay=s["weight_decay"],
            micro_batch=s["micro_batch"], eval_batch=s["eval_batch"], seed=fit_seed,
            progress=self.progress)
        return FittedLM(model, np.asarray(data), history)

    def fit(self, data, rng) -> FittedLM:
        t = time.perf_counter()
        fit_seed = int(rng.integers(2**31))
        fitted = self.share_generation_0(fit_seed) if data is self.real else self.train(data, fit_seed)
        self.seconds["fit"].append(round(time.perf_counter() - t, 2))
        return fitted

    def load_model(self, path) -> FittedLM:
        fitted = load_fitted(path)
        if Path(path).name == "model_0000":   # generation 0, restored by a resumed run
            self.first = fitted
        return fitted

    # ------------------------------------------------------------------ write the next data set
    def decode(self, model, prompts, seed: int = 0, batch: int | None = None) -> np.ndarray:
        return generate_continuations(model, prompts, batch_size=batch or self.s["gen_batch"],
                                      seed=seed, progress=self.progress, **self.decode_kw)

    def continue_all(self, fitted: FittedLM, with_example: bool = False):
        """(continuations of every block ``fitted`` trained on, the example's or None), one
        decoding; generation 0's are kept beside its weights for every run that shares it."""
        n = len(fitted.train)
        path = self.gen0 / f"continued-{self.decoded}.npy"
        shared = self.first is fitted and self.gen0.is_dir()
        if shared and path.is_file():
            return np.load(path), (self.continue_example(fitted.model) if with_example else None)
        prompts = np.concatenate([fitted.train, self.example]) if with_example else fitted.train
        out = self.decode(fitted.model, prompts)
        if shared:
            save_npy(path, out[:n])
        return out[:n], (out[n] if with_example else None)

    def continue_example(self, model, example_seed: int = 0) -> np.ndarray:
        """The example block's continuation, decoded on its own."""
        return self.decode(model, self.example, seed=example_seed, batch=1)[0]

    def continues(self, index: int, n: int) -> bool:
        """Whether generation ``index + 1`` continues blocks of generation ``index``'s set."""
        s = self.s
        kept = 0 if s["regime"] in ("replace", "verify") else round(s["real_fraction"] * n)
        return self.deterministic and index < s["generations"] and kept < n

    def sample(self, fitted: FittedLM, m: int, rng) -> np.ndarray:
        """Continuations of m of the training blocks: all of them, in order, when m is the set.
        A further round of verify continues the blocks its last round wrote instead."""
        t = time.perf_counter()
        n = len(fitted.train)
        prompts = self.verifier.previous_round() if self.verifier is not None else None
        if prompts is None or len(prompts) != m:
            index = np.arange(n) if m == n else np.sort(rng.choice(n, m, replace=m > n))
            seed = int(rng.integers(2**31))
            if self.deterministic and self.ahead.get("model") is fitted:
                out = self.ahead.pop("blocks")[index]
            elif self.deterministic and self.first is fitted:
                out = self.continue_all(fitted)[0][index]
            else:
                out = self.decode(fitted.model, fitted.train[index], seed=seed)
        else:
            out = self.decode(fitted.model, prompts, seed=int(rng.integers(2**31)))
        self.ahead.clear()
        self.own = perplexity(fitted.model, out, self.s["eval_batch"])
        self.seconds["sample"].append(round(time.perf_counter() - t, 2))
        return out

    # ------------------------------------------------------------------ measure
    def example_values(self, fitted: FittedLM, index: int, example_seed: int) -> dict:
        """The continuation of the example block; generation 0's is computed once per decoding
        and shared by every run on the same generation-0 model (beside its weights).  When the
        next generation continues this one's blocks, the example is decoded with them."""
        key = json.dumps({**self.decode_kw, "prompt": self.example.tolist(), "seed": example_seed})
        path = self.gen0 / f"example-{hashlib.sha256(key.encode()).hexdigest()[:12]}.json"
        if index == 0 and path.is_file():
            return json.loads(path.read_text())
        if self.continues(index, len(fitted.train)):
            blocks, cont = self.continue_all(fitted, with_example=True)
            self.ahead.update(model=fitted, blocks=blocks)
        else:
            cont = self.continue_example(fitted.model, example_seed)
        values = {"example_continuation": self.tokenizer.decode([int(t) for t in cont]),
                  "example_distinct": distinct_share(cont)}
        if index == 0 and self.gen0.is_dir():
            atomic_write_bytes(path, json.dumps(values).encode())
        return values

    def measure(self, g) -> dict:
        from .experiment import with_examples

        t = time.perf_counter()
        s, fitted = self.s, g.model
        example_seed = int(g.rng.integers(2**31))
        shared = self.gen0 / "measure.json"
        scored, verified = None, {}
        if self.verifier is not None:
            verified = dict(VERIFY_GENERATION_0)
            if g.index > 0:   # the kept blocks' perplexities were computed by the verifier
                scored, verified = self.verifier.finish(g.train)
        if g.index == 0 and shared.is_file():
            values = json.loads(shared.read_text())
        else:
            values = self.measure_data(g, scored)
        values.update(verified)
        # the writer's perplexity on what it wrote (none at generation 0: real data)
        values["own_perplexity"] = None if g.index == 0 else self.own
        if with_examples(s):   # the seed is drawn either way, so the other numbers do not move
            values.update(self.example_values(fitted, g.index, example_seed))
        values.update({
            "best_val_loss": fitted.history["best_val_loss"],
            "best_epoch": fitted.history["best_epoch"],
            "val_loss": fitted.history["val_loss"],
            "train_loss": fitted.history["train_loss"],
            "train_blocks": int(len(g.train)),
            "real_blocks": int(sum(row.tobytes() in self.real_rows for row in g.train)),
        })
        self.seconds["measure"].append(round(time.perf_counter() - t, 2))
        return values

    def measure_data(self, g, scored=None) -> dict:
        """Test perplexity, the training data's perplexities under generation 0 (Fig. 1b/1c),
        and the written blocks' tails; generation 0's are saved beside its weights for the runs that share it."""
        eval_batch = self.s["eval_batch"]
        written = g.train if g.new is None else g.new
        if scored is None:
            scored = sequence_perplexities(g.first_model.model, g.train, eval_batch)
        values = {"test_perplexity": perplexity(g.model.model, self.test, eval_batch),
                  **perplexity_summary(scored, g.rng), **tail_measures(written, self.rare)}
        if g.index == 0:
            self.real_ppl = scored
            if self.gen0.is_dir():
                save_npy(self.gen0 / REAL_PERPLEXITIES, scored)   # before measure.json
                atomic_write_bytes(self.gen0 / "measure.json", json.dumps(values).encode())
        return values

    # ------------------------------------------------------------------ the record's facts
    def facts(self, zero_shot: float, load_seconds: float, precision_choice: dict) -> dict:
        backend = self.backend
        facts = {"n_params": backend.n_params, "epochs": self.epochs,
                 "zero_shot_perplexity": zero_shot,
                 "example_prompt": self.tokenizer.decode([int(t) for t in self.example[0]]),
                 "perplexity_bin_edges": PERPLEXITY_BIN_EDGES.tolist(), "backend": backend.kind,
                 "model_name": backend.model_name, "label": backend.label,
                 "data_name": backend.data_name,
                 "real_blocks_per_split": [len(self.real), len(self.val), len(self.test)],
                 **device_facts(backend.base), "precision_choice": precision_choice,
                 "batches": {k: self.s[k] for k in ("micro_batch", "eval_batch", "gen_batch")},
                 "seconds": {"backend_load": round(load_seconds, 2), **self.seconds}}
        if self.verifier is not None and self.s["generations"] > 0:
            # the accepted perplexities (None: no limit)
            facts["verify_band"] = [v if np.isfinite(v) else None for v in self.verifier.band()]
        return facts
