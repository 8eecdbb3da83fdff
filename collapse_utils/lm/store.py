"""Saving and loading one generation: best weights, the blocks it trained on, its history.

A generation-0 model shared by several runs (same data, epochs and seed: replace and
the ablations of one seed) is trained once and saved once, in a folder of its own
under the cache; each run's ``model_0000`` then holds a pointer to it
(``weights_from.txt``) instead of another copy of the weights.  That folder
(:func:`generation_0_folder`) also keeps what every run sharing the model would compute again.
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .backends import accelerator, device
from .files import quiet, replace_folder, save_weights  # noqa: F401  (re-exported)

POINTER = "weights_from.txt"


@dataclass
class FittedLM:
    """What one generation hands to the next: its best network and the blocks it trained on."""

    model: Any
    train: np.ndarray
    history: dict = field(default_factory=dict)
    weights_from: str | None = None   # a shared folder that already holds these weights


def load_weights(folder: Path):
    """The fp32 model saved in ``folder``, on the device, in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM

    with quiet():
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                                     local_files_only=True)
    return model.to(device()).eval()


def save_fitted(fitted: FittedLM, path: Path, keep_checkpoints: bool = False) -> None:
    """Save one generation (weights as safetensors, or a pointer; token ids as compact .npy).

    Unless ``keep_checkpoints``, the *weights* of generations other than 0 and the two
    newest are deleted (a resumed run needs generation 0 and the newest); every
    generation's token ids and history stay.
    """
    path = Path(path)
    if not accelerator().is_main_process:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp"))  # one per process
    try:
        if fitted.weights_from:
            (tmp / POINTER).write_text(fitted.weights_from)
        else:
            save_weights(fitted.model, tmp)
        np.save(tmp / "train_ids.npy", np.asarray(fitted.train))
        (tmp / "history.json").write_text(json.dumps(fitted.history))
        replace_folder(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not keep_checkpoints:
        drop_weights(path.parent, before=int(path.name.split("_")[-1]) - 1)


def drop_weights(run_dir: Path, before: int | None = None) -> None:
    """Delete the weights of the generations after 0 (and before ``before``, when given) in
    ``run_dir``; every generation's token ids and training history stay."""
    for old in Path(run_dir).glob("model_[0-9][0-9][0-9][0-9]"):
        i = int(old.name.split("_")[-1])
        if 0 < i and (before is None or i < before):
            for f in old.iterdir():
                if f.name not in ("train_ids.npy", "history.json"):
                    f.unlink()


def load_fitted(path: Path) -> FittedLM:
    """Inverse of :func:`save_fitted` (weights in fp32 on the device)."""
    path = Path(path)
    pointer = path / POINTER
    source = pointer.read_text().strip() if pointer.is_file() else None
    return FittedLM(load_weights(Path(source) if source else path),
                    np.load(path / "train_ids.npy"),
                    json.loads((path / "history.json").read_text()), source)


# ----------------------------------------------------------------------------- generation 0, shared
#: the real training blocks' perplexities under generation 0, beside its weights
REAL_PERPLEXITIES = "real_perplexities.npy"
#: the settings that make two runs' generation-0 models one and the same
GENERATION_0_KEYS = ("model", "corpus", "block_size", "train_blocks", "val_blocks", "test_blocks",
                     "eval_batch", "batch_size", "lr_min", "weight_decay", "micro_batch",
                     "tiny_vocab", "tiny_layers", "tiny_width", "cpu_precision")


def generation_0_folder(s: dict, kind: str, epochs: int, lr: float, seed: int) -> Path:
    """Where the generation-0 model of these data, epochs and seed lives (shared by runs);
    ``s["cpu_precision"]`` is the precision that runs, not ``auto``."""
    from ..experiments import cache_root, source_digest

    blob = json.dumps({"s": {k: s[k] for k in GENERATION_0_KEYS}, "kind": kind, "epochs": epochs,
                       "lr": lr, "seed": seed, "source": source_digest("collapse_utils.lm")},
                      sort_keys=True)
    return cache_root() / "lm" / "generation-0" / hashlib.sha256(blob.encode()).hexdigest()[:16]


def save_npy(path: Path, values: np.ndarray) -> None:
    """``np.save`` written atomically (a reader finds the whole file or none)."""
    from ..loop import atomic_write_bytes

    buf = io.BytesIO()
    np.save(buf, np.asarray(values))
    atomic_write_bytes(path, buf.getvalue())


def load_generation_0(folder: Path, real: np.ndarray) -> FittedLM | None:
    """The shared generation-0 model saved in ``folder``, or None when there is none yet or it
    cannot be read (then it is trained again, and a line says so)."""
    from ..loop import warn

    if not (folder / "history.json").is_file():
        return None
    try:
        history = json.loads((folder / "history.json").read_text())
        return FittedLM(load_weights(folder), real, history, str(folder))
    except Exception as err:   # a truncated weights file, a half-written history
        warn(f"{folder} cannot be loaded ({type(err).__name__}: {err}); training generation 0 again")
        return None


def save_generation_0(fitted: FittedLM, folder: Path) -> None:
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
