"""Small helpers the chapters' notebooks share.

* :func:`glue` puts a computed number into the rendered prose (myst-nb's glue:
  ``{glue:text}`name:.2f```), so the text cannot drift from the code; on Colab
  or plain Jupyter, where myst-nb is absent, it does nothing.
* :func:`banner` prints which profile (and which stand-in, if any) produced the
  chapter's figures.
"""
from __future__ import annotations

from .profiles import current_profile


def glue(name: str, value, display: bool = False):
    """Register ``value`` under ``name`` for the book's prose; returns ``value``.

    NumPy scalars are turned into Python numbers first, so format specs such as
    ``:.3f`` work in the prose.
    """
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    try:
        from myst_nb import glue as _glue
    except ImportError:  # Colab / Jupyter without myst-nb: nothing to glue into
        return value
    _glue(name, value, display=display)
    return value


def banner(chapter: str, profile: str | None = None, stand_in: str | None = None) -> str:
    """Print (and return) the line saying which profile and data produced the figures."""
    profile = current_profile(profile)
    text = f"{chapter}: figures below were produced at profile '{profile}'"
    if stand_in:
        text += f"\nSTAND-IN: {stand_in}"
    print(text)
    return text
