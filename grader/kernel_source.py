"""The kernel's definitions as source text, for ``check`` (see ``grader.notebook``).

Runs in the student's kernel. Functions and classes are sent as their source, lambdas as the
line that made them, imports as import statements, plain values (numbers, strings, NumPy
scalars and arrays, containers of these) as literals; anything else is left out with a note
naming it. Every piece is parsed before it is sent: the check never receives code that does
not compile.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import keyword
import linecache
import math
import re
import sys
import textwrap
import types
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["live_source"]

# Names IPython and this module put into a kernel's namespace: never sent to the check.
_KERNEL_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython", "check"})
_KERNEL_MODULES = ("grader", "IPython", "ipykernel")
_MAX_LITERAL = 100_000
_MAX_ITEMS = 10_000
_MAX_DEPTH = 20
# Where objects without a usable ``__module__`` (ufuncs) are looked for, if already imported.
_UFUNC_HOMES = ("numpy", "scipy.special", "numpy.linalg", "scipy.stats", "math")


def _source_of(value: Any) -> str | None:
    """The dedented source of a function or class, or None when it cannot be found."""
    try:
        source = textwrap.dedent(inspect.getsource(value))
        ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return _class_source(value) if inspect.isclass(value) else None
    return source


def _class_source(cls: type) -> str | None:
    """A notebook class's source, found through its methods' cells (``inspect`` looks for the
    file of ``__main__``, which a kernel does not have)."""
    for member in vars(cls).values():
        code = getattr(inspect.unwrap(member), "__code__", None) if callable(member) else None
        if code is None:
            continue
        text = "".join(linecache.getlines(code.co_filename))
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            continue
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                lines = text.splitlines(keepends=True)[first - 1 : node.end_lineno]
                return textwrap.dedent("".join(lines))
    return None


def _literal(value: Any) -> str | None:
    """``repr(value)`` when it reads back as the same plain literal, else None."""
    if isinstance(value, types.ModuleType) or callable(value):
        return None
    try:
        text = repr(value)
    except Exception:  # a student's __repr__ may raise anything; then the value is skipped
        return None
    if len(text) > _MAX_LITERAL:
        return None
    try:
        return text if ast.literal_eval(text) == value else None
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def _data(value: Any, depth: int = 0) -> str | None:
    """Source that rebuilds ``value`` as data, or None: a plain literal, a NumPy scalar or small
    array, or a list, tuple, set or dict of these (``(np.int64(3), 2)``)."""
    if depth > _MAX_DEPTH:
        return None
    for build in (_numpy_scalar, _literal, _number, _array_literal):
        text = build(value)
        if text is not None:
            return text
    kind = type(value)
    if kind not in (list, tuple, set, frozenset, dict) or len(value) > _MAX_ITEMS:
        return None
    pairs = value.items() if kind is dict else [(item, None) for item in value]
    parts = []
    for key, item in pairs:
        key_text = _data(key, depth + 1)
        item_text = _data(item, depth + 1) if kind is dict else ""
        if key_text is None or item_text is None:
            return None
        parts.append(f"{key_text}: {item_text}" if kind is dict else key_text)
    body = ", ".join(parts)
    if kind is list:
        text = f"[{body}]"
    elif kind is tuple:
        text = f"({body},)" if len(parts) == 1 else f"({body})"
    elif kind is dict:
        text = f"{{{body}}}"
    else:
        text = f"{kind.__name__}({{{body}}})" if parts else f"{kind.__name__}()"
    return text if len(text) <= _MAX_LITERAL else None


def _numpy_scalar(value: Any) -> str | None:
    """``_grader_np.float64(1e-12)`` for a NumPy number, keeping its type."""
    np = sys.modules.get("numpy")
    if np is None or not isinstance(value, np.generic) or value.dtype.kind not in "biufc":
        return None
    kind = type(value).__name__
    if getattr(np, kind, None) is not type(value):
        return None
    number = _number(value.item())
    return None if number is None else f"_grader_np.{kind}({number})"


def _number(value: Any) -> str | None:
    """A Python number as source, ``float('nan')`` and ``float('inf')`` included."""
    if type(value) in (bool, int):
        return repr(value)
    if type(value) is float:
        return repr(value) if math.isfinite(value) else f"float({repr(value)!r})"
    if type(value) is complex:
        real, imag = _number(value.real), _number(value.imag)
        return None if real is None or imag is None else f"complex({real}, {imag})"
    return None  # e.g. a long double, which no Python literal holds exactly


def _importable(value: Any, homes: Sequence[str] = ()) -> tuple[str, str] | None:
    """(module, name) when ``value`` is a top-level attribute of an importable module.

    Its own ``__module__`` is tried first; objects without one that is right (NumPy and SciPy
    ufuncs such as ``scipy.special.expit``) are looked up by identity in ``homes`` (the
    notebook's imported modules) and in the modules such objects usually come from.
    """
    name = getattr(value, "__name__", None)
    if not isinstance(name, str) or not name.isidentifier():
        return None
    declared = getattr(value, "__module__", None)
    candidates = [declared] if isinstance(declared, str) else []
    for module in (*candidates, *homes, *_UFUNC_HOMES):
        if module.split(".")[0] in _KERNEL_MODULES or module == "__main__":
            continue
        owner = sys.modules.get(module)
        if owner is not None and getattr(owner, name, None) is value:
            return module, name
    return None


def _sent(name: str) -> bool:
    """Whether a name of the kernel's namespace is one of the notebook's own, to be sent."""
    return not (
        name.startswith("_")
        or name in _KERNEL_NAMES
        or not name.isidentifier()
        or keyword.iskeyword(name)
    )


def _kernel_injected(namespace: Mapping[str, Any]) -> Mapping[str, Any]:
    """The names IPython put into this namespace itself (``user_ns_hidden``), with values.

    Asked of the kernel's own ``get_ipython`` only, never of a function the notebook defined.
    """
    get_ipython = namespace.get("get_ipython")
    if not callable(get_ipython) or _module_root(get_ipython) not in _KERNEL_MODULES:
        return {}
    hidden = getattr(get_ipython(), "user_ns_hidden", None)
    return hidden if isinstance(hidden, Mapping) else {}


def _module_root(value: Any) -> str:
    module = getattr(value, "__module__", None)
    return module.split(".")[0] if isinstance(module, str) else ""


def _from_kernel(name: str, value: Any, hidden: Mapping[str, Any]) -> bool:
    """Whether IPython put ``value`` there (``In``, ``open``, ...), not the notebook's code."""
    if name in hidden and hidden[name] is value:
        return True
    builtin = getattr(builtins, name, None)
    if builtin is None:
        return False
    # IPython shadows some builtins (its `open` wraps io.open to refuse 0, 1 and 2).
    return (
        value is builtin
        or getattr(value, "__wrapped__", None) is builtin
        or _module_root(value) in _KERNEL_MODULES
    )


def _definition_of(name: str, value: Any) -> tuple[str | None, str]:
    """Source that binds ``name`` to a notebook function or class, or (None, why not).

    A ``def`` or ``class`` whose own name differs from ``name`` (its original was redefined
    or deleted since) is renamed, so that it cannot overwrite the current original. A lambda
    becomes ``name = lambda ...``, its text taken from the cell that made it.
    """
    original = value.__name__
    if original == "<lambda>":
        expression = _lambda_source(value)
        # A lambda that spans lines inside brackets needs brackets of its own.
        source = expression and (
            _parsed(f"{name} = {expression}\n") or _parsed(f"{name} = ({expression})\n")
        )
        if not source:
            return None, (
                f"`{name}` (a lambda) could not be rebuilt from its cell, so it was left out; "
                f"write it as `def {name}(...):` to have it checked"
            )
        return source, ""
    source = _source_of(value)
    if source is not None and original != name:
        source = _renamed(source, original, name)
    if source is None:
        return None, f"`{name}`: its source could not be found; it was left out"
    return source, ""


def _parsed(source: str) -> str | None:
    """``source`` when it is valid Python, else None: never send the check code that cannot run."""
    try:
        ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return source


def _renamed(source: str, original: str, name: str) -> str | None:
    """The ``def original`` / ``class original`` in ``source``, renamed to ``name``."""
    if not name.isidentifier():
        return None
    tree = ast.parse(source)
    for node in tree.body:
        if (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and node.name == original
        ):
            lines = source.splitlines(keepends=True)
            header = re.compile(rf"((?:async\s+)?(?:def|class)\s+){re.escape(original)}\b")
            lines[node.lineno - 1], count = header.subn(
                lambda m: m.group(1) + name, lines[node.lineno - 1], count=1
            )
            return _parsed("".join(lines)) if count else None
    return None


def _lambda_source(fn: types.FunctionType) -> str | None:
    """The text of a lambda (``lambda z: ...``) in the cell that made it, or None.

    The lambda is told from others in its cell by where its compiled code comes from (its
    instructions' positions lie within the lambda's body) and by its arguments, so
    ``f, g = lambda x: x, lambda x: -x`` gives each its own. A lambda that closes over a
    function's local variables cannot be rebuilt from its text alone.
    """
    code = fn.__code__
    if code.co_freevars:
        return None
    # Instructions the compiler adds (resume, implicit return) sit at column 0 to 0.
    where = [
        ((line, col), (end_line, end_col))
        for line, end_line, col, end_col in code.co_positions()
        if None not in (line, end_line, col, end_col) and (col, end_col) != (0, 0)
    ]
    arguments = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    text = "".join(linecache.getlines(code.co_filename))
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Lambda) or not where:
            continue
        body = node.body
        first = (body.lineno, body.col_offset)
        last = (body.end_lineno, body.end_col_offset)
        names = tuple(a.arg for a in (*node.args.posonlyargs, *node.args.args))
        names += tuple(a.arg for a in node.args.kwonlyargs)
        if names == arguments and all(first <= a and b <= last for a, b in where):
            segment = ast.get_source_segment(text, node)
            if segment is not None:
                found.add(segment)
    return found.pop() if len(found) == 1 else None


def live_source(namespace: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """Python source that recreates the notebook's definitions, and notes on what was left out.

    Imports come first, then literal values, then functions and classes in the order the
    notebook first defined them. SymPy answers become strings (the grader reads formulas as
    text anyway); arrays become ``numpy.array`` literals when small.
    """
    imports: list[str] = []
    values: list[str] = []
    definitions: list[str] = []
    notes: list[str] = []
    aliases: list[tuple[str, str]] = []
    defined: set[str] = set()
    own_module = namespace.get("__name__", "__main__")
    homes = [v.__name__ for v in namespace.values() if isinstance(v, types.ModuleType)]
    hidden = _kernel_injected(namespace)
    for name, value in list(namespace.items()):
        if not _sent(name) or _from_kernel(name, value, hidden):
            continue
        if isinstance(value, types.ModuleType):
            if value.__name__.split(".")[0] not in _KERNEL_MODULES:
                imports.append(
                    f"import {value.__name__}"
                    if value.__name__ == name
                    else f"import {value.__name__} as {name}"
                )
            continue
        if inspect.isfunction(value) or inspect.isclass(value):
            if getattr(value, "__module__", None) in (own_module, "__main__"):
                original = value.__name__
                if original != name and _sent(original) and namespace.get(original) is value:
                    aliases.append((name, original))  # `alias = helper`: after all definitions
                    continue
                source, note = _definition_of(name, value)
                if source is None:
                    notes.append(note)
                    continue
                definitions.append(source)
                defined.add(name)
                continue
        text = _data(value)
        if text is not None:
            values.append(f"{name} = {text}")
            continue
        origin = _importable(value, homes)
        if origin is not None:
            module, attr = origin
            imports.append(
                f"from {module} import {attr}"
                if attr == name
                else f"from {module} import {attr} as {name}"
            )
            continue
        type_module = type(value).__module__ or ""
        if type_module.startswith("sympy"):
            # Equations read as "lhs = rhs", like an answer written in a string.
            lhs, rhs = getattr(value, "lhs", None), getattr(value, "rhs", None)
            expr = f"{lhs} = {rhs}" if type(value).__name__ == "Equality" else str(value)
            values.append(f"{name} = {expr!r}")
            continue
        notes.append(f"`{name}` ({type(value).__name__}) was not sent to the check")
    for name, original in aliases:
        if original in defined:
            definitions.append(f"{name} = {original}")
        else:
            notes.append(f"`{name}` (another name for `{original}`) was left out with it")
    if any("_grader_np." in v for v in values):
        imports.insert(0, "import numpy as _grader_np")
    parts = ["\n".join(imports), "\n".join(values), "\n\n".join(d.rstrip() for d in definitions)]
    return "\n\n".join(p for p in parts if p) + "\n", tuple(notes)


def _array_literal(value: Any) -> str | None:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        return None
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf" or value.size > 10_000:
        return None
    items = value.tolist()
    # repr writes NaN and infinity as `nan` and `inf`, which are not Python literals.
    text = repr(items) if value.dtype.kind != "f" or np.isfinite(value).all() else _data(items)
    return None if text is None else f"_grader_np.array({text}, dtype={str(value.dtype)!r})"
