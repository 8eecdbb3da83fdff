"""The core's experiment machinery, tested once: settings schema, sweep, record, cache, resume,
parallel runs and the command line -- on a toy experiment, then over every registered one."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from collapse_utils import experiments as ex
from collapse_utils.experiments import Experiment, RunOutput, register, run_experiment
from collapse_utils.loop import rng_for, run_generations
from collapse_utils.record import Record
from collapse_utils.regimes import REGIMES, make_regime
from collapse_utils.settings import Setting, describe, resolve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CALLS = []


# ----------------------------------------------------------------------------- a toy experiment
def _toy_run(settings, *, seed, run_dir, resume, progress, stop_after=None):
    """1-D Gaussian chains refitted by mean and std: enough to exercise every core path."""
    CALLS.append((settings["regime"], seed))
    real = rng_for(seed, "real").standard_normal((settings["chains"], settings["M"]))
    result = run_generations(
        lambda x, rng: (x.mean(axis=1, keepdims=True), x.std(axis=1, ddof=1, keepdims=True)),
        lambda m, k, rng: m[0] + m[1] * rng.standard_normal((m[0].shape[0], k)),
        real, settings["generations"], regime=make_regime(settings["regime"]), seed=seed,
        measure=lambda g: {"sigma": float(g.model[1].mean()), "per_chain": g.model[1][:, 0]},
        axis=1, run_dir=run_dir, resume=resume, progress=False, stop_after=stop_after)
    return RunOutput(result.generations, result.metrics, None, {"M": settings["M"]})


TOY = {
    "M": Setting((20, 50, 100), low=2, help="samples per generation"),
    "chains": Setting(8, low=1),
    "generations": Setting((5, 10, 20), low=0),
    "regime": Setting(["replace", "accumulate"], choices=REGIMES, sweep=True),
    "seeds": Setting(2, low=1),
    "label": Setting("x", choices=("x", "y")),
}


def _toy_check(s):
    if s["M"] < s["chains"] and s["label"] == "y":
        raise ValueError("M must be at least chains when label is y")


register(Experiment("toy", "a toy for the core tests", TOY, _toy_run, check=_toy_check))
register(Experiment("toy-parallel", "the toy in two processes", TOY, _toy_run, parallel=True))


@pytest.fixture(autouse=True)
def _fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSE_CACHE", str(tmp_path / "cache"))
    CALLS.clear()


# ----------------------------------------------------------------------------- settings schema
def test_schema_resolves_per_profile_and_converts_strings():
    s = resolve(TOY, "default", {"M": "64", "regime": "replace,accumulate", "seeds": 3.0})
    assert s == {"M": 64, "chains": 8, "generations": 10, "regime": ["replace", "accumulate"],
                 "seeds": 3, "label": "x"}
    assert resolve(TOY, "paper")["M"] == 100
    assert resolve(TOY, "smoke", {"regime": "keep-real"})["regime"] == ["keep-real"]
    assert resolve(TOY, "smoke", {"regime": '["accumulate"]'})["regime"] == ["accumulate"]
    assert describe(TOY, "smoke")["M"] == {"value": 20, "allowed": "an integer >= 2",
                                          "help": "samples per generation"}


@pytest.mark.parametrize("overrides,needle", [
    ({"M": 1}, "M must be an integer >= 2; got 1"),
    ({"M": "lots"}, "M must be an integer >= 2; got 'lots'"),
    ({"M": 2.5}, "M must be an integer"),
    ({"M": True}, "M must be an integer"),
    ({"regime": "recycle"}, "regime must be a list of values, each one of replace"),
    ({"regime": []}, "regime must be a list of values"),
    ({"label": "z"}, "label must be one of x, y; got 'z'"),
    ({"colour": "red"}, "unknown setting 'colour' for experiment; settings are M, chains"),
])
def test_schema_rejects_bad_values_in_one_line(overrides, needle):
    with pytest.raises(ValueError) as err:
        resolve(TOY, "smoke", overrides)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_experiment_check_and_declared_values_are_checked():
    with pytest.raises(ValueError, match="M must be at least chains when label is y"):
        ex.resolve_settings("toy", "smoke", {"M": 4, "label": "y"})
    with pytest.raises(ValueError, match="the smoke value of M must be an integer >= 2; got 1"):
        register(Experiment("bad", "", {**TOY, "M": Setting((1, 2, 2), low=2)}, _toy_run))
    with pytest.raises(ValueError, match="declares an integer 'generations'"):
        register(Experiment("bad", "", {"M": Setting(3)}, _toy_run))


# ----------------------------------------------------------------------------- sweep and record
def test_sweep_runs_every_combination_and_record_reads_them():
    rec = run_experiment("toy", profile="smoke", seed=4, progress=False)
    assert sorted(CALLS) == sorted([(r, s) for r in ("replace", "accumulate") for s in (4, 5)])
    assert rec.axes == {"regime": ["replace", "accumulate"], "seed": [4, 5]}
    assert rec.data["format"] == 2 and rec.profile == "smoke" and rec.stand_in is None
    assert list(rec.generations) == list(range(6))
    assert rec.facts == {"M": 20} and rec.fact("M") == 20
    assert rec.metric("sigma").shape == (4, 6)
    assert rec.metric("sigma", regime="replace").shape == (2, 6)
    assert rec.metric("per_chain", regime="accumulate", seed=5).shape == (1, 6, 8)
    assert rec.run_dir(regime="replace", seed=4).is_dir()
    again = Record.load(rec.path)
    assert again.metric("sigma", regime="replace").tolist() == rec.metric("sigma", regime="replace").tolist()
    # one seed differs from the other, generation 0 of both regimes fits the same real data
    a, b = rec.metric("sigma", regime="replace")
    assert a[0] != b[0] and a[1] != b[1]
    assert rec.metric("sigma", seed=4)[0, 0] == rec.metric("sigma", seed=4)[1, 0]
    with pytest.raises(ValueError, match="selection keys must be axes"):
        rec.metric("sigma", variant="x")
    with pytest.raises(ValueError, match="metric must be one of per_chain, sigma"):
        rec.metric("nope")
    with pytest.raises(ValueError, match="2 runs match"):
        rec.run_dir(regime="replace")


def test_finished_runs_are_read_back_and_new_settings_rerun():
    first = run_experiment("toy", profile="smoke", progress=False)
    n = len(CALLS)
    again = run_experiment("toy", profile="smoke", progress=False)
    assert len(CALLS) == n  # read from the cache
    assert again.data["runs"] == first.data["runs"]
    run_experiment("toy", profile="smoke", overrides={"regime": "replace"}, progress=False)
    assert len(CALLS) == n  # the same runs, a smaller sweep
    run_experiment("toy", profile="smoke", overrides={"M": 30}, progress=False)
    assert len(CALLS) == n + 4
    run_experiment("toy", profile="smoke", resume=False, progress=False)
    assert len(CALLS) == n + 8  # resume=False recomputes


def test_interrupted_sweep_resumes_to_the_uninterrupted_result(tmp_path):
    full = run_experiment("toy", profile="smoke", resume=False, progress=False)
    part = run_experiment("toy", profile="smoke", resume=False, stop_after=2, progress=False)
    assert all(r["generations"] == [0, 1, 2] for r in part.data["runs"])
    resumed = run_experiment("toy", profile="smoke", resume=True, progress=False)
    assert resumed.data["runs"] == full.data["runs"]


def test_parallel_processes_give_the_same_record(monkeypatch):
    one = run_experiment("toy", profile="smoke", progress=False)
    monkeypatch.setenv("COLLAPSE_WORKERS", "2")
    two = run_experiment("toy-parallel", profile="smoke", progress=False)
    assert [r["metrics"] for r in two.data["runs"]] == [r["metrics"] for r in one.data["runs"]]
    monkeypatch.setenv("COLLAPSE_WORKERS", "0")
    with pytest.raises(ValueError, match="COLLAPSE_WORKERS must be a positive integer"):
        run_experiment("toy-parallel", profile="smoke", resume=False, progress=False)


def test_chains_of_keep_real_draw_their_real_samples_independently():
    from collapse_utils.regimes import AccumulateSubsample, keep_real

    real = np.arange(2000 * 50, dtype=float).reshape(2000, 50)
    rng = np.random.default_rng(0)
    train, _ = keep_real(0.2).next_data(lambda k: np.zeros((2000, k)), 50, previous=real,
                                        real=real, pool=[real], rng=rng, axis=1)
    picked = train[:, 40:] % 50  # each chain's 10 real indices
    assert len({tuple(np.sort(row)) for row in picked}) > 1900
    assert all(len(set(row)) == 10 for row in picked[:50])  # without replacement
    assert np.all(train[:, 40:] // 50 == np.arange(2000)[:, None])  # each chain its own data
    sub, _ = AccumulateSubsample(30).next_data(lambda k: -np.ones((2000, k)), 50, previous=real,
                                               real=real, pool=[real], rng=rng, axis=1)
    assert sub.shape == (2000, 30)
    assert len({tuple(row) for row in sub}) > 1900


# ----------------------------------------------------------------------------- every experiment
def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "collapse_utils", *args], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, **(env or {})}, timeout=600)


REAL = sorted(n for n in ex.experiments() if not n.startswith("toy") and n != "bad")


def _tiny(name):
    """The smallest sweep of an experiment: smoke sizes, 2 generations, one run."""
    exp = ex.get_experiment(name)
    s = ex.resolve_settings(exp, "smoke")
    over = {"generations": min(2, s["generations"])}
    if "seeds" in s:
        over["seeds"] = 1
    for axis in exp.axes:
        if axis != "seed":
            over[axis] = s[axis][:1]
    return over


def test_every_family_loads():
    assert not ex.unavailable(), ex.unavailable()
    families = {ex.get_experiment(n).family.split(".")[-1] for n in REAL}
    assert families == set(ex.FAMILY_MODULES)


@pytest.mark.parametrize("name", REAL)
def test_every_experiment_resumes_to_the_uninterrupted_result(name):
    over = _tiny(name)
    full = run_experiment(name, profile="smoke", overrides=over, resume=False, progress=False)
    assert full.data["format"] == 2 and len(full.data["runs"]) == 1
    assert len(full.data["runs"][0]["generations"]) == over["generations"] + 1
    part = run_experiment(name, profile="smoke", overrides=over, resume=False, stop_after=1,
                          progress=False)
    assert part.data["runs"][0]["generations"] == [0, 1]
    resumed = run_experiment(name, profile="smoke", overrides=over, resume=True, progress=False)
    assert resumed.data["runs"][0]["metrics"] == full.data["runs"][0]["metrics"]


def test_cli_list_and_settings(capsys):
    out = cli("list")                                    # the command itself, in a new process
    assert out.returncode == 0, out.stderr
    assert [line.split()[0] for line in out.stdout.splitlines()] == REAL
    from collapse_utils.cli import main                  # the rest in this one (15 imports fewer)

    for name in REAL:
        assert main(["settings", name, "--profile", "paper"]) == 0
        assert json.loads(capsys.readouterr().out) == ex.resolve_settings(name, "paper")
    assert main(["settings", REAL[0], "--schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert set(schema["generations"]) == {"value", "allowed", "help"}


@pytest.mark.parametrize("name", REAL)
def test_cli_run_writes_metrics_json_and_rejects_bad_settings(name, tmp_path):
    over = _tiny(name)
    flags = [f"--{k}={json.dumps(v) if isinstance(v, list) else v}" for k, v in over.items()]
    out = cli("run", name, "--profile", "smoke", "--out", str(tmp_path), "--quiet", *flags)
    assert out.returncode == 0, out.stderr
    rec = Record.load(tmp_path)
    assert rec.experiment == name and rec.settings["generations"] == over["generations"]
    assert "wrote" in out.stdout and (rec.stand_in is None) == ("STAND-IN" not in out.stdout)
    for args, needle in [(["--generations", "-1"], "generations must be an integer >= 0"),
                         (["--no-such-setting", "1"], "unknown setting 'no_such_setting'")]:
        bad = cli("run", name, "--profile", "smoke", *args)
        lines = bad.stderr.strip().splitlines()
        assert bad.returncode == 2 and len(lines) == 1 and needle in lines[0], bad.stderr


@pytest.mark.parametrize("args,needle", [
    (["run", "nope"], "experiment must be one of"),
    (["settings", "gaussian-intro", "--profile", "huge"], "argument --profile: invalid choice"),
    (["run", "gaussian-intro", "--seed", "-2"], "argument --seed"),
    (["frobnicate"], "invalid choice"),
    (["book", "--jobs", "0"], "argument --jobs: must be a positive integer"),
    (["book", "--jobs", "two"], "argument --jobs: invalid int value"),
    ([], "required"),
])
def test_cli_bad_arguments_exit_2_with_one_line(args, needle):
    out = cli(*args)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and needle in lines[0], out.stderr
    assert out.stdout == ""


def test_unknown_profile_in_environment_is_one_line():
    out = cli("run", "gaussian-intro", env={"COLLAPSE_PROFILE": "tiny"})
    assert out.returncode == 2
    assert out.stderr.strip() == ("collapse_utils: error: COLLAPSE_PROFILE must be one of "
                                  "smoke, default, paper; got 'tiny'")


def test_figure_code_is_not_part_of_the_run_key(monkeypatch):
    """Editing a family's figures keeps its run cache; editing what computes results does not."""
    kept = ex.source_digest("collapse_utils.gmm")
    monkeypatch.setattr(ex, "NOT_IN_RESULTS", frozenset())
    assert ex.source_digest("collapse_utils.gmm") != kept  # figures.py, plotting.py now count
    assert ex.source_digest("collapse_utils.gmm") != ex.source_digest("collapse_utils.vae")


def test_every_figure_module_is_outside_the_run_key():
    """figures.py and every *_figures.py (selection, verification, tails) draw, never compute."""
    from pathlib import Path

    root = Path(ex.__file__).parent
    drawn = [p for p in root.rglob("*figures.py")]
    assert len(drawn) > 8 and not any(ex.in_results(p) for p in drawn)
    assert ex.in_results(root / "gaussian" / "selection.py")
