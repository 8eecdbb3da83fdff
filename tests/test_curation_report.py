"""The numbers the curation chapter (book/curation) quotes: its ``curation_*`` report functions
in the family modules (gaussian, gmm, linreg, discrete; the VAE section reads
``collapse_utils.vae.verification_figures.verifier_report``), and the checks of its prose that
need no run (moved here from the chapter's hidden cells, issue #25 §1)."""
import json
import math
import re
from pathlib import Path

import pytest

from collapse_utils import PROFILES
from collapse_utils.discrete import report as d_report
from collapse_utils.experiments import resolve_settings
from collapse_utils.gaussian import report as g_report
from collapse_utils.gaussian import selection as gsel
from collapse_utils.gaussian.theory import critical_error, truncated_variance, verify_limit
from collapse_utils.gmm import report as m_report
from collapse_utils.linreg import report as lr_report
from collapse_utils.notebook import within
import report_keys

CHAPTER = Path(__file__).resolve().parent.parent / "book" / "curation.ipynb"
#: the report modules the chapter reads, under the names it imports them as
MODULES = {"g_report": g_report, "m_report": m_report, "d_report": d_report,
           "lr_report": lr_report}


def _patterns(f) -> list:
    """The keys ``f``'s docstring documents (``key: what it is``; ``<...>`` a placeholder)."""
    return report_keys.patterns(f)


def _documents(f, key: str) -> bool:
    return any(p.match(key) for p in _patterns(f))


# ----------------------------------------------------------------------------- no run
def test_the_verifier_sizes_need_no_run():
    """q_c and the fixed-point growth hold at M = 100, L = 3 and q_max = 0.95: every profile's."""
    sizes = [resolve_settings("gaussian-curation", p) for p in PROFILES]
    assert all(s["M"] == [100] and s["verify_window"] == 3.0 for s in sizes)
    assert all(max(s["verifier_error"]) == 0.95 for s in sizes)


def test_q_c_and_the_fixed_point_above_it():
    M, L = 100, 3.0
    numbers = g_report.curation_fixed_point(M, L, 0.95)
    assert {p.pattern.rstrip("$") for p in _patterns(g_report.curation_fixed_point)} == set(numbers)
    vL, qc = truncated_variance(L), critical_error(M)
    assert 0.99 < qc < 0.999 and vL < numbers["fp90"] < numbers["fp99"]
    assert numbers["fp99"] > 1.5 * vL
    assert math.isinf(verify_limit(M, 0.999, L)["sigma_squared"])  # no fixed point above q_c
    # "grow without bound"
    assert numbers["up2000"] > numbers["up1000"] > 2 * vL and numbers["up_rise"] > 0


def test_exercise_1_the_truncating_verifier():
    numbers = g_report.curation_exercises()
    assert set(numbers) == {"ex1_first", "ex1_five", "ex1_ten"}
    assert all(type(v) is float for v in numbers.values())
    assert within(numbers["ex1_first"], 0.774, rel=2e-3)
    assert numbers["ex1_ten"] < numbers["ex1_five"] < numbers["ex1_first"] < 1


def test_exercise_3_the_strength_that_matches_real_data():
    """(1 - gamma)^2 = 1/2 near gamma = 0.29 (the chapter checks gamma_eq against it)."""
    assert abs((1 - 1 / math.sqrt(2)) - 0.29) < 0.005


def test_exercise_4_the_selector_that_keeps_90_percent():
    assert abs(gsel.selection_kappa(0.9) - 0.62) < 0.005
    assert abs(gsel.power_law_exponent(0.9) - 0.38) < 0.005
    assert 6 < 2 ** (1 / gsel.power_law_exponent(0.9)) < 6.5


# ----------------------------------------------------------------------------- the report
CURATION = [getattr(m, name) for m in MODULES.values() for name in dir(m)
            if name.startswith("curation_")]


@pytest.mark.parametrize("f", CURATION, ids=lambda f: f"{f.__module__}.{f.__name__}")
def test_every_curation_function_documents_its_keys_one_line_each(f):
    keys = report_keys.documented(f)
    assert len(keys) >= 3 and len(keys) == len(set(keys)), f.__name__


def test_the_chapter_reads_only_documented_keys():
    """Each cell that calls a ``<module>.curation_<section>`` reads only keys it documents."""
    nb = json.loads(CHAPTER.read_text())
    called = set()
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] != "code":
            continue
        for mod, section in re.findall(r"\b(\w+)\.(curation_\w+)\(", src):
            called.add(getattr(MODULES[mod], section))
        for var, mod, section in re.findall(r"(\w+) = (\w+)\.(curation_\w+)\(", src):
            f = getattr(MODULES[mod], section)
            called.add(f)
            for key in re.findall(rf'\b{var}\["(\w+)"\]', src):
                assert _documents(f, key), (section, key)
            for key in re.findall(rf"\b{var}\['(\w+)'\]", src):   # inside f-strings
                assert _documents(f, key), (section, key)
            for key in re.findall(rf'\b{var}\[f"([^"]+)"\]', src):   # f-string keys
                assert _documents(f, re.sub(r"\{[^}]*\}", "x", key)), (section, key)
            for key in re.findall(rf"\b{var}\[f'([^']+)'\]", src):
                assert _documents(f, re.sub(r"\{[^}]*\}", "x", key)), (section, key)
    assert called == set(CURATION)


def test_no_hidden_cell_defines_a_name_a_later_cell_reads():
    """Hidden cells bind ``numbers`` (and loop names) only; the key numbers call the reports."""
    nb = json.loads(CHAPTER.read_text())
    for cell in nb["cells"]:
        tags = cell["metadata"].get("tags", [])
        if cell["cell_type"] != "code" or "remove-cell" not in tags:
            continue
        src = "".join(cell["source"])
        bound = set(re.findall(r"^(\w+(?:, \w+)*) = ", src, flags=re.M))
        assert bound <= {"numbers", "lams", "tags", "fams", "Tmax, cuts_"}, (cell.get("id"), bound)


def test_the_report_key_check_catches_each_fault():
    """tests/report_keys.py, the check every family's report test uses, on made-up functions."""
    def good():
        """a: one
        b_<g>: one per g
        """

    def bullets():
        """The numbers:

        * ``c``: one
        """

    report_keys.check_report({good: {"a": 1, "b_1": 2.0, "b_5": 3}, bullets: {"c": 4}})
    for bad in ({good: {"a": 1, "b_1": 2.0, "z": 3}},           # an undocumented key
                {good: {"a": 1}},                               # a documented key missing
                {good: {"a": "x", "b_1": 2.0}},                 # not a number
                {good: {"a": float("nan"), "b_1": 2.0}},        # not finite
                {good: {"a": 1, "b_1": 2.0}, bullets: {"c": 1, "a": 2}}):   # a key twice
        with pytest.raises(AssertionError):
            report_keys.check_report(bad)
    with pytest.raises(AssertionError):   # <g> limited to the values given
        report_keys.check_report({good: {"a": 1, "b_7": 2.0}}, values={"g": [1, 5]})
