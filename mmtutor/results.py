"""Reading the benchmark results that the chapters quote.

A chapter that cannot afford a long run within its time budget reads the run from
``benchmarks/results/<name>.json`` instead, written by a script in ``benchmarks/`` (for
example ``benchmarks/ner_real.py``). Each such file holds the command line that wrote it,
the machine it ran on and one row per trained configuration and seed. :func:`read_benchmark`
checks that the file is the run the chapter describes; :func:`summarize_seeds` gives the
mean and the spread over seeds of each configuration, the table the prose cites.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import pandas as pd

__all__ = ["Benchmark", "read_benchmark", "summarize_seeds"]


class Benchmark(NamedTuple):
    """One benchmark run read back: what ran, where, and its rows."""

    command: str
    """The command line that wrote the file, e.g. ``python benchmarks/ner_real.py ...``."""
    machine: list[str]
    """Lines describing the machine (date, CPU, GPU, software, load)."""
    rows: pd.DataFrame
    """One row per configuration and seed, columns as the script wrote them."""


def read_benchmark(path: str | os.PathLike[str], command: str) -> Benchmark:
    """Read a benchmark's JSON result and check that ``command`` wrote it.

    Args:
        path: the ``.json`` file (``{"command": str, "machine": [str], "rows": [dict]}``).
        command: the command line the chapter states; the file must hold exactly this one,
            so that the numbers a chapter cites are those of the run it describes.

    Returns:
        A :class:`Benchmark`: the command, the machine lines and the rows as a table.

    Raises:
        ValueError: for a missing or malformed file (naming it, and the command that
            writes it), or for a file written by another command (naming both).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file; run `{command}` in the book's repository "
                         "to write it")
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a benchmark result ({error}); run `{command}` to "
                         "write it again") from None
    if not isinstance(stored, dict) or not isinstance(stored.get("rows"), list):
        raise ValueError(f"{path}: expected an object with 'command', 'machine' and a list "
                         f"of 'rows', got {type(stored).__name__}")
    if stored.get("command") != command:
        raise ValueError(f"{path} was written by `{stored.get('command')}`, not by "
                         f"`{command}`; run the latter to write the result this text describes")
    return Benchmark(command, list(stored.get("machine", [])), pd.DataFrame(stored["rows"]))


def summarize_seeds(rows: pd.DataFrame, by: str, value: str = "entity F1 (conlleval)",
                    seconds: str = "train s") -> pd.DataFrame:
    """The mean, lowest and highest ``value`` over the seeds of each configuration.

    Args:
        rows: one row per configuration and seed, with the columns ``by``, ``"seed"``,
            ``value`` and ``seconds`` (and optionally ``"epochs"``).
        by: the column naming the configuration; the summary keeps the order in which
            configurations first appear.
        value: the score to summarise.
        seconds: the training time to average.

    Returns:
        One row per configuration, columns ``mean_F1``, ``min_F1``, ``max_F1``,
        ``train_s`` (mean), ``seeds`` (how many distinct seeds) and, when ``rows`` has
        them, ``epochs`` (the most any seed ran).

    Raises:
        ValueError: naming the columns that ``rows`` lacks.
    """
    needed = [by, "seed", value, seconds]
    missing = [column for column in needed if column not in rows.columns]
    if missing:
        raise ValueError(f"rows lack the columns {missing}; they have {list(rows.columns)}")
    aggregations = {"mean_F1": (value, "mean"), "min_F1": (value, "min"),
                    "max_F1": (value, "max"), "train_s": (seconds, "mean"),
                    "seeds": ("seed", "nunique")}
    if "epochs" in rows.columns:
        aggregations["epochs"] = ("epochs", "max")
    return rows.groupby(by, sort=False).agg(**aggregations)
