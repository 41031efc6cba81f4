"""Builds SymPy objects for the reader: sums, products, powers, transposes, inverses, calls.

Matrix products are built unevaluated (``MatMul``/``MatAdd`` without ``doit``) because SymPy's
canonicalisation cancels ``(X Xᵀ)⁻¹ X Xᵀ`` to ``I`` even for a tall ``X``. A literal ``0`` is a
zero of whatever shape it meets and a literal ``I`` an identity of the size it meets; a 1×1
product used next to scalars becomes :class:`OneByOne`. Powers are capped so that ``9**9**9``
is refused instead of computed. Nothing here reads text or evaluates numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sympy
from sympy.matrices.expressions.matexpr import MatrixExpr

from grader.checks.math.functions import OneByOne, sigma
from grader.checks.math.shapes import IDENTITY_SIZE, ShapeError, describe_shape, raw_shape

__all__ = [
    "MAX_EXPONENT",
    "BuildError",
    "add",
    "apply_function",
    "divide",
    "has_scalar_function",
    "inverse",
    "is_matrix",
    "multiply",
    "negate",
    "norm",
    "power",
    "transpose",
]

MAX_EXPONENT = 100
_MAX_NUMBER_BITS = 4000

_SCALAR_FUNCTIONS: dict[str, Any] = {
    "sigma": sigma, "sigmoid": sigma, "exp": sympy.exp, "log": sympy.log, "ln": sympy.log,
    "tanh": sympy.tanh, "sqrt": sympy.sqrt, "sin": sympy.sin, "cos": sympy.cos,
    "abs": sympy.Abs, "Abs": sympy.Abs,
}  # fmt: skip


class BuildError(Exception):
    """A formula that reads but cannot be built (too large an exponent, σ of a matrix)."""


def is_matrix(expr: Any) -> bool:
    return isinstance(expr, MatrixExpr)


def _shape(expr: Any) -> Any:
    try:
        return raw_shape(expr)
    except ShapeError:
        return getattr(expr, "shape", None) if is_matrix(expr) else None


def _scalar(expr: Any) -> Any:
    """A 1×1 matrix product as a scalar; other values unchanged."""
    return OneByOne(expr) if is_matrix(expr) else expr


def _is_one_by_one(expr: Any) -> bool:
    shape = _shape(expr)
    return shape is not None and shape[0] == 1 and shape[1] == 1


def _resolve_identity(expr: Any, size: Any) -> Any:
    return expr.xreplace({IDENTITY_SIZE: size}) if expr.has(IDENTITY_SIZE) else expr


def add(terms: Sequence[Any]) -> Any:
    """The sum of ``terms``; ``0`` terms vanish next to matrices."""
    flat: list[Any] = []
    for term in terms:
        flat.extend(term.args if isinstance(term, sympy.MatAdd) else [term])
    matrices = [t for t in flat if is_matrix(t)]
    if not matrices:
        return sympy.Add(*flat)
    scalars = [t for t in flat if not is_matrix(t) and t != 0]
    if all(_is_one_by_one(m) for m in matrices):
        return sympy.Add(*scalars, *(OneByOne(m) for m in matrices))
    known = [_shape(m) for m in matrices if not m.has(IDENTITY_SIZE)]
    if known and known[0] is not None and known[0][0] == known[0][1]:
        matrices = [_resolve_identity(m, known[0][0]) for m in matrices]
    # A scalar added to a non-1×1 matrix is a shape error; keep it as a 1×1 block so the
    # report can say so (it prints as the scalar itself).
    extra = [sympy.MatMul(s, sympy.OneMatrix(1, 1)) for s in scalars]
    return sympy.MatAdd(*matrices, *extra)


def negate(expr: Any) -> Any:
    return multiply([sympy.Integer(-1), expr])


def multiply(factors: Sequence[Any], dots: Sequence[bool] = ()) -> Any:
    """The product of ``factors`` in order; ``dots[i]`` marks ``·`` before factor ``i``.

    ``u · v`` of two column vectors is the dot product uᵀv; a 1×1 sub-product that does not
    chain with its neighbours (``yᵀXβ · X``) acts as a scalar.
    """
    coeffs: list[Any] = []
    mats: list[Any] = []
    for index, factor in enumerate(factors):
        dot = index < len(dots) and dots[index]
        parts: list[Any]
        if isinstance(factor, sympy.MatMul):
            coeff, parts = factor.as_coeff_matrices()
            coeffs.append(coeff)
        elif is_matrix(factor):
            parts = [factor]
        else:
            coeffs.append(factor)
            continue
        if dot and mats and _is_column(mats[-1]) and _is_column(parts[0]):
            left = mats.pop()
            coeffs.append(OneByOne(sympy.MatMul(sympy.Transpose(left), parts[0])))
            parts = parts[1:]
        mats.extend(parts)
    mats = _chain(mats, coeffs)
    coeff = sympy.Mul(*coeffs)
    if not mats:
        return coeff
    if any(m.has(IDENTITY_SIZE) for m in mats):
        mats = _size_identities(mats)
    if coeff == 1:
        return mats[0] if len(mats) == 1 else sympy.MatMul(*mats)
    return sympy.MatMul(coeff, *mats)


def _is_column(expr: Any) -> bool:
    shape = _shape(expr)
    return shape is not None and shape[1] == 1 and shape[0] != 1


def _chain(mats: list[Any], coeffs: list[Any]) -> list[Any]:
    """Group factors into runs that chain; 1×1 runs among others become scalar coefficients."""
    groups: list[list[Any]] = []
    shapes: list[Any] = []  # the running shape of each group, kept to stay linear in length
    for mat in mats:
        right = _shape(mat)
        if groups:
            left = shapes[-1]
            if left is None or right is None or left[1] == right[0]:
                groups[-1].append(mat)
                shapes[-1] = None if left is None or right is None else (left[0], right[1])
                continue
        groups.append([mat])
        shapes.append(right)
    if len(groups) == 1:
        return groups[0]
    out: list[Any] = []
    for group, shape in zip(groups, shapes, strict=True):
        if shape is not None and shape[0] == 1 and shape[1] == 1:
            coeffs.append(OneByOne(_product(group)))
        else:
            out.extend(group)
    return out


def _product(mats: list[Any]) -> Any:
    return mats[0] if len(mats) == 1 else sympy.MatMul(*mats)


def _size_identities(mats: list[Any]) -> list[Any]:
    out = list(mats)
    for index, mat in enumerate(out):
        if not mat.has(IDENTITY_SIZE):
            continue
        neighbour = None
        if index > 0 and not out[index - 1].has(IDENTITY_SIZE):
            shape = _shape(out[index - 1])
            neighbour = shape[1] if shape else None
        elif index + 1 < len(out) and not out[index + 1].has(IDENTITY_SIZE):
            shape = _shape(out[index + 1])
            neighbour = shape[0] if shape else None
        if neighbour is not None:
            out[index] = _resolve_identity(mat, neighbour)
    return out


def divide(numerator: Any, denominator: Any) -> Any:
    if is_matrix(denominator):
        if _is_one_by_one(denominator):
            return multiply([numerator, sympy.Pow(OneByOne(denominator), -1)])
        return multiply([numerator, sympy.Inverse(denominator)])
    if denominator == 0:
        raise BuildError("division by zero")
    return multiply([numerator, sympy.Pow(denominator, -1)])


def transpose(expr: Any) -> Any:
    if not is_matrix(expr):
        return expr  # a scalar is its own transpose
    if isinstance(expr, sympy.Transpose):
        return expr.arg
    if _is_one_by_one(expr):
        return expr
    return sympy.Transpose(expr)


def inverse(expr: Any) -> Any:
    if not is_matrix(expr):
        if expr == 0:
            raise BuildError("the inverse of 0")
        return sympy.Pow(expr, -1)
    return sympy.Inverse(expr)


def _check_exponent(base: Any, exponent: Any) -> None:
    if not exponent.is_number or not exponent.is_Rational:
        return
    num, den = int(exponent.p), int(exponent.q)
    if abs(num) > MAX_EXPONENT or den > MAX_EXPONENT:
        text = str(exponent) if len(str(exponent)) < 20 else str(exponent)[:20] + "…"
        raise BuildError(f"the exponent {text} is too large (the limit is {MAX_EXPONENT})")
    if base.is_Rational and base != 0:
        bits = max(int(base.p).bit_length(), int(base.q).bit_length())
        if bits * abs(num) > _MAX_NUMBER_BITS:
            raise BuildError("the number is too large to work with")


def power(base: Any, exponent: Any) -> Any:
    if is_matrix(exponent):
        raise BuildError(f"an exponent must be a scalar, not {describe_shape(_shape(exponent))}")
    if is_matrix(base) and not _is_one_by_one(base):
        if exponent == -1:
            return sympy.Inverse(base)
        if not (exponent.is_Integer and abs(int(exponent)) <= MAX_EXPONENT):
            raise BuildError(f"a matrix can only be raised to a whole power, not {exponent}")
        k = int(exponent)
        if k == 1:
            return base
        return sympy.MatPow(base, k)
    base = _scalar(base)
    _check_exponent(base, exponent)
    if base == 0 and exponent.is_number and exponent.is_negative:
        raise BuildError("division by zero")
    try:
        return sympy.Pow(base, exponent)
    except ZeroDivisionError as exc:
        raise BuildError("division by zero") from exc


def norm(expr: Any) -> Any:
    """‖v‖ = sqrt(vᵀv) for a vector, |x| for a scalar."""
    if not is_matrix(expr) or _is_one_by_one(expr):
        return sympy.Abs(_scalar(expr))
    shape = _shape(expr)
    if shape is not None and shape[1] == 1:
        return sympy.sqrt(OneByOne(sympy.MatMul(sympy.Transpose(expr), expr)))
    if shape is not None and shape[0] == 1:
        return sympy.sqrt(OneByOne(sympy.MatMul(expr, sympy.Transpose(expr))))
    raise BuildError(f"‖…‖ of {describe_shape(shape)}: only vector norms are supported")


def apply_function(name: str, args: Sequence[Any]) -> Any:
    """A built-in function applied to its arguments (σ, exp, log, tanh, sqrt, inv, ...)."""
    if len(args) != 1:
        raise BuildError(f"{name} takes one argument, not {len(args)}")
    (arg,) = args
    if name in ("inv", "Inverse"):
        return inverse(arg)
    if name in ("transpose", "Transpose"):
        return transpose(arg)
    function = _SCALAR_FUNCTIONS[name]
    if is_matrix(arg):
        if not _is_one_by_one(arg):
            raise BuildError(
                f"{name} of {describe_shape(_shape(arg))}: only scalar arguments are supported"
            )
        arg = OneByOne(arg)
    if (name == "log" and arg == 0) or (name == "log" and arg.is_number and arg.is_negative):
        raise BuildError("the logarithm of a number that is not positive")
    return function(arg)


def has_scalar_function(name: str) -> bool:
    return name in _SCALAR_FUNCTIONS or name in ("inv", "Inverse", "transpose", "Transpose")
