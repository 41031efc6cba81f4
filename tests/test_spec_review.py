"""How an assignment's spec and check files are loaded: broken ones stop with a clear error.

Each test builds a broken course in ``tmp_path`` (a copy of ``assignments/`` and ``solutions/``
with one change) and loads or grades against it as ``grade`` does.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader.assignment import find_course_dir
from grader.cli import main

ROOT = Path(__file__).resolve().parent.parent


def make_course(tmp_path: Path) -> Path:
    course = tmp_path / "course"
    shutil.copytree(ROOT / "assignments", course / "assignments")
    shutil.copytree(ROOT / "solutions", course / "solutions")
    return course


def reference_submission(folder: Path) -> Path:
    """The backprop reference as a module that names its assignment."""
    path = folder / "ref_bp.py"
    text = (ROOT / "solutions" / "backprop" / "reference.py").read_text(encoding="utf-8")
    path.write_text(text + '\n__assignment__ = "backprop"\n', encoding="utf-8")
    return path


# --- the course folder ---------------------------------------------------------------------------


def test_a_relative_course_folder_is_found_as_an_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_course(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert find_course_dir("course") == tmp_path.resolve() / "course"
    monkeypatch.setenv("GRADER_COURSE_DIR", "course")
    assert find_course_dir() == tmp_path.resolve() / "course"


@pytest.mark.slow
@pytest.mark.parametrize("how", ["option", "environment"])
def test_grading_with_a_relative_course_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    make_course(tmp_path)
    sub = reference_submission(tmp_path)
    monkeypatch.chdir(tmp_path)
    args = [str(sub.resolve()), "--no-report", "-q", "3"]
    if how == "option":
        args += ["--course", "course"]
    else:
        monkeypatch.setenv("GRADER_COURSE_DIR", "course")
    assert main(args) == 0, capsys.readouterr().err
