"""Fine-tuning one generation: a copy of the base model, AdamW, cosine schedule, best epoch on
the real validation split (the paper's protocol; its code's ``plt_model.py``)."""
from __future__ import annotations

import copy
import math

import numpy as np

from .backends import accelerator, autocast, device
from .evaluate import sequence_losses


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
    """
    import torch

    from ..loop import progress_bar

    acc = accelerator()
    dev = device()
    model = copy.deepcopy(base).to(dev)
    model.train()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    n = len(train)
    steps_per_epoch = max(1, -(-n // batch_size))
    total = steps_per_epoch * epochs
    # the fused kernel: on a 2-core CPU one step of the 135M stand-in takes 0.2 s instead of 0.6-1.3 s
    fused = dev.type == "cuda" or dev.type == "cpu" and _torch_at_least(2, 4)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, fused=fused)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total, 1), eta_min=lr_min)
    wrapped, opt = acc.prepare(model, opt) if acc.num_processes > 1 else (model, opt)
    data = torch.as_tensor(np.asarray(train, dtype=np.int64), device=dev)
    history = {"val_loss": [], "train_loss": [], "best_epoch": -1, "steps": total}
    best_state, best = None, math.inf
    rank, world = acc.process_index, acc.num_processes
    bar = progress_bar(total=total, desc="fine-tune", unit="step", leave=False,
                       disable=not progress)
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=gen).to(dev)
        running = torch.zeros((), device=dev)
        for step in range(steps_per_epoch):
            idx = perm[step * batch_size:(step + 1) * batch_size][rank::world]
            pieces = idx.split(micro_batch) if micro_batch else (idx,)
            for piece in pieces:
                x = data[piece]
                with autocast(dev):
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
    return model, history


def _torch_at_least(major: int, minor: int) -> bool:
    """Whether torch is at least ``major.minor`` (fused AdamW on the CPU came with 2.4)."""
    import torch

    return tuple(int(v) for v in torch.__version__.split("+")[0].split(".")[:2]) >= (major, minor)
