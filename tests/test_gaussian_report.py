"""collapse_utils.gaussian.report, and the Gaussian chapter's checks that need no run.

The chapter's hidden cells check the numbers of its runs (``gaussian.report``); the exact facts
its prose quotes (Steps 1-7, the exercises' solutions) are pure formulas, checked here.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy.special import digamma, polygamma
from scipy.stats import norm

from collapse_utils import Schedule, gaussian, run
from collapse_utils.gaussian import report, theory_1d
from collapse_utils.notebook import within
import report_keys

CHAPTER = Path(__file__).resolve().parent.parent / "book" / "gaussian.ipynb"
SECTIONS = ("variance", "distance", "public", "estimators", "regimes", "schedules", "dimensions",
            "sources", "exercises")


def documented(function) -> set:
    """The keys a report function's docstring documents, one ``key: what it is`` line each."""
    return set(report_keys.documented(function))


# ----------------------------------------------------------------------------- the exact facts
def test_exact_facts_of_the_steps():
    # Step 6 at M = 100, n = 10: 0.1 + 0.0499 ~ 0.150
    assert abs(gaussian.expected_w2_squared(10, 100) - 0.150) < 5e-4
    assert abs(2 * (1 - gaussian.c_m(100) ** 10) - 0.0499) < 5e-4
    assert abs(gaussian.c_m(2) - math.sqrt(2 / math.pi)) < 1e-12
    for M in (10, 100, 1000):   # Step 3: the drift E log xi ~ -1/(M-1)
        assert -1.1 < (digamma((M - 1) / 2) - math.log((M - 1) / 2)) * (M - 1) < -0.9
    for M in (100, 1000):   # Step 4: c_M ~ 1 - 1/(4M)
        assert abs((1 - gaussian.c_m(M)) * 4 * M - 1) < 0.02
    n = np.arange(200)
    for M in (10, 100, 1000):   # Step 5: E (mu_n - mu)^2 = n/M
        assert np.allclose(theory_1d(n, M)["mean_error_squared"], n / M)
    for M in (10, 100):   # Step 7: the MLE's mean freezes
        assert np.allclose(theory_1d(n, M, estimator="mle")["mean_error_squared"],
                           1 - (1 - 1 / M) ** n)
    assert abs(theory_1d([10**5], 100, estimator="mle")["w2_squared"][0] - 2) < 1e-9  # -> 2


def test_c_m_and_the_drift_by_monte_carlo():
    xi = np.random.default_rng(0).chisquare(99, 10**6) / 99
    assert within(np.sqrt(xi).mean(), gaussian.c_m(100), np.sqrt(xi).std() / 1e3, k=5)
    assert within(np.log(xi).mean(), digamma(49.5) - math.log(49.5), np.log(xi).std() / 1e3, k=5)


def test_exact_facts_of_the_later_sections():
    # the distance grows like n/M + 2 for ever
    assert abs(gaussian.expected_w2_squared(10**6, 100) - 10**4 - 2) < 1e-6
    assert abs(norm.ppf(0.75) - 0.67) < 0.005  # the median of |X| is 0.67 RMS for a normal X
    assert math.ceil(math.log(0.5) / math.log(0.99)) == 69  # the MLE's half-life at M = 100
    assert Schedule("superlinear", 100, 2.0)(1) == 400
    # d = 3: the example covariance's largest eigenvalue is 2
    assert abs(np.linalg.eigvalsh(gaussian.example_covariance(3))[-1] - 2) < 1e-12


def test_exercise_solutions():
    drift20 = digamma(9.5) - math.log(9.5)   # Exercise 1: M = 20, n = 60 fits
    sd60 = math.sqrt(60 * polygamma(1, 9.5))
    assert abs(drift20 + 0.0536) < 5e-5 and abs(60 * drift20 + 3.21) < 0.005
    assert abs(math.exp(60 * drift20 / 2) - 0.20) < 0.005
    assert abs(((1 + 2 / 19) ** 60 - 1) - 400) < 20 and abs(sd60 - 2.58) < 0.01
    assert abs(norm.cdf(60 * drift20 / sd60) - 0.11) < 0.01
    assert abs(norm.cdf(-(math.log(10) - 60 * drift20) / sd60) - 0.016) < 0.001
    assert abs((math.log(10) - 60 * drift20) / sd60 - 2.14) < 0.01
    share = norm.cdf(-(math.log(10) - 60 * drift20 - sd60**2) / sd60)
    assert abs(share - norm.cdf(0.44)) < 0.01
    assert abs(math.sqrt(((1 + 2 / 19) ** 60 - 1) / 10_000) - 0.2) < 0.005
    assert abs(math.log(2) / -math.log(0.99) - 68.97) < 0.01  # Exercise 2
    H = np.cumsum(1 / np.arange(1, 20000))
    assert int(np.argmax(H >= 10)) + 1 == 12367  # Exercise 3: the first n with H_n >= 10
    linear = theory_1d([12367], 100, schedule="linear")["mean_error_squared"][0]
    assert abs(linear - H[12366] / 100) < 1e-12
    # Exercise 4: the log-determinant's drift at d = 3, M = 20, against 3 times the 1-D one
    assert abs(gaussian.log_det_drift(20, 3) + 0.335) < 0.0005 and abs(3 * drift20 + 0.161) < 0.001


# ----------------------------------------------------------------------------- the report
def test_every_report_function_documents_its_keys_one_line_each():
    for name in SECTIONS:
        keys = documented(getattr(report, name))
        assert len(keys) >= 5, name


def test_the_chapter_reads_only_documented_keys():
    """Each cell that calls ``gaussian.report.<section>`` reads only keys the section documents."""
    nb = json.loads(CHAPTER.read_text())
    called = set()
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] != "code" or "gaussian.report." not in src:
            continue
        calls = dict(re.findall(r"(\w+) = gaussian\.report\.(\w+)\(", src))
        for var, section in calls.items():
            called.add(section)
            keys = documented(getattr(report, section))
            used = set(re.findall(rf'\b{var}\["(\w+)"\]', src))
            if var == "numbers" and "for name in (" in src:   # a loop gluing names of the dict
                loop = re.search(r"for name in \(([^)]*)\)", src).group(1)
                used |= set(re.findall(r'"(\w+)"', loop))
            assert used <= keys, (section, used - keys)
        for section, key in re.findall(r'gaussian\.report\.(\w+)\([^)]*\)\["(\w+)"\]', src):
            called.add(section)
            assert key in documented(getattr(report, section)), (section, key)
    assert called == set(SECTIONS)


@pytest.fixture(scope="module")
def records():
    """The chapter's runs, small (200 chains, 200 generations; the exercise's 60)."""
    small = dict(chains=200, generations=200, progress=False)
    return {
        "rec": run("gaussian", estimator=["unbiased", "mle"], **small),
        "pub": run("gaussian", M=[100, 500, 1000, 10000], estimator="mle", **small),
        "reg": run("gaussian", regime=["replace", "accumulate", "keep-real"], **small),
        "sch": run("gaussian", schedule=["constant", "linear", "superlinear"], **small),
        "dd": run("gaussian", dim=3, M=20, chains=200, generations=100, progress=False),
        "src": run("gaussian", source=["laplace", "two-modes"], **small),
        "ex": run("gaussian", M=20, generations=59, chains=500, progress=False),
    }


def test_report_functions_return_their_documented_keys(records):
    args = {"variance": "rec", "distance": "rec", "public": "pub", "estimators": "rec",
            "regimes": "reg", "schedules": "sch", "dimensions": "dd", "sources": "src",
            "exercises": "ex"}
    numbers = {getattr(report, name): getattr(report, name)(records[rec])
               for name, rec in args.items()}
    # the chapter glues each section under its own names, so two sections may share a key
    report_keys.check_report(numbers, kinds=(int, float, str), unique=False)


def test_report_numbers_agree_with_the_records_and_theory(records):
    rec = records["rec"]
    v, d = report.variance(rec), report.distance(rec)
    assert v["G"] == 200 and v["G_fits"] == 201 and v["chains"] == 200
    assert v["var_sigma2_G"] == pytest.approx((1 + 2 / 99) ** 201 - 1, rel=1e-9)
    assert d["10_theory"] == pytest.approx(0.1499, abs=1e-4)
    assert d["G_side"] == ("below" if d["G_sim"] < d["G_theory"] else "above")
    assert report.regimes(records["reg"])["rep_w2"] == d["G_sim"]   # the same run, from the cache
    assert report.estimators(rec)["halflife"] == 69
    # 200 chains follow the exact theory (the chapter's checks, at a smaller size)
    assert v["sigma2_z"] <= 5 and d["z"] <= 5 and report.public(records["pub"])["sigma2_z"] <= 5
    assert report.dimensions(records["dd"])["log_det_z"] <= 5
    assert report.sources(records["src"])["bound_z"] <= 5


def test_intro_exercise_numbers_and_c_m():
    """The introduction's run-free numbers: c_100, and the 421 generations of its first exercise
    (sigma at 90% for M = 1000, exactly and by the 1 - 1/(4M) approximation)."""
    c_m = gaussian.c_m
    assert 0.997 < c_m(100) < 0.998
    assert round(np.log(0.9) / np.log(c_m(1000))) == 421
    assert round(4 * 1000 * np.log(1 / 0.9)) == 421
