"""The book's two local Sphinx extensions in tools/: per-chapter numbers, inline scripts once."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


chapter_numbering = _load("chapter_numbering")
inline_scripts_once = _load("inline_scripts_once")


def test_numbers_restart_in_every_chapter_and_keep_page_order():
    # As Sphinx leaves them without a numbered toctree: one counter across the book.
    numbers = {
        "notebooks/03_feature_level_fusion": {"exercise": {"ex-b": (12,), "ex-a": (11,)}},
        "notebooks/04_model_level_fusion": {"exercise": {"ex-c": (15,), "ex-d": (16,)},
                                            "figure": {"fig-x": (7,)}},
        "book/faq": {"exercise": {"ex-e": (30,)}},
    }
    chapter_numbering.renumber(numbers)
    assert numbers["notebooks/03_feature_level_fusion"]["exercise"] == {
        "ex-a": (3, 1), "ex-b": (3, 2)}
    assert numbers["notebooks/04_model_level_fusion"]["exercise"] == {
        "ex-c": (4, 1), "ex-d": (4, 2)}
    assert numbers["notebooks/04_model_level_fusion"]["figure"] == {"fig-x": (4, 1)}
    assert numbers["book/faq"]["exercise"] == {"ex-e": (1,)}


def test_chapter_of_reads_the_file_name_prefix():
    assert chapter_numbering.chapter_of("notebooks/09_case_study") == (9,)
    assert chapter_numbering.chapter_of("book/glossary") == ()


class _Builder:
    """The part of Sphinx's HTML builder that matters: add_js_file skips exact duplicates."""

    def __init__(self) -> None:
        self.files: list[tuple[str | None, tuple]] = []

    def add_js_file(self, filename, **kwargs) -> None:
        asset = (filename, tuple(sorted(kwargs.items())))
        if asset not in self.files:
            self.files.append(asset)


class _App:
    def __init__(self) -> None:
        self.builder = _Builder()


def test_an_inline_script_added_as_none_and_as_empty_is_kept_once():
    app = _App()
    inline_scripts_once._on_builder_inited(app)
    body = 'const THEBE_JS_URL = "x"'
    app.builder.add_js_file(None, body=body)  # what sphinx-thebe passes
    app.builder.add_js_file("", body=body)  # what Sphinx re-adds in prepare_writing
    assert len(app.builder.files) == 1
