"""Defects a review of the maths checks found, each pinned against the real assignment specs."""

from __future__ import annotations

from pathlib import Path

import pytest
from derivations import derive

from grader.assignment import load_assignment
from grader.checks.math import (
    SymbolTable,
    Verdict,
    equivalent,
    read,
    read_derivative_equations,
    read_value,
    split_steps,
)

ROOT = Path(__file__).resolve().parents[1]


def _table(aid: str) -> SymbolTable:
    return SymbolTable.from_mapping(load_assignment(ROOT, aid).symbols)


@pytest.fixture(scope="module")
def backprop() -> SymbolTable:
    return _table("backprop")


@pytest.fixture(scope="module")
def normal() -> SymbolTable:
    return _table("normal-equation")


# -- 1. the plain-text echo of a formula reads back as the same formula ----------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (r"-(y - a_2)w_2a_1(1-a_1)x", "-a1*w2*x*(1 - a1)*(-a2 + y)"),
        ("-(a2-y)*x", "-x*(a2 - y)"),
        (r"1-\frac{1}{1+e^{-z_1}}", "1 - 1/(1 + exp(-z1))"),
    ],
)
def test_scalar_echo_keeps_its_brackets(backprop: SymbolTable, text: str, shown: str) -> None:
    assert read(text, backprop).read_as() == shown


def test_inverse_of_an_inverse_keeps_its_brackets(normal: SymbolTable) -> None:
    assert read(r"((X^TX)^{-1})^{-1}", normal).read_as() == "((X.T*X)**(-1))**(-1)"


@pytest.mark.parametrize(
    ("aid", "text"),
    [
        ("backprop", r"-(y - a_2)w_2a_1(1-a_1)x"),
        ("backprop", "-(a2-y)*x"),
        ("backprop", r"1-\frac{1}{1+e^{-z_1}}"),
        ("backprop", "x - (y - (a1 - a2))"),
        ("backprop", "(a1*a2)**(x**2)"),
        ("backprop", "2**(3**x)"),
        ("backprop", "-(-x)**2"),
        ("backprop", "(-x)**y"),
        ("backprop", "1/(1-a1)**2"),
        ("backprop", "x/(y/a1)"),
        ("backprop", "sigma(-(w2*a1+b2))"),
        ("normal-equation", r"((X^TX)^{-1})^{-1}"),
        ("normal-equation", r"-X^T(y - X\beta)"),
        ("normal-equation", r"-(X^T X)^{-1}(-X^Ty)"),
        ("normal-equation", r"(X\beta - y)^T(X\beta - y)"),
        ("normal-equation", r"2(X^TX)\beta - (X^Ty - X^TX\beta)"),
        ("normal-equation", r"X^T(y - X\beta) - (X^T y - X^TX\beta)"),
    ],
)
def test_printed_formula_reads_back_the_same(aid: str, text: str) -> None:
    table = _table(aid)
    reading = read(text, table)
    assert read_value(reading.read_as(), table).expr == reading.expr


# -- 2. a wrong last line is the final answer judged, even with a shape error ----------------


@pytest.mark.parametrize(
    ("last", "reason"),
    [
        (r"$$\beta = X^{-1}y$$", "inverts an n×p matrix"),
        (r"$$\beta = X^Ty(X^TX)^{-1}$$", "multiplies a p-vector by a p×p matrix"),
    ],
)
def test_last_step_with_a_shape_error_fails_the_final_answer(last: str, reason: str) -> None:
    result = derive(
        [r"$$\nabla_\beta J(\beta) = X^TX\beta - X^Ty = 0$$", r"$$X^TX\beta = X^Ty$$", last]
    )
    assert result.final_step is not None and result.final_step.index == 3
    assert result.final is not None and result.final.verdict is Verdict.NOT_EQUIVALENT
    assert "shape error" in result.final.reason and reason in result.final.reason


# -- 3. the result alone is no derivation ------------------------------------------------------


def test_a_bare_result_earns_the_final_answer_but_not_the_steps() -> None:
    result = derive(r"$$\beta = (X^TX)^{-1}X^Ty$$")
    assert result.final is not None and result.final.verdict is Verdict.EQUIVALENT
    assert result.first_invalid == 1
    reason = result.steps[0].reason
    assert "not a derivation" in reason and "J(beta) or its gradient" in reason


def test_two_lines_are_judged_as_before() -> None:
    result = derive([r"\nabla_\beta J(\beta) = X^TX\beta - X^Ty = 0", r"X^TX\beta = X^Ty"])
    assert result.first_invalid is None
    assert result.final is not None and result.final.verdict is Verdict.EQUIVALENT


# -- 4. prose after the formula does not choose what is graded --------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        r"$\nabla_\beta J(\beta) = X^T(X\beta - y)$ where $X$ is the design matrix",
        r"$\nabla_\beta J(\beta) = X^T(X\beta - y)$ where $X$ is the $n \times p$ design matrix",
        r"The gradient is $X^T(X\beta - y)$, where $X$ is the $n \times p$ design matrix",
        r"From $J = \frac12\|y - X\beta\|^2$ we get $\nabla_\beta J = X^T(X\beta - y)$.",
    ],
)
def test_the_answer_is_the_equation_not_the_annotation(normal: SymbolTable, answer: str) -> None:
    assert equivalent(answer, r"X^T(X\beta - y)", normal).verdict is Verdict.EQUIVALENT


# -- 5. common notation: β̂, ⇔, ∂L/∂W₂, 𝓛 and ℓ, \tag, ∈ ℝᵖ ----------------------------------

GRADIENT = r"X^T(X\beta - y)"
WANTED = {
    "dL_dw2": ("L", "w2"),
    "dL_db2": ("L", "b2"),
    "dL_dw1": ("L", "w1"),
    "dL_db1": ("L", "b1"),
}


@pytest.mark.parametrize(
    "answer",
    [
        r"X^T(X\hat\beta - y)",
        r"X^T(X\hat{\beta} - y)",
        "X^T(Xβ̂ - y)",
        r"\nabla_\beta J(\beta) = X^T(X\beta - y) \tag{1}",
        r"\nabla_\beta J(\beta) = X^T(X\beta - y) \in \mathbb{R}^p",
        r"\nabla_\beta J(\beta) = X^T(X\beta - y) ∈ ℝ^{p}",
    ],
)
def test_common_notation_for_the_gradient(normal: SymbolTable, answer: str) -> None:
    assert equivalent(answer, GRADIENT, normal).verdict is Verdict.EQUIVALENT


@pytest.mark.parametrize("arrow", [r"\iff", r"\Leftrightarrow", "⇔", r"\Longleftrightarrow"])
def test_equivalence_arrows_separate_steps_like_implies(arrow: str) -> None:
    line = rf"$$X^TX\beta = X^Ty {arrow} \hat\beta = (X^TX)^{{-1}}X^Ty$$"
    assert split_steps(line) == [r"X^TX\beta = X^Ty", r"\hat\beta = (X^TX)^{-1}X^Ty"]
    result = derive([r"\nabla_\beta J(\beta) = X^TX\beta - X^Ty = 0", line])
    assert [s.status for s in result.steps] == ["ok", "ok", "ok"]
    assert result.final is not None and result.final.verdict is Verdict.EQUIVALENT


def test_hat_beta_as_the_solved_variable() -> None:
    result = derive(
        [r"\nabla_\beta J(\hat\beta) = X^TX\hat\beta - X^Ty = 0", r"\hat\beta = (X^TX)^{-1}X^Ty"]
    )
    assert result.first_invalid is None, [s.reason for s in result.steps]
    assert result.final is not None and result.final.verdict is Verdict.EQUIVALENT


@pytest.mark.parametrize(
    "left",
    [
        r"\frac{\partial L}{\partial W_2}",
        r"\frac{\partial \mathcal{L}}{\partial w_2}",
        r"\frac{\partial \ell}{\partial w_2}",
        r"\frac{\partial \mathcal L}{\partial W_{2}}",
        "∂ℓ/∂w_2",
    ],
)
def test_loss_and_weight_spellings_name_the_derivative(backprop: SymbolTable, left: str) -> None:
    found = read_derivative_equations(f"$${left} = (a_2 - y)a_1$$", backprop, WANTED)
    assert set(found) == {"dL_dw2"}
    assert equivalent(found["dL_dw2"], "(a2 - y)*a1", backprop).verdict is Verdict.EQUIVALENT


# -- 6. the final-answer message compares like with like; an unread last line goes to review --


def test_a_wrong_normal_equation_is_compared_with_the_equation_form() -> None:
    result = derive([r"\nabla_\beta J(\beta) = X^TX\beta - X^Ty = 0", r"X^TX\beta = -X^Ty"])
    assert result.final is not None and result.final.verdict is Verdict.NOT_EQUIVALENT
    assert "same solutions as the expected equation" in result.final.reason
    assert "was expected" not in result.final.reason


def test_unreadable_last_lines_send_the_final_answer_to_review() -> None:
    result = derive(
        [
            r"\nabla_\beta J(\beta) = X^T(X\beta - y)",
            r"X^TX\beta = X^Ty \checkmark",
            r"\beta = \inv",
        ]
    )
    assert result.final is not None and result.final.verdict is Verdict.UNDECIDED
    assert "(2, 3) could not be read" in result.final.reason


def test_a_right_result_before_an_unreadable_line_still_counts() -> None:
    result = derive(
        [r"\nabla_\beta J(\beta) = X^TX\beta - X^Ty = 0", r"X^TX\beta = X^Ty", r"\checkmark"]
    )
    assert result.final is not None and result.final.verdict is Verdict.EQUIVALENT


# -- 7b. '^' groups from the right, as '**' does ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "same_as"),
    [
        ("2^3^2", "512"),
        ("2^3**2", "512"),
        ("x^y^2", "x**(y**2)"),
        ("e^-x^2", "exp(-(x**2))"),
        ("2^{3}^{2}", "512"),
    ],
)
def test_powers_group_from_the_right(backprop: SymbolTable, text: str, same_as: str) -> None:
    assert read(text, backprop).expr == read(same_as, backprop).expr


def test_a_transpose_after_a_power_still_applies_to_the_whole(normal: SymbolTable) -> None:
    assert read(r"(X^TX)^{-1}^T", normal).read_as() == "((X.T*X)**(-1)).T"
    assert read(r"X^TX^TX", normal).read_as() == "X.T*X.T*X"
    assert read(r"(X^TX)^{-1}^t", normal).read_as() == "((X.T*X)**(-1)).T"
    assert read(r"X^{-1}^{t}X^ty", normal).read_as() == "(X**(-1)).T*X.T*y"


def test_the_normal_equation_with_a_small_t_reads_in_the_assignment_itself(
    normal: SymbolTable,
) -> None:
    # Its β has the alias \hat{\beta}, whose key ends in t: that is no time index.
    assert read(r"(X^tX)^{-1}X^ty", normal).read_as() == "(X.T*X)**(-1)*X.T*y"
    shown = read(r"\hat{\beta} = (X^tX)^{-1}X^ty", normal).read_as()
    assert shown == "beta = (X.T*X)**(-1)*X.T*y"


@pytest.mark.parametrize(
    ("spelling", "indexes"),
    [
        ("h_t", True),
        ("h_{t}", True),
        ("h_{t-1}", True),
        ("x_{i,t}", True),
        (r"h_{\,t}", True),
        ("hₜ", True),
        ("h_{tanh}", False),
        ("x_{test}", False),
        ("W_{ht}", False),
        (r"h_{\tau}", False),
        (r"\hat{h}", False),
    ],
)
def test_only_a_subscript_t_makes_t_a_time_index(spelling: str, indexes: bool) -> None:
    table = SymbolTable.from_mapping(
        {"h": {"kind": "vector", "shape": ["n"], "aliases": [spelling]}}
    )
    assert table.uses_t_as_index() is indexes


# -- 7a. two derivative equations on one line -------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        r"$$\frac{\partial L}{\partial w_2} = (a_2-y)a_1 \quad\text{and}\quad "
        r"\frac{\partial L}{\partial b_2} = a_2 - y$$",
        "dL/dw2 = (a2 - y)*a1, dL/db2 = a2 - y",
        "dL/dw2 = (a2 - y)*a1; dL/db2 = a2 - y",
        r"$$\frac{\partial L}{\partial w_2} = (a_2-y)a_1, \qquad "
        r"\frac{\partial L}{\partial b_2} = a_2 - y$$",
    ],
)
def test_two_equations_on_one_line_are_read_apart(backprop: SymbolTable, answer: str) -> None:
    found = read_derivative_equations(answer, backprop, WANTED)
    assert set(found) == {"dL_dw2", "dL_db2"}
    assert equivalent(found["dL_dw2"], "(a2 - y)*a1", backprop).verdict is Verdict.EQUIVALENT
    assert equivalent(found["dL_db2"], "a2 - y", backprop).verdict is Verdict.EQUIVALENT


def test_a_chain_with_thin_spaces_is_not_split(backprop: SymbolTable) -> None:
    chain = (
        r"$$\frac{\partial L}{\partial w_1} = \frac{\partial L}{\partial z_2}\,"
        r"\frac{\partial z_2}{\partial w_1} = (a_2 - y)\,w_2\,a_1(1-a_1)\,x$$"
    )
    found = read_derivative_equations(chain, backprop, WANTED)
    assert set(found) == {"dL_dw1"}
    expected = "(a2 - y)*w2*a1*(1 - a1)*x"
    assert equivalent(found["dL_dw1"], expected, backprop).verdict is Verdict.EQUIVALENT
