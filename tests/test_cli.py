"""The command line: list, settings, run (metrics.json), resume, and one-line errors."""
import json
import os
import subprocess
import sys

import pytest

from collapse_utils.experiments import experiments, resolve_settings, run_experiment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "collapse_utils", *args], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, **(env or {})}, timeout=300)


def test_list_names_every_registered_experiment():
    out = cli("list")
    assert out.returncode == 0
    names = [line.split()[0] for line in out.stdout.splitlines()]
    assert names == sorted(experiments()) and "gaussian-intro" in names


def test_settings_prints_the_profile_row_as_json():
    out = cli("settings", "gaussian-intro", "--profile", "paper")
    assert out.returncode == 0
    assert json.loads(out.stdout) == resolve_settings("gaussian-intro", "paper")
    smoke = json.loads(cli("settings", "gaussian-intro", "--profile", "smoke").stdout)
    assert smoke["generations"] < json.loads(out.stdout)["generations"]


def test_run_writes_metrics_json(tmp_path):
    out = cli("run", "gaussian-intro", "--profile", "smoke", "--seed", "3", "--out", str(tmp_path),
              "--generations", "12", "--chains=20", "--quiet")
    assert out.returncode == 0, out.stderr
    rec = json.loads((tmp_path / "metrics.json").read_text())
    assert {"experiment", "profile", "seed", "settings", "stand_in", "generations", "metrics"} <= set(rec)
    assert rec["experiment"] == "gaussian-intro" and rec["profile"] == "smoke" and rec["seed"] == 3
    assert rec["settings"]["generations"] == 12 and rec["settings"]["chains"] == 20
    assert rec["stand_in"] is None
    assert rec["generations"] == list(range(13))
    for name, values in rec["metrics"].items():
        assert len(values) == 13, name
    assert len(rec["metrics"]["sigma_replace"][0]) == 20


def test_run_resume_gives_the_same_metrics(tmp_path):
    a = run_experiment("gaussian-intro", profile="smoke", seed=5, out=tmp_path / "a",
                       overrides={"generations": 15}, progress=False)
    b = run_experiment("gaussian-intro", profile="smoke", seed=5, out=tmp_path / "b",
                       overrides={"generations": 15}, resume=True, progress=False)
    assert a["metrics"] == b["metrics"]


@pytest.mark.parametrize("args,needle", [
    (["run", "nope"], "experiment must be one of"),
    (["settings", "gaussian-intro", "--profile", "huge"], "argument --profile: invalid choice"),
    (["run", "gaussian-intro", "--M", "lots"], "M must be an integer"),
    (["run", "gaussian-intro", "--colour", "red"], "unknown setting 'colour'"),
    (["run", "gaussian-intro", "--seed", "-2"], "argument --seed"),
    (["run", "gaussian-intro", "--regimes", '["recycle"]'], "regime must be one of"),
    (["run", "gaussian-intro", "--M", "1"], "M must be at least 2"),
    (["frobnicate"], "invalid choice"),
    ([], "required"),
])
def test_bad_arguments_exit_nonzero_with_one_line(args, needle):
    out = cli(*args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_unknown_profile_in_environment_is_one_line():
    out = cli("run", "gaussian-intro", env={"COLLAPSE_PROFILE": "tiny"})
    assert out.returncode == 2
    assert out.stderr.strip() == ("collapse_utils: error: COLLAPSE_PROFILE must be one of "
                                  "smoke, default, paper; got 'tiny'")
