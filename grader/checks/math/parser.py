"""The grader's own reader for formulas: student text (Python syntax or LaTeX) to SymPy.

``read`` is the one entry point for answers, ``read_value`` for the text of SymPy values a
submission computed in the sandbox, ``read_derivative_equations`` for an answer holding
several equations (``∂L/∂w2 = …``). Every failure is a :class:`ReadError` that says where
reading stopped. This module must never call ``sympify``, ``parse_expr``, ``eval``, ``exec``
or ``sympy.parsing``: they execute or mis-read student text. Input size, nesting depth,
exponents and number lengths are capped so hostile text is refused in milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sympy

from grader.checks.math._build import BuildError
from grader.checks.math._definitions import expand_definitions
from grader.checks.math._grammar import ParseFailure, Parser
from grader.checks.math._lexer import LexError, Token, tokenize
from grader.checks.math._markdown import formula_segments
from grader.checks.math._printing import mathml, plain
from grader.checks.math.functions import Deriv, Gradient, MatrixGradient
from grader.checks.math.shapes import IDENTITY_SIZE
from grader.checks.math.symbols import SymbolTable
from grader.errors import CheckProblem

__all__ = [
    "MAX_TEXT_LENGTH",
    "Chain",
    "ReadError",
    "Reading",
    "read",
    "read_chain",
    "read_derivative_equations",
    "read_sides",
    "read_value",
    "scan_derivative_equations",
]

MAX_TEXT_LENGTH = 5000
_MATH = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$", re.DOTALL)
_PROSE_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")


class ReadError(CheckProblem):
    """A formula that cannot be read; ``position`` (0-based) and ``text`` say where."""

    def __init__(self, reason: str, *, position: int | None = None, text: str = "") -> None:
        where = ""
        excerpt = None
        if position is not None:
            line_start = text.rfind("\n", 0, position) + 1
            line_end = text.find("\n", position)
            line = text[line_start : line_end if line_end >= 0 else len(text)]
            column = position - line_start + 1
            line_no = text.count("\n", 0, position) + 1
            where = (
                f" at column {column}"
                if "\n" not in text
                else f" at line {line_no}, column {column}"
            )
            if len(line) <= 120:
                excerpt = f"{line}\n{' ' * (column - 1)}^"
        super().__init__(f"could not read the formula{where}: {reason}", actual=excerpt)
        self.reason = reason
        self.position = position
        self.text = text


@dataclass(frozen=True)
class Reading:
    """How the grader read a formula. ``expr`` is the value judged: the last side."""

    expr: Any
    sides: tuple[Any, ...]
    lhs_label: str | None
    source: str
    # The sides as written, before shorthands (a1, z2, J) were expanded: what is echoed.
    written: tuple[Any, ...] = field(default=(), compare=False)
    # True when the text started with "=": it continues the previous line of a derivation.
    continues: bool = False
    # read_as() and mathml(), once made: a Reading is immutable and may be shared (see read).
    _shown: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def read_as(self) -> str:
        """The formula as the grader read it, in plain text (``X.T*(X*beta - y)``)."""
        shown = self._shown.get("plain")
        if shown is None:
            text = " = ".join(plain(side) for side in (self.written or self.sides))
            shown = self._shown["plain"] = f"= {text}" if self.continues else text
        return shown

    def mathml(self) -> str:
        """Presentation MathML of the formula as read, safe to embed in HTML."""
        shown = self._shown.get("mathml")
        if shown is None:
            parts = [mathml(side) for side in (self.written or self.sides)]
            body = "<mo>=</mo>".join(parts)
            if self.continues:
                body = "<mo>=</mo>" + body
            shown = self._shown["mathml"] = (
                f'<math xmlns="http://www.w3.org/1998/Math/MathML"><mrow>{body}</mrow></math>'
            )
        return shown


@dataclass(frozen=True)
class Chain:
    """A leniently read equation chain: each side is a SymPy object or the ReadError for it."""

    sides: tuple[Any | ReadError, ...]
    source: str
    continues: bool = False


def _answer_span(matches: list[re.Match[str]]) -> re.Match[str]:
    """The span that holds the answer: the last equation, else the longest formula (prose
    such as "where $X$ is the $n \\times p$ design matrix" only annotates it)."""
    equations = [m for m in matches if "=" in m.group(0)]
    if equations:
        return equations[-1]
    longest = max(len(m.group(0).strip("$").strip()) for m in matches)
    return [m for m in matches if len(m.group(0).strip("$").strip()) == longest][-1]


def _formula_region(text: str) -> str:
    """Keep only the formula when prose surrounds ``$…$``; positions are preserved."""
    matches = list(_MATH.finditer(text))
    if not matches:
        return text
    outside = _MATH.sub(" ", text)
    if not _PROSE_WORD.search(outside):
        return text
    chosen = _answer_span(matches)
    start, end = chosen.span()
    return " " * start + text[start:end] + " " * (len(text) - end)


def _split(tokens: list[Token], value: str) -> list[list[Token]]:
    parts: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.kind == "op" and token.value in "([{":
            depth += 1
        elif token.kind == "op" and token.value in ")]}":
            depth -= 1
        if token.kind == "op" and token.value == value and depth == 0:
            parts.append([])
        elif token.kind != "end":
            parts[-1].append(token)
    return parts


def _tokens(text: str) -> list[Token]:
    if len(text) > MAX_TEXT_LENGTH:
        raise ReadError(
            f"the text is too long ({len(text)} characters; the limit is {MAX_TEXT_LENGTH})"
        )
    try:
        return tokenize(_formula_region(text))
    except LexError as exc:
        raise ReadError(exc.message, position=exc.position, text=text) from exc


def _statement_sides(text: str) -> tuple[list[list[Token]], bool, Token]:
    """Token lists of the sides of the last statement (after any ⇒), and the leading '='."""
    tokens = _tokens(text)
    end = tokens[-1]
    statements = [s for s in _split(tokens, "⇒") if s]
    if not statements:
        raise ReadError("there is no formula here", position=0, text=text)
    statement = statements[-1]
    continues = statement[0].kind == "op" and statement[0].value == "="
    if continues:
        statement = statement[1:]
    sides = _split([*statement, end], "=")
    equals = [t for t in statement if t.kind == "op" and t.value == "="]
    for index, side in enumerate(sides):
        if side:
            continue
        if index == len(sides) - 1:
            raise ReadError("the formula ends too early", position=end.pos, text=text)
        raise ReadError("one side of '=' is empty", position=equals[index].pos, text=text)
    return sides, continues, end


def _parse_side(tokens: list[Token], end: Token, table: SymbolTable, value_mode: bool) -> Any:
    parser = Parser([*tokens, end], table, value_mode=value_mode)
    value = parser.side()
    if parser.peek().kind != "end":
        token = parser.peek()
        if token.value == ",":
            raise ParseFailure("several formulas separated by ','; give one at a time", token.pos)
        raise parser.unexpected(token)
    if value.has(IDENTITY_SIZE):
        raise ParseFailure("cannot tell the size of the identity matrix I here", tokens[0].pos)
    if value.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        raise ParseFailure("the formula is infinite or undefined", tokens[0].pos)
    return value


@dataclass(frozen=True)
class _Failure:
    """A ReadError kept as data: a remembered reading raises a new, untouched error each time
    (an exception object collects tracebacks, and a check may change its fields)."""

    reason: str
    position: int | None
    text: str

    @classmethod
    def of(cls, error: ReadError) -> _Failure:
        return cls(error.reason, error.position, error.text)

    def error(self) -> ReadError:
        return ReadError(self.reason, position=self.position, text=self.text)


def _remembered(table: SymbolTable, key: tuple[Any, ...]) -> Any:
    """What ``table``'s memo holds for ``key``: a value, or raises the ReadError it holds."""
    saved = table.readings[key]
    if isinstance(saved, _Failure):
        raise saved.error()
    return saved


def _remember(table: SymbolTable, key: tuple[Any, ...], value: Any) -> None:
    table.readings.put(key, _Failure.of(value) if isinstance(value, ReadError) else value)


def read_chain(text: str, table: SymbolTable, *, value_mode: bool = False) -> Chain:
    """Every side of an equation chain, read one by one; an unreadable side is its ReadError.

    Raises ReadError only when the text as a whole cannot be split into sides. Reading
    depends only on the text and the table, so each text is read once per table (see
    ``SymbolTable.readings``); every call gets new ReadError objects.
    """
    key = ("chain", text, value_mode)
    if key in table.readings:
        saved = _remembered(table, key)
        return Chain(
            tuple(s.error() if isinstance(s, _Failure) else s for s in saved.sides),
            saved.source,
            saved.continues,
        )
    try:
        chain, exact = _read_chain(text, table, value_mode)
    except ReadError as exc:
        _remember(table, key, exc)
        raise
    if exact:
        sides = tuple(_Failure.of(s) if isinstance(s, ReadError) else s for s in chain.sides)
        _remember(table, key, Chain(sides, chain.source, chain.continues))
    return chain


def _read_chain(text: str, table: SymbolTable, value_mode: bool) -> tuple[Chain, bool]:
    """The chain, and whether it is the same on every reading (False when a side hit Python's
    recursion limit, which depends on how deep the stack already was)."""
    sides, continues, end = _statement_sides(text)
    results: list[Any] = []
    exact = True
    for side in sides:
        try:
            results.append(_parse_side(side, end, table, value_mode))
        except ParseFailure as exc:
            results.append(ReadError(exc.message, position=exc.position, text=text))
        except (BuildError, TypeError, ValueError, ArithmeticError) as exc:
            # SymPy refused to build something the grammar accepted: report it, don't crash.
            reason = f"this cannot be built as a formula ({exc})"
            results.append(ReadError(reason, position=side[0].pos, text=text))
        except RecursionError:
            exact = False
            results.append(
                ReadError("the formula is nested too deeply", position=side[0].pos, text=text)
            )
    return Chain(tuple(results), text, continues), exact


def read_sides(text: str, table: SymbolTable, *, value_mode: bool = False) -> list[Any]:
    """All sides, strictly (the first unreadable side raises its ReadError); not expanded."""
    chain = read_chain(text, table, value_mode=value_mode)
    for side in chain.sides:
        if isinstance(side, ReadError):
            raise side
    return list(chain.sides)


def _judged_side_problem(value: Any) -> str | None:
    derivs = sorted(value.atoms(Deriv, Gradient, MatrixGradient), key=str)
    if derivs:
        return (
            f"the answer still contains {plain(derivs[0])}; write it out in the question's symbols"
        )
    return None


def _reading(chain: Chain, table: SymbolTable, expand: bool, value_mode: bool = False) -> Reading:
    """The Reading of a chain that ``read_chain(chain.source, table, value_mode=value_mode)``
    gave; made once per table (Readings are immutable)."""
    key = ("reading", chain.source, value_mode, expand)
    if key in table.readings:
        result: Reading = _remembered(table, key)
        return result
    # Only a chain that was read exactly (and so is remembered) gives a remembered Reading.
    exact = ("chain", chain.source, value_mode) in table.readings
    try:
        reading = _make_reading(chain, table, expand)
    except ReadError as exc:
        if exact:
            _remember(table, key, exc)
        raise
    if exact:
        _remember(table, key, reading)
    return reading


def _make_reading(chain: Chain, table: SymbolTable, expand: bool) -> Reading:
    written = tuple(side for side in chain.sides if not isinstance(side, ReadError))
    problem = _judged_side_problem(written[-1])
    if problem:
        raise ReadError(problem, text=chain.source)
    label = None
    if len(written) > 1 and isinstance(written[0], Deriv):
        label = written[0].label()
    sides = tuple(expand_definitions(s, table) for s in written) if expand else written
    return Reading(sides[-1], sides, label, chain.source, written, chain.continues)


def read(text: str, table: SymbolTable, *, expand_definitions: bool = True) -> Reading:
    """Read a formula or an equation chain; the last side is the value judged.

    ``expand_definitions`` replaces shorthands (a1 = σ(z1), …) in ``expr`` and ``sides``;
    ``read_as()`` always shows the formula as written.
    """
    if not isinstance(text, str):
        raise ReadError(f"expected text, got {type(text).__name__}")
    chain = read_chain(text, table)
    for side in chain.sides:
        if isinstance(side, ReadError):
            raise side
    return _reading(chain, table, expand_definitions)


def read_value(text: str, table: SymbolTable) -> Reading:
    """Read the text of a SymPy value sent back from the sandbox (``X.T*X``, ``X**(-1)``)."""
    if not isinstance(text, str):
        raise ReadError(f"expected text, got {type(text).__name__}")
    chain = read_chain(text, table, value_mode=True)
    for side in chain.sides:
        if isinstance(side, ReadError):
            raise side
    return _reading(chain, table, True, value_mode=True)


def _wanted_label(table: SymbolTable, pair: tuple[str, str]) -> str:
    names = []
    for spelling in pair:
        spec = table.lookup(spelling)
        names.append(spec.name if spec else spelling)
    return f"d{names[0]}_d{names[1]}"


def scan_derivative_equations(
    text: str, table: SymbolTable, wanted: Mapping[str, tuple[str, str]]
) -> dict[str, Reading | ReadError]:
    """For each wanted derivative, the last equation naming it that reads, else its error."""
    labels = {_wanted_label(table, pair): name for name, pair in wanted.items()}
    found: dict[str, Reading | ReadError] = {}
    for segment in formula_segments(text):
        try:
            chain = read_chain(segment, table)
        except ReadError:
            continue
        first = chain.sides[0]
        if len(chain.sides) < 2 or not isinstance(first, Deriv) or first.label() not in labels:
            continue
        name = labels[first.label()]
        last = chain.sides[-1]
        if isinstance(last, ReadError):
            if not isinstance(found.get(name), Reading):
                found[name] = last
            continue
        try:
            found[name] = _reading(chain, table, True)
        except ReadError as exc:
            if not isinstance(found.get(name), Reading):
                found[name] = exc
    return found


def read_derivative_equations(
    text: str, table: SymbolTable, wanted: Mapping[str, tuple[str, str]]
) -> dict[str, Reading]:
    """Readings of the equations in ``text`` whose left side names a wanted derivative.

    ``wanted`` maps answer names to (numerator, denominator), e.g.
    ``{"dL_dw2": ("L", "w2")}``; left sides may be written ``\\frac{\\partial L}{\\partial w_2}``,
    ``dL/dw2``, ``∂L/∂w₂`` or ``dL_dw2``. In a chain the last side is judged; when a derivative
    is given twice, the last readable equation wins. Unreadable ones are left out (see
    :func:`scan_derivative_equations` for their errors).
    """
    found = scan_derivative_equations(text, table, wanted)
    return {name: value for name, value in found.items() if isinstance(value, Reading)}
