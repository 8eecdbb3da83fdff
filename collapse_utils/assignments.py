"""Course assignments: student and autograder versions of each chapter's graded exercises.

Each chapter's graded exercises have one source, ``book/exercises/<chapter>.ipynb``,
written in otter-grader's assign format (raw ``# BEGIN QUESTION`` / ``# BEGIN SOLUTION``
/ ``# BEGIN TESTS`` cells; hidden test cells start with ``# HIDDEN``).  The book renders
that notebook with its solutions folded (cells tagged ``hide-input``) and its tests
removed (``remove-cell``); :func:`write_assignments` runs ``otter assign`` on it, which
writes otter's layout per chapter::

    DIR/CHAPTER/student/CHAPTER.ipynb            no solutions, no hidden tests
    DIR/CHAPTER/student/tests/q*.py              the public checks (grader.check("q1"))
    DIR/CHAPTER/autograder/CHAPTER.ipynb         the reference notebook, with solutions
    DIR/CHAPTER/autograder/CHAPTER-autograder.zip  all tests: otter run / otter grade / Gradescope

so the rendered solution and the graded one cannot drift.  The command line is
``python -m collapse_utils assignments [CHAPTER ...] --out DIR``.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

#: the chapters with graded exercises, in reading order
CHAPTERS = ("intro", "discrete", "gaussian", "gmm", "vae", "lm", "beyond", "definitions", "curation")

#: cell tags that only the rendered book reads; the student and autograder notebooks drop them
BOOK_TAGS = ("hide-input", "hide-output", "hide-cell", "remove-cell", "remove-input",
             "remove-output")

#: where a student's notebook on Colab finds the exercises' one source (see :func:`fetch_public_tests`)
SOURCE_URL = ("https://raw.githubusercontent.com/model-collapse-executable/model-collapse-executable/"
              "main/book/exercises/{chapter}.ipynb")

OTTER_HINT = "otter-grader is not installed: pip install otter-grader (see requirements.txt)"


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
    """The notebook without the book's display tags and without outputs (a new dict)."""
    nb = json.loads(json.dumps(nb))
    for cell in nb["cells"]:
        tags = [t for t in cell.get("metadata", {}).get("tags", []) if t not in BOOK_TAGS]
        if tags:
            cell["metadata"]["tags"] = tags
        else:
            cell.get("metadata", {}).pop("tags", None)
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
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


def fetch_public_tests(chapter: str, dest: str | os.PathLike = ".", *, root=None) -> Path:
    """Write the public checks of ``chapter``'s exercises into ``dest/tests``; return that folder.

    A student who opens the student notebook alone (on Colab) has no ``tests`` folder
    beside it, so ``grader.check`` would find nothing.  The notebook's first cell calls
    this there: it takes the exercises' one source from the book's repository (a local
    checkout when there is one, else :data:`SOURCE_URL`), runs ``otter assign`` on it in a
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
