"""Known wrong variants of a reference formula, so a wrong answer gets a specific hint.

Variants are generated from the reference as written (shorthands kept, so hints say
"missing the factor a1*(1 - a1)"): a factor dropped (one or two), a factor's sign flipped,
the whole sign flipped, an extra factor 2 or a missing one, an extra σ′ factor s(1 − s) for
each sigmoid shorthand, a transpose dropped or added, one symbol used for a similar one
(w1 for w2) or two swapped. Hand-written variants passed as ``extra`` come first and win.
Variants equal to the reference or to an earlier variant are dropped. Matching is numeric;
answers with a shape error are matched on square instantiations, where they have values.
It never decides whether an answer is right: that is ``equivalent``'s job.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sympy
from sympy.matrices.expressions.matexpr import MatrixExpr

from grader.checks.math import _build as build
from grader.checks.math._definitions import expand_definitions
from grader.checks.math._printing import plain
from grader.checks.math.equivalence import as_expression
from grader.checks.math.functions import sigma
from grader.checks.math.numeric import Undefined, Unevaluable, differs, evaluate
from grader.checks.math.points import make_context, make_points
from grader.checks.math.shapes import ShapeError, raw_shape
from grader.checks.math.symbols import SymbolTable

__all__ = ["Variant", "diagnose", "generate_variants"]

_MAX_VARIANTS = 200
_SQUARE = 3


@dataclass(frozen=True)
class Variant:
    """A wrong formula, the hint a student whose answer equals it should see, and its credit."""

    name: str
    expr: Any
    hint: str
    credit: float = 0.0


def _show(expr: Any) -> str:
    """Plain text, with a two-term difference written the way people write it (y - a2)."""
    if isinstance(expr, sympy.Add) and len(expr.args) == 2:
        negative = [t for t in expr.args if t.could_extract_minus_sign()]
        positive = [t for t in expr.args if not t.could_extract_minus_sign()]
        if len(negative) == 1 and len(positive) == 1:
            return f"{plain(positive[0])} - {plain(-negative[0])}"
    return plain(expr)


def _factors(expr: Any) -> tuple[Any, list[Any]]:
    """(numeric coefficient, other factors) of a product; a non-product is one factor."""
    if isinstance(expr, sympy.MatMul):
        coeff, matrices = expr.as_coeff_matrices()
        number, rest = coeff.as_coeff_Mul()
        scalars = list(rest.args) if isinstance(rest, sympy.Mul) else ([] if rest == 1 else [rest])
        return number, scalars + list(matrices)
    if isinstance(expr, sympy.Mul):
        number, rest = expr.as_coeff_Mul()
        return number, list(rest.args) if isinstance(rest, sympy.Mul) else [rest]
    return sympy.Integer(1), [expr]


def _product(number: Any, factors: Sequence[Any]) -> Any:
    return build.multiply([number, *factors]) if factors else number


def _flipped(expr: Any) -> Any:
    if isinstance(expr, sympy.MatAdd):
        return build.add([build.negate(term) for term in expr.args])
    return sympy.Add(*[-term for term in expr.args])


def _product_variants(expr: Any) -> Iterator[Variant]:
    number, factors = _factors(expr)
    for index, factor in enumerate(factors):
        if isinstance(factor, sympy.Add | sympy.MatAdd) and len(factor.args) == 2:
            changed = [*factors[:index], _flipped(factor), *factors[index + 1 :]]
            yield Variant(
                f"sign:{plain(factor)}",
                _product(number, changed),
                f"your answer has {_show(_flipped(factor))} where {_show(factor)} belongs "
                "(a sign error)",
            )
    if len(factors) > 1:
        for size in (1, 2):
            for dropped in itertools.combinations(range(len(factors)), size):
                kept = [f for i, f in enumerate(factors) if i not in dropped]
                gone = build.multiply([factors[i] for i in dropped])
                yield Variant(
                    f"missing:{plain(gone)}",
                    _product(number, kept),
                    f"your answer is missing the factor {plain(gone)}",
                )
    if isinstance(expr, sympy.Add | sympy.MatAdd) and len(expr.args) > 1:
        for index, term in enumerate(expr.args):
            rest = [t for i, t in enumerate(expr.args) if i != index]
            yield Variant(
                f"missing-term:{plain(term)}",
                build.add(rest),
                f"your answer is missing the term {plain(term)}",
            )


def _paths(expr: Any, path: tuple[int, ...] = ()) -> Iterator[tuple[tuple[int, ...], Any]]:
    yield path, expr
    for index, arg in enumerate(expr.args):
        yield from _paths(arg, (*path, index))


def _replace_at(expr: Any, path: tuple[int, ...], new: Any) -> Any:
    if not path:
        return new
    args = list(expr.args)
    args[path[0]] = _replace_at(args[path[0]], path[1:], new)
    return expr.func(*args)


def _transpose_variants(expr: Any) -> Iterator[Variant]:
    if not isinstance(expr, MatrixExpr):
        return
    yield Variant(
        "transposed",
        build.transpose(expr),
        "your answer is the transpose of the expected one (rows and columns swapped)",
    )
    for path, node in _paths(expr):
        if isinstance(node, sympy.Transpose):
            yield Variant(
                f"no-transpose:{plain(node.arg)}",
                _replace_at(expr, path, node.arg),
                f"your answer is missing the transpose on {plain(node.arg)}",
            )
        elif isinstance(node, sympy.MatrixSymbol) and not (
            path and isinstance(_node_at(expr, path[:-1]), sympy.Transpose)
        ):
            yield Variant(
                f"extra-transpose:{node.name}",
                _replace_at(expr, path, sympy.Transpose(node)),
                f"your answer has {node.name}ᵀ where {node.name} belongs",
            )


def _node_at(expr: Any, path: tuple[int, ...]) -> Any:
    for index in path:
        expr = expr.args[index]
    return expr


def _stem(name: str) -> str:
    return re.sub(r"\d+", "", name)


def _swap_variants(expr: Any, table: SymbolTable) -> Iterator[Variant]:
    present = {getattr(s, "name", None) for s in expr.free_symbols}
    specs = [s for s in table.specs if s.kind != "function"]
    for spec in specs:
        if spec.name not in present:
            continue
        for other in specs:
            similar = _stem(other.name) == _stem(spec.name) and other.name != spec.name
            if not similar or (other.kind, other.shape) != (spec.kind, spec.shape):
                continue
            mine, theirs = table.object(spec.name), table.object(other.name)
            yield Variant(
                f"swap:{spec.name}->{other.name}",
                expr.xreplace({mine: theirs}),
                f"you used {other.name} where {spec.name} belongs",
            )
            if other.name in present and spec.name < other.name:
                yield Variant(
                    f"swap:{spec.name}<->{other.name}",
                    expr.xreplace({mine: theirs, theirs: mine}),
                    f"you swapped {spec.name} and {other.name}",
                )


def _sigmoid_factors(table: SymbolTable) -> list[Any]:
    return [
        table.object(name)
        for name, value in table.definitions.items()
        if isinstance(value, sigma) and table.spec(name).kind == "scalar"
    ]


def _candidates(written: Any, table: SymbolTable) -> Iterator[Variant]:
    yield from _product_variants(written)
    yield Variant("sign", build.negate(written), "your answer has the opposite sign")
    yield Variant(
        "factor-2", build.multiply([sympy.Integer(2), written]), "your answer has an extra factor 2"
    )
    yield Variant(
        "half",
        build.multiply([sympy.Rational(1, 2), written]),
        "your answer is missing a factor 2 (it is half the expected value)",
    )
    for symbol in _sigmoid_factors(table):
        factor = symbol * (1 - symbol)
        yield Variant(
            f"extra:{plain(factor)}",
            build.multiply([written, factor]),
            f"your answer has an extra factor {plain(factor)}",
        )
    yield from _transpose_variants(written)
    yield from _swap_variants(written, table)


class _Fingerprints:
    """Values of expressions at fixed points: tall ones, or square ones for shape errors."""

    def __init__(self, table: SymbolTable, seed: int) -> None:
        self.ctx = make_context()
        self.table = table
        self.tall = make_points(table, seed=seed, count=3, ctx=self.ctx)
        self.square = make_points(table, seed=seed, count=3, ctx=self.ctx, square=_SQUARE)

    def of(self, expr: Any) -> tuple[str, Any, list[Any]] | None:
        expanded = expand_definitions(expr, self.table)
        try:
            shape: Any = raw_shape(expanded)
            kind, points = "tall", self.tall
        except ShapeError:
            shape, kind, points = None, "square", self.square
        try:
            return kind, shape, [evaluate(expanded, p, self.ctx) for p in points]
        except (Undefined, Unevaluable):
            return None

    def same(self, a: tuple[str, Any, list[Any]], b: tuple[str, Any, list[Any]]) -> bool:
        if a[0] != b[0] or (a[0] == "tall" and not _same_shape(a[1], b[1])):
            return False
        for x, y in zip(a[2], b[2], strict=True):
            gap = differs(x, y, self.ctx)
            if gap is None or gap > 1e-20:
                return False
        return True


def _same_shape(a: Any, b: Any) -> bool:
    scalar = [s is None or (s[0] == 1 and s[1] == 1) for s in (a, b)]
    return all(scalar) or a == b


def _groups(
    candidates: Iterator[Variant], reference: Any, prints: _Fingerprints
) -> list[tuple[Any, list[Variant]]]:
    """Variants grouped by value (first one first); those equal to the reference dropped."""
    groups: list[tuple[Any, list[Variant]]] = []
    ref = prints.of(reference)
    for count, variant in enumerate(candidates):
        if count >= _MAX_VARIANTS:
            break
        found = prints.of(variant.expr)
        if found is None or (ref is not None and prints.same(found, ref)):
            continue
        for other, members in groups:
            if prints.same(found, other):
                members.append(variant)
                break
        else:
            groups.append((found, [variant]))
    return groups


def _subtrees(expr: Any) -> set[Any]:
    return set(sympy.preorder_traversal(expr))


def generate_variants(
    reference: Any, table: SymbolTable, *, extra: Sequence[Variant] = ()
) -> list[Variant]:
    """Wrong variants of ``reference`` with their hints, ``extra`` first, no duplicates."""
    _, written = as_expression(reference, table)
    _, groups = _reference_groups(written, table, 0, tuple(extra))
    return [members[0] for _, members in groups]


def _reference_groups(
    ref_written: Any, table: SymbolTable, seed: int, extra: tuple[Variant, ...]
) -> tuple[_Fingerprints, list[tuple[Any, list[Variant]]]]:
    """The fingerprints at ``seed`` and the variant groups of a reference formula.

    They depend on nothing but the formula, the table, the seed and the hand-written variants,
    and every submission that gets the formula wrong needs them: the table remembers them,
    per thread, as the fingerprints compute in the thread's own mpmath context.
    """
    key = (threading.get_ident(), ref_written, seed, extra)
    known: tuple[_Fingerprints, list[tuple[Any, list[Variant]]]] | None = table.variants.get(key)
    if known is None:
        prints = _Fingerprints(table, seed)
        candidates = itertools.chain(extra, _candidates(ref_written, table))
        known = table.variants.put(key, (prints, _groups(candidates, ref_written, prints)))
    return known


def diagnose(
    answer: Any,
    reference: Any,
    table: SymbolTable,
    *,
    extra: Sequence[Variant] = (),
    seed: int = 0,
) -> Variant | None:
    """The known wrong variant ``answer`` equals, or None (correct, or an unknown mistake).

    When several generated variants have the same value (flipping the sign of either factor
    of a product), the one that looks most like the answer gives the hint; a hand-written
    ``extra`` variant always wins.
    """
    _, written = as_expression(answer, table)
    _, ref_written = as_expression(reference, table)
    prints, groups = _reference_groups(ref_written, table, seed, tuple(extra))
    mine = prints.of(written)
    if mine is None:
        return None
    for found, members in groups:
        if not prints.same(mine, found):
            continue
        chosen = [m for m in members if m in extra] or members
        parts = _subtrees(written)
        return max(chosen, key=lambda v: len(parts & _subtrees(v.expr)))
    return None
