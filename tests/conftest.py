"""Fixtures shared by the book tests: one `-W` build of the whole book at smoke per session.

tests/test_book.py checks the build itself (no warning, every page, no traceback) and
tests/test_browser.py opens the same pages in headless Chromium, so the suite builds the
book once.  (The test-session defaults, smoke profile and offline Hugging Face, live in
the root conftest.py.)
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class BookBuild:
    returncode: int
    log: str          # stdout and stderr of the build
    html: Path        # the built site: <out>/_build/html


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory) -> BookBuild:
    """`python -m collapse_utils book --profile smoke --strict` (jupyter-book -W --keep-going)."""
    out = tmp_path_factory.mktemp("book")
    proc = subprocess.run(
        [sys.executable, "-m", "collapse_utils", "book", "--profile", "smoke", "--strict",
         "--path-output", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=1800,
        env={**os.environ, "COLLAPSE_PROFILE": "smoke"})
    return BookBuild(proc.returncode, proc.stdout + proc.stderr, out / "_build" / "html")


def pytest_collection_modifyitems(items):
    """Under pytest-xdist (``--dist loadgroup``), every test of the one book build runs in
    one worker, so the session builds the book once."""
    for item in items:
        if "smoke_book" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("book"))
