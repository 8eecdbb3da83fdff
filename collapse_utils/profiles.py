"""Run-size profiles: one switch, ``COLLAPSE_PROFILE``, scales every chapter.

``smoke``   seconds per chapter; what CI runs.
``default`` minutes per chapter on a laptop CPU; what the rendered book shows.
``paper``   the paper's sizes (a GPU where a network is trained).

The code path is identical at every profile; only the numbers change.  Each experiment
declares its sizes for all three profiles in its settings schema (:mod:`.settings`).
"""
from __future__ import annotations

import os

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
