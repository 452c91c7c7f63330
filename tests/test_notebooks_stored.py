"""How the chapters and assignments are stored: no outputs, JupyterLab's kernelspec, one glue.

Notebooks are stored without outputs (the book executes them). Their kernelspec is the one
JupyterLab writes on save, so opening and saving a chapter in ``make lab`` changes nothing
but what the reader edited. Every glued number goes through ``mmtutor.utils.glue``, which
also prints it for JupyterLab readers (tools/check_glue.py checks the prints after a build).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted(
    (ROOT / "notebooks" / "assignments").glob("*.ipynb"))
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs_and_with_labs_kernelspec(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec") == KERNELSPEC, path.name
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (path.name, index)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_numbers_are_glued_with_the_printing_glue(path):
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type == "code":
            assert "myst_nb" not in cell.source, (
                f"{path.name} cell {index}: glue with mmtutor.utils.glue (it also prints the "
                "value for JupyterLab readers), not myst_nb.glue")


def test_there_are_chapters_and_assignments():
    assert len(NOTEBOOKS) >= 17


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_colab_cell_fetches_every_benchmark_result_the_chapter_reads(path):
    """On Colab only the notebook is there: a results file it reads must be downloaded first."""
    cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    read = {m for source in cells
            for m in re.findall(r"benchmarks/results/([\w.-]+\.json)", source)}
    colab = [s for s in cells if '"google.colab" in sys.modules' in s]
    fetched = {m for s in colab for m in re.findall(r"(?:/|\})/?([\w.-]+\.json)", s)}
    assert read <= fetched, f"{path.name}: the Colab cell does not fetch {sorted(read - fetched)}"
