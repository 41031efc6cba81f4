"""The HTML pages: a student's feedback report and the class summary, made with Jinja2.

Runs in the trusted parent on plain result data. Every page is one self-contained file: inline
CSS, inline SVG, no script, nothing loaded from the network (a Content-Security-Policy in the
page says so to the browser too). Autoescaping is always on; the only strings marked safe are
markup this package builds itself (charts, the nbconvert cells of ``cells.py``) and MathML that
passes ``safe_mathml``. This module never marks a student's string safe.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from ..results import (
    ArrayDiff,
    CheckResult,
    DerivationStep,
    Detail,
    GradeResult,
    GradientRow,
    GradientTable,
    MathAnswer,
    Outcome,
    QuestionResult,
    RubricMatch,
    TextNote,
    points_text,
)
from .cells import bytecode_cache
from .svg import gradient_chart

if TYPE_CHECKING:
    from ..assignment import Assignment
    from ..submission import Submission
    from .gradebook import ClassSummary, Entry

__all__ = ["render_failure", "render_report", "render_summary", "safe_mathml"]

TEMPLATES = Path(__file__).parent / "templates"

# MathML presentation elements SymPy's printer emits; anything else (and any attribute that
# could run or load something) makes the grader show the plain reading instead.
_MATHML_TAGS = frozenset(
    "math mrow mi mn mo ms mtext mspace msup msub msubsup mfrac msqrt mroot mfenced mtable mtr "
    "mtd mover munder munderover mstyle mpadded mphantom menclose merror mmultiscripts "
    "mprescripts none semantics annotation".split()
)
_TAG = re.compile(r"<\s*/?\s*([A-Za-z][\w:.-]*)")
_BAD_ATTR = re.compile(
    r"\b(?:on\w+|href|src|style|xlink:\w+|formaction|action)\s*=|javascript:|"
    r"<!|<\?",
    re.IGNORECASE,
)


def safe_mathml(markup: Any) -> Markup | None:
    """``markup`` as Markup if it is MathML made only of known presentation elements, else None."""
    if not isinstance(markup, str):
        return None
    text = markup.strip()
    if not text.startswith("<math") or "<script" in text.lower() or _BAD_ATTR.search(text):
        return None
    if any(m.group(1).lower() not in _MATHML_TAGS for m in _TAG.finditer(text)):
        return None
    return Markup(text)


# --- the view handed to the template ---------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """Evidence of one kind under a check; consecutive steps or rubric items are grouped."""

    kind: str  # note | array | gradient | math | derivation | rubric
    items: tuple[Any, ...]
    chart: Markup | None = None
    wrong: tuple[GradientRow, ...] = ()
    provisional: bool = False


@dataclass(frozen=True)
class CheckView:
    check: CheckResult
    blocks: tuple[Block, ...]
    tone: str
    expanded: bool
    provisional: bool


@dataclass(frozen=True)
class QuestionView:
    q: QuestionResult
    status: str  # full | partial | zero | review | override | unchecked
    symbol: str
    tone: str
    status_text: str
    asked: str
    checks: tuple[CheckView, ...]


_KIND_OF: dict[type[Detail], str] = {
    TextNote: "note",
    ArrayDiff: "array",
    GradientTable: "gradient",
    MathAnswer: "math",
    DerivationStep: "derivation",
    RubricMatch: "rubric",
}
_TONE = {
    Outcome.PASSED: "ok",
    Outcome.FAILED: "bad",
    Outcome.ERROR: "bad",
    Outcome.TIMEOUT: "bad",
    Outcome.SKIPPED: "muted",
    Outcome.UNDECIDED: "warn",
}


def _blocks(check: CheckResult) -> tuple[Block, ...]:
    blocks: list[Block] = []
    for detail in check.details:
        kind = _KIND_OF.get(type(detail), "note")
        if isinstance(detail, GradientTable):
            wrong = tuple(r for r in detail.rows if not r.ok)
            blocks.append(
                Block(
                    "gradient",
                    (detail,),
                    gradient_chart(detail.rows, _float(detail.tolerance)),
                    wrong,
                )
            )
        elif blocks and blocks[-1].kind == kind and kind in ("derivation", "rubric"):
            last = blocks[-1]
            blocks[-1] = Block(kind, (*last.items, detail), provisional=last.provisional)
        else:
            blocks.append(Block(kind, (detail,), provisional=check.needs_review))
    return tuple(blocks)


def question_status(q: QuestionResult) -> tuple[str, str, str, str]:
    """(status, symbol, tone, words) of a question, as the report and summary show it."""
    if q.override:
        return "override", "✎", "info", "scored by an instructor"
    if q.needs_review:
        return "review", "?", "warn", "needs review (provisional)"
    if q.max_score > 0 and q.unchecked_points >= q.max_score - 1e-9:
        return "unchecked", "–", "muted", "not checked here"
    if q.score >= q.max_score - 1e-9:
        return "full", "✓", "ok", "full marks"
    if q.only_unchecked_missing:
        return "unchecked", "–", "muted", f"{points_text(q.unchecked_points)} not checked here"
    if q.score <= 1e-9:
        return "zero", "✗", "bad", "no points"
    return "partial", "◐", "warn", "partly right"


def _question_view(q: QuestionResult, assignment: Assignment | None) -> QuestionView:
    asked = ""
    if assignment is not None:
        asked = next((spec.text for spec in assignment.questions if spec.id == q.id), "")
    status, symbol, tone, words = question_status(q)
    checks = tuple(
        CheckView(
            check=c,
            blocks=_blocks(c),
            tone=_TONE[c.outcome],
            expanded=c.outcome is not Outcome.PASSED or bool(c.details),
            provisional=c.needs_review,
        )
        for c in q.checks
    )
    return QuestionView(q, status, symbol, tone, words, asked, checks)


def _view(
    result: GradeResult,
    sub: Submission | None,
    assignment: Assignment | None,
    student: str,
    only: Sequence[str] | None = None,
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    from .. import __version__
    from .cells import render_cells

    questions = [_question_view(q, assignment) for q in result.questions]
    cells_html = render_cells(sub, result.cells) if sub is not None else Markup("")
    percent = 0.0 if result.max_score <= 0 else 100 * result.score / result.max_score
    return {
        "result": result,
        "student": student,
        "assignment_title": assignment.title if assignment is not None else result.assignment,
        "questions": questions,
        "review": [qv for qv in questions if qv.status == "review"],
        "overridden": [qv for qv in questions if qv.status == "override"],
        "failed_cells": [c for c in result.cells if not c.ok],
        "has_cells": sub is not None and bool(sub.cells),
        "cells_html": cells_html,
        "percent": f"{max(0.0, min(100.0, percent)):.1f}",
        "version": __version__,
        "only": list(only) if only else [],
        "warnings": list(warnings),
    }


def render_report(
    result: GradeResult,
    sub: Submission | None,
    assignment: Assignment | None,
    *,
    student: str | None = None,
    only: Sequence[str] | None = None,
    warnings: Sequence[str] = (),
) -> str:
    """The student's report as one self-contained HTML page.

    ``sub`` adds the submission's cells at the end (each question links to its answer's cell);
    ``assignment`` adds each question's text. Either may be None, e.g. when re-rendering a
    stored result. ``student`` names the student (default: the submission's file stem).
    ``only`` names the questions of a partial run (``grade -q``): the page says so.
    ``warnings`` are shown at the top (e.g. graded as another assignment than its own).
    """
    name = student or (sub.stem if sub is not None else Path(result.submission).stem)
    view = _view(result, sub, assignment, name, only, warnings)
    return str(environment().get_template("report.html.j2").render(**view))


def render_summary(summary: ClassSummary) -> str:
    """The class summary page of a batch (see ``gradebook.summarise``)."""
    return str(environment().get_template("summary.html.j2").render(s=summary))


def render_failure(entry: Entry) -> str:
    """The page a student gets when their submission could not be graded at all."""
    return str(environment().get_template("failure.html.j2").render(e=entry))


# --- the environment and its filters ----------------------------------------------------------


def _float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _pts(x: Any) -> str:
    value = _float(x)
    return f"{round(value, 3):g}" if math.isfinite(value) else str(x)


def _num(x: Any) -> str:
    if x is None:
        return "—"
    value = _float(x)
    return f"{value:.6g}" if math.isfinite(value) else ("NaN" if math.isnan(value) else str(x))


def _err(x: Any) -> str:
    if x is None:
        return "—"
    value = _float(x)
    return f"{value:.2g}" if math.isfinite(value) else ("NaN" if math.isnan(value) else str(x))


def _ratio(row: GradientRow) -> str:
    """How many times the correct value the student's is, when that says something useful."""
    a, n = _float(row.analytic), _float(row.numeric)
    if row.ok or not (math.isfinite(a) and math.isfinite(n)) or abs(n) < 1e-12:
        return ""
    r = a / n
    return f"{r:.3g}" if 1e-6 < abs(r) < 1e6 else ""


def _shape(shape: Any) -> str:
    if shape is None:
        return "not an array"
    dims = tuple(int(d) for d in shape)
    return "scalar ()" if not dims else str(dims).replace(",)", ")")


def _index(where: Any) -> str:
    return "[" + ", ".join(str(int(i)) for i in where) + "]"


def _clip(text: Any, limit: int = 2000) -> str:
    s = "" if text is None else str(text)
    return s if len(s) <= limit else s[:limit] + f" … ({len(s) - limit} more characters)"


def prepare() -> None:
    """Compile the report's templates (and the notebook exporter's) ahead of the first render."""
    from .cells import prepare as prepare_cells

    env = environment()
    for name in env.list_templates(extensions=["j2"]):
        env.get_template(name)
    prepare_cells()


@functools.cache
def environment() -> Environment:
    """One Jinja2 environment per process (templates compile once), autoescape always on."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=True,
        bytecode_cache=bytecode_cache(),
    )
    from .gradebook import needs_review

    filters: dict[str, Any] = {
        "pts": _pts,
        "num": _num,
        "err": _err,
        "ratio": _ratio,
        "shape": _shape,
        "index": _index,
        "clip": _clip,
        "mathml": lambda m: safe_mathml(m) or "",
        "needs_review": needs_review,
    }
    env.filters.update(filters)
    return env
