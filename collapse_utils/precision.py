"""How a network runs on its device: the precision of its matrix products, and the batch that fits.

One rule for every family that trains a network (the VAE and the language model):

* a GPU of compute capability 8.0 or later (A100, L4, H100, ...) has native bf16 tensor cores:
  autocast to bf16, which has fp32's exponent range and needs no loss scaling;
* an older GPU (V100 7.0, T4 7.5, Colab's free card) has fp16 tensor cores but no bf16 ones:
  ``torch.cuda.is_bf16_supported()`` still answers True on a T4 (it emulates bf16), and emulated
  bf16 matrix products are slow or refused, so autocast to fp16 and scale the loss
  (:func:`scaler`: a real ``GradScaler``) so that small gradients do not underflow;
* a CPU: what the caller asks (``fp32`` unless a family has a setting, as the language model's
  ``cpu_precision``), so the CPU chapters' numbers do not depend on this module.

Weights stay fp32 in every case (autocast casts inside the matrix products only).

Memory (:func:`fit_batch`): a job that wants ``want`` items per batch, each taking about
``per_item`` bytes on top of ``fixed`` bytes, gets at most :data:`MEMORY_SHARE` of the GPU memory
free when it starts (``torch.cuda.mem_get_info``); the rest is left to the allocator's
fragmentation and the cuBLAS/cuDNN workspaces.  The estimates are rules of thumb, so
:func:`run_in_batches` also catches an out-of-memory error, halves the batch and retries.
On a CPU nothing changes: every batch is the one asked for.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

PRECISIONS = ("fp32", "bf16", "fp16")
#: the first compute capability with native bf16 tensor cores (Ampere)
BF16_CAPABILITY = (8, 0)
#: share of the free GPU memory a job's batch may fill (see the module docstring)
MEMORY_SHARE = 0.8


@dataclass(frozen=True)
class Card:
    """A GPU readers meet on Colab or a cloud: its compute capability, the dense 16-bit
    tensor-core peak of the precision :func:`choose` gives it (FLOP/s, no sparsity), memory."""

    name: str
    capability: tuple
    peak_16bit: float
    memory_gb: float


#: the vendors' data sheets (dense, without 2:4 sparsity); the T4's and V100's peak is fp16's
CARDS = {
    "T4": Card("T4", (7, 5), 65e12, 16),
    "V100": Card("V100", (7, 0), 125e12, 16),
    "L4": Card("L4", (8, 9), 121e12, 24),
    "A100": Card("A100", (8, 0), 312e12, 40),
    "H100": Card("H100", (9, 0), 989e12, 80),
    "H200": Card("H200", (9, 0), 989e12, 141),
}


def _device(device):
    import torch

    return device if isinstance(device, torch.device) else torch.device(device)


def choose(device, cpu: str = "fp32") -> str:
    """``bf16`` on a GPU of capability 8.0 or later, ``fp16`` on an older one, ``cpu`` on a CPU."""
    import torch

    dev = _device(device)
    if dev.type != "cuda":
        if cpu not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {cpu!r}")
        return cpu
    return "bf16" if tuple(torch.cuda.get_device_capability(dev)) >= BF16_CAPABILITY else "fp16"


def dtype(precision: str):
    """The torch dtype that autocast casts to under ``precision`` (None for fp32)."""
    import torch

    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def autocast(device, precision: str):
    """Autocast to ``precision``'s dtype on ``device``; no autocast for fp32."""
    import torch

    dev = _device(device)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(dev.type, dtype=dtype(precision))


class NoScaler:
    """The ``GradScaler`` calls, doing nothing: bf16 and fp32 need no loss scaling.
    ``scale`` returns the very tensor it gets, so a run is bit for bit the one without it."""

    def scale(self, loss):
        return loss

    def unscale_(self, optimizer):
        pass

    def step(self, optimizer):
        return optimizer.step()

    def update(self):
        pass

    def is_enabled(self) -> bool:
        return False


def scaler(precision: str, device):
    """A ``torch.amp.GradScaler`` for fp16 (dynamic loss scaling: a step whose gradients hold an
    inf or NaN is skipped and the scale halved), :class:`NoScaler` otherwise."""
    if precision != "fp16":
        return NoScaler()
    import torch

    return torch.amp.GradScaler(_device(device).type)


def free_memory(device) -> int | None:
    """Free bytes on a GPU (``torch.cuda.mem_get_info``, plus what torch's allocator holds
    unused: earlier runs of the process leave it cached); None on a CPU."""
    import torch

    dev = _device(device)
    if dev.type != "cuda":
        return None
    try:
        cached = torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev)
    except (RuntimeError, AssertionError):   # no CUDA context yet
        cached = 0
    return int(torch.cuda.mem_get_info(dev)[0]) + max(0, int(cached))


def fit_batch(want: int, per_item: float, device, fixed: float = 0.0) -> int:
    """The largest batch up to ``want`` whose ``per_item`` bytes each, with ``fixed`` bytes, fit
    in :data:`MEMORY_SHARE` of the free GPU memory (at least 1); ``want`` itself on a CPU."""
    free = free_memory(device)
    if free is None:
        return int(want)
    room = MEMORY_SHARE * free - fixed
    return int(max(1, min(want, room // max(per_item, 1.0))))


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is a GPU out-of-memory error (torch's own type, or the RuntimeError of
    older versions and of cuBLAS/cuDNN allocations)."""
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", ())
    return isinstance(err, oom) or (isinstance(err, RuntimeError) and "out of memory" in str(err))


def release_memory() -> None:
    """Give cached GPU blocks back after an out-of-memory error (nothing on a CPU)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_in_batches(n: int, batch: int, step, on_batch=None) -> tuple[list, int]:
    """``step(start, stop)`` over consecutive slices of ``range(n)`` at most ``batch`` long.

    A slice that runs out of GPU memory is halved and tried again (down to one item), and the
    later slices keep the smaller size.  Returns (the outputs in order, the batch that ran
    last).  ``on_batch(k)`` is called after each slice of k items.  Without an out-of-memory
    error the slices are exactly ``range(0, n, batch)``'s.
    """
    out, start, batch = [], 0, max(1, int(batch))
    while start < n:
        stop = min(n, start + batch)
        try:
            out.append(step(start, stop))
        except Exception as err:
            if not is_out_of_memory(err) or stop - start == 1:
                raise
            batch = max(1, (stop - start) // 2)
            release_memory()
            continue
        if on_batch is not None:
            on_batch(stop - start)
        start = stop
    return out, batch


def card(device) -> Card | None:
    """The :data:`CARDS` entry whose name is in the GPU's name (None on a CPU or an unknown card)."""
    import torch

    dev = _device(device)
    if dev.type != "cuda":
        return None
    name = torch.cuda.get_device_name(dev).upper()
    for key in sorted(CARDS, key=len, reverse=True):
        if key in name:
            return CARDS[key]
    return None


def describe(device, precision: str) -> str:
    """One line for a record: the device, its capability and the precision that ran."""
    import torch

    dev = _device(device)
    if dev.type != "cuda":
        return f"CPU, {precision}"
    major, minor = torch.cuda.get_device_capability(dev)
    return f"{torch.cuda.get_device_name(dev)} (capability {major}.{minor}), {precision} autocast"
