"""Reference implementation of the rnn-lstm assignment (private: never shown to students)."""

from __future__ import annotations

from typing import Any

import numpy as np


def rnn_step(x_t: Any, h_prev: Any, Wx: Any, Wh: Any, b: Any) -> Any:
    return np.tanh(Wx @ x_t + Wh @ h_prev + b)


def rnn_forward(xs: Any, h0: Any, Wx: Any, Wh: Any, b: Any) -> Any:
    hs = np.empty((len(xs), len(h0)))
    h = np.asarray(h0, dtype=np.float64)
    for t, x_t in enumerate(xs):
        h = rnn_step(x_t, h, Wx, Wh, b)
        hs[t] = h
    return hs


def rnn_backward(xs: Any, h0: Any, Wx: Any, Wh: Any, b: Any, dhs: Any) -> dict[str, Any]:
    hs = rnn_forward(xs, h0, Wx, Wh, b)
    grads = {
        "Wx": np.zeros_like(Wx, dtype=np.float64),
        "Wh": np.zeros_like(Wh, dtype=np.float64),
        "b": np.zeros_like(b, dtype=np.float64),
    }
    dh_next = np.zeros(len(h0))
    for t in reversed(range(len(xs))):
        h_prev = hs[t - 1] if t > 0 else np.asarray(h0, dtype=np.float64)
        dz = (dhs[t] + dh_next) * (1 - hs[t] ** 2)  # through tanh
        grads["Wx"] += np.outer(dz, xs[t])
        grads["Wh"] += np.outer(dz, h_prev)
        grads["b"] += dz
        dh_next = Wh.T @ dz
    grads["h0"] = dh_next
    return grads


def _sigmoid(z: Any) -> Any:
    return np.exp(-np.logaddexp(0.0, -z))


def lstm_step(x_t: Any, h_prev: Any, c_prev: Any, W: Any, b: Any) -> tuple[Any, Any]:
    h = len(h_prev)
    z = W @ np.concatenate([x_t, h_prev]) + b
    i, f, o = _sigmoid(z[:h]), _sigmoid(z[h : 2 * h]), _sigmoid(z[2 * h : 3 * h])
    g = np.tanh(z[3 * h :])
    c_t = f * c_prev + i * g
    return o * np.tanh(c_t), c_t
