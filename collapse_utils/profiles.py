"""Run-size profiles: one switch, ``COLLAPSE_PROFILE``, scales every chapter.

``smoke``   seconds per chapter; what CI runs.
``default`` minutes per chapter on a laptop CPU; what the rendered book shows.
``paper``   the paper's sizes (a GPU where a network is trained).

The code path is identical at every profile; only the numbers change.  Each model
family declares its sizes for all three profiles in one dictionary, and
:func:`sizes_for` picks the right row.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

PROFILES = ("smoke", "default", "paper")
ENV_VAR = "COLLAPSE_PROFILE"


def check_profile(profile: str) -> str:
    """Return ``profile`` unchanged, or raise ValueError naming the allowed values."""
    if profile not in PROFILES:
        raise ValueError(
            f"profile must be one of {', '.join(PROFILES)}; got {profile!r}"
        )
    return profile


def current_profile(profile: str | None = None) -> str:
    """The profile in force: ``profile`` if given, else ``$COLLAPSE_PROFILE``, else ``default``."""
    if profile is None:
        profile = os.environ.get(ENV_VAR, "").strip() or "default"
        if profile not in PROFILES:
            raise ValueError(
                f"{ENV_VAR} must be one of {', '.join(PROFILES)}; got {profile!r}"
            )
    return check_profile(profile)


def sizes_for(table: Mapping[str, Mapping[str, Any]], profile: str | None = None) -> dict:
    """The settings row of ``table`` for the profile in force (a fresh dict).

    ``table`` maps every profile name to a dict of settings; all rows must have
    the same keys, so a chapter never silently lacks a setting at some size.
    """
    missing = [p for p in PROFILES if p not in table]
    if missing:
        raise ValueError(f"size table lacks profiles {missing}")
    keys = set(table[PROFILES[0]])
    for p in PROFILES[1:]:
        if set(table[p]) != keys:
            raise ValueError(
                f"size table rows differ: {p!r} has {sorted(set(table[p]) ^ keys)} "
                f"where {PROFILES[0]!r} does not (or the other way round)"
            )
    return dict(table[current_profile(profile)])
