"""Three-valued equivalence of a student's formula and the expected one.

Order of work: shapes first (a shape error or a different shape is reported as such), then
numbers (random points in each symbol's domain, random tall matrices, 40-digit arithmetic),
then, only if the numbers cannot decide, a bounded symbolic proof in a forked process with a
time and memory limit. Undecided means "flag for review": it is never a wrong answer.
This module never calls ``simplify`` in the grader's own process.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sympy
from sympy.matrices.expressions.matexpr import MatrixExpr

from grader.checks.math._definitions import expand_definitions
from grader.checks.math._limits import ask_limited
from grader.checks.math._printing import plain
from grader.checks.math.functions import Deriv
from grader.checks.math.numeric import Comparison, compare
from grader.checks.math.parser import ReadError, Reading, read
from grader.checks.math.points import Point
from grader.checks.math.shapes import ShapeError, describe_shape, raw_shape
from grader.checks.math.symbols import SymbolTable
from grader.errors import SpecError

__all__ = [
    "Equivalence",
    "Verdict",
    "as_expression",
    "counterexample_of",
    "equivalent",
    "is_zero_literal",
]


class Verdict(enum.StrEnum):
    EQUIVALENT = "equivalent"
    NOT_EQUIVALENT = "not equivalent"
    UNDECIDED = "undecided"


@dataclass(frozen=True)
class Equivalence:
    """The verdict, a reason written for the student, and where the two differ (if they do)."""

    verdict: Verdict
    reason: str
    counterexample: Mapping[str, str] | None = None
    answer_value: str | None = None
    expected_value: str | None = None

    @property
    def equivalent(self) -> bool:
        return self.verdict is Verdict.EQUIVALENT


def as_expression(value: Any, table: SymbolTable) -> tuple[Any, Any]:
    """(expanded, as written) for a Reading, a formula text or a SymPy object."""
    if isinstance(value, Reading):
        return value.expr, (value.written[-1] if value.written else value.expr)
    if isinstance(value, str):
        reading = read(value, table)
        return reading.expr, reading.written[-1]
    if isinstance(value, sympy.Basic):
        return expand_definitions(value, table), value
    raise TypeError(f"expected a formula, a Reading or a SymPy object, not {value!r}")


def is_zero_literal(expr: Any) -> bool:
    """``0`` as written: a zero of whatever shape is needed."""
    return bool(expr == 0) or isinstance(expr, sympy.ZeroMatrix)


def counterexample_of(point: Point, *exprs: Any) -> dict[str, str]:
    """The values at ``point`` of the symbols (and sizes) that ``exprs`` use."""
    names: set[str] = set()
    for expr in exprs:
        for symbol in expr.free_symbols:
            names.add(str(getattr(symbol, "name", symbol)))
            if isinstance(symbol, sympy.MatrixSymbol):
                names |= {str(d) for d in symbol.shape if not d.is_Integer}
    return {name: text for name, text in point.shown.items() if name in names}


def _shape_or_error(expr: Any) -> Any:
    try:
        return raw_shape(expr)
    except ShapeError as exc:
        return exc


def _same_shape(a: Any, b: Any) -> bool:
    scalar_a = a is None or (a[0] == 1 and a[1] == 1)
    scalar_b = b is None or (b[0] == 1 and b[1] == 1)
    return (scalar_a and scalar_b) or a == b


def _symbolic_zero(difference: Any) -> bool:
    """Runs in the limited child process: is ``difference`` provably zero?"""
    rewritten = difference.rewrite(sympy.exp)
    if sympy.expand(rewritten) == 0:
        return True
    return bool(sympy.simplify(rewritten) == 0)


def _from_comparison(found: Comparison, a: Any, e: Any) -> Equivalence | None:
    if found.status == "equal":
        return Equivalence(
            Verdict.EQUIVALENT,
            f"agrees with the expected answer at {found.checked} random points (to 28 digits)",
        )
    if found.status == "different" and found.point is not None:
        where = counterexample_of(found.point, a, e)
        shown = ", ".join(f"{k} = {v}" for k, v in sorted(where.items()))
        return Equivalence(
            Verdict.NOT_EQUIVALENT,
            f"differs from the expected answer at {shown or 'a random point'}: yours gives "
            f"{found.a_value}, the expected answer {found.b_value}",
            where,
            found.a_value,
            found.b_value,
        )
    return None


def equivalent(
    answer: Any, expected: Any, table: SymbolTable, *, seed: int = 0, time_limit: float = 2.0
) -> Equivalence:
    """Is ``answer`` the same formula as ``expected`` on the question's domain?

    Both may be formula text, a :class:`Reading` or a SymPy object (shorthands are expanded).
    A text that cannot be read raises :class:`~grader.checks.math.parser.ReadError`.
    """
    deadline = time.monotonic() + time_limit
    a, _ = as_expression(answer, table)
    try:
        e, _ = as_expression(expected, table)
    except ReadError as exc:
        raise SpecError(f"the expected answer {expected!r} cannot be read: {exc.message}") from exc
    expected_shape = _shape_or_error(e)
    if isinstance(expected_shape, ShapeError):
        raise SpecError(f"the expected answer {plain(e)} has a shape error: {expected_shape}")
    answer_shape = _shape_or_error(a)
    if isinstance(answer_shape, ShapeError):
        return Equivalence(
            Verdict.NOT_EQUIVALENT, f"your answer has a shape error: it {answer_shape.message}"
        )
    if not (is_zero_literal(a) or is_zero_literal(e)) and not _same_shape(
        answer_shape, expected_shape
    ):
        return Equivalence(
            Verdict.NOT_EQUIVALENT,
            f"your answer is {describe_shape(answer_shape)}, "
            f"{describe_shape(expected_shape)} was expected",
        )
    if a == e:
        return Equivalence(Verdict.EQUIVALENT, "is exactly the expected answer")
    found = compare(a, e, table, seed=seed, deadline=deadline)
    verdict = _from_comparison(found, a, e)
    if verdict is not None:
        return verdict
    scalar = not isinstance(a, MatrixExpr) and not isinstance(e, MatrixExpr)
    if scalar and not (a.has(Deriv) or e.has(Deriv)):
        remaining = deadline - time.monotonic()
        difference = a - e
        if ask_limited(lambda: _symbolic_zero(difference), seconds=remaining) is True:
            return Equivalence(
                Verdict.EQUIVALENT, "proved equal to the expected answer symbolically"
            )
    return Equivalence(
        Verdict.UNDECIDED,
        f"the grader could not decide ({found.detail}); your answer is flagged for review",
    )
