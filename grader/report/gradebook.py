"""Class-level outputs of a batch: the gradebook CSVs, Gradescope JSON and summary statistics.

Pure functions from plain data (one ``Entry`` per submission) to text or to the summary model
rendered by ``html.render_summary``. Output is deterministic: rows sorted by key, no
timestamps, so a resumed batch writes byte-for-byte what an uninterrupted one would. Text cells
that a spreadsheet would read as a formula are quoted; this module never writes files.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from ..results import GradeResult, Outcome, QuestionResult
from .svg import histogram

__all__ = [
    "FAILED_STATUSES",
    "ClassSummary",
    "Entry",
    "canvas_csv",
    "duplicates",
    "grades_csv",
    "gradescope_json",
    "needs_review",
    "result_json",
    "status_of",
    "summarise",
]

# graded: checks ran; timeout: checks ran but some code hit its time limit; the rest have no
# result: unreadable (the file), error (the grader or an override), crashed (the worker died).
FAILED_STATUSES = ("unreadable", "error", "crashed")


@dataclass(frozen=True)
class Entry:
    """One submission of a batch, graded or not."""

    key: str  # the stem of its output files, unique in the batch
    student: str
    source: str  # path relative to the batch folder
    status: str  # graded | timeout | unreadable | error | crashed
    message: str = ""
    result: GradeResult | None = None  # overrides applied

    @property
    def failed(self) -> bool:
        return self.result is None


def question_review(q: QuestionResult) -> bool:
    """A question needs review while undecided and not yet scored by an instructor."""
    return q.needs_review and not q.override


def needs_review(result: GradeResult) -> bool:
    return any(question_review(q) for q in result.questions)


def result_json(result: GradeResult) -> dict[str, Any]:
    """``result.to_json()`` with overridden questions no longer counted as needing review."""
    data = result.to_json()
    for qd, q in zip(data["questions"], result.questions, strict=True):
        qd["needs_review"] = question_review(q)
    data["needs_review"] = needs_review(result)
    return data


def status_of(result: GradeResult) -> str:
    timed_out = any(c.timed_out for c in result.cells) or any(
        c.outcome is Outcome.TIMEOUT for q in result.questions for c in q.checks
    )
    return "timeout" if timed_out else "graded"


# --- Gradescope ------------------------------------------------------------------------------


def _question_output(q: QuestionResult) -> str:
    lines = []
    if q.override:
        lines.append(f"Instructor override: {q.override}")
    if question_review(q):
        lines.append("Provisional: flagged for review by an instructor.")
    for c in q.checks:
        if c.outcome is Outcome.PASSED:
            lines.append(f"{c.outcome.symbol} {c.name}")
            continue
        lines.append(f"{c.outcome.symbol} {c.name}: {c.message or c.outcome.value}")
        if c.hint:
            lines.append(f"    hint: {c.hint}")
    if q.unchecked_points:
        lines.append(f"{q.unchecked_points:g} points could not be checked by the autograder.")
    return "\n".join(lines)


def gradescope_json(entry: Entry) -> dict[str, Any]:
    """A Gradescope ``results.json``: one test per question (``number`` = question id)."""
    if entry.result is None:
        return {
            "score": 0.0,
            "output": f"Not graded ({entry.status}): {entry.message}",
            "visibility": "visible",
            "stdout_visibility": "hidden",
            "tests": [],
        }
    r = entry.result
    tests = [
        {
            "name": f"Question {q.id}: {q.title}",
            "number": q.id,
            "score": q.score,
            "max_score": q.max_score,
            "status": "passed" if q.score >= q.max_score - 1e-9 else "failed",
            "output": _question_output(q),
            "visibility": "visible",
        }
        for q in r.questions
    ]
    out = f"{r.score:g} / {r.max_score:g} points."
    if needs_review(r):
        out += " Some answers need review by an instructor; their points are provisional."
    return {
        "score": r.score,
        "execution_time": round(r.duration_s, 2),
        "output": out,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


# --- CSV -------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    """A CSV text cell that spreadsheets show as text, never evaluate as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _num(x: float) -> str:
    return f"{round(x, 4):g}"


def _question_ids(entries: Iterable[Entry]) -> list[str]:
    ids: list[str] = []
    for e in entries:
        for q in e.result.questions if e.result is not None else ():
            if q.id not in ids:
                ids.append(q.id)
    return ids


def grades_csv(entries: Sequence[Entry]) -> str:
    """One row per submission: student, each question, total, status, needs review."""
    ordered = sorted(entries, key=lambda e: e.key)
    qids = _question_ids(ordered)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "student",
            "submission",
            "assignment",
            *(f"Q{q}" for q in qids),
            "total",
            "max",
            "status",
            "needs_review",
            "overridden",
            "message",
        ]
    )
    for e in ordered:
        r = e.result
        if r is None:
            w.writerow(
                [
                    _cell(e.student),
                    _cell(e.source),
                    "",
                    *([""] * len(qids)),
                    "",
                    "",
                    e.status,
                    "",
                    "",
                    _cell(e.message),
                ]
            )
            continue
        scores = {q.id: _num(q.score) for q in r.questions}
        w.writerow(
            [
                _cell(e.student),
                _cell(e.source),
                _cell(r.assignment),
                *(scores.get(q, "") for q in qids),
                _num(r.score),
                _num(r.max_score),
                e.status,
                "yes" if needs_review(r) else "no",
                " ".join(q.id for q in r.questions if q.override),
                _cell(e.message),
            ]
        )
    return buf.getvalue()


def duplicates(entries: Sequence[Entry]) -> dict[tuple[str, str], tuple[Entry, ...]]:
    """``(student, assignment)`` pairs with more than one graded submission, and those."""
    seen: dict[tuple[str, str], list[Entry]] = {}
    for e in sorted(entries, key=lambda e: e.key):
        if e.result is not None:
            seen.setdefault((e.student, e.result.assignment), []).append(e)
    return {k: tuple(v) for k, v in seen.items() if len(v) > 1}


def canvas_csv(entries: Sequence[Entry], titles: Mapping[str, str]) -> str:
    """A Canvas gradebook import: one row per student, one column per assignment, and a
    ``Points Possible`` row.

    The student id from the file or folder name goes into ``SIS Login ID``; rename that header
    to ``SIS User ID`` if the ids are SIS user ids. Ungraded submissions are left blank, and so
    is a grade the batch cannot choose: two graded submissions of one assignment by one
    student (the batch warns about them; ``grades.csv`` lists both).
    """
    ordered = sorted(entries, key=lambda e: e.key)
    aids = sorted({e.result.assignment for e in ordered if e.result is not None})
    maxima = {
        a: next(
            e.result.max_score for e in ordered if e.result is not None and e.result.assignment == a
        )
        for a in aids
    }
    twice = duplicates(ordered)
    scores: dict[str, dict[str, str]] = {}
    for e in ordered:
        row = scores.setdefault(e.student, {})
        if e.result is not None and (e.student, e.result.assignment) not in twice:
            row[e.result.assignment] = _num(e.result.score)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "Student",
            "ID",
            "SIS User ID",
            "SIS Login ID",
            "Section",
            *(_cell(titles.get(a, a)) for a in aids),
        ]
    )
    w.writerow(["Points Possible", "", "", "", "", *(_num(maxima[a]) for a in aids)])
    for student in sorted(scores):
        row = scores[student]
        w.writerow([_cell(student), "", "", _cell(student), "", *(row.get(a, "") for a in aids)])
    return buf.getvalue()


# --- the class summary ------------------------------------------------------------------------


@dataclass(frozen=True)
class QuestionStats:
    id: str
    title: str
    max_score: float
    mean: float
    spread: float  # population standard deviation
    full: int  # submissions with full marks
    zero: int
    review: int


@dataclass(frozen=True)
class CommonMistake:
    question: str
    check: str
    hint: str
    count: int
    points_lost: float


@dataclass(frozen=True)
class AssignmentSummary:
    id: str
    title: str
    max_score: float
    count: int
    mean: float
    median: float
    spread: float
    lowest: float
    highest: float
    chart: Markup
    questions: tuple[QuestionStats, ...]
    mistakes: tuple[CommonMistake, ...]


@dataclass(frozen=True)
class ClassSummary:
    folder: str
    entries: tuple[Entry, ...]
    assignments: tuple[AssignmentSummary, ...]
    review: tuple[Entry, ...]
    failures: tuple[Entry, ...]
    timeouts: tuple[Entry, ...]
    status_counts: tuple[tuple[str, int], ...]
    notices: tuple[str, ...] = ()  # the batch's warnings (overrides, duplicates, ignored files)


def _spread(values: Sequence[float]) -> float:
    return statistics.pstdev(values) if len(values) > 1 else 0.0


def _assignment_summary(
    aid: str, title: str, results: Sequence[GradeResult], top_mistakes: int
) -> AssignmentSummary:
    totals = [r.score for r in results]
    max_score = results[0].max_score
    questions = []
    for spec in results[0].questions:
        qs = [q for r in results for q in r.questions if q.id == spec.id]
        scores = [q.score for q in qs]
        questions.append(
            QuestionStats(
                id=spec.id,
                title=spec.title,
                max_score=spec.max_score,
                mean=statistics.fmean(scores),
                spread=_spread(scores),
                full=sum(q.score >= q.max_score - 1e-9 for q in qs),
                zero=sum(q.score <= 1e-9 for q in qs),
                review=sum(question_review(q) for q in qs),
            )
        )
    counts: Counter[tuple[str, str, str]] = Counter()
    lost: dict[tuple[str, str, str], float] = {}
    for r in results:
        for q in r.questions:
            for c in q.checks:
                if c.outcome in (Outcome.PASSED, Outcome.SKIPPED, Outcome.UNDECIDED):
                    continue
                key = (q.id, c.name, c.hint)
                counts[key] += 1
                lost[key] = lost.get(key, 0.0) + (c.max_score - c.score)
    # Most frequent first; ties broken by the text so the page is the same on every run.
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], -lost[kv[0]], kv[0]))
    mistakes = tuple(
        CommonMistake(question=k[0], check=k[1], hint=k[2], count=n, points_lost=round(lost[k], 4))
        for k, n in ranked[:top_mistakes]
    )
    return AssignmentSummary(
        id=aid,
        title=title,
        max_score=max_score,
        count=len(results),
        mean=statistics.fmean(totals),
        median=statistics.median(totals),
        spread=_spread(totals),
        lowest=min(totals),
        highest=max(totals),
        chart=histogram(totals, max_score, bins=10),
        questions=tuple(questions),
        mistakes=mistakes,
    )


def summarise(
    entries: Sequence[Entry],
    titles: Mapping[str, str],
    *,
    folder: str = "",
    top_mistakes: int = 12,
    notices: Sequence[str] = (),
) -> ClassSummary:
    """Statistics per assignment and per question, common mistakes, review and failure lists."""
    ordered = tuple(sorted(entries, key=lambda e: e.key))
    by_assignment: dict[str, list[GradeResult]] = {}
    for e in ordered:
        if e.result is not None:
            by_assignment.setdefault(e.result.assignment, []).append(e.result)
    assignments = tuple(
        _assignment_summary(a, titles.get(a, a), rs, top_mistakes)
        for a, rs in sorted(by_assignment.items())
    )
    statuses = Counter(e.status for e in ordered)
    return ClassSummary(
        folder=folder,
        entries=ordered,
        assignments=assignments,
        review=tuple(e for e in ordered if e.result is not None and needs_review(e.result)),
        failures=tuple(e for e in ordered if e.failed),
        timeouts=tuple(e for e in ordered if e.status == "timeout"),
        status_counts=tuple(sorted(statuses.items())),
        notices=tuple(notices),
    )
