"""The table across families (collapse_utils.compare) at the smoke profile.

One test builds the whole smoke table (every family under every regime, through the run
cache): one test, so that pytest-xdist's workers, each with its own cache, do not build it
once each.  The others change one cheap experiment's schema and look at its row alone.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from collapse_utils import compare, experiments

LINREG = next(f for f in compare.FAMILIES if f.experiment == "linear-regression")


def test_the_smoke_table():
    table = compare.across_families("smoke")
    comp = compare.as_comparison(table)
    # one row per family, one column per regime
    assert list(table.index) == [f.label for f in compare.FAMILIES]
    assert list(table.columns) == list(compare.REGIMES)
    assert table.attrs["profile"] == "smoke"
    assert all(list(r.cells) == list(compare.REGIMES) for r in comp.rows)
    # replace normalises to 1 where defined; the four cheap families collapse at smoke
    defined = [r.label for r in comp.rows if r.cells["replace"].available]
    assert all(table.loc[label, "replace"] == pytest.approx(1.0) for label in defined)
    assert {"Gaussian", "discrete", "GMM", "linear regression"} <= set(defined)
    # the n/a cells are the regimes the schemas lack
    for r in comp.rows:
        if r.reason is not None and "not available" in r.reason:
            continue   # a family without its dependencies: the whole row says why
        choices = experiments.get_experiment(r.family.experiment).settings["regime"].choices
        for regime, cell in r.cells.items():
            assert (cell.kind == "missing") == (regime not in choices), (r.label, regime)
            if cell.kind == "missing":
                assert math.isnan(table.loc[r.label, regime]) and regime in cell.reason
    # a property that could fail: accumulating keeps most of replace's distance away
    # (Gaussian: the mean's steps shrink as 1/(k+1); least squares: a bounded error)
    for label in ("Gaussian", "linear regression"):
        assert table.loc[label, "accumulate"] < 0.5 * table.loc[label, "replace"], label
    # the text, the notebook table and the figure
    text = comp.text()
    assert "profile smoke" in text and "n/a" in text and "Gaussian" in text
    shown = compare.show_table(table)
    assert list(shown.index) == list(table.index) and "keep 10% real" in shown.columns
    fig = compare.plot_across(table)
    assert len(fig.axes[0].texts) == table.size
    assert any("profile: smoke" in t.get_text() for t in fig.texts)
    lm = comp.row("LM")
    if lm.pipeline_check:   # the smoke LM is the tiny random-init model: labelled as such
        assert "pipeline check" in (lm.short or "")
        line = next(ln for ln in text.splitlines() if ln.startswith("LM "))
        assert "cannot show collapse" in line   # not drawn as a full row
        ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
        assert any(t.startswith("LM") and "cannot" in t for t in ticks)


def _linreg(**kw):
    return compare.compare("smoke", families=[LINREG], **kw).rows[0]


def _patched(monkeypatch, name: str, **changes):
    """Replace experiment ``name``'s regime setting by one with ``changes`` (schema only)."""
    exp = experiments.get_experiment(name)
    setting = dataclasses.replace(exp.settings["regime"], **changes)
    monkeypatch.setitem(experiments._REGISTRY, name,
                        dataclasses.replace(exp, settings={**exp.settings, "regime": setting}))


def test_na_follows_the_schema_when_it_changes(monkeypatch):
    """Drop verify and accumulate-subsample from linear regression's schema: those cells turn
    n/a, the others keep their values (read back from the cache)."""
    before = _linreg()
    _patched(monkeypatch, "linear-regression", choices=("replace", "accumulate", "keep-real"),
             values=["replace"])
    missing_before = {g for g, c in before.cells.items() if c.kind == "missing"}
    assert "verify" not in missing_before and "accumulate-subsample" not in missing_before
    row = _linreg()
    missing = {g for g, c in row.cells.items() if c.kind == "missing"}
    assert missing == missing_before | {"accumulate-subsample", "verify"}   # (selection: never run)
    assert "its regimes: replace, accumulate, keep-real" in row.cells["verify"].reason
    for g in ("replace", "accumulate", "keep-real"):
        assert row.cells[g].value == pytest.approx(before.cells[g].value)


def test_a_single_regime_setting_runs_one_record_per_regime(monkeypatch):
    """Where the regime is a single setting rather than a sweep axis (as in ``gmm``), each regime
    is its own run(...) call; the runs are the same as the sweep's, so the values agree."""
    before = _linreg()
    _patched(monkeypatch, "linear-regression", sweep=False, values="replace")
    row = _linreg()
    assert np.allclose([row.cells[g].value for g in compare.REGIMES],
                       [before.cells[g].value for g in compare.REGIMES], equal_nan=True)


def test_refused_settings_and_missing_families_are_na():
    gauss = next(f for f in compare.FAMILIES if f.experiment == "gaussian")
    stats = dataclasses.replace(gauss, fixed={**gauss.fixed, "method": "stats"})
    row = compare.compare("smoke", ("replace", "accumulate-subsample"), [stats]).rows[0]
    assert row.cells["accumulate-subsample"].kind == "refused" and row.cells["replace"].value == 1
    ghost = compare.Family("ghost", "no-such-experiment", "distance", "a distance")
    row = compare.compare("smoke", ("replace",), [ghost]).rows[0]
    assert row.cells["replace"].kind == "unloaded" and "no-such-experiment" in row.reason


def test_normalisation_signs():
    """A falling metric (direction -1) gains distance as it falls; a regime that ends where
    generation 0 began scores 0, one that falls twice as far as replace scores 2."""
    fam = compare.Family("f", "e", "m", "a diversity", direction=-1)
    cells = {g: compare.Cell(g, start=1.0, end=e, gained=-(e - 1.0))
             for g, e in (("replace", 0.5), ("accumulate", 1.0), ("keep-real", 0.0))}
    row = compare.Row(fam, cells, "smoke", generations=3)
    compare._normalise(row)
    assert [c.value for c in cells.values()] == [1.0, 0.0, 2.0]
    flat = {"replace": compare.Cell("replace", start=1.0, end=1.0, gained=0.0)}
    row = compare.Row(fam, flat, "smoke", generations=3)
    compare._normalise(row)
    assert flat["replace"].kind == "undefined" and math.isnan(flat["replace"].value)
