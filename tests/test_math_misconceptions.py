"""Generated wrong variants: what is generated, what is dropped, which hint wins."""

from __future__ import annotations

import pytest

from grader.checks.math import (
    SymbolTable,
    Variant,
    Verdict,
    diagnose,
    equivalent,
    generate_variants,
    read,
)


@pytest.fixture(scope="module")
def table() -> SymbolTable:
    return SymbolTable.from_mapping(
        {
            "X": {"kind": "matrix", "shape": ["n", "p"]},
            "y": {"kind": "vector", "shape": ["n"]},
            "beta": {"kind": "vector", "shape": ["p"]},
            "w1": {"kind": "scalar"},
            "w2": {"kind": "scalar"},
            "x": {"kind": "scalar"},
            "u": {"kind": "scalar"},
            "a1": {"kind": "scalar", "definition": "sigma(w1*x)"},
        }
    )


def names(variants: list[Variant]) -> list[str]:
    return [v.name for v in variants]


def test_matrix_reference_variants(table: SymbolTable) -> None:
    found = names(generate_variants(r"X^T(X\beta - y)", table))
    for expected in ("sign:X*beta - y", "factor-2", "half", "transposed", "no-transpose:X"):
        assert expected in found
    assert len(found) == len(set(found))


def test_no_variant_equals_the_reference(table: SymbolTable) -> None:
    reference = "(w2 - x)*w1*a1*(1 - a1)"
    variants = generate_variants(reference, table)
    assert len(variants) >= 10
    for variant in variants:
        assert equivalent(variant.expr, reference, table).verdict is Verdict.NOT_EQUIVALENT


def test_numerically_equal_variants_are_kept_once(table: SymbolTable) -> None:
    # Flipping either factor of (w2 - x)(u - w1) gives the same value: one variant stays.
    variants = generate_variants("(w2 - x)*(u - w1)", table)
    signs = [v for v in variants if v.name.startswith("sign")]
    assert len(signs) == 1


def test_sigmoid_shorthands_give_extra_factor_variants(table: SymbolTable) -> None:
    hints = [v.hint for v in generate_variants("w2*x", table)]
    assert "your answer has an extra factor a1*(1 - a1)" in hints


def test_swaps_are_between_similar_names_of_the_same_kind(table: SymbolTable) -> None:
    found = names(generate_variants("w1*x + w2", table))
    assert "swap:w1->w2" in found and "swap:w1<->w2" in found
    assert not any(name.startswith("swap:x") for name in found)


def test_extra_variants_come_first_and_win(table: SymbolTable) -> None:
    mine = Variant("forgot-half", read("X.T*X*beta", table).expr, "hand-written hint", credit=0.25)
    variants = generate_variants(r"X^T X\beta - X^T y", table, extra=[mine])
    assert variants[0] is mine
    assert diagnose(r"X^TX\beta", r"X^T X\beta - X^T y", table, extra=[mine]) is mine


def test_diagnose_prefers_the_variant_that_looks_like_the_answer(table: SymbolTable) -> None:
    first = diagnose("(x - w2)*(u - w1)", "(w2 - x)*(u - w1)", table)
    second = diagnose("(w2 - x)*(w1 - u)", "(w2 - x)*(u - w1)", table)
    assert first is not None and "x - w2 where w2 - x belongs" in first.hint
    assert second is not None and "w1 - u where u - w1 belongs" in second.hint


def test_unknown_mistakes_get_no_hint(table: SymbolTable) -> None:
    assert diagnose(r"X^T y", r"X^T(X\beta - y)", table) is None
    assert diagnose("w1 + 7*x", "(w2 - x)*w1", table) is None


def test_shape_error_answers_are_matched_on_square_matrices(table: SymbolTable) -> None:
    variant = diagnose(r"X(X\beta - y)", r"X^T(X\beta - y)", table)
    assert variant is not None and variant.name == "no-transpose:X"


def test_the_variants_of_a_reference_are_worked_out_once_per_table(
    table: SymbolTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    from grader.checks.math import misconceptions

    reference = "(w2 - x)*w1*a1*(1 - a1)"
    answers = ["(x - w2)*w1*a1*(1 - a1)", "2*(w2 - x)*w1*a1*(1 - a1)", "(w2-x)*w1", "w1 + 7*x"]
    expected = ["sign:w2 - x", "factor-2", "missing:a1*(1 - a1)", None]
    # A table of its own (not the one built once per process), so the memo starts empty.
    fresh = SymbolTable.from_specs(table.specs)
    first = [diagnose(answer, reference, fresh) for answer in answers]
    assert [v.name if v else None for v in first] == expected
    made: list[object] = []
    candidates = misconceptions._candidates
    monkeypatch.setattr(misconceptions, "_candidates", lambda *a: made.append(a) or candidates(*a))
    assert [diagnose(answer, reference, fresh) for answer in answers] == first
    assert made == []  # the second round generated nothing: the table remembered the groups
    other = SymbolTable.from_specs(table.specs)
    assert [diagnose(answer, reference, other) for answer in answers] == first
    assert len(made) == 1  # a table of its own works them out again, to the same hints
