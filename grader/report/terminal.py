"""The compact terminal summary: one line per question, one reason per lost point."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence

from ..results import GradeResult, Outcome, points_text


def _questions(ids: Sequence[str]) -> str:
    return ("question " if len(ids) == 1 else "questions ") + ", ".join(ids)


def _wrap(line: str, width: int, indent: str) -> list[str]:
    """``line`` broken at words into lines of at most ``width`` (long words are split)."""
    return textwrap.wrap(line, width, subsequent_indent=indent, drop_whitespace=True) or [line]


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
            f"  reference solutions not installed: {points_text(result.unchecked_points)} "
            "could not be checked"
        )
    for q in result.questions:
        if q.score >= q.max_score - 1e-9:
            mark = "✓"
        elif q.needs_review:
            mark = "?"
        elif q.only_unchecked_missing:
            mark = "–"  # nothing failed: some points just could not be checked here
        else:
            mark = "✗"
        head = f"  {mark} Q{q.id:<4} {_fmt(q.score):>5} / {_fmt(q.max_score):<4} {q.title}"
        lines += _wrap(head, width, "               ")
        for c in q.checks:
            if c.outcome is Outcome.PASSED:
                continue
            lost = c.max_score - c.score
            reason = c.message.splitlines()[0] if c.message else c.outcome.value
            # A skipped check's points were not lost, only not checked (counted below).
            skipped = c.outcome is Outcome.SKIPPED
            tag = "" if lost <= 0 or skipped else f"-{_fmt(lost)} "
            lines += _wrap(f"      {c.outcome.symbol} {tag}{c.name}: {reason}", width, " " * 8)
            if c.hint:
                lines += _wrap(f"        hint: {c.hint}", width, " " * 14)
        if q.unchecked_points:
            lines.append(f"      – {points_text(q.unchecked_points)} not checked here")
    broken = [c for c in result.cells if not c.ok]
    for run in broken[:5]:
        lines += _wrap(
            f"  cell {run.index + 1}: {run.error_type}: {run.error_message}", width, " " * 4
        )
    if report_path:
        lines.append(f"  {'partial report' if only else 'report'}: {report_path}")
    return "\n".join(lines)
