"""Does the student's code (question 5) agree with their own formulas (question 2)?

Worth no points: it tells a student whose formulas and code disagree where to look first.
"""

from __future__ import annotations

from typing import Any

from grader import CheckFailed, NotCheckable, check
from grader.checks.math import (
    ReadError,
    SymbolTable,
    read,
    read_value,
    scan_derivative_equations,
)
from grader.checks.math.numeric import Undefined, Unevaluable, value_at
from grader.checks.numeric import as_array
from grader.errors import CheckProblem

NAMES = {"w2": "dL_dw2", "b2": "dL_db2", "w1": "dL_dw1", "b1": "dL_db1"}


def _formulas(answers: Any, table: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for param, name in NAMES.items():
        var = answers.variable(name, "2")
        if var is not None:
            try:
                reading = read_value(var.text, table) if var.from_sympy else read(var.text, table)
                found[param] = reading.expr
            except ReadError:
                pass
    whole = answers.get("2")
    if whole is not None:
        wanted = {NAMES[p]: ("L", p) for p in NAMES if p not in found}
        for name, value in scan_derivative_equations(whole.text, table, wanted).items():
            if not isinstance(value, ReadError):
                found[name[4:]] = value.expr
    return found


@check("5", 0, name="your code agrees with your own formulas from question 2")
def check_code_matches_own_formulas(
    sub: Any, answers: Any, assignment: Any, record: Any, rng: Any
) -> None:
    """compares backward(...) with your answers to question 2 at random points (no points)"""
    table = SymbolTable.from_mapping(assignment.symbols)
    formulas = _formulas(answers, table)
    if not formulas:
        raise NotCheckable("no readable formulas in question 2 to compare with")
    disagree: set[str] = set()
    for _ in range(3):
        point = {
            "x": float(rng.normal()),
            "y": float(rng.integers(0, 2)),
            "w1": float(rng.normal()),
            "b1": float(rng.normal()),
            "w2": float(rng.normal()),
            "b2": float(rng.normal()),
        }
        try:
            grads = sub.backward(
                point["x"], point["y"], point["w1"], point["b1"], point["w2"], point["b2"]
            )
        except CheckProblem as exc:
            raise NotCheckable(f"backward could not be called ({exc.message})") from None
        if not isinstance(grads, dict):
            raise NotCheckable("backward did not return a dict")
        missing = sorted(param for param in formulas if param not in grads)
        if missing:
            # Not a disagreement: there is nothing to compare the formulas with.
            raise NotCheckable(
                f"backward(...) returned no {', '.join(repr(p) for p in missing)} "
                f"(its keys: {', '.join(repr(str(k)) for k in grads) or 'none'}), so it "
                "could not be compared with your formulas"
            )
        for param, expr in formulas.items():
            try:
                mine = float(value_at(expr, table, point))
                code = float(as_array(grads[param], name=param, shape=(), scalar_ok=True))
            except (
                TypeError,
                ValueError,
                ArithmeticError,
                CheckProblem,
                Unevaluable,
                Undefined,
            ):
                disagree.add(param)
                continue
            if abs(mine - code) > 1e-6 * (1 + abs(mine)):
                disagree.add(param)
    if disagree:
        params = ", ".join(sorted(disagree))
        raise CheckFailed(
            f"your backward(...) and your formulas in question 2 disagree for "
            f"{params}: one of the two is wrong"
        )
    record.award(1.0, "your code and your formulas agree for " + ", ".join(sorted(formulas)))
