"""Sphinx extension: write each inline ``<script>`` once per page, not twice.

Why: every page of the book raised ``SyntaxError: Identifier 'THEBE_JS_URL' has already been
declared``. sphinx-thebe (and sphinx-togglebutton) add inline scripts with
``app.add_js_file(None, body=...)`` after the HTML builder exists; Sphinx < 8.2 passes that
``None`` on to the builder, which later re-adds its registry with ``None`` turned into
``''`` (``prepare_writing``), and ``_JavaScript(None, ...) != _JavaScript('', ...)``, so the
same ``const`` declaration is written twice. Fixed upstream in Sphinx 8.2
(sphinx-doc/sphinx#13402); Jupyter Book 1 pins Sphinx 7.

What: the builder's ``add_js_file`` is given the same ``None`` -> ``''`` normalisation, so
the duplicate check recognises the second copy. Nothing else changes.
"""

from __future__ import annotations

import functools
from typing import Any


def _normalise(add_js_file: Any) -> Any:
    @functools.wraps(add_js_file)
    def add(filename: str | None, **kwargs: Any) -> None:
        add_js_file(filename or "", **kwargs)

    return add


def _on_builder_inited(app: Any) -> None:
    builder = app.builder
    if hasattr(builder, "add_js_file"):
        builder.add_js_file = _normalise(builder.add_js_file)


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", _on_builder_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
