"""Check that every number the prose glues is also printed by a code cell above it.

The book shows a glued value where the prose says ``{glue:text}`key:.2f```; JupyterLab
(jupyterlab-myst, issue #165 upstream) shows only the key. So a student who runs a chapter
in ``make lab`` must find each glued number in the output of a code cell above the
paragraph that cites it. This tool reads the notebooks ``make book`` executed
(``_build/jupyter_execute``) and, for each ``{glue:text}``, ``{glue}`` or ``{glue:md}`` role
in a markdown cell, looks for the text the book shows in what the code cells *above that
cell* print: stream output and the plain-text or HTML form of displayed results, not the
records of ``glue(..., display=False)``. A printed number matches when the role's format
turns it into the same text (``0.8531`` printed matches ``{glue:text}`acc:.2f```, shown as
``0.85``). ``mmtutor.utils.glue`` prints every value it records, so the chapters pass.

Failures, one line each (notebook, markdown cell, key, the text the book shows):

* ``not-printed``  no code cell above prints the glued text;
* ``no-value``     the key is not glued in that notebook (myst-nb fails the build too);
* ``no-notebooks`` the folder holds no executed notebook.

The rule of how a role turns a value into text is myst-nb's own
(``myst_nb.core.variables.format_plain_text``), so the two cannot drift apart.

Usage::

    .venv/bin/python tools/check_glue.py _build/jupyter_execute   # after `make book`
    make check-book                                               # runs it, then the browser

Exit status 1 when anything fails.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from myst_nb.core.variables import format_plain_text

# {glue:text}`key:fmt`, {glue}`key`, {glue:md}`key:fmt` (the format is optional).
GLUE_ROLE = re.compile(r"\{glue(?::(?P<kind>text|md|any))?\}`(?P<body>[^`]+)`")
# Numbers as Python prints them: 1228, 1,228, -0.85, 1.5e-05, .5
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?(?!\.\d)")
TAG = re.compile(r"<[^>]+>")
PRINTED_MIME = ("text/plain", "text/html", "text/markdown")


@dataclass(frozen=True)
class Problem:
    """One glued text that a student in JupyterLab cannot read off a code cell's output."""

    notebook: str
    cell: int
    key: str
    shown: str
    kind: str

    def __str__(self) -> str:
        where = f"{self.notebook}: markdown cell {self.cell}"
        if self.kind == "no-value":
            return f"{where}: no-value: key {self.key!r} is not glued in this notebook"
        return (f"{where}: not-printed: {self.key!r} shows {self.shown!r} in the book, but no "
                "code cell above prints it (print it, so a JupyterLab reader sees it)")


def _text(value: str | list[str]) -> str:
    return value if isinstance(value, str) else "".join(value)


def printed_text(cell: dict) -> str:
    """What a code cell shows its reader: streams and displayed results.

    A ``glue(..., display=False)`` record keeps its data under a prefixed mime type
    (``application/papermill.record/text/plain``), which is not shown, so it is not read.
    """
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(_text(output.get("text", "")))
        for mime in PRINTED_MIME:
            if mime in output.get("data", {}):
                text = _text(output["data"][mime])
                parts.append(html.unescape(TAG.sub(" ", text)) if mime == "text/html" else text)
    return "\n".join(parts)


def glued_values(cells: list[dict], glue_file: Path | None = None) -> dict[str, dict[str, str]]:
    """Every glue record of a notebook: key -> its mime bundle, without glue's prefix.

    myst-nb removes the records of ``glue(..., display=False)`` from the notebook it writes
    and keeps them in ``<notebook>.glue.json`` beside it (key -> output), read when given.
    """
    values: dict[str, dict[str, str]] = {}
    if glue_file is not None and glue_file.is_file():
        for key, output in json.loads(glue_file.read_text(encoding="utf-8")).items():
            values[key] = {mime: _text(data) for mime, data in output.get("data", {}).items()}
    for cell in cells:
        for output in cell.get("outputs", []):
            record = output.get("metadata", {}).get("scrapbook")
            if not record:
                continue
            prefix = len(record.get("mime_prefix", ""))
            values[record["name"]] = {mime[prefix:]: _text(data)
                                      for mime, data in output.get("data", {}).items()}
    return values


def shown_text(bundle: dict[str, str], kind: str, fmt: str) -> str:
    """The text the book shows for a glue role (myst-nb's rule for text, the markdown for md)."""
    if kind == "md" and "text/markdown" in bundle:
        return bundle["text/markdown"].strip()
    return format_plain_text(bundle.get("text/plain", ""), fmt).strip()


def is_printed(shown: str, fmt: str, printed: str) -> bool:
    """Whether ``printed`` holds ``shown`` or a number that ``fmt`` turns into ``shown``."""
    if not shown:
        return True
    if re.search(rf"(?<![\w.]){re.escape(shown)}(?![\w]|\.\d)", printed):
        return True
    for match in NUMBER.finditer(printed):
        token = match.group().replace(",", "")
        try:
            if format_plain_text(token, fmt).strip() == shown:
                return True
        except (TypeError, ValueError, OverflowError):
            continue
    return False


def roles(source: str) -> Iterator[tuple[str, str, str]]:
    """(key, format, kind) of each glue role in a markdown cell's source."""
    for match in GLUE_ROLE.finditer(source):
        key, _, fmt = match.group("body").rpartition(":")  # myst-nb splits at the last ':'
        if not key:  # no format: `key`
            key, fmt = fmt, ""
        yield key.strip(), fmt.strip(), match.group("kind") or "any"


def check_notebook(path: Path, name: str | None = None) -> list[Problem]:
    """Problems of one executed notebook."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    name = name or path.name
    values = glued_values(cells, path.with_suffix(".glue.json"))
    problems = []
    printed = ""
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            printed += "\n" + printed_text(cell)
            continue
        if cell["cell_type"] != "markdown":
            continue
        for key, fmt, kind in roles(_text(cell["source"])):
            if key not in values:
                problems.append(Problem(name, index, key, "", "no-value"))
                continue
            shown = shown_text(values[key], kind, fmt)
            if not is_printed(shown, fmt, printed):
                problems.append(Problem(name, index, key, shown, "not-printed"))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, nargs="?", default=Path("_build/jupyter_execute"),
                        help="the executed notebooks (default: %(default)s, written by make book)")
    args = parser.parse_args(argv)
    notebooks = sorted(p for p in args.folder.rglob("*.ipynb")
                       if ".ipynb_checkpoints" not in p.parts)
    if not notebooks:
        print(f"check_glue: no-notebooks: {args.folder} holds no executed notebook "
              "(run `make book` first)", file=sys.stderr)
        return 1
    problems = []
    roles_seen = 0
    for path in notebooks:
        found = check_notebook(path, str(path.relative_to(args.folder)))
        roles_seen += sum(len(list(roles(_text(c["source"]))))
                          for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
                          if c["cell_type"] == "markdown")
        problems += found
    for problem in problems:
        print(problem)
    print(f"check_glue: {len(notebooks)} notebooks, {roles_seen} glue roles, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
