"""One check for every family's report functions (issue #25 §1): each key a report function
returns is documented on one line of its docstring, is a plain finite number, and no two
functions a chapter glues together return the same key.

Two docstring styles are read: ``key: what it is`` lines (``<placeholder>`` for a family of
keys) and ``* ``key``: what it is`` bullets.
"""
from __future__ import annotations

import inspect
import math
import re

LINE = re.compile(r"^([\w<>-]+): \S", flags=re.M)
BULLET = re.compile(r"^\s*\* ``([\w<>-]+)``: \S", flags=re.M)


def documented(f) -> list[str]:
    """The keys ``f``'s docstring documents, as written (placeholders kept)."""
    doc = inspect.getdoc(f) or ""
    return LINE.findall(doc) + BULLET.findall(doc)


def patterns(f, values: dict | None = None) -> list[re.Pattern]:
    """:func:`documented` as regular expressions: ``<name>`` matches one of ``values[name]``
    when given, else any word (letters, digits, ``_`` and ``-``)."""
    values = values or {}

    def placeholder(m):
        name = m[1]
        if name in values:
            return "(" + "|".join(re.escape(str(v)) for v in values[name]) + ")"
        return r"[\w-]+"

    out = []
    for key in documented(f):
        parts = re.split(r"(<\w+>)", key)
        out.append(re.compile("".join(placeholder(re.match(r"<(\w+)>", p)) if p.startswith("<")
                                      else re.escape(p) for p in parts) + "$"))
    return out


def check_report(numbers: dict, *, values: dict | None = None, kinds=(int, float),
                 prefix: str = "", unique: bool = True) -> None:
    """Assert, for ``numbers`` = {report function: the dict it returned}: every key matches
    exactly one documented key of its function and every documented key is returned; every
    value's type is one of ``kinds`` (a float is finite); with ``unique``, no key is returned by
    two functions (the chapter glues them all under one ``prefix``)."""
    seen: set = set()
    for f, n in numbers.items():
        pats = patterns(f, values)
        assert pats, f"{f.__name__} documents no keys"
        assert len(documented(f)) == len(set(documented(f))), f"{f.__name__} documents a key twice"
        for key, value in n.items():
            assert sum(bool(p.match(key)) for p in pats) == 1, (f.__name__, key)
            assert type(value) in kinds, (f.__name__, key, type(value))
            if isinstance(value, float):
                assert math.isfinite(value), (f.__name__, key)
        for p in pats:   # and no documented key is missing
            assert any(p.match(key) for key in n), (f.__name__, p.pattern)
        assert not unique or not seen & set(n), (f"{f.__name__} repeats a key: the chapter glues them all as "
                                   f"{prefix}*: {sorted(seen & set(n))}")
        seen |= set(n)
