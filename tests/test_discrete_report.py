"""The discrete chapter's numbers (collapse_utils.discrete.report) and the formula checks its
prose rests on that need no run (moved here from the chapter's hidden cells, issue #25 §1).

The chapter: Zipf(20, 1.5) with M = 100, keep-real with f = 0.1; exercises at M = 200, q = 0.002.
"""
import math

import numpy as np
import pytest

from collapse_utils.discrete import report
from collapse_utils.discrete import theory as th
from collapse_utils.experiments import run_experiment
from report_keys import check_report

P0, M = th.zipf(20, 1.5), 100
G0 = 1 - np.sum(P0**2)
REGIMES = ["replace", "keep-real", "accumulate"]


@pytest.fixture(scope="module")
def records():
    """Small records of the chapter's five runs (the smoke profile, fewer chains and generations)."""
    def run(name, **over):
        return run_experiment(name, profile="smoke", overrides=over, progress=False)

    return {
        "rec": run("discrete", generations=60, chains=100),
        "regs": run("discrete", regime=REGIMES, generations=120, chains=100),
        "fix": run("discrete-fixation", chains=500, generations=50),
        "times": run("discrete-absorption", M=[10, 20], chains=300),
        "kt": run("discrete-absorption", K=4, zipf_exponent=1.5, M=[10], chains=300),
    }


@pytest.fixture(scope="module")
def numbers(records):
    r = records
    return {
        report.tails_first: report.tails_first(r["rec"]),
        report.support: report.support(r["rec"]),
        report.fixation: report.fixation(r["fix"]),
        report.absorption: report.absorption(r["times"], r["kt"]),
        report.regimes: report.regimes(r["regs"]),
        report.exercises: report.exercises(r["rec"], r["regs"]),
    }


def test_every_key_is_one_docstring_line_and_a_plain_number(numbers):
    check_report(numbers, kinds=(int, float, bool), prefix="dc_")


def test_report_numbers_hold_on_small_runs(numbers):
    n = {k: v for d in numbers.values() for k, v in d.items()}
    assert n["gens"] == 60 and n["chains"] == 100 and n["n_tail"] == 8 and n["fix_K"] == 5
    assert n["head"] == P0[0] and n["rare"] == P0[-1] and n["head_won"] + n["head_lost"] == 1
    for key in ("survival_z", "support_z", "gini_simpson_z", "fix_z", "t_z", "rep_div_z",
                "keep_div_z", "acc_div_z", "keep_stationary_z", "acc_support_z", "p_mean_z"):
        assert 0 <= n[key] <= 5, key   # simulated means on the exact theory
    assert n["acc_support_range"] == 0 and n["keep_absorbed"] == 0
    assert n["acc_support_exact"] == n["support_d0"] and n["k_chains"] == 300


# ----------------------------------------------------------------------------- formula checks
def test_tails_go_first_numbers():
    assert math.isclose(th.one_step_survival(1 / M, M), th.survival_probability(1 / M, M, 10)[1],
                        rel_tol=1e-12)
    assert round(th.one_step_survival(1 / M, M), 3) == 0.634 and round(M * np.log(2)) == 69
    assert 9.15 < th.expected_support(P0, M, 5)[5] < 9.25


def test_absorption_time_numbers(numbers):
    """E[T]/M of two states at p = 1/2 rises from 1.26 (M = 10) to 1.38 (M = 400); the diffusion
    formula overestimates by ~10% and ~1.5% at M = 10 and 100, by 1.0-2.6 fits in absolute terms."""
    n = numbers[report.absorption]
    assert round(n["tm10"], 2) == 1.26 and round(n["tm400"], 2) == 1.38
    assert n["tm400"] - n["tm10"] > 0.1
    assert 9 < n["diff_err10"] < 11 and 1 < n["diff_err100"] < 2
    assert 1.0 < n["gap10"] < 1.5 and 2.0 < n["gap400"] < 2.6


def test_regime_fixed_points():
    """keep-real's fixed point 0.941 G(p0) (M = 100, f = 0.1) and accumulate's bound 0.984."""
    assert round(th.keep_real_stationary_gini_simpson(P0, M, 0.1) / G0, 3) == 0.941
    assert round(1 - np.pi**2 / 600, 3) == 0.984
    assert math.isclose(th.keep_real_stationary_gini_simpson(P0, 100, 0.1),
                        G0 * 0.99 * 10 * (190 - 90 / 99) / 1990, rel_tol=1e-12)


def test_exercise_solutions():
    # 1: a state of q = 0.002 is in D_0 with probability 0.181
    assert round(1 - 0.998**100, 3) == 0.181
    # 2: two states at p = 0.1, M = 200: diffusion 130.0 fits, 1-3 fits above the exact mean,
    # a larger relative error than at p = 1/2
    exact = th.mean_absorption_time_exact(0.1, 200)
    assert round(th.mean_absorption_time_diffusion(0.1, 200), 1) == 130.0
    assert 1.0 < th.mean_absorption_time_diffusion(0.1, 200) - exact < 3.0

    def ratio(p, m):
        return th.mean_absorption_time_diffusion(p, m) / th.mean_absorption_time_exact(p, m)

    assert ratio(0.1, 200) > ratio(0.5, 200)
    # 3: one real sample a generation keeps 0.99 * 198 / 298 = 0.658 of G(p0)
    assert (round(th.keep_real_stationary_gini_simpson(P0, 100, 0.01) / G0, 3)
            == round(0.99 * 198 / 298, 3) == 0.658)
