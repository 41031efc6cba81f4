"""The public surface of grader.checks.math: __all__ is explicit and complete."""

from __future__ import annotations

import ast
import pathlib

import grader.checks.math as math_checks


def test_all_names_exist_and_are_sorted() -> None:
    assert list(math_checks.__all__) == sorted(math_checks.__all__)
    for name in math_checks.__all__:
        assert getattr(math_checks, name) is not None


def test_every_imported_public_name_is_exported() -> None:
    imported = {
        name for name in vars(math_checks) if not name.startswith("_") and name[0].isupper()
    }
    assert imported <= set(math_checks.__all__) | {"TYPE_CHECKING"}


def test_no_module_calls_eval_or_sympify() -> None:
    # Student text must never reach eval/exec/sympify/parse_expr or sympy.parsing.
    folder = pathlib.Path(math_checks.__file__).parent
    forbidden = {"eval", "exec", "sympify", "parse_expr", "parse_latex", "S"}
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                assert name not in forbidden, f"{path.name}:{node.lineno} calls {name}"
            if isinstance(node, ast.ImportFrom):
                assert "parsing" not in (node.module or ""), path.name
