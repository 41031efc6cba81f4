"""Instructor overrides: a small CSV or TOML file that sets a question's score for a student.

Runs in the trusted parent. An override never changes a check's result: it replaces the
question's score and records, in ``QuestionResult.override``, the automatic score it replaced
and the instructor's comment, so every output (report, JSON, gradebook, Gradescope) shows it.
Files are validated when loaded; every error names the file and line and quotes the value.

CSV (a header row is required; ``assignment`` and ``comment`` are optional columns)::

    student,question,points,comment
    alice,1,1.5,"reuse of the error term is explained in words, accepted"

TOML::

    [[override]]
    student = "alice"
    question = "1"
    points = 1.5
    comment = "reuse of the error term is explained in words, accepted"
"""

from __future__ import annotations

import csv
import io
import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import UsageError
from .results import GradeResult

__all__ = [
    "Override",
    "apply_fitting",
    "apply_overrides",
    "load_overrides",
    "overrides_for",
    "validate_overrides",
]

_COLUMNS = ("student", "question", "points", "comment", "assignment")


@dataclass(frozen=True)
class Override:
    """One instructor decision: ``student``'s question ``question`` is worth ``points``."""

    student: str
    question: str
    points: float
    comment: str = ""
    assignment: str = ""  # empty: any assignment
    where: str = ""  # "file:line", for messages


def load_overrides(path: str | Path) -> tuple[Override, ...]:
    """Read and validate an overrides file (``.csv`` or ``.toml``)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the overrides file {p}: {exc}") from exc
    if p.suffix.lower() == ".toml":
        rows = list(_toml_rows(text, p))
    elif p.suffix.lower() == ".csv":
        rows = list(_csv_rows(text, p))
    else:
        raise UsageError(f"overrides file {p}: expected a .csv or .toml file")
    overrides = tuple(_parse(row, where) for where, row in rows)
    seen: dict[tuple[str, str, str], str] = {}
    for o in overrides:
        key = (o.student, o.question, o.assignment)
        if key in seen:
            raise UsageError(
                f"{o.where}: a second override for student {o.student!r}, question "
                f"{o.question!r} (the first is at {seen[key]})"
            )
        seen[key] = o.where
    return overrides


def _csv_rows(text: str, path: Path) -> Iterable[tuple[str, Mapping[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in ("student", "question", "points") if c not in header]
    if missing:
        raise UsageError(
            f"{path}:1: the header must name the columns student, question, points "
            f"(and optionally comment, assignment); missing {', '.join(missing)}"
        )
    unknown = [h for h in header if h not in _COLUMNS]
    if unknown:
        raise UsageError(f"{path}:1: unknown column {unknown[0]!r} (known: {', '.join(_COLUMNS)})")
    for row in reader:
        clean = {str(k).strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
        if not any(clean.values()):
            continue
        if None in row:
            raise UsageError(f"{path}:{reader.line_num}: more fields than columns in the header")
        yield f"{path}:{reader.line_num}", clean


def _toml_rows(text: str, path: Path) -> Iterable[tuple[str, Mapping[str, Any]]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from exc
    unknown = [k for k in data if k != "override"]
    if unknown:
        raise UsageError(
            f"{path}: unknown key {unknown[0]!r}; write each override as an [[override]] table"
        )
    tables = data.get("override", [])
    if not isinstance(tables, list):
        raise UsageError(f"{path}: `override` must be a list of [[override]] tables")
    for i, table in enumerate(tables):
        where = f"{path}: override[{i}]"
        if not isinstance(table, dict):
            raise UsageError(f"{where}: must be a table")
        extra = [k for k in table if k not in _COLUMNS]
        if extra:
            raise UsageError(f"{where}: unknown key {extra[0]!r} (known: {', '.join(_COLUMNS)})")
        yield where, table


def _parse(row: Mapping[str, Any], where: str) -> Override:
    student = row.get("student")
    if not isinstance(student, str) or not student.strip():
        raise UsageError(f"{where}: student must be a non-empty name, got {student!r}")
    question = row.get("question")
    if isinstance(question, int) and not isinstance(question, bool):
        question = str(question)
    if not isinstance(question, str) or not question.strip():
        raise UsageError(
            f'{where}: question must be a question id like "1" or "2b", got {question!r}'
        )
    raw_points = row.get("points")
    try:
        if isinstance(raw_points, bool):
            raise ValueError
        points = float(raw_points)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UsageError(f"{where}: points = {raw_points!r} must be a number") from None
    if not math.isfinite(points) or points < 0:
        raise UsageError(f"{where}: points = {raw_points!r} must be a finite number >= 0")
    comment = row.get("comment", "")
    assignment = row.get("assignment", "")
    if not isinstance(comment, str) or not isinstance(assignment, str):
        raise UsageError(f"{where}: comment and assignment must be text")
    return Override(
        student.strip(), question.strip(), points, comment.strip(), assignment.strip(), where
    )


def validate_overrides(
    overrides: Sequence[Override], questions: Mapping[str, Mapping[str, float]]
) -> None:
    """Check question ids and points against assignments: ``{assignment: {question: max}}``.

    An override naming no assignment must fit at least one of them.
    """
    for o in overrides:
        scopes = [o.assignment] if o.assignment else sorted(questions)
        if o.assignment and o.assignment not in questions:
            raise UsageError(
                f"{o.where}: unknown assignment {o.assignment!r} "
                f"(known: {', '.join(sorted(questions)) or 'none'})"
            )
        fits = [a for a in scopes if o.question in questions[a]]
        if not fits:
            known = sorted({q for a in scopes for q in questions[a]})
            raise UsageError(
                f"{o.where}: no question {o.question!r} (questions: {', '.join(known) or 'none'})"
            )
        too_big = [a for a in fits if o.points > questions[a][o.question] + 1e-9]
        if len(too_big) == len(fits):
            top = max(questions[a][o.question] for a in fits)
            raise UsageError(
                f"{o.where}: points = {o.points:g} is more than question "
                f"{o.question} is worth ({top:g})"
            )


def overrides_for(
    overrides: Iterable[Override], student: str, assignment: str
) -> tuple[Override, ...]:
    """The overrides that apply to one student's submission of one assignment.

    Overrides that name the assignment come last, so they win over ones that do not.
    """
    found = [
        o
        for o in overrides
        if o.student == student and (not o.assignment or o.assignment == assignment)
    ]
    return tuple(sorted(found, key=lambda o: bool(o.assignment)))


def unfit(result: GradeResult, o: Override) -> str:
    """Why ``o`` cannot apply to ``result`` (empty when it can)."""
    found = next((q for q in result.questions if q.id == o.question), None)
    if found is None:
        return f"assignment {result.assignment!r} has no question {o.question!r}"
    if o.points > found.max_score + 1e-9:
        return (
            f"points = {o.points:g} is more than question {found.id} is worth ({found.max_score:g})"
        )
    return ""


def apply_fitting(
    result: GradeResult, overrides: Iterable[Override]
) -> tuple[GradeResult, tuple[tuple[Override, str], ...]]:
    """``result`` with the overrides that fit it applied, and those that do not, with why.

    A batch checks an override that names no assignment only against the union of the
    assignments (it cannot know a student's assignment before grading): one that does not fit
    the assignment this student actually submitted is left out and reported, never allowed to
    cost the student their automatic grade.
    """
    fitting, refused = [], []
    for o in overrides:
        reason = unfit(result, o)
        if reason:
            refused.append((o, reason))
        else:
            fitting.append(o)
    return apply_overrides(result, fitting), tuple(refused)


def apply_overrides(result: GradeResult, overrides: Iterable[Override]) -> GradeResult:
    """``result`` with each override's question score replaced and the override recorded.

    Raises UsageError, naming the override's place, for one that does not fit ``result``.
    """
    by_question = {o.question: o for o in overrides}
    if not by_question:
        return result
    for o in by_question.values():
        reason = unfit(result, o)
        if reason:
            raise UsageError(f"{o.where}: {reason}")
    questions = []
    for q in result.questions:
        found = by_question.get(q.id)
        if found is None:
            questions.append(q)
            continue
        o = found
        note = f"automatic score {q.score:g} / {q.max_score:g} replaced by {o.points:g}"
        if o.comment:
            note += f": {o.comment}"
        # The instructor has now looked at the whole question: nothing is left unchecked.
        questions.append(replace(q, score=o.points, override=note, unchecked_points=0.0))
    return result.with_questions(tuple(questions))
