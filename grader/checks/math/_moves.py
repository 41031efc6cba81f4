"""Numeric tests of the moves a derivation may make, at a fixed set of random points.

``Moves`` answers three questions about expanded SymPy expressions: are two expressions
equal (same value at every point), is one the gradient of another with respect to the
question's variable (central differences at 60 digits), and do two equations have the same
solutions in that variable (both are affine there: solve them at each point and compare).
It never asks SymPy to simplify; every answer may be "unknown" (None).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sympy
from mpmath.matrices.matrices import _matrix as MpMatrix

from grader.checks.math.numeric import Undefined, Unevaluable, differs, evaluate, show_value
from grader.checks.math.points import Point, make_context, make_points
from grader.checks.math.symbols import SymbolTable

__all__ = ["Moves", "Outcome", "Solution"]

_DIGITS = 60
_TIGHT = sympy.Rational(1, 10**28)
_LOOSE = sympy.Rational(1, 10**12)


@dataclass(frozen=True)
class Outcome:
    """``same`` is True, False or None (unknown); ``where``/values describe a difference."""

    same: bool | None
    where: Point | None = None
    left: str | None = None
    right: str | None = None


@dataclass(frozen=True)
class Solution:
    """How an equation in the variable is solved at one point."""

    kind: str  # "unique", "none", "many", "nonaffine", "unknown"
    value: Any = None


Function = Callable[[Point], Any]


class Moves:
    """Numeric facts about expressions at ``count`` random points of ``table``'s domain."""

    def __init__(self, table: SymbolTable, variable: Any, *, seed: int, count: int = 4) -> None:
        self.ctx = make_context(_DIGITS)
        self.table = table
        self.variable = variable
        self.points = make_points(table, seed=seed, count=count, ctx=self.ctx)
        self.tight = self.ctx.mpf(_TIGHT.p) / _TIGHT.q
        self.loose = self.ctx.mpf(_LOOSE.p) / _LOOSE.q
        self.step = self.ctx.mpf(10) ** -25

    # -- values --------------------------------------------------------------------------
    def value_of(self, expr: Any) -> Function:
        return lambda point: evaluate(expr, point, self.ctx)

    def gradient_of(self, objective: Any) -> Function:
        """The gradient of a scalar ``objective`` in the variable, by central differences."""
        inner = self.value_of(objective)

        def gradient(point: Point) -> Any:
            base = point.values[self.variable]
            if not isinstance(base, MpMatrix):
                up = inner(point.with_value(self.variable, base + self.step))
                down = inner(point.with_value(self.variable, base - self.step))
                return (_scalar(up) - _scalar(down)) / (2 * self.step)
            out = self.ctx.matrix(base.rows, 1)
            for row in range(base.rows):
                plus, minus = base.copy(), base.copy()
                plus[row, 0] += self.step
                minus[row, 0] -= self.step
                up = _scalar(inner(point.with_value(self.variable, plus)))
                down = _scalar(inner(point.with_value(self.variable, minus)))
                out[row, 0] = (up - down) / (2 * self.step)
            return out

        return gradient

    def same(self, left: Function, right: Function) -> Outcome:
        """Do two functions agree at every point where both are defined?"""
        agreed = 0
        for point in self.points:
            try:
                b = right(point)
            except Undefined:
                continue
            except Unevaluable:
                return Outcome(None)
            try:
                a = left(point)
            except Undefined:
                return Outcome(False, point, "undefined", show_value(b))
            except Unevaluable:
                return Outcome(None)
            gap = differs(a, b, self.ctx)
            if gap is None or gap > self.loose:
                return Outcome(False, point, show_value(a), show_value(b))
            if gap < self.tight:
                agreed += 1
        return Outcome(True) if agreed >= 2 else Outcome(None)

    # -- equations -----------------------------------------------------------------------
    def solve(self, residual: Function, point: Point) -> Solution:
        """Solve residual(variable) = 0 at ``point``, assuming it is affine in the variable."""
        ctx = self.ctx
        base = point.values[self.variable]
        size = base.rows if isinstance(base, MpMatrix) else 1

        def at(values: Any) -> Any:
            if not isinstance(base, MpMatrix):
                values = values[0, 0]
            return _column(residual(point.with_value(self.variable, values)), ctx)

        try:
            zero = at(ctx.zeros(size, 1))
            columns = []
            for index in range(size):
                unit = ctx.zeros(size, 1)
                unit[index, 0] = 1
                columns.append(at(unit) - zero)
            here = at(base if isinstance(base, MpMatrix) else ctx.matrix([[base]]))
        except Undefined:
            return Solution("unknown")
        rows = zero.rows
        matrix = ctx.matrix(rows, size)
        for index, column in enumerate(columns):
            if column.rows != rows:
                return Solution("unknown")
            for row in range(rows):
                matrix[row, index] = column[row, 0]
        given = base if isinstance(base, MpMatrix) else ctx.matrix([[base]])
        gap = differs(matrix * given + zero, here, ctx)
        if gap is None or gap > self.tight * 10**6:
            return Solution("nonaffine")
        if rows < size:
            return Solution("many")
        values = ctx.svd_r(matrix, compute_uv=False)
        singular = [abs(values[i]) for i in range(values.rows)]
        largest = max(singular)
        if largest == 0 or min(singular) < largest * self.tight:
            return Solution("many")
        normal = matrix.T * matrix
        solution = ctx.lu_solve(normal, -(matrix.T * zero))
        if differs(matrix * solution + zero, ctx.zeros(rows, 1), ctx) > self.tight * 10**6:
            return Solution("none")
        return Solution("unique", solution)

    def same_solutions(self, old: Function, new: Function) -> Outcome:
        """Do two equations (residual functions) have the same solutions at every point?"""
        checked = 0
        for point in self.points:
            try:
                before, after = self.solve(old, point), self.solve(new, point)
            except Unevaluable:
                return Outcome(None)
            if before.kind in ("unknown", "nonaffine"):
                return Outcome(None)
            if after.kind == "nonaffine" and before.kind == "unique":
                candidate = _unwrap(before.value, point, self.variable)
                try:
                    value = _column(new(point.with_value(self.variable, candidate)), self.ctx)
                except (Undefined, Unevaluable):
                    return Outcome(None)
                gap = differs(value, self.ctx.zeros(value.rows, 1), self.ctx)
                if gap is None or gap > self.loose:
                    shown = show_value(before.value)
                    return Outcome(False, point, "not solved by the previous solution", shown)
                checked += 1
                continue
            if before.kind != after.kind:
                return Outcome(False, point, _describe(after), _describe(before))
            if before.kind == "unique":
                gap = differs(after.value, before.value, self.ctx)
                if gap is None or gap > self.loose:
                    return Outcome(False, point, _describe(after), _describe(before))
                checked += 1
            else:
                return Outcome(None)
        return Outcome(True) if checked >= 2 else Outcome(None)


def _unwrap(value: Any, point: Point, variable: Any) -> Any:
    return value if isinstance(point.values[variable], MpMatrix) else value[0, 0]


def _scalar(value: Any) -> Any:
    if isinstance(value, MpMatrix):
        if value.rows * value.cols != 1:
            raise Undefined("a matrix where a scalar belongs")
        return value[0, 0]
    return value


def _column(value: Any, ctx: Any) -> Any:
    if isinstance(value, MpMatrix):
        if value.cols != 1:
            raise Undefined("the equation is between matrices, not vectors")
        return value
    return ctx.matrix([[value]])


def _describe(solution: Solution) -> str:
    if solution.kind == "unique":
        return f"solved by {show_value(solution.value)}"
    if solution.kind == "none":
        return "has no solution"
    if solution.kind == "many":
        return "has many solutions"
    return "cannot be solved here"
