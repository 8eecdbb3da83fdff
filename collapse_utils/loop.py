"""The generational loop shared by every model family, with atomic caching and resume.

Generation 0 fits the real data D_0.  Generation i >= 1 builds its training set
from the newest model's samples (and, depending on the regime, older or real
data), then fits a new model to it: the recursion of Shumailov et al. (2024),
Sec. 2, "learning with generational data".

Reproducibility: generation i draws all its randomness from
``numpy.random.default_rng([seed, i])``, so a run is a pure function of its seed,
and a resumed run needs no saved random state to continue exactly where an
uninterrupted one would have gone.

Resume: when ``run_dir`` is given, each finished generation is written to
``run_dir/gen_XXXX.pkl`` atomically (temporary file, then rename).  A run with
``resume=True`` loads the finished generations and continues after the last one;
the result equals that of an uninterrupted run bit for bit.
"""
from __future__ import annotations

import os
import pickle
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .regimes import Regime, Replace, as_schedule, n_samples


@dataclass
class Generation:
    """What ``measure`` sees after generation ``index`` has been fitted."""

    index: int
    model: Any
    train: Any          # the data this generation's model was fitted on
    new: Any            # the fresh model samples inside ``train`` (None at generation 0)
    real: Any           # the original data D_0
    first_model: Any    # generation 0's model, e.g. to score later generations' data
    rng: np.random.Generator | None = None  # for measurements: rng_for(seed, "measure", i)


@dataclass
class LoopResult:
    """Per-generation metrics (``metrics[name][i]`` belongs to generation i) and kept models."""

    generations: list[int]
    metrics: dict[str, list]
    models: dict[int, Any] = field(default_factory=dict)
    resumed_from: int | None = None   # last generation loaded from the cache, if any


PROGRESS_ENV = "COLLAPSE_PROGRESS"


def progress_bar(*args, disable: bool = False, **kwargs):
    """A tqdm progress bar: ``tqdm.auto`` (a widget in Jupyter) unless told otherwise.

    ``$COLLAPSE_PROGRESS`` is ``auto`` (default), ``text`` (plain tqdm on stderr) or
    ``off``.  Batch execution (the tests, the book build) sets ``off``: widgets
    created while nbclient executes a notebook can stall it (jupyter/nbclient#312).
    """
    mode = os.environ.get(PROGRESS_ENV, "auto").strip() or "auto"
    if mode not in ("auto", "text", "off"):
        raise ValueError(f"{PROGRESS_ENV} must be one of auto, text, off; got {mode!r}")
    if mode == "text":
        from tqdm import tqdm
    else:
        from tqdm.auto import tqdm
    return tqdm(*args, disable=disable or mode == "off", **kwargs)


#: the named random streams of a run: stream -> the words after the seed in the
#: generator's seed sequence.  Each stream is independent of every other, so adding a
#: measurement never changes what the fit and sample steps draw.
STREAMS = {
    "generation": lambda i: [int(i)],             # fit and sample of generation i (the loop)
    "measure": lambda i: [int(i), 1],             # measurements of generation i (the loop)
    "real": lambda *k: [10**6, *map(int, k)],     # the real data D_0 of a run
    "reference": lambda *k: [2**32 - 2, *map(int, k)],  # large reference samples of D_0
    "figure": lambda *k: [2**32 - 3, *map(int, k)],     # samples drawn only for a figure
    "init": lambda *k: [2**32 - 4, *map(int, k)],       # a network's initial weights
}


def rng_for(seed: int, stream: str, *keys: int) -> np.random.Generator:
    """The generator of one named stream of a run: ``default_rng([seed, ...])``.

    ``rng_for(seed, "generation", i)`` is the loop's generator of generation i,
    ``rng_for(seed, "measure", i)`` its measurements', ``rng_for(seed, "real")`` draws
    the real data; see :data:`STREAMS`.
    """
    if stream not in STREAMS:
        raise ValueError(f"stream must be one of {', '.join(STREAMS)}; got {stream!r}")
    return np.random.default_rng([int(seed), *STREAMS[stream](*keys)])


def seed_for(seed: int, stream: str, *keys: int) -> int:
    """An integer seed (for torch or sklearn) drawn from a named stream."""
    return int(rng_for(seed, stream, *keys).integers(2**63 - 1))


def generation_rng(seed: int, generation: int) -> np.random.Generator:
    """The random generator of one generation of one run: a function of (seed, generation)."""
    return rng_for(seed, "generation", generation)


def _umask() -> int:
    """The process's umask (read without changing it where /proc says it; else set and put back)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that readers see the old file or the new one, never half.

    The data reach the disk (``fsync``) before the rename, so a power loss cannot leave an
    empty file under the final name.  The folder is not synced (7 ms a file here, against
    0.3 ms for the data): a rename lost to a power cut leaves the old file or none, which a
    resumed run recomputes.  The file gets the permissions of any new file (0666 less the
    umask), not ``mkstemp``'s owner-only 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic: a crash leaves the old file or the new one
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def folder_lock(folder: Path, name: str = ".lock"):
    """An inter-process lock (``filelock``) on a cache folder: ``with folder_lock(d): ...``.

    The lock file lives in the folder; an OS lock, so a killed holder releases it."""
    from filelock import FileLock

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(folder / name)


def warn(message: str) -> None:
    """One line to stderr, for what a run did about a problem it met (a bad cache file)."""
    print(f"collapse_utils: {message}", file=sys.stderr, flush=True)


def _gen_path(run_dir: Path, i: int) -> Path:
    return Path(run_dir) / f"gen_{i:04d}.pkl"


class CorruptFile(ValueError):
    """A cache file that cannot be read back (truncated, empty, not what it should be)."""


def read_state(path: Path) -> dict:
    """The state a finished generation saved in ``path``, or :class:`CorruptFile` naming it."""
    try:
        with open(path, "rb") as f:
            state = pickle.load(f)
    except Exception as err:   # EOFError, UnpicklingError, ValueError, ...: all mean a bad file
        raise CorruptFile(f"{path} is unreadable ({type(err).__name__}: {err})") from None
    if not isinstance(state, dict) or "metrics" not in state:
        raise CorruptFile(f"{path} is not a generation file of collapse_utils")
    return state


def load_generation(run_dir, i: int, load_model: Callable[[Path], Any] | None = None):
    """The model that generation ``i`` of a run saved under ``run_dir``."""
    if load_model is not None:
        return load_model(Path(run_dir) / f"model_{int(i):04d}")
    return read_state(_gen_path(Path(run_dir), int(i)))["model"]


def _discard(run_dir: Path, first: int) -> None:
    """Delete the saved generations ``first`` and later (files, model folders) of a run."""
    for old in [*run_dir.glob("gen_[0-9][0-9][0-9][0-9].pkl"), *run_dir.glob("model_[0-9][0-9][0-9][0-9]")]:
        if int(old.name[-4:] if old.is_dir() else old.stem[-4:]) >= first:
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)


def finished_generations(run_dir: Path | None) -> list[int]:
    """Generations already written under ``run_dir``, in order."""
    if run_dir is None or not Path(run_dir).is_dir():
        return []
    found = sorted(int(p.stem[4:]) for p in Path(run_dir).glob("gen_[0-9][0-9][0-9][0-9].pkl"))
    # only a contiguous prefix 0..k counts
    done = []
    for i in found:
        if i != len(done):
            break
        done.append(i)
    return done


def run_generations(
    fit: Callable[[Any, np.random.Generator], Any],
    sample: Callable[[Any, int, np.random.Generator], Any],
    real_data,
    generations: int,
    *,
    regime: Regime | None = None,
    sizes: int | Callable[[int], int] | None = None,
    seed: int = 0,
    measure: Callable[[Generation], dict] | None = None,
    axis: int = 0,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    save_model: Callable[[Any, Path], None] | None = None,
    load_model: Callable[[Path], Any] | None = None,
    keep_models: Iterable[int] = (),
    progress: bool = True,
    desc: str | None = None,
    stop_after: int | None = None,
) -> LoopResult:
    """Run generations 0..``generations`` of the fit-sample recursion.

    fit(data, rng) -> model         learn a model from a training set
    sample(model, m, rng) -> data   draw m samples (along ``axis``) from a model
    measure(Generation) -> dict     metrics of one generation (floats or lists)

    ``regime`` (default :class:`~collapse_utils.regimes.Replace`) decides what each
    generation trains on; ``sizes`` is M_i for i >= 1, an int or a schedule
    (default: the size of the real data).  Models of the generations listed in
    ``keep_models`` are returned in ``LoopResult.models``.

    With ``run_dir``, each finished generation is saved atomically; models go in
    the same pickle unless ``save_model(model, path)``/``load_model(path)`` are
    given (for network weights).  ``resume=True`` continues after the last saved
    generation; ``resume=False`` starts afresh and overwrites.  ``stop_after=k``
    stops after generation k, as an interruption would (used by the tests).
    """
    if int(generations) != generations or generations < 0:
        raise ValueError(f"generations must be a non-negative integer; got {generations!r}")
    regime = regime or Replace()
    schedule = as_schedule(n_samples(real_data, axis) if sizes is None else sizes)
    measure = measure or (lambda g: {})
    keep = set(int(k) for k in keep_models)
    run_dir = Path(run_dir) if run_dir is not None else None

    metrics: dict[str, list] = {}
    models: dict[int, Any] = {}
    pool: list = [real_data]
    start, model, train, first_model, resumed_from = 0, None, real_data, None, None

    recorded = [0]

    def record(i: int, values: dict) -> None:
        recorded[0] = i + 1
        if i == 0:
            for k in values:
                metrics[k] = []
        if set(values) != set(metrics):
            raise ValueError(f"measure returned keys {sorted(values)} at generation {i}, "
                             f"but {sorted(metrics)} at generation 0")
        for k, v in values.items():
            metrics[k].append(v)

    def model_path(i: int) -> Path:
        return run_dir / f"model_{i:04d}"

    def restore(i: int, state: dict):
        return load_model(model_path(i)) if load_model else state["model"]

    if run_dir is not None and resume:
        done = [i for i in finished_generations(run_dir) if i <= generations]
        found, states = len(done), {}
        for i in done:   # a bad file and everything after it are computed again
            try:
                states[i] = read_state(_gen_path(run_dir, i))
            except CorruptFile as err:
                warn(f"{err}; recomputing generations {i} to {generations}")
                done = done[:i]
                break
        loaded = {}
        while done:
            # the models a resumed run reads: the newest (to continue from) and generation 0
            # (``first_model``) only when generations are left; kept ones always.  A finished
            # run may have dropped the others' weights.
            left = done[-1] < generations
            need = sorted(({0, done[-1]} if left else set()) | (keep & set(done)))
            try:
                for i in need:
                    if i not in loaded:
                        loaded[i] = restore(i, states[i])
                break
            except Exception as err:   # weights missing or unreadable: recompute from there
                warn(f"{model_path(i)} cannot be loaded ({type(err).__name__}: {err}); "
                     f"recomputing generations {i} to {generations}")
                done = done[:done.index(i)]
                loaded = {k: v for k, v in loaded.items() if k < i}
        if len(done) < found:   # what is computed again must not be read back later
            _discard(run_dir, len(done))
        for i in done:
            state = states[i]
            record(i, state["metrics"])
            if i > 0 and regime.uses_pool:
                pool.append(state["new"])
            if i in keep:
                models[i] = loaded[i]
        if done:
            last = done[-1]
            first_model = loaded.get(0)
            model = loaded.get(last)
            if states[last]["train"] is not None:
                train = states[last]["train"]
            start, resumed_from = last + 1, last
    elif run_dir is not None:
        for old in [*run_dir.glob("gen_*.pkl"), *run_dir.glob("model_*"), *run_dir.glob(".model_*")]:
            shutil.rmtree(old) if old.is_dir() else old.unlink()   # .model_*: a killed save's
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)

    bar = None
    if progress and start <= generations:
        bar = progress_bar(total=generations + 1, initial=start, desc=desc or "generations",
                           unit="gen", leave=False)
    try:
        for i in range(start, generations + 1):
            rng = generation_rng(seed, i)
            if i == 0:
                train, new = real_data, None
            else:
                previous_model = model
                train, new = regime.next_data(
                    lambda k: sample(previous_model, k, rng), schedule(i),
                    previous=train, real=real_data, pool=pool, rng=rng, axis=axis)
                if regime.uses_pool:
                    pool.append(new)
            model = fit(train, rng)
            if i == 0:
                first_model = model
            measure_rng = rng_for(seed, "measure", i)
            values = dict(measure(Generation(i, model, train, new, real_data, first_model,
                                             measure_rng)))
            record(i, values)
            if i in keep:
                models[i] = model
            if run_dir is not None:
                if save_model is not None:
                    save_model(model, model_path(i))
                # only what a resumed run needs: the model, the fresh samples when the
                # regime pools them, the training set when the regime reads it again
                state = {
                    "generation": i,
                    "metrics": values,
                    "model": None if save_model is not None else model,
                    "new": new if regime.uses_pool else None,
                    "train": train if (regime.uses_previous and i > 0) else None,
                }
                atomic_write_bytes(_gen_path(run_dir, i), pickle.dumps(state, protocol=4))
            if bar is not None:
                bar.update(1)
            if stop_after is not None and i >= stop_after:
                break
    finally:
        if bar is not None:
            bar.close()
    return LoopResult(list(range(recorded[0])), metrics, models, resumed_from)
