"""The normal-equation questions: the gradient answer (Q3) and the derivation (Q2)."""

from __future__ import annotations

import pytest

from grader.checks.math import (
    SymbolTable,
    Verdict,
    check_derivation,
    diagnose,
    equivalent,
    split_steps,
)

START = r"J(\beta) = \frac12\|y - X\beta\|^2"
FINAL = [r"\beta = (X^TX)^{-1}X^Ty", r"X^TX\beta = X^Ty"]
GRADIENT = r"X^T(X\beta - y)"


@pytest.fixture(scope="module")
def table() -> SymbolTable:
    return SymbolTable.from_mapping(
        {
            "X": {"kind": "matrix", "shape": ["n", "p"], "aliases": ["\\mathbf{X}"]},
            "y": {"kind": "vector", "shape": ["n"], "aliases": ["\\mathbf{y}"]},
            "beta": {"kind": "vector", "shape": ["p"], "aliases": ["b"]},
            "J": {"kind": "function", "definition": "1/2*||y - X*beta||^2"},
        }
    )


def check(table: SymbolTable, steps: str | list[str]):
    return check_derivation(steps, table, start=START, variable="beta", final_expected=FINAL)


# -- question 3: the gradient ------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        GRADIENT,
        "X.T @ X @ beta - X.T @ y",
        "X.T*(X*beta - y)",
        r"\nabla_\beta J(\beta) = X^\top X\beta - X^\top y",
        r"-X^T(y - X\beta)",
        "transpose(X) @ (X @ b - y)",
    ],
)
def test_correct_gradients_are_equivalent(table: SymbolTable, answer: str) -> None:
    assert equivalent(answer, GRADIENT, table).verdict is Verdict.EQUIVALENT


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (r"X^T(y - X\beta)", "y - X*beta where X*beta - y belongs (a sign error)"),
        (r"2X^T(X\beta - y)", "an extra factor 2"),
        (r"X(X\beta - y)", "missing the transpose on X"),
        (r"(X\beta - y)^TX", "the transpose of the expected one"),
    ],
)
def test_known_gradient_mistakes_get_their_hints(
    table: SymbolTable, answer: str, hint: str
) -> None:
    assert equivalent(answer, GRADIENT, table).verdict is Verdict.NOT_EQUIVALENT
    variant = diagnose(answer, GRADIENT, table)
    assert variant is not None and hint in variant.hint


def test_missing_transpose_is_reported_as_a_shape_error(table: SymbolTable) -> None:
    result = equivalent(r"X(X\beta - y)", GRADIENT, table)
    assert "shape error" in result.reason and "n×p matrix by an n-vector" in result.reason


@pytest.mark.parametrize("wrong", [r"X^{-1}y", r"X^T(XX^T)^{-1}y", r"(XX^T)^{-1}X y"])
def test_square_only_shortcuts_are_not_the_normal_equation(table: SymbolTable, wrong: str) -> None:
    assert equivalent(wrong, r"(X^TX)^{-1}X^Ty", table).verdict is Verdict.NOT_EQUIVALENT


# -- question 2: the derivation ----------------------------------------------------------

# The seed student's lines, as written (including the circled number and the prose).
SEED = r"""$$③ J(\beta) = \frac{1}{2} \|y - X\beta\|^2 = \frac{1}{2} \sum_{i=1}^n (y_i - \hat{y}_i)^2$$

$$\Rightarrow J(\beta) = \frac{1}{2} (y - X\beta)(y - X\beta)^T = \frac{1}{2} (y - X\beta)(y^T - \beta^T X^T)$$

$$= \frac{1}{2} (yy^T - y\beta^T X^T - y^T X\beta + X\beta\beta^T X^T)$$

← Since $y^T X\beta$ is a scalar
 $y^T X\beta = (y^T X\beta)^T = \beta^T X^T y$

$$\text{So we get } J(\beta) = \frac{1}{2} (yy^T - 2y\beta^T X^T - 2\beta^T X^T y + \beta^T X^T X\beta)$$

$$\text{Take gradient w.r.t } \beta \Rightarrow \frac{1}{2} (0 - 2X^T y + 2X^T X\beta)$$

minimising so setting gradient to zero gives $X^T X\beta = X^T y$

$$\text{Normal equation} \Rightarrow \boxed{\beta = (X^T X)^{-1} X^T y}$$
"""  # noqa: E501


def test_seed_derivation_is_split_into_its_steps() -> None:
    steps = split_steps(SEED)
    assert len(steps) == 8
    assert steps[3] == r"y^T X\beta = (y^T X\beta)^T = \beta^T X^T y"
    assert steps[6] == r"X^T X\beta = X^T y"


def test_seed_derivation_final_answer_is_right(table: SymbolTable) -> None:
    result = check(table, SEED)
    assert result.final is not None and result.final.verdict is Verdict.EQUIVALENT
    assert result.final_step is not None and result.final_step.index == 8


def test_seed_derivation_is_flagged_at_its_second_line(table: SymbolTable) -> None:
    result = check(table, SEED)
    assert result.first_invalid == 2
    second = result.steps[1]
    assert second.status == "invalid"
    assert "an n×n matrix where a scalar belongs" in second.reason
    assert second.read_as is not None and "(y - X*beta).T" in second.read_as


def test_seed_derivation_every_step_judged(table: SymbolTable) -> None:
    statuses = [step.status for step in check(table, SEED).steps]
    # ? the sum, ✗ n×n, ✗ adds n×n and 1×1, aside, ✗ again, ✓ gradient, ✓ zero, ✓ solved
    assert statuses == ["unknown", "invalid", "invalid", "aside", "invalid", "ok", "ok", "ok"]
    steps = check(table, SEED).steps
    assert "sums over an index" in steps[0].reason
    assert "adds an n×n matrix and a scalar" in steps[2].reason
    assert "gradient" in steps[5].reason


CORRECT_ALIGNED = r"""
$$
\begin{aligned}
J(\beta) &= \frac{1}{2}(y - X\beta)^T(y - X\beta) \\
&= \frac{1}{2}(y^Ty - 2\beta^TX^Ty + \beta^TX^TX\beta) \\
\nabla_\beta J &= -X^Ty + X^TX\beta \\
&= 0 \\
X^TX\beta &= X^Ty \\
\beta &= (X^TX)^{-1}X^Ty
\end{aligned}
$$
"""

CORRECT_PROSE = r"""We expand the cost:

- $J(\beta) = \frac12\|y - X\beta\|^2$
- $= \frac12 (y^Ty - y^TX\beta - \beta^TX^Ty + \beta^TX^TX\beta)$

Since $y^TX\beta = \beta^TX^Ty$ (it is a scalar), we get
$$J(\beta) = \frac12(y^Ty - 2\beta^TX^Ty + \beta^TX^TX\beta)$$
Taking the gradient, $\frac{\partial J}{\partial \beta} = X^TX\beta - X^Ty$, and setting it to zero:
$$X^TX\beta = X^Ty \Rightarrow \beta = (X^TX)^{-1}X^Ty$$
"""

CORRECT_PYTHON = [
    "J = 1/2*(y - X@beta).T @ (y - X@beta)",
    "= 1/2*(y.T@y - 2*beta.T@X.T@y + beta.T@X.T@X@beta)",
    "dJ/dbeta = X.T @ X @ beta - X.T @ y",
    "X.T @ X @ beta - X.T @ y = 0",
    "X.T @ X @ beta = X.T @ y",
    "beta = inv(X.T @ X) @ X.T @ y",
]

# The opening lecture writes the cost as ‖y − Xβ‖₂²; other courses write the transpose as ^t.
CORRECT_LECTURE_NOTATION = [
    r"J(\beta) = \frac{1}{2}\|y - X\beta\|_2^2",
    r"= \frac{1}{2}(y - X\beta)^t(y - X\beta)",
    r"\nabla_\beta J = X^tX\beta - X^ty = 0",
    r"\beta = (X^tX)^{-1}X^ty",
]


@pytest.mark.parametrize(
    "steps",
    [CORRECT_ALIGNED, CORRECT_PROSE, CORRECT_PYTHON, CORRECT_LECTURE_NOTATION],
    ids=["aligned", "prose", "python", "lecture-notation"],
)
def test_correct_derivations_have_every_step_ok(table: SymbolTable, steps: str | list[str]) -> None:
    result = check(table, steps)
    assert [s.status for s in result.steps if s.status != "aside"] == ["ok"] * len(
        [s for s in result.steps if s.status != "aside"]
    ), [(s.source, s.reason) for s in result.steps]
    assert result.first_invalid is None
    assert result.final is not None and result.final.verdict is Verdict.EQUIVALENT


def test_prose_derivation_keeps_the_side_identity_as_an_aside(table: SymbolTable) -> None:
    result = check(table, CORRECT_PROSE)
    assert [s.status for s in result.steps].count("aside") == 1
    assert len(result.steps) == 7


def test_a_wrong_gradient_is_named(table: SymbolTable) -> None:
    steps = [START, r"\nabla_\beta J = X^Ty - X^TX\beta", r"X^TX\beta = X^Ty"]
    result = check(table, steps)
    assert result.first_invalid == 2
    assert "not equal" in result.steps[1].reason


def test_an_unsolvable_equation_is_invalid(table: SymbolTable) -> None:
    steps = [START, r"\nabla_\beta J = X^T(X\beta - y) = 0", r"X\beta = y", r"\beta = X^{-1}y"]
    result = check(table, steps)
    assert result.first_invalid == 3
    assert "same solutions" in result.steps[2].reason
    assert result.final is not None and result.final.verdict is Verdict.NOT_EQUIVALENT


def test_a_false_side_identity_is_invalid(table: SymbolTable) -> None:
    steps = [START, r"y^TX\beta = 2\beta^TX^Ty", r"\nabla_\beta J = X^TX\beta - X^Ty"]
    result = check(table, steps)
    assert result.steps[1].status == "invalid"
    assert result.steps[2].status == "ok"


def test_final_answer_as_the_normal_equation_itself(table: SymbolTable) -> None:
    result = check(table, [START, r"\nabla J = X^TX\beta - X^Ty = 0", r"X^TX\beta = X^Ty"])
    assert result.first_invalid is None
    assert result.final is not None and result.final.verdict is Verdict.EQUIVALENT


def test_unknown_variable_is_a_spec_error(table: SymbolTable) -> None:
    from grader.errors import SpecError

    with pytest.raises(SpecError, match="'gamma'"):
        check_derivation([START], table, start=START, variable="gamma", final_expected=FINAL)


def test_implication_in_one_line_gives_two_steps() -> None:
    steps = split_steps(r"$$X^TX\beta = X^Ty \Rightarrow \beta = (X^TX)^{-1}X^Ty$$")
    assert steps == [r"X^TX\beta = X^Ty", r"\beta = (X^TX)^{-1}X^Ty"]
    lead_in = split_steps(r"$$\text{Take gradient} \Rightarrow X^TX\beta - X^Ty$$")
    assert len(lead_in) == 1


def test_answer_labels_and_headings_are_not_steps() -> None:
    steps = split_steps("## Answer 2\n**Answer 2:**\n$$X^TX\\beta = X^Ty$$\n")
    assert steps == [r"X^TX\beta = X^Ty"]


def test_a_lone_solution_after_the_normal_equation_is_ok(table: SymbolTable) -> None:
    steps = [START, r"\nabla J = X^TX\beta - X^Ty = 0", r"X^TX\beta = X^Ty", r"(X^TX)^{-1}X^Ty"]
    result = check(table, steps)
    assert [s.status for s in result.steps] == ["ok", "ok", "ok", "ok"]
    assert result.final is not None and result.final.verdict is Verdict.EQUIVALENT


def test_unreadable_start_or_expected_is_a_spec_error(table: SymbolTable) -> None:
    from grader.errors import SpecError

    with pytest.raises(SpecError, match="cannot be read"):
        check_derivation([START], table, start="J(", variable="beta", final_expected=FINAL)
    with pytest.raises(SpecError, match="cannot be read"):
        equivalent(GRADIENT, "X^T(", table)


def test_formula_values_for_consistency_with_code(table: SymbolTable) -> None:
    import numpy

    from grader.checks.math import read, value_at

    rng = numpy.random.default_rng(0)
    X, y, beta = rng.normal(size=(6, 3)), rng.normal(size=6), rng.normal(size=3)
    value = value_at(read(GRADIENT, table).expr, table, {"X": X, "y": y, "beta": beta})
    assert numpy.allclose(value, X.T @ (X @ beta - y))
