"""Write student copies of the chapters and assignments, for courses without nbgrader.

    python tools/student_copies.py OUT            # or: make student-copies

* Chapters (``notebooks/*.ipynb``): every cell tagged ``solution`` is replaced by a short
  markdown placeholder (same cell id), so the exercises stay and their solutions go.
* Assignments (``notebooks/assignments/*.ipynb``, nbgrader format): in every solution cell
  each region between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes
  ``raise NotImplementedError`` (code) or ``YOUR ANSWER HERE`` (markdown), indented like
  the region; a solution cell without a region is replaced whole, as nbgrader does. The
  check cells stay: on a stub they report "not implemented yet" and the notebook runs on.

The copies keep the folder layout under ``OUT`` (``OUT/notebooks/...``) and are written
without outputs. Only ``nbformat`` is needed.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
PLACEHOLDER = (
    "```{note}\nThe solution is not part of the student copy; your instructor has it.\n```"
)
STUBS = {"code": "raise NotImplementedError", "markdown": "YOUR ANSWER HERE"}
_REGION = re.compile(
    rf"^(?P<indent>[ \t]*){re.escape(BEGIN)}[^\n]*\n.*?^[ \t]*{re.escape(END)}[^\n]*$",
    flags=re.M | re.S,
)


def strip_regions(source: str, cell_type: str) -> str:
    """Replace every solution region of ``source`` by the stub; the whole cell if none."""
    stub = STUBS[cell_type]
    if BEGIN not in source:
        return stub
    if source.count(BEGIN) != source.count(END):
        raise ValueError(f"unbalanced {BEGIN!r} / {END!r} in a cell:\n{source[:200]}")
    return _REGION.sub(lambda m: m.group("indent") + stub, source)


def student_chapter(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The chapter with every ``solution``-tagged cell replaced by a placeholder."""
    for i, cell in enumerate(nb.cells):
        if "solution" in cell.metadata.get("tags", []):
            placeholder = nbformat.v4.new_markdown_cell(PLACEHOLDER)
            placeholder.id = cell.get("id", placeholder.id)
            nb.cells[i] = placeholder
    return nb


def student_assignment(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The assignment with every nbgrader solution region replaced by a stub."""
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = strip_regions(cell.source, cell.cell_type)
    return nb


def clear_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def write_copies(out: Path, source: Path = ROOT / "notebooks") -> list[Path]:
    """Write the student copy of every chapter and assignment under ``out``; return the paths.

    Args:
        out: the output folder (created), outside ``source`` (so the tests that run the
            sources do not collect the copies).
        source: the folder of the chapters, with the assignments in ``assignments/``.
    """
    out, source = Path(out).resolve(), Path(source).resolve()
    if out == source or source in out.parents:
        raise ValueError(f"out must be a folder outside the sources {source}, got {out}")
    written = []
    for path, make in [*((p, student_chapter) for p in sorted(source.glob("*.ipynb"))),
                       *((p, student_assignment)
                         for p in sorted((source / "assignments").glob("*.ipynb")))]:
        nb = clear_outputs(make(nbformat.read(path, as_version=4)))
        target = out / source.name / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for the student copies")
    parser.add_argument("--source", type=Path, default=ROOT / "notebooks",
                        help="folder of the chapters (default: notebooks/)")
    args = parser.parse_args(argv)
    try:
        written = write_copies(args.out, args.source)
    except ValueError as err:
        print(f"student_copies: {err}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} student copies under {args.out.resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
