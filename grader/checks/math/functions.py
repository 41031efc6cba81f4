"""SymPy classes the maths reader builds: σ, a 1×1-matrix-as-scalar, derivative labels and the
differentiation operator applied to an expression.

These are plain SymPy classes with their own printers, so an answer is echoed the way it was
read. Nothing here reads text or evaluates numbers; numeric values live in ``numeric.py``.
"""

from __future__ import annotations

from typing import Any

import sympy
from sympy.matrices.expressions.matadd import MatAdd
from sympy.matrices.expressions.matexpr import MatrixExpr

__all__ = ["Deriv", "Gradient", "MatrixGradient", "OneByOne", "gradient", "is_gradient", "sigma"]


class sigma(sympy.Function):  # type: ignore[misc]  # SymPy is untyped
    """The logistic function σ(z) = 1 / (1 + e^(−z)); its derivative is σ(z)(1 − σ(z))."""

    nargs = 1

    @classmethod
    def eval(cls, z: Any) -> Any:
        if z == 0:
            return sympy.S.Half
        return None

    def fdiff(self, argindex: int = 1) -> Any:
        value = sigma(self.args[0])
        return value * (1 - value)

    def _eval_rewrite_as_exp(self, z: Any, **kwargs: Any) -> Any:
        return 1 / (1 + sympy.exp(-z))

    def _eval_is_real(self) -> Any:
        return self.args[0].is_real


class OneByOne(sympy.Function):  # type: ignore[misc]
    """A 1×1 matrix product (yᵀXβ, ‖v‖²) used as a scalar; printed as the product itself.

    SymPy refuses to add scalars and matrix expressions; wrapping the 1×1 product lets
    ``1 + βᵀβ`` and ``log(yᵀy)`` be read. ``shape_of`` checks the argument really is 1×1.
    """

    nargs = 1
    is_commutative = True

    def _inner(self, printer: Any) -> Any:
        arg = self.args[0]
        text = printer._print(arg)
        return f"({text})" if isinstance(arg, MatAdd) else text

    def _sympystr(self, printer: Any) -> str:
        return str(self._inner(printer))

    def _latex(self, printer: Any) -> str:
        text = printer._print(self.args[0])
        return rf"\left({text}\right)" if isinstance(self.args[0], MatAdd) else str(text)

    def _mathml_presentation(self, printer: Any) -> Any:
        return printer._print(self.args[0])


class Deriv(sympy.Function):  # type: ignore[misc]
    """A derivative as a label or placeholder: ∂L/∂w2 is ``Deriv(L, w2)``; ∇J is ``Deriv(J)``.

    It is never evaluated: an answer that still contains one is not a formula in the
    question's symbols. The reader uses it to tell which derivative an equation names.
    """

    nargs = (1, 2)
    is_commutative = True

    @property
    def numerator(self) -> Any:
        return self.args[0]

    @property
    def denominator(self) -> Any | None:
        return self.args[1] if len(self.args) > 1 else None

    def label(self) -> str:
        """Canonical name, e.g. ``dL_dw2``; ``grad_J`` for ∇J without a variable."""
        num = getattr(self.numerator, "name", str(self.numerator))
        if self.denominator is None:
            return f"grad_{num}"
        return f"d{num}_d{getattr(self.denominator, 'name', self.denominator)}"

    def _sympystr(self, printer: Any) -> str:
        num = printer._print(self.numerator)
        if self.denominator is None:
            return f"nabla({num})"
        return f"d{num}/d{printer._print(self.denominator)}"

    def _latex(self, printer: Any) -> str:
        num = printer._print(self.numerator)
        if self.denominator is None:
            return rf"\nabla {num}"
        return rf"\frac{{\partial {num}}}{{\partial {printer._print(self.denominator)}}}"


class _Applied:
    """What the two gradient classes share: ``args`` are (operand, variable)."""

    args: tuple[Any, ...]

    @property
    def operand(self) -> Any:
        return self.args[0]

    @property
    def variable(self) -> Any:
        return self.args[1]

    def _sympystr(self, printer: Any) -> str:
        return f"d/d{printer._print(self.variable)}({printer._print(self.operand)})"

    def _latex(self, printer: Any) -> str:
        variable = printer._print(self.variable)
        operand = printer._print(self.operand)
        return rf"\frac{{\partial}}{{\partial {variable}}}\left({operand}\right)"


class Gradient(_Applied, sympy.Function):  # type: ignore[misc]
    """∂/∂w (f) for a scalar variable w: the derivative of ``operand``, itself a scalar.

    Unlike :class:`Deriv` it has a value: ``numeric`` differentiates the operand at each point.
    """

    nargs = 2
    is_commutative = True


class MatrixGradient(_Applied, MatrixExpr):  # type: ignore[misc]
    """∇_β f for a vector variable β: the gradient of the scalar ``operand``, shaped like β."""

    def __new__(cls, operand: Any, variable: Any) -> Any:
        return sympy.Basic.__new__(cls, operand, variable)

    @property
    def shape(self) -> tuple[Any, Any]:
        rows, cols = self.args[1].shape
        return (rows, cols)


def gradient(operand: Any, variable: Any) -> Any:
    """The derivative operator applied to ``operand``: a matrix expression for a vector
    variable, a scalar for a scalar one."""
    if isinstance(variable, MatrixExpr):
        return MatrixGradient(operand, variable)
    return Gradient(operand, variable)


def is_gradient(expr: Any) -> bool:
    """Does ``expr`` hold a derivative operator applied to an expression?"""
    return bool(expr.has(Gradient, MatrixGradient))
