"""The registry of experiments, the sweep over their axes, and the run cache.

A model family registers each experiment once::

    register(Experiment(name="gmm-sweep", summary="...", settings=SCHEMA, run=run_one))

``settings`` is a schema of :class:`~collapse_utils.settings.Setting`.  Settings
declared with ``sweep=True`` (a regime, a variant, ...) and the count ``seeds`` are
the experiment's *axes*: :func:`run_experiment` runs ``run`` once for every
combination (a *run*), each with one value per axis, in its own cached run
directory, and returns one :class:`~collapse_utils.record.Record`::

    run(settings, seed=, run_dir=, resume=, progress=, stop_after=) -> RunOutput

The run directory is keyed by the experiment, the run's own settings, its seed
and a hash of the code it depends on, so every chapter, the command line and the
tests share one cache: a finished run is read back, an interrupted one resumes
after its last finished generation (``resume=True``).
"""
from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .loop import atomic_write_bytes, folder_lock, progress_bar, warn
from .profiles import current_profile
from .record import FORMAT, Record
from .settings import Setting, check_schema, resolve

#: the model families, each a sub-package that registers its experiments on import
FAMILY_MODULES = ("gaussian", "discrete", "gmm", "vae", "lm", "linreg", "kde")

#: the setting that counts independent runs (seeds seed, seed + 1, ...)
SEEDS = "seeds"


@dataclass
class RunOutput:
    """What one run returns: per-generation metrics and run-level facts.

    ``metrics[name][i]`` belongs to ``generations[i]``; ``facts`` are values that do
    not change with the generation (a parameter count, histogram bin edges);
    ``stand_in`` is None or a sentence naming what replaced the real model or data.
    """

    generations: list[int]
    metrics: dict[str, list]
    stand_in: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    """A named, runnable experiment (see the module docstring)."""

    name: str
    summary: str
    settings: Mapping[str, Setting]
    run: Callable[..., RunOutput]
    check: Callable[[dict], None] | None = None   # relations between settings
    parallel: bool = False   # runs may go to separate processes (CPU-bound, single-threaded)

    @property
    def axes(self) -> tuple[str, ...]:
        """The sweep settings, in declaration order, then ``seed`` if ``seeds`` is declared."""
        names = tuple(k for k, s in self.settings.items() if s.sweep)
        return names + (("seed",) if SEEDS in self.settings else ())

    @property
    def family(self) -> str:
        """The family package that defines this experiment, e.g. ``collapse_utils.gmm``."""
        parts = self.run.__module__.split(".")
        return ".".join(parts[:2])


_REGISTRY: dict[str, Experiment] = {}
_UNAVAILABLE: dict[str, str] = {}


def register(experiment: Experiment) -> Experiment:
    """Add ``experiment`` to the registry; its declared values are checked now."""
    check_schema(experiment.name, experiment.settings)
    gens = experiment.settings.get("generations")
    if gens is None or gens.type is not int or gens.sweep:
        raise ValueError(f"{experiment.name}: every experiment declares an integer 'generations'")
    if SEEDS in experiment.settings and experiment.settings[SEEDS].sweep:
        raise ValueError(f"{experiment.name}: {SEEDS} is a count, not a sweep")
    _REGISTRY[experiment.name] = experiment
    return experiment


def _load_all() -> None:
    """Import every family; one whose dependencies are missing is noted, not fatal.

    (A minimal ``pip install collapse_utils`` has no torch: the analytic chapters
    still run, and asking for a network experiment says which extra to install.)
    """
    for name in FAMILY_MODULES:
        if name in _UNAVAILABLE:
            continue
        try:
            importlib.import_module(f"{__package__}.{name}")
        except ImportError as err:
            missing = getattr(err, "name", None)
            if missing == f"{__package__}.{name}":
                continue  # no such family in this version
            if missing and not str(missing).startswith(__package__):
                _UNAVAILABLE[name] = (f"{name} needs {missing.split('.')[0]}: "
                                      f"pip install 'collapse_utils[nets]'")
                continue
            _UNAVAILABLE[name] = f"{name} failed to import: {type(err).__name__}: {err}"
        except Exception as err:  # a broken family must not take the others down
            _UNAVAILABLE[name] = f"{name} failed to import: {type(err).__name__}: {err}"


def unavailable() -> dict[str, str]:
    """The families that did not load, with the reason (tests assert it is only missing extras)."""
    _load_all()
    return dict(_UNAVAILABLE)


def experiments() -> dict[str, Experiment]:
    """All registered experiments by name."""
    _load_all()
    return dict(sorted(_REGISTRY.items()))


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``, or ValueError listing the known ones."""
    known = experiments()
    if name not in known:
        for family, why in _UNAVAILABLE.items():
            if name == family or name.startswith(family + "-"):
                raise ValueError(f"experiment {name!r} is not available: {why}")
        missing = f" (not loaded: {'; '.join(_UNAVAILABLE.values())})" if _UNAVAILABLE else ""
        raise ValueError(f"experiment must be one of {', '.join(known)}; got {name!r}{missing}")
    return known[name]


def resolve_settings(experiment: Experiment | str, profile: str | None = None,
                     overrides: Mapping[str, Any] | None = None) -> dict:
    """The experiment's settings at ``profile`` with ``overrides`` applied and checked."""
    exp = get_experiment(experiment) if isinstance(experiment, str) else experiment
    return resolve(exp.settings, profile, overrides, name=exp.name, check=exp.check)


# ----------------------------------------------------------------------------- the cache
def cache_root() -> Path:
    """Where run directories live: ``$COLLAPSE_CACHE`` or ``~/.cache/collapse_utils``."""
    return Path(os.environ.get("COLLAPSE_CACHE") or Path.home() / ".cache" / "collapse_utils")


def _digest(paths) -> str:
    h = hashlib.sha256()
    root = Path(__file__).parent
    for path in sorted(paths):
        h.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return h.hexdigest()[:12]


#: code that draws or prints results but never computes them: a change to it keeps the run cache
NOT_IN_RESULTS = frozenset({"figures.py", "explorer.py", "explorers.py", "plotting.py", "notebook.py",
                            "cli.py", "assignments.py", "__main__.py", "compare.py", "report.py"})


def in_results(path: Path) -> bool:
    """Whether a source file computes results (figure modules, ``*_figures.py`` included, do not)."""
    return path.name not in NOT_IN_RESULTS and not path.name.endswith("_figures.py")


def source_digest(family: str | None = None) -> str:
    """A hash of the code a result depends on: the core, and ``family``'s package
    (``collapse_utils.gmm``) less the files in :data:`NOT_IN_RESULTS`; or the whole
    package when ``family`` is None (the book's execution cache, where figures count).

    Results depend on the code as much as on the settings, so run directories (and
    the book's execution cache) are keyed by it: after a change, cached generations
    are recomputed rather than mixed with the new code's.
    """
    root = Path(__file__).parent
    if family is None:
        return _digest(root.rglob("*.py"))
    sub = root / family.split(".")[-1]
    files = [p for p in root.glob("*.py")] + (list(sub.rglob("*.py")) if sub.is_dir() else [])
    return _digest(p for p in files if in_results(p))


def run_key(exp: Experiment, profile: str, settings: Mapping, seed: int) -> str:
    """A run directory's name: profile, a hash of its settings and code, and seed."""
    blob = json.dumps({"settings": settings, "source": source_digest(exp.family)},
                      sort_keys=True, default=str)
    return f"{profile}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}-seed{seed}"


def jsonable(x):
    """``x`` with numpy types turned into Python ones and non-finite floats into strings."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        return jsonable(x.item())
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


# ----------------------------------------------------------------------------- the sweep
def sweep_points(exp: Experiment, settings: Mapping, seed: int) -> list[tuple[dict, dict, int]]:
    """Every run of a sweep: (axis values, the run's own settings, seed).

    A run's settings hold one value per sweep setting and no ``seeds``.
    """
    sweeps = [k for k in exp.axes if k != "seed"]
    seeds = range(int(seed), int(seed) + int(settings.get(SEEDS, 1)))
    points = []
    for combo in itertools.product(*(settings[k] for k in sweeps)):
        for s in seeds:
            own = {k: v for k, v in settings.items() if k != SEEDS}
            own.update(zip(sweeps, combo))
            axes = dict(zip(sweeps, combo))
            if SEEDS in settings:
                axes["seed"] = s
            points.append((axes, own, s))
    return points


def distinct_sweeps(exp: Experiment, settings: Mapping) -> dict:
    """``settings`` with each sweep setting's repeated values dropped (first kept): a value
    given twice would be one run, and two workers in its one folder."""
    out = dict(settings)
    for k in exp.axes:
        if k != "seed" and isinstance(out.get(k), (list, tuple)):
            kept = []
            for v in out[k]:
                if v not in kept:
                    kept.append(v)
            out[k] = kept
    return out


def _result_path(run_dir: Path) -> Path:
    return Path(run_dir) / "result.json"


def _read_result(run_dir: Path) -> dict | None:
    path = _result_path(run_dir)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _run_point(name: str, own: dict, seed: int, run_dir: str, resume: bool, progress: bool,
               stop_after: int | None, module: str | None = None) -> dict:
    """Run (or read back) one run of a sweep; returns its stored result.

    The run's folder is locked while it runs, so two processes never write one run: the
    second waits, then reads back the first's result (or continues where it stopped).
    ``module`` (the one defining the experiment) is imported first, so that a worker
    process finds experiments registered outside the families too.
    """
    from filelock import Timeout

    if module is not None and name not in _REGISTRY:
        importlib.import_module(module)
    exp = get_experiment(name)
    run_dir = Path(run_dir)
    lock = folder_lock(run_dir)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        warn(f"waiting for another process that runs {run_dir}")
        lock.acquire()
        resume = True   # read back, or continue, what that process wrote
    try:
        if resume and stop_after is None:
            cached = _read_result(run_dir)
            if cached is not None and cached.get("complete"):
                return cached
        t0 = time.perf_counter()
        out = exp.run(dict(own), seed=int(seed), run_dir=run_dir, resume=resume,
                      progress=progress, stop_after=stop_after)
        n = len(out.generations)
        for key, values in out.metrics.items():
            if len(values) != n:
                raise RuntimeError(f"{name}: metric {key!r} has {len(values)} values for {n} "
                                   f"generations")
        result = jsonable({"generations": list(out.generations), "metrics": out.metrics,
                           "facts": out.facts, "stand_in": out.stand_in,
                           "complete": stop_after is None,
                           "wall_time_s": round(time.perf_counter() - t0, 3)})
        atomic_write_bytes(_result_path(run_dir), json.dumps(result).encode())
        return result
    finally:
        lock.release()


def _exit_with_parent(parent: int) -> None:
    """A sweep worker's initializer: end the worker when its parent process is gone.

    (A parent killed with SIGKILL or SIGTERM cannot stop its pool; without this its
    workers would finish their queue and then wait forever.)"""
    import threading

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _workers(exp: Experiment, pending: int) -> int:
    if not exp.parallel or pending < 2:
        return 1
    env = os.environ.get("COLLAPSE_WORKERS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"COLLAPSE_WORKERS must be a positive integer; got {env!r}") from None
        if n < 1:
            raise ValueError(f"COLLAPSE_WORKERS must be a positive integer; got {env!r}")
    else:
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(n, pending))


def run_experiment(name: str, *, profile: str | None = None, seed: int = 0,
                   overrides: Mapping[str, Any] | None = None, out: str | os.PathLike | None = None,
                   resume: bool = True, progress: bool = True,
                   stop_after: int | None = None) -> Record:
    """Run every run of an experiment's sweep and return (and write) one record.

    With ``resume`` (the default), a finished run is read back from the cache and
    an interrupted one continues after its last finished generation; with
    ``resume=False`` every run starts afresh.  ``stop_after=k`` stops each run
    after generation k, as an interruption would (for tests).  The record is
    written to ``out/metrics.json`` (default: a folder of its own under the experiment's cache
    folder, ``records/KEY``, keyed like a run by profile, settings, code and seed).
    """
    exp = get_experiment(name)
    profile = current_profile(profile)
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    settings = distinct_sweeps(exp, resolve_settings(exp, profile, overrides))
    points = sweep_points(exp, settings, int(seed))
    dirs = [cache_root() / exp.name / run_key(exp, profile, own, s) for _, own, s in points]
    t0 = time.perf_counter()
    results: list[dict | None] = [None] * len(points)
    todo = []
    for k, ((_, own, s), d) in enumerate(zip(points, dirs)):
        cached = _read_result(d) if resume and stop_after is None else None
        if cached is not None and cached.get("complete"):
            results[k] = cached
        else:
            todo.append(k)
    workers = _workers(exp, len(todo))
    if workers == 1:
        for k in todo:
            _, own, s = points[k]
            results[k] = _run_point(exp.name, own, s, str(dirs[k]), resume, progress, stop_after)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")  # safe under Jupyter, torch and BLAS threads
        env_profile = os.environ.get("COLLAPSE_PROFILE")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_exit_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            futures = {pool.submit(_run_point, exp.name, points[k][1], points[k][2], str(dirs[k]),
                                   resume, False, stop_after, exp.run.__module__): k
                       for k in todo}
            bar = progress_bar(total=len(todo), desc=f"{exp.name} ({workers} processes)",
                               unit="run", leave=False, disable=not progress)
            try:
                from concurrent.futures import as_completed

                for fut in as_completed(futures):
                    results[futures[fut]] = fut.result()
                    bar.update(1)
            finally:
                bar.close()
        if env_profile is not None:
            os.environ["COLLAPSE_PROFILE"] = env_profile
    runs = []
    for (axes, _, _), d, res in zip(points, dirs, results):
        runs.append({**axes, "dir": str(d), "generations": res["generations"],
                     "metrics": res["metrics"], "facts": res.get("facts", {}),
                     "stand_in": res.get("stand_in")})
    data = assemble(exp, profile, int(seed), settings, runs,
                    wall_time_s=round(time.perf_counter() - t0, 3))
    folder = Path(out) if out is not None else cache_root() / exp.name / "records" / run_key(
        exp, profile, settings, int(seed))   # each invocation's own record, not a shared file
    path = folder / "metrics.json"
    atomic_write_bytes(path, json.dumps(data, indent=1).encode())
    return Record(data, path)


def assemble(exp: Experiment, profile: str, seed: int, settings: Mapping, runs: list[dict],
             wall_time_s: float = 0.0) -> dict:
    """The metrics.json document: settings and facts once, then one entry per run.

    Facts that every run shares go to the top level; a fact whose value differs
    between runs stays in those runs' entries.  The stand-in sentences of the runs
    are joined (usually all runs share one).
    """
    shared: dict[str, Any] = {}
    if runs:
        first = runs[0]["facts"]
        shared = {k: v for k, v in first.items() if all(r["facts"].get(k, object()) == v
                                                           for r in runs)}
    for r in runs:
        r["facts"] = {k: v for k, v in r["facts"].items() if k not in shared}
    stand_ins = list(dict.fromkeys(r.pop("stand_in") for r in runs if r.get("stand_in")))
    gens = runs[0]["generations"] if runs and all(r["generations"] == runs[0]["generations"]
                                                  for r in runs) else None
    return jsonable({
        "format": FORMAT,
        "experiment": exp.name,
        "profile": profile,
        "seed": seed,
        "settings": dict(settings),
        "axes": {a: (settings[a] if a != "seed" else
                     list(range(seed, seed + int(settings.get(SEEDS, 1))))) for a in exp.axes},
        "stand_in": "; ".join(stand_ins) or None,
        "facts": shared,
        "generations": gens,
        "runs": runs,
        "wall_time_s": wall_time_s,
    })


def run(name: str, profile: str | None = None, *, progress: bool = True, seed: int = 0,
        **overrides) -> Record:
    """A notebook's one call: the experiment's record, from the cache when it is there.

    ``collapse_utils.run("gmm-sweep", generations=50)`` runs (or reads back) every
    run of the sweep at the profile in force, with the given settings changed.
    """
    return run_experiment(name, profile=profile, seed=seed, overrides=overrides, resume=True,
                          progress=progress)
