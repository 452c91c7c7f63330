"""Wall time of every chapter, executed the way ``make test`` runs it (nbmake, offline).

Each notebook runs in its own fresh process, as
``tools/offline.sh python -m pytest -q -p no:cacheprovider --nbmake --nbmake-timeout=600
notebooks/NN_name.ipynb``, so the time includes starting pytest and the Jupyter kernel and
importing PyTorch, as a reader's ``make test`` pays it. Beside each time stands the chapter's
budget (90 s on a quiet 2-core CPU) and below them the total against the book's budget
(10 minutes); a time over its budget is marked **OVER**.

    python benchmarks/notebook_times.py                       # every notebook (minutes)
    python benchmarks/notebook_times.py notebooks/00_quickstart.ipynb
    python benchmarks/notebook_times.py --dry-run             # list the commands only
    python benchmarks/notebook_times.py --strict              # exit 1 if over a budget

It prints markdown and writes ``benchmarks/results/notebook_times.md``. The exit status is 0
unless ``--strict`` is given and a notebook fails or a budget is exceeded: a busy machine
makes every time longer, so a benchmark reports and a person judges.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from _common import machine_header, markdown_table, write_report

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_BUDGET_S = 90.0
TOTAL_BUDGET_S = 600.0
NB_TIMEOUT_S = 600  # per cell, as in the Makefile's NB_TIMEOUT
COLUMNS = ["notebook", "seconds", "budget s", "within budget", "result"]


def command(notebook: Path) -> list[str]:
    """The command that runs one notebook as ``make test`` does, with the network cut."""
    return [str(ROOT / "tools" / "offline.sh"), sys.executable, "-m", "pytest", "-q",
            "-p", "no:cacheprovider", "--nbmake", f"--nbmake-timeout={NB_TIMEOUT_S}",
            str(notebook)]


def run_one(notebook: Path) -> tuple[float, str]:
    """Run ``notebook``; return its wall seconds and ``"passed"`` or the failure's last line."""
    start = time.perf_counter()
    done = subprocess.run(command(notebook), cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode == 0:
        return seconds, "passed"
    tail = (done.stdout + done.stderr).strip().splitlines()
    return seconds, f"FAILED (exit {done.returncode}): {tail[-1] if tail else ''}"


def _within(seconds: float | None, budget: float) -> str:
    if seconds is None:
        return "not run"
    return "yes" if seconds <= budget else "**OVER**"


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    """Run (or with ``--dry-run`` list) the notebooks; print and write the table; return it.

    The frame has one row per notebook and a last row ``"total"`` (``COLUMNS``); with
    ``--strict`` a failure or an exceeded budget ends in ``SystemExit(1)`` after the report.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="default: every notebooks/*.ipynb")
    parser.add_argument("--dry-run", action="store_true", help="list the commands, run nothing")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a notebook fails or a budget is exceeded")
    parser.add_argument("--results", type=Path, default=None,
                        help="folder for notebook_times.md (benchmarks/results)")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    missing = [str(nb) for nb in notebooks if not Path(nb).is_file()]
    if missing:
        raise SystemExit(f"benchmarks/notebook_times.py: no such notebook: {', '.join(missing)}")

    rows = []
    for nb in notebooks:
        nb = Path(nb).resolve()
        name = nb.relative_to(ROOT).as_posix() if nb.is_relative_to(ROOT) else str(nb)
        if args.dry_run:
            print(" ".join(command(nb)))
            seconds, result = None, "dry run"
        else:
            seconds, result = run_one(nb)
            print(f"{name}: {seconds:.1f} s, {result}", file=sys.stderr)
        rows.append({"notebook": name, "seconds": seconds, "budget s": NOTEBOOK_BUDGET_S,
                     "within budget": _within(seconds, NOTEBOOK_BUDGET_S), "result": result})
    ran = [r["seconds"] for r in rows if r["seconds"] is not None]
    total = sum(ran) if ran else None
    rows.append({"notebook": "total", "seconds": total, "budget s": TOTAL_BUDGET_S,
                 "within budget": _within(total, TOTAL_BUDGET_S),
                 "result": f"{len(ran)} of {len(notebooks)} run"})
    shown = [{**r, "seconds": "-" if r["seconds"] is None else round(r["seconds"], 1)}
             for r in rows]
    text = "\n".join([
        machine_header("Notebook wall times (nbmake, offline)", ["cpu"]),
        f"Each notebook in a fresh `tools/offline.sh python -m pytest --nbmake "
        f"--nbmake-timeout={NB_TIMEOUT_S}` process (pytest, kernel start-up and imports "
        f"included). Budgets: {NOTEBOOK_BUDGET_S:g} s per notebook and "
        f"{TOTAL_BUDGET_S:g} s in all, on a quiet 2-core CPU; a loaded machine is slower.",
        "",
        markdown_table(shown, COLUMNS),
    ])
    print(text)
    print(f"\nwrote {write_report('notebook_times.md', text, args.results)}")
    table = pd.DataFrame(rows, columns=COLUMNS)
    bad = [r for r in rows if r["within budget"] == "**OVER**"
           or r["result"].startswith("FAILED")]
    if args.strict and bad:
        raise SystemExit(1)
    return table


if __name__ == "__main__":
    main()
