"""Plain-text and MathML printing of read formulas, fast and without rewriting them.

SymPy's own printers decide signs and brackets of matrix products by negating them, which
runs ``MatMul.doit`` (slow, and the same canonicalisation that cancels (X Xᵀ)⁻¹ X Xᵀ). These
printer subclasses decide from the stored coefficient instead. Printing never changes the
expression; the plain text is in SymPy's syntax so ``read_value`` can read it back.
"""

from __future__ import annotations

from typing import Any

import sympy
from sympy.printing.mathml import MathMLPresentationPrinter
from sympy.printing.precedence import PRECEDENCE, precedence, precedence_traditional
from sympy.printing.str import StrPrinter

__all__ = ["mathml", "plain"]


def _negative_coefficient(expr: Any) -> bool:
    coeff = expr.args[0] if expr.args else None
    return bool(coeff is not None and coeff.is_number and coeff.is_extended_negative)


def _precedence(item: Any, traditional: bool = False) -> int:
    if isinstance(item, sympy.MatMul):
        return int(PRECEDENCE["Add"] if _negative_coefficient(item) else PRECEDENCE["Mul"])
    if isinstance(item, sympy.MatAdd):
        return int(PRECEDENCE["Add"])
    value = precedence_traditional(item) if traditional else precedence(item)
    return int(value)


def _split(expr: Any) -> tuple[bool, list[Any]]:
    """(negative, factors) of a matrix product, the sign taken out of its coefficient."""
    coeff, matrices = expr.as_coeff_matrices()
    # c·1₁ is how the reader keeps a scalar added to a matrix: print it as c.
    matrices = [m for m in matrices if not isinstance(m, sympy.OneMatrix)] or (
        [] if coeff != 1 else matrices
    )
    negative = bool(coeff.is_number and coeff.is_extended_negative)
    if negative:
        coeff = -coeff
    factors = ([] if coeff == 1 else [coeff]) + list(matrices)
    return negative, factors


class _Plain(StrPrinter):  # type: ignore[misc]  # SymPy is untyped
    def parenthesize(self, item: Any, level: int, strict: bool = False) -> str:
        prec = _precedence(item)
        if prec < level or (not strict and prec <= level):
            return f"({self._print(item)})"
        return str(self._print(item))

    def _factor(self, item: Any) -> str:
        text = str(self._print(item))
        if isinstance(item, sympy.Add | sympy.MatAdd) or (item.is_Rational and not item.is_Integer):
            return f"({text})"
        if isinstance(item, sympy.Mul) and text.startswith("-"):
            return f"({text})"
        return text

    def _print_Function(self, expr: Any) -> str:
        if not expr.args:  # J written without its argument stands for J(β)
            return type(expr).__name__
        return str(super()._print_Function(expr))

    def _print_Transpose(self, expr: Any) -> str:
        inner = str(self._print(expr.arg))
        return f"{inner}.T" if isinstance(expr.arg, sympy.MatrixSymbol) else f"({inner}).T"

    def _print_MatPow(self, expr: Any) -> str:
        base, power = expr.args
        inner = str(self._print(base))
        if not isinstance(base, sympy.MatrixSymbol):
            inner = f"({inner})"
        return f"{inner}**({power})" if power.is_negative else f"{inner}**{power}"

    def _print_MatMul(self, expr: Any) -> str:
        negative, factors = _split(expr)
        return ("-" if negative else "") + "*".join(self._factor(f) for f in factors)

    def _print_MatAdd(self, expr: Any) -> str:
        parts: list[str] = []
        for term in expr.args:
            text = str(self._print(term))
            if isinstance(term, sympy.MatAdd):
                text = f"({text})"
            if not parts:
                parts.append(text)
            elif text.startswith("-"):
                parts.append(f"- {text[1:]}")
            else:
                parts.append(f"+ {text}")
        return " ".join(parts)


class _MathML(MathMLPresentationPrinter):  # type: ignore[misc]
    def parenthesize(self, item: Any, level: int, strict: bool = False) -> Any:
        prec = _precedence(item, traditional=True)
        if prec < level or (not strict and prec <= level):
            row = self.dom.createElement("mrow")
            row.appendChild(self._l_paren())
            row.appendChild(self._print(item))
            row.appendChild(self._r_paren())
            return row
        return self._print(item)

    def _print_Function(self, expr: Any) -> Any:
        # SymPy lower-cases function names (J → j) and spells σ out; keep them as declared.
        name = type(expr).__name__
        identifier = self.dom.createElement("mi")
        identifier.appendChild(self.dom.createTextNode("σ" if name == "sigma" else name))
        row = self.dom.createElement("mrow")
        row.appendChild(identifier)
        if expr.args:
            row.appendChild(self._paren_comma_separated(*expr.args))
        return row

    def _print_Deriv(self, expr: Any) -> Any:
        def partial(of: Any) -> Any:
            row = self.dom.createElement("mrow")
            row.appendChild(self._operator("∂"))
            row.appendChild(self._print(of))
            return row

        if expr.denominator is None:
            row = self.dom.createElement("mrow")
            row.appendChild(self._operator("∇"))
            row.appendChild(self._print(expr.numerator))
            return row
        fraction = self.dom.createElement("mfrac")
        fraction.appendChild(partial(expr.numerator))
        fraction.appendChild(partial(expr.denominator))
        return fraction

    def _print_Gradient(self, expr: Any) -> Any:
        fraction = self.dom.createElement("mfrac")
        fraction.appendChild(self._operator("∂"))
        below = self.dom.createElement("mrow")
        below.appendChild(self._operator("∂"))
        below.appendChild(self._print(expr.variable))
        fraction.appendChild(below)
        row = self.dom.createElement("mrow")
        row.appendChild(fraction)
        row.appendChild(self._l_paren())
        row.appendChild(self._print(expr.operand))
        row.appendChild(self._r_paren())
        return row

    _print_MatrixGradient = _print_Gradient

    def _operator(self, text: str) -> Any:
        element = self.dom.createElement("mo")
        element.appendChild(self.dom.createTextNode(text))
        return element

    def _print_MatMul(self, expr: Any) -> Any:
        negative, factors = _split(expr)
        row = self.dom.createElement("mrow")
        if negative:
            row.appendChild(self._operator("-"))
        for index, factor in enumerate(factors):
            if index:
                row.appendChild(self._operator("&InvisibleTimes;"))
            row.appendChild(self.parenthesize(factor, PRECEDENCE["Mul"], strict=True))
        return row

    def _print_MatAdd(self, expr: Any) -> Any:
        row = self.dom.createElement("mrow")
        for index, term in enumerate(expr.args):
            if isinstance(term, sympy.MatMul) and _negative_coefficient(term):
                row.appendChild(self._operator("-"))
                _, factors = _split(term)
                term = factors[0] if len(factors) == 1 else sympy.MatMul(*factors)
            elif index:
                row.appendChild(self._operator("+"))
            row.appendChild(self._print(term))
        return row


def plain(expr: Any) -> str:
    """``expr`` in SymPy's plain syntax (``X.T*(X*beta - y)``)."""
    return str(_Plain().doprint(expr))


def mathml(expr: Any) -> str:
    """Presentation MathML of ``expr`` (an ``<mrow>``, no ``<math>`` wrapper)."""
    return str(_MathML().doprint(expr))
