"""Fixtures shared by the book tests: one `-W` build of the whole book at smoke per session.

tests/test_book.py checks the build itself (no warning, every page, no traceback) and
tests/test_browser.py opens the same pages in headless Chromium, so the suite builds the
book once (once for all pytest-xdist workers).  (The test-session defaults, smoke profile and offline Hugging Face, live in
the root conftest.py.)
"""
from __future__ import annotations

import json
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
    """`python -m collapse_utils book --profile smoke --strict` (jupyter-book -W --keep-going).

    Under pytest-xdist each worker has its own session, so the build sits in the folder
    that all workers share, behind a file lock: the first worker to ask builds, the
    others read its result (the recipe of pytest-xdist's documentation; its
    ``--dist loadgroup`` would do instead, but does not group with pytest 9.2,
    pytest-dev/pytest-xdist#1386).
    """
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):   # <base>/popen-gwN: share <base>
        root = root.parent
    out, record = root / "smoke-book", root / "smoke-book.json"
    with FileLock(str(record) + ".lock"):
        if not record.is_file():
            proc = subprocess.run(
                [sys.executable, "-m", "collapse_utils", "book", "--profile", "smoke", "--strict",
                 "--path-output", str(out)],
                cwd=ROOT, capture_output=True, text=True, timeout=1800,
                env={**os.environ, "COLLAPSE_PROFILE": "smoke"})
            record.write_text(json.dumps({"returncode": proc.returncode,
                                          "log": proc.stdout + proc.stderr}))
        done = json.loads(record.read_text())
    return BookBuild(done["returncode"], done["log"], out / "_build" / "html")
