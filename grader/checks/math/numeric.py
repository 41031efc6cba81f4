"""High-precision numeric evaluation of read formulas, and comparison at random points.

Values are mpmath numbers (40 digits) or mpmath matrices in a context owned by each call.
Evaluation walks the SymPy tree itself: it never asks SymPy to simplify or cancel (SymPy
cancels (X Xᵀ)⁻¹ X Xᵀ to I even for a tall X). Values too large to compute with, or an
expression too deep, are refused as :class:`Unevaluable` instead of exhausting memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import mpmath
import sympy
from mpmath.matrices.matrices import _matrix as MpMatrix
from sympy.core.function import AppliedUndef

from grader.checks.math._printing import plain
from grader.checks.math.functions import Deriv, Gradient, MatrixGradient, OneByOne, sigma
from grader.checks.math.points import Point, make_context, make_points
from grader.checks.math.shapes import IDENTITY_SIZE
from grader.checks.math.symbols import SymbolTable

__all__ = [
    "Comparison",
    "Undefined",
    "Unevaluable",
    "compare",
    "differs",
    "evaluate",
    "show_value",
    "value_at",
]

_EQUAL_BELOW = mpmath.mpf(10) ** -28
_DIFFERENT_ABOVE = mpmath.mpf(10) ** -12


class Unevaluable(Exception):
    """The expression holds something without a numeric value (∂L/∂z2, an unknown f)."""


class Undefined(Exception):
    """The expression has no value at this point (division by zero, a singular matrix)."""


class _Evaluator:
    def __init__(self, point: Point, ctx: Any) -> None:
        self.point = point
        self.ctx = ctx
        self.memo: dict[Any, Any] = {}

    def size(self, dim: Any) -> int:
        if dim.is_Integer:
            return int(dim)
        if dim in self.point.dims:
            return self.point.dims[dim]
        raise Unevaluable(f"the size {dim} is unknown")

    def run(self, expr: Any) -> Any:
        if expr in self.memo:
            return self.memo[expr]
        value = self.value(expr)
        self.memo[expr] = value
        return value

    def value(self, e: Any) -> Any:
        ctx = self.ctx
        if e.is_Number:
            if e.is_Rational:
                return ctx.mpf(int(e.p)) / int(e.q)
            if e.is_Float:
                return ctx.mpf(str(e))
            raise Unevaluable(f"the number {e}")
        if e is sympy.pi:
            return ctx.pi
        if e is sympy.E:
            return ctx.e
        if isinstance(e, sympy.Symbol | sympy.MatrixSymbol):
            if e in self.point.values:
                return self.point.values[e]
            raise Unevaluable(f"{e} has no value")
        if isinstance(e, sympy.Identity):
            return ctx.eye(self.size(e.rows))
        if isinstance(e, sympy.ZeroMatrix):
            return ctx.zeros(self.size(e.rows), self.size(e.cols))
        if isinstance(e, sympy.OneMatrix):
            return ctx.ones(self.size(e.rows), self.size(e.cols))
        if isinstance(e, Deriv | AppliedUndef):
            raise Unevaluable(f"{plain(e)} has no value")
        handler = _HANDLERS.get(type(e))
        if handler is None:
            for kind, candidate in _HANDLERS.items():
                if isinstance(e, kind):
                    handler = candidate
                    break
        if handler is None:
            raise Unevaluable(f"cannot evaluate {type(e).__name__}")
        return handler(self, e)

    def scalar_args(self, e: Any) -> list[Any]:
        values = [self.run(a) for a in e.args]
        return [_as_scalar(v) for v in values]


def _as_scalar(value: Any) -> Any:
    if isinstance(value, MpMatrix):
        if value.rows == 1 and value.cols == 1:
            return value[0, 0]
        raise Undefined("a matrix where a scalar belongs")
    return value


_MAX_MAGNITUDE = 100_000  # bits: beyond 2**100000 a value is not worth computing with


def _check(value: Any, ctx: Any) -> Any:
    if isinstance(value, MpMatrix):
        return value
    if ctx.isnan(value) or ctx.isinf(value):
        raise Undefined("not a finite number")
    if value != 0 and abs(ctx.mag(value)) > _MAX_MAGNITUDE:
        raise Unevaluable("a value too large or too small to compute with")
    return value


def _exp(ctx: Any, value: Any) -> Any:
    # exp of a huge argument would need a mantissa of that many bits: refuse it instead.
    if abs(ctx.re(value)) > _MAX_MAGNITUDE:
        raise Unevaluable("a value too large or too small to compute with")
    return ctx.exp(value)


def _add(ev: _Evaluator, e: Any) -> Any:
    total = ev.ctx.mpf(0)
    for value in ev.scalar_args(e):
        total += value
    return total


def _mul(ev: _Evaluator, e: Any) -> Any:
    total = ev.ctx.mpf(1)
    for value in ev.scalar_args(e):
        total *= value
    return _check(total, ev.ctx)


def _pow(ev: _Evaluator, e: Any) -> Any:
    base, exponent = ev.scalar_args(e)
    if base == 0 and ev.ctx.re(exponent) <= 0:
        raise Undefined("division by zero")
    if e.args[1].is_Integer:
        return _check(base ** int(e.args[1]), ev.ctx)
    return _check(ev.ctx.power(base, exponent), ev.ctx)


def _unary(function: Callable[[Any, Any], Any]) -> Callable[[_Evaluator, Any], Any]:
    def handler(ev: _Evaluator, e: Any) -> Any:
        (arg,) = ev.scalar_args(e)
        return _check(function(ev.ctx, arg), ev.ctx)

    return handler


def _log(ctx: Any, value: Any) -> Any:
    if value == 0:
        raise Undefined("log(0)")
    return ctx.log(value)


def _one_by_one(ev: _Evaluator, e: Any) -> Any:
    return _as_scalar(ev.run(e.args[0]))


def _mat_add(ev: _Evaluator, e: Any) -> Any:
    values = [ev.run(a) for a in e.args]
    total = values[0]
    for value in values[1:]:
        if isinstance(total, MpMatrix) and isinstance(value, MpMatrix):
            if (total.rows, total.cols) != (value.rows, value.cols):
                raise Unevaluable("matrices of different shapes are added")
        total = total + value
    return total


def _mat_mul(ev: _Evaluator, e: Any) -> Any:
    scale = ev.ctx.mpf(1)
    result: Any = None
    for arg in e.args:
        value = ev.run(arg)
        if not isinstance(value, MpMatrix):
            scale *= value
        elif result is None:
            result = value
        elif result.cols == value.rows:
            result = result * value
        elif result.rows == 1 and result.cols == 1:
            scale *= result[0, 0]
            result = value
        elif value.rows == 1 and value.cols == 1:
            scale *= value[0, 0]
        else:
            raise Unevaluable("matrices of mismatched shapes are multiplied")
    return scale if result is None else result * scale


def _inverse(ev: _Evaluator, e: Any) -> Any:
    return _inverse_value(ev, ev.run(e.args[0]))


def _inverse_value(ev: _Evaluator, value: Any) -> Any:
    if not isinstance(value, MpMatrix):
        if value == 0:
            raise Undefined("division by zero")
        return 1 / value
    if value.rows != value.cols:
        raise Unevaluable("the inverse of a matrix that is not square")
    try:
        return ev.ctx.inverse(value)
    except ZeroDivisionError as exc:
        raise Undefined("a singular matrix") from exc


def _mat_pow(ev: _Evaluator, e: Any) -> Any:
    value = ev.run(e.args[0])
    power = int(e.args[1])
    if power < 0:
        value = _inverse_value(ev, value)
    result = ev.ctx.eye(value.rows) if isinstance(value, MpMatrix) else ev.ctx.mpf(1)
    for _ in range(abs(power)):
        result = result * value
    return result


def _transpose(ev: _Evaluator, e: Any) -> Any:
    value = ev.run(e.args[0])
    return value.T if isinstance(value, MpMatrix) else value


def _gradient(ev: _Evaluator, e: Any) -> Any:
    """∂f/∂v by central differences of the operand at this point, at twice the precision.

    With 2P bits of working precision and a step of 2^(−P/2), rounding costs about 2^(−3P/2)
    and truncation about 2^(−P) times the third derivative: the result is good to the
    context's own precision (exact up to rounding for the quadratics of a derivation). The
    operand is evaluated in fresh evaluators: the memo holds values at the unmoved point.
    """
    operand, variable = e.args
    if operand.has(Gradient, MatrixGradient):
        raise Unevaluable("a derivative of a derivative is not evaluated")
    if variable not in ev.point.values:
        raise Unevaluable(f"{variable} has no value")
    ctx = ev.ctx
    base = ev.point.values[variable]
    bits = ctx.prec

    def at(value: Any) -> Any:
        result = _Evaluator(ev.point.with_value(variable, value), ctx).run(operand)
        if isinstance(result, MpMatrix):
            if result.rows * result.cols != 1:
                raise Unevaluable("the derivative of a vector or matrix (a Jacobian)")
            result = result[0, 0]
        return result

    with ctx.extraprec(bits):
        step = ctx.ldexp(1, -(bits // 2))
        if not isinstance(base, MpMatrix):
            return _check((at(base + step) - at(base - step)) / (2 * step), ctx)
        out = ctx.matrix(base.rows, base.cols)
        for row in range(base.rows):
            for col in range(base.cols):
                plus, minus = base.copy(), base.copy()
                plus[row, col] += step
                minus[row, col] -= step
                out[row, col] = (at(plus) - at(minus)) / (2 * step)
    return out


_HANDLERS: dict[type, Callable[[_Evaluator, Any], Any]] = {
    sympy.Add: _add,
    sympy.Mul: _mul,
    sympy.Pow: _pow,
    sympy.exp: _unary(_exp),
    sympy.log: _unary(_log),
    sympy.tanh: _unary(lambda ctx, v: ctx.tanh(_check(v, ctx))),
    sympy.sin: _unary(lambda ctx, v: ctx.sin(v)),
    sympy.cos: _unary(lambda ctx, v: ctx.cos(v)),
    sympy.Abs: _unary(lambda ctx, v: abs(v)),
    sigma: _unary(lambda ctx, v: 1 / (1 + _exp(ctx, -v))),
    OneByOne: _one_by_one,
    sympy.MatAdd: _mat_add,
    sympy.MatMul: _mat_mul,
    sympy.Inverse: _inverse,
    sympy.MatPow: _mat_pow,
    sympy.Transpose: _transpose,
    Gradient: _gradient,
    MatrixGradient: _gradient,
}


def evaluate(expr: Any, point: Point, ctx: Any) -> Any:
    """The value of ``expr`` at ``point``: an mpmath number or matrix.

    Raises :class:`Unevaluable` (no numeric meaning) or :class:`Undefined` (not here).
    """
    try:
        return _Evaluator(point, ctx).run(expr)
    except (ZeroDivisionError, ValueError, OverflowError) as exc:
        raise Undefined(str(exc)) from exc
    except (RecursionError, MemoryError) as exc:
        raise Unevaluable("the formula is too large to evaluate") from exc


def differs(a: Any, b: Any, ctx: Any) -> Any:
    """The relative difference of two values (scalars, matrices, 0 against a matrix).

    Returns ``None`` when the values cannot be compared (different shapes).
    """
    a_matrix, b_matrix = isinstance(a, MpMatrix), isinstance(b, MpMatrix)
    if a_matrix and b_matrix and (a.rows, a.cols) != (b.rows, b.cols):
        if a.rows * a.cols == 1 and b.rows * b.cols == 1:
            a, b = a[0, 0], b[0, 0]
        else:
            return None
    if a_matrix != b_matrix:
        matrix, scalar = (a, b) if a_matrix else (b, a)
        if matrix.rows == 1 and matrix.cols == 1:
            a, b = matrix[0, 0], scalar
        elif scalar == 0:
            a, b = matrix, ctx.zeros(matrix.rows, matrix.cols)
        else:
            return None
    entries = list(zip(_entries(a), _entries(b), strict=True))
    scale = max([ctx.mpf(1)] + [max(abs(x), abs(y)) for x, y in entries])
    return max(abs(x - y) for x, y in entries) / scale


def _entries(value: Any) -> Iterable[Any]:
    if isinstance(value, MpMatrix):
        return [value[r, c] for r in range(value.rows) for c in range(value.cols)]
    return [value]


def show_value(value: Any) -> str:
    """A short text for a value: ``0.2113``, ``[0.12, -0.5, 1.3]``, ``3×3 matrix [...]``."""
    if isinstance(value, MpMatrix):
        entries = [mpmath.nstr(v, 4) for v in _entries(value)]
        shown = ", ".join(entries[:4]) + (", …" if len(entries) > 4 else "")
        if value.cols == 1:
            return f"[{shown}]"
        return f"{value.rows}×{value.cols} matrix [{shown}]"
    return str(mpmath.nstr(value, 6))


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing two expressions at random points."""

    status: str  # "equal", "different" or "unknown"
    checked: int = 0
    point: Point | None = None
    a_value: str | None = None
    b_value: str | None = None
    detail: str = ""


def compare(
    a: Any,
    b: Any,
    table: SymbolTable,
    *,
    seed: int = 0,
    count: int = 6,
    deadline: float | None = None,
    square: int | None = None,
) -> Comparison:
    """Compare two (expanded) expressions at ``count`` random points.

    "different" comes with the first point where they clearly differ; "equal" needs at
    least three points where both are defined and agree to ~28 digits.
    """
    ctx = make_context()
    checked = 0
    detail = ""
    for point in make_points(table, seed=seed, count=count, ctx=ctx, square=square):
        if deadline is not None and time.monotonic() > deadline:
            detail = "the time for this check ran out"
            break
        try:
            b_value = evaluate(b, point, ctx)
        except Undefined:
            continue
        except Unevaluable as exc:
            return Comparison("unknown", checked, detail=f"the expected value: {exc}")
        try:
            a_value = evaluate(a, point, ctx)
        except Undefined as exc:
            return Comparison(
                "different", checked, point, f"undefined ({exc})", show_value(b_value)
            )
        except Unevaluable as exc:
            return Comparison("unknown", checked, detail=str(exc))
        gap = differs(a_value, b_value, ctx)
        if gap is None:
            return Comparison(
                "different",
                checked,
                point,
                show_value(a_value),
                show_value(b_value),
                "shapes differ",
            )
        if gap > _DIFFERENT_ABOVE:
            return Comparison("different", checked, point, show_value(a_value), show_value(b_value))
        if gap < _EQUAL_BELOW:
            checked += 1
        else:
            detail = "the values agree only to a few digits"
    if checked >= 3 and not detail:
        return Comparison("equal", checked)
    return Comparison("unknown", checked, detail=detail or "too few points where both are defined")


def value_at(expr: Any, table: SymbolTable, values: Mapping[str, Any]) -> Any:
    """The value of an (expanded) expression at given numbers, as a float or a NumPy array.

    ``values`` maps symbol names to floats (scalars) or array-likes (vectors, matrices), e.g.
    to compare a student's formula with the student's own code at the same random point.
    Raises :class:`Unevaluable` or :class:`Undefined` like :func:`evaluate`.

    A value is computed once per table for the same expression (SymPy's structural equality)
    at the same numbers (bit for bit): checks draw their points from a fixed seed, so the
    reference formula, or a formula many students wrote, is met again at the same points.
    Only values are remembered; an expression without one is evaluated again each time.
    """
    key = _value_key(expr, values)
    if key is not None:
        saved = table.evaluations.get(key)
        if saved is not None:
            return saved.copy() if hasattr(saved, "copy") else saved
    result = _value_at(expr, table, values)
    if key is not None:
        table.evaluations.put(key, result.copy() if hasattr(result, "copy") else result)
    return result


def _value_key(expr: Any, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The memo key of ``value_at(expr, ·, values)``, or None when it has none."""
    import numpy

    try:
        hash(expr)
        numbers = []
        for name, given in values.items():
            array = numpy.asarray(given, dtype=float)
            numbers.append((str(name), type(name), array.shape, array.tobytes()))
    except Exception:  # value_at reports what is wrong with these values
        return None
    return (expr, tuple(numbers))


def _value_at(expr: Any, table: SymbolTable, values: Mapping[str, Any]) -> Any:
    import numpy

    ctx = make_context()
    dims: dict[Any, int] = {IDENTITY_SIZE: 1}
    bound: dict[Any, Any] = {}
    for name, given in values.items():
        spec = table.lookup(name)
        if spec is None or spec.kind == "function":
            raise Unevaluable(f"{name!r} is not a symbol of this question")
        array = numpy.asarray(given, dtype=float)
        obj = table.object(spec.name)
        if spec.kind == "scalar":
            bound[obj] = ctx.mpf(float(array))
            continue
        matrix = array.reshape(-1, 1) if spec.kind == "vector" else array
        for letter, size in zip(spec.shape, matrix.shape, strict=False):
            dims[table.dim(letter)] = int(size)
        bound[obj] = ctx.matrix(matrix.tolist())
    result = evaluate(expr, Point(dims, bound), ctx)
    if isinstance(result, MpMatrix):
        array = numpy.array(result.tolist(), dtype=float)
        return array[:, 0] if array.shape[1] == 1 else array  # a vector comes back 1-D
    if isinstance(result, ctx.mpc):
        raise Undefined("the value is not a real number")
    return float(result)
