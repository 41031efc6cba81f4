"""Public checks of the backprop code questions (3–6): properties, fingerprints, gradients.

These need no reference solution: the loss is the one the question defines, and gradients are
checked against central finite differences of it in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from grader import CheckFailed, check
from grader.checks.gradcheck import check_gradients, numeric_gradient
from grader.checks.numeric import as_array, compare


def _sigma(z: Any) -> Any:
    z = np.asarray(z, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -z))


def _loss(p: dict[str, Any]) -> float:
    a1 = _sigma(p["w1"] * p["x"] + p["b1"])
    z2 = p["w2"] * a1 + p["b2"]
    # −log σ(z2) and −log(1 − σ(z2)) computed stably.
    return float(p["y"] * np.logaddexp(0.0, -z2) + (1 - p["y"]) * np.logaddexp(0.0, z2))


def _batch_loss(p: dict[str, Any]) -> float:
    H = _sigma(p["X"] @ p["W1"] + p["b1"])
    z = H @ p["W2"] + p["b2"]
    return float(np.mean(p["Y"] * np.logaddexp(0.0, -z) + (1 - p["Y"]) * np.logaddexp(0.0, z)))


# --- question 3: sigmoid ---------------------------------------------------------------------


@check("3", 0.5)
def check_sigmoid_at_zero(sub: Any, record: Any) -> None:
    """sigmoid(0) is 0.5"""
    record.input("z", 0.0)
    got = sub.sigmoid(0.0)
    compare(got, 0.5, name="sigmoid(0.0)", scalar_ok=True)


@check("3", 0.5)
@given(z=st.lists(st.floats(-30, 30), min_size=1, max_size=8))
def check_sigmoid_symmetry(sub: Any, record: Any, z: list[float]) -> None:
    """sigmoid(−z) = 1 − sigmoid(z), elementwise on arrays"""
    arr = np.array(z)
    record.new_example()
    record.input("z", arr)
    left = as_array(sub.sigmoid(-arr), name="sigmoid(-z)", shape=arr.shape)
    right = as_array(sub.sigmoid(arr), name="sigmoid(z)", shape=arr.shape)
    compare(left, 1.0 - right, name="sigmoid(-z)", rtol=1e-9, atol=1e-12)


@check("3", 0.5)
def check_sigmoid_extremes(sub: Any, record: Any) -> None:
    """no overflow warning, NaN or inf for |z| up to 1000"""
    z = np.array([-1000.0, -710.0, -500.0, -40.0, 0.0, 40.0, 500.0, 710.0, 1000.0])
    record.input("z", z)
    out = sub.sigmoid.inspect(z)
    if "overflow" in out.stderr.lower() or "runtimewarning" in out.stderr.lower():
        raise CheckFailed(
            "sigmoid raised a warning for large |z|: " + out.stderr.strip().splitlines()[-1][:200],
            hint="exp(−z) overflows for z ≪ 0: use exp(z)/(1+exp(z)) there, or np.logaddexp",
        )
    compare(
        out.value,
        _sigma(z),
        name="sigmoid(z)",
        rtol=1e-9,
        atol=1e-12,
        hint="exp(−z) overflows for z ≪ 0: use exp(z)/(1+exp(z)) there, or np.logaddexp",
    )


@check("3", 0.5)
def check_sigmoid_float_and_array(sub: Any, record: Any, rng: Any) -> None:
    """works on a float and elementwise on a 2-d array"""
    z = rng.normal(size=(3, 4)) * 3
    record.input("z", z)
    compare(sub.sigmoid(1.5), _sigma(1.5), name="sigmoid(1.5)", scalar_ok=True)
    compare(sub.sigmoid(z), _sigma(z), name="sigmoid(z)")


# --- question 4: forward -----------------------------------------------------------------------

FORWARD_FINGERPRINT = ((0.5, 1.0, 0.0, -1.0, 0.2), (0.6224593312018546, 0.3959284038094198))


@check("4", 1)
def check_forward_fingerprint(sub: Any, record: Any) -> None:
    """forward matches known values at a fixed point"""
    args, (a1, a2) = FORWARD_FINGERPRINT
    for name, value in zip(("x", "w1", "b1", "w2", "b2"), args, strict=True):
        record.input(name, value)
    got = sub.forward(*args)
    if not isinstance(got, tuple | list) or len(got) != 2:
        raise CheckFailed("forward must return a pair (a1, a2)", actual=type(got).__name__)
    compare(got[0], a1, name="a1", scalar_ok=True)
    compare(got[1], a2, name="a2", scalar_ok=True)


# --- question 5: backward ----------------------------------------------------------------------

BACKWARD_HINTS = {
    "w1": "∂L/∂w1 = (a2 − y)·w2·a1(1 − a1)·x: check σ′(z1) = a1(1 − a1) and the factor x.",
    "b1": "∂L/∂b1 = (a2 − y)·w2·a1(1 − a1): check σ′(z1) = a1(1 − a1).",
    "w2": "∂L/∂w2 = (a2 − y)·a1: the error at the output times the input of that weight.",
    "b2": "∂L/∂b2 = a2 − y (the sigmoid and the cross-entropy combine; no extra a2(1 − a2)).",
}


@check("5", 4)
def check_backward_finite_differences(sub: Any, record: Any, rng: Any) -> None:
    """each gradient agrees with central finite differences of L (1 point per parameter)"""
    bad: set[str] = set()
    last_table = None
    first_failure: CheckFailed | None = None
    for trial in range(4):
        p = {
            "x": float(rng.normal()),
            "w1": float(rng.normal()),
            "b1": float(rng.normal()),
            "w2": float(rng.normal()),
            "b2": float(rng.normal()),
        }
        y = float(trial % 2)
        if trial == 0:
            for k, v in {**p, "y": y}.items():
                record.input(k, v)
        grads = sub.backward(p["x"], y, p["w1"], p["b1"], p["w2"], p["b2"])
        params = {k: p[k] for k in ("w1", "b1", "w2", "b2")}
        numeric = numeric_gradient(lambda q, p=p, y=y: _loss({**p, **q, "y": y}), params)
        try:
            last_table = check_gradients(grads, numeric, name="backward(...)", hints=BACKWARD_HINTS)
        except CheckFailed as exc:
            table = next((d for d in exc.details if d.type == "gradient_table"), None)
            if table is None:  # wrong type, keys or shape: nothing earns a point
                raise
            bad |= {r.parameter for r in table.rows if not r.ok}
            first_failure = first_failure or exc
    if first_failure is not None:
        first_failure.credit = (4 - len(bad)) / 4
        raise first_failure
    if last_table is not None:
        record.detail(last_table)


# --- question 6: backward_batch ---------------------------------------------------------------


def _batch_case(rng: Any, n: int, d: int, h: int) -> dict[str, Any]:
    return {
        "X": rng.normal(size=(n, d)),
        "Y": (rng.random(n) < 0.5).astype(float),
        "W1": rng.normal(size=(d, h)),
        "b1": rng.normal(size=h),
        "W2": rng.normal(size=h),
        "b2": float(rng.normal()),
    }


def _check_batch(sub: Any, record: Any, case: dict[str, Any]) -> None:
    for k, v in case.items():
        record.input(k, v)
    grads = sub.backward_batch(case["X"], case["Y"], case["W1"], case["b1"], case["W2"], case["b2"])
    params = {k: case[k] for k in ("W1", "b1", "W2", "b2")}
    numeric = numeric_gradient(lambda q: _batch_loss({**case, **q}), params)
    table = check_gradients(
        grads,
        numeric,
        name="backward_batch(...)",
        hints={
            "W1": "dW1 = Xᵀ[(dz2 ⊗ W2) ⊙ H(1 − H)]; remember the 1/n of the mean.",
            "W2": "dW2 = Hᵀ dz2 with dz2 = (ŷ − Y)/n.",
            "b1": "db1 sums dz1 over the batch (axis 0).",
            "b2": "db2 = Σ (ŷ − Y)/n, a float.",
        },
    )
    record.detail(table)


@check("6", 2)
def check_backward_batch_small(sub: Any, record: Any, rng: Any) -> None:
    """gradients agree with finite differences of the mean loss (n=5, d=3, h=4)"""
    _check_batch(sub, record, _batch_case(rng, 5, 3, 4))


@check("6", 2)
def check_backward_batch_other_shapes(sub: Any, record: Any, rng: Any) -> None:
    """gradients agree with finite differences for other shapes (n=7, d=2, h=3; n=1, d=4, h=2)"""
    _check_batch(sub, record, _batch_case(rng, 7, 2, 3))
    _check_batch(sub, record, _batch_case(rng, 1, 4, 2))
