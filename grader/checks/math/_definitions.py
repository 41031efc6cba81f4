"""Shorthands declared by a question (a1 = σ(z1), J(β) = ½‖y − Xβ‖²): loading and expanding.

Definitions are assignment data, read once by the grader's own reader when the table is
built; a definition that cannot be read, has the wrong shape or refers to itself in a cycle
is a :class:`SpecError`. ``expand_definitions`` replaces shorthands by what they stand for,
repeatedly, so values can be compared in the question's base symbols. It never reads
student text: only the assignment's own definitions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sympy
from sympy.core.function import AppliedUndef

from grader.checks.math.shapes import ShapeError, describe_shape, raw_shape
from grader.errors import CheckProblem, SpecError

if TYPE_CHECKING:
    from grader.checks.math.symbols import SymbolTable

__all__ = ["expand_definitions", "load_definitions"]


def load_definitions(table: SymbolTable) -> None:
    """Read every definition of ``table`` into ``table.definitions``; raise SpecError."""
    from grader.checks.math.parser import read_sides  # the reader needs the finished table

    for spec in table.specs:
        if spec.definition is None:
            continue
        try:
            sides = read_sides(spec.definition, table)
        except CheckProblem as exc:
            raise SpecError(
                f"symbol {spec.name!r}: definition {spec.definition!r} cannot be read: "
                f"{exc.message}"
            ) from exc
        value = sides[-1]
        _check_definition_shape(table, spec.name, spec.kind, spec.shape, value)
        table.definitions[spec.name] = value
    _check_cycles(table)


def _check_definition_shape(
    table: SymbolTable, name: str, kind: str, shape: tuple[str, ...], value: Any
) -> None:
    try:
        actual = raw_shape(value)
    except ShapeError as exc:
        raise SpecError(f"symbol {name!r}: its definition {exc.message}") from exc
    if kind == "function":
        return
    wanted = None
    if kind == "vector":
        wanted = (table.dim(shape[0]), sympy.Integer(1))
    elif kind == "matrix":
        wanted = (table.dim(shape[0]), table.dim(shape[1]))
    scalar = actual is None or (actual[0] == 1 and actual[1] == 1)
    if (wanted is None and not scalar) or (wanted is not None and actual != wanted):
        raise SpecError(
            f"symbol {name!r} is declared {kind} but its definition is {describe_shape(actual)}"
        )


def _names_in(value: Any) -> set[str]:
    names = {getattr(s, "name", "") for s in value.free_symbols}
    names |= {str(getattr(s, "name", "")) for s in value.atoms(sympy.MatrixSymbol)}
    names |= {type(f).__name__ for f in value.atoms(AppliedUndef)}
    return names


def _check_cycles(table: SymbolTable) -> None:
    uses = {
        name: _names_in(value) & set(table.definitions) for name, value in table.definitions.items()
    }
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = " → ".join([*path[path.index(name) :], name])
            raise SpecError(f"definitions refer to themselves: {cycle}")
        if name in done:
            return
        for used in sorted(uses[name]):
            visit(used, [*path, name])
        done.add(name)

    for name in uses:
        visit(name, [])


def expand_definitions(expr: Any, table: SymbolTable) -> Any:
    """``expr`` with every shorthand replaced by its definition, until none is left."""
    if not table.definitions:
        return expr
    symbols = {}
    functions = {}
    for name, value in table.definitions.items():
        if table.spec(name).kind == "function":
            functions[name] = value
        else:
            symbols[table.object(name)] = value
    for _ in range(len(table.definitions) + 1):
        new = expr.xreplace(symbols) if symbols else expr
        if functions:
            new = new.replace(
                lambda e: isinstance(e, AppliedUndef) and type(e).__name__ in functions,
                lambda e: functions[type(e).__name__],
            )
        if new == expr:
            return new
        expr = new
    return expr
