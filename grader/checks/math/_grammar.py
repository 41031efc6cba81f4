"""Recursive-descent reader from tokens to SymPy objects, one grammar for Python and LaTeX.

::

    statement := side ('=' side)*          (split at ⇒ and = in parser.py)
    side      := ['-'|'+'] product (('+'|'-') product)*
    product   := unary ((('*'|'@'|'·'|'/') unary) | implicit postfix)*
    unary     := ('-'|'+') unary | postfix
    postfix   := atom ("'" | '.T' | '^T' | '^t' | '^' exponent | '**' unary)*
                 | bars ('_2' | '^' exponent)*     (‖v‖_2^2: the Euclidean norm's subscript)
    atom      := number | name [call] | '(' side ')' | '{' side '}' | \\frac | \\sqrt
                 | '‖' side '‖' | '|' side '|' | derivative label (∂L/∂w2, dL/dw2, ∇_β J)

``^t`` is a transpose only on a matrix or vector, where the question has no ``t`` of its own.

Names are looked up in the question's :class:`SymbolTable` (then the built-in functions);
an unknown run of letters is split into known names (``yy^T`` is y·yᵀ) or refused. The
reader never evaluates anything: it only builds SymPy objects through ``_build``. Nesting is
capped (``MAX_DEPTH``) so hostile input fails fast instead of exhausting the stack.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import sympy

from grader.checks.math import _build as build
from grader.checks.math._cursor import MAX_DEPTH, ParseFailure
from grader.checks.math._lexer import Token
from grader.checks.math._names import NameReader

__all__ = ["MAX_DEPTH", "ParseFailure", "Parser"]

_OPENERS = {"(": ")", "[": "]", "{": "}"}


class Parser(NameReader):
    """Reads one side of a statement from a token list (``parser.py`` splits at ``=``)."""

    # -- grammar -------------------------------------------------------------------------
    def side(self) -> Any:
        terms = [self.signed_product()]
        while self.peek().kind == "op" and self.peek().value in "+-":
            sign = self.advance().value
            term = self.signed_product()
            terms.append(build.negate(term) if sign == "-" else term)
        return build.add(terms) if len(terms) > 1 else terms[0]

    def signed_product(self) -> Any:
        if self.at("-"):
            self.advance()
            self.enter()
            try:
                return build.negate(self.signed_product())
            finally:
                self.depth -= 1
        if self.at("+"):
            self.advance()
            return self.signed_product()
        return self.product()

    def product(self) -> Any:
        factors = [self.postfix()]
        dots = [False]
        while True:
            token = self.peek()
            if token.kind == "op" and token.value in ("*", "@", "·", "/"):
                self.advance()
                factor = self.unary()
                if token.value == "/":
                    try:
                        if build.is_matrix(factor):
                            factors = [build.divide(build.multiply(factors, dots), factor)]
                            dots = [False]
                        else:  # a/b/c stays one flat product: linear in the number of factors
                            factors.append(build.divide(sympy.Integer(1), factor))
                            dots.append(False)
                    except build.BuildError as exc:
                        raise self.fail(str(exc), token) from exc
                    continue
                factors.append(factor)
                dots.append(token.value == "·")
            elif self.starts_factor(token):
                factors.append(self.postfix())
                dots.append(False)
            else:
                break
        try:
            return build.multiply(factors, dots) if len(factors) > 1 else factors[0]
        except build.BuildError as exc:
            raise self.fail(str(exc)) from exc

    def unary(self) -> Any:
        if self.at("-") or self.at("+"):
            sign = self.advance().value
            self.enter()
            try:
                value = self.unary()
            finally:
                self.depth -= 1
            return build.negate(value) if sign == "-" else value
        return self.postfix()

    def starts_factor(self, token: Token) -> bool:
        if token.kind in ("num", "name"):
            return True
        if token.kind == "cmd":
            return token.value in ("frac", "sqrt", "partial", "nabla", "unsupported")
        if token.kind == "op":
            if token.value in ("(", "[", "{"):
                return True
            if token.value in ("‖", "|"):
                return not (self.closers and self.closers[-1] == token.value)
        return False

    def postfix(self) -> Any:
        first = self.peek()
        bars = first.kind == "op" and first.value in ("‖", "|")
        value = self.atom()
        powers = 0  # a chain of powers nests like brackets: x^x^x… counts toward MAX_DEPTH
        try:
            while True:
                token = self.peek()
                if token.kind != "op":
                    break
                if token.value == "'":
                    self.advance()
                    value = build.transpose(value)
                elif (
                    token.value == "." and self.peek(1).kind == "name" and self.peek(1).value == "T"
                ):
                    self.advance()
                    self.advance()
                    value = build.transpose(value)
                elif token.value in ("^", "**"):
                    self.advance()
                    self.enter()
                    powers += 1
                    if token.value == "^":
                        value = self.superscript(value)
                    else:
                        value = self.raise_to(value, self.unary(), token)
                elif token.value == "_" and bars:
                    self.norm_subscript(first.value)
                elif token.value == "_":
                    raise self.fail("a subscript '_' must follow a symbol name")
                else:
                    break
            return value
        finally:
            self.depth -= powers

    def norm_subscript(self, bar: str) -> None:
        """``‖v‖_2``, ``‖v‖_{2}``, ``‖v‖₂`` (also after the square): the Euclidean norm, the
        one ``‖v‖`` means; any other subscript (``‖β‖_1``) is a norm this reader lacks.
        ``bar`` is the opening bar as the student typed it, for the message."""
        underscore = self.advance()
        inner = self.group_tokens() if self.at("{") else [self.peek()]
        if len(inner) == 1 and inner[0].kind == "num" and inner[0].value == "2":
            self.pos += len(inner) + 2 if self.at("{") else 1
            return
        shown = "".join(t.text for t in inner) or "?"
        bars = f"{bar}…{bar}"
        raise self.fail(
            f"only the Euclidean norm {bars} (or {bars}_2) can be read, not {bars}_{shown}",
            underscore,
        )

    def raise_to(self, base: Any, exponent: Any, token: Token) -> Any:
        try:
            return build.power(base, exponent)
        except build.BuildError as exc:
            raise self.fail(str(exc), token) from exc

    def superscript(self, base: Any) -> Any:
        """After '^': a transpose mark (T, \\top, {\\mathsf T}), -T, or an exponent."""
        token = self.peek()
        rest: Token | None = None
        if token.kind == "name" and len(token.value) > 1 and not self.table.lookup_key(token.value):
            # X^TX: without braces the exponent is one letter, the rest is the next factor.
            first = Token("name", token.value[0], token.pos, token.text[:1])
            rest = Token("name", token.value[1:], token.pos + 1, token.text[1:])
            self.tokens[self.pos : self.pos + 1] = [first, rest]
        start = self.pos
        inner = self.group_tokens() if self.at("{") else [self.peek()]
        marks = [t for t in inner if t.kind != "op" or t.value not in "{}"]
        if len(marks) == 1 and (self.is_tmark(marks[0]) or self.is_small_t(marks[0], base, rest)):
            self.pos = start + (len(inner) + 2 if self.at("{") else 1)
            return build.transpose(base)
        if (
            len(marks) == 2
            and marks[0].value == "-"
            and (self.is_tmark(marks[1]) or self.is_small_t(marks[1], base))
        ):
            self.pos = start + len(inner) + 2
            return build.transpose(build.inverse(base))
        token = self.peek()
        if self.at("{"):
            self.advance()
            self.enter()
            self.closers.append("}")
            try:
                exponent = self.side()
            finally:
                self.closers.pop()
                self.depth -= 1
            self.expect("}")
            exponent = self.power_tail(exponent, base)
        elif token.kind == "op" and token.value in "-+":
            self.advance()
            exponent = self.power_tail(self.exponent_atom(), base)  # e^-x^2 is e^(-(x^2))
            exponent = build.negate(exponent) if token.value == "-" else exponent
        else:
            exponent = self.power_tail(self.exponent_atom(), base)
        return self.raise_to(base, exponent, token)

    def power_tail(self, exponent: Any, base: Any) -> Any:
        """``2^3^2`` is 2^(3^2), as ``**`` is in Python; a transpose mark (``A^{-1}^T``, and
        ``A^{-1}^t`` where ``t`` is a transpose for ``base``) still applies to the whole
        power."""
        token = self.peek()
        if token.kind != "op" or token.value not in ("^", "**"):
            return exponent
        if token.value == "^" and self.transpose_follows(base):
            return exponent
        self.advance()
        self.enter()
        try:
            if token.value == "^":
                return self.superscript(exponent)
            return self.raise_to(exponent, self.unary(), token)
        finally:
            self.depth -= 1

    def transpose_follows(self, base: Any) -> bool:
        """At '^' after the power of ``base``: is a transpose mark (T, \\top, {T}, -T, TX, or
        a t that is a transpose for ``base``, see ``is_small_t``) next?"""
        marks = [self.peek(k) for k in (1, 2, 3)]
        marks = [t for t in marks if t.kind != "op" or t.value not in "{}-"]
        first = marks[0] if marks else None
        if first is None:
            return False
        if self.is_tmark(first):
            return True
        if first.kind == "name" and first.value.startswith("t"):
            head = Token("name", "t", first.pos, first.text[:1])
            rest = None
            if len(first.value) > 1:
                rest = Token("name", first.value[1:], first.pos + 1, first.text[1:])
            return self.is_small_t(head, base, rest)
        return (
            first.kind == "name"
            and first.value.startswith("T")
            and not self.table.lookup_key(first.value)
        )

    def is_tmark(self, token: Token) -> bool:
        return (token.kind == "cmd" and token.value == "tmark") or (
            token.kind == "name" and token.value == "T"
        )

    def is_small_t(self, token: Token, base: Any, rest: Token | None = None) -> bool:
        """``X^t``: a transpose too, on a matrix or vector, where ``t`` means nothing else in
        the question (no symbol ``t``, no ``h_t``: there ``h^t`` keeps its meaning). ``rest``
        is what followed the ``t`` in one word: ``X^ty`` is Xᵀy, but ``X^top`` or ``y^tanh``
        is no transpose followed by 'op' or 'anh'."""
        return (
            token.kind == "name"
            and token.value == "t"
            and self.table.lookup_key("t") is None
            and not self.table.uses_t_as_index()
            and build.is_matrix(base)
            and (
                rest is None
                or self.table.lookup_key(rest.value) is not None
                or bool(self.split_name(rest.value, {}))
            )
        )

    def exponent_atom(self) -> Any:
        """One character of exponent without braces, as LaTeX reads ``e^x2`` (e^x · 2)."""
        token = self.peek()
        if token.kind == "num":
            self.advance()
            return self.number(token)
        if token.kind == "name" and len(token.value) > 1 and not self.table.lookup_key(token.value):
            self.tokens[self.pos] = Token("name", token.value[1:], token.pos + 1, token.text[1:])
            return self.resolve_name(token, token.value[0])
        return self.atom()

    def number(self, token: Token) -> Any:
        value = Fraction(token.value)
        return sympy.Rational(value.numerator, value.denominator)

    def atom(self) -> Any:
        token = self.peek()
        if token.kind == "num":
            self.advance()
            return self.number(token)
        if token.kind == "name":
            return self.name_atom()
        if token.kind == "op" and token.value in _OPENERS:
            return self.group()
        if token.kind == "op" and token.value in ("‖", "|"):
            return self.bars(token.value)
        if token.kind == "cmd":
            return self.command(token)
        raise self.unexpected(token)

    def group(self) -> Any:
        opener = self.advance()
        closer = _OPENERS[opener.value]
        self.enter()
        self.closers.append(closer)
        try:
            if self.at(closer):
                raise self.fail("empty brackets")
            value = self.side()
            if self.at(","):
                raise self.fail("a ',' inside brackets: lists and tuples are not formulas")
            if not self.at(closer):
                if self.peek().kind == "end":
                    raise self.fail(
                        f"the '{opener.text}' at column {opener.pos + 1} is never closed"
                    )
                raise self.fail(f"expected '{closer}' but found '{self.peek().text}'")
            self.advance()
            return value
        finally:
            self.closers.pop()
            self.depth -= 1

    def bars(self, bar: str) -> Any:
        opener = self.advance()
        self.enter()
        self.closers.append(bar)
        try:
            inner = self.side()
            if not self.at(bar):
                raise self.fail(f"the '{opener.text}' at column {opener.pos + 1} is never closed")
            self.advance()
        finally:
            self.closers.pop()
            self.depth -= 1
        try:
            return build.norm(inner) if bar == "‖" or build.is_matrix(inner) else sympy.Abs(inner)
        except build.BuildError as exc:
            raise self.fail(str(exc), opener) from exc

    def command(self, token: Token) -> Any:
        if token.value == "frac":
            return self.frac()
        if token.value == "sqrt":
            self.advance()
            root = None
            if self.at("["):
                self.advance()
                root = self.side()
                self.expect("]")
            arg = self.frac_argument()
            if root is None:
                return self.call_builtin("sqrt", [arg], token)
            return self.raise_to(arg, build.divide(sympy.Integer(1), root), token)
        if token.value in ("partial", "nabla"):
            derivative = self.derivative()
            if derivative is None:
                raise self.fail(
                    f"'{token.text}' must be part of a derivative such as ∂L/∂w2 or ∇_β J", token
                )
            return derivative
        if token.value == "unsupported":
            raise self.fail(
                f"'{token.text}' is not supported here: write the formula with the question's "
                "symbols and matrices, without sums over an index, dots or sets",
                token,
            )
        raise self.unexpected(token)

    def frac_argument(self) -> Any:
        token = self.peek()
        if self.at("{"):
            return self.group()
        if token.kind == "num" and len(token.value) > 1 and token.value.isdigit():
            # \frac12 is 1/2: without braces each argument is one character.
            self.tokens[self.pos] = Token("num", token.value[1:], token.pos + 1, token.text[1:])
            return sympy.Integer(int(token.value[0]))
        return self.exponent_atom()

    def frac(self) -> Any:
        start = self.pos
        derivative = self.derivative()
        if derivative is not None:
            return derivative
        self.pos = start + 1
        token = self.tokens[start]
        numerator = self.frac_argument()
        denominator = self.frac_argument()
        try:
            return build.divide(numerator, denominator)
        except build.BuildError as exc:
            raise self.fail(str(exc), token) from exc

    def derivative(self) -> Any:
        from grader.checks.math._derivatives import derivative_from_command

        return derivative_from_command(self)
