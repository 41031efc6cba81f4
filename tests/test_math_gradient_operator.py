"""A differentiation operator applied to an expression (∂/∂β(…), ∇_β …, ∂_β …, d/dβ …).

Students write derivation steps such as ``\\frac{\\partial}{\\partial\\beta}(\\beta^TX^TX\\beta)
= 2X^TX\\beta``. The operator is read as the gradient of what follows it (a bracketed group or
the product term after it), judged numerically against its operand, and a label naming the
objective (``\\frac{\\partial J}{\\partial\\beta}``) keeps meaning "the gradient of J".
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from derivations import derive

from grader.assignment import load_assignment
from grader.checks.math import (
    Deriv,
    ReadError,
    SymbolTable,
    Verdict,
    read,
    shape_of,
    value_at,
)
from grader.checks.math.parser import read_chain
from grader.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def normal() -> SymbolTable:
    return SymbolTable.from_mapping(load_assignment(ROOT, "normal-equation").symbols)


@pytest.fixture(scope="module")
def backprop() -> SymbolTable:
    return SymbolTable.from_mapping(load_assignment(ROOT, "backprop").symbols)


RNG = np.random.default_rng(7)
X_VALUE = RNG.standard_normal((6, 3))
Y_VALUE = RNG.standard_normal(6)
BETA_VALUE = RNG.standard_normal(3)
VALUES = {"X": X_VALUE, "y": Y_VALUE, "beta": BETA_VALUE}


def side_value(text: str, table: SymbolTable, index: int = 0) -> np.ndarray:
    side = read_chain(text, table).sides[index]
    assert not isinstance(side, ReadError), side
    return np.asarray(value_at(side, table, VALUES), dtype=float)


# -- reading --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        r"\frac{\partial}{\partial\beta}(\beta^TX^TX\beta)",
        r"\frac{\partial}{\partial \beta}\left(\beta^TX^TX\beta\right)",
        r"\frac{d}{d\beta}(\beta^TX^TX\beta)",
        r"\nabla_\beta(\beta^TX^TX\beta)",
        r"\nabla_{\beta} \beta^TX^TX\beta",
        r"\partial_\beta(\beta^TX^TX\beta)",
        r"d/d\beta (\beta^TX^TX\beta)",
        r"\frac{\partial}{\partial\beta}\beta^TX^TX\beta",
    ],
)
def test_the_operator_is_applied_to_its_operand(normal: SymbolTable, text: str) -> None:
    value = side_value(text, normal)
    assert value.shape == (3,)
    np.testing.assert_allclose(value, 2 * X_VALUE.T @ X_VALUE @ BETA_VALUE, rtol=1e-12)
    side = read_chain(text, normal).sides[0]
    assert shape_of(side) == ("p",)


def test_the_operand_is_the_whole_product_after_the_operator(normal: SymbolTable) -> None:
    text = r"\nabla_\beta \frac12(y^Ty - 2\beta^TX^Ty + \beta^TX^TX\beta)"
    value = side_value(text, normal)
    np.testing.assert_allclose(value, X_VALUE.T @ (X_VALUE @ BETA_VALUE - Y_VALUE), rtol=1e-12)


def test_the_operator_binds_to_one_term_of_a_sum(normal: SymbolTable) -> None:
    text = (
        r"\frac{\partial}{\partial\beta} y^Ty - 2\frac{\partial}{\partial\beta}\beta^TX^Ty"
        r" + \frac{\partial}{\partial\beta}\beta^TX^TX\beta"
    )
    value = side_value(text, normal)
    np.testing.assert_allclose(
        value, -2 * X_VALUE.T @ Y_VALUE + 2 * X_VALUE.T @ X_VALUE @ BETA_VALUE, rtol=1e-12
    )


def test_a_scalar_variable_gives_a_scalar_derivative(backprop: SymbolTable) -> None:
    side = read_chain(r"\frac{\partial}{\partial w_2}(w_2^2 x)", backprop).sides[0]
    assert shape_of(side) == ()
    got = value_at(side, backprop, {"w2": 1.5, "x": 0.25})
    assert got == pytest.approx(2 * 1.5 * 0.25, rel=1e-12)


@pytest.mark.parametrize(
    "text",
    [
        r"\frac{\partial J}{\partial \beta}",
        r"\nabla_\beta J(\beta)",
        r"\frac{\partial}{\partial\beta} J(\beta)",
        r"\partial_\beta J",
    ],
)
def test_a_label_naming_the_objective_stays_a_label(normal: SymbolTable, text: str) -> None:
    side = read_chain(text, normal).sides[0]
    assert isinstance(side, Deriv)
    assert side.label() == "dJ_dbeta"


def test_backprop_labels_are_unchanged(backprop: SymbolTable) -> None:
    side = read_chain(r"\frac{\partial L}{\partial w_2} = (a_2 - y) a_1", backprop).sides[0]
    assert isinstance(side, Deriv) and side.label() == "dL_dw2"


def test_a_symbolic_answer_may_not_be_left_as_a_derivative(normal: SymbolTable) -> None:
    with pytest.raises(ReadError, match="still contains"):
        read(r"\nabla_\beta \frac12\|y - X\beta\|^2", normal)
    # an equation whose last side is written out is fine
    reading = read(r"\nabla_\beta \frac12\|y - X\beta\|^2 = X^T(X\beta - y)", normal)
    assert reading.read_as().endswith("X.T*(X*beta - y)")


def test_the_echo_of_an_operator_reads_back(normal: SymbolTable) -> None:
    text = r"\frac{\partial}{\partial\beta}(\beta^TX^TX\beta)"
    echoed = read_chain(text, normal).sides[0]
    again = read_chain(str(read(text + " = 0", normal).read_as().split(" = ")[0]), normal)
    assert again.sides[0] == echoed


# -- hostile input stays fast ---------------------------------------------------------------


def test_deeply_nested_operators_are_refused_fast(normal: SymbolTable) -> None:
    text = r"\nabla_\beta " * 300 + r"\beta^T\beta"
    started = time.monotonic()
    side = read_chain(text, normal).sides[0]
    assert isinstance(side, ReadError)
    assert time.monotonic() - started < 2


def test_a_derivative_of_a_derivative_is_not_judged_and_is_fast() -> None:
    started = time.monotonic()
    result = derive(
        [
            r"$$J(\beta) = \frac12\|y - X\beta\|^2$$",
            r"$$\nabla_\beta(\beta^T \nabla_\beta(\beta^T \nabla_\beta(\beta^T\beta))) = 0$$",
        ]
    )
    assert time.monotonic() - started < 5
    assert result.steps[1].status == "unknown"
    assert "differentiates a derivative" in result.steps[1].reason


# -- derivation steps -----------------------------------------------------------------------

START = r"$$J(\beta) = \frac12\|y - X\beta\|^2$$"
EXPANDED = r"$$J(\beta) = \frac12(y^Ty - 2\beta^TX^Ty + \beta^TX^TX\beta)$$"


@pytest.mark.parametrize(
    "step",
    [
        r"$\frac{\partial}{\partial\beta}(\beta^TX^TX\beta) = 2X^TX\beta$",
        r"$\frac{\partial}{\partial\beta}(\beta^TX^Ty) = X^Ty$",
        r"$\nabla_\beta (y^Ty) = 0$",
        r"$\partial_\beta(\beta^TX^Ty) = X^Ty$",
        r"$\frac{d}{d\beta}\beta^TX^TX\beta = 2X^TX\beta$",
    ],
)
def test_a_true_derivative_identity_is_an_aside(step: str) -> None:
    result = derive([START, EXPANDED, step])
    assert result.steps[2].status == "aside", result.steps[2]
    assert result.first_invalid is None


def test_the_gradient_written_as_an_operator_chain_is_ok() -> None:
    step = (
        r"$$\nabla_\beta J(\beta) = \nabla_\beta \frac12(y^Ty - 2\beta^TX^Ty + \beta^TX^TX\beta)"
        r" = -X^Ty + X^TX\beta$$"
    )
    result = derive([START, EXPANDED, step])
    assert result.steps[2].status == "ok", result.steps[2]


def test_nabla_without_its_variable_takes_the_question_s_variable() -> None:
    step = r"$$\nabla \frac12\|y - X\beta\|^2 = X^TX\beta - X^Ty$$"
    result = derive([START, step])
    assert result.steps[1].status == "ok", result.steps[1]
    wrong = r"$$\nabla \frac12\|y - X\beta\|^2 = X^TX\beta + X^Ty$$"
    assert derive([START, wrong]).steps[1].status == "invalid"


def test_the_operator_applied_to_the_objective_is_the_gradient_move() -> None:
    step = r"$$\frac{\partial}{\partial\beta}\frac12\|y - X\beta\|^2 = X^TX\beta - X^Ty$$"
    result = derive([START, step])
    assert result.steps[1].status == "ok", result.steps[1]
    assert "gradient" in result.steps[1].reason


@pytest.mark.parametrize(
    ("step", "words"),
    [
        (r"$\frac{\partial}{\partial\beta}(\beta^TX^TX\beta) = X^TX\beta$", "derivative"),
        (r"$\frac{\partial}{\partial\beta}(\beta^TX^Ty) = 2X^Ty$", "derivative"),
        (r"$\frac{\partial}{\partial\beta}(\beta^TX^TX\beta) = 2X\beta$", "n-vector"),
        (r"$\nabla_\beta(\beta^TX^TX\beta) = 2X^TX$", "p×p matrix"),
    ],
)
def test_a_wrong_derivative_identity_is_invalid_with_a_reason(step: str, words: str) -> None:
    result = derive([START, EXPANDED, step])
    judged = result.steps[2]
    assert judged.status == "invalid", judged
    assert result.first_invalid == 3
    assert words in judged.reason


def test_a_wrong_gradient_through_an_operator_is_invalid() -> None:
    step = (
        r"$$\nabla_\beta J(\beta) = \nabla_\beta \frac12(y^Ty - 2\beta^TX^Ty + \beta^TX^TX\beta)"
        r" = -2X^Ty + 2X^TX\beta$$"
    )
    result = derive([START, EXPANDED, step])
    assert result.steps[2].status == "invalid"
    assert "not equal" in result.steps[2].reason


def test_the_label_of_the_objective_still_works() -> None:
    result = derive(
        [
            START,
            EXPANDED,
            r"$$\frac{\partial J}{\partial \beta} = -X^Ty + X^TX\beta = 0$$",
            r"$$X^TX\beta = X^Ty$$",
        ]
    )
    assert [s.status for s in result.steps] == ["ok", "ok", "ok", "ok"]


def test_a_label_naming_another_symbol_is_not_the_gradient_of_j() -> None:
    result = derive([START, EXPANDED, r"$$\frac{\partial y}{\partial \beta} = X^TX\beta - X^Ty$$"])
    assert result.steps[2].status != "ok"


def test_a_jacobian_is_not_marked_wrong() -> None:
    result = derive([START, EXPANDED, r"$$\frac{\partial}{\partial\beta}(X\beta) = X^T$$"])
    assert result.steps[2].status == "unknown", result.steps[2]


def test_a_last_line_that_still_differentiates_is_not_the_normal_equation() -> None:
    result = derive([START, r"$$\nabla_\beta \frac12\|y - X\beta\|^2 = 0$$"])
    assert result.final is not None
    assert result.final.verdict is not Verdict.EQUIVALENT


# -- a whole derivation in the common style, through the grader -----------------------------

COMMON_STYLE = [
    r"$$J(\beta) = \frac{1}{2}\|y - X\beta\|^2 = \frac12 (y - X\beta)^T(y - X\beta)$$",
    r"$$= \frac12(y^Ty - y^TX\beta - \beta^TX^Ty + \beta^TX^TX\beta)$$",
    r"$$y^TX\beta = (y^TX\beta)^T = \beta^TX^Ty$$",
    r"$$J(\beta) = \frac12(y^Ty - 2\beta^TX^Ty + \beta^TX^TX\beta)$$",
    r"$$\frac{\partial}{\partial\beta}(\beta^TX^TX\beta) = 2X^TX\beta$$",
    r"$$\frac{\partial}{\partial\beta}(\beta^TX^Ty) = X^Ty$$",
    r"$$\nabla_\beta J(\beta) = \nabla_\beta \frac12(y^Ty - 2\beta^TX^Ty + \beta^TX^TX\beta)"
    r" = -X^Ty + X^TX\beta$$",
    r"$$\nabla_\beta J(\beta) = 0 \Rightarrow X^TX\beta - X^Ty = 0$$",
    r"$$X^TX\beta = X^Ty$$",
    r"$$\beta = (X^TX)^{-1}X^Ty$$",
]


def test_the_common_style_derivation_has_every_step_valid() -> None:
    result = derive(COMMON_STYLE)
    assert result.first_invalid is None, [s for s in result.steps if s.status != "ok"]
    assert all(s.status in ("ok", "aside") for s in result.steps), result.steps
    assert result.final is not None and result.final.equivalent


def _grade_module(tmp_path: Path, steps: list[str]) -> dict[str, object]:
    import json

    path = tmp_path / "student.py"
    path.write_text(f"answer_2 = {steps!r}\n", encoding="utf-8")
    out = tmp_path / "out"
    options = ["--no-server", "-q", "2", "--assignment", "normal-equation", "-o", str(out)]
    code = main([str(path), *options, "--course", str(ROOT)])
    assert code in (0, 1)
    (found,) = (out / "normal-equation").glob("student*.json")
    result: dict[str, object] = json.loads(found.read_text(encoding="utf-8"))
    return result


@pytest.mark.slow
def test_grade_gives_full_marks_to_the_common_style(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _grade_module(tmp_path, COMMON_STYLE)
    capsys.readouterr()
    (question,) = result["questions"]  # type: ignore[misc]
    assert question["score"] == question["max_score"] == 4, question


@pytest.mark.slow
@pytest.mark.parametrize(
    "wrong",
    [
        r"$$\frac{\partial}{\partial\beta}(\beta^TX^TX\beta) = X^TX\beta$$",
        r"$$\frac{\partial}{\partial\beta}(\beta^TX^TX\beta) = 2X\beta$$",
    ],
)
def test_grade_takes_the_step_points_for_a_wrong_derivative(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], wrong: str
) -> None:
    quadratic = r"$$\frac{\partial}{\partial\beta}(\beta^TX^TX"
    steps = [wrong if s.startswith(quadratic) else s for s in COMMON_STYLE]
    assert steps != COMMON_STYLE
    result = _grade_module(tmp_path, steps)
    capsys.readouterr()
    (question,) = result["questions"]  # type: ignore[misc]
    assert 0 < question["score"] < question["max_score"], question


@pytest.mark.parametrize(
    "wrong",
    [
        r"$$\nabla_\beta \frac12\|y - X\beta\|^2 = X^Ty - X^TX\beta$$",  # the sign
        r"$$\nabla_\beta \frac12\|y - X\beta\|^2 = 2X^TX\beta - 2X^Ty$$",  # a factor 2
        r"$$\frac{\partial}{\partial\beta}(\beta^TX^Ty) = X^TX\beta$$",  # made up
    ],
)
def test_a_wrong_derivative_after_the_gradient_is_zero_is_still_wrong(wrong: str) -> None:
    """A wrong gradient that is a multiple of the right one has the same zeros: once the
    gradient was set to zero, it must not pass as 'an equation with the same solutions'."""
    result = derive(
        "\n".join(
            [
                r"$$J(\beta) = \frac12\|y - X\beta\|^2$$",
                r"$$\nabla_\beta J(\beta) = 0$$",
                wrong,
                r"$$X^TX\beta = X^Ty$$",
                r"$$\beta = (X^TX)^{-1}X^Ty$$",
            ]
        )
    )
    assert result.first_invalid == 3, [(s.index, s.status, s.reason) for s in result.steps]


def test_an_operator_applied_to_part_of_an_equation_may_still_solve_it() -> None:
    result = derive(
        "\n".join(
            [
                r"$$J(\beta) = \frac12\|y - X\beta\|^2$$",
                r"$$\nabla_\beta J(\beta) = X^TX\beta - X^Ty = 0$$",
                r"$$\frac12\nabla_\beta(\beta^TX^TX\beta) = X^Ty$$",
                r"$$\beta = (X^TX)^{-1}X^Ty$$",
            ]
        )
    )
    assert result.first_invalid is None, [(s.index, s.status, s.reason) for s in result.steps]


@pytest.mark.parametrize(
    "step",
    [
        r"$$\nabla_X J = \frac{\partial}{\partial X}\frac12\|y - X\beta\|^2 = 0$$",
        r"$$\frac{\partial J}{\partial X} = X^T(X\beta - y)$$",
    ],
)
def test_differentiating_by_another_declared_symbol_is_invalid(step: str) -> None:
    result = derive(
        "\n".join(
            [
                r"$$J(\beta) = \frac12\|y - X\beta\|^2$$",
                step,
                r"$$X^TX\beta = X^Ty$$",
                r"$$\beta = (X^TX)^{-1}X^Ty$$",
            ]
        )
    )
    assert result.first_invalid == 2
    assert "differentiates with respect to X" in result.steps[1].reason


def test_a_line_of_many_derivatives_goes_to_review_quickly() -> None:
    side = r"\nabla_\beta \frac12 (y-X\beta)^T(y-X\beta)"
    started = time.process_time()
    result = derive(
        [r"$$J(\beta) = \frac12\|y - X\beta\|^2$$", "$$" + " = ".join([side] * 30) + "$$"]
    )
    assert time.process_time() - started < 10  # once about 6 s for a few such lines
    assert result.steps[1].status == "unknown"
    assert "too many derivatives to check" in result.steps[1].reason


def test_a_shape_reason_names_the_operator_s_own_variable() -> None:
    result = derive(
        "\n".join(
            [
                r"$$J(\beta) = \frac12\|y - X\beta\|^2$$",
                r"$$\nabla_\beta J(\beta) = X^TX\beta - X^Ty$$",
                r"$$\frac{\partial}{\partial X}\frac12\|y - X\beta\|^2 = X^T(X\beta - y)$$",
            ]
        )
    )
    assert result.first_invalid == 3
    assert "with respect to X is an n×p matrix, like X" in result.steps[2].reason
