"""`grade check-solutions`: reference answers, `# loses:` lines, judging, and the real run.

The unit tests build small results by hand; the slow tests run the real command over every
assignment (references, mutants and templates in the sandbox), as CI does.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from grader.assignment import load_assignment
from grader.errors import SpecError
from grader.results import CheckResult, GradeResult, Outcome, QuestionResult
from grader.solutions import (
    Case,
    Verdict,
    answered,
    check_solutions,
    judge,
    parse_loses,
    reference_answers,
    render,
    write_reference_submission,
)
from grader.submission import read_submission

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = ("backprop", "normal-equation", "rnn-lstm", "update-rules")


def _check(qid: str, score: float, max_score: float, outcome: Outcome | None = None) -> CheckResult:
    if outcome is None:
        outcome = Outcome.PASSED if score >= max_score else Outcome.FAILED
    return CheckResult(
        name=f"check of {qid}",
        question=qid,
        description="",
        outcome=outcome,
        score=score,
        max_score=max_score,
        message="wrong" if score < max_score else "",
    )


def _result(aid: str, scores: dict[str, list[tuple[float, float]]]) -> GradeResult:
    assignment = load_assignment(ROOT, aid)
    questions = []
    for q in assignment.questions:
        checks = tuple(_check(q.id, s, m) for s, m in scores.get(q.id, []))
        covered = sum(c.max_score for c in checks)
        questions.append(
            QuestionResult(
                id=q.id,
                kind=q.kind,
                title=q.title,
                score=sum(c.score for c in checks),
                max_score=q.points,
                checks=checks,
                unchecked_points=q.points - covered,
            )
        )
    return GradeResult(
        assignment=aid, submission="x", sandbox="process", questions=tuple(questions)
    )


# --- answers.toml and the reference submission ------------------------------------------------


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_reference_answers_cover_every_non_code_question(aid: str) -> None:
    assignment = load_assignment(ROOT, aid)
    answers = reference_answers(assignment)
    for q in assignment.questions:
        if q.kind == "code":
            continue
        names = set(q.answer_names) or {q.answer_variable}
        assert names <= set(answers), f"{aid} question {q.id}: no reference answer"
        assert all(answers[n].strip() for n in names)


def test_reference_answers_reject_unknown_questions_and_names(tmp_path: Path) -> None:
    for i, (text, fragment) in enumerate(
        (
            ('[answers]\n"9" = "x"\n', "unknown question '9'"),
            ('[answers."2"]\ndL_dw9 = "x"\n', "'dL_dw9' is not one of its answer_names"),
            ('[answers]\n"3" = "def sigmoid(z): ..."\n', "is a code question"),
            ('[answers]\n"1" = 3\n', "must be a string or a table"),
        )
    ):
        course = tmp_path / str(i)
        (course / "assignments").mkdir(parents=True)
        (course / "assignments" / "backprop").symlink_to(ROOT / "assignments" / "backprop")
        private = course / "solutions" / "backprop"
        private.mkdir(parents=True)
        (private / "answers.toml").write_text(text, encoding="utf-8")
        with pytest.raises(SpecError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
            reference_answers(load_assignment(course, "backprop"))


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_reference_submission_defines_functions_and_answers(aid: str, tmp_path: Path) -> None:
    assignment = load_assignment(ROOT, aid)
    sub = read_submission(write_reference_submission(assignment, tmp_path))
    assert sub.assignment_hint == aid
    defined = sub.defined_names()
    assert assignment.functions <= set(defined)
    assert answered(sub, assignment) == {q.id for q in assignment.questions if q.kind != "code"}


# --- mutants -------------------------------------------------------------------------------------


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_each_assignment_has_six_mutants_with_loses_lines(aid: str) -> None:
    assignment = load_assignment(ROOT, aid)
    mutants = sorted((ROOT / "solutions" / aid / "mutants").glob("*.py"))
    assert len(mutants) >= 6
    code = {q.id for q in assignment.questions if q.kind == "code"}
    lost = set()
    for path in mutants:
        loses = parse_loses(path, assignment)
        assert loses
        lost |= loses
        sub = read_submission(path)
        assert sub.assignment_hint == aid
        assert assignment.functions <= set(sub.defined_names()), f"{path.name} lacks functions"
    assert code <= lost, f"some code questions of {aid} have no mutant: {sorted(code - lost)}"


def test_parse_loses_errors(tmp_path: Path) -> None:
    assignment = load_assignment(ROOT, "backprop")
    path = tmp_path / "m.py"
    path.write_text("# loses: 3,5\nx = 1\n")
    assert parse_loses(path, assignment) == {"3", "5"}
    path.write_text("# LOSES 3\nx = 1\n")
    with pytest.raises(SpecError, match="needs a '# loses: Q"):
        parse_loses(path, assignment)
    path.write_text("# loses: 3, 9\n")
    with pytest.raises(SpecError, match="got '3, 9'"):
        parse_loses(path, assignment)


# --- judging -------------------------------------------------------------------------------------


def _judge(
    role: str,
    scores: dict[str, list[tuple[float, float]]],
    loses: frozenset[str] = frozenset(),
    source: str = "x = 1\n",
) -> Verdict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.py"
        path.write_text(source, encoding="utf-8")
        sub = read_submission(path)
    assignment = load_assignment(ROOT, "backprop")
    return judge(
        Case("backprop", role, "m", path, loses), _result("backprop", scores), assignment, sub
    )


FULL_CODE = {"3": [(2, 2)], "4": [(1, 1), (1, 1)], "5": [(4, 4)], "6": [(2, 2), (2, 2)]}


def test_judge_reference_needs_full_marks_and_full_coverage() -> None:
    full = {**FULL_CODE, "1": [(2, 2)], "2": [(1, 1)] * 4}
    assert _judge("reference", full).ok
    partial = {**full, "5": [(3, 4)]}
    verdict = _judge("reference", partial)
    assert not verdict.ok and "Q5: reference scored 3/4" in verdict.problems[0]
    thin = {**full, "6": [(2, 2)]}
    assert "checks cover only 2 of 4 points" in _judge("reference", thin).problems[0]
    unchecked = {k: v for k, v in full.items() if k != "1"}
    verdict = _judge("reference", unchecked)
    assert verdict.ok and verdict.notes == ("Q1 has no checks yet",)


def test_judge_reference_must_pass_its_checks_worth_no_points() -> None:
    full = {**FULL_CODE, "1": [(2, 2)], "2": [(1, 1)] * 4, "5": [(4, 4), (0, 0)]}
    assert _judge("reference", full).ok
    result = _result("backprop", full)
    five = result.question("5")
    agrees = replace(five.checks[1], outcome=Outcome.FAILED, message="formulas disagree\nmore")
    result = result.with_questions(
        tuple(
            replace(q, checks=(q.checks[0], agrees)) if q.id == "5" else q for q in result.questions
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.py"
        path.write_text("x = 1\n", encoding="utf-8")
        sub = read_submission(path)
    case = Case("backprop", "reference", "m", path)
    verdict = judge(case, result, load_assignment(ROOT, "backprop"), sub)
    assert verdict.problems == (
        "Q5: the reference fails 'check of 5', a check worth no points (formulas disagree)",
    )


def test_judge_mutant_loses_exactly_its_questions() -> None:
    lost5 = {**FULL_CODE, "5": [(2, 4)]}
    assert _judge("mutant", lost5, frozenset({"5"})).ok
    assert _judge("mutant", FULL_CODE, frozenset({"5"})).problems == (
        "Q5: should lose points but scored full marks",
    )
    also4 = {**lost5, "4": [(0, 1), (1, 1)]}
    problems = _judge("mutant", also4, frozenset({"5"})).problems
    assert len(problems) == 1 and problems[0].startswith("Q4: lost points it should keep")
    # Non-code questions count only when the mutant answers them.
    text_lost = {**FULL_CODE, "1": [(0, 2)]}
    assert _judge("mutant", text_lost).ok
    assert not _judge("mutant", text_lost, source="answer_1 = 'chain rule'\n").ok


def test_judge_names_points_that_no_check_covers() -> None:
    thin = {**FULL_CODE, "6": [(2, 2)]}  # Q6 is worth 4: 2 points are covered by no check
    (problem,) = _judge("mutant", thin, frozenset()).problems
    assert (
        problem
        == "Q6: lost points it should keep, 2/4 (no check failed; 2 points are covered by no check)"
    )


def test_judge_template_must_score_zero() -> None:
    zero = {q: [(0, m) for _, m in checks] for q, checks in FULL_CODE.items()}
    assert _judge("template", zero).ok
    some = {**zero, "3": [(0.5, 0.5), (0, 1.5)]}
    verdict = _judge("template", some)
    assert verdict.problems == ("Q3: the blank template scored 0.5 (checks passed: check of 3)",)


def test_render_marks_failures() -> None:
    assignment = load_assignment(ROOT, "backprop")
    good = _judge("mutant", {**FULL_CODE, "5": [(2, 4)]}, frozenset({"5"}))
    bad = _judge("mutant", FULL_CODE, frozenset({"5"}))
    text = render([good, bad], {"backprop": assignment})
    assert "  ok   mutant m" in text and "  FAIL mutant m" in text
    assert "✗ Q5: should lose points" in text
    assert "1 of 2 cases as expected; 1 FAILED" in text


# --- the real run ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def verdicts() -> list[Verdict]:
    return check_solutions(ROOT, list(ASSIGNMENTS), jobs=2)


@pytest.mark.slow
def test_check_solutions_code_questions(verdicts: list[Verdict]) -> None:
    """References, mutants and templates behave on every code question."""
    code = {
        aid: {q.id for q in load_assignment(ROOT, aid).questions if q.kind == "code"}
        for aid in ASSIGNMENTS
    }
    problems = [
        f"{v.case.assignment} {v.case.name}: {p}"
        for v in verdicts
        for p in v.problems
        if p.split(":")[0][1:] in code[v.case.assignment]
    ]
    assert not problems, "\n".join(problems)
    roles = {(v.case.assignment, v.case.role) for v in verdicts}
    assert {(a, r) for a in ASSIGNMENTS for r in ("reference", "mutant", "template")} <= roles


@pytest.mark.slow
def test_check_solutions_all_hold(verdicts: list[Verdict]) -> None:
    """What CI requires: every expectation holds on every question."""
    failed = [
        f"{v.case.assignment} {v.case.name}: {'; '.join(v.problems)}" for v in verdicts if not v.ok
    ]
    assert not failed, "\n".join(failed)


def test_check_solutions_command_reports_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    from grader.cli import main as cli_main

    assert cli_main(["check-solutions", "no-such-assignment"]) == 2
    assert "unknown assignment 'no-such-assignment'" in capsys.readouterr().err
