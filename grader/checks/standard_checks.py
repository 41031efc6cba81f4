"""Built-in checks for text, symbolic and derivation questions: one set for every assignment.

A pytest check file that the engine adds to every assignment's checks. Its tests are
parametrised from the assignment spec (``pytest_generate_tests``), so an instructor writes no
code for these question kinds: rubrics and derivation settings live in ``spec.toml``, reference
formulas in ``solutions/<id>/answers.toml``. Runs in the trusted parent; the student's answers
arrive as text (SymPy values as their printed form) and go through the grader's own reader.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from typing import Any

import pytest

from grader.answers import Answer, Answers
from grader.assignment import Assignment, Question
from grader.checks.record import CheckRecorder
from grader.engine import CTX_KEY, MARKER
from grader.errors import CheckFailed, CheckProblem, NotCheckable, SpecError, Undecided
from grader.results import DerivationStep, MathAnswer, TextNote

_DERIVATIVE_NAME = re.compile(r"^d(?P<num>[A-Za-z]\w*?)_d(?P<den>[A-Za-z]\w*)$")


def _mark(q: Question, points: float, name: str) -> Any:
    return getattr(pytest.mark, MARKER)(question=q.id, points=points, name=name)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    ctx = metafunc.config.stash[CTX_KEY]
    assignment: Assignment = ctx.assignment
    func = metafunc.function.__name__
    params = []
    for q in assignment.questions:
        if func == "check_text_answer" and q.kind == "text":
            params.append(
                pytest.param(
                    (q.id, ""),
                    id=q.id,
                    marks=_mark(q, q.points, f"answer {q.id} against the rubric"),
                )
            )
        elif func == "check_symbolic_answer" and q.kind == "symbolic":
            names = list(q.answer_names) or [""]
            share = round(q.points / len(names), 6)
            for name in names:
                label = _pretty(name) if name else f"answer {q.id}"
                params.append(
                    pytest.param(
                        (q.id, name), id=f"{q.id}-{name or 'answer'}", marks=_mark(q, share, label)
                    )
                )
        elif func == "check_derivation_final" and q.kind == "derivation":
            params.append(
                pytest.param(
                    (q.id, ""),
                    id=q.id,
                    marks=_mark(q, _final_points(q), "the derivation's final answer"),
                )
            )
        elif func == "check_derivation_steps" and q.kind == "derivation":
            params.append(
                pytest.param(
                    (q.id, ""),
                    id=q.id,
                    marks=_mark(
                        q, round(q.points - _final_points(q), 6), "every step of the derivation"
                    ),
                )
            )
    metafunc.parametrize("part", params)


def _final_points(q: Question) -> float:
    value = q.extra.get("final_points", q.points / 2)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= q.points:
        raise SpecError(
            f"question {q.id}: final_points = {value!r} must be between 0 and {q.points:g}"
        )
    return float(value)


def _pretty(name: str) -> str:
    m = _DERIVATIVE_NAME.match(name)
    return f"∂{m['num']}/∂{m['den']}" if m else name


# --- shared fixtures (one grading run) -----------------------------------------------------


@pytest.fixture(scope="session")
def symbol_table(assignment: Assignment) -> Any:
    from grader.checks.math import SymbolTable

    try:
        return SymbolTable.from_mapping(assignment.symbols)
    except SpecError as exc:  # the table is built here, long after the spec was read
        raise SpecError(f"{assignment.spec_path}: [symbols]: {exc}") from None


@pytest.fixture(scope="session")
def reference_answers(assignment: Assignment) -> Mapping[str, Any]:
    path = assignment.answers_path()
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the reference answers: {exc}") from exc
    return data


@pytest.fixture(scope="session")
def scans() -> dict[str, Any]:
    """Each multi-equation answer is scanned once for all the derivatives it should name."""
    return {}


@pytest.fixture(scope="session")
def derivations() -> dict[str, Any]:
    """Each derivation is judged once and shared by its two checks."""
    return {}


def _expected(reference_answers: Mapping[str, Any], qid: str, name: str) -> str:
    entry = reference_answers.get("answers", {}).get(qid)
    if isinstance(entry, Mapping):
        entry = entry.get(name)
    if not isinstance(entry, str):
        raise NotCheckable(
            "this answer is checked against the reference solution, which is not installed here"
        )
    return entry


MAX_ANSWER = 20_000  # characters: about ten pages, far beyond any answer to a question


def _refuse_too_long(ans: Answer) -> None:
    """Reading and scoring take time that grows with the answer: a huge one goes to review."""
    if len(ans.text) > MAX_ANSWER:
        raise Undecided(
            f"your answer is {len(ans.text):,} characters long; answers over {MAX_ANSWER:,} "
            "characters are not checked automatically; flagged for review",
            credit=0.0,
        )


def _missing(q: Question, name: str = "", answers: Answers | None = None) -> CheckFailed:
    for var in (name, f"answer_{q.id}"):
        problem = answers.problems.get(var) if answers is not None and var else None
        if problem:  # it is defined, but the code stopped before it could give its value
            return CheckFailed(
                f"your answer `{var}` is in your code, but your code stopped before giving its "
                f"value ({problem.rstrip('.')})",
                hint="make every cell run from top to bottom without errors, then grade again",
            )
    how = (f"a variable `{name}` or " if name else "") + (
        f"a variable `answer_{q.id}`, a markdown cell tagged `answer:{q.id}`, or a markdown "
        f"cell starting with `**Answer {q.id}**`"
    )
    return CheckFailed(f"no answer to question {q.id} was found", hint=f"give it as {how}")


def _note_source(answers: Answers, q: Question, ans: Answer) -> None:
    answers.note_source(q.id, ans.source, ans.cell)


# --- text ------------------------------------------------------------------------------------


def check_text_answer(
    part: tuple[str, str], answers: Answers, assignment: Assignment, record: CheckRecorder
) -> None:
    """your answer, scored item by item against the question's rubric (provisional)"""
    from grader.checks.text import Rubric, score_text, to_details

    q = assignment.question(part[0])
    rubric = Rubric.from_spec(q.rubric, where=f"{assignment.spec_path}: question {q.id}")
    ans = answers.get(q.id)
    if ans is None:
        raise _missing(q, answers=answers)
    _refuse_too_long(ans)
    result = score_text(ans.text, rubric)
    for detail in to_details(result):
        record.detail(detail)
    for note in result.notes:
        record.note(note)
    fraction = result.score / result.max_score if result.max_score else 0.0
    missed = [i.description for i in result.items if not i.matched]
    message = (
        "covers every rubric item" if not missed else "not (clearly) covered: " + "; ".join(missed)
    )
    if result.needs_review:
        raise Undecided(f"provisional score, flagged for review: {message}", credit=fraction)
    record.award(fraction, message)


# --- symbolic ---------------------------------------------------------------------------------


def _student_reading(
    q: Question, name: str, answers: Answers, table: Any, scans: dict[str, Any]
) -> tuple[Any, Answer]:
    from grader.checks.math import ReadError, read, read_value, scan_derivative_equations

    if name:
        ans = answers.variable(name, q.id)
        if ans is not None:
            _refuse_too_long(ans)
            reading = read_value(ans.text, table) if ans.from_sympy else read(ans.text, table)
            return reading, ans
    ans = answers.get(q.id)
    if ans is None:
        raise _missing(q, name, answers)
    _refuse_too_long(ans)
    if not name:
        return (read_value(ans.text, table) if ans.from_sympy else read(ans.text, table)), ans
    m = _DERIVATIVE_NAME.match(name)
    if m is None:
        raise SpecError(f"question {q.id}: answer name {name!r} must look like dL_dw1")
    if q.id not in scans:  # one pass over the answer finds every derivative it names
        wanted = {
            n: (d["num"], d["den"]) for n in q.answer_names if (d := _DERIVATIVE_NAME.match(n))
        }
        scans[q.id] = scan_derivative_equations(ans.text, table, wanted)
    value = scans[q.id].get(name)
    if value is None:
        raise CheckFailed(
            f"{_pretty(name)} was not found in your answer to question {q.id}",
            hint=f"write it as an equation whose left side names it, e.g. "
            f"\\frac{{\\partial {m['num']}}}{{\\partial {m['den']}}} = …, or as `{name}`",
        )
    if isinstance(value, ReadError):
        raise value
    return value, ans


def check_symbolic_answer(
    part: tuple[str, str],
    answers: Answers,
    assignment: Assignment,
    symbol_table: Any,
    reference_answers: Mapping[str, Any],
    record: CheckRecorder,
    seed: int,
    scans: dict[str, Any],
) -> None:
    """your formula compared with the correct one, numerically and symbolically"""
    from grader.checks.math import Variant, Verdict, diagnose, equivalent, read

    qid, name = part
    q = assignment.question(qid)
    expected = _expected(reference_answers, qid, name or "answer")
    label = _pretty(name) if name else f"answer {qid}"
    want = read(expected, symbol_table)
    try:
        reading, ans = _student_reading(q, name, answers, symbol_table, scans)
    except CheckProblem as exc:  # e.g. an unreadable formula: still say what was expected
        exc.expected = exc.expected or _expected_text(label, want)
        raise
    _note_source(answers, q, ans)
    record.detail(
        MathAnswer(
            label=label, source=ans.text[:2000], read_as=reading.read_as(), mathml=reading.mathml()
        )
    )
    verdict = equivalent(reading, want, symbol_table, seed=seed)
    if verdict.verdict is Verdict.EQUIVALENT:
        record.award(1.0, f"{label} is correct")
        return
    if verdict.verdict is Verdict.UNDECIDED:
        raise Undecided(
            f"{label}: the grader could not decide ({verdict.reason}); flagged for review"
        )
    extra = []
    for mistake in reference_answers.get("mistakes", {}).get(qid, []):
        if isinstance(mistake, Mapping) and mistake.get("part", name) == name:
            extra.append(
                Variant(
                    name=str(mistake.get("name", "known mistake")),
                    expr=read(str(mistake["expr"]), symbol_table).expr,
                    hint=str(mistake.get("hint", "")),
                    credit=float(mistake.get("credit", 0.0)),
                )
            )
    variant = diagnose(reading, want, symbol_table, extra=extra, seed=seed)
    raise CheckFailed(
        f"{label} is not correct: {verdict.reason}",
        hint=variant.hint if variant else "",
        credit=variant.credit if variant else 0.0,
        expected=_expected_text(label, want),
        actual=reading.read_as(),
    )


def _expected_text(label: str, want: Any) -> str:
    return f"{label} equivalent to {want.read_as()}"


# --- derivations ------------------------------------------------------------------------------


def _derivation(
    qid: str,
    answers: Answers,
    assignment: Assignment,
    symbol_table: Any,
    derivations: dict[str, Any],
    seed: int,
) -> Any:
    from grader.checks.math import check_derivation

    if qid in derivations:
        return derivations[qid]
    q = assignment.question(qid)
    ans = answers.get(qid)
    if ans is None:
        raise _missing(q, answers=answers)
    _refuse_too_long(ans)
    _note_source(answers, q, ans)
    start, variable, final = q.extra.get("start"), q.extra.get("variable"), q.extra.get("final")
    if not isinstance(start, str) or not isinstance(variable, str) or not isinstance(final, list):
        raise SpecError(
            f"{assignment.spec_path}: derivation question {qid} needs `start`, "
            "`variable` and a list `final`"
        )
    result = check_derivation(
        list(ans.steps) or ans.text,
        symbol_table,
        start=start,
        variable=variable,
        final_expected=[str(f) for f in final],
        seed=seed,
    )
    derivations[qid] = result
    return result


def _step_details(result: Any, record: CheckRecorder) -> None:
    for step in result.steps:
        record.detail(
            DerivationStep(
                index=step.index,
                source=step.source[:1000],
                read_as=step.read_as or "",
                status=step.status,
                reason=step.reason,
                mathml=step.mathml or "",
            )
        )


def check_derivation_final(
    part: tuple[str, str],
    answers: Answers,
    assignment: Assignment,
    symbol_table: Any,
    derivations: dict[str, Any],
    record: CheckRecorder,
) -> None:
    """the derivation ends in the right result"""
    from grader.checks.math import Verdict

    result = _derivation(part[0], answers, assignment, symbol_table, derivations, seed=0)
    if result.final is None:
        raise CheckFailed("the derivation has no final step that could be read")
    if result.final_step is not None:
        record.note(f"final step judged: {result.final_step.source.strip()[:200]}")
    if result.final.verdict is Verdict.EQUIVALENT:
        record.award(1.0, "the final result is right")
        return
    if result.final.verdict is Verdict.UNDECIDED:
        raise Undecided(f"the final result could not be decided: {result.final.reason}")
    raise CheckFailed(f"the final result is not right: {result.final.reason}")


def check_derivation_steps(
    part: tuple[str, str],
    answers: Answers,
    assignment: Assignment,
    symbol_table: Any,
    derivations: dict[str, Any],
    record: CheckRecorder,
) -> None:
    """every step follows from the one before (✓ valid, ✗ invalid, ? could not be read)"""
    result = _derivation(part[0], answers, assignment, symbol_table, derivations, seed=0)
    _step_details(result, record)
    if result.first_invalid is not None:
        bad = next(s for s in result.steps if s.index == result.first_invalid)
        if len(result.steps) == 1:  # nothing to follow from: the reason says what is missing
            message = bad.reason
        else:
            message = f"step {bad.index} does not follow: {bad.reason}"
        raise CheckFailed(message, actual=bad.source.strip()[:300])
    unknown = [s.index for s in result.steps if s.status == "unknown"]
    if unknown:
        record.detail(TextNote(text=f"steps {unknown} could not be read and were not judged"))
        raise Undecided(
            f"no invalid step found, but steps {unknown} could not be read; flagged for review"
        )
    record.award(1.0, "every step is valid")
