"""tools/student_copies.py: student copies without solutions that still run to the end.

Every generated student assignment is executed: it must run to the end without an error,
every check cell must report "not implemented yet", and nbgrader, grading the executed
copy, must give every check cell 0 points (the stub's warning goes to stderr). Chapters
lose their ``solution``-tagged cells and keep everything else.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks" / "assignments").glob("*.ipynb"))
spec = importlib.util.spec_from_file_location("student_copies", ROOT / "tools" / "student_copies.py")
student_copies = importlib.util.module_from_spec(spec)
spec.loader.exec_module(student_copies)


@pytest.fixture(scope="module")
def copies(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("student")
    written = student_copies.write_copies(out)
    assert len(written) == len(SOURCES) + len(list((ROOT / "notebooks").glob("*.ipynb")))
    return out / "notebooks"


def test_there_are_at_least_five_assignments():
    assert len(SOURCES) >= 5


def test_strip_regions_keeps_the_rest_and_the_indent():
    src = "def f(x):\n    '''doc'''\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n"
    assert student_copies.strip_regions(src, "code") == (
        "def f(x):\n    '''doc'''\n    raise NotImplementedError\n")
    assert student_copies.strip_regions("A good answer says 42.", "markdown") == (
        "YOUR ANSWER HERE")
    with pytest.raises(ValueError, match="unbalanced"):
        student_copies.strip_regions("### BEGIN SOLUTION\nx = 1\n", "code")


def test_out_must_lie_outside_the_sources():
    with pytest.raises(ValueError, match="outside the sources"):
        student_copies.write_copies(ROOT / "notebooks" / "student")


def test_chapters_lose_their_solutions_only(copies):
    for source in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(source, as_version=4)
        copy = nbformat.read(copies / source.name, as_version=4)
        assert [c.id for c in copy.cells] == [c.id for c in nb.cells]
        for cell, kept in zip(nb.cells, copy.cells, strict=True):
            if "solution" in cell.metadata.get("tags", []):
                assert kept.source == student_copies.PLACEHOLDER
            else:
                assert kept.source == cell.source


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_student_assignment_runs_to_the_end_and_scores_zero(copies, source):
    from nbclient import NotebookClient
    from nbgrader.utils import determine_grade

    nb = nbformat.read(copies / "assignments" / source.name, as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    assert "### BEGIN SOLUTION" not in text and "raise NotImplementedError" in text
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT)}}).execute()  # raises on error
    checks = [c for c in nb.cells if c.cell_type == "code"
              and c.metadata.get("nbgrader", {}).get("grade")]
    assert checks
    for cell in checks:
        out = "".join(o.get("text", "") for o in cell.outputs if o["output_type"] == "stream")
        assert "not implemented yet" in out, out
        assert determine_grade(cell)[0] == 0, cell.source
