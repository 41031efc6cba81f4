"""Question 2 of normal-equation (a derivation) judged as the real spec sets it, for tests."""

from __future__ import annotations

from pathlib import Path

from grader.assignment import load_assignment
from grader.checks.math import DerivationCheck, SymbolTable, check_derivation

ROOT = Path(__file__).resolve().parents[1]


def derive(steps: str | list[str]) -> DerivationCheck:
    """``steps`` judged as the answer to normal-equation's question 2."""
    assignment = load_assignment(ROOT, "normal-equation")
    q = assignment.question("2")
    return check_derivation(
        steps,
        SymbolTable.from_mapping(assignment.symbols),
        start=q.extra["start"],
        variable=q.extra["variable"],
        final_expected=q.extra["final"],
    )
