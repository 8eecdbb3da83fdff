"""Course assignments: student and autograder versions of each chapter's graded exercises.

Each chapter's graded exercises have one source, ``book/exercises/<chapter>.ipynb``,
written in otter-grader's assign format (raw ``# BEGIN QUESTION`` / ``# BEGIN SOLUTION``
/ ``# BEGIN TESTS`` cells; each test cell opens with a ``# BEGIN TEST CONFIG`` block).  The book renders
that notebook with its solutions folded (cells tagged ``hide-input``) and its tests
removed (``remove-cell``); :func:`write_assignments` runs ``otter assign`` on it, which
writes otter's layout per chapter::

    DIR/CHAPTER/student/CHAPTER.ipynb            no solutions, no hidden tests
    DIR/CHAPTER/student/tests/q*.py              the public checks (grader.check("q1"))
    DIR/CHAPTER/autograder/CHAPTER.ipynb         the reference notebook, with solutions
    DIR/CHAPTER/autograder/CHAPTER-autograder.zip  all tests: otter run / otter grade / Gradescope

so the rendered solution and the graded one cannot drift.  The command line is
``python -m collapse_utils assignments [CHAPTER ...] --out DIR``.

Every test cell starts with otter's ``# BEGIN TEST CONFIG`` block: a public check is worth
0 points (it checks shapes and one easy case, so passing it alone earns nothing) and the
hidden tests carry the question's points, draw at sizes they set themselves and say in
``failure_message`` what to fix.  The student version also gets a submission cell that works
on Colab (:data:`EXPORT_CELL`), and :func:`write_student_copies` keeps a copy of each student
notebook in ``book/exercises/student/``, which the exercises pages link.

What a notebook installs is pinned in one place, :data:`collapse_utils.RELEASE_URL` (this
release's tag); :func:`colab_cell` writes every notebook's first cell from it and
:func:`pin_notebooks` rewrites those cells after a version bump.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from . import RELEASE_URL, REPOSITORY_URL, __version__

#: the chapters with graded exercises, in reading order
CHAPTERS = ("intro", "discrete", "gaussian", "gmm", "vae", "lm", "beyond", "definitions", "curation")

#: cell tags that only the rendered book reads; the student and autograder notebooks drop them
BOOK_TAGS = ("hide-input", "hide-output", "hide-cell", "remove-cell", "remove-input",
             "remove-output")

#: chapters whose exercises need torch: only these install ``collapse_utils[nets]`` (in the
#: notebook and in the grading image); the others need numpy, scipy and scikit-learn alone
NETS_EXERCISES = ("vae",)
#: chapters of the book (``book/<chapter>.ipynb``) that need ``[nets]``: the VAE, the language
#: model, curation (its VAE under a verifier), and "What collapse means", whose table runs every
#: family
NETS_CHAPTERS = ("vae", "lm", "curation", "definitions")
#: the otter-grader a student notebook installs (requirements.txt pins the same)
OTTER_VERSION = "7.0.0"
#: the tag of this release, where the exercises' one source and the student copies are read
RELEASE_TAG = f"v{__version__}"
_RAW = REPOSITORY_URL.replace("https://github.com/", "https://raw.githubusercontent.com/")
#: where a student's notebook on Colab finds the exercises' one source (:func:`fetch_public_tests`)
SOURCE_URL = f"{_RAW}/{RELEASE_TAG}/book/exercises/{{chapter}}.ipynb"
#: the committed student copies (:func:`write_student_copies`), relative to ``book/exercises``
STUDENT_DIR = "student"
#: a cell with this tag is for the book only: the student and autograder versions drop it
BOOK_ONLY_TAG = "book-only"

OTTER_HINT = "otter-grader is not installed: pip install otter-grader (see requirements.txt)"


#: the book's MathJax macros (``_config.yml`` defines them for the rendered book; a test checks
#: they agree): each exercises notebook defines them in a markdown cell of its own
#: (:func:`macros_cell`), so its math renders in Jupyter and Colab too
MATH_MACROS = {"E": r"\mathbb{E}", "N": r"\mathcal{N}"}

#: the student version's submission cells: ``grader.export`` refuses to run on Colab
EXPORT_INSTRUCTIONS = """\
## Submission

Save the notebook, run every cell in order (*Run all*), then run the cell below.

* **Jupyter** (your computer or a course JupyterHub): the cell writes a zip of this notebook
  with its results; submit that zip (or the `.ipynb` itself, if your course asks for it).
* **Colab**: otter cannot export there, so the cell tells you to download the notebook
  (*File > Download > Download .ipynb*) and submit that `.ipynb` file.

Hidden tests grade the submission: the public checks above earn no points by themselves."""
EXPORT_CELL = """\
# Save first. In Jupyter this writes the zip to submit; on Colab it says how to submit instead.
import sys
if "google.colab" in sys.modules:
    print("On Colab: File > Download > Download .ipynb, then submit that .ipynb file.")
else:
    grader.export(pdf=False, run_tests=True)"""


def needs_nets(chapter: str, exercises: bool = True) -> bool:
    """Whether a chapter's exercises (or, with ``exercises=False``, its book chapter) need torch."""
    return chapter in (NETS_EXERCISES if exercises else NETS_CHAPTERS)


def install_requirement(chapter: str, exercises: bool = True) -> str:
    """The pip requirement of ``collapse_utils`` at this release, ``[nets]`` only where needed."""
    extra = "[nets]" if needs_nets(chapter, exercises) else ""
    return f"collapse_utils{extra} @ {RELEASE_URL}"


def colab_cell(chapter: str, exercises: bool = True) -> str:
    """The source of a notebook's first code cell: on Colab (wherever ``collapse_utils`` is
    missing) it installs this release; an exercises notebook also installs otter-grader and,
    on Colab, writes the public checks beside the notebook (:func:`fetch_public_tests`)."""
    head = "# Colab: install this release of collapse_utils"
    lines = [f"{head} and otter-grader (the checks). Elsewhere this does nothing."
             if exercises else f"{head}. Elsewhere this does nothing.",
             "import importlib.util, os, subprocess, sys" if exercises
             else "import importlib.util, subprocess, sys",
             'if importlib.util.find_spec("collapse_utils") is None:',
             '    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q",',
             f'        "{install_requirement(chapter, exercises)}"])']
    if exercises:
        lines += ['if importlib.util.find_spec("otter") is None:',
                  '    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", '
                  f'"otter-grader=={OTTER_VERSION}"])',
                  'if "google.colab" in sys.modules and not os.path.isdir("tests"):  # the public checks',
                  "    from collapse_utils.assignments import fetch_public_tests",
                  f'    fetch_public_tests("{chapter}")']
    return "\n".join(lines)


def student_copy_urls(chapter: str) -> dict[str, str]:
    """Where this release's student copy of a chapter's exercises opens: in Colab, and on
    GitHub (whose page has a download button)."""
    path = f"book/exercises/{STUDENT_DIR}/{chapter}.ipynb"
    repo = REPOSITORY_URL.removeprefix("https://github.com/")
    return {"colab": f"https://colab.research.google.com/github/{repo}/blob/{RELEASE_TAG}/{path}",
            "github": f"{REPOSITORY_URL}/blob/{RELEASE_TAG}/{path}"}


def student_link_cell(chapter: str) -> str:
    """The exercises page's pointer to the student version (a ``book-only`` markdown cell)."""
    urls = student_copy_urls(chapter)
    return "\n".join([
        ":::{admonition} Students: work in the student version",
        ":class: important",
        "This page is the exercises' source: it shows each solution (folded) and the book runs the",
        "hidden tests on it. Work in the student version instead, with empty answers and the public",
        f"checks only: [open it in Colab]({urls['colab']}), or download it from",
        f"[GitHub]({urls['github']}) for Jupyter. (The Colab button at the top of this page opens",
        "the student version too.)",
        ":::"])


def macros_cell() -> str:
    """The source of the markdown cell that defines :data:`MATH_MACROS` for Jupyter and Colab."""
    return "$" + "".join(f"\\newcommand{{\\{k}}}{{{v}}}" for k, v in MATH_MACROS.items()) + "$"


def _lines(text: str) -> list[str]:
    """A cell source as the notebook files store it: a list of lines, each ending in a newline
    but the last."""
    return text.splitlines(keepends=True)


def _first_code_cell(nb: dict) -> dict:
    return next(c for c in nb["cells"] if c["cell_type"] == "code")


def pin_notebooks(root: str | os.PathLike | None = None) -> list[Path]:
    """Rewrite, in every notebook of ``book/`` and ``book/exercises/``, what names the release:
    the first code cell (:func:`colab_cell`), and in the exercises the ``requirements`` of the
    assignment config and the link to the student copy.  Run it after bumping ``__version__``;
    no other cell changes.  Returns the notebooks it changed."""
    exercises = exercises_dir(root)
    changed = []
    for path in sorted(exercises.parent.glob("*.ipynb")) + sorted(exercises.glob("*.ipynb")):
        is_exercise = path.parent == exercises
        nb = json.loads(path.read_text())
        before = json.dumps(nb)
        _first_code_cell(nb)["source"] = _lines(colab_cell(path.stem, is_exercise))
        if is_exercise:
            for cell in nb["cells"]:
                text = "".join(cell["source"])
                if cell["cell_type"] == "raw" and text.lstrip().startswith("# ASSIGNMENT CONFIG"):
                    head = text.split("requirements:")[0].rstrip("\n")
                    cell["source"] = _lines(
                        f'{head}\nrequirements:\n  - "{install_requirement(path.stem)}"')
                if BOOK_ONLY_TAG in cell.get("metadata", {}).get("tags", []):
                    cell["source"] = _lines(student_link_cell(path.stem))
        if json.dumps(nb) != before:
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            changed.append(path)
    return changed


def check_chapters(chapters) -> list[str]:
    """The chapters asked for (all when none are), or ValueError naming the known ones."""
    chapters = list(chapters or CHAPTERS)
    unknown = [c for c in chapters if c not in CHAPTERS]
    if unknown:
        raise ValueError(f"unknown chapter {unknown[0]!r}; chapters: {', '.join(CHAPTERS)}")
    return list(dict.fromkeys(chapters))  # in the order given, without repeats


def exercises_dir(root: str | os.PathLike | None = None) -> Path:
    """``book/exercises`` of the book's repository: under ``root`` if given, else next to
    this package (an editable install), else under the current folder or one above it."""
    if root is not None:
        candidates = [Path(root)]
    else:
        here = Path.cwd().resolve()
        candidates = [Path(__file__).resolve().parents[1], here, *here.parents]
    for base in candidates:
        folder = base / "book" / "exercises"
        if folder.is_dir():
            return folder
    raise ValueError("no book/exercises/ found: run this in the book's repository")


def source_notebook(chapter: str, root: str | os.PathLike | None = None) -> Path:
    """The one source of a chapter's graded exercises."""
    check_chapters([chapter])
    path = exercises_dir(root) / f"{chapter}.ipynb"
    if not path.is_file():
        raise ValueError(f"no exercises notebook {path}")
    return path


def strip_book_tags(nb: dict) -> dict:
    """The notebook without the book's display tags and settings, without outputs and without
    the cells tagged :data:`BOOK_ONLY_TAG` (a new dict)."""
    nb = json.loads(json.dumps(nb))
    nb["cells"] = [c for c in nb["cells"] if BOOK_ONLY_TAG not in c.get("metadata", {}).get("tags", [])]
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("mystnb", None)
        tags = [t for t in cell.get("metadata", {}).get("tags", []) if t not in BOOK_TAGS]
        if tags:
            cell["metadata"]["tags"] = tags
        else:
            cell.get("metadata", {}).pop("tags", None)
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return nb


def submission_cells(nb: dict) -> dict:
    """``nb`` with otter's export cells replaced by ones that also work on Colab, where
    ``grader.export`` raises (:data:`EXPORT_INSTRUCTIONS`, :data:`EXPORT_CELL`; a new dict)."""
    nb = json.loads(json.dumps(nb))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code" and "grader.export(" in "".join(cell["source"]):
            cell["source"] = _lines(EXPORT_CELL)
            before = nb["cells"][i - 1]
            if before["cell_type"] == "markdown" and "".join(before["source"]).startswith("## Submission"):
                before["source"] = _lines(EXPORT_INSTRUCTIONS)
    return nb


def write_assignment(chapter: str, out: str | os.PathLike, *, root=None,
                     check: bool = False) -> dict[str, Path]:
    """Run ``otter assign`` on one chapter's exercises into ``out/chapter``.

    ``check=True`` also lets otter run the reference solutions against every test
    (it executes the notebook once more).  Returns the paths of the student notebook,
    the reference notebook and the autograder zip.
    """
    try:
        from otter.assign import main as otter_assign
    except ImportError as err:  # pragma: no cover - otter is in requirements.txt
        raise ValueError(OTTER_HINT) from err
    source = source_notebook(chapter, root)
    dest = Path(out).resolve() / chapter
    if dest.exists():  # replace an earlier output, never anything else
        if not dest.is_dir() or set(p.name for p in dest.iterdir()) - {"student", "autograder"}:
            raise ValueError(f"{dest} exists and is not an assignment folder; choose another --out")
        shutil.rmtree(dest)
    with tempfile.TemporaryDirectory(prefix=f"assign-{chapter}-") as tmp:
        master = Path(tmp) / source.name
        master.write_text(json.dumps(strip_book_tags(json.loads(source.read_text())), indent=1))
        otter_assign(str(master), str(dest), no_pdfs=True, no_run_tests=not check)
    autograder = dest / "autograder"
    zips = sorted(autograder.glob(f"{chapter}-autograder_*.zip"))
    if len(zips) != 1:
        raise RuntimeError(f"otter assign wrote {len(zips)} autograder zips for {chapter}")
    archive = zips[0].rename(autograder / f"{chapter}-autograder.zip")
    for notebook in (dest / "student" / source.name, autograder / source.name):
        notebook.write_text(json.dumps(submission_cells(json.loads(notebook.read_text())), indent=1))
    return {"student": dest / "student" / source.name, "reference": autograder / source.name,
            "autograder": archive}


def write_assignments(chapters=None, out: str | os.PathLike = "assignments", *, root=None,
                      check: bool = False, log=print) -> dict[str, dict[str, Path]]:
    """:func:`write_assignment` for each chapter named (all when none are)."""
    chapters = check_chapters(chapters)
    exercises_dir(root)  # fail before any work when the sources are missing
    written = {}
    for chapter in chapters:
        written[chapter] = paths = write_assignment(chapter, out, root=root, check=check)
        if log:
            log(f"{chapter}: student {paths['student']}; autograder {paths['autograder']}")
    return written


def write_student_copies(chapters=None, *, root=None) -> list[Path]:
    """Copy each chapter's student notebook to ``book/exercises/student/CHAPTER.ipynb``, the
    copy the exercises pages link (on Colab at this release's tag).  Run it after editing an
    exercises source; ``tests/test_assignments.py`` checks that the copies are current."""
    chapters = check_chapters(chapters)
    folder = exercises_dir(root) / STUDENT_DIR
    folder.mkdir(exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="student-copies-") as tmp:
        for chapter in chapters:
            paths = write_assignment(chapter, tmp, root=root)
            nb = json.loads(paths["student"].read_text())
            for i, cell in enumerate(nb["cells"]):  # otter gives its own cells random ids
                cell["source"], cell["id"] = _lines("".join(cell["source"])), f"{chapter}-{i}"
            target = folder / f"{chapter}.ipynb"
            target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            written.append(target)
    return written


def fetch_public_tests(chapter: str, dest: str | os.PathLike = ".", *, root=None) -> Path:
    """Write the public checks of ``chapter``'s exercises into ``dest/tests``; return that folder.

    A student who opens the student notebook alone (on Colab) has no ``tests`` folder
    beside it, so ``grader.check`` would find nothing.  The notebook's first cell calls
    this there: it takes the exercises' one source from the book's repository (a local
    checkout when there is one, else :data:`SOURCE_URL`, this release's tag), runs ``otter assign`` on it in a
    temporary folder and copies the student's ``tests`` out, so the checks are exactly
    those of the handed-out version.  An existing ``dest/tests`` is left as it is.
    """
    check_chapters([chapter])
    target = Path(dest).resolve() / "tests"
    if target.is_dir():
        return target
    with tempfile.TemporaryDirectory(prefix=f"tests-{chapter}-") as tmp:
        try:
            source_root = exercises_dir(root).parents[1]
        except ValueError:  # no checkout here: download the one source
            import urllib.request
            folder = Path(tmp) / "src" / "book" / "exercises"
            folder.mkdir(parents=True)
            urllib.request.urlretrieve(SOURCE_URL.format(chapter=chapter), folder / f"{chapter}.ipynb")
            source_root = folder.parents[1]
        paths = write_assignment(chapter, Path(tmp) / "out", root=source_root)
        shutil.copytree(paths["student"].parent / "tests", target)
    return target


def grade(notebook: str | os.PathLike, autograder: str | os.PathLike) -> tuple[float, float]:
    """Grade one notebook locally, without Docker: (score, possible points).

    The same as ``otter run -a AUTOGRADER NOTEBOOK``; it runs in this environment, so
    ``collapse_utils`` must be importable.
    """
    try:
        from otter.api import grade_submission
    except ImportError as err:  # pragma: no cover
        raise ValueError(OTTER_HINT) from err
    results = grade_submission(str(notebook), str(autograder), quiet=True)
    return float(results.total), float(results.possible)


def question_scores(notebook: str | os.PathLike,
                    autograder: str | os.PathLike) -> dict[str, tuple[float, float]]:
    """Grade one notebook as :func:`grade` does: ``{question: (score, possible)}``."""
    try:
        from otter.api import grade_submission
    except ImportError as err:  # pragma: no cover
        raise ValueError(OTTER_HINT) from err
    results = grade_submission(str(notebook), str(autograder), quiet=True)
    return {name: (float(r.score), float(r.possible)) for name, r in results.results.items()}
