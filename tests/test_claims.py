"""The claims ledger: declarations, the verdict rule, check, and the ledger at smoke."""
import json
import re
from pathlib import Path

import pytest

from collapse_utils import claims
from collapse_utils.claims import (DIFFERS, DIRECTION, NOT_RUN, REPRODUCED, Claim, Measure,
                                   Run)

ROOT = Path(__file__).resolve().parent.parent


def _anchors(doc: str) -> set:
    """The ids a page's headings, labels and targets get (docutils' make_id of a heading).

    docutils comes with the book's tools, not the package, so the minimum-versions job skips this."""
    make_id = pytest.importorskip("docutils.nodes").make_id
    nb = json.loads((ROOT / f"{doc}.ipynb").read_text())
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    out = set()
    for line in text.splitlines():
        if m := re.match(r"#+\s+(.*)", line):
            out.add(make_id(m.group(1)))
        if m := re.match(r":(?:label|name):\s*(\S+)", line.strip()):
            out.add(m.group(1))
        if m := re.match(r"\((\S+)\)=\s*$", line.strip()):
            out.add(m.group(1))
    return out


def test_every_claim_is_declared_once_with_a_source_and_a_link_that_exists():
    from collapse_utils.book import toc_entries

    toc = toc_entries(ROOT)
    assert len(claims.CLAIMS) >= 15 and "book/claims" in toc
    for cid, c in claims.CLAIMS.items():
        assert cid == c.id and c.sentence and c.source and c.stated and c.runs, cid
        assert c.chapter in toc, (cid, c.chapter)
        assert c.anchor in _anchors(c.chapter), (cid, c.anchor)
        assert c.link() == f"{c.chapter.split('/')[-1]}.html#{c.anchor}"
    with pytest.raises(ValueError, match="twice"):
        claims.declare(next(iter(claims.CLAIMS.values())))


def test_claims_copy_the_chapters_run_calls():
    """Each run the ledger makes is a cu.run call in its chapter (so it hits that cache entry)."""
    for c in claims.CLAIMS.values():
        nb = json.loads((ROOT / f"{c.chapter}.ipynb").read_text())
        code = "\n".join("".join(x["source"]) for x in nb["cells"] if x["cell_type"] == "code")
        for run in c.runs:
            assert re.search(rf'run\(\s*"{run.experiment}"', code), (c.id, run.experiment)
            for key, value in run.overrides.items():
                assert f"{key}={json.dumps(value)}" in code, (c.id, key)


def _claim(**kw):
    base = dict(id="t", sentence="s", source="src", stated="x", chapter="book/gmm",
                anchor="the-public-protocol", runs=(Run("gmm"),), measure=lambda r: None)
    return Claim(**{**base, **kw})


def test_the_verdict_rule_gives_every_verdict():
    c = _claim(sense="<", rel=0.1, k=2.0)
    assert c.verdict(Measure(1.05, reference=1.0, baseline=2.0)) == REPRODUCED
    assert c.verdict(Measure(1.25, reference=1.0, se=0.1, baseline=2.0)) == REPRODUCED  # 2 se
    assert c.verdict(Measure(1.5, reference=1.0, baseline=2.0)) == DIRECTION
    assert c.verdict(Measure(1.5, reference=None, baseline=2.0)) == DIRECTION   # not comparable
    assert c.verdict(Measure(2.5, reference=1.0, baseline=2.0)) == DIFFERS
    assert c.verdict(Measure(float("nan"), reference=1.0, baseline=2.0)) == DIFFERS
    assert c.verdict(None) == NOT_RUN
    q = _claim(sense=">", qualitative=True)
    assert q.verdict(Measure(0.99, baseline=0.95)) == REPRODUCED
    assert q.verdict(Measure(0.90, baseline=0.95)) == DIFFERS
    with pytest.raises(ValueError):
        _claim(sense="<").verdict(Measure(1.0))   # neither a reference nor a direction
    with pytest.raises(ValueError):
        _claim(sense="<=")


def test_check_raises_on_a_value_that_differs():
    c = claims.get("gaussian-mean-variance")   # reference 1, no direction, required reproduced
    assert claims.check(c.id, Measure(1.01, reference=1.0, se=0.01), profile="smoke") == REPRODUCED
    with pytest.raises(AssertionError, match="gaussian-mean-variance: differs at smoke"):
        claims.check(c.id, Measure(1.5, reference=1.0, se=0.01), profile="smoke")
    g = claims.get("gmm-component-std")   # direction suffices below the paper profile
    assert claims.check(g.id, Measure(0.7, baseline=0.9), profile="smoke") == DIRECTION
    with pytest.raises(AssertionError):
        claims.check(g.id, Measure(0.95, baseline=0.9), profile="smoke")
    with pytest.raises(AssertionError):   # at paper the notebook's number is required
        claims.check(g.id, Measure(0.1, reference=0.01, baseline=0.9), profile="paper")
    assert claims.check("qiao-replace-select", 0.0, profile="smoke") == REPRODUCED  # a number
    with pytest.raises(AssertionError):
        claims.check("qiao-replace-select", 0.2, profile="smoke")


def test_the_smoke_ledger_evaluates_and_nothing_differs_unexpectedly():
    table = claims.ledger("smoke")
    assert list(table["id"]) == list(claims.CLAIMS)
    assert set(table["verdict"]) <= set(claims.VERDICTS) and (table["profile"] == "smoke").all()
    for row in table.to_dict("records"):
        c = claims.get(row["id"])
        assert row["verdict"] != DIFFERS or c.expected.get("smoke") == DIFFERS, row
        assert row["verdict"] == NOT_RUN or c.accepts(row["verdict"], "smoke"), row
        assert row["verdict"] != NOT_RUN or row["note"], row   # says why
    # the networks are never trained by the ledger
    assert all(r.cached_only for c in claims.CLAIMS.values() for r in c.runs
               if r.experiment in ("vae", "lm"))
    html = claims.html(table)
    assert html.count("<tr>") == len(table) + 1 and 'href="gmm.html#the-public-protocol"' in html
