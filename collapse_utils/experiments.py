"""The registry of experiments that the command line and the notebooks run.

Each model family registers its experiments with :func:`register`, declaring its
settings for every profile in one table.  :func:`run_experiment` resolves the
settings, picks the run directory (keyed by experiment, profile, settings and
seed), runs the experiment and writes ``metrics.json``::

    {"experiment", "profile", "seed", "settings", "stand_in",
     "generations": [0, 1, ...], "metrics": {name: [one value per generation]}}

``stand_in`` is null, or a sentence naming what replaced the real model or data
(for example when the Hugging Face Hub cannot be reached).
"""
from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .loop import atomic_write_bytes
from .profiles import PROFILES, current_profile, sizes_for

#: modules that register experiments, imported on first use of the registry
FAMILY_MODULES = ("gaussian", "discrete", "gmm", "vae", "lm")


@dataclass
class RunOutput:
    """What an experiment's ``run`` returns."""

    generations: list[int]
    metrics: dict[str, list]
    stand_in: str | None = None


@dataclass(frozen=True)
class Experiment:
    """A named, runnable experiment.

    ``settings`` maps each profile to its settings dict (all rows share keys);
    ``choices`` lists the allowed values of settings that take only a few;
    ``run(settings, seed=, run_dir=, resume=, progress=)`` returns a :class:`RunOutput`.
    """

    name: str
    summary: str
    settings: Mapping[str, Mapping[str, Any]]
    run: Callable[..., RunOutput]
    choices: Mapping[str, tuple] = field(default_factory=dict)
    chapter: str = ""


_REGISTRY: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    """Add ``experiment`` to the registry (its settings table is checked now)."""
    sizes_for(experiment.settings, PROFILES[0])  # raises if rows differ
    for key, allowed in experiment.choices.items():
        for p in PROFILES:
            if experiment.settings[p][key] not in allowed:
                raise ValueError(f"{experiment.name}: default {key}={experiment.settings[p][key]!r} "
                                 f"at profile {p} is not among {allowed}")
    _REGISTRY[experiment.name] = experiment
    return experiment


_UNAVAILABLE: dict[str, str] = {}


def _load_all() -> None:
    """Import every family module; one whose dependencies are missing is skipped, not fatal.

    (A minimal ``pip install collapse_utils`` has no torch: the analytic chapters
    still run, and asking for a network experiment says what is missing.)
    """
    for name in FAMILY_MODULES:
        if name in _UNAVAILABLE:
            continue
        try:
            importlib.import_module(f"{__package__}.{name}")
        except ImportError as err:
            if getattr(err, "name", None) == f"{__package__}.{name}":
                continue  # no such module in this version
            if getattr(err, "name", None) and not str(err.name).startswith(__package__):
                _UNAVAILABLE[name] = f"{name}: {err}"
                continue
            raise


def experiments() -> dict[str, Experiment]:
    """All registered experiments by name."""
    _load_all()
    return dict(sorted(_REGISTRY.items()))


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``, or ValueError listing the known ones."""
    known = experiments()
    if name not in known:
        missing = f" (not loaded: {'; '.join(_UNAVAILABLE.values())})" if _UNAVAILABLE else ""
        raise ValueError(f"experiment must be one of {', '.join(known)}; got {name!r}{missing}")
    return known[name]


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Convert a command-line string (or any value) to the type of the default."""
    if isinstance(value, str) and not isinstance(default, str):
        text = value.strip()
        if isinstance(default, bool):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{key} must be true or false; got {value!r}")
        if isinstance(default, int):
            try:
                return int(text)
            except ValueError:
                raise ValueError(f"{key} must be an integer; got {value!r}") from None
        if isinstance(default, float) or default is None:
            try:
                return float(text)
            except ValueError:
                if default is None and text.lower() in ("none", "null"):
                    return None
                raise ValueError(f"{key} must be a number; got {value!r}") from None
        if isinstance(default, (list, tuple)):
            try:
                return type(default)(json.loads(text))
            except (json.JSONDecodeError, TypeError):
                raise ValueError(f"{key} must be a JSON list such as {json.dumps(list(default))}; "
                                 f"got {value!r}") from None
    if isinstance(default, bool) and not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false; got {value!r}")
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise ValueError(f"{key} must be an integer; got {value!r}")
        return int(value)
    if isinstance(default, float) and isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return float(value)
    return value


def resolve_settings(experiment: Experiment | str, profile: str | None = None,
                     overrides: Mapping[str, Any] | None = None) -> dict:
    """The experiment's settings at ``profile`` with ``overrides`` applied and checked."""
    exp = get_experiment(experiment) if isinstance(experiment, str) else experiment
    settings = sizes_for(exp.settings, profile)
    for key, value in (overrides or {}).items():
        key = key.replace("-", "_")
        if key not in settings:
            raise ValueError(f"unknown setting {key!r} for {exp.name}; "
                             f"settings are {', '.join(settings)}")
        settings[key] = _coerce(key, value, settings[key])
    for key, allowed in exp.choices.items():
        if settings[key] not in allowed:
            raise ValueError(f"{key} must be one of {', '.join(map(str, allowed))}; "
                             f"got {settings[key]!r}")
    for key, value in settings.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{key} must be finite; got {value!r}")
    return settings


def cache_root() -> Path:
    """Where run directories live: ``$COLLAPSE_CACHE`` or ``~/.cache/collapse_utils``."""
    return Path(os.environ.get("COLLAPSE_CACHE") or Path.home() / ".cache" / "collapse_utils")


def source_digest() -> str:
    """A hash of collapse_utils' source files.

    Results depend on the code as much as on the settings, so run directories and
    the book's execution cache are keyed by it: after any change to the package,
    cached generations are recomputed rather than mixed with new code's.
    """
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:12]


def run_key(name: str, profile: str, settings: Mapping, seed: int) -> str:
    """The run directory's name: profile, a hash of settings and package source, and seed."""
    blob = json.dumps({"settings": settings, "source": source_digest()}, sort_keys=True, default=str)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:10]
    return f"{profile}-{digest}-seed{seed}"


def run_dir_for(name: str, profile: str, settings: Mapping, seed: int) -> Path:
    return cache_root() / name / run_key(name, profile, settings, seed)


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def run_experiment(name: str, *, profile: str | None = None, seed: int = 0,
                   overrides: Mapping[str, Any] | None = None, out: str | os.PathLike | None = None,
                   resume: bool = False, progress: bool = True) -> dict:
    """Run an experiment and return (and write to ``out/metrics.json``) its record.

    ``out`` defaults to the run directory, which is keyed by experiment, profile,
    settings and seed; generations finished earlier are reused when ``resume``.
    """
    exp = get_experiment(name)
    profile = current_profile(profile)
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    settings = resolve_settings(exp, profile, overrides)
    run_dir = run_dir_for(exp.name, profile, settings, int(seed))
    t0 = time.perf_counter()
    result = exp.run(settings, seed=int(seed), run_dir=run_dir, resume=resume, progress=progress)
    record = {
        "experiment": exp.name,
        "profile": profile,
        "seed": int(seed),
        "settings": settings,
        "stand_in": result.stand_in,
        "generations": list(result.generations),
        "metrics": result.metrics,
        "wall_time_s": round(time.perf_counter() - t0, 3),
    }
    record = _jsonable(record)
    for key, values in record["metrics"].items():
        if len(values) != len(record["generations"]):
            raise RuntimeError(f"{exp.name}: metric {key!r} has {len(values)} values for "
                               f"{len(record['generations'])} generations")
    out = Path(out) if out is not None else run_dir
    atomic_write_bytes(out / "metrics.json", json.dumps(record, indent=1).encode())
    record["path"] = str(out / "metrics.json")
    return record
