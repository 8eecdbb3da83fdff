"""The shared core: profiles, regimes, schedules, the generational loop, cache and resume."""
import numpy as np
import pytest

from collapse_utils import profiles
from collapse_utils.loop import finished_generations, run_generations
from collapse_utils.regimes import (
    Accumulate, AccumulateSubsample, Mix, Replace, Schedule, keep_real, make_regime, split_counts,
)

REAL = np.arange(100, 110, dtype=float)[:, None]  # 10 real samples, recognisable by value >= 100


class Counter:
    """A 'model' whose samples are labelled by the generation that drew them."""

    def __init__(self):
        self.calls = []

    def draw(self, label):
        def draw(k):
            self.calls.append(k)
            return np.full((k, 1), -float(label))
        return draw


# ----------------------------------------------------------------------------- profiles
def test_profiles_and_errors(monkeypatch):
    assert profiles.current_profile("paper") == "paper"
    monkeypatch.setenv("COLLAPSE_PROFILE", "smoke")
    assert profiles.current_profile() == "smoke"
    monkeypatch.setenv("COLLAPSE_PROFILE", "huge")
    with pytest.raises(ValueError, match="COLLAPSE_PROFILE must be one of smoke, default, paper"):
        profiles.current_profile()
    with pytest.raises(ValueError, match="profile must be one of"):
        profiles.current_profile("fast")


# ----------------------------------------------------------------------------- regimes
def test_replace_uses_only_fresh_samples():
    c = Counter()
    train, new = Replace().next_data(c.draw(1), 7, previous=REAL, real=REAL, pool=[REAL],
                                     rng=np.random.default_rng(0))
    assert train.shape == (7, 1) and np.all(train == -1) and new is train
    assert c.calls == [7]


def test_accumulate_keeps_everything():
    c, rng = Counter(), np.random.default_rng(0)
    pool = [REAL, np.full((10, 1), -1.0)]
    train, new = Accumulate().next_data(c.draw(2), 10, previous=None, real=REAL, pool=pool, rng=rng)
    assert train.shape == (30, 1)
    assert np.array_equal(train[:10], REAL) and np.all(train[10:20] == -1) and np.all(train[20:] == -2)
    assert np.all(new == -2)


def test_accumulate_subsample_draws_budget_from_pool_without_replacement():
    c, rng = Counter(), np.random.default_rng(0)
    pool = [REAL, np.full((10, 1), -1.0)]
    train, new = AccumulateSubsample(12).next_data(c.draw(2), 10, previous=None, real=REAL,
                                                   pool=pool, rng=rng)
    assert train.shape == (12, 1) and new.shape == (10, 1)
    # every element comes from the pool of 30, none twice (real values are distinct)
    real_part = train[train[:, 0] >= 100, 0]
    assert len(set(real_part)) == len(real_part)
    assert set(np.unique(train)) <= set(REAL[:, 0]) | {-1.0, -2.0}
    # default budget is M_{i+1}
    train, _ = AccumulateSubsample().next_data(c.draw(2), 10, previous=None, real=REAL, pool=pool, rng=rng)
    assert train.shape == (10, 1)
    # over many draws each pool element is equally likely
    hits = np.zeros(3)
    for s in range(300):
        t, _ = AccumulateSubsample(9).next_data(c.draw(2), 10, previous=None, real=REAL, pool=pool,
                                                rng=np.random.default_rng(s))
        hits += [(t >= 100).sum(), (t == -1).sum(), (t == -2).sum()]
    assert np.allclose(hits / hits.sum(), 1 / 3, atol=0.03)


@pytest.mark.parametrize("alpha,beta,gamma,m", [(0.9, 0, 0.1, 10), (0.5, 0.3, 0.2, 20), (0.34, 0.33, 0.33, 7)])
def test_mix_counts_and_sources(alpha, beta, gamma, m):
    c = Counter()
    previous = np.full((10, 1), 50.0)
    train, new = Mix(alpha, beta, gamma).next_data(c.draw(3), m, previous=previous, real=REAL,
                                                   pool=[REAL], rng=np.random.default_rng(1))
    a, b, g = split_counts(m, [alpha, beta, gamma])
    assert a + b + g == m == len(train)
    assert (train == -3).sum() == a and (train == 50).sum() == b and (train >= 100).sum() == g
    assert c.calls == [a]
    # real samples are drawn without replacement when there are enough
    assert len(np.unique(train[train >= 100])) == g


def test_keep_real_is_mix_and_validation():
    assert keep_real(0.1) == Mix(0.9, 0.0, 0.1)
    assert split_counts(1000, [0.9, 0, 0.1]) == [900, 0, 100]
    with pytest.raises(ValueError, match="alpha \\+ beta \\+ gamma must equal 1"):
        Mix(0.5, 0.2, 0.2)
    with pytest.raises(ValueError, match="gamma must lie in"):
        Mix(0.6, 0.6, -0.2)
    with pytest.raises(ValueError, match="fraction must lie in"):
        keep_real(1.5)
    with pytest.raises(ValueError, match="regime must be one of replace, accumulate"):
        make_regime("recycle")
    with pytest.raises(ValueError, match="budget"):
        AccumulateSubsample(0)


def test_schedules():
    assert [Schedule("constant", 10)(i) for i in (1, 5)] == [10, 10]
    assert [Schedule("linear", 10)(i) for i in (1, 5)] == [20, 60]
    assert [Schedule("superlinear", 10, 2.0)(i) for i in (1, 5)] == [40, 360]
    with pytest.raises(ValueError, match="schedule must be one of constant, linear, superlinear"):
        Schedule("cubic", 10)
    with pytest.raises(ValueError, match="power must be > 1"):
        Schedule("superlinear", 10, 1.0)
    with pytest.raises(ValueError, match="M must be a positive integer"):
        Schedule("constant", 0)
    from collapse_utils.regimes import as_schedule
    assert as_schedule(None, 50)(3) == 50 and as_schedule("linear", 50)(1) == 100
    assert as_schedule(7)(9) == 7
    with pytest.raises(ValueError, match="schedule must be an int, a callable"):
        as_schedule(2.5, 50, name="schedule")


# ----------------------------------------------------------------------------- the loop
def fit(data, rng):
    return float(np.mean(data)), float(np.std(data, ddof=1))


def sample(model, m, rng):
    return model[0] + model[1] * rng.standard_normal((m, 1))


def measure(g):
    return {"mean": g.model[0], "std": g.model[1], "n": len(g.train),
            "first_mean": g.first_model[0]}


def real(seed=0):
    return np.random.default_rng(seed).standard_normal((50, 1))


@pytest.mark.parametrize("regime", [Replace(), Accumulate(), AccumulateSubsample(40), Mix(0.5, 0.3, 0.2)])
def test_loop_is_reproducible_and_seed_dependent(regime):
    a = run_generations(fit, sample, real(), 8, regime=regime, seed=3, measure=measure, progress=False)
    b = run_generations(fit, sample, real(), 8, regime=regime, seed=3, measure=measure, progress=False)
    c = run_generations(fit, sample, real(), 8, regime=regime, seed=4, measure=measure, progress=False)
    assert a.generations == list(range(9))
    assert a.metrics == b.metrics
    assert a.metrics["std"] != c.metrics["std"]
    assert a.metrics["std"][0] == c.metrics["std"][0]  # generation 0 fits the same real data
    assert set(a.metrics["first_mean"]) == {a.metrics["mean"][0]}


def test_loop_sizes_follow_schedule():
    r = run_generations(fit, sample, real(), 4, sizes=Schedule("linear", 50), measure=measure, progress=False)
    assert r.metrics["n"] == [50, 100, 150, 200, 250]
    r = run_generations(fit, sample, real(), 3, regime=Accumulate(), sizes=20, measure=measure, progress=False)
    assert r.metrics["n"] == [50, 70, 90, 110]


@pytest.mark.parametrize("regime", [Replace(), Accumulate(), AccumulateSubsample(30), Mix(0.4, 0.4, 0.2)])
def test_interrupt_and_resume_equals_uninterrupted(tmp_path, regime):
    full = run_generations(fit, sample, real(), 10, regime=regime, seed=7, measure=measure, progress=False)
    part = run_generations(fit, sample, real(), 10, regime=regime, seed=7, measure=measure,
                           run_dir=tmp_path, stop_after=4, progress=False)
    assert part.generations == [0, 1, 2, 3, 4]
    assert finished_generations(tmp_path) == [0, 1, 2, 3, 4]
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporary files
    resumed = run_generations(fit, sample, real(), 10, regime=regime, seed=7, measure=measure,
                              run_dir=tmp_path, resume=True, progress=False)
    assert resumed.resumed_from == 4
    assert resumed.metrics == full.metrics
    # resuming a finished run recomputes nothing and returns the same
    again = run_generations(lambda d, r: 1 / 0, sample, real(), 10, regime=regime, seed=7,
                            measure=measure, run_dir=tmp_path, resume=True, progress=False)
    assert again.metrics == full.metrics


def test_without_resume_a_run_starts_afresh(tmp_path):
    run_generations(fit, sample, real(), 3, seed=1, run_dir=tmp_path, progress=False, measure=measure)
    r = run_generations(fit, sample, real(), 2, seed=2, run_dir=tmp_path, progress=False, measure=measure)
    assert finished_generations(tmp_path) == [0, 1, 2]
    assert r.resumed_from is None


def test_resume_with_external_model_store(tmp_path):
    saved = []

    def save(model, path):
        saved.append(path.name)
        path.write_text(repr(model))

    def load(path):
        return tuple(float(x) for x in path.read_text().strip("()").split(","))

    full = run_generations(fit, sample, real(), 6, seed=2, measure=measure, progress=False)
    run_generations(fit, sample, real(), 6, seed=2, measure=measure, run_dir=tmp_path,
                    save_model=save, load_model=load, stop_after=2, progress=False)
    resumed = run_generations(fit, sample, real(), 6, seed=2, measure=measure, run_dir=tmp_path,
                              save_model=save, load_model=load, resume=True, progress=False)
    assert saved[:3] == ["model_0000", "model_0001", "model_0002"]
    assert resumed.metrics == full.metrics


def test_vectorised_chains_along_an_axis_and_kept_models():
    data = np.random.default_rng(0).standard_normal((5, 40))  # 5 chains x 40 samples

    def fit_c(d, rng):
        return d.mean(axis=1), d.std(axis=1, ddof=1)

    def sample_c(model, m, rng):
        return model[0][:, None] + model[1][:, None] * rng.standard_normal((5, m))

    r = run_generations(fit_c, sample_c, data, 5, regime=keep_real(0.25), axis=1,
                        keep_models=[0, 5], measure=lambda g: {"shape": list(np.shape(g.train))},
                        progress=False)
    assert r.metrics["shape"] == [[5, 40]] * 6
    assert sorted(r.models) == [0, 5] and r.models[5][0].shape == (5,)


def test_loop_validation():
    with pytest.raises(ValueError, match="generations must be a non-negative integer"):
        run_generations(fit, sample, real(), -1, progress=False)
    with pytest.raises(ValueError, match="sizes must be an int, a callable"):
        run_generations(fit, sample, real(), 2, sizes="many", progress=False)


def test_save_model_gets_an_existing_run_dir_and_fresh_runs_clear_old_models(tmp_path):
    run_dir = tmp_path / "deep" / "run"

    def save(model, path):
        path.write_text(repr(model))  # fails unless the loop created run_dir first

    run_generations(fit, sample, real(), 3, run_dir=run_dir, save_model=save,
                    load_model=lambda p: None, progress=False)
    assert sorted(p.name for p in run_dir.glob("model_*")) == [f"model_{i:04d}" for i in range(4)]
    run_generations(fit, sample, real(), 1, run_dir=run_dir, save_model=save,
                    load_model=lambda p: None, progress=False)
    assert sorted(p.name for p in run_dir.glob("model_*")) == ["model_0000", "model_0001"]


def test_pool_samples_are_stored_only_for_pooling_regimes(tmp_path):
    import pickle

    for regime, stored in ((Replace(), False), (Accumulate(), True)):
        d = tmp_path / regime.name
        run_generations(fit, sample, real(), 2, regime=regime, run_dir=d, progress=False)
        state = pickle.loads((d / "gen_0002.pkl").read_bytes())
        assert (state["new"] is not None) == stored


def test_progress_bar_modes(monkeypatch):
    from collapse_utils.loop import progress_bar

    monkeypatch.setenv("COLLAPSE_PROGRESS", "off")
    assert progress_bar(total=3).disable
    monkeypatch.setenv("COLLAPSE_PROGRESS", "text")
    bar = progress_bar(total=3)
    assert not bar.disable and type(bar).__module__.startswith("tqdm.std")
    bar.close()
    monkeypatch.setenv("COLLAPSE_PROGRESS", "fancy")
    with pytest.raises(ValueError, match="COLLAPSE_PROGRESS must be one of auto, text, off"):
        progress_bar(total=3)


def test_regimes_accept_data_types_of_their_own():
    """take/concat hand objects with take_samples/concat_samples to those methods."""
    from collapse_utils.regimes import concat, take

    class Lazy:
        def __init__(self, n):
            self.shape = (n, 1)

        def take_samples(self, index, axis=0):
            return Lazy(len(index))

        @classmethod
        def concat_samples(cls, parts, axis=0):
            return ("joined", [p.shape[0] for p in parts])

    assert take(Lazy(10), [1, 2, 3]).shape == (3, 1)
    assert concat([np.zeros((2, 1)), Lazy(5)]) == ("joined", [2, 5])
    train, new = Mix(0.5, 0.0, 0.5).next_data(lambda k: Lazy(k), 10, previous=REAL, real=REAL,
                                             pool=[REAL], rng=np.random.default_rng(0))
    assert train == ("joined", [5, 5]) and new.shape == (5, 1)


def test_hub_offline_decision_is_immediate(monkeypatch):
    import time

    from collapse_utils import hub

    for var in hub.OFFLINE_VARS:
        monkeypatch.delenv(var, raising=False)
    assert hub.offline_reason() is None
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert hub.offline_reason() == "HF_DATASETS_OFFLINE=1"
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:1")  # nothing listens there
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    t0 = time.perf_counter()
    assert hub.hub_reachable(timeout=2.0) is False
    assert time.perf_counter() - t0 < 2.5
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    assert hub.hub_reachable() is True


def test_take_per_chain_is_take_along_axis():
    """The gather behind every vectorised keep-real and accumulate-subsample draw."""
    from collapse_utils.regimes import take_per_chain

    rng = np.random.default_rng(3)
    for shape, axis in [((7, 50, 3), 1), ((4, 5, 30), 2), ((6, 40), 1), ((3, 4, 20, 2), 2)]:
        data = rng.random(shape)
        index = rng.integers(shape[axis], size=shape[:axis] + (9,))
        along = np.take_along_axis(data, index.reshape(index.shape + (1,) * (data.ndim - axis - 1)),
                                   axis=axis)
        assert np.array_equal(take_per_chain(data, index, axis), along), shape


def test_glue_all_glues_a_report_under_its_prefix_and_shows_nothing(monkeypatch):
    from collapse_utils import notebook

    seen = {}
    monkeypatch.setattr(notebook, "glue", lambda name, value: seen.setdefault(name, value))
    assert notebook.glue_all("sel", {"ratio": 0.5, "n": 3}) is None   # no bare number on the page
    assert seen == {"sel_ratio": 0.5, "sel_n": 3}
    seen.clear()
    assert notebook.glue_all("", {"ratio": 0.5, "n": 3}, keys=("n",)) is None
    assert seen == {"n": 3}
