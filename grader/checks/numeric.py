"""Comparing what a student's code returned with what was expected, without being fooled.

Runs in the trusted parent, on plain data decoded from the wire. The order is always: refuse
anything that is not numbers, check the exact shape (no broadcasting: ``(0, 3)`` or a scalar is
never "close" to a ``(3,)`` array), require finite values, then compare with a relative
tolerance plus a small absolute floor. Failures carry an ``ArrayDiff`` for the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import CheckFailed
from ..results import ArrayDiff

RTOL = 1e-7
ATOL = 1e-12


def _type_name(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array of dtype {value.dtype}"
    type_name = getattr(value, "type_name", None)  # a RemoteHandle
    return f"{type_name} object" if type_name else type(value).__name__


def as_array(
    value: Any,
    *,
    name: str,
    shape: tuple[int, ...] | None = None,
    column_ok: bool = False,
    scalar_ok: bool = False,
) -> np.ndarray[Any, Any]:
    """Convert a returned value to a float64 array of exactly the expected shape, or fail.

    ``column_ok`` accepts ``(p, 1)`` for ``(p,)``; ``scalar_ok`` accepts a float, a 0-d or a
    ``(1,)`` array where a scalar is expected (``shape == ()``).
    """
    if isinstance(value, bool) or value is None or isinstance(value, str):
        raise CheckFailed(
            f"{name} returned {_type_name(value)} {value!r}; a number or array was expected",
            actual=repr(value)[:200],
        )
    if isinstance(value, int | float | complex | np.ndarray):
        arr = np.asarray(value)
    elif isinstance(value, list | tuple):
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise CheckFailed(
                f"{name} returned a ragged or mixed list that is not an array"
            ) from exc
    else:
        raise CheckFailed(
            f"{name} returned a {_type_name(value)}; a number or array was expected",
            actual=_type_name(value),
        )
    if arr.dtype.kind == "c":
        if np.any(np.imag(arr) != 0):
            raise CheckFailed(f"{name} returned complex numbers; real numbers were expected")
        arr = np.real(arr)
    if arr.dtype.kind not in "biuf":
        raise CheckFailed(f"{name} returned an array of {arr.dtype} values; numbers were expected")
    arr = arr.astype(np.float64)
    if shape is not None and arr.shape != shape:
        if column_ok and len(shape) == 1 and arr.shape == (shape[0], 1):
            arr = arr.reshape(shape)
        elif scalar_ok and shape == () and arr.shape in ((), (1,)):
            arr = arr.reshape(())
        else:
            raise CheckFailed(
                f"{name} returned shape {arr.shape}; shape {shape} was expected",
                expected=f"shape {shape}",
                actual=f"shape {arr.shape}",
                details=(ArrayDiff(label=name, expected_shape=shape, actual_shape=arr.shape),),
            )
    if not np.all(np.isfinite(arr)):
        bad = "NaN" if np.any(np.isnan(arr)) else "inf"
        raise CheckFailed(
            f"{name} returned {bad} values",
            actual=f"contains {bad}",
            hint="look for overflow (e.g. exp of a large number) or 0/0",
        )
    return arr


def compare(
    got: Any,
    expected: Any,
    *,
    name: str,
    rtol: float = RTOL,
    atol: float = ATOL,
    column_ok: bool = False,
    scalar_ok: bool = False,
    hint: str | None = None,
) -> None:
    """Fail with expected/actual and an ``ArrayDiff`` unless ``got`` matches ``expected``."""
    want = np.asarray(expected, dtype=np.float64)
    arr = as_array(got, name=name, shape=want.shape, column_ok=column_ok, scalar_ok=scalar_ok)
    err = np.abs(arr - want)
    bound = atol + rtol * np.abs(want)
    if np.all(err <= bound):
        return
    worst = np.unravel_index(int(np.argmax(err - bound)), err.shape) if err.ndim else ()
    where = tuple(int(i) for i in worst)
    rel = float(err[where] / max(abs(float(want[where])), 1e-300))
    diff = ArrayDiff(
        label=name,
        expected_shape=want.shape,
        actual_shape=arr.shape,
        max_abs_error=float(err[where]),
        max_rel_error=rel,
        where=where,
        expected_at=float(want[where]),
        actual_at=float(arr[where]),
        rtol=rtol,
        atol=atol,
    )
    at = f" at index {where}" if where else ""
    raise CheckFailed(
        f"{name} is off by {float(err[where]):.3g}{at} (relative {rel:.2g}; tolerance {rtol:g})",
        expected=_short(want),
        actual=_short(arr),
        hint=hint,
        details=(diff,),
    )


def compare_dict(
    got: Any,
    expected: Mapping[str, Any],
    *,
    name: str,
    rtol: float = RTOL,
    atol: float = ATOL,
    scalar_ok: bool = True,
    hint: str | None = None,
) -> None:
    """Compare a returned dict entry by entry (keys exactly as expected)."""
    if not isinstance(got, dict):
        raise CheckFailed(
            f"{name} returned a {_type_name(got)}; a dict with keys {sorted(expected)} was expected"
        )
    missing = [k for k in expected if k not in got]
    if missing:
        raise CheckFailed(
            f"{name} returned a dict without the keys {missing}",
            expected=f"keys {sorted(expected)}",
            actual=f"keys {sorted(map(str, got))}",
        )
    for key, want in expected.items():
        compare(
            got[key],
            want,
            name=f"{name}[{key!r}]",
            rtol=rtol,
            atol=atol,
            scalar_ok=scalar_ok,
            hint=hint,
        )


def _short(arr: np.ndarray[Any, Any]) -> str:
    if arr.size <= 12:
        return np.array2string(arr, precision=6, separator=", ").replace("\n", " ")
    return f"array of shape {arr.shape}, first values {arr.ravel()[:4].round(6).tolist()}"
