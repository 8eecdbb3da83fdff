"""Bibliography labels in the author-year form of the book's citations.

``bibtex_reference_style: author_year`` renders ``{cite}`` as "[Shumailov et al., 2024]",
but the bibliography itself labels its entries with the formatting style's own label
style ("[SSZ+24]" for the default ``alpha``).  This extension registers a pybtex
formatting style ``authoryear`` (``unsrt`` formatting, sorted by author, year and title)
whose labels are "Kimura, 1955", "Dowson and Landau, 1982" and "Shumailov et al., 2024",
as the citations print them; labels that would collide get a, b, ... after the year.
Select it with ``bibtex_default_style: authoryear``.
"""
from __future__ import annotations

import re
import string
from collections import Counter, defaultdict

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.sorting.author_year_title import SortingStyle


def _plain(text: str) -> str:
    """A BibTeX name or year without braces, escapes and TeX accents."""
    text = re.sub(r"\\[a-zA-Z]+\s*|\\.", "", text)
    return re.sub(r"[{}]", "", text).strip()


def _surnames(entry) -> list[str]:
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    return [_plain(" ".join(p.prelast_names + p.last_names)) for p in persons]


def author_year(entry) -> str:
    """"A, year", "A and B, year" or "A et al., year", as the author_year citations."""
    names = _surnames(entry)
    if not names:
        who = _plain(entry.fields.get("organization", "") or entry.fields.get("title", "Anon."))
    elif len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who}, {_plain(entry.fields.get('year', 'n.d.'))}"


class AuthorYearLabelStyle(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        entries = list(sorted_entries)
        labels = [author_year(e) for e in entries]
        counts, seen = Counter(labels), defaultdict(int)
        for label in labels:
            if counts[label] > 1:
                suffix = string.ascii_lowercase[seen[label]]
                seen[label] += 1
                yield label + suffix
            else:
                yield label


class AuthorYearStyle(UnsrtStyle):
    default_label_style = AuthorYearLabelStyle
    default_sorting_style = SortingStyle


def setup(app):
    register_plugin("pybtex.style.labels", "authoryear", AuthorYearLabelStyle)
    register_plugin("pybtex.style.formatting", "authoryear", AuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
