"""File helpers shared by the readers: streaming lines with numbers, JSON files, safe paths."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def iter_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for each line of a UTF-8 file, one at a time.

    Line numbers start at 1; the end-of-line characters (and a leading BOM) are removed.

    Raises:
        ValueError: ``"path:line: ..."`` for a line that is not valid UTF-8, or if the file
            does not exist.
    """
    if not Path(path).is_file():
        raise ValueError(f"{path}: no such file")
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(
                    f"{path}:{number}: found bytes that are not UTF-8 ({err.reason} at byte "
                    f"{err.start}); expected a UTF-8 text file"
                ) from None
            yield number, text.rstrip("\r\n")


def read_json(path: str | os.PathLike[str], expected: str) -> Any:
    """Read a whole JSON file.

    Raises:
        ValueError: ``"path:line: invalid JSON ...; expected <expected>"``.
    """
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path}:{err.lineno}: invalid JSON ({err.msg}); expected {expected}"
        ) from None


def safe_join(root: str | os.PathLike[str], relative: str) -> Path | None:
    """``root / relative`` if that stays inside ``root``, else ``None``.

    Absolute paths, drive letters and ``..`` components that climb out of ``root`` are
    refused, so a data file cannot make the reader open files elsewhere on the machine.
    """
    if (
        not relative
        or os.path.isabs(relative)
        or Path(relative).drive
        or relative.startswith(("/", "\\"))
    ):
        return None
    base = Path(root).resolve()
    full = (base / relative).resolve()
    if full != base and base not in full.parents:
        return None
    return full
