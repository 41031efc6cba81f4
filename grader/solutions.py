"""``grade check-solutions``: the checks themselves are checked against known answers.

For every assignment with a ``solutions/<id>/`` folder: the reference (``reference.py`` plus
``answers.toml``) must score full marks on every question that has checks; every mutant in
``mutants/`` must lose points on exactly the questions named on its ``# loses:`` line (code
questions, plus any other question the mutant answers); the blank template must score zero on
every question that has checks. Runs in the trusted parent; submissions are graded in the
sandbox like any other, a few at a time in worker processes. Never edits the course folder:
the reference submission is written to a temporary folder.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import sys
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .assignment import Assignment, find_course_dir, list_assignments, load_assignment
from .errors import GraderError, SpecError, UsageError
from .results import GradeResult, Outcome, QuestionResult
from .submission import Submission, find_markdown_answer, read_submission

TOLERANCE = 1e-9
_LOSES = re.compile(r"^#\s*loses\s*:\s*(?P<ids>.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class Case:
    """One submission to grade and what it must score."""

    assignment: str
    role: str  # "reference" | "mutant" | "template"
    name: str
    path: Path
    loses: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Verdict:
    """How one case went: per-question marks for the table and the broken expectations."""

    case: Case
    ok: bool
    marks: tuple[str, ...]
    problems: tuple[str, ...]
    notes: tuple[str, ...] = ()
    score: float = 0.0
    max_score: float = 0.0


# --- reference answers and the reference submission -----------------------------------------


def reference_answers(assignment: Assignment) -> dict[str, str]:
    """The answer variables of ``answers.toml``: variable name → text, validated on load.

    A string under question ``Q`` becomes ``answer_Q``; a table gives named variables, which
    must be among the question's ``answer_names`` (or be ``answer``).
    """
    path = assignment.answers_path()
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"{path}: cannot read: {exc}") from exc
    answers = data.get("answers", {})
    if not isinstance(answers, dict):
        raise SpecError(f"{path}: [answers] must be a table, got {answers!r}")
    known = {q.id: q for q in assignment.questions}
    out: dict[str, str] = {}
    for qid, value in answers.items():
        question = known.get(qid)
        if question is None:
            raise SpecError(
                f"{path}: answer for unknown question {qid!r} (questions: {', '.join(known)})"
            )
        if question.kind == "code":
            raise SpecError(
                f"{path}: question {qid} is a code question; its reference is "
                "reference.py, not an answer"
            )
        if isinstance(value, str):
            out[question.answer_variable] = value
        elif isinstance(value, dict):
            for name, text in value.items():
                if name != "answer" and name not in question.answer_names:
                    raise SpecError(
                        f"{path}: question {qid}: {name!r} is not one of its "
                        f"answer_names {list(question.answer_names)}"
                    )
                if not isinstance(text, str):
                    raise SpecError(f"{path}: question {qid}: {name} = {text!r} must be a string")
                out[question.answer_variable if name == "answer" else name] = text
        else:
            raise SpecError(f"{path}: question {qid}: {value!r} must be a string or a table")
    return out


def write_reference_submission(assignment: Assignment, folder: Path) -> Path:
    """Write ``reference.py`` plus the reference answers as one ``.py`` submission."""
    ref = assignment.reference_path()
    if ref is None:
        raise SpecError(f"solutions/{assignment.id}/reference.py is missing")
    source = ref.read_text(encoding="utf-8")
    lines = ["", "# %%", f"__assignment__ = {assignment.id!r}"]
    lines += [f"{name} = {text!r}" for name, text in reference_answers(assignment).items()]
    path = folder / f"{assignment.id}-reference.py"
    path.write_text(source.rstrip("\n") + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def parse_loses(path: Path, assignment: Assignment) -> frozenset[str]:
    """The question ids on a mutant's ``# loses: 4, 6`` line (one of its first ten lines)."""
    try:
        head = path.read_text(encoding="utf-8").splitlines()[:10]
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read: {exc}") from exc
    for line in head:
        m = _LOSES.match(line.strip())
        if m:
            ids = frozenset(i for i in re.split(r"[\s,]+", m.group("ids").strip()) if i)
            known = {q.id for q in assignment.questions}
            unknown = sorted(ids - known)
            if not ids or unknown:
                raise SpecError(
                    f"{path}: '# loses:' must name questions of {assignment.id} "
                    f"({', '.join(sorted(known))}); got {m.group('ids').strip()!r}"
                )
            return ids
    raise SpecError(
        f"{path}: a mutant needs a '# loses: Q, ...' line naming the questions it "
        "must lose points on"
    )


def collect_cases(assignment: Assignment, workdir: Path) -> list[Case]:
    """The reference, the mutants and the template of one assignment."""
    cases = [
        Case(
            assignment.id, "reference", "reference", write_reference_submission(assignment, workdir)
        )
    ]
    assert assignment.private_dir is not None
    mutants = assignment.private_dir / "mutants"
    for path in sorted(mutants.glob("*.py")) if mutants.is_dir() else []:
        cases.append(Case(assignment.id, "mutant", path.stem, path, parse_loses(path, assignment)))
    template = assignment.template_path()
    if template.is_file():
        cases.append(Case(assignment.id, "template", "template", template))
    return cases


# --- judging ----------------------------------------------------------------------------------


def _checked_points(q: QuestionResult) -> float:
    return sum(c.max_score for c in q.checks if c.outcome is not Outcome.SKIPPED)


def _first_problem(q: QuestionResult) -> str:
    for c in q.checks:
        if c.score < c.max_score - TOLERANCE:
            return f"{c.name}: {c.message.splitlines()[0] if c.message else c.outcome.value}"
    # No check lost the points: they are not covered by any check that ran.
    return f"no check failed; {q.max_score - _checked_points(q):g} points are covered by no check"


def answered(sub: Submission, assignment: Assignment) -> set[str]:
    """Non-code questions the submission gives an answer to (variable, tag or label)."""
    defined = sub.defined_names()
    out = set()
    for q in assignment.questions:
        if q.kind == "code":
            continue
        names = {q.answer_variable, *q.answer_names}
        if names & set(defined) or find_markdown_answer(sub.cells, q.id) is not None:
            out.add(q.id)
    return out


_BROKEN = (Outcome.FAILED, Outcome.ERROR, Outcome.TIMEOUT)


def judge(case: Case, result: GradeResult, assignment: Assignment, sub: Submission) -> Verdict:
    """Compare one graded case with what it must score."""
    problems: list[str] = []
    notes: list[str] = []
    marks: list[str] = []
    considered = {q.id for q in assignment.questions if q.kind == "code"}
    if case.role == "mutant":
        considered |= answered(sub, assignment) | set(case.loses)
    else:
        considered = {q.id for q in assignment.questions}
    for spec_q in assignment.questions:
        q = result.question(spec_q.id)
        checked = _checked_points(q)
        full = q.score >= spec_q.points - TOLERANCE
        if spec_q.id not in considered:
            marks.append("·")
            continue
        if case.role == "reference":
            # A check worth no points still states something that must hold for the reference
            # (e.g. its code agrees with its own formulas): a reference that fails one is wrong.
            problems += [
                f"Q{spec_q.id}: the reference fails {c.name!r}, a check worth no points "
                f"({c.message.splitlines()[0] if c.message else c.outcome.value})"
                for c in q.checks
                if c.max_score <= TOLERANCE and c.outcome in _BROKEN
            ]
        if checked <= 0:
            marks.append("–")
            if case.role == "reference":
                notes.append(f"Q{spec_q.id} has no checks yet")
            elif case.role == "mutant" and spec_q.id in case.loses:
                notes.append(f"Q{spec_q.id} has no checks yet, so its loss is not verified")
            continue
        if case.role == "reference":
            marks.append("✓" if full else "✗")
            if q.needs_review:
                notes.append(f"Q{spec_q.id}: the reference answer is flagged for review")
            if checked < spec_q.points - TOLERANCE:
                problems.append(
                    f"Q{spec_q.id}: checks cover only {checked:g} of {spec_q.points:g} points"
                )
            elif not full:
                problems.append(
                    f"Q{spec_q.id}: reference scored {q.score:g}/{spec_q.points:g} "
                    f"({_first_problem(q)})"
                )
        elif case.role == "template":
            marks.append("0" if q.score <= TOLERANCE else "✗")
            if q.score > TOLERANCE:
                problems.append(
                    f"Q{spec_q.id}: the blank template scored {q.score:g} "
                    f"(checks passed: {_passed_names(q)})"
                )
        else:
            marks.append("✓" if full else "✗")
            if spec_q.id in case.loses and full:
                problems.append(f"Q{spec_q.id}: should lose points but scored full marks")
            elif spec_q.id not in case.loses and not full:
                problems.append(
                    f"Q{spec_q.id}: lost points it should keep, "
                    f"{q.score:g}/{spec_q.points:g} ({_first_problem(q)})"
                )
    return Verdict(
        case,
        not problems,
        tuple(marks),
        tuple(problems),
        tuple(notes),
        result.score,
        result.max_score,
    )


def _passed_names(q: QuestionResult) -> str:
    return ", ".join(c.name for c in q.checks if c.score > TOLERANCE) or "none"


# --- running ----------------------------------------------------------------------------------


def _grade_chunk(
    course: str, sandbox: str, items: Sequence[tuple[int, str, str]]
) -> list[tuple[int, Any]]:
    """Grade some cases in this (worker) process; one sandbox factory for all of them."""
    from .grading import GradeOptions, SandboxFactory, grade_path

    factory = SandboxFactory(sandbox, allow_fallback=True)
    out: list[tuple[int, Any]] = []
    for index, aid, path in items:
        try:
            result, _, _ = grade_path(
                path, GradeOptions(course=Path(course), assignment=aid, sandbox=sandbox), factory
            )
            out.append((index, result.to_json()))
        except GraderError as exc:
            out.append((index, f"{type(exc).__name__}: {exc}"))
        except Exception as exc:  # an internal error fails this case; the others still run
            out.append((index, f"internal error: {type(exc).__name__}: {exc}"))
    return out


def grade_cases(
    cases: Sequence[Case], course: Path, *, jobs: int = 2, sandbox: str = "auto"
) -> list[GradeResult | str]:
    """Grade every case (a string in place of a result is an error), ``jobs`` at a time."""
    items = [(i, c.assignment, str(c.path)) for i, c in enumerate(cases)]
    jobs = max(1, min(jobs, len(items)))
    if jobs == 1:
        done = _grade_chunk(str(course), sandbox, items)
    else:
        # Round-robin chunks: one worker process (and one sandbox factory) per chunk. Spawned,
        # not forked, so no state of this process (pytest, Hypothesis) leaks into the workers.
        chunks = [items[i::jobs] for i in range(jobs)]
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = [pool.submit(_grade_chunk, str(course), sandbox, chunk) for chunk in chunks]
            done = [pair for f in futures for pair in f.result()]
    by_index = dict(done)
    return [
        GradeResult.from_json(r) if isinstance(r, dict) else str(r)
        for r in (by_index[i] for i in range(len(items)))
    ]


def check_solutions(
    course: Path, ids: Sequence[str], *, jobs: int = 2, sandbox: str = "auto"
) -> list[Verdict]:
    """Grade and judge the reference, mutants and template of each assignment in ``ids``."""
    assignments = [load_assignment(course, aid) for aid in ids]
    for a in assignments:
        if not a.has_solutions:
            raise UsageError(f"assignment {a.id!r} has no solutions/{a.id}/ folder")
    with tempfile.TemporaryDirectory(prefix="grade-solutions-") as tmp:
        cases = [c for a in assignments for c in collect_cases(a, Path(tmp))]
        results = grade_cases(cases, course, jobs=jobs, sandbox=sandbox)
        by_id = {a.id: a for a in assignments}
        verdicts = []
        for case, result in zip(cases, results, strict=True):
            if isinstance(result, str):
                verdicts.append(Verdict(case, False, (), (f"could not be graded: {result}",)))
                continue
            sub = read_submission(case.path)
            verdicts.append(judge(case, result, by_id[case.assignment], sub))
    return verdicts


def render(verdicts: Sequence[Verdict], assignments: Mapping[str, Assignment]) -> str:
    """The compact table: one line per case, one mark per question, problems underneath."""
    lines: list[str] = []
    current = None
    widths: list[int] = []
    for v in verdicts:
        if v.case.assignment != current:
            current = v.case.assignment
            ids = [q.id for q in assignments[current].questions]
            widths = [max(1, len(i)) for i in ids]
            lines.append(f"{current + ':':<47}" + " ".join(ids))
        status = "ok  " if v.ok else "FAIL"
        label = f"{v.case.role} {v.case.name}" if v.case.role == "mutant" else v.case.role
        marks = " ".join(m.ljust(w) for m, w in zip(v.marks, widths, strict=False))
        expect = f"loses {', '.join(sorted(v.case.loses))}" if v.case.role == "mutant" else ""
        lines.append(
            f"  {status} {label:<39.39} {marks:<{sum(widths) + len(widths)}} "
            f"{v.score:>5g}/{v.max_score:<3g} {expect}".rstrip()
        )
        lines += [f"         ✗ {p}" for p in v.problems]
    notes = sorted({f"{v.case.assignment}: {n}" for v in verdicts for n in v.notes})
    if notes:
        lines.append("notes (not failures):")
        lines += [f"  {n}" for n in notes]
    failed = sum(not v.ok for v in verdicts)
    lines.append(
        f"{len(verdicts) - failed} of {len(verdicts)} cases as expected"
        + (f"; {failed} FAILED" if failed else "")
    )
    lines.append("marks: ✓ full  ✗ lost points  0 zero  – no checks  · not answered (ignored)")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    """``grade check-solutions [ID ...]``: exit 0 only if every expectation holds."""
    parser = argparse.ArgumentParser(
        prog="grade check-solutions",
        description="Check the checks: every reference scores full marks, every mutant loses "
        "points on exactly the questions on its '# loses:' line, the blank template scores 0.",
    )
    parser.add_argument(
        "ids", nargs="*", metavar="ID", help="assignments (default: all with a solutions/ folder)"
    )
    parser.add_argument("--course", help="folder with assignments/ and solutions/")
    parser.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="submissions graded at once (default: CPUs, at most 4)",
    )
    parser.add_argument("--sandbox", choices=("auto", "bubblewrap", "process"), default="auto")
    parser.add_argument(
        "--strict", action="store_true", help="also fail when a question has no checks at all"
    )
    args = parser.parse_args(argv)
    course = find_course_dir(args.course)
    ids = args.ids or [a for a in list_assignments(course) if (course / "solutions" / a).is_dir()]
    if not ids:
        raise UsageError(f"no assignment under {course} has a solutions/ folder")
    verdicts = check_solutions(course, ids, jobs=args.jobs, sandbox=args.sandbox)
    assignments = {aid: load_assignment(course, aid) for aid in ids}
    print(render(verdicts, assignments))
    ok = all(v.ok for v in verdicts)
    if args.strict and any(v.notes for v in verdicts):
        print("--strict: some questions have no checks", file=sys.stderr)
        ok = False
    return 0 if ok else 1
