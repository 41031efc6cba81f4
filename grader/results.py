"""The result model: frozen dataclasses per check, per question and per submission.

Renderers (terminal, HTML, JSON, Gradescope, gradebook) take these plain values, never live
objects. ``to_json``/``from_json`` are the only places where the model meets dicts.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

SCHEMA_VERSION = 1

__all__ = [
    "SCHEMA_VERSION",
    "ArrayDiff",
    "CellRun",
    "CheckResult",
    "DerivationStep",
    "Detail",
    "GradeResult",
    "GradientRow",
    "GradientTable",
    "MathAnswer",
    "Outcome",
    "QuestionResult",
    "RubricMatch",
    "TextNote",
    "detail_from_json",
    "points_text",
]


def points_text(x: float) -> str:
    """``1 point``, ``2.5 points``: a number of points as the reports write it."""
    n = f"{round(x, 3):g}"
    return f"{n} point{'' if n == '1' else 's'}"


class Outcome(enum.StrEnum):
    """What happened to one check."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"
    UNDECIDED = "undecided"

    @property
    def symbol(self) -> str:
        return {
            "passed": "✓",
            "failed": "✗",
            "error": "!",
            "timeout": "⏱",
            "skipped": "–",
            "undecided": "?",
        }[self.value]


# --- details: typed evidence a check attaches for the report --------------------------------


@dataclass(frozen=True)
class Detail:
    """Base class of the typed evidence attached to a check."""

    type: ClassVar[str] = "detail"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for f in fields(self):
            out[f.name] = _plain(getattr(self, f.name))
        return out


@dataclass(frozen=True)
class TextNote(Detail):
    """A free-form note shown under the check (e.g. 'your answer was read from cell 7')."""

    type: ClassVar[str] = "note"
    text: str


@dataclass(frozen=True)
class ArrayDiff(Detail):
    """Expected versus got for an array: shapes, the largest error and where it is."""

    type: ClassVar[str] = "array_diff"
    label: str
    expected_shape: tuple[int, ...]
    actual_shape: tuple[int, ...] | None
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    where: tuple[int, ...] | None = None
    expected_at: float | None = None
    actual_at: float | None = None
    rtol: float | None = None
    atol: float | None = None


@dataclass(frozen=True)
class GradientRow:
    parameter: str
    analytic: float
    numeric: float
    rel_error: float
    ok: bool
    index: tuple[int, ...] = ()


@dataclass(frozen=True)
class GradientTable(Detail):
    """A finite-difference gradient check: one row per parameter (worst entry)."""

    type: ClassVar[str] = "gradient_table"
    rows: tuple[GradientRow, ...]
    tolerance: float
    step: float


@dataclass(frozen=True)
class MathAnswer(Detail):
    """A maths answer as the grader read it."""

    type: ClassVar[str] = "math"
    label: str
    source: str
    read_as: str
    mathml: str = ""
    expected_mathml: str = ""


@dataclass(frozen=True)
class DerivationStep(Detail):
    """One step of a derivation with its verdict: ok, invalid, unknown, aside."""

    type: ClassVar[str] = "derivation_step"
    index: int
    source: str
    read_as: str
    status: str
    reason: str = ""
    mathml: str = ""


@dataclass(frozen=True)
class RubricMatch(Detail):
    """One rubric item of a text answer: matched or not, with the words that matched."""

    type: ClassVar[str] = "rubric"
    item: str
    description: str
    matched: bool
    points: float
    max_points: float
    evidence: str = ""
    confidence: float = 1.0


_DETAIL_TYPES: dict[str, type[Detail]] = {
    cls.type: cls
    for cls in (TextNote, ArrayDiff, GradientTable, MathAnswer, DerivationStep, RubricMatch)
}


def detail_from_json(data: dict[str, Any]) -> Detail:
    kind = data.get("type")
    cls = _DETAIL_TYPES.get(str(kind))
    if cls is None:
        return TextNote(text=str(data))
    kwargs = {f.name: data.get(f.name) for f in fields(cls) if f.name in data}
    if cls is GradientTable:
        kwargs["rows"] = tuple(
            GradientRow(**{**r, "index": tuple(r.get("index", ()))}) for r in data["rows"]
        )
    for key in ("expected_shape", "actual_shape", "where"):
        value = kwargs.get(key)
        if value is not None:
            kwargs[key] = tuple(value)
    return cls(**kwargs)


# --- the three levels ----------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """One check of one question."""

    name: str
    question: str
    description: str
    outcome: Outcome
    score: float
    max_score: float
    message: str = ""
    hint: str = ""
    expected: str = ""
    actual: str = ""
    inputs: str = ""
    traceback: str = ""
    details: tuple[Detail, ...] = ()
    duration_s: float = 0.0
    public: bool = True

    @property
    def needs_review(self) -> bool:
        return self.outcome is Outcome.UNDECIDED

    def to_json(self) -> dict[str, Any]:
        out = {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name != "details"}
        out["details"] = [d.to_json() for d in self.details]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckResult:
        kwargs = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        kwargs["outcome"] = Outcome(data["outcome"])
        kwargs["details"] = tuple(detail_from_json(d) for d in data.get("details", ()))
        return cls(**kwargs)


@dataclass(frozen=True)
class QuestionResult:
    """All checks of one question, plus where its answer came from."""

    id: str
    kind: str
    title: str
    score: float
    max_score: float
    checks: tuple[CheckResult, ...]
    unchecked_points: float = 0.0
    answer_source: str = ""
    answer_cell: int | None = None
    override: str = ""

    @property
    def needs_review(self) -> bool:
        # An instructor's override settles the question.
        return not self.override and any(c.needs_review for c in self.checks)

    @property
    def only_unchecked_missing(self) -> bool:
        """Points are missing, but nothing failed: they could not be checked here (no solutions)."""
        return (
            self.unchecked_points > 0
            and self.max_score - 1e-9 > self.score >= self.max_score - self.unchecked_points - 1e-9
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "score": self.score,
            "max_score": self.max_score,
            "needs_review": self.needs_review,
            "unchecked_points": self.unchecked_points,
            "answer_source": self.answer_source,
            "answer_cell": self.answer_cell,
            "override": self.override,
            "checks": [c.to_json() for c in self.checks],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QuestionResult:
        return cls(
            id=str(data["id"]),
            kind=data["kind"],
            title=data.get("title", ""),
            score=float(data["score"]),
            max_score=float(data["max_score"]),
            checks=tuple(CheckResult.from_json(c) for c in data.get("checks", ())),
            unchecked_points=float(data.get("unchecked_points", 0.0)),
            answer_source=data.get("answer_source", ""),
            answer_cell=data.get("answer_cell"),
            override=data.get("override", ""),
        )


@dataclass(frozen=True)
class CellRun:
    """How one code cell of the submission ran in the sandbox."""

    index: int
    ok: bool
    error_type: str = ""
    error_message: str = ""
    traceback: str = ""
    stdout: str = ""
    notes: tuple[str, ...] = ()
    timed_out: bool = False

    def to_json(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CellRun:
        kwargs = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        kwargs["notes"] = tuple(kwargs.get("notes", ()))
        return cls(**kwargs)


@dataclass(frozen=True)
class GradeResult:
    """The grade of one submission."""

    assignment: str
    submission: str
    sandbox: str
    questions: tuple[QuestionResult, ...]
    duration_s: float = 0.0
    cells: tuple[CellRun, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    solutions_available: bool = True
    schema_version: int = SCHEMA_VERSION

    @property
    def score(self) -> float:
        return _round(sum(q.score for q in self.questions))

    @property
    def max_score(self) -> float:
        return _round(sum(q.max_score for q in self.questions))

    @property
    def unchecked_points(self) -> float:
        return _round(sum(q.unchecked_points for q in self.questions))

    @property
    def needs_review(self) -> bool:
        return any(q.needs_review for q in self.questions)

    @property
    def full_marks(self) -> bool:
        return self.score >= self.max_score - 1e-9 and self.unchecked_points == 0

    def question(self, qid: str) -> QuestionResult:
        for q in self.questions:
            if q.id == qid:
                return q
        raise KeyError(qid)

    def with_questions(self, questions: tuple[QuestionResult, ...]) -> GradeResult:
        return replace(self, questions=questions)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "assignment": self.assignment,
            "submission": self.submission,
            "sandbox": self.sandbox,
            "score": self.score,
            "max_score": self.max_score,
            "unchecked_points": self.unchecked_points,
            "needs_review": self.needs_review,
            "solutions_available": self.solutions_available,
            "duration_s": round(self.duration_s, 3),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "questions": [q.to_json() for q in self.questions],
            "cells": [c.to_json() for c in self.cells],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GradeResult:
        return cls(
            assignment=data["assignment"],
            submission=data["submission"],
            sandbox=data["sandbox"],
            questions=tuple(QuestionResult.from_json(q) for q in data["questions"]),
            duration_s=float(data.get("duration_s", 0.0)),
            cells=tuple(CellRun.from_json(c) for c in data.get("cells", ())),
            timings=dict(data.get("timings", {})),
            solutions_available=bool(data.get("solutions_available", True)),
            schema_version=int(data.get("schema_version", SCHEMA_VERSION)),
        )


def _round(x: float) -> float:
    return round(x + 0.0, 6)


def _plain(value: Any) -> Any:
    """JSON-ready copy: tuples become lists, enums their values, non-finite floats strings."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, Detail):
        return value.to_json()
    if isinstance(value, GradientRow):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    return value
