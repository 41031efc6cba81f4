"""The pytest session kept between submissions in one process changes no result.

A worker grades many submissions with one collected pytest session (``engine.KeptSession``)
and remembers rendered cells and parsed names. Nothing of one submission may reach the next:
each result must be the one a fresh ``pytest.main`` per submission gives, whatever was graded
before it in the same process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from comparable import comparable

from grader import engine
from grader.assignment import load_assignment
from grader.grading import SandboxFactory, grade_submission
from grader.report.html import render_report
from grader.submission import read_submission

ROOT = Path(__file__).resolve().parent.parent
FILES = [
    ROOT / "student_submissions" / "backprop" / "seed_student.ipynb",
    ROOT / "tests" / "corpus" / "backprop" / "missing_factor.ipynb",
    ROOT / "student_submissions" / "backprop" / "mistake_sign_error.ipynb",
]


def _grade_all(order: list[tuple[Path, tuple[str, ...] | None]]) -> list[Any]:
    assignment = load_assignment(ROOT, "backprop", use_solutions=True)
    factory = SandboxFactory("auto", allow_fallback=True)
    out = []
    for path, questions in order:
        sub = read_submission(path)
        result = grade_submission(sub, assignment, factory, questions=questions)
        html = render_report(result, sub, assignment, student=path.stem)
        out.append((comparable(result.to_json()), "cell-0" in html))
    return out


def test_a_kept_session_grades_like_a_fresh_one(monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[tuple[Path, tuple[str, ...] | None]] = [
        (FILES[0], None),
        (FILES[1], None),
        (FILES[0], ("3", "5")),
        (FILES[2], None),
        (FILES[0], None),
    ]
    engine._drop_kept()
    kept = _grade_all(order)
    assert engine._KEPT, "the session was not kept"
    engine._drop_kept()
    monkeypatch.setattr(engine, "_kept_session", lambda *args: None)
    fresh = _grade_all(order)
    assert kept == fresh
    # The same file graded after other submissions gets the same result.
    assert kept[0] == kept[4]
    assert kept[0] != kept[1]
