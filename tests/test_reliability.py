"""Nothing lost, nothing crashes (issue 24, items 1-3 and the sweep's part of 5): two processes
on one cache, a truncated or empty cache file, weights a finished run dropped, a killed parent.

Each test reproduces a failure seen before the fix, at test sizes (seconds)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from collapse_utils import experiments as ex
from collapse_utils.loop import atomic_write_bytes, run_generations
from collapse_utils.record import Record

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, cache, wait=True, **kw):
    env = {**os.environ, "COLLAPSE_CACHE": str(cache), "COLLAPSE_PROFILE": "smoke"}
    cmd = [sys.executable, "-m", "collapse_utils", *args]
    if not wait:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, **kw)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
                          **kw)


def _metrics(folder):
    return [r["metrics"] for r in Record.load(folder).data["runs"]]


# ----------------------------------------------------------------------------- item 1
@pytest.mark.parametrize("second", [[], ["--resume"]])
def test_two_processes_on_one_run_both_finish_with_the_same_result(tmp_path, second):
    """Before: one of two identical runs started together crashed with FileNotFoundError
    (gen_XXXX.pkl deleted by the other) in 4 of 5 tries."""
    args = ["run", "gaussian", "--generations", "400", "--seed", "7", "--quiet"]
    a = cli(*args, "--out", str(tmp_path / "a"), cache=tmp_path / "cache", wait=False)
    b = cli(*args, "--out", str(tmp_path / "b"), *second, cache=tmp_path / "cache", wait=False)
    outs = [p.communicate(timeout=300) for p in (a, b)]
    assert (a.returncode, b.returncode) == (0, 0), outs
    assert _metrics(tmp_path / "a") == _metrics(tmp_path / "b")
    assert not any("Traceback" in err for _, err in outs)


def test_a_second_process_waits_for_the_run_that_holds_the_folder(tmp_path, monkeypatch):
    """The race above made deterministic: while this test holds a run's lock, the command line
    waits (and says so) instead of deleting the holder's files, then finishes the run."""
    from collapse_utils.loop import folder_lock

    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path / "cache"))
    over = {"generations": 30}
    exp = ex.get_experiment("gaussian-intro")
    settings = ex.distinct_sweeps(exp, ex.resolve_settings(exp, "smoke", over))
    (_, own, seed), *rest = ex.sweep_points(exp, settings, 0)
    run_dir = tmp_path / "cache" / exp.name / ex.run_key(exp, "smoke", own, seed)
    with folder_lock(run_dir):
        waiting = cli("run", exp.name, "--generations", "30", "--quiet", "--out",
                      str(tmp_path / "b"), cache=tmp_path / "cache", wait=False)
        time.sleep(8)
        assert waiting.poll() is None, waiting.communicate()
    _, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert f"waiting for another process that runs {run_dir}" in err
    ours = ex._run_point(exp.name, own, seed, str(tmp_path / "own"), False, False, None)
    assert Record.load(tmp_path / "b").data["runs"][0]["metrics"] == ours["metrics"]


def test_a_repeated_sweep_value_is_one_run(tmp_path):
    """Before: --regime replace,replace put two workers in one folder and crashed 3 of 3."""
    out = cli("run", "gaussian", "--generations", "5", "--regime", "replace,replace,accumulate",
              "--quiet", "--out", str(tmp_path / "r"), cache=tmp_path / "cache")
    assert out.returncode == 0, out.stderr
    rec = Record.load(tmp_path / "r")
    assert rec.values("regime") == ["replace", "accumulate"] and len(rec.data["runs"]) == 2


def test_each_invocation_writes_its_own_record(tmp_path, monkeypatch):
    """Before: every invocation wrote CACHE/EXP/metrics.json, so the last writer won."""
    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path))
    short = ex.run_experiment("gaussian-intro", profile="smoke", overrides={"generations": 2},
                              progress=False)
    long = ex.run_experiment("gaussian-intro", profile="smoke", overrides={"generations": 4},
                             progress=False)
    assert short.path != long.path
    assert Record.load(short.path).settings["generations"] == 2
    assert Record.load(long.path).settings["generations"] == 4


# ----------------------------------------------------------------------------- items 2 and 3
def _fit(x, rng):
    return np.array([x.mean(), x.std(ddof=1)])


def _sample(m, k, rng):
    return m[0] + m[1] * rng.standard_normal(k)


def _chain(run_dir, **kw):
    real = np.random.default_rng(0).standard_normal(50)
    return run_generations(_fit, _sample, real, 8, seed=3, run_dir=run_dir, progress=False,
                           measure=lambda g: {"sigma": float(g.model[1])}, **kw)


@pytest.mark.parametrize("size", [0, 10])
def test_a_truncated_generation_file_is_named_and_recomputed(tmp_path, capsys, size):
    """Before: --resume after `truncate -s 10 gen_0005.pkl` raised UnpicklingError/EOFError,
    naming no file."""
    full = _chain(tmp_path / "run")
    with open(tmp_path / "run" / "gen_0005.pkl", "r+b") as f:
        f.truncate(size)
    again = _chain(tmp_path / "run", resume=True)
    err = capsys.readouterr().err
    assert "gen_0005.pkl is unreadable" in err and "recomputing generations 5 to 8" in err
    assert len(err.strip().splitlines()) == 1
    assert again.metrics == full.metrics and again.resumed_from == 4
    assert _chain(tmp_path / "run", resume=True).resumed_from == 8   # whole again


def test_missing_weights_are_recomputed_from_the_newest_loadable_model(tmp_path, capsys):
    """A model whose weights are gone (a finished run drops them) is recomputed from the newest
    generation whose model loads, with a line naming it."""
    def save(model, path):
        atomic_write_bytes(Path(path) / "w.npy", model.tobytes())

    def load(path):
        return np.frombuffer((Path(path) / "w.npy").read_bytes())

    full = _chain(tmp_path / "run", save_model=save, load_model=load, stop_after=5)
    (tmp_path / "run" / "model_0005" / "w.npy").unlink()
    rest = _chain(tmp_path / "run", save_model=save, load_model=load, resume=True)
    err = capsys.readouterr().err
    assert "model_0005 cannot be loaded" in err and "recomputing generations 5 to 8" in err
    assert rest.resumed_from == 4
    assert rest.metrics["sigma"][:6] == full.metrics["sigma"]
    assert rest.metrics == _chain(tmp_path / "fresh").metrics
    # a finished run needs no weights at all to be read back
    for folder in (tmp_path / "run").glob("model_*"):
        for f in folder.iterdir():
            f.unlink()
    assert _chain(tmp_path / "run", save_model=save, load_model=load, resume=True).metrics == rest.metrics


def test_a_finished_lm_run_resumes_after_its_result_is_lost(tmp_path):
    """Before: after `truncate -s 20 result.json`, --resume failed on every try with
    "Unrecognized model in .../model_0002" (the finished run had dropped those weights)."""
    args = ["run", "lm", "--generations", "2", "--regime", "replace", "--seeds", "1", "--quiet"]
    first = cli(*args, "--out", str(tmp_path / "a"), cache=tmp_path / "cache")
    assert first.returncode == 0, first.stderr
    (result,) = (tmp_path / "cache" / "lm").glob("*/result.json")
    with open(result, "r+b") as f:
        f.truncate(20)
    again = cli(*args, "--resume", "--out", str(tmp_path / "b"), cache=tmp_path / "cache")
    assert again.returncode == 0, again.stderr
    assert _metrics(tmp_path / "a") == _metrics(tmp_path / "b")


def test_an_empty_vae_generation_0_file_is_trained_again(tmp_path):
    """Before: an empty shared generation-0 file failed every later run, even without --resume,
    until the folder was deleted."""
    args = ["run", "vae", "--generations", "1", "--regime", "replace", "--seeds", "1", "--quiet"]
    first = cli(*args, "--out", str(tmp_path / "a"), cache=tmp_path / "cache")
    assert first.returncode == 0, first.stderr
    (weights,) = (tmp_path / "cache" / "vae" / "generation-0").glob("*.pt")
    weights.write_bytes(b"")
    again = cli(*args, "--out", str(tmp_path / "b"), cache=tmp_path / "cache")
    assert again.returncode == 0, again.stderr
    assert f"{weights} cannot be loaded" in again.stderr and "Traceback" not in again.stderr
    assert _metrics(tmp_path / "a") == _metrics(tmp_path / "b")
    assert weights.stat().st_size > 0


def test_cache_files_follow_the_umask(tmp_path):
    """Before: mkstemp's 0600 stayed on every cache file, whatever the umask."""
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "f.json", b"{}")
    finally:
        os.umask(old)
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == 0o644


# ----------------------------------------------------------------------------- item 5 (sweeps)
SLOW = textwrap.dedent("""
    import time
    from collapse_utils.experiments import Experiment, RunOutput, register, run_experiment
    from collapse_utils.settings import Setting

    def slow(settings, *, seed, run_dir, resume, progress, stop_after=None):
        time.sleep(60)
        return RunOutput([0], {})

    register(Experiment("slow", "sleeps", {"generations": Setting(0, low=0),
                                           "seeds": Setting(6, low=1)}, slow, parallel=True))

    def go():
        run_experiment("slow", profile="smoke", progress=False)
""")


def _children(pid: int) -> set[int]:
    kids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.add(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_sweep_workers_exit_when_their_parent_is_killed(tmp_path, sig):
    """Before: after kill -9 or kill -TERM on the parent of a parallel sweep, its workers
    finished their queue and then blocked forever."""
    (tmp_path / "slowexp.py").write_text(SLOW)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
           "COLLAPSE_CACHE": str(tmp_path / "cache"), "COLLAPSE_WORKERS": "2"}
    parent = subprocess.Popen([sys.executable, "-c", "import slowexp; slowexp.go()"], env=env,
                              cwd=tmp_path)
    try:
        deadline = time.time() + 60
        while len(workers := _children(parent.pid)) < 2 and time.time() < deadline:
            time.sleep(0.2)
        assert len(workers) >= 2, "the sweep did not start its workers"
        time.sleep(1)   # the workers are inside their runs
        workers = _children(parent.pid)
        parent.send_signal(sig)
        parent.wait(timeout=30)
        deadline = time.time() + 15
        while any(map(_alive, workers)) and time.time() < deadline:
            time.sleep(0.2)
        assert not any(map(_alive, workers)), "workers outlived their parent"
    finally:
        parent.kill()
        for pid in _children(parent.pid):
            os.kill(pid, signal.SIGKILL)
