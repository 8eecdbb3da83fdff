"""The claims ledger: every claim the book checks, declared once.

A :class:`Claim` is one sentence of the paper (or of a follow-up the book executes), where the
source states it, which runs of which chapter measure it (the chapter's own ``cu.run`` call,
so the ledger reads the chapter's cache entry) and a function that turns those records into a
:class:`Measure`: the book's value, the number the claim states at this run's sizes (when there
is one to compare with) and the threshold of its direction.  :meth:`Claim.verdict` turns a
measure into one of :data:`VERDICTS`; :func:`check` is what a chapter's hidden assert calls;
:func:`ledger` evaluates every claim for the page ``book/claims``.

The verdict rule
    *reproduced*: the value lies within ``abs_tol + rel |reference| + k se`` of the reference
    (or, for a qualitative claim, its direction holds); *reproduced in direction only*: it
    does not (or no comparable number exists at this profile) but ``value <sense> baseline``
    holds; *differs*: neither; *not run at this profile*: the measure is ``None`` (the run
    lacks what the claim needs) or a run was declared ``cached_only`` and is not in the cache.

This is a sub-package, not a module ``claims.py`` beside the core, on purpose: every top-level
module is hashed into every experiment's run key (:func:`~collapse_utils.experiments.source_digest`),
so a module there would make each edit of a claim recompute every cached run.  Nothing here
computes a result: it only reads records through the families' report functions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from ..profiles import current_profile

REPRODUCED = "reproduced"
DIRECTION = "reproduced in direction only"
DIFFERS = "differs"
NOT_RUN = "not run at this profile"
#: the verdicts, best first
VERDICTS = (REPRODUCED, DIRECTION, DIFFERS, NOT_RUN)
_RANK = {REPRODUCED: 0, DIRECTION: 1, DIFFERS: 2}


@dataclass(frozen=True)
class Run:
    """One ``cu.run(experiment, **overrides)`` call, exactly as the chapter makes it.

    ``cached_only``: the ledger reads the run only when the chapter left it in the cache (the
    networks: the ledger must not train a VAE or a language model)."""

    experiment: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    cached_only: bool = False

    def key(self) -> tuple:
        return (self.experiment, repr(sorted(self.overrides.items())))


@dataclass(frozen=True)
class Measure:
    """What a claim's runs show.

    ``reference``: the number the claim states, at this run's sizes (None where this profile
    has no comparable number); ``se``: the standard error of ``value`` (tolerance ``k se``);
    ``baseline``: the threshold of the claim's direction (``value <sense> baseline``)."""

    value: float
    reference: float | None = None
    se: float = 0.0
    baseline: float | None = None
    note: str = ""


@dataclass(frozen=True)
class Claim:
    """One claim: the sentence, its source, the chapter's runs, and the verdict rule."""

    id: str
    sentence: str
    source: str                      # "Shumailov et al. 2024, Theorem 3.1"
    stated: str                      # the number or statement as the source gives it
    chapter: str                     # the doc, e.g. "book/gmm"
    anchor: str                      # a section's id, a prf/exercise label or a heading's slug
    runs: tuple[Run, ...]
    measure: Callable[..., Measure | None]
    paper_value: float | None = None  # the source's number, where it prints one
    sense: str | None = None          # "<" or ">": the direction, value against baseline
    qualitative: bool = False         # the direction is the whole claim
    rel: float = 0.0
    abs_tol: float = 0.0
    k: float = 4.0
    #: per profile, the worst verdict a chapter's hidden assert accepts
    required: Mapping[str, str] = field(default_factory=lambda: {
        "smoke": DIRECTION, "default": DIRECTION, "paper": DIRECTION})
    #: per profile, a verdict the book knowingly gets (a difference it reports); checked exactly
    expected: Mapping[str, str] = field(default_factory=dict)
    fmt: str = ".4g"
    #: the ledger's note when the measure is None (what this profile does not run)
    absent: str = ""

    def __post_init__(self):
        if self.sense not in (None, "<", ">"):
            raise ValueError(f"{self.id}: sense must be '<', '>' or None; got {self.sense!r}")
        if self.qualitative and self.sense is None:
            raise ValueError(f"{self.id}: a qualitative claim needs a sense")

    def direction(self, m: Measure) -> bool | None:
        """Whether the value lies on the claim's side of the baseline (None: no direction)."""
        if self.sense is None or m.baseline is None or not math.isfinite(m.value):
            return None if self.sense is None or m.baseline is None else False
        return m.value < m.baseline if self.sense == "<" else m.value > m.baseline

    def tolerance(self, m: Measure) -> float:
        return self.abs_tol + self.rel * abs(m.reference) + self.k * m.se

    def verdict(self, m: Measure | None) -> str:
        """The verdict of a measure (see the module docstring)."""
        if m is None:
            return NOT_RUN
        direction = self.direction(m)
        if m.reference is not None:
            if math.isfinite(m.value) and abs(m.value - m.reference) <= self.tolerance(m):
                return REPRODUCED
            return DIRECTION if direction else DIFFERS
        if direction is None:
            raise ValueError(f"{self.id}: a measure with neither a reference nor a direction")
        if self.qualitative:
            return REPRODUCED if direction else DIFFERS
        return DIRECTION if direction else DIFFERS

    def accepts(self, verdict: str, profile: str) -> bool:
        """Whether a chapter's hidden assert passes with ``verdict`` at ``profile``."""
        if profile in self.expected:
            return verdict == self.expected[profile]
        return verdict in _RANK and _RANK[verdict] <= _RANK[self.required.get(profile, DIRECTION)]

    def link(self) -> str:
        """The section's address relative to the page ``book/claims``."""
        return f"{self.chapter.split('/')[-1]}.html#{self.anchor}"


CLAIMS: dict[str, Claim] = {}


def declare(claim: Claim) -> Claim:
    if claim.id in CLAIMS:
        raise ValueError(f"claim {claim.id!r} is declared twice")
    CLAIMS[claim.id] = claim
    return claim


def get(claim_id: str) -> Claim:
    if claim_id not in CLAIMS:
        raise KeyError(f"no claim {claim_id!r}; declared: {', '.join(CLAIMS)}")
    return CLAIMS[claim_id]


def measure(claim_id: str, *records) -> Measure | None:
    """The claim's measure of ``records`` (the chapter's records of the claim's runs, in order)."""
    return get(claim_id).measure(*records)


def check(claim_id: str, *value, profile: str | None = None) -> str:
    """A hidden assert: the claim's verdict on ``value`` must be as good as the claim requires
    at ``profile`` (or exactly what it expects).  ``value`` is a :class:`Measure`, a number
    (for a claim whose reference and baseline are constants: its ``paper_value``, no direction)
    or the chapter's records of the claim's runs.  Returns the verdict; raises AssertionError
    with one line otherwise."""
    claim = get(claim_id)
    profile = current_profile(profile)
    if len(value) == 1 and isinstance(value[0], Measure):
        m = value[0]
    elif len(value) == 1 and isinstance(value[0], (int, float, np.floating, np.integer)):
        m = Measure(float(value[0]), reference=claim.paper_value)
    else:
        m = claim.measure(*value)
    verdict = claim.verdict(m)
    if not claim.accepts(verdict, profile):
        want = claim.expected.get(profile) or claim.required.get(profile, DIRECTION)
        shown = "none" if m is None else format(m.value, claim.fmt)
        ref = "" if m is None or m.reference is None else f" (reference {m.reference:{claim.fmt}})"
        raise AssertionError(f"claim {claim_id}: {verdict} at {profile}, value {shown}{ref}; "
                             f"needs {want}")
    return verdict


# ----------------------------------------------------------------------------- the ledger
def cached(run: Run, profile: str, seed: int = 0):
    """The record of ``run`` when every run of its sweep is complete in the cache, else None
    (nothing is computed: reading back only writes the record file)."""
    from .. import experiments as ex

    try:
        exp = ex.get_experiment(run.experiment)
    except ValueError:   # its family cannot load here (no torch)
        return None
    settings = ex.distinct_sweeps(exp, ex.resolve_settings(exp, profile, run.overrides))
    for _, own, s in ex.sweep_points(exp, settings, seed):
        result = ex._read_result(ex.cache_root() / exp.name / ex.run_key(exp, profile, own, s))
        if result is None or not result.get("complete"):
            return None
    return ex.run_experiment(exp.name, profile=profile, seed=seed, overrides=run.overrides,
                             progress=False)


def evaluate(claim: Claim, profile: str | None = None, records: dict | None = None) -> dict:
    """One row of the ledger: the claim evaluated from its runs at ``profile``.

    ``records`` memoises records by :meth:`Run.key` across claims."""
    from ..experiments import run as run_experiment

    profile = current_profile(profile)
    records = {} if records is None else records
    recs = []
    for run in claim.runs:
        key = (profile, *run.key())
        if key not in records:
            records[key] = (cached(run, profile) if run.cached_only else
                            run_experiment(run.experiment, profile, progress=False,
                                           **run.overrides))
        recs.append(records[key])
    if any(r is None for r in recs):
        m = None
        note = "its chapter's run was not in the cache when this page was built"
    else:
        m = claim.measure(*recs)
        note = claim.absent if m is None else m.note
    verdict = claim.verdict(m)
    value = "" if m is None else format(m.value, claim.fmt)
    ref = "" if m is None or m.reference is None else format(m.reference, claim.fmt)
    return {"id": claim.id, "claim": claim.sentence, "source": claim.source,
            "stated": claim.stated, "value": value, "reference": ref, "verdict": verdict,
            "expected": claim.expected.get(profile, ""), "note": note, "chapter": claim.chapter,
            "link": claim.link(), "profile": profile}


def ledger(profile: str | None = None):
    """Every declared claim evaluated at ``profile``: a pandas DataFrame, one row a claim."""
    import pandas as pd

    records: dict = {}
    return pd.DataFrame([evaluate(c, profile, records) for c in CLAIMS.values()])


def markdown(table) -> str:
    """The ledger as a Markdown table, each claim linked to the section that shows it."""
    def cell(text):
        return str(text).replace("|", "\\|").replace("\n", " ")

    head = "| claim | source (as stated) | the book | verdict |\n|---|---|---|---|"
    rows = []
    for r in table.to_dict("records"):
        book = r["value"] + (f" (reference {r['reference']})" if r["reference"] else "")
        if r["note"]:
            book = f"{book}; {r['note']}" if book else r["note"]
        rows.append(f"| [{cell(r['claim'])}]({r['link']}) | {cell(r['source'])}: "
                    f"{cell(r['stated'])} | {cell(book)} | {r['verdict']} |")
    return "\n".join([head, *rows])


def html(table) -> str:
    """The ledger as an HTML table, each claim linked to the section that shows it (raw HTML
    passes through the book's build as it is, so the relative links need no resolving)."""
    from html import escape

    head = ("<table class=\"claims-ledger\"><thead><tr><th>claim</th><th>source: as stated</th>"
            "<th>the book (reference at this run's sizes)</th><th>verdict</th></tr></thead><tbody>")
    rows = []
    for r in table.to_dict("records"):
        book = r["value"] + (f" ({r['reference']})" if r["reference"] else "")
        if r["note"]:
            book = f"{book}; {r['note']}" if book else r["note"]
        rows.append(f"<tr><td><a href=\"{escape(r['link'])}\">{escape(r['claim'])}</a></td>"
                    f"<td>{escape(r['source'])}: {escape(r['stated'])}</td>"
                    f"<td>{escape(book)}</td><td>{escape(r['verdict'])}</td></tr>")
    return head + "".join(rows) + "</tbody></table>"


from . import declared  # noqa: E402,F401  (declares the claims)
