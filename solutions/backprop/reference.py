"""Reference implementation of the backprop assignment (private: never shown to students)."""

from __future__ import annotations

from typing import Any

import numpy as np


def sigmoid(z: Any) -> Any:
    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out if out.ndim else float(out)


def forward(x: Any, w1: float, b1: float, w2: float, b2: float) -> tuple[Any, Any]:
    a1 = sigmoid(np.multiply(w1, x) + b1)
    a2 = sigmoid(np.multiply(w2, a1) + b2)
    return a1, a2


def loss(x: float, y: float, w1: float, b1: float, w2: float, b2: float) -> float:
    _, a2 = forward(x, w1, b1, w2, b2)
    return float(-(y * np.log(a2) + (1 - y) * np.log(1 - a2)))


def backward(x: float, y: float, w1: float, b1: float, w2: float, b2: float) -> dict[str, float]:
    a1, a2 = forward(x, w1, b1, w2, b2)
    dz2 = a2 - y
    dz1 = dz2 * w2 * a1 * (1 - a1)
    return {"w2": float(dz2 * a1), "b2": float(dz2), "w1": float(dz1 * x), "b1": float(dz1)}


def batch_loss(X: Any, Y: Any, W1: Any, b1: Any, W2: Any, b2: float) -> float:
    H = sigmoid(X @ W1 + b1)
    p = sigmoid(H @ W2 + b2)
    return float(-np.mean(Y * np.log(p) + (1 - Y) * np.log(1 - p)))


def backward_batch(X: Any, Y: Any, W1: Any, b1: Any, W2: Any, b2: float) -> dict[str, Any]:
    n = X.shape[0]
    H = sigmoid(X @ W1 + b1)
    p = sigmoid(H @ W2 + b2)
    dz2 = (p - Y) / n
    dH = np.outer(dz2, W2)
    dz1 = dH * H * (1 - H)
    return {"W1": X.T @ dz1, "b1": dz1.sum(axis=0), "W2": H.T @ dz2, "b2": float(dz2.sum())}
