"""Recognises derivative notation: ∂L/∂w2, dL/dw2, dL_dw2, \\frac{∂L}{∂w_2}, ∇_β J, ∂/∂β (…).

A derivative of a name (∂L/∂w2, ∇_β J(β)) becomes a :class:`Deriv` label, which says *which*
derivative a left-hand side names; it is never evaluated. An operator with its variable
(``\\frac{\\partial}{\\partial\\beta}``, ``\\nabla_\\beta``, ``\\partial_\\beta``, ``d/d\\beta``)
followed by an expression is that expression's derivative (:func:`gradient`), which has a
value: the operand is the product term after the operator (a bracketed group, ``\\frac12(…)``
or ``βᵀXᵀXβ``), so ``∂/∂β a + ∂/∂β b`` differentiates each term. A pattern that does not match
leaves the parser where it was, so the same text is then read as an ordinary formula; once an
operator is recognised, a failure inside its operand is reported as it is. Used only by
``_grammar``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sympy

from grader.checks.math._cursor import ParseFailure
from grader.checks.math._lexer import Token
from grader.checks.math.functions import Deriv, gradient

if TYPE_CHECKING:
    from grader.checks.math._names import NameReader as Parser

__all__ = ["derivative_from_command", "derivative_from_name"]

# After a name, these end the operand: ∇_β J(β) = …, ∂/∂β L + …, ∂/∂z L · ∂z/∂w.
_TERM_ENDS = frozenset({"=", "+", "-", ")", "]", "}", "*", "·", "@", "/", ",", "⇒", "‖", "|"})


class _OperandFailure(ParseFailure):
    """A failure inside the operand of a recognised operator: not a reason to read the
    operator as something else, so it is passed on unchanged."""


def _numerator(parser: Parser, key: str) -> Any | None:
    spec = parser.table.lookup_key(key)
    if spec is not None:
        return sympy.Symbol(spec.name)
    if len(key) == 1 and key.isalpha():
        return sympy.Symbol(key)  # L, J, E: the question's loss, even if not declared
    if key == "ell":
        return sympy.Symbol("L")  # ℓ is the loss L, as in \mathcal{L}
    return None


def _denominator(parser: Parser, key: str) -> Any | None:
    spec = parser.table.lookup_key(key)
    if spec is None or spec.kind == "function":
        return None
    return parser.table.object(spec.name)


def _make(parser: Parser, numerator: Any, denominator: Any) -> Any:
    """The label, or the declared symbol when the question defines it (``dL_dz2 = a2 - y``)."""
    num = getattr(numerator, "name", None)
    den = getattr(denominator, "name", None)
    if isinstance(num, str) and isinstance(den, str):
        spec = parser.table.lookup_key(f"d{num}d{den}")
        if spec is not None and spec.kind != "function":
            return parser.table.object(spec.name)
    return Deriv(numerator, denominator)


def _name_with_subscripts(parser: Parser) -> str | None:
    if parser.peek().kind != "name":
        return None
    key = parser.advance().value
    while parser.at("_"):
        parser.advance()
        key += parser.subscript()
    return key


def _skip_call(parser: Parser) -> None:
    """Skip ``(β)`` after J in ∂J(β)/∂β: the argument only repeats the variable."""
    if not parser.at("("):
        return
    depth = 0
    while parser.peek().kind != "end":
        token = parser.advance()
        if token.kind == "op" and token.value == "(":
            depth += 1
        elif token.kind == "op" and token.value == ")":
            depth -= 1
            if depth == 0:
                return


def _differential(parser: Parser) -> str | None:
    """``∂w_2``, ``d w_2`` or ``dw2`` at the current position: the variable's key."""
    token = parser.peek()
    if token.kind == "cmd" and token.value == "partial":
        parser.advance()
        return _name_with_subscripts(parser)
    if token.kind == "name" and token.value == "d":
        parser.advance()
        return _name_with_subscripts(parser)
    if token.kind == "name" and token.value.startswith("d") and len(token.value) > 1:
        key = _name_with_subscripts(parser)
        return key[1:] if key else None
    return None


def derivative_from_name(parser: Parser, token: Token, key: str) -> Any | None:
    """``dL/dw2``, ``d L / d w_2`` or the single name ``dL_dw2``; the name token is consumed."""
    if parser.table.lookup_key(key) is not None or not key.startswith("d"):
        return None
    start = parser.pos
    if key == "d" and parser.at("/"):  # d/dβ (…): the operator
        parser.advance()
        den_key = _differential(parser)
        variable = _denominator(parser, den_key) if den_key else None
        if variable is not None:
            return _applied(parser, variable)
        parser.pos = start
        return None
    if key == "d":
        num_key = _name_with_subscripts(parser)
    else:
        num_key = key[1:]
        if not parser.at("/"):
            for cut in range(2, len(key) - 1):
                if key[cut] == "d":
                    num, den = _numerator(parser, key[1:cut]), _denominator(parser, key[cut + 1 :])
                    if num is not None and den is not None:
                        return _make(parser, num, den)
            return None
    numerator = _numerator(parser, num_key) if num_key else None
    if numerator is not None and parser.at("/"):
        parser.advance()
        den_key = _differential(parser)
        denominator = _denominator(parser, den_key) if den_key else None
        if denominator is not None:
            return _make(parser, numerator, denominator)
    parser.pos = start
    return None


def derivative_from_command(parser: Parser) -> Any | None:
    """At ``\\frac``, ``∂`` or ``∇``: the derivative label there, or None (position kept)."""
    start = parser.pos
    token = parser.advance()
    try:
        if token.value == "frac":
            result = _frac(parser)
        elif token.value == "partial":
            result = _inline(parser)
        else:
            result = _nabla(parser)
    except _OperandFailure:
        raise
    except ParseFailure:
        result = None  # a mismatch only means this is not derivative notation
    if result is None:
        parser.pos = start
    return result


def _braced(parser: Parser, reader: Any) -> Any | None:
    if not parser.at("{"):
        return None
    parser.advance()
    value = reader(parser)
    if value is None or not parser.at("}"):
        return None
    parser.advance()
    return value


def _frac_numerator(parser: Parser) -> Any | None:
    token = parser.peek()
    if (token.kind == "cmd" and token.value == "partial") or (
        token.kind == "name" and token.value == "d"
    ):
        parser.advance()
        if parser.at("}"):
            return "operator"
        key = _braced(parser, _name_with_subscripts) if parser.at("{") else None
        key = key or _name_with_subscripts(parser)  # \partial{\mathcal{L}} or \partial L
    elif token.kind == "name" and token.value.startswith("d"):
        whole = _name_with_subscripts(parser)
        key = whole[1:] if whole else None
    else:
        return None
    _skip_call(parser)
    return _numerator(parser, key) if key else None


def _frac(parser: Parser) -> Any | None:
    numerator = _braced(parser, _frac_numerator)
    if numerator is None:
        return None
    den_key = _braced(parser, _differential)
    denominator = _denominator(parser, den_key) if den_key else None
    if denominator is None:
        return None
    if isinstance(numerator, str):  # \frac{\partial}{\partial β} J(β) or … (βᵀXᵀXβ)
        return _applied(parser, denominator)
    return _make(parser, numerator, denominator)


def _applied(parser: Parser, variable: Any) -> Any:
    """After an operator in ``variable``: the label of a name (∇_β J(β), ∂/∂z L) when the
    name stands alone, else the derivative of the product term that follows."""
    if parser.peek().kind == "name":
        start = parser.pos
        key = _name_with_subscripts(parser)
        symbol = _numerator(parser, key) if key else None
        if symbol is not None:
            _skip_call(parser)
            if _ends_term(parser):
                return _make(parser, symbol, variable)
        parser.pos = start
    return gradient(_term(parser), variable)


def _ends_term(parser: Parser) -> bool:
    token = parser.peek()
    return token.kind == "end" or (token.kind == "op" and token.value in _TERM_ENDS)


def _term(parser: Parser) -> Any:
    """The operand of a recognised operator: the (signed) product term that follows."""
    try:
        parser.enter()
        try:
            return parser.signed_product()
        finally:
            parser.depth -= 1
    except _OperandFailure:
        raise
    except ParseFailure as exc:
        raise _OperandFailure(exc.message, exc.position) from exc


def _subscript_variable(parser: Parser) -> Any | None:
    """``_β`` or ``_{β}`` after ∇ or ∂: the declared variable, or None."""
    parser.advance()
    return _denominator(parser, parser.subscript())


def _inline(parser: Parser) -> Any | None:
    if parser.at("_"):  # \partial_β (…)
        variable = _subscript_variable(parser)
        return None if variable is None else _applied(parser, variable)
    if parser.at("/"):  # ∂/∂β (…)
        parser.advance()
        den_key = _differential(parser)
        variable = _denominator(parser, den_key) if den_key else None
        return None if variable is None else _applied(parser, variable)
    key = _name_with_subscripts(parser)
    numerator = _numerator(parser, key) if key else None
    _skip_call(parser)
    if numerator is None or not parser.at("/"):
        return None
    parser.advance()
    den_key = _differential(parser)
    denominator = _denominator(parser, den_key) if den_key else None
    return None if denominator is None else _make(parser, numerator, denominator)


def _nabla(parser: Parser) -> Any | None:
    if parser.at("_"):
        variable = _subscript_variable(parser)
        return None if variable is None else _applied(parser, variable)
    # ∇J or ∇ ½‖y − Xβ‖²: the variable is the question's, which a derivation fills in.
    start = parser.pos
    if parser.peek().kind == "name":
        key = _name_with_subscripts(parser)
        symbol = _numerator(parser, key) if key else None
        if symbol is not None:
            _skip_call(parser)
            if _ends_term(parser):
                return Deriv(symbol)
        parser.pos = start
    return Deriv(_term(parser))
