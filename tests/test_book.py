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
    files = []

    def walk(node):
        if isinstance(node, dict):
            for key in ("root", "file"):
                if key in node:
                    files.append(node[key])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load((ROOT / "_toc.yml").read_text()))
    return files


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
    assert f'@ git+{CONFIG["repository"]["url"]}"' in src


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
    assert test in ci.splitlines()
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


def test_book_builds_without_warnings_at_smoke(tmp_path):
    """`jupyter-book build . -W` at the smoke profile: any warning or notebook error fails."""
    out = subprocess.run(
        [sys.executable, "-m", "collapse_utils", "book", "--profile", "smoke", "--strict",
         "--path-output", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=1800,
        env={**os.environ, "COLLAPSE_PROFILE": "smoke"})
    assert out.returncode == 0, (out.stdout + out.stderr)[-6000:]
    html = tmp_path / "_build" / "html"
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
