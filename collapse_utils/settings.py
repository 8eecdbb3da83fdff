"""One declared settings schema for every experiment, checked once.

An experiment declares each of its settings as a :class:`Setting`: its values at
the three profiles, its type, and its allowed range or choices::

    SETTINGS = {
        "M": Setting((100, 100, 100), low=2, help="samples per generation"),
        "regime": Setting(["replace", "accumulate"], choices=REGIMES, sweep=True),
        "seeds": Setting((2, 3, 5), low=1, help="independent runs"),
    }

A tuple of three gives the ``smoke``, ``default`` and ``paper`` values; any other
value is the same at every profile.  A ``sweep`` setting holds a list: the core
runs one chain per element (see :mod:`collapse_utils.experiments`), and each
chain sees one element.  :func:`resolve` applies command-line or notebook
overrides (strings are converted to the setting's type) and checks every value,
so a bad one fails at once with one line naming the setting and what is allowed.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from .profiles import PROFILES, current_profile

KINDS = (bool, int, float, str, list)


@dataclass(frozen=True)
class Setting:
    """One setting: per-profile values, type, allowed values, and a one-line reason."""

    values: Any
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    kind: type | None = None
    sweep: bool = False
    optional: bool = False   # None is allowed (e.g. "no budget")
    help: str = ""

    def at(self, profile: str) -> Any:
        """The declared value at ``profile`` (a fresh copy for lists)."""
        v = self.values
        if isinstance(v, tuple):
            if len(v) != len(PROFILES):
                raise ValueError(f"a per-profile tuple needs {len(PROFILES)} values "
                                 f"({', '.join(PROFILES)}); got {v!r}")
            v = v[PROFILES.index(profile)]
        return list(v) if isinstance(v, list) else v

    @property
    def type(self) -> type:
        """The element type: declared, else that of the first non-None declared value."""
        if self.kind is not None:
            return self.kind
        for p in PROFILES:
            v = self.at(p)
            if self.sweep and isinstance(v, list):
                v = v[0] if v else None
            if v is not None:
                if isinstance(v, bool):
                    return bool
                for k in (int, float, str, list):
                    if isinstance(v, k):
                        return k
        return str

    def allowed(self) -> str:
        """What this setting takes, in words, for error messages and ``settings``."""
        t = self.type
        if self.choices is not None:
            text = "one of " + ", ".join(map(str, self.choices))
        elif t is bool:
            text = "true or false"
        elif t in (int, float):
            word = "an integer" if t is int else "a number"
            if self.low is not None and self.high is not None:
                text = f"{word} in [{self.low:g}, {self.high:g}]"
            elif self.low is not None:
                text = f"{word} >= {self.low:g}"
            elif self.high is not None:
                text = f"{word} <= {self.high:g}"
            else:
                text = word
        elif t is list:
            text = "a JSON list"
        else:
            text = "a string"
        if self.optional:
            text += " (or none)"
        if self.sweep:
            text = f"a list of values, each {text}"
        return text

    # ------------------------------------------------------------------ checking
    def check(self, name: str, value: Any) -> Any:
        """``value`` converted to this setting's type and checked, or ValueError."""
        if self.sweep:
            if isinstance(value, str):
                text = value.strip()
                try:
                    value = json.loads(text) if text.startswith("[") else [v for v in text.split(",") if v]
                except json.JSONDecodeError as err:
                    raise ValueError(f"{name} must be {self.allowed()} (a JSON list or "
                                     f"comma-separated); got {text!r}: {err.msg} at character "
                                     f"{err.pos + 1}") from None
            if not isinstance(value, (list, tuple)):
                value = [value]
            if not value:
                raise ValueError(f"{name} must be {self.allowed()}, not empty")
            return [self._check_one(name, v) for v in value]
        return self._check_one(name, value)

    def _check_one(self, name: str, value: Any) -> Any:
        def bad(why: str = ""):
            return ValueError(f"{name} must be {self.allowed()}; got {value!r}{why}")

        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")
                             and self.optional):
            if self.optional:
                return None
            raise bad()
        t = self.type
        v = value
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, str) and t is not str:
            text = v.strip()
            if t is bool:
                if text.lower() in ("1", "true", "yes", "on"):
                    v = True
                elif text.lower() in ("0", "false", "no", "off"):
                    v = False
                else:
                    raise bad()
            elif t is int:
                try:
                    v = int(text)
                except ValueError:
                    try:
                        f = float(text)
                    except ValueError:
                        raise bad() from None
                    if not f.is_integer():
                        raise bad() from None
                    v = int(f)
            elif t is float:
                try:
                    v = float(text)
                except ValueError:
                    raise bad() from None
            elif t is list:
                try:
                    v = json.loads(text)
                except json.JSONDecodeError as err:
                    raise bad(f" ({err.msg} at character {err.pos + 1})") from None
        if t is bool and not isinstance(v, bool):
            raise bad()
        if t is int:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise bad()
            if isinstance(v, float):
                if not v.is_integer():
                    raise bad()
                v = int(v)
        if t is float:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise bad()
            v = float(v)
            if not math.isfinite(v):
                raise bad()
        if t is str and not isinstance(v, str):
            raise bad()
        if t is list:
            if not isinstance(v, (list, tuple)):
                raise bad()
            v = list(v)
        if self.choices is not None and v not in self.choices:
            raise bad()
        if t in (int, float):
            if self.low is not None and v < self.low:
                raise bad()
            if self.high is not None and v > self.high:
                raise bad()
        return v


Schema = Mapping[str, Setting]


def check_schema(name: str, schema: Schema) -> None:
    """Raise ValueError if a declared value breaks its own setting's rules."""
    for key, setting in schema.items():
        if not isinstance(setting, Setting):
            raise TypeError(f"{name}: setting {key!r} must be a Setting; got {setting!r}")
        for p in PROFILES:
            try:
                setting.check(key, setting.at(p))
            except ValueError as err:
                raise ValueError(f"{name}: the {p} value of {err}") from None


def resolve(schema: Schema, profile: str | None = None, overrides: Mapping[str, Any] | None = None,
            *, name: str = "experiment", check: Callable[[dict], None] | None = None) -> dict:
    """The settings at ``profile`` with ``overrides`` applied, every value checked.

    Keys of ``overrides`` may use dashes for underscores.  ``check(settings)`` is
    the experiment's own test of relations between settings (it raises ValueError).
    """
    profile = current_profile(profile)
    settings = {key: s.at(profile) for key, s in schema.items()}
    for key, value in (overrides or {}).items():
        key = key.replace("-", "_")
        if key not in schema:
            raise ValueError(f"unknown setting {key!r} for {name}; settings are {', '.join(schema)}")
        settings[key] = value
    settings = {key: schema[key].check(key, value) for key, value in settings.items()}
    if check is not None:
        check(settings)
    return settings


def describe(schema: Schema, profile: str | None = None) -> dict:
    """``{setting: {"value", "allowed", "help"}}`` at ``profile``, for ``settings EXPERIMENT``."""
    profile = current_profile(profile)
    return {key: {"value": s.at(profile), "allowed": s.allowed(), "help": s.help}
            for key, s in schema.items()}
