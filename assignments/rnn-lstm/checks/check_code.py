"""Public checks of the rnn-lstm code questions (3–5): fingerprints, consistency, gradients.

These need no reference solution: fingerprints are known values at fixed small inputs,
`rnn_forward` must agree with the student's own `rnn_step`, and `rnn_backward` is checked
against central finite differences of the loss L = Σ_t ⟨dhs[t], hs[t]⟩ computed here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grader import CheckFailed, check
from grader.checks.gradcheck import check_gradients, numeric_gradient
from grader.checks.numeric import as_array, compare


def _forward(p: dict[str, Any]) -> Any:
    h = p["h0"]
    hs = []
    for x_t in p["xs"]:
        h = np.tanh(p["Wx"] @ x_t + p["Wh"] @ h + p["b"])
        hs.append(h)
    return np.array(hs)


def _loss(p: dict[str, Any]) -> float:
    return float(np.sum(p["dhs"] * _forward(p)))


def _rnn_case(rng: Any, T: int, d: int, h: int) -> dict[str, Any]:
    return {
        "xs": rng.normal(size=(T, d)),
        "h0": rng.normal(size=h) * 0.5,
        "Wx": rng.normal(size=(h, d)) * 0.6,
        "Wh": rng.normal(size=(h, h)) * 0.6,
        "b": rng.normal(size=h) * 0.3,
        "dhs": rng.normal(size=(T, h)),
    }


# --- question 3: rnn_step and rnn_forward ----------------------------------------------------

STEP_CASE = {
    "x_t": np.array([0.5, -1.0]),
    "h_prev": np.array([0.1, -0.2]),
    "Wx": np.array([[0.3, -0.1], [0.2, 0.4]]),
    "Wh": np.array([[0.5, 0.0], [-0.3, 0.8]]),
    "b": np.array([0.05, -0.1]),
}
STEP_FINGERPRINT = np.array([0.3363755443363322, -0.5298956075275294])


@check("3", 0.75)
def check_rnn_step_fingerprint(sub: Any, record: Any) -> None:
    """rnn_step matches known values at a fixed point"""
    for name, value in STEP_CASE.items():
        record.input(name, value)
    compare(
        sub.rnn_step(*STEP_CASE.values()),
        STEP_FINGERPRINT,
        name="rnn_step(...)",
        hint="h_t = tanh(Wx @ x_t + Wh @ h_prev + b): Wx multiplies the input, Wh the "
        "previous state",
    )


@check("3", 0.75)
def check_rnn_forward_repeats_step(sub: Any, record: Any, rng: Any) -> None:
    """rnn_forward returns h_1 … h_T, shape (T, h), equal to repeated rnn_step"""
    for T, d, h in ((5, 3, 2), (1, 2, 3)):
        case = _rnn_case(rng, T, d, h)
        if T == 5:
            for name in ("xs", "h0", "Wx", "Wh", "b"):
                record.input(name, case[name])
        args = (case["Wx"], case["Wh"], case["b"])
        hs = as_array(
            sub.rnn_forward(case["xs"], case["h0"], *args),
            name=f"rnn_forward(...) for T={T}",
            shape=(T, h),
        )
        state = case["h0"]
        for t in range(T):
            state = as_array(
                sub.rnn_step(case["xs"][t], state, *args), name=f"rnn_step at t={t + 1}", shape=(h,)
            )
            compare(
                hs[t],
                state,
                name=f"rnn_forward(...)[{t}] (h_{t + 1})",
                rtol=1e-9,
                hint="hs[t] is the state after reading xs[t] (h_1 … h_T, not h_0), each "
                "step starting from the previous step's state",
            )


# --- question 4: rnn_backward ----------------------------------------------------------------

BACKWARD_HINTS = {
    "Wx": "dWx = Σ_t δ_t x_tᵀ with δ_t = (dhs[t] + dh_next) ⊙ (1 − h_t²).",
    "Wh": "dWh = Σ_t δ_t h_{t−1}ᵀ: the previous state (h0 at t = 1), not h_t.",
    "b": "db = Σ_t δ_t.",
    "h0": "dh0 = Whᵀ δ_1: the gradient that flows out of the first step.",
}
KEYS = ("Wx", "Wh", "b", "h0")


def _check_backward(sub: Any, case: dict[str, Any], name: str) -> Any:
    grads = sub.rnn_backward(case["xs"], case["h0"], case["Wx"], case["Wh"], case["b"], case["dhs"])
    numeric = numeric_gradient(lambda q: _loss({**case, **q}), {k: case[k] for k in KEYS})
    return check_gradients(grads, numeric, name=name, hints=BACKWARD_HINTS)


@check("4", 2)
def check_rnn_backward_finite_differences(sub: Any, record: Any, rng: Any) -> None:
    """each gradient agrees with finite differences (T=4, d=3, h=2; ½ point per parameter)"""
    case = _rnn_case(rng, 4, 3, 2)
    for name, value in case.items():
        record.input(name, value)
    try:
        record.detail(_check_backward(sub, case, "rnn_backward(...)"))
    except CheckFailed as exc:
        table = next((d for d in exc.details if d.type == "gradient_table"), None)
        if table is not None:
            exc.credit = sum(r.ok for r in table.rows) / len(table.rows)
        raise


@check("4", 1)
def check_rnn_backward_other_shapes(sub: Any, record: Any, rng: Any) -> None:
    """gradients agree with finite differences for T=1 and for a longer sequence (T=7)"""
    for T, d, h in ((1, 2, 3), (7, 1, 4)):
        case = _rnn_case(rng, T, d, h)
        record.input("shapes", f"T={T}, d={d}, h={h}")
        record.detail(_check_backward(sub, case, f"rnn_backward(...) with T={T}"))


# --- question 5: lstm_step -------------------------------------------------------------------


def _lstm_case() -> dict[str, Any]:
    return {
        "x_t": np.array([0.5, -1.0]),
        "h_prev": np.array([0.1, -0.2]),
        "c_prev": np.array([0.5, -0.25]),
        "W": np.arange(32, dtype=float).reshape(8, 4) / 40 - 0.4,
        "b": np.array([0.1, -0.1, 0.2, 0.0, -0.2, 0.3, 0.05, -0.05]),
    }


LSTM_FINGERPRINT = (
    np.array([0.09776673185768514, -0.139597946883282]),
    np.array([0.2251622083082532, -0.258958409079883]),
)
LSTM_HINT = (
    "z = W @ concat([x_t, h_prev]) + b, split in the order i, f, o, g; i, f, o = σ(·), "
    "g = tanh(·); c_t = f⊙c_prev + i⊙g; h_t = o⊙tanh(c_t)"
)


def _lstm_pair(got: Any) -> tuple[Any, Any]:
    if not isinstance(got, tuple | list) or len(got) != 2:
        raise CheckFailed("lstm_step must return a pair (h_t, c_t)", actual=type(got).__name__)
    return got[0], got[1]


@check("5", 1)
def check_lstm_fingerprint(sub: Any, record: Any) -> None:
    """lstm_step matches known values at a fixed point"""
    case = _lstm_case()
    for name, value in case.items():
        record.input(name, value)
    h_t, c_t = _lstm_pair(sub.lstm_step(*case.values()))
    compare(c_t, LSTM_FINGERPRINT[1], name="c_t", hint=LSTM_HINT)
    compare(h_t, LSTM_FINGERPRINT[0], name="h_t", hint=LSTM_HINT)


@check("5", 1)
def check_lstm_forget_gate_keeps_cell(sub: Any, record: Any, rng: Any) -> None:
    """a forget bias of +50 with an input bias of −50 keeps c_t ≈ c_prev"""
    d, h = 3, 4
    W = rng.normal(size=(4 * h, d + h)) * 0.5
    b = np.zeros(4 * h)
    b[:h], b[h : 2 * h] = -50.0, 50.0
    x_t, h_prev, c_prev = rng.normal(size=d), rng.normal(size=h), rng.normal(size=h) * 2
    for name, value in (("W", W), ("b", b), ("c_prev", c_prev)):
        record.input(name, value)
    h_t, c_t = _lstm_pair(sub.lstm_step(x_t, h_prev, c_prev, W, b))
    compare(
        c_t,
        c_prev,
        name="c_t with the forget gate open and the input gate shut",
        rtol=1e-9,
        atol=1e-12,
        hint="the first h rows of z are the input gate i, the next h the forget gate f; "
        "c_t = f⊙c_prev + i⊙g",
    )
    as_array(h_t, name="h_t", shape=(h,))
