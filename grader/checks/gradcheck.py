"""Numerical gradient checks: central finite differences of a trusted loss, in float64.

Runs in the trusted parent. The loss is the assignment's own (written by the instructor), never
the student's; the student's gradients arrive as data and are compared entry by entry. The
result is a ``GradientTable`` (analytic, numeric, relative error per parameter) for the report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..errors import CheckFailed
from ..remote import RemoteHandle
from ..results import GradientRow, GradientTable
from .numeric import as_array

Params = Mapping[str, Any]


def numeric_gradient(
    loss: Callable[[dict[str, Any]], float], params: Params, *, step: float = 1e-6
) -> dict[str, np.ndarray[Any, Any]]:
    """Central differences of ``loss`` with respect to every entry of every parameter."""
    base = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    grads: dict[str, np.ndarray[Any, Any]] = {}
    for name, value in base.items():
        grad = np.zeros_like(value)
        flat = value.reshape(-1)
        gflat = grad.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + step
            plus = loss(_as_given(base, params))
            flat[i] = old - step
            minus = loss(_as_given(base, params))
            flat[i] = old
            gflat[i] = (plus - minus) / (2 * step)
        grads[name] = grad
    return grads


def _as_given(base: dict[str, np.ndarray[Any, Any]], params: Params) -> dict[str, Any]:
    """Scalars stay Python floats so the loss sees the same types as the student's function."""
    return {k: (float(v) if np.ndim(params[k]) == 0 else v) for k, v in base.items()}


def check_gradients(
    analytic: Any,
    numeric: Mapping[str, np.ndarray[Any, Any]],
    *,
    name: str,
    tolerance: float = 1e-5,
    step: float = 1e-6,
    hints: Mapping[str, str] | None = None,
) -> GradientTable:
    """Compare a returned gradient dict with finite differences; fail naming each bad entry."""
    if not isinstance(analytic, dict):
        # An object that stayed in the sandbox is named by its own type, not the proxy's.
        kind = analytic.type_name if isinstance(analytic, RemoteHandle) else type(analytic).__name__
        raise CheckFailed(
            f"{name} returned {kind}; a dict with keys {sorted(numeric)} was expected"
        )
    missing = [k for k in numeric if k not in analytic]
    if missing:
        raise CheckFailed(
            f"{name} returned a dict without the keys {missing}",
            expected=f"keys {sorted(numeric)}",
            actual=f"keys {sorted(map(str, analytic))}",
        )
    rows = []
    for key, num in numeric.items():
        got = as_array(
            analytic[key], name=f"{name}[{key!r}]", shape=num.shape, scalar_ok=num.shape == ()
        )
        rel = np.abs(got - num) / np.maximum(np.abs(got) + np.abs(num), 1e-8)
        worst = np.unravel_index(int(np.argmax(rel)), rel.shape) if rel.ndim else ()
        where = tuple(int(i) for i in worst)
        rows.append(
            GradientRow(
                parameter=key,
                analytic=float(got[where]),
                numeric=float(num[where]),
                rel_error=float(rel[where]),
                ok=bool(rel[where] <= tolerance),
                index=where,
            )
        )
    table = GradientTable(rows=tuple(rows), tolerance=tolerance, step=step)
    bad = [r for r in rows if not r.ok]
    if bad:
        parts = [
            f"∂L/∂{r.parameter}{list(r.index) if r.index else ''}: yours {r.analytic:.6g}, "
            f"finite differences {r.numeric:.6g} (relative error {r.rel_error:.2g})"
            for r in bad
        ]
        hint = None
        if hints:
            hint = " ".join(hints[r.parameter] for r in bad if r.parameter in hints) or None
        raise CheckFailed(
            "gradient disagrees with finite differences for "
            + ", ".join(r.parameter for r in bad)
            + ": "
            + "; ".join(parts),
            expected="; ".join(f"{r.parameter}: {r.numeric:.6g}" for r in bad),
            actual="; ".join(f"{r.parameter}: {r.analytic:.6g}" for r in bad),
            hint=hint,
            details=(table,),
        )
    return table
