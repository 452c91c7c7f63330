"""Sphinx extension: number exercises, figures and tables per chapter ("Exercise 4.1").

Why: Sphinx numbers enumerable nodes (``numfig``) with one counter per section number; the
book's table of contents is not ``numbered`` (each chapter's title carries its own number,
"4. Model-level fusion"), so every page has the empty section number and the counters run
across the whole book: chapter 4 began at "Exercise 15". sphinx-exercise has no setting for
this, and a numbered toctree would number the titles a second time.

What: after Sphinx has assigned its numbers (``env-get-updated``, run after the toctree
collector), each page's numbers are replaced by (chapter, 1), (chapter, 2), ... in page
order, where the chapter is the two-digit prefix of a notebook's file name
(``notebooks/04_model_level_fusion`` -> 4); pages without one number from 1. References
({numref}, {ref}) and the captions read the same table, so they agree. Jupyter Book 1 only.
"""

from __future__ import annotations

import re
from typing import Any

CHAPTER = re.compile(r"(?:^|/)(\d{2})_[^/]*$")


def chapter_of(docname: str) -> tuple[int, ...]:
    """``(4,)`` for ``notebooks/04_model_level_fusion``; ``()`` for a page with no number."""
    match = CHAPTER.search(docname)
    return (int(match.group(1)),) if match else ()


def renumber(toc_fignumbers: dict[str, dict[str, dict[str, tuple[int, ...]]]]) -> None:
    """Rewrite ``env.toc_fignumbers`` in place: counters restart on every page.

    Args:
        toc_fignumbers: ``{docname: {figtype: {node_id: number}}}`` as Sphinx builds it,
            numbers being tuples such as ``(15,)``; their order within a page is kept.
    """
    for docname, by_type in toc_fignumbers.items():
        prefix = chapter_of(docname)
        for figtype, numbers in by_type.items():
            ordered = sorted(numbers, key=lambda node_id: numbers[node_id])
            by_type[figtype] = {node_id: prefix + (i,) for i, node_id in enumerate(ordered, 1)}


def _on_env_get_updated(app: Any, env: Any) -> list[str]:
    renumber(env.toc_fignumbers)
    return []


def setup(app: Any) -> dict[str, Any]:
    # Priority 900: after sphinx.environment.collectors.toctree (500) has assigned numbers.
    app.connect("env-get-updated", _on_env_get_updated, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
