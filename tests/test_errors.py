"""Bad input, a full or read-only disk, an interrupt: one line naming what to change, no traceback,
no lost data and no process left behind (GitHub issue 24)."""
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collapse_utils.cli import main

ROOT = Path(__file__).resolve().parent.parent


def one_line_error(capsys, argv, status=2):
    """Run the command line; assert it exits with ``status`` and one line on stderr; return it."""
    assert main(argv) == status
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("collapse_utils: error: "), err
    return lines[0]


# ----------------------------------------------------------------------------- the book's _build
def test_book_leaves_a_build_folder_it_did_not_make(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    (tmp_path / "_build").mkdir()
    (tmp_path / "_build" / "thesis.tex").write_text("a user's file")
    line = one_line_error(capsys, ["book", "--profile", "smoke", "--path-output", str(tmp_path)])
    assert "--path-output" in line and "_build" in line
    assert (tmp_path / "_build" / "thesis.tex").read_text() == "a user's file"


def test_book_path_output_that_is_a_file_or_empty(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    (tmp_path / "notes.txt").write_text("x")
    assert "--path-output" in one_line_error(capsys, ["book", "--path-output", str(tmp_path / "notes.txt")])
    assert "--path-output" in one_line_error(capsys, ["book", "--path-output", ""])
    assert (tmp_path / "notes.txt").read_text() == "x"


def test_book_empties_only_its_own_build_folder(tmp_path):
    from collapse_utils.book import MARKER, claim_build

    build = tmp_path / "_build"
    claim_build(build, "smoke abc")                  # made here: marked
    (build / "html").mkdir()
    claim_build(build, "smoke abc")                  # same key: kept
    assert (build / "html").is_dir()
    claim_build(build, "default abc")                # another profile: emptied, marked again
    assert not (build / "html").exists() and (build / MARKER).read_text() == "default abc"
    (build / MARKER).unlink()
    (build / "mine.txt").write_text("keep")
    with pytest.raises(ValueError, match="--path-output"):
        claim_build(build, "smoke abc")
    assert (build / "mine.txt").read_text() == "keep"
    (tmp_path / "empty" / "_build").mkdir(parents=True)
    claim_build(tmp_path / "empty" / "_build", "smoke abc")      # an empty one is used
    assert (tmp_path / "empty" / "_build" / MARKER).is_file()
    (tmp_path / "link").mkdir()
    (tmp_path / "link" / "_build").symlink_to(build)             # a link is not followed
    with pytest.raises(ValueError, match="--path-output"):
        claim_build(tmp_path / "link" / "_build", "default abc")
    assert (build / "mine.txt").read_text() == "keep"


# ----------------------------------------------------------------------------- the book's workers
def _sleeping_book(root: Path) -> list[Path]:
    """A two-chapter book whose chapters write '<kernel pid> <worker pid>', then sleep."""
    import nbformat

    (root / "book").mkdir(parents=True)
    (root / "_config.yml").write_text("execute:\n  execute_notebooks: cache\n  timeout: 600\n")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/a\nchapters:\n- file: book/b\n")
    for name in "ab":
        nb = nbformat.v4.new_notebook(metadata={"kernelspec": {
            "name": "python3", "display_name": "Python 3", "language": "python"}})
        nb.cells = [nbformat.v4.new_code_cell(
            f"import os, time\nopen('{name}.pids', 'w').write(f'{{os.getpid()}} {{os.getppid()}}')\n"
            "time.sleep(600)")]
        nbformat.write(nb, root / "book" / f"{name}.ipynb")
    return [root / "book" / f"{name}.pids" for name in "ab"]


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.skipif(importlib.util.find_spec("jupyter_cache") is None
                    or importlib.util.find_spec("psutil") is None,
                    reason="the book's build tools are not installed (the minimum-versions job)")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["SIGINT", "SIGTERM", "kill -9"])
def test_book_workers_and_kernels_end_with_the_build(tmp_path, sig):
    if sig == signal.SIGKILL and not sys.platform.startswith("linux"):
        pytest.skip("the backstop for kill -9 is Linux's PR_SET_PDEATHSIG")
    pid_files = _sleeping_book(tmp_path / "bk")
    env = {**os.environ, "COLLAPSE_PROFILE": "smoke", "PYTHONPATH": str(ROOT)}
    build = subprocess.Popen([sys.executable, "-m", "collapse_utils", "book", "--jobs", "2",
                              "--path-output", str(tmp_path / "out")],
                             cwd=tmp_path / "bk", env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not all(p.is_file() and p.read_text() for p in pid_files):
            assert build.poll() is None and time.monotonic() < deadline, build.communicate()
            time.sleep(0.2)
        pids = [int(x) for p in pid_files for x in p.read_text().split()]   # kernels and workers
        assert all(map(_alive, pids))
        build.send_signal(sig)
        out, err = build.communicate(timeout=30)
        deadline = time.monotonic() + 15
        while any(map(_alive, pids)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in pids if _alive(p)], "a worker or kernel outlived the build"
        if sig != signal.SIGKILL:
            assert build.returncode == 130
            assert err.strip().splitlines()[-1].startswith("collapse_utils: interrupted"), err
            assert "Traceback" not in err
    finally:
        if build.poll() is None:
            build.kill()


# ----------------------------------------------------------------------------- the language model's model and corpus
def test_lm_mistyped_model_path_is_an_error_not_the_stand_in(tmp_path, capsys):
    for profile in ("default", "paper"):   # backend auto
        line = one_line_error(capsys, ["run", "lm", "--profile", profile,
                                       "--model", str(tmp_path / "my-opt")])
        assert "model must be" in line and "my-opt" in line and "does not exist" in line
    for typo in ("./my-opt", "~/no/such/model", "models/opt/x", "opt.gguf"):
        assert "model must be" in one_line_error(capsys, ["run", "lm", "--profile", "default",
                                                          "--model", typo])


def test_lm_model_at_smoke_is_not_ignored(tmp_path, capsys):
    line = one_line_error(capsys, ["run", "lm", "--profile", "smoke", "--model", str(tmp_path)])
    assert "model is not read by backend tiny" in line and "--backend local" in line


def test_lm_hub_ids_and_existing_paths_are_models():
    from collapse_utils.lm.backends import looks_like_path

    assert not any(map(looks_like_path, ["facebook/opt-125m", "gpt2", "HuggingFaceTB/SmolLM2-135M"]))
    assert all(map(looks_like_path, ["./opt", "~/opt", "/models/opt", "a/b/c", "opt.gguf", "../x"]))


def test_lm_binary_corpus_is_named(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("train.txt", "valid.txt", "test.txt"):
        (corpus / name).write_text("Plain text, one row per line.\n" * 50)
    (corpus / "valid.txt").write_bytes(bytes(range(256)) * 8)            # binary
    line = one_line_error(capsys, ["run", "lm", "--profile", "smoke", "--corpus", str(corpus)])
    assert "corpus" in line and "valid.txt" in line


def test_lm_corpus_not_utf8_after_its_start_is_named(tmp_path):
    from collapse_utils.lm.backends import CORPUS_SNIFF, check_corpus, corpus_rows

    for name in ("train.txt", "validation.txt", "test.txt"):
        (tmp_path / name).write_text("text\n")
    (tmp_path / "train.txt").write_bytes(b"a" * (CORPUS_SNIFF + 10) + b"\xff\xfe rest\n")
    check_corpus(str(tmp_path))                                            # its start is text
    with pytest.raises(ValueError, match="corpus .*train.txt is not UTF-8"):
        corpus_rows(str(tmp_path))


# ----------------------------------------------------------------------------- settings
@pytest.mark.parametrize("argv, names", [
    (["run", "discrete", "--regime", "[replace"], ["regime", "[replace"]),
    (["run", "gaussian", "--M", "[100, 200"], ["M"]),
    (["run", "discrete", "--p0", "[0.5, 0.5"], ["p0"]),
    (["run", "discrete", "--p0", '["a", 0.5]'], ["p0"]),
    (["run", "discrete", "--p0", "[[0.5, 0.5]]"], ["p0"]),
    (["run", "discrete", "--p0", "[{}, 1]"], ["p0"]),
    (["run", "discrete", "--p0", "[true, false]"], ["p0"]),
    (["run", "gaussian", "--dim", "3", "--M", "3"], ["M", "dim"]),
    (["run", "gaussian", "--dim", "5", "--M", "[100, 4]"], ["M", "dim"]),
], ids=lambda x: " ".join(x) if isinstance(x, list) else None)
def test_bad_values_name_the_setting(capsys, argv, names):
    line = one_line_error(capsys, argv)
    assert all(name in line for name in names), line


def test_gaussian_just_above_dim_runs_finite(tmp_path):
    from collapse_utils import run_experiment

    import numpy as np

    rec = run_experiment("gaussian", profile="smoke", overrides={"dim": 3, "M": 4, "chains": 5,
                         "generations": 2}, out=tmp_path, progress=False)
    assert np.isfinite(rec.data["runs"][0]["metrics"]["w2_squared_mean"]).all()


# ----------------------------------------------------------------------------- folders and the machine
def test_out_is_checked_before_any_work(tmp_path, capsys, monkeypatch):
    import collapse_utils.cli as cli

    def never(*a, **k):
        raise AssertionError("ran before --out was checked")

    monkeypatch.setattr(cli, "run_experiment", never)
    (tmp_path / "afile").write_text("x")
    for out in ("", " ", str(tmp_path / "afile"), str(tmp_path / "afile" / "sub")):
        line = one_line_error(capsys, ["run", "discrete", "--out", out])
        assert "--out" in line


def test_cache_that_is_a_file_or_unwritable(tmp_path, capsys, monkeypatch):
    import errno
    import tempfile

    import collapse_utils.cli as cli

    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path / "afile"))
    assert "COLLAPSE_CACHE" in one_line_error(capsys, ["run", "discrete", "--generations", "1"])
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.access(ro, os.W_OK):   # root writes anyway: the probe meets what a read-only folder gives
        real = tempfile.TemporaryFile

        def denied(*args, dir=None, **kwargs):
            if dir is not None and Path(dir).resolve() == ro:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dir))
            return real(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "TemporaryFile", denied)

    def never(*a, **k):
        raise AssertionError("ran before the folders were checked")

    monkeypatch.setattr(cli, "run_experiment", never)
    try:
        monkeypatch.setenv("COLLAPSE_CACHE", str(ro / "cache"))
        assert "COLLAPSE_CACHE" in one_line_error(capsys, ["run", "discrete", "--generations", "1"])
        monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path / "cache"))
        line = one_line_error(capsys, ["run", "discrete", "--generations", "1", "--out", str(ro)])
        assert "--out" in line and "cannot be written" in line
        assert "--out" in one_line_error(capsys, ["assignments", "intro", "--out", str(ro / "a")])
        assert not list(ro.iterdir())
    finally:
        ro.chmod(0o755)


def test_assignments_out_that_is_a_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert "--out" in one_line_error(capsys, ["assignments", "intro", "--out", str(tmp_path / "afile")])
    assert (tmp_path / "afile").read_text() == "x"


def test_full_disk_is_one_line_naming_the_path(tmp_path, capsys, monkeypatch):
    import errno

    import collapse_utils.cli as cli

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "run" / "gen_0003.npz"))

    monkeypatch.setattr(cli, "run_experiment", full)
    line = one_line_error(capsys, ["run", "discrete", "--out", str(tmp_path)], status=1)
    assert "gen_0003.npz" in line and "space" in line.lower()


def test_memory_that_runs_out_is_one_line_naming_the_setting(capsys):
    line = one_line_error(capsys, ["run", "gaussian", "--chains", str(10**15), "--generations", "1"],
                          status=1)
    assert "memory ran out" in line and "--chains" in line
