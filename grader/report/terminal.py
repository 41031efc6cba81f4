"""The compact terminal summary: one line per question, one reason per lost point."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..results import GradeResult, Outcome


def _questions(ids: Sequence[str]) -> str:
    return ("question " if len(ids) == 1 else "questions ") + ", ".join(ids)


def _fmt(x: float) -> str:
    return f"{x:g}"


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _clean(text: str) -> str:
    """Student text must not drive the terminal (escape sequences, carriage returns)."""
    return _CONTROL.sub("?", text)


def summary(
    result: GradeResult,
    *,
    report_path: str | None = None,
    width: int = 100,
    only: Sequence[str] | None = None,
) -> str:
    """The summary; ``only`` names the questions of a partial run (``grade -q``)."""
    return _clean(_summary(result, report_path=report_path, width=width, only=only))


def _summary(
    result: GradeResult, *, report_path: str | None, width: int, only: Sequence[str] | None
) -> str:
    lines = [
        f"{result.submission} — {result.assignment}: {_fmt(result.score)} / "
        f"{_fmt(result.max_score)} points"
        + (f" (partial: {_questions(only)} only)" if only else "")
        + (" (needs review)" if result.needs_review else "")
        + ("" if result.sandbox == "bubblewrap" else f"  [sandbox: {result.sandbox}]"),
    ]
    if not result.solutions_available:
        lines.append(
            f"  reference solutions not installed: {_fmt(result.unchecked_points)} "
            "points could not be checked"
        )
    for q in result.questions:
        mark = "✓" if q.score >= q.max_score - 1e-9 else ("?" if q.needs_review else "✗")
        head = f"  {mark} Q{q.id:<4} {_fmt(q.score):>5} / {_fmt(q.max_score):<4} {q.title}"
        lines.append(head[:width])
        for c in q.checks:
            if c.outcome is Outcome.PASSED:
                continue
            lost = c.max_score - c.score
            reason = c.message.splitlines()[0] if c.message else c.outcome.value
            tag = "" if lost <= 0 else f"-{_fmt(lost)} "
            lines.append(f"      {c.outcome.symbol} {tag}{c.name}: {reason}"[:width])
            if c.hint:
                lines.append(f"        hint: {c.hint}"[:width])
        if q.unchecked_points:
            lines.append(f"      – {_fmt(q.unchecked_points)} points not checked here")
    broken = [c for c in result.cells if not c.ok]
    for run in broken[:5]:
        lines.append(f"  cell {run.index + 1}: {run.error_type}: {run.error_message}"[:width])
    if report_path:
        lines.append(f"  {'partial report' if only else 'report'}: {report_path}")
    return "\n".join(lines)
