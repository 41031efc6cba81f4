"""Symbol tables: declarations, aliases, definitions, and spec errors that quote the value."""

from __future__ import annotations

import pytest
import sympy

from grader.checks.math import SymbolSpec, SymbolTable, read
from grader.checks.math.symbols import name_key
from grader.errors import SpecError


@pytest.mark.parametrize(
    ("spelling", "key"),
    [
        ("w_1", "w1"),
        ("w_{1}", "w1"),
        ("w1", "w1"),
        ("w₁", "w1"),
        ("W_1", "W1"),
        ("\\beta", "beta"),
        ("β", "beta"),
        ("\\hat{y}", "yhat"),
        ("ŷ", "yhat"),
        ("y\u0302", "yhat"),
        ("y_hat", "yhat"),
        ("\\mathbf{X}", "X"),
        ("$\\sigma$", "sigma"),
    ],
)
def test_name_key_normalises_spellings(spelling: str, key: str) -> None:
    assert name_key(spelling) == key


def test_from_mapping_builds_typed_symbols() -> None:
    table = SymbolTable.from_mapping(
        {
            "X": {"kind": "matrix", "shape": ["n", "p"]},
            "y": {"kind": "vector", "shape": ["n"]},
            "t": {"kind": "scalar", "domain": "positive"},
            "sigma": {"kind": "function"},
        }
    )
    X = table.object("X")
    assert isinstance(X, sympy.MatrixSymbol) and X.shape == (table.dim("n"), table.dim("p"))
    assert table.object("y").shape == (table.dim("n"), 1)
    assert table.object("t").is_positive
    assert table.names() == ["X", "y", "t"]
    assert set(table.dims) == {"n", "p"}


def test_aliases_resolve_to_the_canonical_symbol() -> None:
    table = SymbolTable.from_specs(
        [SymbolSpec("w1", "scalar", aliases=("w_1", "W_1")), SymbolSpec("beta", "vector", ("p",))]
    )
    for spelling in ("w1", "w_1", "w_{1}", "W_1", "W_{1}"):
        spec = table.lookup(spelling)
        assert spec is not None and spec.name == "w1"
    assert table.lookup("β") is table.lookup("\\beta") is table.lookup("beta")
    assert table.lookup("W1x") is None


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"X": {"kind": "tensor"}}, "kind='tensor'"),
        ({"X": {"kind": "matrix", "shape": ["n"]}}, "shape=['n'] does not fit kind 'matrix'"),
        ({"y": {"kind": "vector"}}, "shape=[] does not fit kind 'vector'"),
        ({"x": {"kind": "scalar", "shape": ["n"]}}, "does not fit kind 'scalar'"),
        ({"x": {"kind": "scalar", "domain": "complex"}}, "domain='complex'"),
        ({"x": {"kind": "scalar", "colour": "red"}}, "unknown field 'colour'"),
        ({"x": {"shape": []}}, "'kind' is missing"),
        ({"x": "scalar"}, "'scalar' must be a table"),
        ({"x": {"kind": "scalar", "aliases": "x1"}}, "aliases='x1' must be a list"),
        ({"2x": {"kind": "scalar"}}, "symbol name '2x'"),
        ({"X": {"kind": "matrix", "shape": ["n", "2"]}}, "dimension '2'"),
        (
            {"a": {"kind": "scalar", "aliases": ["b"]}, "b": {"kind": "scalar"}},
            "spelling 'b' is already used by 'a'",
        ),
        ({"a": {"kind": "scalar", "definition": "sigma(q)"}}, "'q' is not one of"),
        (
            {
                "a": {"kind": "scalar", "definition": "b + 1"},
                "b": {"kind": "scalar", "definition": "a"},
            },
            "refer to themselves",
        ),
        (
            {
                "X": {"kind": "matrix", "shape": ["n", "p"]},
                "s": {"kind": "scalar", "definition": "X"},
            },
            "declared scalar but its definition is an n×p matrix",
        ),
        ({"a": {"kind": "scalar", "definition": ""}}, "must be a non-empty string"),
    ],
)
def test_bad_specs_are_refused_quoting_the_value(data: dict, words: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(SpecError) as caught:
        SymbolTable.from_mapping(data)
    assert words in str(caught.value)


def test_definitions_are_read_once_and_expanded_in_order() -> None:
    table = SymbolTable.from_mapping(
        {
            "x": {"kind": "scalar"},
            "z": {"kind": "scalar", "definition": "2*x"},
            "a": {"kind": "scalar", "definition": "sigma(z)"},
        }
    )
    assert set(table.definitions) == {"z", "a"}
    assert "x" in str(read("a", table).expr)
    assert read("a", table).read_as() == "a"


def test_a_declared_sigma_function_is_the_logistic() -> None:
    table = SymbolTable.from_mapping({"z": {"kind": "scalar"}, "sigma": {"kind": "function"}})
    assert read("sigma(0)", table).expr == sympy.Rational(1, 2)


def test_a_declared_scalar_named_sigma_shadows_the_logistic() -> None:
    table = SymbolTable.from_mapping({"sigma": {"kind": "scalar"}, "x": {"kind": "scalar"}})
    assert read("sigma x", table).read_as() == "sigma*x"
