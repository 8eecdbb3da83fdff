"""The record of an experiment: ``metrics.json``, and one reader for it.

Format 2 (``"format": 2``)::

    {"format": 2, "experiment", "profile", "seed", "settings",
     "axes": {"regime": ["replace", "keep-real"], "seed": [0, 1]},
     "stand_in": null or a sentence, "facts": {name: value shared by every run},
     "generations": [0, 1, ...] (null if runs differ),
     "runs": [{"regime": "replace", "seed": 0, "dir": run directory,
               "generations": [...], "metrics": {name: [one value per generation]},
               "facts": {facts of this run alone}}, ...],
     "wall_time_s"}

:meth:`Record.metric` is the one way a chapter reads results: the values of a
metric for the runs matching a selection, as an array of shape (runs,
generations, ...).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = 2


class Record:
    """A finished experiment: settings, facts and the metrics of every run."""

    def __init__(self, data: dict, path: str | Path | None = None):
        if data.get("format") != FORMAT:
            raise ValueError(f"record format must be {FORMAT}; got {data.get('format')!r} "
                             f"(rerun the experiment with this collapse_utils)")
        self.data = data
        self.path = Path(path) if path is not None else None

    @classmethod
    def load(cls, path: str | Path) -> "Record":
        """Read a ``metrics.json`` (or the folder holding it)."""
        path = Path(path)
        if path.is_dir():
            path = path / "metrics.json"
        return cls(json.loads(path.read_text()), path)

    # ------------------------------------------------------------------ plain facts
    experiment = property(lambda self: self.data["experiment"])
    profile = property(lambda self: self.data["profile"])
    seed = property(lambda self: self.data["seed"])
    settings = property(lambda self: self.data["settings"])
    axes = property(lambda self: self.data["axes"])
    stand_in = property(lambda self: self.data["stand_in"])
    facts = property(lambda self: self.data["facts"])

    @property
    def generations(self) -> np.ndarray:
        """The generations every run has (0, 1, ..., G)."""
        gens = self.data["generations"]
        if gens is None:
            raise ValueError("runs of this record have different generations; "
                             "read them per run with runs()")
        return np.asarray(gens)

    def values(self, axis: str) -> list:
        """The values the sweep took along ``axis`` (e.g. the regimes)."""
        if axis not in self.axes:
            raise ValueError(f"axis must be one of {', '.join(self.axes)}; got {axis!r}")
        return list(self.axes[axis])

    # ------------------------------------------------------------------ selecting runs
    def runs(self, **selection) -> list[dict]:
        """The runs whose axis values match ``selection`` (e.g. ``regime="replace"``)."""
        for key in selection:
            if key not in self.axes:
                raise ValueError(f"{self.experiment}: selection keys must be axes "
                                 f"({', '.join(self.axes) or 'none'}); got {key!r}")
        chosen = [r for r in self.data["runs"] if all(r[k] == v for k, v in selection.items())]
        if not chosen:
            avail = {a: self.axes[a] for a in selection}
            raise ValueError(f"{self.experiment}: no run has {selection}; axes take {avail}")
        return chosen

    def one(self, **selection) -> dict:
        """The single run matching ``selection``."""
        chosen = self.runs(**selection)
        if len(chosen) != 1:
            raise ValueError(f"{self.experiment}: {len(chosen)} runs match {selection}; "
                             f"name more axes ({', '.join(self.axes)})")
        return chosen[0]

    def run_dir(self, **selection) -> Path:
        """The cache folder of the single run matching ``selection`` (saved models live there)."""
        return Path(self.one(**selection)["dir"])

    def metric(self, name: str, **selection) -> np.ndarray:
        """Metric ``name`` of the matching runs: an array (runs, generations, ...)."""
        chosen = self.runs(**selection)
        known = chosen[0]["metrics"]
        if name not in known:
            raise ValueError(f"metric must be one of {', '.join(sorted(known))}; got {name!r}")
        rows = [r["metrics"][name] for r in chosen]
        if len({len(r) for r in rows}) != 1:
            raise ValueError(f"runs matching {selection} have different numbers of generations")
        try:
            return np.asarray(rows, dtype=float)
        except (TypeError, ValueError):
            return np.asarray(rows, dtype=object)

    def fact(self, name: str, **selection) -> Any:
        """A run-level fact: shared by every run, or that of the single matching run."""
        if name in self.facts:
            return self.facts[name]
        own = self.one(**selection)["facts"] if selection or len(self.data["runs"]) == 1 else {}
        if name in own:
            return own[name]
        known = sorted(set(self.facts) | {k for r in self.data["runs"] for k in r["facts"]})
        raise ValueError(f"fact must be one of {', '.join(known)}; got {name!r}")

    def __repr__(self) -> str:
        return (f"<Record {self.experiment} profile={self.profile} runs={len(self.data['runs'])} "
                f"axes={ {a: len(v) for a, v in self.axes.items()} }>")
