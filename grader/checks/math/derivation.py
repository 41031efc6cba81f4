"""Checks a derivation step by step: ✓ valid move, ✗ invalid (with a reason), ? unreadable.

Valid moves: an expression equal to the previous one (same value and shape at every random
instantiation); the gradient of the objective with respect to the question's variable;
setting the gradient to zero; rearranging or solving an equation (the new equation has the
same solutions, found numerically with random tall matrices). A true side identity such as
``yᵀXβ = (yᵀXβ)ᵀ = βᵀXᵀy`` is an aside and does not break the chain. A differentiation
operator applied to an expression (``∂/∂β(βᵀXᵀXβ)``, ``∇_β ½(…)``) has the value of that
expression's gradient (central differences at the same random points); a line stating such
a derivative (``∂/∂β(βᵀXᵀXβ) = 2XᵀXβ``) is an aside when it is true and invalid when it is
not, and a label (``∂J/∂β``) means the gradient only when it names the objective. After an
invalid step the next one is judged against both the invalid line and the last valid one, so
one mistake is named once. The final answer is judged on its own. Nothing here simplifies
symbolically.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from grader.checks.math import _build as build
from grader.checks.math._definitions import expand_definitions
from grader.checks.math._markdown import split_steps
from grader.checks.math._moves import Function, Moves, Outcome
from grader.checks.math._printing import mathml, plain
from grader.checks.math.equivalence import (
    Equivalence,
    Verdict,
    counterexample_of,
    equivalent,
    is_zero_literal,
)
from grader.checks.math.functions import (
    Deriv,
    Gradient,
    MatrixGradient,
    gradient,
    is_gradient,
)
from grader.checks.math.parser import ReadError, Reading, read, read_chain
from grader.checks.math.shapes import Shape, ShapeError, describe_shape, raw_shape
from grader.checks.math.symbols import SymbolTable
from grader.errors import SpecError

__all__ = ["DerivationCheck", "Step", "check_derivation", "split_steps"]

Status = Literal["ok", "invalid", "unknown", "aside"]


@dataclass(frozen=True)
class Step:
    """One step as judged. ``index`` counts from 1, as the student sees the lines."""

    index: int
    source: str
    read_as: str | None
    status: Status
    reason: str
    mathml: str | None = None


@dataclass(frozen=True)
class DerivationCheck:
    steps: tuple[Step, ...]
    first_invalid: int | None  # the ``index`` of the first invalid step
    final: Equivalence | None
    final_step: Step | None


@dataclass(frozen=True)
class _Side:
    kind: str  # "expr", "label" or "error"
    expr: Any = None
    written: Any = None
    shape: Shape | ShapeError = None
    error: ReadError | None = None


@dataclass(frozen=True)
class _State:
    kind: str  # "objective", "gradient" or "equation"
    function: Function
    expr: Any
    shape: Shape


@dataclass(frozen=True)
class _Result:
    status: Status
    reason: str
    state: _State | None


def _printed(expr: Any) -> str:
    text = plain(expr)
    return text if len(text) <= 70 else text[:67] + "…"


def _scalar_shape(shape: Any) -> bool:
    return shape is None or (shape[0] == 1 and shape[1] == 1)


def _same_shape(a: Any, b: Any) -> bool:
    return (_scalar_shape(a) and _scalar_shape(b)) or a == b


MAX_DERIVATIVES_PER_LINE = 8
MAX_DERIVATIVES = 40


def _states_a_derivative(a: _Side, b: _Side) -> bool:
    """``∂/∂β(f) = g``: one side is a derivative and nothing else, the other has none."""
    return any(
        isinstance(one.written, Gradient | MatrixGradient) and not is_gradient(other.expr)
        for one, other in ((a, b), (b, a))
    )


def _unchecked_derivative(expr: Any) -> str | None:
    """Why a derivative in ``expr`` is not judged (a Jacobian, a derivative of a derivative),
    or None: such a step goes to review rather than being marked wrong."""
    for found in expr.atoms(Gradient, MatrixGradient):
        if is_gradient(found.operand):
            return f"{_printed(found)} differentiates a derivative"
        try:
            shape = raw_shape(found.operand)
        except ShapeError:
            continue  # reported as the shape error it is
        if not _scalar_shape(shape):
            return f"{_printed(found)} differentiates something that is not a scalar (a Jacobian)"
    return None


class _Checker:
    def __init__(
        self, table: SymbolTable, variable: Any, objective: Any, seed: int, name: str | None = None
    ) -> None:
        self.table = table
        self.variable = variable
        self.objective_name = name
        self.moves = Moves(table, variable, seed=seed)
        self.variable_shape = raw_shape(variable)
        self.objective = _State("objective", self.moves.value_of(objective), objective, None)
        # Each derivative costs finite differences (2 evaluations of its operand per entry of
        # the variable, per side, per point): a budget keeps a hostile answer from taking
        # minutes. Beyond it, steps go to review.
        self.derivatives_left = MAX_DERIVATIVES

    # -- sides ---------------------------------------------------------------------------
    def sides(self, sides: Sequence[Any]) -> list[_Side]:
        out = []
        for side in sides:
            if isinstance(side, ReadError):
                out.append(_Side("error", error=side))
            elif (
                isinstance(side, Deriv) and side.denominator is None and not side.numerator.is_Atom
            ):
                # ∇ ½‖y − Xβ‖² without a subscript: the gradient in the question's variable.
                written = gradient(side.numerator, self.variable)
                out.extend(self.sides([written]))
            elif isinstance(side, Deriv):
                out.append(_Side("label", written=side))
            else:
                expr = expand_definitions(side, self.table)
                try:
                    shape: Shape | ShapeError = raw_shape(expr)
                except ShapeError as exc:
                    shape = exc
                out.append(_Side("expr", expr, side, shape))
        return out

    def is_gradient_label(self, side: _Side) -> bool:
        """Does the label name the objective's gradient (∂J/∂β, ∇J, ∂L/∂β), not ∂y/∂β?"""
        label = side.written
        if label.denominator is not None and label.denominator != self.variable:
            return False
        name = getattr(label.numerator, "name", None)
        if not isinstance(name, str):
            return False  # ∇ of an expression without its variable
        if name == self.objective_name:
            return True
        spec = self.table.lookup(name)
        return spec is None or spec.kind == "function"  # a loss the question does not declare

    def where(self, outcome: Outcome, *exprs: Any) -> str:
        if outcome.where is None:
            return ""
        shown = counterexample_of(outcome.where, *[e for e in exprs if e is not None])
        text = ", ".join(f"{k} = {v}" for k, v in sorted(shown.items()))
        return f" (at {text}: {outcome.left} instead of {outcome.right})" if text else ""

    # -- relations -----------------------------------------------------------------------
    def relate(self, side: _Side, state: _State) -> tuple[str, str]:
        """("equal" | "gradient" | "different" | "unknown", reason)."""
        if state.kind == "equation":
            return "different", "an expression where an equation was being solved"
        value = self.moves.value_of(side.expr)
        if state.kind == "objective" and _same_shape(side.shape, self.variable_shape):
            if not _scalar_shape(self.variable_shape) or _scalar_shape(side.shape):
                gradient = self.moves.same(value, self.moves.gradient_of(state.expr))
                if gradient.same:
                    return "gradient", "the gradient with respect to the variable"
        if isinstance(side.shape, ShapeError):
            return "different", f"{_printed(side.written)} has a shape error"
        if not is_zero_literal(side.expr) and not _same_shape(side.shape, state.shape):
            return "different", (
                f"{_printed(side.written)} is {describe_shape(side.shape)} where "
                f"{describe_shape(state.shape)} belongs"
            )
        outcome = self.moves.same(value, state.function)
        if outcome.same:
            return "equal", "equal to the line before"
        if outcome.same is None:
            return "unknown", "the grader could not evaluate this line"
        return "different", (
            f"{_printed(side.written)} is not equal to the line before"
            f"{self.where(outcome, side.expr, state.expr)}"
        )

    def gradient_state(self, state: _State) -> _State:
        if state.kind == "gradient":
            return state
        base = state if state.kind == "objective" and _scalar_shape(state.shape) else self.objective
        return _State("gradient", self.moves.gradient_of(base.expr), None, self.variable_shape)

    def state_of(self, kind: str, side: _Side) -> _State:
        shape = None if isinstance(side.shape, ShapeError) else side.shape
        return _State(kind, self.moves.value_of(side.expr), side.expr, shape)

    # -- steps ---------------------------------------------------------------------------
    def follow(self, sides: list[_Side], continues: bool, state: _State) -> _Result:
        items = [s for s in sides if s.kind != "error"]
        current = state
        rest = items
        moves: list[str] = []
        if not continues:
            first = items[0]
            if first.kind == "label":
                if not self.is_gradient_label(first):
                    other = first.written.denominator
                    declared = self.table.lookup(getattr(other, "name", "")) is not None
                    if other is not None and other != self.variable and declared:  # ∇_X J
                        return _Result(
                            "invalid",
                            f"this differentiates with respect to {plain(other)}; the "
                            f"derivation needs the derivative with respect to "
                            f"{plain(self.variable)}",
                            None,
                        )
                    return _Result(
                        "unknown", "the grader cannot tell which derivative this is", None
                    )
                current = self.gradient_state(state)
                rest = items[1:]
            else:
                kind, reason = self.relate(first, state)
                if kind == "equal":
                    current = self.state_of(state.kind, first)
                elif kind == "gradient":
                    current = self.state_of("gradient", first)
                    moves.append(reason)
                else:
                    return self.as_equation(items, state, kind, reason)
                rest = items[1:]
        for side in rest:
            if side.kind == "label":
                continue
            if is_zero_literal(side.expr) and current.kind == "gradient":
                current = _State("equation", current.function, current.expr, current.shape)
                moves.append("sets the gradient to zero")
                continue
            kind, reason = self.relate(side, current)
            if kind == "equal":
                current = self.state_of(current.kind, side)
            elif kind == "gradient":
                current = self.state_of("gradient", side)
                moves.append(reason)
            else:
                status: Status = "unknown" if kind == "unknown" else "invalid"
                return _Result(status, reason, self.state_of(current.kind, side))
        return _Result("ok", "; ".join(moves) or "equal to the line before", current)

    def residual(self, left: _Side, right: _Side) -> Any:
        if is_zero_literal(right.expr):
            return left.expr
        if is_zero_literal(left.expr):
            return right.expr
        return build.add([left.expr, build.negate(right.expr)])

    def derivative_identity(self, exprs: list[_Side], state: _State) -> _Result | None:
        """A line stating a derivative (∂/∂β(βᵀXᵀXβ) = 2XᵀXβ) is an aside when every side is
        equal to the next, and invalid (naming the first wrong side) when not; None when the
        line is no such statement or, wrong as an identity, still solves the equation at hand."""
        if len(exprs) < 2 or not any(is_gradient(s.expr) for s in exprs):
            return None
        if any(is_zero_literal(s.expr) for s in exprs):
            return None  # ∇_β(…) = 0 is an equation to solve
        for before, after in itertools.pairwise(exprs):
            if isinstance(before.shape, ShapeError) or isinstance(after.shape, ShapeError):
                return None  # judge() has reported it already
            if not _same_shape(before.shape, after.shape):
                return _Result(
                    "invalid",
                    f"{_printed(after.written)} is {describe_shape(after.shape)}, but "
                    f"{_printed(before.written)} is {describe_shape(before.shape)}"
                    f"{self.derivative_note(before, after)}",
                    None,
                )
            outcome = self.moves.same(
                self.moves.value_of(after.expr), self.moves.value_of(before.expr)
            )
            if outcome.same is None:
                return _Result("unknown", "the grader could not evaluate this derivative", None)
            if not outcome.same:
                # ½∇_β(βᵀXᵀXβ) = Xᵀy, written while solving, may be an equation with the same
                # solutions; ∇_β(f) = g states what a derivative is, and a wrong g (a sign, a
                # factor 2) keeps the zeros of the right one: it is judged as the identity it is.
                if state.kind == "equation" and not _states_a_derivative(before, after):
                    solved = self.solves(exprs, state)
                    if solved is not None:
                        return solved
                return _Result(
                    "invalid",
                    f"{_printed(after.written)} is not equal to {_printed(before.written)}, "
                    f"so this derivative is wrong{self.where(outcome, after.expr, before.expr)}",
                    None,
                )
        return _Result("aside", "a true side identity (a derivative)", None)

    def derivative_note(self, before: _Side, after: _Side) -> str:
        for side in (before, after):
            if isinstance(side.written, MatrixGradient):
                variable = side.written.args[1]  # the operator's own, not always the question's
                try:
                    shape = raw_shape(variable)
                except ShapeError:
                    return ""
                return (
                    f": the derivative of a scalar with respect to {plain(variable)} is "
                    f"{describe_shape(shape)}, like {plain(variable)}"
                )
        return ""

    def solves(self, exprs: list[_Side], state: _State) -> _Result | None:
        residual = self.residual(exprs[0], exprs[-1])
        try:
            shape = raw_shape(residual)
        except ShapeError:
            return None
        outcome = self.moves.same_solutions(state.function, self.moves.value_of(residual))
        if not outcome.same:
            return None
        new = _State("equation", self.moves.value_of(residual), residual, shape)
        return _Result("ok", "an equation with the same solutions as before", new)

    def as_equation(self, items: list[_Side], state: _State, kind: str, reason: str) -> _Result:
        exprs = [s for s in items if s.kind == "expr"]
        stated = self.derivative_identity(exprs, state)
        if stated is not None:
            return stated
        if len(exprs) == 1 and state.kind == "equation":
            # A lone expression after an equation is read as its solution: β = (XᵀX)⁻¹Xᵀy.
            variable = _Side("expr", self.variable, self.variable, self.variable_shape)
            exprs = [variable, exprs[0]]
        if len(exprs) < 2:
            status: Status = "unknown" if kind == "unknown" else "invalid"
            return _Result(status, reason, self.state_of(state.kind, exprs[0]) if exprs else None)
        residual = self.residual(exprs[0], exprs[-1])
        try:
            shape = raw_shape(residual)
        except ShapeError as exc:
            return _Result("invalid", f"the two sides do not fit: the equation {exc.message}", None)
        old = state.function
        if state.kind == "objective":
            old = self.moves.gradient_of(state.expr)
        outcome = self.moves.same_solutions(old, self.moves.value_of(residual))
        if outcome.same:
            new = _State("equation", self.moves.value_of(residual), residual, shape)
            return _Result("ok", "an equation with the same solutions as before", new)
        pairs = itertools.pairwise(exprs)
        if all(
            self.moves.same(self.moves.value_of(a.expr), self.moves.value_of(b.expr)).same
            for a, b in pairs
        ):
            return _Result("aside", "a true side identity", None)
        if outcome.same is None and state.kind != "equation":
            return _Result("invalid" if kind == "different" else "unknown", reason, None)
        detail = self.where(outcome, residual)
        return _Result(
            "invalid",
            f"this equation does not have the same solutions as the previous step{detail}",
            _State("equation", self.moves.value_of(residual), residual, shape),
        )

    def judge(
        self, sides: list[_Side], continues: bool, previous: _State, valid: _State
    ) -> _Result:
        readable = [s for s in sides if s.kind != "error"]
        errors = [s.error for s in sides if s.error is not None]
        if not readable:
            return _Result("unknown", errors[0].message if errors else "nothing to read", None)
        count = sum(
            len(s.expr.atoms(Gradient, MatrixGradient)) for s in readable if s.kind == "expr"
        )
        self.derivatives_left -= count
        if count > MAX_DERIVATIVES_PER_LINE or self.derivatives_left < 0:
            return _Result(
                "unknown",
                f"too many derivatives to check (at most {MAX_DERIVATIVES_PER_LINE} on a line, "
                f"{MAX_DERIVATIVES} in a derivation)",
                None,
            )
        for side in readable:
            unchecked = None if side.kind != "expr" else _unchecked_derivative(side.expr)
            if unchecked is not None:
                reason = f"{unchecked}; the grader does not check such derivatives"
                return _Result("unknown", reason, None)
            if isinstance(side.shape, ShapeError):
                return _Result(
                    "invalid",
                    f"{_printed(side.written)} has a shape error: it {side.shape.message}",
                    None,
                )
        results = [self.follow(sides, continues, previous)]
        if results[0].status not in ("ok", "aside") and valid is not previous:
            results.append(self.follow(sides, continues, valid))
        chosen = next((r for r in results if r.status in ("ok", "aside")), results[0])
        if chosen.status == "ok" and errors:
            first = errors[0]
            where = f" at column {first.position + 1}" if first.position is not None else ""
            reason = f"part of this line could not be read{where}: {first.reason}"
            return _Result("unknown", reason, chosen.state)
        return chosen

    # -- the final answer ----------------------------------------------------------------
    def final(self, sides: list[_Side], expected: Sequence[Reading], seed: int) -> Equivalence:
        student = [s for s in sides if s.kind == "expr"]
        for side in student:
            if is_gradient(side.expr):
                return Equivalence(
                    Verdict.NOT_EQUIVALENT,
                    f"the last step still takes a derivative ({_printed(side.written)}); "
                    "write the result out in the question's symbols",
                )
            if isinstance(side.shape, ShapeError):
                return Equivalence(
                    Verdict.NOT_EQUIVALENT,
                    f"{_printed(side.written)} has a shape error: it {side.shape.message}",
                )
        solved = None
        if len(student) == 1 or (len(student) > 1 and student[0].expr == self.variable):
            solved = student[-1]
        results = []
        # "an equation where an expression was expected" only when no expected form compares.
        mismatched = []
        for reading in expected:
            wanted = reading.sides
            if len(wanted) > 1 and wanted[0] == self.variable:
                wanted = wanted[-1:]
            if len(wanted) == 1 and solved is not None:
                result = equivalent(solved.expr, wanted[0], self.table, seed=seed)
            elif len(wanted) > 1 and len(student) > 1:
                result = self.same_equation(student, wanted)
            else:
                mismatched.append(
                    Equivalence(
                        Verdict.NOT_EQUIVALENT,
                        f"the last step is {'an equation' if len(student) > 1 else 'an expression'}"
                        f"; {reading.read_as()} was expected",
                    )
                )
                continue
            if result.equivalent:
                return result
            results.append(result)
        return (results or mismatched)[0]

    def same_equation(self, student: list[_Side], wanted: Sequence[Any]) -> Equivalence:
        mine = self.residual(student[0], student[-1])
        left = _Side("expr", wanted[0], wanted[0], None)
        right = _Side("expr", wanted[-1], wanted[-1], None)
        theirs = self.residual(left, right)
        outcome = self.moves.same_solutions(self.moves.value_of(theirs), self.moves.value_of(mine))
        if outcome.same:
            return Equivalence(
                Verdict.EQUIVALENT, "has the same solutions as the expected equation"
            )
        if outcome.same is None:
            return Equivalence(Verdict.UNDECIDED, "the grader could not compare the equations")
        where = counterexample_of(outcome.where, mine, theirs) if outcome.where else None
        detail = self.where(outcome, mine, theirs)
        return Equivalence(
            Verdict.NOT_EQUIVALENT,
            f"does not have the same solutions as the expected equation{detail}",
            where,
            outcome.left,
            outcome.right,
        )


def _read_as(chain_sides: Sequence[Any], continues: bool) -> str | None:
    parts = ["?" if isinstance(s, ReadError) else plain(s) for s in chain_sides]
    if all(p == "?" for p in parts):
        return None
    return ("= " if continues else "") + " = ".join(parts)


def _mathml(chain_sides: Sequence[Any]) -> str | None:
    parts = ["<mi>?</mi>" if isinstance(s, ReadError) else mathml(s) for s in chain_sides]
    body = "<mo>=</mo>".join(parts)
    return f'<math xmlns="http://www.w3.org/1998/Math/MathML"><mrow>{body}</mrow></math>'


def _one_line_is_no_derivation(judged: list[Step], start: Reading) -> list[Step]:
    """A lone valid line (the result written down) earns no step points: it is marked invalid
    with what is missing. Its final-answer check is judged as usual."""
    lines = [s for s in judged if s.status != "aside"]
    if len(lines) != 1 or lines[0].status != "ok":
        return judged
    origin = plain(start.written[0]) if len(start.written) > 1 else "the starting point"
    reason = (
        "a single line is not a derivation: write the steps from "
        f"{origin} or its gradient to this result, one per line"
    )
    only = lines[0]
    return [
        Step(s.index, s.source, s.read_as, "invalid", reason, s.mathml) if s is only else s
        for s in judged
    ]


def check_derivation(
    steps: str | Sequence[str],
    table: SymbolTable,
    *,
    start: str,
    variable: str,
    final_expected: Sequence[str],
    seed: int = 0,
) -> DerivationCheck:
    """Judge each step of a derivation that starts from ``start`` (e.g. ``J(β) = ½‖y − Xβ‖²``).

    ``steps`` is markdown (split with :func:`split_steps`) or a list of step texts;
    ``variable`` names the symbol the gradient is taken in (``"beta"``); the last step that
    is not an aside is compared with ``final_expected`` (equations or expressions, any match).
    """
    spec = table.lookup(variable)
    if spec is None or spec.kind == "function":
        raise SpecError(f"the derivation variable {variable!r} is not a declared symbol")
    texts = split_steps(steps)
    try:
        objective = read(start, table).expr
        expected = [read(text, table) for text in final_expected]
    except ReadError as exc:
        raise SpecError(f"the derivation's start or expected answer cannot be read: {exc}") from exc
    written = read(start, table, expand_definitions=False).sides[0]
    name = getattr(written, "name", None) or type(written).__name__
    checker = _Checker(table, table.object(spec.name), objective, seed, name)
    previous = valid = checker.objective
    judged: list[Step] = []
    final_sides: list[_Side] | None = None
    final_step: Step | None = None
    unread: list[int] = []  # steps after the final one judged whose last side was not read
    for index, text in enumerate(texts, start=1):
        try:
            chain = read_chain(text, table)
        except ReadError as exc:
            judged.append(Step(index, text, None, "unknown", exc.message))
            unread.append(index)
            continue
        sides = checker.sides(chain.sides)
        result = checker.judge(sides, chain.continues, previous, valid)
        step = Step(
            index,
            text,
            _read_as(chain.sides, chain.continues),
            result.status,
            result.reason,
            _mathml(chain.sides),
        )
        judged.append(step)
        if result.status == "aside":
            continue
        if result.state is not None:
            previous = result.state
            if result.status in ("ok", "unknown"):
                valid = result.state
                if result.state.kind == "objective" and _scalar_shape(result.state.shape):
                    checker.objective = result.state
        # The last readable step is the final answer, even when it is wrong in shape: an
        # earlier, right line must not stand in for a wrong last one.
        if sides[-1].kind == "expr":
            final_sides, final_step = sides, step
            unread = []
        else:
            unread.append(index)
    judged = _one_line_is_no_derivation(judged, read(start, table))
    first_invalid = next((s.index for s in judged if s.status == "invalid"), None)
    final = None
    if final_sides is not None and expected:
        final = checker.final(final_sides, expected, seed)
        if unread and not final.equivalent:
            # The real last line could not be read: an earlier line is no fair stand-in.
            final = Equivalence(
                Verdict.UNDECIDED,
                f"the last step{'s' if len(unread) > 1 else ''} "
                f"({', '.join(map(str, unread))}) could not be read, so the final result "
                "was not judged",
            )
    return DerivationCheck(tuple(judged), first_invalid, final, final_step)
