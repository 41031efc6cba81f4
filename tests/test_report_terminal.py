"""The terminal summary and question status: unchecked points and long messages."""

from __future__ import annotations

from grader.report.html import question_status
from grader.report.terminal import summary
from grader.results import CheckResult, GradeResult, Outcome, QuestionResult


def result(checks: tuple[CheckResult, ...], *, unchecked: float, score: float) -> GradeResult:
    q = QuestionResult("4", "code", "forward", score, 2.0, checks, unchecked_points=unchecked)
    return GradeResult("backprop", "s.ipynb", "bubblewrap", (q,), solutions_available=False)


def test_points_that_could_not_be_checked_are_not_shown_as_lost() -> None:
    passed = CheckResult("known values", "4", "", Outcome.PASSED, 1.0, 1.0)
    graded = result((passed,), unchecked=1.0, score=1.0)
    text = summary(graded)
    assert "✗" not in text and "  – Q4" in text
    assert "1 point not checked here" in text and "1 points" not in text
    assert question_status(graded.questions[0])[0] == "unchecked"
    assert "1 point not checked here" in question_status(graded.questions[0])[3]
    failed = CheckResult("known values", "4", "", Outcome.FAILED, 0.0, 1.0)
    assert question_status(result((failed,), unchecked=1.0, score=0.0).questions[0])[0] == "zero"


def test_long_messages_wrap_at_words_and_lose_nothing() -> None:
    words = [f"word{i}" for i in range(60)]
    failed = CheckResult(
        "check", "4", "", Outcome.FAILED, 0.0, 2.0, message=" ".join(words), hint="try " * 40
    )
    text = summary(result((failed,), unchecked=0.0, score=0.0))
    lines = text.splitlines()
    assert all(len(line) <= 100 for line in lines)
    assert all(w in text.split() for w in words)  # every word whole, none cut


def test_a_skipped_check_shows_no_points_lost() -> None:
    passed = CheckResult("known values", "4", "", Outcome.PASSED, 1.0, 1.0)
    skipped = CheckResult(
        "against the reference", "4", "", Outcome.SKIPPED, 0.0, 1.0, message="not installed"
    )
    text = summary(result((passed, skipped), unchecked=1.0, score=1.0))
    assert "against the reference: not installed" in text and "-1 " not in text


def test_points_are_written_with_their_number() -> None:
    from grader.results import points_text

    assert [points_text(x) for x in (1.0, 2.0, 0.5, 1 / 3)] == [
        "1 point",
        "2 points",
        "0.5 points",
        "0.333 points",
    ]
