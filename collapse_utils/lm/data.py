"""The text of the language-model chapter: corpora as rows, rows as 64-token blocks.

The paper's code groups text as Hugging Face's ``run_clm`` does: tokenize every row,
concatenate, cut into blocks of ``block_size`` tokens (labels = inputs), drop the
remainder.  Three corpora give rows per split (train / validation / test):

* wikitext-2-raw-v1 from the Hub (:func:`wikitext2_rows`, the paper's data);
* a local folder with ``train.txt``, ``validation.txt`` (or ``valid.txt``) and
  ``test.txt``, one row per line (:func:`folder_rows`);
* offline English prose that ships with Python (:func:`python_docs_rows`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..loop import rng_for

SPLITS = ("train", "validation", "test")
HUB_DATASET = ("Salesforce/wikitext", "wikitext-2-raw-v1")

#: wikitext-2-raw-v1 with OPT's tokenizer, grouped as ``run_clm`` groups it: GPT-2 BPE (OPT's)
#: gives 2,318 / 240 / 279 blocks of 1,024 tokens (train / validation / test), and OPT's
#: tokenizer adds one ``</s>`` per row (36,718 / 3,760 / 4,358 rows).  Used where the real
#: data are not on disk (to within one 1,024-token remainder per split).
_WT2_1024_BLOCKS = {"train": 2_318, "validation": 240, "test": 279}
_WT2_ROWS = {"train": 36_718, "validation": 3_760, "test": 4_358}
WIKITEXT2_BLOCKS = {s: (_WT2_1024_BLOCKS[s] * 1024 + _WT2_ROWS[s]) // 64 for s in SPLITS}

PYTHON_DOCS = "Python's documentation prose (pydoc_data.topics, code and grammar lines dropped)"


def token_dtype(vocab_size: int):
    """The most compact integer type for token ids: uint16 up to 65,536 ids, else int32."""
    return np.uint16 if vocab_size <= 2**16 else np.int32


def blocks_from_token_lists(token_lists, block_size: int = 64, dtype=np.int32) -> np.ndarray:
    """Concatenate tokenized rows and cut them into blocks of ``block_size`` (remainder dropped)."""
    if block_size < 1:
        raise ValueError(f"block_size must be a positive integer; got {block_size!r}")
    flat = np.fromiter((t for row in token_lists for t in row), dtype=np.int64)
    n = len(flat) // block_size
    return flat[: n * block_size].reshape(n, block_size).astype(dtype)


def subset_blocks(blocks: np.ndarray, k: int, split: str) -> np.ndarray:
    """``k`` blocks of one split chosen at random, in their order; 0 = all.

    The choice is part of the data, not of a run: it is the same for every seed (as
    the pretrained weights are), from the real-data stream of seed 0, one key per split.
    """
    if k == 0 or k >= len(blocks):
        return blocks
    rng = rng_for(0, "real", SPLITS.index(split))
    return blocks[np.sort(rng.choice(len(blocks), k, replace=False))]


def python_docs_rows() -> dict[str, list[str]]:
    """English prose that ships with every Python: the paragraphs of ``pydoc_data.topics``.

    Each topic is cut at blank lines into paragraphs; paragraphs with an indented line
    (code examples, grammar rules, tables) are dropped and the wrapped lines of the
    others joined, so a row is one paragraph of prose.  Topics are sorted by name;
    every tenth goes to test, every tenth shifted by five to validation, the rest to
    train, so no topic's text is in two splits.
    """
    from pydoc_data.topics import topics

    rows: dict[str, list[str]] = {s: [] for s in SPLITS}
    for k, name in enumerate(sorted(topics)):
        split = "test" if k % 10 == 0 else "validation" if k % 10 == 5 else "train"
        for para in topics[name].split("\n\n"):
            lines = [line for line in para.split("\n") if line.strip()]
            if lines and not any(line[0].isspace() for line in lines):
                rows[split].append(" ".join(line.strip() for line in lines) + "\n")
    return rows


def folder_rows(folder) -> dict[str, list[str]]:
    """Rows of a local corpus: ``train.txt``, ``validation.txt`` (or ``valid.txt``), ``test.txt``.

    One row per line, as wikitext-2's own files hold them.  Raises ValueError in one
    line naming the setting ``corpus`` when the folder or a file is missing.
    """
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ValueError(f"corpus must be a folder with train.txt, validation.txt (or valid.txt) "
                         f"and test.txt; {str(path)!r} is not a folder")
    names = {"train": ["train.txt"], "validation": ["validation.txt", "valid.txt"],
             "test": ["test.txt"]}
    rows = {}
    for split, options in names.items():
        found = next((path / n for n in options if (path / n).is_file()), None)
        if found is None:
            raise ValueError(f"corpus {str(path)!r} has no {' or '.join(options)}")
        rows[split] = found.read_text(encoding="utf-8").splitlines(keepends=True)
    return rows


def wikitext2_rows() -> dict[str, list[str]]:
    """The rows of wikitext-2-raw-v1 per split (from the datasets cache, or downloaded)."""
    from datasets import load_dataset

    ds = load_dataset(*HUB_DATASET)
    return {split: list(ds[split]["text"]) for split in SPLITS}


def tokenize_rows(tokenizer, rows: list[str], chunk: int = 4096) -> list[list[int]]:
    """Token ids of each row, special tokens included (OPT prepends ``</s>``), as ``run_clm`` does."""
    out: list[list[int]] = []
    for start in range(0, len(rows), chunk):
        out.extend(tokenizer(rows[start:start + chunk])["input_ids"])
    return out


def blocks_of_rows(tokenizer, rows: dict, block_size: int = 64) -> dict:
    """Every split's rows tokenized, concatenated and cut into blocks of ``block_size``."""
    dtype = token_dtype(len(tokenizer))
    return {split: blocks_from_token_lists(tokenize_rows(tokenizer, rows[split]), block_size, dtype)
            for split in rows}
