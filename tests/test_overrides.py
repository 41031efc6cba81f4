"""Instructor overrides: reading CSV and TOML, validation messages, and merging into results."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.errors import UsageError
from grader.overrides import (
    Override,
    apply_fitting,
    apply_overrides,
    load_overrides,
    overrides_for,
    validate_overrides,
)
from grader.report.gradebook import needs_review, result_json
from grader.results import CheckResult, GradeResult, Outcome, QuestionResult


def result(scores: tuple[float, ...] = (0.8, 3.0), review: bool = True) -> GradeResult:
    outcome = Outcome.UNDECIDED if review else Outcome.PASSED
    check = CheckResult("rubric", "1", "", outcome, scores[0], 2.0)
    return GradeResult(
        "backprop",
        "alice.ipynb",
        "bubblewrap",
        (
            QuestionResult("1", "text", "Why?", scores[0], 2.0, (check,)),
            QuestionResult("5", "code", "backward", scores[1], 4.0, (), unchecked_points=1.0),
        ),
    )


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_and_toml_give_the_same_overrides(tmp_path: Path) -> None:
    csv_path = write(
        tmp_path,
        "o.csv",
        'Student,Question,Points,Comment\nalice,1,1.5,"explained in words, accepted"\n\nbob,5,4,\n',
    )
    toml_path = write(
        tmp_path,
        "o.toml",
        '[[override]]\nstudent = "alice"\nquestion = 1\n'
        'points = 1.5\ncomment = "explained in words, accepted"\n\n'
        '[[override]]\nstudent = "bob"\nquestion = "5"\npoints = 4\n',
    )
    strip = [(o.student, o.question, o.points, o.comment) for o in load_overrides(csv_path)]
    assert strip == [("alice", "1", 1.5, "explained in words, accepted"), ("bob", "5", 4.0, "")]
    assert strip == [
        (o.student, o.question, o.points, o.comment) for o in load_overrides(toml_path)
    ]
    assert load_overrides(csv_path)[1].where == f"{csv_path}:4"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("o.csv", "student,points\nalice,1\n", "missing question"),
        ("o.csv", "student,question,points,grade\nalice,1,1,x\n", "unknown column 'grade'"),
        ("o.csv", "student,question,points\nalice,1,lots\n", "o.csv:2: points = 'lots' must be"),
        ("o.csv", "student,question,points\nalice,1,-1\n", "must be a finite number >= 0"),
        ("o.csv", "student,question,points\n,1,1\n", "student must be a non-empty name"),
        ("o.csv", "student,question,points\nalice,1,1\nalice,1,2\n", "o.csv:3: a second override"),
        ("o.csv", "student,question,points\nalice,1,1,extra\n", "more fields than columns"),
        (
            "o.toml",
            "[[override]]\nstudent = 'a'\nquestion = '1'\npoints = true\n",
            "must be a number",
        ),
        ("o.toml", "override = 3\n", "must be a list"),
        (
            "o.toml",
            "[[override]]\nstudent = 'a'\nquestion = '1'\npoints = 1\nwho = 2\n",
            "unknown key 'who'",
        ),
        ("o.toml", "[x\n", "invalid TOML"),
        ("o.txt", "student,question,points\n", "expected a .csv or .toml"),
    ],
)
def test_bad_files_are_refused_with_the_place_and_value(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    with pytest.raises(UsageError) as info:
        load_overrides(write(tmp_path, name, text))
    assert message in str(info.value)


def test_validation_against_the_assignment() -> None:
    questions = {"backprop": {"1": 2.0, "5": 4.0}, "normal-equation": {"1": 3.0}}
    validate_overrides([Override("a", "1", 3.0)], questions)  # fits normal-equation
    with pytest.raises(UsageError, match="no question '9'"):
        validate_overrides([Override("a", "9", 1.0, where="f:2")], questions)
    with pytest.raises(UsageError, match=r"f:2: points = 5 is more than question 5 is worth \(4\)"):
        validate_overrides([Override("a", "5", 5.0, where="f:2")], questions)
    with pytest.raises(UsageError, match="more than question 1 is worth"):
        validate_overrides([Override("a", "1", 3.0, assignment="backprop", where="f:2")], questions)
    with pytest.raises(UsageError, match="unknown assignment 'x'"):
        validate_overrides([Override("a", "1", 1.0, assignment="x")], questions)


def test_override_replaces_the_score_and_says_so() -> None:
    before = result()
    after = apply_overrides(before, [Override("alice", "1", 1.5, "accepted")])
    q = after.question("1")
    assert q.score == 1.5 and after.score == 4.5
    assert q.override == "automatic score 0.8 / 2 replaced by 1.5: accepted"
    assert q.checks == before.question("1").checks  # the evidence stays as it was
    assert before.needs_review and not needs_review(after)
    data = result_json(after)
    assert data["needs_review"] is False and data["questions"][0]["needs_review"] is False
    assert data["questions"][0]["override"].startswith("automatic score 0.8")
    five = apply_overrides(before, [Override("alice", "5", 4.0)]).question("5")
    assert five.unchecked_points == 0.0 and five.override == "automatic score 3 / 4 replaced by 4"


def test_apply_refuses_unknown_questions_and_too_many_points() -> None:
    with pytest.raises(UsageError, match="has no question '7'"):
        apply_overrides(result(), [Override("alice", "7", 1.0, where="o.csv:2")])
    with pytest.raises(UsageError, match="more than question 1 is worth"):
        apply_overrides(result(), [Override("alice", "1", 2.5)])


def test_apply_fitting_leaves_out_what_does_not_fit_and_says_why() -> None:
    fits = Override("alice", "1", 1.5, where="o.csv:2")
    no_question = Override("alice", "1a", 1.0, where="o.csv:3")
    too_many = Override("alice", "5", 9.0, where="o.csv:4")
    final, refused = apply_fitting(result(), [fits, no_question, too_many])
    assert final == apply_overrides(result(), [fits])
    assert refused == (
        (no_question, "assignment 'backprop' has no question '1a'"),
        (too_many, "points = 9 is more than question 5 is worth (4)"),
    )


def test_overrides_naming_the_assignment_win() -> None:
    general = Override("alice", "1", 1.0, "any")
    specific = Override("alice", "1", 2.0, "backprop only", assignment="backprop")
    other = Override("alice", "1", 0.0, assignment="normal-equation")
    chosen = overrides_for(
        [specific, general, other, Override("bob", "1", 0.0)], "alice", "backprop"
    )
    assert chosen == (general, specific)
    assert apply_overrides(result(), chosen).question("1").score == 2.0


@settings(max_examples=60, derandomize=True)
@given(st.floats(0, 2), st.floats(0, 4), st.floats(0, 2), st.booleans())
def test_total_is_the_sum_with_overridden_points(
    q1: float, q5: float, points: float, review: bool
) -> None:
    before = result((q1, q5), review)
    after = apply_overrides(before, [Override("alice", "1", points)])
    assert after.score == pytest.approx(points + q5, abs=1e-6)
    assert after.max_score == before.max_score
    assert not needs_review(after)
    assert apply_overrides(before, []) == before
