"""The chapter "What collapse means" (book/definitions): its numbers (collapse_utils.kde.report)
and the checks of its prose that need no run (moved here from the chapter's hidden cells,
issue #25 §1)."""
import inspect
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from collapse_utils import PROFILES
from collapse_utils.experiments import resolve_settings, run_experiment
from collapse_utils.kde import report, theory
from collapse_utils.kde.figures import chains
from collapse_utils.kde.simulate import real_variance
from report_keys import check_report

CHAPTER = Path(__file__).resolve().parent.parent / "book" / "definitions.ipynb"
SECTIONS = (report.sizes, report.distances, report.shape)
RULES = ("scott", "fixed")


def documented(function, rules=RULES) -> set:
    """The keys of ``function``'s docstring (``key: what it is``), ``<rule>`` expanded."""
    keys = re.findall(r"^([\w<>]+): \S", inspect.getdoc(function), flags=re.M)
    return {k.replace("<rule>", rule) for k in keys for rule in rules}


# ----------------------------------------------------------------------------- no run
def test_the_sizes_of_what_you_need_and_how_long_it_takes():
    sizes = [resolve_settings("kde", p) for p in PROFILES]
    assert [(s["chains"], s["generations"]) for s in sizes] == [(100, 8), (200, 40), (1000, 100)]


def test_the_exercises_numbers():
    # Exercise 2: Scott's h on the bimodal data, the widened modes, the rate 0.99^100
    assert abs(2.06 * 100**-0.2 - 0.82) < 0.005
    assert abs(np.sqrt(0.25 + 0.82**2) - 0.96) < 0.01
    assert abs(0.99**100 - 0.37) < 0.005
    assert abs(np.sqrt(real_variance("bimodal")) - 2.06) < 0.005
    # Exercise 1: the fixed point M h^2 for h = 0.05 and h = 0.2
    assert theory.expected_variance(10**4, "fixed", 100, 1.0, 0.05) == 100 * 0.05**2
    assert abs(theory.expected_variance(10**4, "fixed", 100, 1.0, 0.2) - 4) < 1e-9


def test_the_chapter_reads_only_documented_keys():
    """Each cell that calls ``kde_report.<section>`` reads only keys that section documents."""
    nb = json.loads(CHAPTER.read_text())
    called = set()
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] != "code" or "kde_report." not in src:
            continue
        sections = re.findall(r"kde_report\.(\w+)\(", src)
        called |= set(sections)
        keys = set().union(*(documented(getattr(report, s)) for s in sections))
        used = set(re.findall(r'numbers\["(\w+)"\]', src))
        used |= set(re.findall(r"numbers\['(\w+)'\]", src))
        assert used <= keys, (sections, used - keys)
    assert called == {f.__name__ for f in SECTIONS}


# ----------------------------------------------------------------------------- a small run
@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    """The chapter's run at the smoke sizes (100 chains, 8 generations), in a fresh cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("COLLAPSE_CACHE", str(tmp_path_factory.mktemp("cache")))
    try:
        return run_experiment("kde", profile="smoke", progress=False)
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def numbers(rec):
    return {f: f(rec) for f in SECTIONS}


def test_every_key_is_one_docstring_line_and_a_plain_number(numbers):
    check_report(numbers, values={"rule": RULES}, prefix="def_")
    for f, n in numbers.items():   # every rule's keys, not only one rule's
        assert set(n) == documented(f), (f.__name__, set(n) ^ documented(f))


def test_the_numbers_read_the_record(rec, numbers):
    s, d, v = (numbers[f] for f in SECTIONS)
    G = int(rec.generations[-1])
    assert (s["M"], s["h"], s["G"], s["chains"], s["star"]) == (100, 0.1, 8, 100, 8)
    kl = chains(rec, "kl", "scott")
    assert d["kl_scott"] == np.median(kl[:, G]) and d["kl_scott_0"] == np.median(kl[:, 0])
    assert d["tv_scott_max"] == chains(rec, "tv", "scott").max()
    assert d["kl_ratio"] == d["kl_fixed_star"] / d["kl_scott_star"]
    assert d["w2_ratio"] == d["w2_scott_star"] / d["w2_fixed_star"]
    var = chains(rec, "variance", "fixed")
    assert v["var_fixed"] == var[:, G].mean() and v["var_fixed_0"] == var[:, 0].mean()
    assert v["var_scott_se"] == rec.metric("variance_se", bandwidth="scott")[0, G]
    assert v["tail_real_pct"] == 100 * v["tail_real"] == 100 * rec.fact("real_tail_mass")
    tail = chains(rec, "tail_mass", "fixed")[:, G]
    assert v["tail_fixed_zero_pct"] == 100 * np.mean(tail < 1e-6)
    assert v["tail_fixed_med"] == max(v["tail_mass_fixed"], 1e-300)


def test_the_numbers_follow_the_theory(numbers):
    s, d, v = (numbers[f] for f in SECTIONS)
    M, h, G = s["M"], s["h"], s["G"]
    r = (M - 1) / M + M**-0.4
    assert v["r"] == pytest.approx(r) and v["c"] == pytest.approx(0.1**0.4)
    assert v["r_pct"] == pytest.approx(100 * (r - 1))
    assert d["kl_slope"] == pytest.approx(0.5 * math.log(r))
    assert d["w2_factor"] == pytest.approx(math.sqrt(r))
    assert v["var_scott_th"] == pytest.approx(r ** (G + 1))
    assert v["var_fixed_th"] == pytest.approx(1.0, abs=1e-12) and h == pytest.approx(M**-0.5)
    assert d["kl_scott_ref"] == pytest.approx(theory.kl_gaussian(G + 1, "scott", M))
    # what the chapter's hidden cells check, at these sizes
    for rule in RULES:
        assert abs(v[f"var_{rule}"] - v[f"var_{rule}_th"]) <= 4 * v[f"var_{rule}_se"]
    assert d["kl_scott"] == pytest.approx(d["kl_scott_ref"], rel=0.25)
    assert d["w2_scott"] == pytest.approx(d["w2_scott_ref"], rel=0.25)
    assert d["kl_fixed_star"] > d["kl_scott_star"] and d["w2_scott_star"] > d["w2_fixed_star"]
    assert d["kl_scott"] > d["kl_scott_half"] > d["kl_scott_0"]
    assert v["tail_mass_scott"] > 10 * v["tail_real"] > 10 * v["tail_mass_fixed"]
