"""The exercises pages' Colab button opens the student version, not the instructor source.

sphinx-book-theme builds one Colab link per page from the page's own notebook, so on
``book/exercises/CHAPTER`` it opened the instructor source with the solutions and hidden
tests.  After the theme has built its buttons (priority 501), this points that link at the
release's student copy instead (:func:`collapse_utils.assignments.student_copy_urls`, the
same address the page's "Students" box gives).
"""
from __future__ import annotations

PREFIX = "book/exercises/"


def _walk(buttons):
    for button in buttons or []:
        yield button
        yield from _walk(button.get("buttons"))


def student_colab(app, pagename, templatename, context, doctree):
    if not pagename.startswith(PREFIX) or "/" in pagename[len(PREFIX):]:
        return
    from collapse_utils.assignments import CHAPTERS, student_copy_urls

    chapter = pagename[len(PREFIX):]
    if chapter not in CHAPTERS:
        return
    url = student_copy_urls(chapter)["colab"]
    for button in _walk(context.get("header_buttons")):
        if button.get("text") == "Colab" and button.get("url"):
            button["url"] = url
            button["tooltip"] = "Open the student version on Colab"


def setup(app):
    app.connect("html-page-context", student_colab, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
