"""The numbers the chapter "Replace, accumulate, mix" (book/beyond) quotes:
collapse_utils.linreg.report and the two functions of collapse_utils.discrete.report it reads
(``beyond_*``), and the checks of its prose that need no run (moved here from the chapter's
hidden cells, issue #25 §1)."""
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

import collapse_utils as cu
from collapse_utils import PROFILES, claims
from collapse_utils.discrete import report as dc_report
from collapse_utils.experiments import resolve_settings
from collapse_utils.gaussian.theory import c_m
from collapse_utils.linreg import report, theory
from collapse_utils.notebook import within
from report_keys import check_report

CHAPTER = Path(__file__).resolve().parent.parent / "book" / "beyond.ipynb"
GAMMAS = [0.1, 0.3, 0.6]
RATES = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]


# ----------------------------------------------------------------------------- no run
def test_the_sizes_of_what_you_need_and_how_long_it_takes():
    sizes = [resolve_settings("linear-regression", p) for p in PROFILES]
    assert [(s["chains"], s["generations"]) for s in sizes] == [(200, 10), (1000, 50), (2000, 100)]
    # every profile: d = 10, T = 50, sigma = 1, and the verifier's tau = sigma
    assert all((s["d"], s["samples"], s["noise"]) == (10, 50, 1.0) for s in sizes)
    assert all(s["verify_tolerance"] == s["noise"] for s in sizes)


def test_the_accumulate_constants():
    d, T, sigma = 10, 50, 1.0
    v = theory.one_fit_error(d, T, sigma)
    limit = theory.accumulate_error(report.LIMIT_FITS, d, T, sigma)
    assert limit < theory.accumulate_fixed_design(report.LIMIT_FITS, d, T, sigma)
    assert theory.accumulate_fixed_design(report.LIMIT_FITS, d, T, sigma) < theory.accumulate_bound(
        d, T, sigma)
    assert theory.accumulate_bound(d, T, sigma) == pytest.approx(v * math.pi**2 / 6, rel=1e-15)
    assert abs(np.pi**2 / 6 - 1.645) < 5e-4   # exercise 1's 1.645 v


def test_exercise_2_the_correction_that_keeps_one_fits_error():
    gamma_star = 1 - 1 / np.sqrt(2)
    assert abs(gamma_star - 0.293) < 5e-4
    assert within(theory.self_correct_limit(gamma_star, 10, 50, 1.0),
                  theory.one_fit_error(10, 50, 1.0), rel=1e-9)


def test_exercise_3_the_share_a_large_data_set_affords():
    p = report.exercises()["ex3_p"]
    assert 0.04 < p < 0.045 and theory.one_fit_error(10, 20, 1.0) == 10 / 9
    assert theory.one_fit_error(10, 5000, 1.0) == 10 / 4989
    assert p == pytest.approx(math.sqrt((10 / 4989) / (10 / 9)), rel=1e-15)


def test_exercise_4_a_word_seen_five_times():
    n = dc_report.beyond_exercises()
    low, exact, up = n["ex4_low"], n["ex4_exact"], n["ex4_up"]
    assert low == 8 and low <= exact <= up
    assert abs(exact - 10 / np.log(2)) < 2 and abs(5 / np.log(2) - 7.2) < 0.05


def test_the_gaussian_std_collapses_after_about_m_fits():
    assert all(within(c_m(M), 1 - 1 / (4 * M), rel=0.5 / M**2) for M in (10, 100, 1000))


# ----------------------------------------------------------------------------- small runs
@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """The chapter's runs at the smoke profile (a few seconds), in a cache of their own."""
    mp = pytest.MonkeyPatch()
    mp.setenv("COLLAPSE_CACHE", str(tmp_path_factory.mktemp("cache")))

    def run(name, **over):
        return cu.run(name, profile="smoke", progress=False, **over)

    try:
        return {
            "rec": run("linear-regression"),
            "mix": run("linear-regression-mix"),
            "loops": run("self-consuming-gaussian"),
            "shares": run("self-consuming-gaussian", loop=["synthetic-augmentation", "fresh-data"],
                          synthetic_share=[0.1, 0.3, 0.5, 0.7, 0.9]),
            "gammas": run("linear-regression", regime=["self-correct"], gamma=GAMMAS),
            "verify": run("linear-regression", regime=["verify"], verifier_error=RATES),
            "replace": run("linear-regression", regime=["replace"]),
            "zipf": run("discrete", generations=60),
        }
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def numbers(records):
    r = records
    return {
        report.regimes: report.regimes(r["rec"]),
        report.strong_collapse: report.strong_collapse(r["mix"]),
        report.loops: report.loops(r["loops"], r["shares"]),
        report.curation: report.curation(r["gammas"], r["verify"]),
        report.exercises: report.exercises(),
        dc_report.beyond_forgetting: dc_report.beyond_forgetting(r["zipf"]),
        dc_report.beyond_exercises: dc_report.beyond_exercises(),
    }


def test_every_key_is_one_docstring_line_and_a_plain_number(records, numbers):
    """A ``<placeholder>`` stands for each regime, loop or 10 gamma of the chapter's records."""
    values = {"regime": records["rec"].values("regime"), "loop": records["loops"].values("loop"),
              "g": [str(round(10 * g)) for g in GAMMAS]}
    check_report(numbers, values=values, prefix="bey_")


def test_the_prose_quotes_only_report_keys(numbers):
    cells = json.loads(CHAPTER.read_text())["cells"]
    prose = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    quoted = set(re.findall(r"\{glue:text\}`bey_([\w-]+)", prose))
    assert len(quoted) > 70
    assert quoted <= {k for n in numbers.values() for k in n}, quoted - {
        k for n in numbers.values() for k in n}


def test_the_numbers_read_the_records(records, numbers):
    rec = records["rec"]
    n = numbers[report.regimes]
    v = theory.one_fit_error(10, 50, 1.0)
    assert (n["d"], n["T"], n["G"], n["G1"], n["chains"], n["v"]) == (10, 50, 10, 11, 200, v)
    for r in rec.values("regime"):
        assert n[f"{r}_last"] == rec.metric("test_error", regime=r)[0, -1]
    assert n["rep_th"] == pytest.approx(11 * v) and n["rep_ratio"] == n["replace_last"] / v
    assert n["acc_max"] == rec.metric("test_error", regime="accumulate").max()
    assert n["sub_mid"] == rec.metric("test_error", regime="accumulate-subsample")[0, 5]
    assert n["acc_limit"] < n["fixed_limit"] < n["bound"]
    # a record of one regime has only its own keys
    one = report.regimes(records["replace"])
    assert "replace_last" in one and "rep_ratio" in one
    assert not {"acc_max", "sub_ratio", "sub_mid", "keep_mid", "accumulate_last"} & set(one)
    s = numbers[report.strong_collapse]
    assert (s["n0"], s["nmax"], s["nmid"], s["pmin"]) == (20, 10000, 1000, 0.0)
    assert s["E0_th"] == 10 / 9 and s["clean_gain"] > 0.6 * s["nmax"] / s["nmid"]
    g = numbers[report.loops]
    assert (g["M"], g["GL"]) == (50, 10) and g["full_th"] == 11 / 50 and g["gen0_mu"] == 1 / 50
    assert within(g["fully-synthetic_th"], g["full_th"], rel=1e-9) and g["loops_z"] <= 4.5
    c = numbers[report.curation]
    assert c["gamma_star"] == 1 - 1 / np.sqrt(2) and c["sc_z"] <= 4
    for gamma in GAMMAS:
        assert c[f"sc{round(10 * gamma)}_lim"] == theory.self_correct_limit(gamma, 10, 50, 1.0)
    assert c["vhalf_th"] == n["rep_th"] and c["q_below"] < c["q_cross"]
    assert c["v0_verify"] == records["verify"].metric("test_error", verifier_error=0.0)[0, -1]


def test_the_forgetting_numbers(records, numbers):
    n = numbers[dc_report.beyond_forgetting]
    assert (n["fg_M"], n["fg_K"], n["fg_state"], n["fg_k"]) == (100, 20, 20, 61)
    assert n["bracket_gap"] <= 1e-12 and n["survival_fit"] <= 1
    assert n["fg_low10"] == pytest.approx(1 - math.exp(-n["fg_q"] / 10), rel=1e-12)
    # the times to forget and b_10 need no run (the chapter's counts 1..20, M = 50, 200, 800)
    assert n["low_slack"] >= 0 and n["up_slack"] >= 0   # lower bound <= exact <= upper bound
    assert within(n["b10"], n["b10_ref"], rel=0.05)
    assert 1.9 < n["t800_lo"] < n["t800_hi"] < n["diff_ratio"]
    assert within(n["t800_last"], n["diff_ratio"], rel=0.05)   # "approaching 2/ln 2"
    assert n["t_up_ratio"] < 1.7 and n["t800_peak"] == 9 and n["t800_hi"] == n["t800_last"]
    assert n["t50_hi"] > 1.3 * n["t800_hi"] and n["t_one"] == 2 and n["q50_max"] == 0.4


def test_the_claims_read_the_report(records, numbers):
    n = numbers[report.regimes]
    v = n["v"]
    rep = claims.CLAIMS["linreg-replace-linear"].measure(records["rec"])
    assert (rep.value, rep.reference, rep.se) == (n["rep_ratio"], n["rep_th"] / v,
                                                  n["replace_se"] / v)
    acc = claims.CLAIMS["linreg-accumulate-bounded"].measure(records["rec"])
    assert (acc.value, acc.reference, acc.baseline) == (n["accumulate_last"] / v, n["acc_th"] / v,
                                                        n["bound"] / v)
