"""OPT-125m fine-tuned on wikitext-2, generation after generation (Shumailov et al. 2024, Fig. 1).

The paper's language-model experiment.  Each generation fine-tunes the *pretrained*
``facebook/opt-125m`` (Zhang et al. 2022) on a training set of 64-token blocks:
generation 0 on the real wikitext-2 train split (Merity et al. 2016), every
later generation on the continuations that the previous generation's model wrote
(5-way beam search, exactly 64 new tokens for every block of its own training set).
The checkpoint with the best loss on the *real* validation split is the one that
writes the next data set and is evaluated.

Settings of the paper (its Sec. "Model collapse in language models" and public code):

* (b) ``regime="replace"``: 5 epochs, no original data after generation 0;
* (c) ``regime="keep-real"``: 10 epochs, a random 10% of each generation's
  training blocks are original blocks (:func:`~collapse_utils.regimes.keep_real`);
* AdamW, lr 2e-5, batch 128, cosine schedule to 1e-6, weight decay 0.01;
* ``repetition_penalty`` 1.0 (none) in the main runs, 2.0 in the ablation; the public
  code hard-codes 3.0.

Settings that are not the paper's protocol: ``train_blocks``/``val_blocks``/``test_blocks``
(a fixed random subset of each split; 0 = all), ``epochs`` (0 = the paper's 5 or 10),
``generations`` (the last generation's index), ``runs`` (how many seeds the chapter runs; the
command line runs one per ``--seed``), ``gen_batch``/``eval_batch``/``micro_batch`` (memory),
``backend`` (auto | hub | stand-in), ``stand_in_*`` (the stand-in's size and learning rate),
``cpu_threads``.

Everything runs through the shared generational loop
(:func:`collapse_utils.loop.run_generations`): the "model" handed from one
generation to the next is a :class:`FittedLM`, which carries the network *and* the
blocks it was trained on, because those blocks are the prompts of the next data set.

Offline (``HF_HUB_OFFLINE=1``, always in CI) a labelled stand-in runs the same code:
a tiny OPT built from ``OPTConfig`` (random init, so generation 0 trains it from
scratch), a byte-level BPE tokenizer trained on the fly with ``tokenizers``, and the
documentation text that ships with Python (``pydoc_data.topics``) split into
train/validation/test.  The decision is made from the environment and a 3-second
socket probe, so no code path waits on the network.

Heavy imports (torch, transformers, datasets, accelerate) happen inside functions, so
``python -m collapse_utils list`` stays fast.
"""
from __future__ import annotations

import copy
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .experiments import Experiment, RunOutput, register
from .hub import hub_reachable, offline_reason
from .loop import atomic_write_bytes, run_generations
from .regimes import make_regime

PAPER = {
    "zero_shot_perplexity": 115.0,       # OPT-125m on wikitext-2 test, no fine-tuning
    "fine_tuned_perplexity": 34.0,       # generation 0, fine-tuned on real data
    "rise_replace": (20.0, 28.0),        # setting (b): rise of test perplexity over generations
}
HUB_MODEL = "facebook/opt-125m"
HUB_DATASET = ("Salesforce/wikitext", "wikitext-2-raw-v1")
SPLITS = ("train", "validation", "test")
#: 64-token blocks of wikitext-2-raw-v1 with OPT's tokenizer, as run_clm groups them: GPT-2 BPE
#: (OPT's) gives 2,318 / 240 / 279 blocks of 1,024 tokens (train / validation / test), plus one
#: ``</s>`` per row (36,718 / 3,760 / 4,358 rows); used where the real data are not on disk
WIKITEXT2_BLOCKS = {"train": 37_650, "validation": 3_900, "test": 4_530}
#: log-spaced bin edges of the per-sequence perplexity histograms (Fig. 1b/1c)
PERPLEXITY_BIN_EDGES = np.logspace(0, 5, 61)
#: at most this many per-sequence perplexities are stored per generation
MAX_STORED_VALUES = 5000

# ----------------------------------------------------------------------------- settings
_COMMON = {
    "model": HUB_MODEL,
    "backend": "auto",          # auto: the Hub if reachable, else the stand-in
    "regime": "replace",
    "real_fraction": 0.1,       # keep-real: share of original blocks per generation
    "epochs": 0,                # 0: the paper's choice, 5 for replace and 10 for keep-real
    "lr": 2e-5,
    "lr_min": 1e-6,
    "weight_decay": 0.01,
    "repetition_penalty": 1.0,
    "block_size": 64,
    "beams": 5,
    "new_tokens": 64,
    "example_block": 0,         # index of the test block whose continuation is shown per generation
    "micro_batch": 0,           # 0: no gradient accumulation
    "stand_in_vocab": 1024,
    "stand_in_layers": 2,
    "stand_in_width": 64,
    "stand_in_lr": 5e-3,
    "cpu_threads": 0,           # torch threads on CPU; 0: 1 for the stand-in's tiny model, else torch's default
}
LM_SETTINGS = {
    "smoke": {**_COMMON, "backend": "stand-in", "generations": 3, "runs": 1,
              "train_blocks": 40, "val_blocks": 16, "test_blocks": 32,
              "batch_size": 8, "gen_batch": 512, "eval_batch": 256},
    "default": {**_COMMON, "generations": 3, "runs": 1,
                "train_blocks": 32, "val_blocks": 16, "test_blocks": 32,
                "batch_size": 4, "gen_batch": 32, "eval_batch": 16,
                "stand_in_vocab": 2048, "stand_in_width": 96},
    "paper": {**_COMMON, "generations": 9, "runs": 5,
              "train_blocks": 0, "val_blocks": 0, "test_blocks": 0,
              "batch_size": 128, "gen_batch": 512, "eval_batch": 256,
              "stand_in_vocab": 4096, "stand_in_layers": 4, "stand_in_width": 256,
              "stand_in_lr": 1e-3},
}
CHOICES = {"regime": ("replace", "keep-real"), "backend": ("auto", "hub", "stand-in")}


def paper_epochs(regime: str) -> int:
    """Epochs per generation in the paper: 5 in setting (b) (replace), 10 in (c) (keep-real)."""
    return 5 if regime == "replace" else 10


def check_settings(s: dict) -> None:
    """Raise ValueError naming the first bad setting and what is allowed."""
    for key, allowed in CHOICES.items():
        if s[key] not in allowed:
            raise ValueError(f"{key} must be one of {', '.join(allowed)}; got {s[key]!r}")
    for key in ("block_size", "beams", "new_tokens", "batch_size", "gen_batch", "eval_batch",
                "stand_in_vocab", "stand_in_layers", "stand_in_width"):
        if int(s[key]) != s[key] or s[key] < 1:
            raise ValueError(f"{key} must be a positive integer; got {s[key]!r}")
    for key in ("generations", "epochs", "train_blocks", "val_blocks", "test_blocks",
                "micro_batch", "example_block", "cpu_threads", "runs"):
        if int(s[key]) != s[key] or s[key] < 0:
            raise ValueError(f"{key} must be a non-negative integer; got {s[key]!r}")
    if s["new_tokens"] != s["block_size"]:
        raise ValueError(f"new_tokens must equal block_size ({s['block_size']}), so that each "
                         f"continuation is one block of the next data set; got {s['new_tokens']}")
    if not 0.0 <= s["real_fraction"] <= 1.0:
        raise ValueError(f"real_fraction must lie in [0, 1]; got {s['real_fraction']!r}")
    if not s["repetition_penalty"] > 0:
        raise ValueError(f"repetition_penalty must be > 0 (1.0 = none); got {s['repetition_penalty']!r}")
    for key in ("lr", "lr_min", "stand_in_lr"):
        if not s[key] > 0:
            raise ValueError(f"{key} must be > 0; got {s[key]!r}")
    if s["weight_decay"] < 0:
        raise ValueError(f"weight_decay must be >= 0; got {s['weight_decay']!r}")
    if s["stand_in_width"] % 16:
        raise ValueError(f"stand_in_width must be a multiple of 16; got {s['stand_in_width']}")


# ----------------------------------------------------------------------------- data
def token_dtype(vocab_size: int):
    """The most compact integer type for token ids: uint16 below 65536 (OPT: 50272), else int32."""
    return np.uint16 if vocab_size <= 2**16 else np.int32


def blocks_from_token_lists(token_lists, block_size: int = 64, dtype=np.int32) -> np.ndarray:
    """Concatenate tokenized rows and cut them into blocks of ``block_size`` (remainder dropped).

    The grouping of Hugging Face's ``run_clm`` that the paper's code uses; labels are
    the inputs themselves (the model shifts them by one).
    """
    if block_size < 1:
        raise ValueError(f"block_size must be a positive integer; got {block_size!r}")
    flat = np.fromiter((t for row in token_lists for t in row), dtype=np.int64)
    n = len(flat) // block_size
    return flat[: n * block_size].reshape(n, block_size).astype(dtype)


def subset_blocks(blocks: np.ndarray, k: int, salt: int) -> np.ndarray:
    """``k`` blocks chosen at random (fixed by ``salt``, the same for every seed) in order; 0 = all."""
    if k == 0 or k >= len(blocks):
        return blocks
    index = np.sort(np.random.default_rng([20240724, salt]).choice(len(blocks), k, replace=False))
    return blocks[index]


def stand_in_rows() -> dict[str, list[str]]:
    """Python's own documentation text (``pydoc_data.topics``) as train/validation/test rows.

    Topics are sorted by name; every tenth topic goes to test, every tenth shifted by five
    to validation, the rest to train, so no topic's text is in two splits.  Rows are the
    non-empty lines.
    """
    from pydoc_data.topics import topics

    rows: dict[str, list[str]] = {s: [] for s in SPLITS}
    for k, name in enumerate(sorted(topics)):
        split = "test" if k % 10 == 0 else "validation" if k % 10 == 5 else "train"
        rows[split].extend(line for line in topics[name].split("\n") if line.strip())
    return rows


def train_stand_in_tokenizer(rows: list[str], vocab_size: int):
    """A byte-level BPE tokenizer of ``vocab_size`` tokens trained on ``rows``, wrapped for transformers.

    Id 0 is ``</s>`` (beginning and end of sequence, as in OPT), id 1 is ``<pad>``; like
    OPT's tokenizer it prepends ``</s>`` to every encoded row.
    """
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(rows, vocab_size=vocab_size, min_frequency=2,
                            special_tokens=["</s>", "<pad>"], show_progress=False)
    raw = bpe._tokenizer
    raw.post_processor = TemplateProcessing(single="</s> $A", special_tokens=[("</s>", 0)])
    return PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="</s>", eos_token="</s>",
                                   pad_token="<pad>")


def tokenize_rows(tokenizer, rows: list[str], chunk: int = 4096) -> list[list[int]]:
    """Token ids of each row, special tokens included (OPT prepends ``</s>``), as ``run_clm`` does."""
    out: list[list[int]] = []
    for start in range(0, len(rows), chunk):
        out.extend(tokenizer(rows[start:start + chunk])["input_ids"])
    return out


# ----------------------------------------------------------------------------- backend
@dataclass
class Backend:
    """The tokenizer, the base (pretrained, or random-init stand-in) model and the blocked splits."""

    kind: str                  # "hub" or "stand-in"
    tokenizer: Any
    base: Any                  # the model every generation starts from (on the device, eval mode)
    blocks: dict               # split -> (n, block_size) integer array
    stand_in: str | None
    model_name: str
    n_params: int = 0


def _device():
    import torch

    return torch.device(accelerator().device) if torch.cuda.is_available() else torch.device("cpu")


_ACCELERATOR = None


def accelerator():
    """One ``accelerate.Accelerator`` per process: device placement and, under ``accelerate launch``,
    data-parallel training over several GPUs.  Mixed precision is explicit (bf16 autocast on GPU)."""
    global _ACCELERATOR
    if _ACCELERATOR is None:
        from accelerate import Accelerator

        _ACCELERATOR = Accelerator()
    return _ACCELERATOR


def _autocast():
    import contextlib

    import torch

    if torch.cuda.is_available():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def load_pretrained(name: str):
    """(tokenizer, fp32 model in eval mode on the device) of a pretrained causal LM.

    ``name`` is a Hub id or a local folder.  The local cache is tried first; the network
    only when no offline variable is set and the Hub answers a 3-second probe; raises
    OSError otherwise, quickly.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    reason = offline_reason()
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32, local_files_only=True)
    except OSError:
        if os.path.isdir(name) or reason or not hub_reachable():
            raise OSError(f"{name} is not on disk and the Hub cannot be reached "
                          f"({reason or 'no answer from huggingface.co'})") from None
        tokenizer = AutoTokenizer.from_pretrained(name)
        model = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32)
    return tokenizer, model.to(_device()).eval()


def wikitext2_rows() -> dict[str, list[str]]:
    """The rows of wikitext-2-raw-v1 per split (from the datasets cache, or downloaded)."""
    from datasets import load_dataset

    if offline_reason() is None and not hub_reachable():
        raise OSError("wikitext-2: no answer from huggingface.co")
    ds = load_dataset(*HUB_DATASET)
    return {split: list(ds[split]["text"]) for split in SPLITS}


def blocks_of_rows(tokenizer, rows: dict, block_size: int = 64) -> dict:
    """Every split's rows tokenized (special tokens included), concatenated and cut into blocks."""
    dtype = token_dtype(len(tokenizer))
    return {split: blocks_from_token_lists(tokenize_rows(tokenizer, rows[split]), block_size, dtype)
            for split in rows}


def load_hub_backend(s: dict, progress: bool = False, rows: dict | None = None) -> Backend:
    """The real pipeline: ``s['model']`` (pretrained, fp32 master weights) and wikitext-2-raw-v1
    (``rows`` replaces the data, for tests)."""
    tokenizer, model = load_pretrained(s["model"])
    blocks = blocks_of_rows(tokenizer, rows if rows is not None else wikitext2_rows(),
                            s["block_size"])
    return Backend("hub", tokenizer, model, blocks, None, s["model"],
                   sum(p.numel() for p in model.parameters()))


def stand_in_config(vocab_size: int, layers: int, width: int, block_size: int = 64):
    """A tiny ``OPTConfig`` of OPT-125m's shape (pre-LayerNorm, ReLU, learned positions)."""
    from transformers import OPTConfig

    return OPTConfig(vocab_size=vocab_size, hidden_size=width, word_embed_proj_dim=width,
                     num_hidden_layers=layers, num_attention_heads=max(1, width // 16),
                     ffn_dim=4 * width, max_position_embeddings=max(2 * block_size, 128),
                     dropout=0.1, attention_dropout=0.0, bos_token_id=0, eos_token_id=0,
                     pad_token_id=1, do_layer_norm_before=True)


def load_stand_in_backend(s: dict, reason: str) -> Backend:
    """The labelled stand-in: tiny random-init OPT, on-the-fly BPE, Python's documentation text.

    The random initial weights are fixed (not a function of the run's seed), as the
    pretrained weights of the real model are the same for every run.
    """
    import torch
    from transformers import OPTForCausalLM

    rows = stand_in_rows()
    tokenizer = train_stand_in_tokenizer(rows["train"], s["stand_in_vocab"])
    blocks = blocks_of_rows(tokenizer, rows, s["block_size"])
    config = stand_in_config(len(tokenizer), s["stand_in_layers"], s["stand_in_width"],
                             s["block_size"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7_000_001)
        model = OPTForCausalLM(config)
    model.to(_device()).eval()
    n = sum(p.numel() for p in model.parameters())
    text = (f"a tiny random-init OPT ({s['stand_in_layers']} layers, width {s['stand_in_width']}, "
            f"{n / 1e6:.2f} M parameters, trained from scratch) with a {len(tokenizer)}-token BPE, "
            f"on Python's pydoc_data.topics text, replaces {s['model']} on wikitext-2 ({reason})")
    return Backend("stand-in", tokenizer, model, blocks, text, "stand-in tiny OPT", n)


_BACKENDS: dict = {}


def choose_backend(s: dict) -> tuple[str, str | None]:
    """("hub", None) or ("stand-in", why), decided without touching the network when an
    offline variable is set or ``backend="stand-in"``."""
    mode = s["backend"]
    if mode == "stand-in":
        return "stand-in", "backend=stand-in, as always at the smoke profile"
    reason = offline_reason()
    if mode == "auto" and reason and not os.path.isdir(s["model"]) and not _in_hf_cache(s["model"]):
        return "stand-in", f"Hub offline: {reason}"
    return "hub", None


def load_backend(s: dict, progress: bool = False) -> Backend:
    """The Hub pipeline, or the stand-in when ``backend`` says so or the Hub cannot be reached.

    With an offline variable set (``HF_HUB_OFFLINE=1``) and the model not on disk the
    decision takes no network call at all.  Backends are kept per process, so several
    runs in one notebook load the model and tokenize the data once.
    """
    kind, reason = choose_backend(s)
    key = (kind, s["model"], s["block_size"]) if kind == "hub" else \
        (kind, s["stand_in_vocab"], s["stand_in_layers"], s["stand_in_width"], s["block_size"])
    if key in _BACKENDS:
        return _BACKENDS[key]
    if kind == "stand-in":
        backend = load_stand_in_backend(s, reason)
    else:
        try:
            backend = load_hub_backend(s, progress)
        except Exception as err:  # noqa: BLE001 - any failure to reach model or data: stand-in
            if s["backend"] == "hub":
                raise
            reason = f"model or data not reachable: {type(err).__name__}"
            backend = load_stand_in_backend(s, reason)
            key = ("stand-in", s["stand_in_vocab"], s["stand_in_layers"], s["stand_in_width"],
                   s["block_size"])
    _BACKENDS[key] = backend
    return backend


def _in_hf_cache(name: str) -> bool:
    """Whether the Hub cache holds a snapshot of model ``name`` (no network)."""
    home = Path(os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
                or Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "hub")
    return (home / f"models--{name.replace('/', '--')}" / "snapshots").is_dir()


# ----------------------------------------------------------------------------- model pieces
@dataclass
class FittedLM:
    """What one generation hands to the next: its best network and the blocks it was trained on."""

    model: Any
    train: np.ndarray
    history: dict = field(default_factory=dict)


def _shard(n: int):
    """This process's contiguous slice of n items (all of them on a single process)."""
    acc = accelerator()
    per = -(-n // acc.num_processes)
    return slice(min(n, acc.process_index * per), min(n, (acc.process_index + 1) * per)), per


def _gather_rows(local, n: int, per: int):
    """Concatenate every process's rows (padded to ``per``) in process order, cut to n."""
    import torch

    acc = accelerator()
    if acc.num_processes == 1:
        return local
    pad = per - local.shape[0]
    if pad:
        local = torch.cat([local, local[:1].expand(pad, *local.shape[1:])]) if local.shape[0] else \
            torch.zeros((per, *local.shape[1:]), dtype=local.dtype, device=local.device)
    return acc.gather(local)[:n]


def sequence_losses(model, blocks: np.ndarray, batch_size: int = 256):
    """Mean next-token loss of each block (its ``block_size - 1`` predictions), as a float64 array.

    Blocks are scored on their own (no context from outside the block), in
    ``batch_size`` chunks with bf16 autocast on GPU; the losses stay on the device
    until the end (one host transfer).
    """
    import torch
    import torch.nn.functional as F

    device = next(model.parameters()).device
    n = len(blocks)
    sl, per = _shard(n)
    x_all = torch.as_tensor(np.asarray(blocks[sl], dtype=np.int64), device=device)
    out = []
    was_training = model.training
    model.eval()
    with torch.inference_mode(), _autocast():
        for start in range(0, len(x_all), batch_size):
            x = x_all[start:start + batch_size]
            logits = model(input_ids=x).logits[:, :-1].float()
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1),
                                   reduction="none").view(x.shape[0], -1).mean(1)
            out.append(loss)
    local = torch.cat(out) if out else torch.zeros(0, device=device)
    model.train(was_training)
    return _gather_rows(local, n, per).double().cpu().numpy()


def perplexity(model, blocks: np.ndarray, batch_size: int = 256) -> float:
    """Perplexity exp(mean token loss) over all blocks: every block has the same number of
    predictions, so the mean over tokens is the mean of the per-block means."""
    return float(np.exp(sequence_losses(model, blocks, batch_size).mean()))


def sequence_perplexities(model, blocks: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """exp(mean token loss) of each block: the per-sequence perplexity of Fig. 1b/1c."""
    return np.exp(sequence_losses(model, blocks, batch_size))


def fine_tune(base, train: np.ndarray, val: np.ndarray, *, epochs: int, lr: float,
              lr_min: float = 1e-6, batch_size: int = 128, weight_decay: float = 0.01,
              micro_batch: int = 0, eval_batch: int = 256, seed: int = 0,
              progress: bool = False):
    """Fine-tune a copy of ``base`` on ``train`` blocks; return (best model, history).

    AdamW (``lr``, ``weight_decay``), batches of ``batch_size`` blocks (split into
    ``micro_batch`` pieces for gradient accumulation when memory is short), a cosine
    schedule from ``lr`` to ``lr_min`` over all steps, bf16 autocast on GPU.  The
    validation loss is measured after every epoch and the weights of the best epoch
    are returned, as the paper keeps the best checkpoint on the real validation split.
    The training loss is accumulated on the device: no host synchronisation inside an
    epoch.  Under ``accelerate launch`` each batch is split across the processes.
    """
    import torch

    acc = accelerator()
    device = acc.device if torch.cuda.is_available() else torch.device("cpu")
    model = copy.deepcopy(base).to(device)
    model.train()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    n = len(train)
    steps_per_epoch = max(1, -(-n // batch_size))
    total = steps_per_epoch * epochs
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay,
                            fused=device.type == "cuda")
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total, 1), eta_min=lr_min)
    wrapped, opt = acc.prepare(model, opt) if acc.num_processes > 1 else (model, opt)
    data = torch.as_tensor(np.asarray(train, dtype=np.int64), device=device)
    history = {"val_loss": [], "train_loss": [], "best_epoch": -1, "steps": total}
    best_state, best = None, math.inf
    rank, world = acc.process_index, acc.num_processes
    from .loop import progress_bar as tqdm

    bar = tqdm(total=total, desc="fine-tune", unit="step", leave=False, disable=not progress)
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=gen).to(device)
        running = torch.zeros((), device=device)
        for step in range(steps_per_epoch):
            idx = perm[step * batch_size:(step + 1) * batch_size][rank::world]
            pieces = idx.split(micro_batch) if micro_batch else (idx,)
            for piece in pieces:
                x = data[piece]
                with _autocast():
                    loss = wrapped(input_ids=x, labels=x).loss
                share = len(piece) / len(idx)
                acc.backward(loss * share)
                running += loss.detach() * share
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            bar.update(1)
        history["train_loss"].append(float(running / steps_per_epoch))
        v = float(sequence_losses(model, val, eval_batch).mean())
        history["val_loss"].append(v)
        if v < best:
            best, history["best_epoch"] = v, epoch
            best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    if acc.num_processes > 1:
        acc.free_memory()
    model.eval()
    history["best_val_loss"] = best if best_state is not None else float("nan")
    return model, history


def beam_search(model, prompts, *, beams: int = 5, new_tokens: int = 64,
                repetition_penalty: float = 1.0, eos_token_id: int = 2):
    """Beam search for exactly ``new_tokens`` tokens, vectorised over prompts and beams.

    ``prompts`` is a (B, L) long tensor (same length, no padding).  The same search
    as transformers' ``generate(num_beams=beams, min_new_tokens=max_new_tokens=new_tokens)``:
    per step, log-softmax of the fp32 logits, the repetition penalty on the
    log-probabilities of tokens already in the sequence (CTRL's rule: multiply a
    negative score by the penalty), end-of-sequence masked (it may not end a
    sequence early), and the ``beams`` best of the ``beams x vocab`` continuations
    of every prompt kept.  Because no beam can finish early, every hypothesis has the
    same length and the best final beam is simply the highest-scoring one.  The loop
    never reads a value back to the host, so on a GPU it runs without synchronising.
    Returns a (B, new_tokens) long tensor.
    """
    import torch

    B, L = prompts.shape
    K = beams
    out = model(input_ids=prompts, use_cache=True, logits_to_keep=1)  # only the last position
    cache = out.past_key_values
    cache.batch_repeat_interleave(K)
    logits = out.logits[:, -1].float().repeat_interleave(K, 0)
    seqs = prompts.repeat_interleave(K, 0)
    scores = torch.full((B, K), -1.0e9, device=prompts.device)
    scores[:, 0] = 0.0
    offset = (torch.arange(B, device=prompts.device) * K).view(B, 1)
    for t in range(new_tokens):
        logp = torch.log_softmax(logits, dim=-1)
        if repetition_penalty != 1.0:
            seen = logp.gather(1, seqs)
            logp = logp.scatter(1, seqs, torch.where(seen < 0, seen * repetition_penalty,
                                                     seen / repetition_penalty))
        logp[:, eos_token_id] = -math.inf
        V = logp.shape[-1]
        cand = (scores.view(B * K, 1) + logp).view(B, K * V)
        scores, index = cand.topk(K, dim=1)
        src = (offset + torch.div(index, V, rounding_mode="floor")).view(-1)
        token = (index % V).view(-1, 1)
        seqs = torch.cat([seqs.index_select(0, src), token], dim=1)
        if t + 1 < new_tokens:
            cache.reorder_cache(src)
            position = torch.full((B * K, 1), L + t, device=prompts.device, dtype=torch.long)
            out = model(input_ids=token, past_key_values=cache, use_cache=True,
                        position_ids=position, logits_to_keep=1)
            logits = out.logits[:, -1].float()
    best = seqs.view(B, K, -1)[:, 0, L:]  # topk sorts: beam 0 has the highest score
    return best


def generate_continuations(model, prompts: np.ndarray, *, beams: int = 5, new_tokens: int = 64,
                           repetition_penalty: float = 1.0, batch_size: int = 256,
                           eos_token_id: int = 2, pad_token_id: int = 1,
                           engine: str = "beam_search", progress: bool = False) -> np.ndarray:
    """For each prompt (all of the same length, so no padding) the ``new_tokens`` tokens that
    ``beams``-way beam search appends: an (n, new_tokens) array of the prompts' dtype.

    End-of-sequence is masked until the last step (``min_new_tokens = max_new_tokens``),
    so exactly ``new_tokens`` come out for every prompt.  ``repetition_penalty`` 1.0
    means none (the paper's main runs); the ablation uses 2.0; the authors' public code
    hard-codes 3.0 (the penalty of CTRL, Keskar et al. 2019).  ``engine="beam_search"``
    uses :func:`beam_search` (no host synchronisation per step); ``engine="hf"`` calls
    transformers' ``generate`` with the same settings (the tests check they agree).
    """
    import torch
    from .loop import progress_bar as tqdm

    if engine not in ("beam_search", "hf"):
        raise ValueError(f"engine must be one of beam_search, hf; got {engine!r}")
    device = next(model.parameters()).device
    n, length = prompts.shape
    if engine == "hf":
        from transformers import GenerationConfig

        config = GenerationConfig(
            num_beams=beams, do_sample=False, min_new_tokens=new_tokens,
            max_new_tokens=new_tokens, early_stopping=False, length_penalty=1.0,
            repetition_penalty=None if repetition_penalty == 1.0 else float(repetition_penalty),
            num_return_sequences=1, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
            bos_token_id=eos_token_id, use_cache=True)
    sl, per = _shard(n)
    local_prompts = torch.as_tensor(np.asarray(prompts[sl], dtype=np.int64), device=device)
    out = []
    with torch.inference_mode(), _autocast():
        for start in tqdm(range(0, len(local_prompts), batch_size), desc="beam search", leave=False,
                          disable=not progress):
            x = local_prompts[start:start + batch_size]
            if engine == "hf":
                y = model.generate(input_ids=x, attention_mask=torch.ones_like(x),
                                   generation_config=config)[:, length:]
            else:
                y = beam_search(model, x, beams=beams, new_tokens=new_tokens,
                                repetition_penalty=repetition_penalty, eos_token_id=eos_token_id)
            out.append(y)
    local = torch.cat(out) if out else torch.zeros((0, new_tokens), dtype=torch.long, device=device)
    result = _gather_rows(local, n, per).cpu().numpy()
    if result.shape != (n, new_tokens):
        raise RuntimeError(f"beam search returned shape {result.shape}, expected {(n, new_tokens)}")
    return result.astype(prompts.dtype)


# ----------------------------------------------------------------------------- tail measures
def rare_token_types(real: np.ndarray, tail_mass: float = 0.1) -> np.ndarray:
    """The real data's rare tokens: the least frequent types that together make up
    ``tail_mass`` of its tokens (the types outside the most frequent 90% of the mass)."""
    counts = np.bincount(np.asarray(real, dtype=np.int64).ravel())
    types = np.flatnonzero(counts)
    order = types[np.argsort(-counts[types], kind="stable")]
    cum = np.cumsum(counts[order]) / counts.sum()
    return np.sort(order[np.searchsorted(cum, 1.0 - tail_mass, side="left") + 1:])


def _ngram_codes(blocks: np.ndarray, n: int) -> np.ndarray:
    """Each within-block n-gram as one int64 code (exact: base = max id + 1), shape (N, L-n+1)."""
    b = np.asarray(blocks, dtype=np.int64)
    base = int(b.max(initial=0)) + 1
    if base ** n >= 2**63:
        raise ValueError(f"n-grams of length {n} over {base} token ids do not fit in int64")
    codes = np.zeros((b.shape[0], b.shape[1] - n + 1), dtype=np.int64)
    for k in range(n):
        codes = codes * base + b[:, k:b.shape[1] - n + 1 + k]
    return codes


def tail_measures(blocks: np.ndarray, rare_types: np.ndarray) -> dict:
    """How much of the distribution's tail a set of blocks keeps.

    ``distinct_tokens``   number of token types used;
    ``distinct_2``        distinct bigrams / all bigrams (within blocks), Li et al.'s distinct-n;
    ``rare_coverage``     share of the real data's rare types (:func:`rare_token_types`) still used;
    ``repetition``        share of within-block 4-grams that repeat an earlier 4-gram of the
                          same block (text that loops on itself).
    """
    b = np.asarray(blocks, dtype=np.int64)
    bigrams = _ngram_codes(b, 2)
    four = np.sort(_ngram_codes(b, 4), axis=1)
    repeats = (four[:, 1:] == four[:, :-1]).sum(1) / four.shape[1]
    used = np.unique(b)
    return {
        "distinct_tokens": int(used.size),
        "distinct_2": float(np.unique(bigrams).size / bigrams.size),
        "rare_coverage": float(np.isin(rare_types, used).mean()) if len(rare_types) else float("nan"),
        "repetition": float(repeats.mean()),
    }


def perplexity_summary(values: np.ndarray, rng: np.random.Generator | None = None) -> dict:
    """Histogram counts over :data:`PERPLEXITY_BIN_EDGES` (overflow in the end bins), quantiles,
    and the values themselves (a random subset when there are more than MAX_STORED_VALUES)."""
    v = np.asarray(values, dtype=float)
    clipped = np.clip(v, PERPLEXITY_BIN_EDGES[0], PERPLEXITY_BIN_EDGES[-1] * (1 - 1e-12))
    counts, _ = np.histogram(clipped, PERPLEXITY_BIN_EDGES)
    stored = v if len(v) <= MAX_STORED_VALUES else \
        (rng or np.random.default_rng(0)).choice(v, MAX_STORED_VALUES, replace=False)
    q10, q50, q90 = np.quantile(v, [0.1, 0.5, 0.9])
    return {"generated_perplexity_median": float(q50), "generated_perplexity_q10": float(q10),
            "generated_perplexity_q90": float(q90), "generated_perplexity_mean": float(v.mean()),
            "generated_perplexity_hist": counts.tolist(),
            "generated_perplexity_values": np.round(stored, 4).tolist()}


# ----------------------------------------------------------------------------- checkpoints
def save_fitted(fitted: FittedLM, path: Path, keep_checkpoints: bool = False) -> None:
    """Save one generation: best weights (safetensors), its training blocks (compact .npy), history.

    Written to a temporary folder and renamed, so a crash leaves the old folder or the
    new one.  Unless ``keep_checkpoints``, the *weights* of generations other than 0 and
    the two newest are deleted (the loop's resume needs generation 0 and the newest
    one); every generation's token ids and history stay.
    """
    path = Path(path)
    if not accelerator().is_main_process:
        return
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        fitted.model.save_pretrained(tmp)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    np.save(tmp / "train_ids.npy", np.asarray(fitted.train))
    (tmp / "history.json").write_text(json.dumps(fitted.history))
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
    if not keep_checkpoints:
        i = int(path.name.split("_")[-1])
        for old in path.parent.glob("model_[0-9][0-9][0-9][0-9]"):
            j = int(old.name.split("_")[-1])
            if 0 < j < i - 1:
                for f in old.iterdir():
                    if f.name not in ("train_ids.npy", "history.json"):
                        f.unlink()


def load_fitted(path: Path) -> FittedLM:
    """Inverse of :func:`save_fitted` (weights in fp32 on the device)."""
    import torch
    from transformers import AutoModelForCausalLM

    path = Path(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, local_files_only=True)
    model.to(_device()).eval()
    return FittedLM(model, np.load(path / "train_ids.npy"),
                    json.loads((path / "history.json").read_text()))


# ----------------------------------------------------------------------------- the experiment
def decode(tokenizer, ids) -> str:
    return tokenizer.decode([int(t) for t in ids], skip_special_tokens=False)


def run_lm(settings: dict, *, seed: int = 0, run_dir=None, resume: bool = False,
           progress: bool = True, stop_after: int | None = None, backend: Backend | None = None,
           keep_checkpoints: bool = False) -> RunOutput:
    """Generations 0..``generations`` of fine-tune, beam-search, fine-tune-on-that (Fig. 1).

    Metrics per generation: ``test_perplexity``; ``zero_shot_perplexity`` (the base model,
    the same at every generation); ``best_val_loss``, ``best_epoch``, ``val_loss`` history;
    the per-sequence perplexity of the generation's training data scored by the
    generation-0 model (``generated_perplexity_*``: median, quantiles, histogram over
    ``perplexity_bin_edges``, values); tail measures of the model-written blocks
    (:func:`tail_measures`; real blocks at generation 0); ``real_blocks`` in the training
    set; the continuation of a fixed test prompt (``example_continuation``); timings.
    """
    s = dict(settings)
    check_settings(s)
    import torch

    threads = torch.get_num_threads()
    try:
        return _run_lm(s, seed=seed, run_dir=run_dir, resume=resume, progress=progress,
                       stop_after=stop_after, backend=backend, keep_checkpoints=keep_checkpoints)
    finally:
        torch.set_num_threads(threads)


def _run_lm(s, *, seed, run_dir, resume, progress, stop_after, backend, keep_checkpoints):
    t_load = time.perf_counter()
    backend = backend or load_backend(s, progress=progress)
    load_seconds = time.perf_counter() - t_load
    import torch

    n_threads = s["cpu_threads"] or (1 if backend.kind == "stand-in" else 0)
    if n_threads and not torch.cuda.is_available():
        torch.set_num_threads(n_threads)  # run_lm restores the previous number
    lr = s["lr"] if backend.kind == "hub" else s["stand_in_lr"]
    epochs = s["epochs"] or paper_epochs(s["regime"])
    real = subset_blocks(backend.blocks["train"], s["train_blocks"], 0)
    val = subset_blocks(backend.blocks["validation"], s["val_blocks"], 1)
    test = subset_blocks(backend.blocks["test"], s["test_blocks"], 2)
    if min(len(real), len(val), len(test)) == 0:
        raise ValueError("a data split has no complete block; lower block_size")
    regime = make_regime(s["regime"], real_fraction=s["real_fraction"])
    tok = backend.tokenizer
    eos = tok.eos_token_id if tok.eos_token_id is not None else 2
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos
    rare = rare_token_types(real)
    real_rows = {row.tobytes() for row in real}
    example = test[s["example_block"] % len(test)][None, :]
    sub = Path(run_dir) / backend.kind if run_dir is not None else None

    zero_path = sub / "zero_shot.json" if sub is not None else None
    if zero_path is not None and resume and zero_path.exists():
        zero_shot = json.loads(zero_path.read_text())["zero_shot_perplexity"]
    else:
        zero_shot = perplexity(backend.base, test, s["eval_batch"])
        if zero_path is not None:
            atomic_write_bytes(zero_path, json.dumps({"zero_shot_perplexity": zero_shot}).encode())

    timing = {"sample_seconds": 0.0}

    def gen_kwargs():
        return dict(beams=s["beams"], new_tokens=s["new_tokens"],
                    repetition_penalty=s["repetition_penalty"], eos_token_id=eos,
                    pad_token_id=pad)

    def fit(data, rng):
        t0 = time.perf_counter()
        model, history = fine_tune(
            backend.base, data, val, epochs=epochs, lr=lr, lr_min=s["lr_min"],
            batch_size=s["batch_size"], weight_decay=s["weight_decay"],
            micro_batch=s["micro_batch"], eval_batch=s["eval_batch"],
            seed=int(rng.integers(2**31)), progress=progress)
        history["fit_seconds"] = time.perf_counter() - t0
        return FittedLM(model, np.asarray(data), history)

    def sample(fitted, m, rng):
        """Continuations of m of the training blocks: all of them in order when m is the whole set."""
        t0 = time.perf_counter()
        n = len(fitted.train)
        index = np.arange(n) if m == n else np.sort(rng.choice(n, m, replace=m > n))
        out = generate_continuations(fitted.model, fitted.train[index], batch_size=s["gen_batch"],
                                     progress=progress, **gen_kwargs())
        timing["sample_seconds"] = time.perf_counter() - t0
        return out

    def measure(g):
        t0 = time.perf_counter()
        fitted, first = g.model, g.first_model
        written = g.train if g.new is None else g.new
        values = {
            "test_perplexity": perplexity(fitted.model, test, s["eval_batch"]),
            "zero_shot_perplexity": zero_shot,
            "best_val_loss": fitted.history["best_val_loss"],
            "best_epoch": fitted.history["best_epoch"],
            "val_loss": fitted.history["val_loss"],
            "train_loss": fitted.history["train_loss"],
            "train_blocks": int(len(g.train)),
            "real_blocks": int(sum(row.tobytes() in real_rows for row in g.train)),
            "perplexity_bin_edges": PERPLEXITY_BIN_EDGES.tolist(),
            **perplexity_summary(sequence_perplexities(first.model, g.train, s["eval_batch"]),
                                 np.random.default_rng([seed, g.index, 5])),
            **tail_measures(written, rare),
            "example_continuation": decode(tok, generate_continuations(
                fitted.model, example, batch_size=1, **gen_kwargs())[0]),
            "fit_seconds": fitted.history["fit_seconds"],
            "sample_seconds": timing["sample_seconds"] if g.index else 0.0,
        }
        values["measure_seconds"] = time.perf_counter() - t0
        return values

    result = run_generations(
        fit, sample, real, s["generations"], regime=regime, seed=seed, measure=measure,
        run_dir=sub, resume=resume,
        save_model=lambda f, p: save_fitted(f, p, keep_checkpoints),
        load_model=load_fitted, progress=progress, stop_after=stop_after,
        desc=f"lm {s['regime']} seed {seed}")
    metrics = dict(result.metrics)
    n_gen = len(result.generations)
    metrics["example_prompt"] = [decode(tok, example[0])] * n_gen
    metrics["backend_load_seconds"] = [round(load_seconds, 3)] * n_gen
    metrics["n_params"] = [backend.n_params] * n_gen
    metrics["epochs"] = [epochs] * n_gen
    return RunOutput(result.generations, metrics, backend.stand_in)


register(Experiment(
    name="lm",
    summary="OPT-125m fine-tuned on wikitext-2 on its own beam-search output (Fig. 1b/1c)",
    settings=LM_SETTINGS,
    run=run_lm,
    choices=CHOICES,
    chapter="book/lm.ipynb",
))


# ----------------------------------------------------------------------------- chapter helpers
FIG1_GENERATIONS = (0, 1, 2, 3, 5, 9)


def chapter_runs(profile: str, *, runs: int | None = None, progress: bool = False,
                 **overrides) -> list[dict]:
    """metrics.json records of seeds 0..runs-1 (``runs`` from the profile's settings), each run
    or, when its generations are saved already, loaded from the cache (``resume=True``)."""
    from .experiments import resolve_settings, run_experiment

    n = runs or resolve_settings("lm", profile, overrides)["runs"] or 1
    return [run_experiment("lm", profile=profile, seed=seed, overrides=overrides, resume=True,
                           progress=progress) for seed in range(n)]


def stacked(records: list[dict], key: str) -> np.ndarray:
    """Metric ``key`` of every run, shape (runs, generations)."""
    return np.array([r["metrics"][key] for r in records], dtype=float)


def shown_generations(record: dict, wanted=FIG1_GENERATIONS) -> list[int]:
    """The generations of Fig. 1b/1c (0, 1, 2, 3, 5, 9) that this run has."""
    return [g for g in wanted if g in record["generations"]]


def plot_perplexity_histograms(ax, record: dict, generations=None, title: str = "") -> None:
    """Fig. 1b/1c: per-sequence perplexity of each generation's training data, scored by the
    generation-0 model, as densities over log-spaced bins (log x)."""
    from .plotting import generation_colors, label_stand_in

    gens = generations or shown_generations(record)
    m = record["metrics"]
    edges = np.asarray(m["perplexity_bin_edges"][0])
    last = max(record["generations"])
    for g, color in zip(gens, generation_colors(gens, last)):
        counts = np.asarray(m["generated_perplexity_hist"][g], dtype=float)
        ax.stairs(counts / counts.sum(), edges, color=color, label=f"gen {g}", linewidth=1.6)
    ax.set_xscale("log")
    ax.set_xlabel("perplexity of a generated block (scored by generation 0)")
    ax.set_ylabel("share of blocks")
    ax.legend(ncol=2, fontsize=8)
    import textwrap

    label_stand_in(ax, title, record["stand_in"] and textwrap.fill(record["stand_in"], 58))


def plot_histograms_3d(ax, record: dict, generations=None) -> None:
    """The supplement's 3-D view: one perplexity histogram per generation along the depth axis."""
    from .plotting import generation_colors

    gens = generations or list(record["generations"])
    m = record["metrics"]
    edges = np.log10(np.asarray(m["perplexity_bin_edges"][0]))
    centers = (edges[1:] + edges[:-1]) / 2
    for g, color in zip(gens, generation_colors(gens, max(record["generations"]))):
        counts = np.asarray(m["generated_perplexity_hist"][g], dtype=float)
        share = counts / counts.sum()
        ax.plot(centers, np.full_like(centers, g), share, color=color)
        ax.add_collection3d(_fill_under(centers, share, color), zs=g, zdir="y")
    ax.set_xlabel("log10 perplexity")
    ax.set_ylabel("generation")
    ax.set_zlabel("share of blocks")


def _fill_under(x, y, color):
    from matplotlib.collections import PolyCollection

    verts = [list(zip(np.r_[x[0], x, x[-1]], np.r_[0.0, y, 0.0]))]
    return PolyCollection(verts, facecolors=[color], alpha=0.35)


def plot_metric_by_generation(ax, runs_by_label: dict, key: str, *, colors: dict | None = None,
                              ylabel: str = "") -> None:
    """Mean +/- one standard deviation over runs of metric ``key`` against generation."""
    from .plotting import band

    for label, records in runs_by_label.items():
        x = records[0]["generations"]
        band(ax, x, stacked(records, key), label=f"{label} ({len(records)} run"
             f"{'s' if len(records) > 1 else ''})", color=(colors or {}).get(label), center="mean",
             marker="o", markersize=3)
    ax.set_xlabel("generation")
    ax.set_ylabel(ylabel or key)
    ax.set_xticks(runs_by_label[next(iter(runs_by_label))][0]["generations"])


def histogram_overlap(record: dict, g: int, h: int = 0) -> float:
    """Shared mass of the per-sequence perplexity histograms of generations g and h (0 to 1)."""
    counts = record["metrics"]["generated_perplexity_hist"]
    a = np.asarray(counts[g], dtype=float)
    b = np.asarray(counts[h], dtype=float)
    return float(np.minimum(a / a.sum(), b / b.sum()).sum())


def continuation_table(record: dict, width: int = 160):
    """Example 1 of the paper: one fixed test prompt and each generation's continuation."""
    import pandas as pd

    m = record["metrics"]
    rows = [{"generation": "prompt", "text": m["example_prompt"][0][:width]}]
    rows += [{"generation": g, "text": m["example_continuation"][g].replace("\n", " ")[:width]}
             for g in record["generations"]]
    return pd.DataFrame(rows).set_index("generation")


def paper_comparison(replace: list[dict], keep_real: list[dict]):
    """The paper's reported numbers beside this run's (means over runs)."""
    import pandas as pd

    def rise(records):
        tp = stacked(records, "test_perplexity")
        return float((tp[:, -1] - tp[:, 0]).mean())

    last = max(replace[0]["generations"])
    rows = [
        ("zero-shot test perplexity", f"{PAPER['zero_shot_perplexity']:.0f}",
         f"{stacked(replace, 'zero_shot_perplexity')[:, 0].mean():.1f}"),
        ("generation 0 (fine-tuned on real data)", f"about {PAPER['fine_tuned_perplexity']:.0f}",
         f"{stacked(replace, 'test_perplexity')[:, 0].mean():.1f}"),
        ("(b) replace: rise over the generations", "about 20-28 (over generations 0-9)",
         f"{rise(replace):+.1f} (over generations 0-{last})"),
        ("(c) keep 10% real: rise over the generations", "minor",
         f"{rise(keep_real):+.1f} (over generations 0-{max(keep_real[0]['generations'])})"),
    ]
    return pd.DataFrame(rows, columns=["quantity", "paper", "this run"]).set_index("quantity")
