"""tools/check_glue.py: every glued number is printed by a code cell above its paragraph."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("myst_nb")

TOOLS = Path(__file__).resolve().parents[1] / "tools"
_spec = importlib.util.spec_from_file_location("check_glue", TOOLS / "check_glue.py")
check_glue = importlib.util.module_from_spec(_spec)
sys.modules["check_glue"] = check_glue
_spec.loader.exec_module(check_glue)

RECORD = "application/papermill.record/"


def code(*outputs: dict) -> dict:
    return {"cell_type": "code", "source": "...", "metadata": {}, "outputs": list(outputs),
            "execution_count": 1}


def markdown(text: str) -> dict:
    return {"cell_type": "markdown", "source": text, "metadata": {}}


def stream(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": text}


def shown(mime: str, value: str) -> dict:
    return {"output_type": "display_data", "data": {mime: value}, "metadata": {}}


def record(key: str, plain: str, *, prefix: str = RECORD, markdown_text: str = "") -> dict:
    data = {prefix + "text/plain": plain}
    if markdown_text:
        data[prefix + "text/markdown"] = markdown_text
    return {"output_type": "display_data", "data": data,
            "metadata": {"scrapbook": {"name": key, "mime_prefix": prefix}}}


def write(folder: Path, cells: list[dict], glue: dict | None = None,
          name: str = "ch.ipynb") -> Path:
    """An executed notebook as myst-nb writes it: display=False records go to .glue.json."""
    path = folder / name
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 5}), encoding="utf-8")
    if glue:
        outputs = {key: {"output_type": "display_data", "metadata": {},
                         "data": {"text/plain": plain} if isinstance(plain, str) else plain}
                   for key, plain in glue.items()}
        path.with_suffix(".glue.json").write_text(json.dumps(outputs), encoding="utf-8")
    return path


def problems(tmp_path: Path, cells: list[dict], glue: dict | None = None) -> list:
    return check_glue.check_notebook(write(tmp_path, cells, glue))


def test_the_same_text_printed_above_passes(tmp_path):
    cells = [code(stream("accuracy 0.85\n")), markdown("It reaches {glue:text}`acc:.2f`.")]
    assert problems(tmp_path, cells, {"acc": "0.8531"}) == []


def test_a_number_printed_with_more_digits_passes(tmp_path):
    cells = [code(stream("accuracy 0.853124\n")), markdown("It reaches {glue:text}`acc:.2f`.")]
    assert problems(tmp_path, cells, {"acc": "0.853124"}) == []


def test_percent_and_thousands_formats_match_the_printed_number(tmp_path):
    cells = [code(stream("accuracy 0.853, 1228 tweets\n")),
             markdown("{glue:text}`acc:.0%` of {glue:text}`n:,` tweets")]
    assert problems(tmp_path, cells, {"acc": "0.853", "n": "1228"}) == []


def test_a_number_that_is_never_printed_fails_with_key_and_text(tmp_path):
    cells = [code(stream("accuracy 0.91\n")), markdown("It reaches {glue:text}`acc:.2f`.")]
    found = problems(tmp_path, cells, {"acc": "0.8531"})
    assert [(p.kind, p.key, p.shown, p.cell) for p in found] == [("not-printed", "acc", "0.85", 1)]
    assert "'acc' shows '0.85'" in str(found[0]) and "markdown cell 1" in str(found[0])


def test_a_number_printed_only_below_the_paragraph_fails(tmp_path):
    cells = [code(), markdown("It reaches {glue:text}`acc:.2f`."), code(stream("0.85\n"))]
    assert [p.kind for p in problems(tmp_path, cells, {"acc": "0.8531"})] == ["not-printed"]


def test_a_longer_number_that_merely_starts_with_the_text_does_not_count(tmp_path):
    cells = [code(stream("seed 0.859 and 10.85 and 0.85.1\n")), markdown("{glue:text}`acc:.2f`")]
    assert [p.kind for p in problems(tmp_path, cells, {"acc": "0.8531"})] == ["not-printed"]


def test_the_glue_record_itself_is_not_printing(tmp_path):
    # A display=False record left in the notebook is invisible in JupyterLab.
    cells = [code(record("acc", "0.8531")), markdown("{glue:text}`acc:.4f`")]
    assert [p.kind for p in problems(tmp_path, cells)] == ["not-printed"]


def test_a_displayed_glue_shows_its_value(tmp_path):
    cells = [code(record("acc", "0.8531", prefix="")), markdown("{glue:text}`acc:.4f`")]
    assert problems(tmp_path, cells) == []


def test_a_value_in_an_html_table_passes(tmp_path):
    table = "<table><tr><td>gated</td><td>0.8531</td></tr></table>"
    cells = [code(shown("text/html", table)), markdown("gated: {glue:text}`acc:.3f`")]
    assert problems(tmp_path, cells, {"acc": "0.8531"}) == []


def test_markdown_glue_compares_the_markdown_text(tmp_path):
    cells = [code(stream("image shows cat\n")), markdown("the image shows {glue:md}`shape`")]
    bundle = {"text/plain": "<IPython.core.display.Markdown object>", "text/markdown": "cat"}
    assert problems(tmp_path, cells, {"shape": bundle}) == []
    cells[0] = code(stream("image shows dog\n"))
    assert [p.shown for p in problems(tmp_path, cells, {"shape": bundle})] == ["cat"]


def test_a_key_that_is_not_glued_is_reported(tmp_path):
    cells = [code(stream("0.85\n")), markdown("{glue:text}`acc:.2f`")]
    assert [p.kind for p in problems(tmp_path, cells)] == ["no-value"]


def test_main_exit_status_and_report(tmp_path, capsys):
    assert check_glue.main([str(tmp_path)]) == 1  # no notebooks
    write(tmp_path, [code(stream("0.85\n")), markdown("{glue:text}`acc:.2f`")], {"acc": "0.851"})
    assert check_glue.main([str(tmp_path)]) == 0
    write(tmp_path, [code(), markdown("{glue:text}`acc:.2f`")], {"acc": "0.851"}, "b.ipynb")
    assert check_glue.main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "b.ipynb: markdown cell 1: not-printed" in out
    assert "2 notebooks, 2 glue roles, 1 problems" in out
