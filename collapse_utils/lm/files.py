"""Files of a model on disk, without the device: weights saved quietly, a folder replaced whole.

The lowest module of the family: :mod:`~.backends` (loading models) and :mod:`~.store`
(saving generations) both use it, and it imports neither.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


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
