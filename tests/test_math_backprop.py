"""The backprop question 2: four gradients in any spelling, known mistakes and their hints."""

from __future__ import annotations

import pytest

from grader.checks.math import (
    SymbolTable,
    Variant,
    Verdict,
    diagnose,
    equivalent,
    read,
    read_derivative_equations,
)


@pytest.fixture(scope="module")
def table() -> SymbolTable:
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
            "a2": {"kind": "scalar", "definition": "sigma(z2)", "aliases": ["\\hat{y}"]},
            "L": {"kind": "scalar", "definition": "-(y*log(a2) + (1 - y)*log(1 - a2))"},
            "sigma": {"kind": "function"},
        }
    )


# The references as the solution states them, with the shorthands.
REFERENCE = {
    "dL_dw2": "(a2 - y)*a1",
    "dL_db2": "a2 - y",
    "dL_dw1": "(a2 - y)*w2*a1*(1 - a1)*x",
    "dL_db1": "(a2 - y)*w2*a1*(1 - a1)",
}
WANTED = {
    "dL_dw2": ("L", "w2"),
    "dL_db2": ("L", "b2"),
    "dL_dw1": ("L", "w1"),
    "dL_db1": ("L", "b1"),
}

PYTHON = {
    "dL_dw2": "(a2 - y)*a1",
    "dL_db2": "a2 - y",
    "dL_dw1": "(a2 - y) * w2 * a1 * (1 - a1) * x",
    "dL_db1": "w2*(a2-y)*a1*(1-a1)",
}
LATEX = {
    "dL_dw2": r"$(a_2 - y)\,a_1$",
    "dL_db2": r"$\hat{y} - y$",
    "dL_dw1": r"$(a_2 - y)\,w_2\,a_1(1-a_1)\,x$",
    "dL_db1": r"$$\left(a_{2} - y\right) w_{2} \sigma'(z_1)$$",
}
EXPANDED = {
    "dL_dw2": "(sigma(w2*sigma(w1*x + b1) + b2) - y)*sigma(w1*x + b1)",
    "dL_db2": "sigma(w2*sigma(w1*x + b1) + b2) - y",
    "dL_dw1": "(sigma(w2*sigma(w1*x+b1)+b2) - y)*w2*sigma(w1*x+b1)*(1-sigma(w1*x+b1))*x",
    "dL_db1": "(sigma(w2*sigma(w1*x+b1)+b2) - y)*w2*sigma(w1*x+b1)*sigma(-(w1*x+b1))",
}

# The seed student's answer cell, equations copied as written.
SEED_CELL = r"""
$$\frac{\partial L}{\partial w_2} = \frac{\partial L}{\partial z_2} \cdot \frac{\partial z_2}{\partial w_2} = (a_2 - y) \cdot a_1 //$$

$$\frac{\partial L}{\partial b_2} = \frac{\partial L}{\partial z_2} \cdot \frac{\partial z_2}{\partial b_2} = a_2 - y //$$

Note: if $a = \frac{1}{1+e^{-k}}$
 $\frac{da}{dk} = a(1-a)$

$$\frac{\partial L}{\partial w_1} = \frac{\partial L}{\partial z_2} \cdot \frac{\partial z_2}{\partial w_1} = \frac{\partial L}{\partial z_2} \cdot \frac{\partial z_2}{\partial a_1} \cdot \frac{\partial a_1}{\partial z_1} \cdot \frac{\partial z_1}{\partial w_1}$$

$$\frac{\partial L}{\partial w_1} = (a_2 - y) \cdot w_2 \cdot a_1(1-a_1) \cdot x //$$

$$\frac{\partial L}{\partial b_1} = \frac{\partial L}{\partial z_2} \cdot \frac{\partial z_2}{\partial a_1} \cdot \frac{\partial a_1}{\partial z_1} \cdot \frac{\partial z_1}{\partial b_1} = (a_2 - y) \cdot w_2 \cdot a_1(1-a_1) \cdot 1$$

$$\frac{\partial L}{\partial b_1} = (a_2 - y) w_2 a_1 (1-a_1) //$$
"""  # noqa: E501


@pytest.mark.parametrize("name", sorted(REFERENCE))
@pytest.mark.parametrize("spelling", [PYTHON, LATEX, EXPANDED], ids=["python", "latex", "expanded"])
def test_true_gradients_are_equivalent(
    table: SymbolTable, name: str, spelling: dict[str, str]
) -> None:
    result = equivalent(spelling[name], REFERENCE[name], table)
    assert result.verdict is Verdict.EQUIVALENT, result.reason


def test_seed_cell_answers_are_all_equivalent(table: SymbolTable) -> None:
    found = read_derivative_equations(SEED_CELL, table, WANTED)
    assert set(found) == set(REFERENCE)
    for name, reading in found.items():
        assert equivalent(reading, REFERENCE[name], table).verdict is Verdict.EQUIVALENT, name


def test_references_are_the_true_derivatives(table: SymbolTable) -> None:
    # Checked against SymPy's own derivative of the loss, fully expanded.
    import sympy

    loss = read("L", table).expr
    for name, (_, variable) in WANTED.items():
        truth = sympy.diff(loss, table.object(variable))
        assert equivalent(truth, REFERENCE[name], table).verdict is Verdict.EQUIVALENT, name


MISTAKES = [
    ("dL_dw1", "(a2 - y)*w2*x", "missing the factor a1*(1 - a1)"),
    ("dL_db1", "(a2 - y)*w2", "missing the factor a1*(1 - a1)"),
    ("dL_dw2", "(y - a2)*a1", "y - a2 where a2 - y belongs"),
    ("dL_dw1", "(y - a2)*w2*a1*(1 - a1)*x", "y - a2 where a2 - y belongs"),
    ("dL_dw2", "(a2 - y)*a2*(1 - a2)*a1", "extra factor a2*(1 - a2)"),
    ("dL_dw1", "(a2 - y)*a2*(1 - a2)*w2*a1*(1 - a1)*x", "extra factor a2*(1 - a2)"),
    ("dL_dw1", "(a2 - y)*w2*a1*(1 - a1)", "missing the factor x"),
    ("dL_dw1", "(a2 - y)*w1*a1*(1 - a1)*x", "you used w1 where w2 belongs"),
    ("dL_db1", r"(a_2 - y) w_1 a_1 (1 - a_1)", "you used w1 where w2 belongs"),
]


@pytest.mark.parametrize(("name", "answer", "hint"), MISTAKES)
def test_mistakes_are_wrong_with_a_counterexample_and_a_hint(
    table: SymbolTable, name: str, answer: str, hint: str
) -> None:
    result = equivalent(answer, REFERENCE[name], table)
    assert result.verdict is Verdict.NOT_EQUIVALENT
    assert result.counterexample and result.answer_value != result.expected_value
    variant = diagnose(answer, REFERENCE[name], table)
    assert variant is not None and hint in variant.hint


def test_right_answers_get_no_hint(table: SymbolTable) -> None:
    for name, answer in LATEX.items():
        assert diagnose(answer, REFERENCE[name], table) is None


def test_hand_written_variant_wins_and_carries_its_credit(table: SymbolTable) -> None:
    sigma_prime = Variant(
        "missing-sigma-prime",
        read("(a2 - y)*w2*x", table, expand_definitions=False).expr,
        "your ∂L/∂w1 is missing σ′(z1) = a1(1 − a1)",
        credit=0.5,
    )
    variant = diagnose("(a2 - y) w2 x", REFERENCE["dL_dw1"], table, extra=[sigma_prime])
    assert variant is sigma_prime
    assert variant.credit == 0.5
