"""Small helpers the chapters' notebooks share.

* :func:`glue` (and :func:`glue_all`, a report's whole dict) puts a computed number into the rendered prose (myst-nb's glue:
  ``{glue:text}`name:.2f```), so the text cannot drift from the code; on Colab
  or plain Jupyter, where myst-nb is absent, it does nothing.
* :func:`within` is the one-line check of the hidden assert cells.
* :func:`key_numbers` shows a chapter's key numbers as a small table, so a reader
  on Colab (where ``{glue:text}`` roles stay raw) sees them too.
* :func:`banner` prints which profile (and which stand-in, if any) produced the
  chapter's figures.
"""
from __future__ import annotations

import math

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


def glue_all(prefix: str, numbers: dict, keys=None) -> None:
    """Glue every entry of ``numbers`` (a report function's dict) as ``{prefix}_{key}``, or
    as ``key`` itself when ``prefix`` is empty; ``keys``: only those entries.

    Returns nothing, so a cell that ends with it shows no output."""
    for key in numbers if keys is None else keys:
        glue(f"{prefix}_{key}" if prefix else key, numbers[key])


def within(value, expected, sd=None, *, k: float = 4.0, rel: float | None = None) -> bool:
    """Whether ``value`` lies within ``k`` standard errors ``sd`` (or relative ``rel``) of
    ``expected``; raises AssertionError with both numbers otherwise.

    ``assert within(mean, theory, se)`` reads as the claim it checks.
    """
    value, expected = float(value), float(expected)
    if sd is None and rel is None:
        raise ValueError("within needs sd (a standard error) or rel (a relative tolerance)")
    tol = k * float(sd) if sd is not None else abs(expected) * float(rel)
    if not (math.isfinite(value) and abs(value - expected) <= tol):
        raise AssertionError(f"{value:.6g} is not within {tol:.3g} of {expected:.6g}")
    return True


def key_numbers(rows: dict, title: str = "Key numbers of this run"):
    """A two-column table (quantity, value) of the chapter's key numbers.

    Returns a pandas Styler when pandas is installed (rendered as a table in
    Jupyter, Colab and the book), else a plain string.
    """
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    try:
        import pandas as pd
    except ImportError:
        width = max(map(len, rows), default=0)
        return "\n".join([title] + [f"{k:<{width}}  {fmt(v)}" for k, v in rows.items()])
    frame = pd.DataFrame({"value": [fmt(v) for v in rows.values()]},
                         index=pd.Index(list(rows), name="quantity"))
    return frame.style.set_caption(title)


def banner(chapter: str, profile: str | None = None, stand_in: str | None = None) -> str:
    """Print (and return) the line saying which profile and data produced the figures."""
    profile = current_profile(profile)
    text = f"{chapter}: figures below were produced at profile '{profile}'"
    if stand_in:
        text += f"\nSTAND-IN: {stand_in}"
    print(text)
    return text
