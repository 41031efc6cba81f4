"""The token cursor under the formula reader: position, look-ahead, errors, nesting depth.

Every reading failure is a :class:`ParseFailure` carrying the position it points at; the
depth counter refuses nesting beyond ``MAX_DEPTH`` before Python's stack is at risk.
Nothing here builds or evaluates anything.
"""

from __future__ import annotations

from grader.checks.math._lexer import Token
from grader.checks.math.symbols import SymbolTable

__all__ = ["MAX_DEPTH", "Cursor", "ParseFailure"]

MAX_DEPTH = 100


class ParseFailure(Exception):
    """A reading failure with its message and the 0-based position it points at."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


class Cursor:
    """A position in a token list, with the question's symbols at hand."""

    def __init__(self, tokens: list[Token], table: SymbolTable, *, value_mode: bool) -> None:
        self.tokens = tokens
        self.table = table
        self.value_mode = value_mode
        self.pos = 0
        self.depth = 0
        self.closers: list[str] = []

    # -- token helpers -------------------------------------------------------------------
    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        if token.kind != "end":
            self.pos += 1
        return token

    def at(self, value: str, kind: str = "op", ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind == kind and token.value == value

    def fail(self, message: str, token: Token | None = None) -> ParseFailure:
        token = token or self.peek()
        return ParseFailure(message, token.pos)

    def unexpected(self, token: Token | None = None) -> ParseFailure:
        token = token or self.peek()
        if token.kind == "end":
            return ParseFailure("the formula ends too early", token.pos)
        return ParseFailure(f"unexpected '{token.text}'", token.pos)

    def expect(self, value: str) -> Token:
        if not self.at(value):
            token = self.peek()
            if token.kind == "end":
                raise self.fail(f"a '{value}' is missing at the end")
            raise self.fail(f"expected '{value}' but found '{token.text}'")
        return self.advance()

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"the formula is nested too deeply (more than {MAX_DEPTH} levels)")

    def group_tokens(self) -> list[Token]:
        """Tokens strictly inside the brace group starting at the current '{'."""
        depth, index = 0, self.pos
        while index < len(self.tokens):
            token = self.tokens[index]
            if token.kind == "op" and token.value == "{":
                depth += 1
            elif token.kind == "op" and token.value == "}":
                depth -= 1
                if depth == 0:
                    return self.tokens[self.pos + 1 : index]
            elif token.kind == "end":
                break
            index += 1
        raise self.fail("a '{' is never closed")
