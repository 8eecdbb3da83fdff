"""Fine-tuning one generation: a copy of the base model, AdamW, cosine schedule, best epoch on
the real validation split (the paper's protocol; its code's ``plt_model.py``)."""
from __future__ import annotations

import copy
import math

import numpy as np

from .. import precision
from .backends import accelerator, autocast, device, run_precision
from .evaluate import eval_bytes, sequence_losses


def shape_of(model, block_size: int) -> dict:
    """What the memory rules read from a causal LM's config: layers, width, heads, vocabulary,
    parameters, and the block length."""
    c = model.config
    return {"layers": c.num_hidden_layers, "width": c.hidden_size, "heads": c.num_attention_heads,
            "vocab": c.vocab_size, "params": sum(p.numel() for p in model.parameters()),
            "tokens": int(block_size)}


def bytes_per_element(prec: str) -> int:
    """Bytes of an activation under ``prec``'s autocast (fp32: 4)."""
    return 4 if prec == "fp32" else 2


def train_bytes(shape: dict, prec: str) -> tuple[float, float]:
    """(bytes per training block, fixed bytes) of :func:`fine_tune`, the rule of the batch plan.

    Per block: the activations a backward pass keeps, 34 d + 5 a T bytes per layer and token in
    16-bit (Korthikanti et al. 2022, "Reducing activation recomputation", no recomputation;
    twice that in fp32), and per token the logits in the autocast dtype plus three fp32 copies
    of vocabulary size (upcast for the loss, its log-softmax, its gradient).  Fixed: the
    fine-tuned copy, its gradients, AdamW's two moments and the best epoch's copy, all fp32:
    20 bytes per parameter.
    """
    b, T = bytes_per_element(prec), shape["tokens"]
    per_layer = (34 * shape["width"] + 5 * shape["heads"] * T) * b / 2
    per_token = shape["layers"] * per_layer + shape["vocab"] * (b + 12)
    return T * per_token, 20.0 * shape["params"]


def pieces_that_fit(batch_size: int, fits: int) -> int:
    """The gradient-accumulation piece for a batch of ``batch_size`` when ``fits`` blocks fit:
    0 (none) when the batch fits, else the batch cut into equal pieces of at most ``fits``."""
    if fits >= batch_size:
        return 0
    return -(-batch_size // -(-batch_size // max(1, fits)))


def device_facts(model) -> dict:
    """What a record says of the device: ``precision`` (fp32, bf16 or fp16) and ``device``
    (the card, its compute capability and the precision, or the CPU)."""
    dev = next(model.parameters()).device
    prec = run_precision(dev)
    return {"precision": prec, "device": precision.describe(dev, prec)}


def batch_plan(s: dict, model) -> dict:
    """The batches of a run on ``model``'s device: on a CPU the settings' own ``micro_batch``,
    ``eval_batch`` and ``gen_batch``; on a GPU each cut to what fits in its free memory
    (:func:`collapse_utils.precision.fit_batch`) by :func:`train_bytes`,
    :func:`~.evaluate.eval_bytes` and :func:`~.generate.decode_bytes`, with room for two more
    models beside the base (the fine-tuned one and generation 0's), and a batch of
    ``batch_size`` blocks that does not fit is accumulated in equal pieces."""
    from .generate import decode_bytes

    dev = next(model.parameters()).device
    prec = run_precision(dev)
    shape = shape_of(model, s["block_size"])
    per_block, fixed = train_bytes(shape, prec)
    want = s["micro_batch"] or s["batch_size"]
    fits = precision.fit_batch(want, per_block, dev, fixed)
    models = 2 * 4.0 * shape["params"]
    return {"micro_batch": s["micro_batch"] if fits >= want else pieces_that_fit(s["batch_size"], fits),
            "eval_batch": precision.fit_batch(s["eval_batch"], eval_bytes(shape, prec), dev, models),
            "gen_batch": precision.fit_batch(
                s["gen_batch"], decode_bytes(shape, prec, beams=s["beams"] if s["decoding"] == "beam" else 1,
                                             new_tokens=s["new_tokens"]), dev, models)}


def fine_tune(base, train: np.ndarray, val: np.ndarray, *, epochs: int, lr: float,
              lr_min: float = 1e-6, batch_size: int = 128, weight_decay: float = 0.01,
              micro_batch: int = 0, eval_batch: int = 256, seed: int = 0,
              progress: bool = False):
    """Fine-tune a copy of ``base`` on ``train`` blocks; return (best model, history).

    AdamW (``lr``, ``weight_decay``), batches of ``batch_size`` blocks (split into
    ``micro_batch`` pieces for gradient accumulation when memory is short), a cosine
    schedule from ``lr`` to ``lr_min`` over all steps, the backend's autocast.  The
    validation loss is measured after every epoch and the weights of the best epoch
    are returned, as the paper keeps the best checkpoint on the real validation split.
    The training loss is accumulated on the device (no host synchronisation inside an
    epoch).  Under ``accelerate launch`` each batch is split across the processes.

    Precision: :func:`~.backends.run_precision`; under fp16 (a GPU older than the A100) the
    loss is scaled by a ``GradScaler``, and a step whose gradients overflow is skipped.  A step
    that runs out of GPU memory is done again in pieces half as large (the history's
    ``micro_batch`` is the piece that ran last; 0: none).
    """
    import torch

    from ..loop import progress_bar

    acc = accelerator()
    dev = device()
    prec = run_precision(dev)
    scaler = precision.scaler(prec, dev)
    model = copy.deepcopy(base).to(dev)
    model.train()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    n = len(train)
    steps_per_epoch = max(1, -(-n // batch_size))
    total = steps_per_epoch * epochs
    opt = optimizer(model, lr, weight_decay, dev)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total, 1), eta_min=lr_min)
    wrapped, opt = acc.prepare(model, opt) if acc.num_processes > 1 else (model, opt)
    data = torch.as_tensor(np.asarray(train, dtype=np.int64), device=dev)
    history = {"val_loss": [], "train_loss": [], "best_epoch": -1, "steps": total,
               "precision": prec}
    best_state, best = None, math.inf
    rank, world = acc.process_index, acc.num_processes
    bar = progress_bar(total=total, desc="fine-tune", unit="step", leave=False,
                       disable=not progress)
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=gen).to(dev)
        running = torch.zeros((), device=dev)
        for step in range(steps_per_epoch):
            idx = perm[step * batch_size:(step + 1) * batch_size][rank::world]
            while True:
                try:
                    running = _accumulate(wrapped, data, idx, micro_batch, running, scaler, acc, dev)
                    break
                except Exception as err:   # out of GPU memory: the same step in smaller pieces
                    if not precision.is_out_of_memory(err) or (micro_batch or len(idx)) == 1:
                        raise
                    opt.zero_grad(set_to_none=True)
                    micro_batch = max(1, (micro_batch or len(idx)) // 2)
                    precision.release_memory()
            scaler.step(opt)
            scaler.update()
            sched.step()
            opt.zero_grad(set_to_none=True)
            bar.update(1)
        history["train_loss"].append(float(running / steps_per_epoch))
        v = float(sequence_losses(model, val, eval_batch).mean())
        history["val_loss"].append(v)
        if v < best:
            best, history["best_epoch"] = v, epoch
            if epoch < epochs - 1:  # the last epoch's weights are the model itself
                best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
            else:
                best_state = None
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    if acc.num_processes > 1:
        acc.free_memory()
    model.eval()
    history["best_val_loss"] = best if math.isfinite(best) else float("nan")
    history["micro_batch"] = int(micro_batch)
    if scaler.is_enabled():
        history["loss_scale"] = float(scaler.get_scale())
    return model, history


def optimizer(model, lr: float, weight_decay: float, dev):
    """AdamW on ``model``'s parameters, with the fused kernel on a GPU and, from torch 2.4, on a
    CPU (on a 2-core CPU one step of the 135M stand-in takes 0.2 s instead of 0.6-1.3 s)."""
    import torch

    fused = dev.type == "cuda" or dev.type == "cpu" and _torch_at_least(2, 4)
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, fused=fused)


def _accumulate(model, data, idx, micro_batch: int, running, scaler, acc, dev):
    """Gradients of one batch ``idx``, in pieces of ``micro_batch`` (0: one piece), each piece's
    loss weighted by its share; returns ``running`` plus the batch's mean loss."""
    pieces = idx.split(micro_batch) if micro_batch else (idx,)
    for piece in pieces:
        x = data[piece]
        with autocast(dev):
            loss = model(input_ids=x, labels=x).loss
        share = len(piece) / len(idx)
        acc.backward(scaler.scale(loss * share))
        running = running + loss.detach() * share
    return running


def _torch_at_least(major: int, minor: int) -> bool:
    """Whether torch is at least ``major.minor`` (fused AdamW on the CPU came with 2.4)."""
    import torch

    return tuple(int(v) for v in torch.__version__.split("+")[0].split(".")[:2]) >= (major, minor)
