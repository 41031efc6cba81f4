"""The formula reader: every construct students use, errors that point at a column, caps."""

from __future__ import annotations

import time

import pytest
import sympy

from grader.checks.math import (
    ReadError,
    SymbolTable,
    read,
    read_derivative_equations,
    read_value,
    scan_derivative_equations,
)
from grader.checks.math.equivalence import equivalent


@pytest.fixture(scope="module")
def bp() -> SymbolTable:
    return SymbolTable.from_mapping(
        {
            "x": {"kind": "scalar"},
            "y": {"kind": "scalar", "domain": "label"},
            "w1": {"kind": "scalar", "aliases": ["W_1"]},
            "b1": {"kind": "scalar"},
            "w2": {"kind": "scalar", "aliases": ["W_2"]},
            "b2": {"kind": "scalar"},
            "z1": {"kind": "scalar", "definition": "w1*x + b1"},
            "a1": {"kind": "scalar", "definition": "sigma(z1)"},
            "z2": {"kind": "scalar", "definition": "w2*a1 + b2"},
            "a2": {"kind": "scalar", "definition": "sigma(z2)", "aliases": ["\\hat{y}", "y_hat"]},
            "L": {"kind": "scalar", "definition": "-(y*log(a2) + (1 - y)*log(1 - a2))"},
            "dL_dz2": {"kind": "scalar", "definition": "a2 - y"},
            "z": {"kind": "scalar"},
            "sigma": {"kind": "function"},
        }
    )


@pytest.fixture(scope="module")
def ne() -> SymbolTable:
    return SymbolTable.from_mapping(
        {
            "X": {"kind": "matrix", "shape": ["n", "p"]},
            "y": {"kind": "vector", "shape": ["n"]},
            "beta": {"kind": "vector", "shape": ["p"]},
            "lambda": {"kind": "scalar", "domain": "positive"},
            "J": {"kind": "function", "definition": "1/2*||y - X*beta||^2"},
        }
    )


SCALAR_CONSTRUCTS = [
    ("2x", "2*x"),
    ("a_1(1-a_1)", "a1*(1 - a1)"),
    ("(a2-y)a1", "a1*(a2 - y)"),
    (r"\frac{a_1}{2}", "a1/2"),
    (r"\dfrac{1}{2}x", "x/2"),
    (r"\frac12 x", "x/2"),
    ("½x", "x/2"),
    (r"w_2 \cdot a_1", "a1*w2"),
    (r"w_2 \times a_1", "a1*w2"),
    ("w2·a1", "a1*w2"),
    ("w2×a1", "a1*w2"),
    ("w2 * a1", "a1*w2"),
    (r"\left( a_2 - y \right) a_1", "a1*(a2 - y)"),
    (r"\sigma(z_1)", "sigma(z1)"),
    (r"\sigma\left(z_1\right)", "sigma(z1)"),
    ("σ(z₁)", "sigma(z1)"),
    ("sigmoid(z1)", "sigma(z1)"),
    (r"\sigma'(z_1)", "(1 - sigma(z1))*sigma(z1)"),
    (r"\log a_2", "log(a2)"),
    (r"\ln(a_2)", "log(a2)"),
    ("log(1 - a2)", "log(1 - a2)"),
    (r"\exp(-z)", "exp(-z)"),
    (r"e^{-z}", "exp(-z)"),
    ("e^-z", "exp(-z)"),
    ("e**(-z)", "exp(-z)"),
    ("np.exp(-z)", "exp(-z)"),
    ("tanh(z)", "tanh(z)"),
    (r"\sqrt{z}", "sqrt(z)"),
    ("|z|", "Abs(z)"),
    ("z^2", "z**2"),
    ("z**2", "z**2"),
    ("z^{2}", "z**2"),
    ("z²", "z**2"),
    ("z^{-1}", "1/z"),
    ("inv(z)", "1/z"),
    ("w_{1}", "w1"),
    ("w_1", "w1"),
    ("W_1", "w1"),
    ("w₁", "w1"),
    (r"\hat{y}", "a2"),
    ("ŷ", "a2"),
    ("y_hat", "a2"),
    ("a₂ − y", "a2 - y"),
    ("w_1x + b_1", "b1 + w1*x"),
    ("$w_2$", "w2"),
    ("$$w_2 a_1$$", "a1*w2"),
    (r"\boxed{w_2}", "w2"),
    (r"\text{so } w_2", "w2"),
    ("a2 - y //", "a2 - y"),
    ("a2 - y.", "a2 - y"),
    (r"\Rightarrow a_2 - y", "a2 - y"),
    (r"\text{hence} \Rightarrow a_2 - y", "a2 - y"),
    (r"\frac{1}{1+e^{-z_1}}", "1/(1 + exp(-z1))"),
    (r"\mathrm{e}^{z}", "exp(z)"),
    (r"(a_2 - y)\,w_2\,a_1(1-a_1)\,x", "a1*w2*x*(1 - a1)*(a2 - y)"),
]


@pytest.mark.parametrize(("text", "shown"), SCALAR_CONSTRUCTS)
def test_scalar_constructs_read_as_expected(bp: SymbolTable, text: str, shown: str) -> None:
    assert read(text, bp, expand_definitions=False).read_as() == shown


MATRIX_CONSTRUCTS = [
    ("X^T y", "X.T*y"),
    (r"X^\top y", "X.T*y"),
    ("X^{T} y", "X.T*y"),
    (r"X^{\mathsf T} y", "X.T*y"),
    (r"X^{\mathsf{T}} y", "X.T*y"),
    (r"X^{\intercal} y", "X.T*y"),
    ("Xᵀy", "X.T*y"),
    ("X.T y", "X.T*y"),
    ("X' y", "X.T*y"),
    ("X′y", "X.T*y"),
    ("transpose(X) y", "X.T*y"),
    ("X^TX", "X.T*X"),
    (r"(X^TX)^{-1}X^Ty", "(X.T*X)**(-1)*X.T*y"),
    ("(XᵀX)⁻¹Xᵀy", "(X.T*X)**(-1)*X.T*y"),
    ("inv(X.T @ X) @ X.T @ y", "(X.T*X)**(-1)*X.T*y"),
    ("np.linalg.inv(X.T @ X) @ X.T @ y", "(X.T*X)**(-1)*X.T*y"),
    ("(X.T*X)**-1*X.T*y", "(X.T*X)**(-1)*X.T*y"),
    ("(X^T X)^-1 X^T y", "(X.T*X)**(-1)*X.T*y"),
    (r"\mathbf{X}\boldsymbol{\beta}", "X*beta"),
    (r"\mathbf X \beta", "X*beta"),
    ("Xβ", "X*beta"),
    ("X beta", "X*beta"),
    ("Xbeta", "X*beta"),
    (r"\|y - X\beta\|^2", "(y - X*beta).T*(y - X*beta)"),
    (r"\left\| y - X\beta \right\|^2", "(y - X*beta).T*(y - X*beta)"),
    ("‖y − Xβ‖²", "(y - X*beta).T*(y - X*beta)"),
    (r"\lVert y - X\beta \rVert^2", "(y - X*beta).T*(y - X*beta)"),
    # The lecture's own notation: the Euclidean norm with its subscript 2.
    (r"\|y - X\beta\|_2^2", "(y - X*beta).T*(y - X*beta)"),
    (r"\|y - X\beta\|^2_2", "(y - X*beta).T*(y - X*beta)"),
    (r"\lVert y - X\beta \rVert_{2}^{2}", "(y - X*beta).T*(y - X*beta)"),
    ("‖y − Xβ‖₂²", "(y - X*beta).T*(y - X*beta)"),
    ("X^ty", "X.T*y"),
    ("X^{t} y", "X.T*y"),
    (r"(X^tX)^{-1}X^ty", "(X.T*X)**(-1)*X.T*y"),
    (r"(y - X\beta)^t(y - X\beta)", "(y - X*beta).T*(y - X*beta)"),
    (r"X^T(X\beta - y)", "X.T*(X*beta - y)"),
    (r"(X^TX + \lambda I)^{-1}X^Ty", "(X.T*X + lambda*I)**(-1)*X.T*y"),
    ("yy^T", "y*y.T"),
    (r"y^T X\beta", "y.T*X*beta"),
    (r"\beta \cdot \beta", "beta.T*beta"),
    ("1 + beta.T beta", "beta.T*beta + 1"),
    (r"X^{-T}", "(X**(-1)).T"),
    ("J(beta)", "J(beta)"),
    ("0", "0"),
]


@pytest.mark.parametrize(("text", "shown"), MATRIX_CONSTRUCTS)
def test_matrix_constructs_read_as_expected(ne: SymbolTable, text: str, shown: str) -> None:
    assert read(text, ne, expand_definitions=False).read_as() == shown


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (r"\|\beta\|_1", "‖…‖_1"),
        (r"\|y\|_\infty", "‖…‖_\\infty"),
        ("‖y‖₁", "‖…‖_₁"),
        ("|y|_1", "|…|_1"),
    ],
)
def test_a_norm_other_than_the_euclidean_is_named_not_misread(
    ne: SymbolTable, text: str, named: str
) -> None:
    with pytest.raises(ReadError, match="only the Euclidean norm") as err:
        read(text, ne, expand_definitions=False)
    assert named in str(err.value)


def test_a_small_t_is_a_transpose_only_where_t_means_nothing_else() -> None:
    rnn = SymbolTable.from_mapping(
        {"h": {"kind": "vector", "shape": ["n"]}, "t": {"kind": "scalar"}, "x": {"kind": "scalar"}}
    )
    assert read("x^t", rnn, expand_definitions=False).read_as() == "x**t"
    with pytest.raises(ReadError, match="whole power, not t"):
        read("h^t", rnn, expand_definitions=False)  # t is a symbol here: never a transpose
    indexed = SymbolTable.from_mapping(
        {"h_t": {"kind": "vector", "shape": ["n"]}, "W": {"kind": "matrix", "shape": ["n", "n"]}}
    )
    with pytest.raises(ReadError, match="'t' is not one of"):
        read("W^t h_t", indexed, expand_definitions=False)  # h_t: t is a time step here
    scalar = SymbolTable.from_mapping({"x": {"kind": "scalar"}})
    with pytest.raises(ReadError, match="'t' is not one of"):
        read("x^t", scalar, expand_definitions=False)  # no transpose of a scalar: e^{-t} stays


@pytest.mark.parametrize("text", ["X^top y", "y^tanh(y)"])
def test_a_small_t_starting_an_unknown_word_is_no_transpose(ne: SymbolTable, text: str) -> None:
    with pytest.raises(ReadError, match="'t' is not one of"):  # not "'op'" or "'anh'"
        read(text, ne, expand_definitions=False)


def test_implicit_product_of_scalar_names_splits_into_declared_symbols(bp: SymbolTable) -> None:
    assert read("w2a1", bp, expand_definitions=False).expr == sympy.Symbol("w2", real=True) * (
        sympy.Symbol("a1", real=True)
    )


def test_shorthands_expand_but_are_echoed_as_written(bp: SymbolTable) -> None:
    reading = read("a2 - y", bp)
    assert reading.read_as() == "a2 - y"
    assert "w1" in str(reading.expr) and "sigma" in str(reading.expr)
    assert read("a2 - y", bp, expand_definitions=False).expr.free_symbols == {
        bp.object("a2"),
        bp.object("y"),
    }


def test_function_with_definition_expands(ne: SymbolTable) -> None:
    assert equivalent(read(r"J(\beta)", ne), r"\frac12 (y - X\beta)^T(y - X\beta)", ne).equivalent


def test_equation_chain_keeps_every_side_and_judges_the_last(bp: SymbolTable) -> None:
    reading = read(
        r"\frac{\partial L}{\partial w_2} = \frac{\partial L}{\partial z_2} \cdot "
        r"\frac{\partial z_2}{\partial w_2} = (a_2 - y) \cdot a_1 //",
        bp,
    )
    assert len(reading.sides) == 3
    assert reading.lhs_label == "dL_dw2"
    assert reading.read_as().endswith("= a1*(a2 - y)")
    assert equivalent(reading, "(a2 - y)*a1", bp).equivalent


@pytest.mark.parametrize(
    "text",
    [
        r"\frac{\partial L}{\partial w_2} = a_1",
        "dL/dw2 = a1",
        "∂L/∂w₂ = a1",
        "dL_dw2 = a1",
        r"\frac{dL}{dw_2} = a1",
        r"\partial L / \partial w_2 = a1",
        "d L / d w_2 = a1",
    ],
)
def test_derivative_left_sides_are_recognised(bp: SymbolTable, text: str) -> None:
    assert read(text, bp).lhs_label == "dL_dw2"


def test_gradient_labels(ne: SymbolTable) -> None:
    assert read(r"\nabla_\beta J(\beta) = X^T(X\beta - y)", ne).lhs_label == "dJ_dbeta"
    assert read(r"\frac{\partial J}{\partial \beta} = 0", ne).lhs_label == "dJ_dbeta"
    assert read(r"\nabla J = 0", ne).lhs_label == "grad_J"


def test_declared_derivative_shorthand_is_a_value(bp: SymbolTable) -> None:
    # The question gives ∂L/∂z2 = a2 − y; the table declares it, so it may be used.
    assert equivalent(r"\frac{\partial L}{\partial z_2} a_1", "(a2 - y)*a1", bp).equivalent


def test_an_undeclared_derivative_in_the_judged_side_is_refused(bp: SymbolTable) -> None:
    with pytest.raises(ReadError, match=r"still contains dz2/dw2"):
        read(r"\frac{\partial L}{\partial w_2} = (a_2 - y)\frac{\partial z_2}{\partial w_2}", bp)


def test_continuation_line(ne: SymbolTable) -> None:
    reading = read(r"= \frac12 (y - X\beta)^T(y - X\beta)", ne)
    assert reading.continues and reading.read_as().startswith("= ")


def test_prose_around_inline_math_is_ignored(ne: SymbolTable) -> None:
    reading = read(r"The gradient is $X^T(X\beta - y)$.", ne)
    assert reading.read_as() == "X.T*(X*beta - y)"


def test_mathml_is_presentation_markup(bp: SymbolTable) -> None:
    markup = read(r"\frac{\partial L}{\partial w_2} = (a_2 - y) a_1", bp).mathml()
    assert markup.startswith('<math xmlns="http://www.w3.org/1998/Math/MathML">')
    assert "<mfrac>" in markup and "&#8706;" in markup and "<script" not in markup


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("(a2 - y)) a1", 9, "unexpected ')'"),
        ("(a2 - y a1", 11, "is never closed"),
        ("a2 + q", 6, "'q' is not one of this question's symbols"),
        ("a2 + ", 6, "ends too early"),
        ("a2 = ", 6, "ends too early"),
        ("w1 + w3", 6, "'w3' is not one of"),
        (r"\sum_{i=1}^n x_i", 1, "not supported"),
        (r"\foo{x}", 1, "unknown LaTeX command"),
        ("x, y", 2, "several formulas"),
        ("x ! y", 3, "unexpected '!'"),
    ],
)
def test_read_errors_point_at_the_column(
    bp: SymbolTable, text: str, column: int, words: str
) -> None:
    with pytest.raises(ReadError) as caught:
        read(text, bp)
    assert caught.value.position == column - 1
    assert f"at column {column}" in caught.value.message
    assert words in caught.value.message
    assert caught.value.actual is not None and caught.value.actual.endswith("^")


@pytest.mark.parametrize("text", ["x/0", "0^{-1}", "(x - x)^{-1}", r"\frac{1}{0}", "inv(0)"])
def test_division_by_zero_is_a_read_error(bp: SymbolTable, text: str) -> None:
    with pytest.raises(ReadError, match=r"division by zero|inverse of 0"):
        read(text, bp)


def test_scalar_plus_matrix_reads_and_is_a_shape_error(ne: SymbolTable) -> None:
    from grader.checks.math import shape_of

    reading = read("y y^T + 3", ne)
    assert reading.read_as() == "y*y.T + 3"
    assert "adds an n×n matrix and a scalar" in str(shape_of(reading.expr, ne))


def test_case_mistake_gets_a_suggestion(ne: SymbolTable) -> None:
    with pytest.raises(ReadError, match="did you mean X"):
        read("x^T y", ne)


def test_matrix_power_and_inverse(ne: SymbolTable) -> None:
    assert read("(X^T X)^2", ne).read_as() == "(X.T*X)**2"
    with pytest.raises(ReadError, match="whole power"):
        read(r"(X^T X)^{1/2}", ne)


def test_function_of_a_vector_is_refused(ne: SymbolTable) -> None:
    with pytest.raises(ReadError, match="only scalar arguments"):
        read(r"\exp(X\beta)", ne)


HOSTILE = [
    ("9**9**9", "too large"),
    ("9**9**9**9", "too large"),
    ("x^(10^10)", "too large"),
    ("__import__('os').system('x')", "not part of a formula"),
    ("eval('1')", "not one of this question's symbols"),
    ("lambda: 0", "unexpected ':'"),
    ("(" * 100_000 + "x" + ")" * 100_000, "too long"),
    ("x" * 1_000_000, "too long"),
    ("(" * 150 + "x" + ")" * 150, "nested too deeply"),
    ("-" * 150 + "x", "nested too deeply"),
    ("exp(" * 150 + "x" + ")" * 150, "nested too deeply"),
    ("x" + "+x" * 2000, "too long"),
    ("1" * 60, "too long"),
    ("1e999999999", "too large or too small"),
    ("2.5e-400 x", "too large or too small"),
]


@pytest.mark.parametrize(("text", "words"), HOSTILE, ids=[h[0][:12] for h in HOSTILE])
def test_hostile_input_is_refused_quickly(bp: SymbolTable, text: str, words: str) -> None:
    start = time.perf_counter()
    with pytest.raises(ReadError, match=words):
        read(text, bp)
    assert time.perf_counter() - start < 0.5


def test_hostile_value_text_is_refused_too(ne: SymbolTable) -> None:
    with pytest.raises(ReadError):
        read_value("__import__('os').getcwd()", ne)
    with pytest.raises(ReadError):
        read_value("Matrix([[1, 2]])", ne)


@pytest.mark.parametrize(
    "text",
    [
        "X.T*(X*beta - y)",
        "(X.T*X)**(-1)*X.T*y",
        "Transpose(X)*y",
        "Inverse(X.T*X)",
        "I + X.T*X",
        "(X*beta).T",
        "0",
        "-X.T*y + X.T*X*beta",
        "(1/2)*(y - X*beta).T*(y - X*beta)",
    ],
)
def test_read_value_reads_sympy_str_output(ne: SymbolTable, text: str) -> None:
    reading = read_value(text, ne)
    assert read_value(reading.read_as(), ne).read_as() == reading.read_as()


def test_read_value_of_str_of_built_expressions(ne: SymbolTable, bp: SymbolTable) -> None:
    n, p = ne.dim("n"), ne.dim("p")
    X, y = sympy.MatrixSymbol("X", n, p), sympy.MatrixSymbol("y", n, 1)
    computed = sympy.Inverse(X.T * X) * X.T * y
    assert equivalent(read_value(str(computed), ne), r"(X^TX)^{-1}X^Ty", ne).equivalent
    w1, x = sympy.symbols("w1 x", real=True)
    assert equivalent(read_value(str(sympy.exp(-w1 * x) / 2), bp), "e^{-w_1 x}/2", bp).equivalent


SEED_BACKPROP = r"""
⑥ Input x , $z_1 = w_1x + b_1$, $a_1 = \sigma(z_1) = \frac{1}{1+e^{-z_1}}$, output $z_2 = w_2a_1 + b_2$, $a_2 = \sigma(z_2) = \hat{y}$

given loss $L = -(y \log(a_2) + (1-y) \log(1-a_2))$ and $\frac{\partial L}{\partial z_2} = a_2 - y$

$$\frac{\partial L}{\partial w_2} = \frac{\partial L}{\partial z_2} \cdot \frac{\partial z_2}{\partial w_2} = (a_2 - y) \cdot a_1 //$$

$$\frac{\partial L}{\partial b_2} = \frac{\partial L}{\partial z_2} \cdot \frac{\partial z_2}{\partial b_2} = a_2 - y //$$

Note: if $a = \frac{1}{1+e^{-k}}$
 $\frac{da}{dk} = a(1-a)$

$$\frac{\partial L}{\partial w_1} = \frac{\partial L}{\partial z_2} \cdot \frac{\partial z_2}{\partial w_1} = \frac{\partial L}{\partial z_2} \cdot \frac{\partial z_2}{\partial a_1} \cdot \frac{\partial a_1}{\partial z_1} \cdot \frac{\partial z_1}{\partial w_1}$$

$$\frac{\partial L}{\partial w_1} = (a_2 - y) \cdot w_2 \cdot a_1(1-a_1) \cdot x //$$

$$\frac{\partial L}{\partial b_1} = \frac{\partial L}{\partial z_2} \cdot \frac{\partial z_2}{\partial a_1} \cdot \frac{\partial a_1}{\partial z_1} \cdot \frac{\partial z_1}{\partial b_1} = (a_2 - y) \cdot w_2 \cdot a_1(1-a_1) \cdot 1$$

$$\frac{\partial L}{\partial b_1} = (a_2 - y) w_2 a_1 (1-a_1) //$$
"""  # noqa: E501

WANTED = {
    "dL_dw2": ("L", "w2"),
    "dL_db2": ("L", "b2"),
    "dL_dw1": ("L", "w1"),
    "dL_db1": ("L", "b1"),
}


def test_seed_cell_yields_all_four_derivatives(bp: SymbolTable) -> None:
    found = read_derivative_equations(SEED_BACKPROP, bp, WANTED)
    assert set(found) == set(WANTED)
    assert found["dL_dw1"].read_as().endswith("a1*w2*x*(1 - a1)*(a2 - y)")
    assert found["dL_db1"].source.endswith("(1-a_1) //")  # the last equation for ∂L/∂b1 wins


def test_scan_reports_why_a_derivative_could_not_be_read(bp: SymbolTable) -> None:
    text = "dL/dw2 = (a2 - y) a1\ndL/db2 = (a2 - y) q\n"
    found = scan_derivative_equations(text, bp, WANTED)
    assert set(found) == {"dL_dw2", "dL_db2"}
    assert isinstance(found["dL_db2"], ReadError)
    assert "'q'" in found["dL_db2"].message
    assert set(read_derivative_equations(text, bp, WANTED)) == {"dL_dw2"}


def test_python_syntax_equations_in_one_answer(bp: SymbolTable) -> None:
    text = "dL_dw2 = (a2 - y)*a1\ndL_db2 = a2 - y\ndL/dw1 = (a2-y)*w2*a1*(1-a1)*x\n"
    found = read_derivative_equations(text, bp, WANTED)
    assert sorted(found) == ["dL_db2", "dL_dw1", "dL_dw2"]
