"""The instructor's path with nbgrader itself: generate, autograde four submissions, export.

A throw-away course directory in ``tmp_path`` gets the source of assignment 1 and the
course config ``tools/nbgrader_config.py``. ``nbgrader generate_assignment`` writes the
student version; five students submit it filled in: one correct, one wrong (modalities in
the dict's order), one whose code raises, one whose code never returns and one whose code
kills the kernel.
``nbgrader autograde`` grades them with a short per-cell timeout, ``nbgrader export``
writes the CSV, and the test asserts every score, and that the hanging and the killing
part got 0 with the reason while the student's other part was still graded.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("nbgrader")
nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).resolve().parents[1]
NAME = "a01_feature_fusion"
SOURCE = ROOT / "notebooks" / "assignments" / f"{NAME}.ipynb"
TIMEOUT = 20  # seconds per cell (importing torch on a busy machine takes ~10); the config: 60

CORRECT = {cell.metadata["nbgrader"]["grade_id"]: cell.source
           for cell in nbformat.read(SOURCE, as_version=4).cells
           if cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code"}
WRONG_CONCAT = '''
import torch

def concat_fusion(features, present=None):
    return torch.cat([features[m] for m in features], dim=-1)
'''
CRASH_CONCAT = '''
def concat_fusion(features, present=None):
    raise RuntimeError("my code is broken")
'''
KILL_CONCAT = '''
import os

def concat_fusion(features, present=None):
    os._exit(1)  # the kernel process ends here
'''
HANG_CONCAT = '''
def concat_fusion(features, present=None):
    while True:
        pass
'''
STUDENTS = {
    "correct": {},
    "wrong": {"a01_concat_solution": WRONG_CONCAT},
    "crashing": {"a01_concat_solution": CRASH_CONCAT},
    "hanging": {"a01_concat_solution": HANG_CONCAT},
    "killing": {"a01_concat_solution": KILL_CONCAT},
}
# concat is worth 2 points, the weighted sum 3: every other student still gets the 3
EXPECTED = {"correct": 5.0, "wrong": 3.0, "crashing": 3.0, "hanging": 3.0, "killing": 3.0}


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    # nbgrader runs the `alembic` command (its database migrations) from PATH: the venv's
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": path}
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
        capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    course = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "tools" / "nbgrader_config.py", course / "nbgrader_config.py")
    (course / "source" / NAME).mkdir(parents=True)
    shutil.copy(SOURCE, course / "source" / NAME / SOURCE.name)
    nbgrader(course, "generate_assignment", NAME)
    release = course / "release" / NAME / SOURCE.name
    for student, answers in STUDENTS.items():
        nb = nbformat.read(release, as_version=4)
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid in CORRECT:
                cell.source = answers.get(gid, CORRECT[gid])
        folder = course / "submitted" / student / NAME
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / SOURCE.name)
    nbgrader(course, "autograde", NAME, "--create", f"--Execute.timeout={TIMEOUT}")
    nbgrader(course, "export", "--to", "grades.csv")
    return course


def test_generate_assignment_writes_the_student_version(course):
    nb = nbformat.read(course / "release" / NAME / SOURCE.name, as_version=4)
    text = "\n".join(cell.source for cell in nb.cells)
    assert "### BEGIN SOLUTION" not in text and "torch.cat" not in text
    assert text.count("raise NotImplementedError()") == 3  # concat, __init__, forward
    assert "check_concat_fusion(concat_fusion)" in text  # the checks stay


def test_the_csv_has_every_score(course):
    with open(course / "grades.csv", newline="") as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f)}
    assert set(rows) == set(STUDENTS)
    assert {s: float(r["score"]) for s, r in rows.items()} == EXPECTED
    assert {float(r["max_score"]) for r in rows.values()} == {5.0}


def outputs(course: Path, student: str, grade_id: str) -> list[dict]:
    nb = json.loads((course / "autograded" / student / NAME / SOURCE.name).read_text())
    (cell,) = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id")
               == grade_id]
    return cell["outputs"]


def test_zero_parts_say_why(course):
    def errors(student):
        return [o for o in outputs(course, student, "a01_concat_check")
                if o["output_type"] == "error"]

    # the interrupt shows as KeyboardInterrupt, and nbgrader adds its timeout error
    hang = {o["ename"] for o in errors("hanging")}
    assert "CellTimeoutError" in hang or "KeyboardInterrupt" in hang, hang
    (crash,) = errors("crashing")
    assert crash["ename"] == "CheckFailed" and "RuntimeError: my code is broken" in crash["evalue"]
    (wrong,) = errors("wrong")
    assert "sort the modality names" in wrong["evalue"]
    assert errors("correct") == []
    assert {o["ename"] for o in errors("killing")} == {"DeadKernelError"}
    # after the interrupted cell, and in a new kernel after the dead one, part B ran and passed
    for student in ("hanging", "killing"):
        text = "".join("".join(o.get("text", ""))
                       for o in outputs(course, student, "a01_wsum_check"))
        assert "check_weighted_sum: all" in text, student
