"""The book as a whole: notebooks clean and listed, Colab cells, README commands, the -W build."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


def toc_files():
    from collapse_utils.book import toc_entries

    return toc_entries(ROOT)


def readme_commands():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- two-commands -->\s*```bash\n(.*?)```", text, re.S)
    assert block, "README lacks the ```bash block after <!-- two-commands -->"
    lines = [ln for ln in block.group(1).splitlines() if ln.strip() and not ln.startswith("#")]
    return lines


def test_there_are_chapters():
    assert (ROOT / "book" / "intro.ipynb") in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name}: a code cell has outputs"
            assert cell.get("execution_count") is None, f"{path.name}: a code cell has a count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_in_the_toc(path):
    assert f"book/{path.stem}" in toc_files()


def test_every_toc_entry_exists():
    for entry in toc_files():
        assert any((ROOT / f"{entry}{ext}").exists() for ext in (".ipynb", ".md")), entry


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_installs_from_the_configured_repository(path):
    nb = json.loads(path.read_text())
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    src = "".join(first["source"])
    assert 'find_spec("collapse_utils") is None' in src
    import collapse_utils

    assert f'@ {collapse_utils.RELEASE_URL}"' in src   # this release, not main; no git needed
    assert collapse_utils.RELEASE_URL.startswith(CONFIG["repository"]["url"] + "/archive/refs/tags/")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_has_hidden_asserts_and_exercises(path):
    nb = json.loads(path.read_text())
    hidden = [c for c in nb["cells"] if "remove-cell" in c.get("metadata", {}).get("tags", [])]
    assert any("assert" in "".join(c["source"]) for c in hidden), f"{path.name}: no hidden assert"
    text = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "{exercise}" in text and "{solution}" in text and ":class: dropdown" in text


def test_readme_gives_two_commands_and_ci_runs_the_test_one():
    build, test = readme_commands()
    assert "collapse_utils book" in build and "pytest" in test
    for cmd in (build, test):
        assert cmd.startswith("python3 -m venv .venv && .venv/bin/pip install") and "-r requirements.txt" in cmd
    ci = (ROOT / ".ci" / "run").read_text()
    lines = ci.splitlines()
    assert test in lines, "the README's test command is not a line of .ci/run"
    # tests/test_browser.py needs Chromium: .ci/run installs it before the tests run
    before = "\n".join(lines[:lines.index(test)])
    assert "command -v chromium" in before and "apt-get install -y" in before and "chromium" in before
    assert "CI=true" in ci and "HF_HUB_OFFLINE=1" in ci and "HF_DATASETS_OFFLINE=1" in ci
    assert "COLLAPSE_PROFILE=smoke" in ci
    assert CONFIG["repository"]["url"] in (ROOT / "README.md").read_text()


def test_requirements_are_exact_pins():
    lines = [ln.strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert "-e ." in lines
    pins = [ln for ln in lines if ln != "-e ."]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][A-Za-z0-9.+]*", p) for p in pins), pins
    assert "torch==2.13.0" in pins
    assert any(re.fullmatch(r"jupyter-book==1\.[0-9.a-z]+", p) for p in pins)


def test_book_builds_without_warnings_at_smoke(smoke_book):
    """`jupyter-book build . -W` at the smoke profile: any warning or notebook error fails.

    The build is the session fixture of tests/conftest.py, shared with tests/test_browser.py.
    """
    assert smoke_book.returncode == 0, smoke_book.log[-6000:]
    html = smoke_book.html
    for entry in toc_files():
        page = html / f"{entry}.html"
        assert page.exists(), entry
        assert "Traceback" not in page.read_text()
    # a directive that failed to parse (e.g. a role with backticks in its title) is
    # rendered as raw text without any warning: look for the leftovers
    raw = re.compile(r"(```|:::)\{(prf:|exercise|solution|admonition|note|bibliography)")
    for page in html.rglob("*.html"):
        assert not raw.search(page.read_text()), f"unparsed directive in {page.name}"
    intro = (html / "book" / "intro.html").read_text()
    assert intro.count("<img") >= 2          # the loop diagram and the first experiment
    assert "math notranslate" in intro        # MathJax-rendered math


def test_built_pages_serve_their_own_math_one_thebe_and_author_year_labels(smoke_book):
    """MathJax from the site itself with the book's macros, sphinx-thebe's inline config once,
    bibliography labels as the citations print them (the browser test checks the rest)."""
    html = smoke_book.html
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    for entry in toc_files():
        page = (html / f"{entry}.html").read_text()
        assert "cdn.jsdelivr.net" not in page and "mathjax@" not in page, entry
        assert page.count("const THEBE_JS_URL") <= 1, f"{entry}: sphinx-thebe included twice"
    intro = (html / "book" / "intro.html").read_text()
    assert 'src="../_static/mathjax/tex-chtml.js' in intro
    macros = CONFIG["sphinx"]["config"]["mathjax3_config"]["tex"]["macros"]
    assert all(f'"{name}":' in intro for name in macros)
    refs = (html / "book" / "references.html").read_text()
    assert re.search(r'class="label"><span class="fn-bracket">\[</span>Shumailov et al\., 2024<', refs)
    assert "Gelbrich, 1990" in refs


def test_license_and_citation_file_agree_with_the_package():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'license = { text = "MIT" }' in pyproject
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["license"] == "MIT"
    assert cff["title"] == CONFIG["title"]
    assert cff["repository-code"] == CONFIG["repository"]["url"]
    bib = (ROOT / "book" / "references.bib").read_text()
    paper = re.search(r"@article\{shumailov2024nature,.*?\n\}", bib, re.S).group(0)
    assert f'doi     = {{{cff["preferred-citation"]["doi"]}}}' in paper
    # the "How to cite" page quotes the paper's entry exactly as the bibliography holds it
    assert paper in (ROOT / "book" / "cite.md").read_text()
    assert CONFIG["repository"]["url"] in (ROOT / "book" / "cite.md").read_text()


def test_bibliography_labels_read_like_the_citations():
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        import bib_labels
    finally:
        sys.path.pop(0)
    from pybtex.database import Entry, Person

    def entry(year, *names):
        return Entry("article", fields={"year": year}, persons={"author": [Person(n) for n in names]})

    entries = [entry("1955", "Kimura, Motoo"), entry("1982", "Dowson, D. C.", "Landau, B. V."),
               entry("2024", "Shumailov, Ilia", "Shumaylov, Zakhar", "Gal, Yarin"),
               entry("2024", "Dohmatob, Elvis", "Feng, Yunzhen", "Kempe, Julia"),
               entry("2024", "Dohmatob, Elvis", "Yang, Pu", "Kempe, Julia"),
               entry("1990", "{G}elbrich, Matthias")]
    labels = list(bib_labels.AuthorYearLabelStyle().format_labels(entries))
    assert labels == ["Kimura, 1955", "Dowson and Landau, 1982", "Shumailov et al., 2024",
                      "Dohmatob et al., 2024a", "Dohmatob et al., 2024b", "Gelbrich, 1990"]


def test_chapters_run_in_parallel_into_the_cache_the_build_reads(tmp_path):
    """`collapse_utils book` runs the chapters jupyter-cache lacks (`jobs` at a time but for the
    language model); a failing one is reported and left out of the cache (the build then runs it and reports its error)."""
    import nbformat
    from jupyter_cache import get_cache

    from collapse_utils.book import ALONE, LONGEST_FIRST, execute_chapters

    assert set(ALONE) | set(LONGEST_FIRST) <= set(toc_files()) and not set(ALONE) & set(LONGEST_FIRST)

    (tmp_path / "_config.yml").write_text("execute:\n  execute_notebooks: cache\n  timeout: 60\n")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/good\nchapters:\n- file: book/bad\n")
    (tmp_path / "book").mkdir()
    for name, code in (("good", "open('ran.txt', 'w').write('yes')"), ("bad", "assert 1 == 2, 'a hidden assert'")):
        nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                               "language": "python"}})
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}"), nbformat.v4.new_code_cell(code)]
        nbformat.write(nb, tmp_path / "book" / f"{name}.ipynb")
    cache_path = tmp_path / "_build" / ".jupyter_cache"
    assert execute_chapters(tmp_path, cache_path, 2, dict(os.environ)) == ["book/bad.ipynb"]
    assert (tmp_path / "book" / "ran.txt").read_text() == "yes"          # run in the notebook's folder
    cache = get_cache(str(cache_path))
    good = nbformat.read(tmp_path / "book" / "good.ipynb", nbformat.NO_CONVERT)
    assert cache.match_cache_notebook(good) is not None                   # what the build will find
    with pytest.raises(KeyError):
        cache.match_cache_notebook(nbformat.read(tmp_path / "book" / "bad.ipynb", nbformat.NO_CONVERT))
    (tmp_path / "book" / "ran.txt").unlink()
    assert execute_chapters(tmp_path, cache_path, 2, dict(os.environ)) == ["book/bad.ipynb"]
    assert not (tmp_path / "book" / "ran.txt").exists()                  # the cached one is not run again


def test_readme_describes_the_stand_ins_the_code_runs():
    """The README's offline paragraph names the language model's stand-ins by the labels the
    code puts on their figures, and the backend each profile runs (it once described a
    stand-in the chapter no longer used)."""
    from collapse_utils.experiments import resolve_settings
    from collapse_utils.lm.backends import STAND_IN_LABEL, STAND_IN_WHEEL, TINY_LABEL

    text = " ".join((ROOT / "README.md").read_text().split())
    for label in (STAND_IN_LABEL, TINY_LABEL, STAND_IN_WHEEL.split("==")[0]):
        assert label in text, label
    backends = {p: resolve_settings("lm", p)["backend"] for p in ("smoke", "default", "paper")}
    assert backends == {"smoke": "tiny", "default": "auto", "paper": "auto"}, backends
    assert "trains a tiny OPT from scratch" not in text


def test_exercises_pages_colab_button_opens_the_student_copy(smoke_book):
    """On an exercises page the theme's Colab button opened the source with the hidden tests;
    book/_ext/student_launch.py points it at the release's student copy."""
    from collapse_utils.assignments import student_copy_urls

    assert smoke_book.returncode == 0, smoke_book.log[-3000:]
    page = (smoke_book.html / "book" / "exercises" / "gaussian.html").read_text()
    assert student_copy_urls("gaussian")["colab"] in page
    assert "/blob/main/book/exercises/gaussian.ipynb" not in page
    chapter = (smoke_book.html / "book" / "gaussian.html").read_text()
    assert "/blob/main/book/gaussian.ipynb" in chapter   # other pages keep their own notebook


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapters_define_the_math_macros_they_use(path):
    """_config.yml's MathJax macros reach only the rendered book: a chapter that writes \\E or
    \\N defines them itself for Jupyter and Colab (a hidden markdown cell)."""
    from collapse_utils.assignments import MATH_MACROS, macros_cell

    assert set(MATH_MACROS) == set(CONFIG["sphinx"]["config"]["mathjax3_config"]["tex"]["macros"])
    cells = json.loads(path.read_text())["cells"]
    text = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    if re.search(r"\\[EN](?![A-Za-z])", text):
        assert any("".join(c["source"]) == macros_cell() for c in cells), path.name
