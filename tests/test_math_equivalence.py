"""Three-valued equivalence: a table of pairs, counterexamples, shapes, limits."""

from __future__ import annotations

import time

import pytest
import sympy

from grader.checks.math import SymbolTable, Verdict, equivalent, read, shape_of
from grader.checks.math._limits import ask_limited
from grader.checks.math.shapes import ShapeError
from grader.errors import SpecError

EQ, NE, UNDECIDED = Verdict.EQUIVALENT, Verdict.NOT_EQUIVALENT, Verdict.UNDECIDED


@pytest.fixture(scope="module")
def table() -> SymbolTable:
    """One table for scalar (backprop) and matrix (normal equation) pairs."""
    return SymbolTable.from_mapping(
        {
            "x": {"kind": "scalar"},
            "y": {"kind": "scalar", "domain": "label"},
            "w1": {"kind": "scalar"},
            "b1": {"kind": "scalar"},
            "w2": {"kind": "scalar"},
            "b2": {"kind": "scalar"},
            "z1": {"kind": "scalar", "definition": "w1*x + b1"},
            "a1": {"kind": "scalar", "definition": "sigma(z1)"},
            "z2": {"kind": "scalar", "definition": "w2*a1 + b2"},
            "a2": {"kind": "scalar", "definition": "sigma(z2)"},
            "L": {"kind": "scalar", "definition": "-(y*log(a2) + (1 - y)*log(1 - a2))"},
            "z": {"kind": "scalar"},
            "t": {"kind": "scalar", "domain": "positive"},
            "q": {"kind": "scalar", "domain": "probability"},
            "f": {"kind": "function"},
            "X": {"kind": "matrix", "shape": ["n", "p"]},
            "Y": {"kind": "vector", "shape": ["n"]},
            "beta": {"kind": "vector", "shape": ["p"]},
            "lambda": {"kind": "scalar", "domain": "positive"},
        }
    )


# (answer, expected, verdict): equivalent, not equivalent, and identities SymPy's simplify
# misses or is slow on but numbers settle (marked "numeric").
PAIRS = [
    # -- backprop gradients, every spelling --
    ("(a2 - y)*a1", r"(a_2 - y) a_1", EQ),
    ("a2 - y", r"\sigma(w_2 a_1 + b_2) - y", EQ),
    ("(a2-y)*w2*a1*(1-a1)*x", r"(a_2 - y)\,w_2\,a_1(1-a_1)\,x", EQ),
    ("(a2-y)*w2*a1*(1-a1)", r"(a_2 - y) w_2 a_1 (1-a_1)", EQ),
    (r"(\sigma(z_2) - y) a_1", "(a2 - y)*a1", EQ),
    (r"(a_2 - y) w_2 \sigma'(z_1) x", "(a2-y)*w2*a1*(1-a1)*x", EQ),
    ("(sigma(w2*sigma(w1*x+b1)+b2) - y)*sigma(w1*x+b1)", "(a2-y)*a1", EQ),
    ("a1 - a1**2", "a1*(1 - a1)", EQ),
    ("-(y*log(a2) + (1-y)*log(1-a2))", "L", EQ),
    ("(a2 - y)*a1", "(y - a2)*a1", NE),
    ("(a2 - y)*w2*x", "(a2-y)*w2*a1*(1-a1)*x", NE),
    ("(a2 - y)*w2*a1*(1-a1)*a2*(1-a2)*x", "(a2-y)*w2*a1*(1-a1)*x", NE),
    ("(a2 - y)*w2*a1*(1-a1)", "(a2-y)*w2*a1*(1-a1)*x", NE),
    ("(a2 - y)*w1*a1*(1-a1)*x", "(a2-y)*w2*a1*(1-a1)*x", NE),
    ("(a2 - y)*a2", "(a2 - y)*a1", NE),
    # -- labels: y is 0 or 1, so y² = y on the question's domain --
    ("a2 - y**2", "a2 - y", EQ),
    ("y*(1 - y)", "0", EQ),
    # -- identities simplify misses or finds slowly; numbers decide --
    (r"\tanh z", r"2\sigma(2z) - 1", EQ),
    (r"\log \sigma(z)", r"-\log(1 + e^{-z})", EQ),
    (r"\sigma(-z)", r"1 - \sigma(z)", EQ),
    (r"\sigma(z)(1 - \sigma(z))", r"\frac{e^{-z}}{(1 + e^{-z})^2}", EQ),
    (r"\log(1 - \sigma(z))", r"-z - \log(1 + e^{-z})", EQ),
    (r"\frac{1 - \tanh^2 z}{4}", r"\sigma(2z)(1 - \sigma(2z))", EQ),
    (r"\log \frac{q}{1-q}", r"\log q - \log(1 - q)", EQ),
    (r"\sqrt{t^2}", "t", EQ),
    (r"e^{\log t}", "t", EQ),
    (r"\log(t^2)", r"2 \log t", EQ),
    (r"\tanh z", r"\sigma(2z)", NE),
    (r"\sigma(z)", r"\frac{1}{1 - e^{-z}}", NE),
    # -- the normal equation, matrices are tall --
    (r"X^T(X\beta - Y)", "X.T @ X @ beta - X.T @ Y", EQ),
    (r"X^T X \beta - X^T Y", r"-(X^T(Y - X\beta))", EQ),
    (r"(X^TX)^{-1}X^TY", "inv(X.T @ X) @ X.T @ Y", EQ),
    (r"\frac{1}{2}\|Y - X\beta\|^2", r"\frac12 (Y^TY - 2\beta^TX^TY + \beta^TX^TX\beta)", EQ),
    (r"(Y - X\beta)^T(Y - X\beta)", r"Y^TY - Y^TX\beta - \beta^TX^TY + \beta^TX^TX\beta", EQ),
    (r"Y^TX\beta", r"\beta^TX^TY", EQ),
    (r"(X\beta)^T", r"\beta^T X^T", EQ),
    (r"((X^TX)^{-1})^T", r"(X^TX)^{-1}", EQ),
    (r"(X^TX + \lambda I)^{-1}X^TY", r"(X^TX + \lambda I)^{-1}X^TY", EQ),
    (r"X^T(X\beta - Y) - X^TX\beta + X^TY", "0", EQ),
    (r"X^T(Y - X\beta)", r"X^T(X\beta - Y)", NE),
    (r"2X^T(X\beta - Y)", r"X^T(X\beta - Y)", NE),
    (r"X^T(XX^T)^{-1}Y", r"(X^TX)^{-1}X^TY", NE),
    (r"(X^TX + \lambda I)^{-1}X^TY", r"(X^TX)^{-1}X^TY", NE),
    (r"X^{-1}Y", r"(X^TX)^{-1}X^TY", NE),
    (r"X(X\beta - Y)", r"X^T(X\beta - Y)", NE),
    (r"(X\beta - Y)^TX", r"X^T(X\beta - Y)", NE),
    (r"X^TX", r"X^T(X\beta - Y)", NE),
]


@pytest.mark.parametrize(("answer", "expected", "verdict"), PAIRS)
def test_equivalence_table(
    table: SymbolTable, answer: str, expected: str, verdict: Verdict
) -> None:
    result = equivalent(answer, expected, table)
    assert result.verdict is verdict, result.reason


def test_the_table_is_large_and_mixed() -> None:
    assert len(PAIRS) >= 40
    assert {v for *_, v in PAIRS} == {EQ, NE}


def test_simplify_really_misses_the_numeric_identities() -> None:
    z = sympy.Symbol("z", real=True)
    sigma = 1 / (1 + sympy.exp(-z))
    assert sympy.simplify(sympy.tanh(z) - (2 * sigma.subs(z, 2 * z) - 1)) != 0


def test_not_equivalent_comes_with_a_counterexample(table: SymbolTable) -> None:
    result = equivalent("(y - a2)*a1", "(a2 - y)*a1", table)
    assert result.verdict is NE
    assert result.counterexample is not None
    assert set(result.counterexample) >= {"x", "y", "w1", "w2", "b1", "b2"}
    assert result.counterexample["y"] in ("0", "1")
    assert result.answer_value is not None and result.expected_value is not None
    assert result.answer_value.lstrip("-") == result.expected_value.lstrip("-")
    assert "differs from the expected answer at" in result.reason


def test_matrix_counterexample_names_random_tall_matrices(table: SymbolTable) -> None:
    result = equivalent(r"X^T(XX^T)^{-1}Y", r"(X^TX)^{-1}X^TY", table)
    assert result.counterexample is not None
    n, p = int(result.counterexample["n"]), int(result.counterexample["p"])
    assert n > p
    assert result.counterexample["X"] == f"a random {n}×{p} matrix"


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (r"X(X\beta - Y)", "shape error: it multiplies an n×p matrix by an n-vector"),
        (r"X^{-1}Y", "shape error: it inverts an n×p matrix, which is not square"),
        (r"(X\beta - Y)^TX", "your answer is a row vector (1×p), a p-vector was expected"),
        (r"X^TX", "your answer is a p×p matrix, a p-vector was expected"),
        (r"\beta^T\beta", "your answer is a scalar, a p-vector was expected"),
    ],
)
def test_shape_mismatches_are_reported_as_such(table: SymbolTable, answer: str, words: str) -> None:
    result = equivalent(answer, r"X^T(X\beta - Y)", table)
    assert result.verdict is NE
    assert words in result.reason
    assert result.counterexample is None


def test_a_broken_expected_answer_is_a_spec_error(table: SymbolTable) -> None:
    with pytest.raises(SpecError, match="shape error"):
        equivalent("Y", "X Y", table)


def test_shape_of(table: SymbolTable) -> None:
    assert shape_of(read(r"X^T(X\beta - Y)", table).expr, table) == ("p",)
    assert shape_of(read(r"Y Y^T", table).expr, table) == ("n", "n")
    assert shape_of(read(r"\beta^T", table).expr, table) == ("1", "p")
    assert shape_of(read(r"Y^TY", table).expr, table) == ()
    error = shape_of(read("X Y", table).expr, table)
    assert isinstance(error, ShapeError) and "multiplies an n×p matrix by an n-vector" in str(error)


def test_unknown_functions_are_proved_symbolically_or_left_undecided(table: SymbolTable) -> None:
    proved = equivalent("f(x)**2 - 1", "(f(x) - 1)*(f(x) + 1)", table)
    assert proved.verdict is EQ and "symbolically" in proved.reason
    unknown = equivalent("f(x)", "f(2*x)", table)
    assert unknown.verdict is UNDECIDED
    assert "flagged for review" in unknown.reason


def test_undecided_is_bounded_by_the_time_limit(table: SymbolTable) -> None:
    start = time.perf_counter()
    result = equivalent("exp(" * 40 + "x" + ")" * 40, "x", table, time_limit=0.5)
    assert result.verdict is UNDECIDED
    assert time.perf_counter() - start < 2.0


def test_limited_question_is_killed_when_it_hangs() -> None:
    start = time.perf_counter()
    assert ask_limited(lambda: time.sleep(30) is None, seconds=0.3) is None
    assert time.perf_counter() - start < 2.0


def test_limited_question_cannot_exhaust_memory() -> None:
    def greedy() -> bool:
        return len(bytearray(4 << 30)) > 0

    assert ask_limited(greedy, seconds=5, memory_bytes=512 << 20) is None


def test_limited_question_answers() -> None:
    assert ask_limited(lambda: True, seconds=5) is True
    assert ask_limited(lambda: False, seconds=5) is False


def test_same_seed_same_verdict(table: SymbolTable) -> None:
    first = equivalent("(y - a2)*a1", "(a2 - y)*a1", table, seed=3)
    second = equivalent("(y - a2)*a1", "(a2 - y)*a1", table, seed=3)
    assert first == second
