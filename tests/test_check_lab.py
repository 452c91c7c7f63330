"""tools/check_lab.py: what a notebook's source asks for, and how a rendering is judged.

These tests need neither JupyterLab nor Chromium: they feed ``judge`` the summary that the
tool's page script reads from JupyterLab (``make check-lab`` runs the real thing).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parent.parent / "tools"
sys.path.insert(0, str(TOOLS))
_spec = importlib.util.spec_from_file_location("check_lab", TOOLS / "check_lab.py")
check_lab = importlib.util.module_from_spec(_spec)
sys.modules["check_lab"] = check_lab
_spec.loader.exec_module(check_lab)

EXERCISE = "```{exercise}\n:label: ex-1\nCompute $x^2$.\n```"
SOLUTION = "````{solution} ex-1\n:class: dropdown\nThe code:\n\n```python\nprint('$5')\n```\n````"
PROSE = "It scores {glue:text}`acc:.3f`, see {doc}`07_maths` and {doc}`the notation <notation>`."


def _notebook(tmp_path: Path) -> Path:
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": PROSE},
        {"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": []},
        {"cell_type": "markdown", "metadata": {}, "source": EXERCISE},
        {"cell_type": "markdown", "metadata": {"tags": ["solution"]}, "source": SOLUTION},
    ]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4}), "utf-8")
    return path


def _rendered(**changes) -> list[dict]:
    """What jupyterlab-myst shows for _notebook's cells when all is well, with ``changes``."""
    closed = {"title": "Solution to Exercise 1", "open": False, "bodyVisible": False}
    base = {"rendered": True, "markdown": True, "exercises": 0, "solutions": [], "katex": 0}
    cells = [
        {
            **base,
            "text": "It scores acc:.3f, see 07_maths and the notation.",
            "links": ["07_maths", "the notation"],
            "unresolved": [],
        },  # fmt: skip
        {"markdown": False},
        {
            **base,
            "exercises": 1,
            "katex": 1,
            "text": "Exercise 1Compute .",
            "links": [],
            "unresolved": [],
        },  # fmt: skip
        {
            **base,
            "solutions": [closed],
            "text": "Solution to Exercise 1The code:",
            "links": [],
            "unresolved": [],
        },  # fmt: skip
    ]
    for index, values in changes.items():
        cells[int(index.removeprefix("c"))].update(values)
    return cells


def _kinds(findings) -> list[tuple[str, str]]:
    return sorted((f.kind, f.detail.split(":")[0]) for f in findings)


def test_expectations_count_boxes_math_and_roles(tmp_path):
    want = check_lab.expectations(_notebook(tmp_path))
    assert sorted(want) == [0, 2, 3]  # markdown cells only
    assert (want[2].exercises, want[2].solutions, want[2].math) == (1, 0, True)
    # a four-backtick solution counts; the `$` inside its code block is not math
    assert (want[3].exercises, want[3].solutions, want[3].math) == (0, 1, False)
    assert want[0].glue == ("acc:.3f",)
    assert want[0].doc_targets == ("07_maths",)  # a titled {doc} shows its title


def test_judge_a_good_rendering_gives_only_notes(tmp_path):
    found = check_lab.judge("nb", check_lab.expectations(_notebook(tmp_path)), _rendered())
    assert _kinds(found) == [("doc-link", "cell 0"), ("glue", "cell 0")]
    assert all(f.kind in check_lab.NOTE_KINDS for f in found)
    assert "shows as 'acc:.3f', not its value" in next(f.detail for f in found if f.kind == "glue")


def test_judge_reports_what_a_reader_would_see(tmp_path):
    want = check_lab.expectations(_notebook(tmp_path))
    raw_exercise = {
        "exercises": 0,
        "katex": 0,
        "text": "```{exercise}\n:label: ex-1 Compute $x^2$.",
    }
    open_solution = {"solutions": [{"title": "Solution to 1", "open": True, "bodyVisible": False}]}
    found = check_lab.judge("nb", want, _rendered(c2=raw_exercise, c3=open_solution))
    kinds = {f.kind for f in found} - check_lab.NOTE_KINDS
    assert kinds == {"exercise", "raw-role", "raw-math", "math", "solution"}
    assert any("is shown open" in f.detail for f in found)
    # jupyterlab-myst's error box for an unknown directive is a <details> too: not a solution
    box = {"title": "exercize - Unknown Directive", "open": False, "bodyVisible": False}
    unknown = {"exercises": 0, "katex": 1, "text": " - Unknown Directive", "solutions": [box]}
    found = check_lab.judge("nb", want, _rendered(c2=unknown))
    assert {f.kind for f in found} - check_lab.NOTE_KINDS == {"exercise", "unknown"}


def test_judge_reports_a_cell_left_unrendered_and_a_visible_body(tmp_path):
    want = check_lab.expectations(_notebook(tmp_path))
    shown = {"solutions": [{"title": "Solution to 1", "open": False, "bodyVisible": True}]}
    found = check_lab.judge("nb", want, _rendered(c2={"rendered": False}, c3=shown))
    assert {f.kind for f in found} - check_lab.NOTE_KINDS == {"not-rendered", "solution"}
    found = check_lab.judge("nb", want, _rendered()[:2])  # the page lost the last cells
    assert [f.detail for f in found if f.kind == "not-rendered"] == [
        "cell 2: markdown cell without a MyST rendering",
        "cell 3: markdown cell without a MyST rendering",
    ]
