"""Course assignments (issue 13): every chapter's graded exercises, graded by otter-grader.

For every chapter: the reference notebook earns full marks from its autograder archive,
the untouched student notebook is graded without error and earns less, and the student
version holds no solution and no hidden test.  Grading is otter's local, Docker-free path
(``otter.api.grade_submission``, what ``otter run`` does), run for all chapters at once.
"""
from __future__ import annotations

import json
import multiprocessing
import re
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import yaml

pytest.importorskip("otter")

from collapse_utils.assignments import (  # noqa: E402
    CHAPTERS, grade, source_notebook, strip_book_tags, write_assignments,
)
from collapse_utils.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _cells(path):
    return json.loads(Path(path).read_text())["cells"]


def _text(cell):
    return "".join(cell["source"])


def _blocks(chapter):
    """(solution lines, hidden test cells, question count) of a chapter's source notebook."""
    solutions, hidden, questions, block = [], [], 0, None
    for cell in _cells(source_notebook(chapter)):
        text = _text(cell)
        if cell["cell_type"] == "raw":
            head = text.strip().split("\n")[0].upper()
            questions += head.startswith("# BEGIN QUESTION")
            block = head[len("# BEGIN "):].split()[0] if head.startswith("# BEGIN ") else None
            continue
        if block == "SOLUTION":
            inside = re.findall(r"# BEGIN SOLUTION\n(.*?)# END SOLUTION", text, flags=re.S)
            solutions += [ln.strip() for part in inside for ln in part.split("\n")]
        elif block == "TESTS" and text.lstrip().upper().startswith("# HIDDEN"):
            hidden.append(text)
    return [s for s in solutions if len(s) > 12], hidden, questions


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    return write_assignments(None, tmp_path_factory.mktemp("assignments"), log=None)


@pytest.fixture(scope="module")
def grades(written):
    """(score, possible) of every chapter's reference and student notebook."""
    jobs = [(c, kind) for c in written for kind in ("reference", "student")]
    # kernels wait on each other's start-up more than they compute: three at a time
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = {job: pool.submit(grade, written[job[0]][job[1]], written[job[0]]["autograder"])
                   for job in jobs}
        return {job: future.result() for job, future in futures.items()}


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_source_has_graded_exercises(chapter):
    solutions, hidden, questions = _blocks(chapter)
    assert questions >= 2 and len(hidden) >= questions and solutions
    cells = _cells(source_notebook(chapter))
    code = [c for c in cells if c["cell_type"] == "code"]
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    assert 'find_spec("collapse_utils") is None' in _text(code[0])  # the Colab cell
    assert f"@ git+{url}" in _text(code[0]) and 'find_spec("otter") is None' in _text(code[0])
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    # the book folds solutions and removes tests
    for cell in code:
        tags = cell["metadata"].get("tags", [])
        if "# BEGIN SOLUTION" in _text(cell):
            assert "hide-input" in tags
        if _text(cell).lstrip().startswith("# HIDDEN"):
            assert "remove-cell" in tags


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_layout_and_no_solutions_for_students(chapter, written):
    paths = written[chapter]
    student = paths["student"].read_text()
    public = "".join(p.read_text() for p in sorted(paths["student"].parent.glob("tests/*.py")))
    solutions, hidden, _ = _blocks(chapter)
    for line in solutions:
        assert line not in student, line
    for test in hidden:
        checks = [ln.strip() for ln in test.split("\n") if ln.strip().startswith("assert ")]
        assert checks and not any(ln in student or ln in public for ln in checks)
    assert "BEGIN SOLUTION" not in student and "# HIDDEN" not in student
    assert not any("hide-input" in c["metadata"].get("tags", []) for c in _cells(paths["student"]))
    sources = [_text(c) for c in _cells(paths["student"])]
    assert 'grader.check("q1")' in sources and "OK_FORMAT" in public  # public checks
    archive = zipfile.ZipFile(paths["autograder"])
    assert {"tests/q1.py", "tests/q2.py", "otter_config.json"} <= set(archive.namelist())
    assert b"collapse_utils" in archive.read("environment.yml")  # Gradescope installs the package


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_reference_earns_full_marks(chapter, grades):
    score, possible = grades[chapter, "reference"]
    assert possible > 0 and score == possible


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_untouched_student_notebook_earns_less(chapter, grades):
    score, possible = grades[chapter, "student"]
    assert possible > 0 and score < possible


def test_strip_book_tags_keeps_other_tags():
    nb = {"cells": [{"cell_type": "code", "metadata": {"tags": ["hide-input", "mine"]},
                     "source": "", "outputs": [1], "execution_count": 3}]}
    cell = strip_book_tags(nb)["cells"][0]
    assert cell["metadata"]["tags"] == ["mine"] and cell["outputs"] == []


def test_unknown_chapter_is_one_line_error(capsys, tmp_path):
    assert main(["assignments", "intro", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "nope" in err and all(c in err for c in CHAPTERS)
    assert not any(tmp_path.iterdir())  # nothing written


def test_never_replaces_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "intro" / "notes").mkdir(parents=True)
    with pytest.raises(ValueError, match="not an assignment folder"):
        write_assignments(["intro"], tmp_path, log=None)
    assert (tmp_path / "intro" / "notes").is_dir()


def test_fetch_public_tests_writes_the_handed_out_checks(written, tmp_path):
    """A student notebook opened alone (Colab) gets exactly the student version's tests."""
    from collapse_utils.assignments import fetch_public_tests
    chapter = "gaussian"
    folder = fetch_public_tests(chapter, tmp_path)
    handed_out = written[chapter]["student"].parent / "tests"
    names = sorted(p.name for p in handed_out.iterdir())
    assert names and sorted(p.name for p in folder.iterdir()) == names
    for name in names:
        assert (folder / name).read_text() == (handed_out / name).read_text()
    (folder / names[0]).write_text("# the student's own copy\n")  # an existing folder stays
    assert fetch_public_tests(chapter, tmp_path) == folder
    assert (folder / names[0]).read_text() == "# the student's own copy\n"
