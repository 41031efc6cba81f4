"""A long-lived process (a notebook kernel running ``check``, a batch worker) grades with the
check files and reference as they are now, not as they were when it first loaded them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from grader.assignment import load_assignment
from grader.engine import load_reference
from grader.grading import GradeOptions, grade_path

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "student_submissions" / "backprop" / "seed_student.ipynb"


def outcomes(course: Path) -> dict[str, str]:
    result, _, _ = grade_path(SEED, GradeOptions(course=course, questions=("3",)))
    return {c.name: c.outcome.value for c in result.question("3").checks}


def touch_later(path: Path, text: str) -> None:
    before = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 10**9, before + 10**9))  # a coarse clock cannot hide it


@pytest.mark.slow
def test_an_edited_check_file_is_loaded_again(tmp_path: Path) -> None:
    for part in ("assignments", "solutions"):
        shutil.copytree(ROOT / part, tmp_path / part)
    assert outcomes(tmp_path)["sigmoid(0) is 0.5"] == "passed"
    checks = tmp_path / "assignments" / "backprop" / "checks" / "check_code.py"
    text = checks.read_text(encoding="utf-8")
    edited = text.replace(
        '    """sigmoid(0) is 0.5"""\n', '    """sigmoid(0) is 0.5"""\n    assert False\n', 1
    )
    assert edited != text
    touch_later(checks, edited)
    assert outcomes(tmp_path)["sigmoid(0) is 0.5"] != "passed"
    touch_later(checks, text)
    assert outcomes(tmp_path)["sigmoid(0) is 0.5"] == "passed"


def test_an_edited_reference_is_loaded_again(tmp_path: Path) -> None:
    for part in ("assignments", "solutions"):
        shutil.copytree(ROOT / part, tmp_path / part)
    assignment = load_assignment(tmp_path, "backprop")
    first = load_reference(assignment)
    assert first is not None and load_reference(assignment) is first  # unchanged: kept
    path = tmp_path / "solutions" / "backprop" / "reference.py"
    touch_later(path, path.read_text(encoding="utf-8") + "\nEDITED = True\n")
    again = load_reference(assignment)
    assert again is not first and getattr(again, "EDITED", False)
