"""Property tests: any expression printed by SymPy (Python syntax or LaTeX) reads back equal."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grader.checks.math import SymbolTable, Verdict, equivalent, read, read_value, sigma
from grader.checks.math._printing import plain

TABLE = SymbolTable.from_mapping(
    {
        "x": {"kind": "scalar"},
        "z": {"kind": "scalar"},
        "w1": {"kind": "scalar"},
        "t": {"kind": "scalar", "domain": "positive"},
        "q": {"kind": "scalar", "domain": "probability"},
        "X": {"kind": "matrix", "shape": ["n", "p"]},
        "y": {"kind": "vector", "shape": ["n"]},
        "beta": {"kind": "vector", "shape": ["p"]},
    }
)
SETTINGS = settings(
    derandomize=True,
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

_scalars = [TABLE.object(name) for name in ("x", "z", "w1", "t", "q")]
leaves = st.one_of(
    st.sampled_from(_scalars),
    st.integers(-4, 4).map(sympy.Integer),
    st.sampled_from([sympy.Rational(1, 2), sympy.Rational(-3, 4)]),
)


def _scalar_nodes(children: Any) -> Any:
    pair = st.tuples(children, children)
    return st.one_of(
        pair.map(lambda ab: ab[0] + ab[1]),
        pair.map(lambda ab: ab[0] - ab[1]),
        pair.map(lambda ab: ab[0] * ab[1]),
        pair.map(lambda ab: ab[0] / (ab[1] ** 2 + 1)),
        st.tuples(children, st.integers(2, 3)).map(lambda ak: ak[0] ** ak[1]),
        children.map(sigma),
        children.map(sympy.tanh),
        children.map(lambda a: sympy.exp(a / 4)),
        children.map(lambda a: sympy.log(a**2 + 1)),
        children.map(lambda a: sympy.sqrt(a**2 + 1)),
    )


scalar_exprs = st.recursive(leaves, _scalar_nodes, max_leaves=6)

X, Y, BETA = TABLE.object("X"), TABLE.object("y"), TABLE.object("beta")


def _vectors(depth: int) -> tuple[Any, Any]:
    """Strategies for p-vectors and n-vectors built from X, y and β."""
    if depth == 0:
        return st.just(BETA), st.just(Y)
    p_inner, n_inner = _vectors(depth - 1)
    coeff = st.sampled_from([sympy.Integer(2), sympy.Integer(-1), sympy.Rational(1, 2)])
    p_vectors = st.one_of(
        p_inner,
        n_inner.map(lambda v: X.T * v),
        p_inner.map(lambda v: X.T * X * v),
        p_inner.map(lambda v: sympy.Inverse(X.T * X) * v),
        st.tuples(p_inner, p_inner).map(lambda ab: ab[0] + ab[1]),
        st.tuples(coeff, p_inner).map(lambda cv: cv[0] * cv[1]),
    )
    n_vectors = st.one_of(
        n_inner,
        p_inner.map(lambda v: X * v),
        st.tuples(n_inner, n_inner).map(lambda ab: ab[0] - ab[1]),
    )
    return p_vectors, n_vectors


P_VECTORS, N_VECTORS = _vectors(2)
matrix_exprs = st.one_of(
    P_VECTORS,
    N_VECTORS,
    N_VECTORS.map(lambda v: v.T * v),
    st.tuples(P_VECTORS, P_VECTORS).map(lambda ab: ab[0].T * ab[1]),
)


def _same(reading: Any, original: Any) -> None:
    result = equivalent(reading, original, TABLE)
    assert result.verdict is Verdict.EQUIVALENT, (reading.read_as(), result.reason)


@SETTINGS
@given(scalar_exprs)
def test_scalar_python_syntax_reads_back(expr: Any) -> None:
    # SymPy prints Euler's number as E, which formulas read only in values (students write e).
    _same(read(re.sub(r"\bE\b", "e", sympy.sstr(expr)), TABLE), expr)


@SETTINGS
@given(scalar_exprs)
def test_scalar_latex_reads_back(expr: Any) -> None:
    _same(read(sympy.latex(expr), TABLE), expr)


@SETTINGS
@given(matrix_exprs)
def test_matrix_python_syntax_reads_back(expr: Any) -> None:
    _same(read_value(sympy.sstr(expr), TABLE), expr)


@SETTINGS
@given(matrix_exprs)
def test_matrix_latex_reads_back(expr: Any) -> None:
    _same(read(sympy.latex(expr), TABLE), expr)


@SETTINGS
@given(st.one_of(scalar_exprs, matrix_exprs))
def test_echo_is_stable(expr: Any) -> None:
    # What the report shows reads back to the same echo (and the same value).
    first = read_value(sympy.sstr(expr), TABLE)
    second = read_value(first.read_as(), TABLE)
    assert second.read_as() == first.read_as()
    _same(second, expr)


@pytest.mark.parametrize(
    "text", ["X.T*(X*beta - y)", "-X.T*y + (1/2)*X.T*X*beta", "(X*beta - y).T*(X*beta - y)"]
)
def test_plain_printing_matches_sympy_where_both_are_unambiguous(text: str) -> None:
    expr = read_value(text, TABLE).expr
    assert read_value(plain(expr), TABLE).expr == expr
