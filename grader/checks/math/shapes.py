"""Shapes of matrix expressions, checked symbolically (X is n×p, β a p-vector, yᵀXβ a scalar).

``shape_of`` says what an expression is ("a p-vector") or why it has no shape ("multiplies an
n×p matrix by an n-vector"). Shapes are SymPy dimension symbols, never numbers, so a 1×1
result is known to be a scalar whatever n and p are. This module never evaluates values.
"""

from __future__ import annotations

from typing import Any

import sympy
from sympy.matrices.expressions.matexpr import MatrixExpr

from grader.checks.math._printing import plain
from grader.checks.math.functions import Deriv, Gradient, MatrixGradient, OneByOne
from grader.errors import CheckProblem

__all__ = [
    "IDENTITY_SIZE",
    "Shape",
    "ShapeError",
    "describe_shape",
    "public_shape",
    "raw_shape",
    "shape_of",
]

# (rows, cols) as SymPy dimensions; None is a scalar.
Shape = tuple[Any, Any] | None

# The size of an identity written as plain ``I``, until the reader sees what it meets.
IDENTITY_SIZE = sympy.Symbol("size_of_I", integer=True, positive=True)


class ShapeError(CheckProblem):
    """An expression whose shapes do not fit; ``message`` says how, for a student."""


def _article(word: str) -> str:
    return "an" if word[:1] in set("aefhilmnorsx8") or word.startswith("11") else "a"


def describe_shape(shape: Shape) -> str:
    """'a scalar', 'a p-vector', 'a row vector (1×p)', 'an n×p matrix'."""
    if shape is None or (shape[0] == 1 and shape[1] == 1):
        return "a scalar"
    rows, cols = (str(d) for d in shape)
    if IDENTITY_SIZE in shape:
        return "an identity matrix of unknown size"
    if cols == "1":
        return f"{_article(rows)} {rows}-vector"
    if rows == "1":
        return f"a row vector (1×{cols})"
    return f"{_article(rows)} {rows}×{cols} matrix"


def public_shape(shape: Shape) -> tuple[str, ...]:
    """``()`` for a scalar, ``("p",)`` for a column vector, ``("n", "p")`` for a matrix."""
    if shape is None or (shape[0] == 1 and shape[1] == 1):
        return ()
    if shape[1] == 1:
        return (str(shape[0]),)
    return (str(shape[0]), str(shape[1]))


def _is_scalar_shape(shape: Shape) -> bool:
    return shape is None or (shape[0] == 1 and shape[1] == 1)


def raw_shape(expr: Any, cache: dict[Any, Shape] | None = None) -> Shape:
    """(rows, cols) of ``expr``, None for a scalar; raises :class:`ShapeError`."""
    if cache is None:
        cache = {}
    if expr in cache:
        return cache[expr]
    shape = _shape(expr, cache)
    cache[expr] = shape
    return shape


def _shape(expr: Any, cache: dict[Any, Shape]) -> Shape:
    if isinstance(expr, OneByOne):
        inner = raw_shape(expr.args[0], cache)
        if not _is_scalar_shape(inner):
            raise ShapeError(
                f"uses {_printed(expr.args[0])}, {describe_shape(inner)}, where a scalar belongs"
            )
        return None
    if isinstance(expr, Gradient | MatrixGradient):
        inner = raw_shape(expr.operand, cache)
        if not _is_scalar_shape(inner):
            raise ShapeError(
                f"differentiates {_printed(expr.operand)}, {describe_shape(inner)}: only the "
                "derivative of a scalar is taken here"
            )
        return raw_shape(expr.variable, cache)
    if isinstance(expr, Deriv):
        den = expr.denominator
        return den.shape if isinstance(den, MatrixExpr) else None
    if not isinstance(expr, MatrixExpr):
        for arg in expr.args:
            inner = raw_shape(arg, cache)
            if not _is_scalar_shape(inner):
                raise ShapeError(
                    f"uses {_printed(arg)}, {describe_shape(inner)}, where a scalar belongs"
                )
        return None
    if isinstance(expr, sympy.Transpose):
        inner = raw_shape(expr.arg, cache)
        return None if inner is None else (inner[1], inner[0])
    if isinstance(expr, sympy.Inverse | sympy.MatPow):
        inner = raw_shape(expr.args[0], cache)
        if inner is not None and inner[0] != inner[1]:
            verb = "inverts" if isinstance(expr, sympy.Inverse) else "raises to a power"
            raise ShapeError(f"{verb} {describe_shape(inner)}, which is not square")
        return inner
    if isinstance(expr, sympy.MatMul):
        return _product_shape(expr, cache)
    if isinstance(expr, sympy.MatAdd):
        shapes = [raw_shape(arg, cache) for arg in expr.args]
        first = shapes[0]
        for other in shapes[1:]:
            if other != first and not (_is_scalar_shape(first) and _is_scalar_shape(other)):
                raise ShapeError(f"adds {describe_shape(first)} and {describe_shape(other)}")
        return first
    rows, cols = expr.shape  # MatrixSymbol, Identity, ZeroMatrix
    return (rows, cols)


def _product_shape(expr: Any, cache: dict[Any, Shape]) -> Shape:
    current: Shape = None
    for arg in expr.args:
        shape = raw_shape(arg, cache)
        if shape is None:
            continue
        if current is None:
            current = shape
        elif current[1] == shape[0]:
            current = (current[0], shape[1])
        elif _is_scalar_shape(current):
            current = shape  # a 1×1 factor (yᵀXβ) scales what follows
        elif not _is_scalar_shape(shape):
            raise ShapeError(f"multiplies {describe_shape(current)} by {describe_shape(shape)}")
    return current


def _printed(expr: Any) -> str:
    text = plain(expr)
    return text if len(text) <= 60 else text[:57] + "…"


def shape_of(expr: Any, table: Any = None) -> tuple[str, ...] | ShapeError:
    """The shape of ``expr`` as dimension letters (``()`` scalar, ``("p",)`` vector), or the
    :class:`ShapeError` that says why it has none. ``table`` is accepted for symmetry with the
    other checks; shapes come from the expression's own matrix symbols."""
    try:
        return public_shape(raw_shape(expr))
    except ShapeError as exc:
        return exc
