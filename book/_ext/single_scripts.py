"""Each script once per page: sphinx-thebe's inline configuration was included twice.

sphinx-thebe adds its inline ``const THEBE_JS_URL = ...`` script with
``app.add_js_file(None, body=...)`` in ``env-before-read-docs``, after the HTML builder
was initialised.  Sphinx 7.4 then holds it twice: once from that call (file name
``None``) and once more when the builder re-adds the registry's scripts in
``prepare_writing`` (file name ``''``), and the two do not compare equal, so every page
declared the constant twice and the console showed "Identifier 'THEBE_JS_URL' has
already been declared".  This drops repeats of the same script from every page.
"""
from __future__ import annotations


def _key(script):
    filename = getattr(script, "filename", script) or ""
    attributes = getattr(script, "attributes", {}) or {}
    return str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items()))


def drop_repeated_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
