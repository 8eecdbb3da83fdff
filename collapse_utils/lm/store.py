"""Saving and loading one generation: best weights, the blocks it trained on, its history.

A generation-0 model shared by several runs (same data, epochs and seed: replace and
the ablations of one seed) is trained once and saved once, in a folder of its own
under the cache; each run's ``model_0000`` then holds a pointer to it
(``weights_from.txt``) instead of another copy of the weights.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .backends import accelerator, device

POINTER = "weights_from.txt"


@dataclass
class FittedLM:
    """What one generation hands to the next: its best network and the blocks it trained on."""

    model: Any
    train: np.ndarray
    history: dict = field(default_factory=dict)
    weights_from: str | None = None   # a shared folder that already holds these weights


@contextlib.contextmanager
def quiet():
    """No transformers progress bars inside the block (they are noise in the chapter; the
    GGUF loader's own bar is switched off by ``backends._gguf_load``)."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def save_weights(model, folder: Path) -> None:
    """``save_pretrained`` without progress bars."""
    with quiet():
        model.save_pretrained(folder)


def load_weights(folder: Path):
    """The fp32 model saved in ``folder``, on the device, in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM

    with quiet():
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                                     local_files_only=True)
    return model.to(device()).eval()


def replace_folder(tmp: Path, path: Path) -> None:
    """Move the finished folder ``tmp`` to ``path``: the old folder is renamed aside before the
    new one takes its name and deleted after, so a reader finds a whole folder or none."""
    old = None
    if path.exists():
        old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old"))
        os.replace(path, old / path.name)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


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
