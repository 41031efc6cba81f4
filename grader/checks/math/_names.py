"""Names in formulas: declared symbols, built-in functions and their arguments, subscripts.

A name is looked up in the question's table first, then among the built-ins (σ, exp, log,
tanh, sqrt, inv, transpose, I, e, π); an unknown run of letters is split into declared
names (``yy`` is y·y) or refused with the column and a suggestion. Function calls accept
``f(x)``, ``f{x}``, LaTeX ``\\log x``, ``\\tanh^2 z`` and ``σ'(z)``. Nothing is evaluated.
"""

from __future__ import annotations

from typing import Any

import sympy

from grader.checks.math import _build as build
from grader.checks.math._cursor import Cursor
from grader.checks.math._lexer import Token
from grader.checks.math.shapes import IDENTITY_SIZE

__all__ = ["NameReader"]

_CONSTANTS = {"e": sympy.E, "pi": sympy.pi}
_IDENTITY_NAMES = {"I", "identity", "eye", "Identity"}
_VALUE_ONLY = {"E": sympy.E, "Transpose": "transpose", "Inverse": "inv"}


class NameReader(Cursor):
    """Reads names and calls; the grammar (``Parser``) supplies the other productions."""

    def side(self) -> Any:
        raise NotImplementedError

    def signed_product(self) -> Any:
        raise NotImplementedError

    def postfix(self) -> Any:
        raise NotImplementedError

    def group(self) -> Any:
        raise NotImplementedError

    def exponent_atom(self) -> Any:
        raise NotImplementedError

    def starts_factor(self, token: Token) -> bool:
        raise NotImplementedError

    def raise_to(self, base: Any, exponent: Any, token: Token) -> Any:
        raise NotImplementedError

    def name_atom(self) -> Any:
        token = self.advance()
        key = token.value
        while self.at("_"):
            self.advance()
            key += self.subscript()
        from grader.checks.math._derivatives import derivative_from_name

        derivative = derivative_from_name(self, token, key)
        if derivative is not None:
            return derivative
        return self.resolve_name(token, key)

    def subscript(self) -> str:
        token = self.peek()
        if token.kind in ("num", "name"):
            self.advance()
            return token.value
        if token.kind == "cmd" and token.value == "tmark":
            self.advance()
            return "T"
        if self.at("{"):
            inner = self.group_tokens()
            if not inner or any(t.kind not in ("num", "name") for t in inner):
                raise self.fail("a subscript may only hold letters and digits")
            self.pos += len(inner) + 2
            return "".join(t.value for t in inner)
        raise self.fail("a subscript must follow '_'")

    def resolve_name(self, token: Token, key: str) -> Any:
        spec = self.table.lookup_key(key)
        if spec is not None:
            if spec.kind == "function":
                return self.call_declared(spec.name, token)
            return self.table.object(spec.name)
        if self.value_mode and key in _VALUE_ONLY:
            target = _VALUE_ONLY[key]
            if isinstance(target, str):
                return self.call_function(target, token)
            return target
        if key in _CONSTANTS:
            return _CONSTANTS[key]
        if key in _IDENTITY_NAMES:
            return self.identity(token)
        if build.has_scalar_function(key):
            return self.call_function(key, token)
        pieces = self.split_name(key, {})
        if pieces:
            # yy^T is y·yᵀ: put the pieces back as separate names for the product to read.
            offset = 0
            replacement = []
            for piece in pieces:
                replacement.append(Token("name", piece, token.pos + offset, piece))
                offset += len(piece)
            self.tokens[self.pos : self.pos] = replacement[1:]
            return self.resolve_name(replacement[0], pieces[0])
        suggestion = self.table.suggest(key)
        hint = f"; did you mean {suggestion}?" if suggestion else ""
        raise self.fail(f"'{token.text}' is not one of this question's symbols{hint}", token)

    def split_name(self, key: str, memo: dict[str, list[str] | None]) -> list[str] | None:
        """Split an unknown run of letters into declared names, longest first (or None)."""
        if len(key) < 2 or len(key) > 40:
            return None
        if key in memo:
            return memo[key]
        memo[key] = None
        for cut in range(len(key) - 1, 0, -1):
            head, tail = key[:cut], key[cut:]
            spec = self.table.lookup_key(head)
            if spec is None or spec.kind == "function":
                continue
            tail_spec = self.table.lookup_key(tail)
            if tail_spec is not None and tail_spec.kind != "function":
                memo[key] = [head, tail]
                break
            rest = self.split_name(tail, memo)
            if rest:
                memo[key] = [head, *rest]
                break
        return memo[key]

    def identity(self, token: Token) -> Any:
        if self.at("("):
            self.advance()
            size = self.peek()
            if size.kind == "name" and size.value in self.table.dims:
                self.advance()
                self.expect(")")
                return sympy.Identity(self.table.dims[size.value])
            raise self.fail("write the identity as I; its size follows from the formula")
        return sympy.Identity(IDENTITY_SIZE)

    def call_arguments(self, token: Token) -> list[Any]:
        """Arguments after a function name: ``f(a, b)``, ``f{a}``, or LaTeX ``\\log x``."""
        if self.at("("):
            self.advance()
            self.enter()
            self.closers.append(")")
            try:
                args = [self.side()]
                while self.at(","):
                    self.advance()
                    args.append(self.side())
                self.expect(")")
            finally:
                self.closers.pop()
                self.depth -= 1
            return args
        if self.at("{"):
            return [self.group()]
        if self.starts_factor(self.peek()):
            return [self.postfix()]
        raise self.fail(f"'{token.text}' needs an argument in brackets", token)

    def call_builtin(self, name: str, args: list[Any], token: Token) -> Any:
        try:
            return build.apply_function(name, args)
        except build.BuildError as exc:
            raise self.fail(str(exc), token) from exc

    def call_function(self, name: str, token: Token) -> Any:
        """A built-in function at the current position: ``σ(z)``, ``\\log x``, ``σ'(z)``."""
        prime = self.at("'")
        if prime:
            self.advance()
        exponent = None
        if self.at("^") and not prime:
            # \tanh^2 z is (tanh z)^2; only whole positive powers read this way.
            self.advance()
            exponent = self.group() if self.at("{") else self.exponent_atom()
            if not (exponent.is_Integer and exponent > 0):
                raise self.fail(f"write ({token.text} …)^k instead of a power on the name", token)
        args = self.call_arguments(token)
        value = self.call_builtin(name, args, token)
        if exponent is not None:
            return self.raise_to(value, exponent, token)
        if not prime:
            return value
        if len(value.args) != 1 or build.is_matrix(value):
            raise self.fail(f"cannot take the derivative of '{token.text}'", token)
        dummy = sympy.Dummy("t")
        return sympy.diff(value.func(dummy), dummy).subs(dummy, value.args[0])

    def call_declared(self, name: str, token: Token) -> Any:
        spec = self.table.spec(name)
        if build.has_scalar_function(name) and spec.definition is None:
            return self.call_function(name, token)  # a declared "sigma" is the logistic σ
        args = self.call_arguments(token) if self.at("(") or self.at("{") else []
        function = self.table.object(name)
        if spec.definition is not None:
            return function(*args)  # J(β) stands for its definition, expanded later
        scalars = []
        for arg in args:
            if build.is_matrix(arg):
                raise self.fail(f"'{token.text}' takes scalar arguments", token)
            scalars.append(arg)
        return function(*scalars)
