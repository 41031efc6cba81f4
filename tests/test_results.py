"""The result model round-trips through JSON and sums its scores."""

from __future__ import annotations

import json

from grader.results import (
    ArrayDiff,
    CellRun,
    CheckResult,
    GradeResult,
    GradientRow,
    GradientTable,
    Outcome,
    QuestionResult,
    RubricMatch,
)


def sample() -> GradeResult:
    table = GradientTable(
        rows=(GradientRow("w1", 0.1, 0.2, 0.33, False, (0,)),), tolerance=1e-5, step=1e-6
    )
    check = CheckResult(
        name="grads",
        question="5",
        description="d",
        outcome=Outcome.FAILED,
        score=2.0,
        max_score=4.0,
        message="off",
        hint="h",
        details=(table, ArrayDiff("a", (3,), (3, 1)), RubricMatch("i", "desc", True, 1.0, 1.0)),
    )
    review = CheckResult(
        name="t", question="1", description="", outcome=Outcome.UNDECIDED, score=1.0, max_score=2.0
    )
    return GradeResult(
        assignment="backprop",
        submission="s.ipynb",
        sandbox="bubblewrap",
        questions=(
            QuestionResult("5", "code", "backward", 2.0, 4.0, (check,)),
            QuestionResult("1", "text", "why", 1.0, 2.0, (review,), unchecked_points=0.5),
        ),
        cells=(CellRun(0, False, "SyntaxError", "bad", notes=("n",)),),
    )


def test_round_trip_through_json() -> None:
    result = sample()
    data = json.loads(json.dumps(result.to_json()))
    assert GradeResult.from_json(data) == result


def test_totals_and_review_flags() -> None:
    result = sample()
    assert result.score == 3.0 and result.max_score == 6.0
    assert result.unchecked_points == 0.5
    assert result.needs_review and not result.full_marks
    data = result.to_json()
    assert data["schema_version"] == 1 and data["needs_review"] is True
    assert data["questions"][0]["checks"][0]["outcome"] == "failed"
