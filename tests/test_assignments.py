"""Course assignments (issues 13 and 23): every chapter's graded exercises, graded by otter-grader.

For every chapter: the reference notebook earns full marks from its autograder archive, the
untouched student notebook earns nothing, and the student version (and its committed copy)
holds no solution and no hidden test.  Points mean what they say: public checks are worth 0,
the hidden tests carry every point, read nothing from the notebook's set-up cell and say what to
fix.  For the Gaussian exercises a stub that passes every public check earns nothing, a wrong
answer loses its question's points, and an edited set-up cell (``CHAINS = 3``) changes no
hidden test's outcome.  Every notebook installs this release (``collapse_utils.RELEASE_URL``).
Grading is otter's local, Docker-free path (``otter.api.grade_submission``, what ``otter run``
does), run for all notebooks at once.
"""
from __future__ import annotations

import ast
import builtins
import contextlib
import io
import json
import multiprocessing
import re
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import yaml

pytest.importorskip("otter")

import collapse_utils  # noqa: E402
from collapse_utils import assignments as A  # noqa: E402
from collapse_utils.assignments import (  # noqa: E402
    CHAPTERS, source_notebook, strip_book_tags, write_assignments,
)
from collapse_utils.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
BOOK_NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


def _cells(path):
    return json.loads(Path(path).read_text())["cells"]


def _text(cell):
    return "".join(cell["source"])


def _test_config(text):
    """The ``# BEGIN TEST CONFIG`` block of a test cell as a dict (None without one)."""
    m = re.match(r'""" # BEGIN TEST CONFIG\n(.*?)""" # END TEST CONFIG\n', text, flags=re.S)
    return yaml.safe_load(m.group(1)) if m else None


def _blocks(chapter):
    """(solution lines, hidden test cells, question count, answer names, {question: points})
    of a chapter's source notebook."""
    solutions, hidden, answers, points, block, question = [], [], set(), {}, None, None
    for cell in _cells(source_notebook(chapter)):
        text = _text(cell)
        if cell["cell_type"] == "raw":
            head = text.strip().split("\n")[0].upper()
            if head.startswith("# BEGIN QUESTION"):
                conf = yaml.safe_load(text.split("\n", 1)[1])
                question, points[conf["name"]] = conf["name"], conf["points"]
            block = head[len("# BEGIN "):].split()[0] if head.startswith("# BEGIN ") else None
            continue
        if block == "SOLUTION":
            inside = re.findall(r"# BEGIN SOLUTION\n(.*?)# END SOLUTION", text, flags=re.S)
            solutions += [ln.strip() for part in inside for ln in part.split("\n")]
            answers |= {n.name for n in ast.parse(text).body if isinstance(n, ast.FunctionDef)}
        elif block == "TESTS" and (_test_config(text) or {}).get("hidden"):
            hidden.append((question, text))
    return [s for s in solutions if len(s) > 12], hidden, len(points), answers, points


def _free_names(source):
    """Names a cell reads without binding them itself (builtins aside)."""
    bound, loaded = set(), set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.Lambda)):
            a = node.args
            bound |= {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs}
            bound |= {node.name} if isinstance(node, ast.FunctionDef) else set()
    return loaded - bound - set(dir(builtins))


# --- notebooks built for the grading tests --------------------------------------------------

def _with_cell(nb_path, out, find, new_source, append=False):
    """A copy of a notebook at ``out`` whose first code cell containing ``find`` is replaced
    by (or, with ``append``, extended with) ``new_source``."""
    nb = json.loads(Path(nb_path).read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code" and find in _text(c))
    cell["source"] = (_text(cell) + "\n" + new_source) if append else new_source
    Path(out).write_text(json.dumps(nb))
    return Path(out)


#: answers to the Gaussian exercises that pass every public check and are wrong
GAUSSIAN_STUBS = {
    "def c_M": "def c_M(M):\n    return np.sqrt(2 / np.pi) + 0 * np.asarray(M, dtype=float)\n\n"
               "def expected_sigma(sigma, M, n):\n    return sigma * c_M(M) ** n\n",
    "def w2_gaussian": "def w2_gaussian(mu1, sigma1, mu2, sigma2):\n"
                       "    return np.abs(np.asarray(mu1) - mu2)\n",
    "def simulate_variance": "def simulate_variance(M, fits, chains, ddof, rng):\n"
                             "    return np.ones((fits, chains))\n",
}
#: q3 with the estimator's ddof ignored: right for ddof=1, wrong for the MLE
GAUSSIAN_WRONG_Q3 = ("def simulate_variance(M, fits, chains, ddof, rng):\n"
                     "    x = rng.normal(0.0, 1.0, size=(chains, M))\n"
                     "    out = np.empty((fits, chains))\n"
                     "    for i in range(fits):\n"
                     "        mu, var = x.mean(1), x.var(1, ddof=1)\n"
                     "        out[i] = var\n"
                     "        x = rng.normal(mu[:, None], np.sqrt(var)[:, None], size=(chains, M))\n"
                     "    return out\n")
#: a set-up cell edited by the student: every size name the exercises ever had, made tiny
EDITED_SETUP = 'PROFILE = "smoke"\nCHAINS = SAMPLES = BATCH = BLOCKS = 3'


def _case_results(notebook, autograder):
    """{question: [(hidden, passed, points), ...]} of one graded notebook."""
    from otter.api import grade_submission

    results = grade_submission(str(notebook), str(autograder), quiet=True)
    return {name: [(r.test_case.hidden, r.passed, r.test_case.points) for r in res.test_case_results]
            for name, res in results.results.items()}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    return write_assignments(None, tmp_path_factory.mktemp("assignments"), log=None)


@pytest.fixture(scope="module")
def variants(written, tmp_path_factory):
    """The Gaussian notebooks of the grading tests: stubs, a wrong q3, edited set-up cells."""
    tmp, g = tmp_path_factory.mktemp("variants"), written["gaussian"]
    stub = g["student"]
    for i, (find, source) in enumerate(GAUSSIAN_STUBS.items()):
        stub = _with_cell(stub, tmp / f"stub{i}.ipynb", find, source)
    wrong = _with_cell(g["reference"], tmp / "wrong.ipynb", "def simulate_variance", GAUSSIAN_WRONG_Q3)
    setup = "from scipy import special, stats"
    return {"stub": stub, "wrong": wrong,
            "wrong-edited": _with_cell(wrong, tmp / "wrong-edited.ipynb", setup, EDITED_SETUP, True),
            "reference-edited": _with_cell(g["reference"], tmp / "reference-edited.ipynb", setup,
                                           EDITED_SETUP, True)}


@pytest.fixture(scope="module")
def cases(written, variants):
    """Per-test-case results of every chapter's reference and student notebook and of the
    Gaussian variants, keyed (chapter, kind)."""
    jobs = {(c, kind): (written[c][kind], written[c]["autograder"])
            for c in written for kind in ("reference", "student")}
    jobs.update({("gaussian", kind): (path, written["gaussian"]["autograder"])
                 for kind, path in variants.items()})
    # kernels wait on each other's start-up more than they compute: three at a time
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = {job: pool.submit(_case_results, *args) for job, args in jobs.items()}
        return {job: future.result() for job, future in futures.items()}


def _scores(results):
    return {q: (sum(p for _, ok, p in rs if ok), sum(p for *_, p in rs)) for q, rs in results.items()}


# --- the sources --------------------------------------------------------------------------

@pytest.mark.parametrize("chapter", CHAPTERS)
def test_source_has_graded_exercises(chapter):
    solutions, hidden, questions, answers, _ = _blocks(chapter)
    assert questions >= 2 and len(hidden) >= questions and solutions and answers
    cells = _cells(source_notebook(chapter))
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    # the book folds solutions and removes tests
    for cell in code:
        tags = cell["metadata"].get("tags", [])
        if "# BEGIN SOLUTION" in _text(cell):
            assert "hide-input" in tags
        if _test_config(_text(cell)) is not None:
            assert "remove-cell" in tags


@pytest.mark.parametrize("path", BOOK_NOTEBOOKS + [source_notebook(c) for c in CHAPTERS],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_first_cell_installs_this_release(path):
    """Every notebook's first code cell is the one :func:`colab_cell` writes from
    ``RELEASE_URL``: a tagged archive (no git, no ``main``), ``[nets]`` only where needed."""
    exercises = path.parent.name == "exercises"
    first = next(c for c in _cells(path) if c["cell_type"] == "code")
    assert _text(first) == A.colab_cell(path.stem, exercises), \
        "run: python -c 'from collapse_utils.assignments import pin_notebooks; pin_notebooks()'"
    assert collapse_utils.RELEASE_URL in _text(first) and "git+" not in _text(first)
    assert ("[nets]" in _text(first)) == A.needs_nets(path.stem, exercises)


def test_one_place_names_the_release():
    assert collapse_utils.REPOSITORY_URL == CONFIG["repository"]["url"]
    assert collapse_utils.RELEASE_URL == (f"{CONFIG['repository']['url']}/archive/refs/tags/"
                                          f"v{collapse_utils.__version__}.zip")
    assert f"/{A.RELEASE_TAG}/" in A.SOURCE_URL and "/main/" not in A.SOURCE_URL
    for chapter in CHAPTERS:
        assert f"/blob/{A.RELEASE_TAG}/" in A.student_copy_urls(chapter)["colab"]


def test_pin_notebooks_changes_nothing_when_current(tmp_path):
    (tmp_path / "book" / "exercises").mkdir(parents=True)
    for path in BOOK_NOTEBOOKS + sorted((ROOT / "book" / "exercises").glob("*.ipynb")):
        shutil.copy(path, tmp_path / path.relative_to(ROOT))
    assert A.pin_notebooks(tmp_path) == []


def test_nets_only_where_torch_is_needed():
    """``[nets]`` (torch) only for what uses it: checked against the notebooks' own imports."""
    heavy = re.compile(r"import torch|from torch|collapse_utils import[^\n]*\b(vae|lm|compare)\b"
                       r"|from collapse_utils\.(vae|lm|compare)")
    def uses(path):
        return any(heavy.search(_text(c)) for c in _cells(path) if c["cell_type"] == "code")

    for chapter in CHAPTERS:
        assert uses(source_notebook(chapter)) == A.needs_nets(chapter), chapter
    for path in BOOK_NOTEBOOKS:
        assert uses(path) == A.needs_nets(path.stem, exercises=False), path.name


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_hidden_tests_carry_the_points_and_say_what_to_fix(chapter):
    _, hidden, _, _, points = _blocks(chapter)
    for question, total in points.items():
        configs = [_test_config(text) for q, text in hidden if q == question]
        assert configs and sum(c["points"] for c in configs) == total, question
        assert all(c["points"] > 0 and len(c.get("failure_message", "")) > 40 for c in configs)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_hidden_tests_read_nothing_from_the_set_up_cell(chapter):
    """A hidden test binds its own sizes and imports: the only names it reads from the
    notebook are the functions the student writes."""
    _, hidden, _, answers, _ = _blocks(chapter)
    for _, text in hidden:
        assert not _free_names(text) - answers, text


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_math_macros_defined_in_the_notebook(chapter):
    assert A.MATH_MACROS == CONFIG["sphinx"]["config"]["mathjax3_config"]["tex"]["macros"]
    cells = _cells(source_notebook(chapter))
    i = next(i for i, c in enumerate(cells) if _text(c) == A.macros_cell())
    assert cells[i]["cell_type"] == "markdown" and "remove-cell" in cells[i]["metadata"]["tags"]
    uses = [j for j, c in enumerate(cells) if re.search(r"\\[EN]\b", _text(c)) and j != i]
    assert all(j > i for j in uses)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_exercises_page_links_the_student_copy(chapter):
    cells = _cells(source_notebook(chapter))
    links = [c for c in cells if A.BOOK_ONLY_TAG in c["metadata"].get("tags", [])]
    assert len(links) == 1 and _text(links[0]) == A.student_link_cell(chapter)
    assert links[0]["cell_type"] == "markdown" and cells.index(links[0]) < 4
    assert A.student_copy_urls(chapter)["colab"].endswith(f"/book/exercises/student/{chapter}.ipynb")


# --- what otter assign writes -------------------------------------------------------------

@pytest.mark.parametrize("chapter", CHAPTERS)
def test_layout_and_no_solutions_for_students(chapter, written):
    paths = written[chapter]
    student = paths["student"].read_text()
    copy = (ROOT / "book" / "exercises" / A.STUDENT_DIR / f"{chapter}.ipynb").read_text()
    public = "".join(p.read_text() for p in sorted(paths["student"].parent.glob("tests/*.py")))
    solutions, hidden, _, _, _ = _blocks(chapter)
    for line in solutions:
        assert line not in student and line not in copy, line
    for _, test in hidden:
        checks = [ln.strip() for ln in test.split("\n") if ln.strip().startswith("assert ")]
        assert checks and not any(ln in student or ln in public or ln in copy for ln in checks)
    for text in (student, copy):
        assert "BEGIN SOLUTION" not in text and "hidden: true" not in text
        assert "Students: work in the student version" not in text  # the book-only cell
    assert "Students: work in the student version" not in paths["reference"].read_text()
    assert not any("hide-input" in c["metadata"].get("tags", []) for c in _cells(paths["student"]))
    sources = [_text(c) for c in _cells(paths["student"])]
    assert 'grader.check("q1")' in sources and "OK_FORMAT" in public  # public checks
    assert A.macros_cell() in sources and A.colab_cell(chapter) in sources
    archive = zipfile.ZipFile(paths["autograder"])
    assert {"tests/q1.py", "tests/q2.py", "otter_config.json"} <= set(archive.namelist())
    env = archive.read("environment.yml").decode()
    # the grading image installs this release's archive (no git there), [nets] only for torch
    assert f"- {A.install_requirement(chapter)}" in env and "git+" not in env
    assert ("[nets]" in env) == A.needs_nets(chapter)
    # on Gradescope, hidden results and their failure messages once grades are published
    assert json.loads(archive.read("otter_config.json"))["show_hidden"] is True


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_student_copy_is_current(chapter, written):
    """book/exercises/student/ holds what otter assign writes: run write_student_copies()."""
    copy = _cells(ROOT / "book" / "exercises" / A.STUDENT_DIR / f"{chapter}.ipynb")
    fresh = _cells(written[chapter]["student"])
    assert [(c["cell_type"], _text(c)) for c in copy] == [(c["cell_type"], _text(c)) for c in fresh], \
        "run: python -c 'from collapse_utils.assignments import write_student_copies; write_student_copies()'"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_public_checks_are_worth_nothing(chapter, written):
    """In the autograder's tests every public case is worth 0 and the hidden ones carry the
    question's points; in the student's copy the checks are there, worth 0."""
    _, _, _, _, points = _blocks(chapter)
    archive = zipfile.ZipFile(written[chapter]["autograder"])
    for question, total in points.items():
        spec = {}
        exec(archive.read(f"tests/{question}.py").decode(), spec)
        cases = spec["test"]["suites"][0]["cases"]
        assert all(c["points"] == 0 for c in cases if not c["hidden"])
        assert sum(c["points"] for c in cases if c["hidden"]) == total
        assert all(c.get("failure_message") for c in cases if c["hidden"])
        student = {}
        exec((written[chapter]["student"].parent / "tests" / f"{question}.py").read_text(), student)
        cases = student["test"]["suites"][0]["cases"]
        assert cases and all(c["points"] == 0 and not c["hidden"] for c in cases)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_submission_cell_works_on_colab_and_elsewhere(chapter, written):
    """``grader.export`` raises on Colab: there the last cell prints how to submit instead."""
    cells = _cells(written[chapter]["student"])
    export = [_text(c) for c in cells if "grader.export(" in _text(c)]
    assert export == [A.EXPORT_CELL]
    assert any(_text(c) == A.EXPORT_INSTRUCTIONS for c in cells)

    class Grader:
        exported = 0

        def export(self, **kwargs):
            self.exported += 1

    for colab in (True, False):
        grader, out = Grader(), io.StringIO()
        with contextlib.redirect_stdout(out):
            if colab:
                sys.modules.setdefault("google.colab", type(sys)("google.colab"))
            try:
                exec(A.EXPORT_CELL, {"grader": grader})
            finally:
                if colab:
                    del sys.modules["google.colab"]
        assert grader.exported == (0 if colab else 1)
        assert ("File > Download > Download .ipynb" in out.getvalue()) == colab


# --- grades -------------------------------------------------------------------------------

@pytest.mark.parametrize("chapter", CHAPTERS)
def test_reference_earns_full_marks(chapter, cases):
    scores = _scores(cases[chapter, "reference"])
    assert scores and all(possible > 0 and score == possible for score, possible in scores.values())


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_untouched_student_notebook_earns_nothing(chapter, cases):
    scores = _scores(cases[chapter, "student"])
    assert scores and all(possible > 0 and score == 0 for score, possible in scores.values())


def test_stub_that_passes_every_public_check_earns_nothing(cases):
    results = cases["gaussian", "stub"]
    assert all(ok for rs in results.values() for hidden, ok, _ in rs if not hidden)
    assert all(score == 0 for score, _ in _scores(results).values())


def test_wrong_answer_loses_its_questions_points(cases):
    scores = _scores(cases["gaussian", "wrong"])
    assert scores["q3"] == (0, 2) and scores["q1"] == scores["q2"] == (2, 2)


def test_edited_set_up_cell_changes_no_hidden_outcome(cases):
    """``CHAINS = 3`` in the set-up cell neither rescues the wrong q3 nor costs the reference
    anything: every test case has the same outcome as without the edit."""
    assert cases["gaussian", "wrong-edited"] == cases["gaussian", "wrong"]
    assert cases["gaussian", "reference-edited"] == cases["gaussian", "reference"]


# --- the command line and helpers ---------------------------------------------------------

def test_strip_book_tags_keeps_other_tags_and_drops_book_only_cells():
    nb = {"cells": [{"cell_type": "code", "metadata": {"tags": ["hide-input", "mine"]},
                     "source": "", "outputs": [1], "execution_count": 3},
                    {"cell_type": "markdown", "metadata": {"tags": [A.BOOK_ONLY_TAG]}, "source": ""}]}
    cells = strip_book_tags(nb)["cells"]
    assert len(cells) == 1 and cells[0]["metadata"]["tags"] == ["mine"] and cells[0]["outputs"] == []


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


def test_default_output_is_ignored_by_git():
    out = subprocess.run(["git", "check-ignore", "-q", "assignments/gaussian/student/x.ipynb"],
                         cwd=ROOT, capture_output=True)
    assert out.returncode == 0


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
