"""Random points in the question's domain, where formulas are compared.

Scalars are drawn from their declared domain (labels in {0, 1}, probabilities in (0, 1),
positives, reals away from 0) as short exact decimals, so a counterexample can be quoted
exactly; matrices are random and *tall* (every declared n×p has n > p, and the shapes change
every other point), since on square matrices wrong answers such as X⁻¹y agree with
(XᵀX)⁻¹Xᵀy. Each call owns its random generator; mpmath contexts are reused (see
:func:`make_context`), each reset to its precision when handed out.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import mpmath
import sympy

from grader.checks.math.shapes import IDENTITY_SIZE
from grader.checks.math.symbols import SymbolTable

__all__ = ["DIGITS", "Point", "make_context", "make_points"]

DIGITS = 40


@dataclass(frozen=True)
class Point:
    """One instantiation: sizes of the dimension letters and values of the symbols."""

    dims: Mapping[Any, int]
    values: Mapping[Any, Any]
    shown: Mapping[str, str] = field(default_factory=dict)

    def with_value(self, symbol: Any, value: Any) -> Point:
        values = dict(self.values)
        values[symbol] = value
        return Point(self.dims, values, self.shown)


_contexts = threading.local()


def make_context(digits: int = DIGITS) -> Any:
    """An mpmath context at ``digits`` digits (40 unless a check needs more), not mpmath's global
    one.

    Building a context costs more than most evaluations (it wraps every mpmath function), and
    ``value_at`` needs one per call, so each thread keeps one context per precision. Its
    settings (precision, ``pretty``, ``trap_complex``) are set again here on every hand-out, and
    the grader never changes them while using one (mpmath's own temporary precision changes
    are undone in ``finally`` blocks): a context handed out before computes exactly as a new
    one would. What else it keeps are caches of constants, which depend only on the precision.
    """
    pool: dict[int, Any] | None = getattr(_contexts, "pool", None)
    if pool is None:
        pool = _contexts.pool = {}
    ctx = pool.get(digits)
    if ctx is None:
        ctx = pool[digits] = mpmath.MPContext()
    ctx.dps = digits
    ctx.pretty = False
    ctx.trap_complex = False
    return ctx


def _tall_sizes(table: SymbolTable, rng: random.Random) -> dict[str, int]:
    """Distinct sizes per dimension letter with rows > columns for every declared matrix."""
    below: dict[str, set[str]] = {letter: set() for letter in table.dims}
    for spec in table.specs:
        if spec.kind == "matrix" and spec.shape[0] != spec.shape[1]:
            below[spec.shape[0]].add(spec.shape[1])
    level: dict[str, int] = {}

    def height(letter: str, seen: frozenset[str]) -> int:
        if letter in level:
            return level[letter]
        lower = [height(d, seen | {letter}) for d in below[letter] if d not in seen]
        level[letter] = 1 + max(lower, default=-1)
        return level[letter]

    order = sorted(below, key=lambda d: (height(d, frozenset()), d))
    sizes: dict[str, int] = {}
    size = rng.randint(2, 3)
    for letter in order:
        sizes[letter] = size
        size += rng.randint(1, 2)
    return sizes


def _scalar(domain: str, rng: random.Random, index: int) -> sympy.Rational:
    if domain == "label":
        return sympy.Integer((index + rng.randint(0, 1)) % 2)
    if domain == "probability":
        return sympy.Rational(rng.randint(50, 950), 1000)
    magnitude = sympy.Rational(rng.randint(100, 2000), 1000)
    if domain == "positive":
        return magnitude
    return magnitude if rng.random() < 0.5 else -magnitude


def _entry(domain: str, rng: random.Random, index: int) -> sympy.Rational:
    if domain == "real":
        return sympy.Rational(rng.randint(-1000, 1000), 1000)
    return _scalar(domain, rng, index + rng.randint(0, 1))


def make_points(
    table: SymbolTable, *, seed: int, count: int, ctx: Any, square: int | None = None
) -> list[Point]:
    """``count`` points; the shapes change every other point. ``square`` forces all sizes
    equal (used only to compare answers that have shape errors)."""
    rng = random.Random(seed)
    points = []
    sizes: dict[str, int] = {}
    for index in range(count):
        if index % 2 == 0:
            sizes = {d: square for d in table.dims} if square else _tall_sizes(table, rng)
        dims = {table.dim(letter): size for letter, size in sizes.items()}
        dims[IDENTITY_SIZE] = 1
        values: dict[Any, Any] = {}
        shown: dict[str, str] = {}
        for spec in table.specs:
            if spec.kind == "function" or spec.definition is not None:
                continue
            obj = table.object(spec.name)
            if spec.kind == "scalar":
                value = _scalar(spec.domain, rng, index)
                values[obj] = ctx.mpf(int(value.p)) / int(value.q)
                shown[spec.name] = str(value) if value.q == 1 else _decimal(value)
            else:
                rows = sizes[spec.shape[0]]
                cols = sizes[spec.shape[1]] if spec.kind == "matrix" else 1
                matrix = ctx.matrix(rows, cols)
                for r in range(rows):
                    for c in range(cols):
                        entry = _entry(spec.domain, rng, r + c)
                        matrix[r, c] = ctx.mpf(int(entry.p)) / int(entry.q)
                values[obj] = matrix
                what = f"{rows}-vector" if spec.kind == "vector" else f"{rows}×{cols} matrix"
                shown[spec.name] = f"a random {what}"
        for letter, size in sizes.items():
            shown[letter] = str(size)
        points.append(Point(dims, values, shown))
    return points


def _decimal(value: sympy.Rational) -> str:
    return format(float(value), ".3f").rstrip("0").rstrip(".")
