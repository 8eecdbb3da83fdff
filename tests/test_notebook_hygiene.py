"""Cell hygiene of the chapters' notebooks (issue #25, section 1): code cells hold one statement
per line (no `;`-joined statements, no trailing `;` to hide a value) and lines of at most 100
characters, so the cells read as the short calls into collapse_utils they are."""
import io
import json
import tokenize
from pathlib import Path

import pytest

import collapse_utils

BOOK = Path(__file__).resolve().parent.parent / "book"
MAX_LINE = 100
# every chapter
NOTEBOOKS = ["lm", "claims", "intro", "definitions", "discrete", "gaussian", "gmm", "beyond", "vae", "curation"]


def code_cells(name):
    nb = json.loads((BOOK / f"{name}.ipynb").read_text())
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            yield index, "".join(cell["source"])


def semicolon_lines(source):
    """Line numbers (1-based) of `;` tokens in ``source`` (not those inside strings or comments)."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return sorted({t.start[0] for t in tokens if t.type == tokenize.OP and t.string == ";"})


def test_semicolon_finder_sees_statements_not_strings():
    assert semicolon_lines('a = 1; b = 2\nprint("x; y")  # c; d\nglue("n", 1);\n') == [1, 3]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_semicolon_joined_statements(name):
    bad = [(i, n, src.splitlines()[n - 1]) for i, src in code_cells(name)
           for n in semicolon_lines(src)]
    assert not bad, f"{name}.ipynb: `;` in code cells (cell, line, text): {bad}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_code_lines_fit_in_100_characters(name):
    # the Colab install cell names the release URL, which cannot be broken
    # (collapse_utils.assignments.colab_cell writes it)
    bad = [(i, len(line), line) for i, src in code_cells(name) for line in src.splitlines()
           if len(line) > MAX_LINE and collapse_utils.RELEASE_URL not in line]
    assert not bad, f"{name}.ipynb: code lines over {MAX_LINE} characters (cell, length, text): {bad}"
