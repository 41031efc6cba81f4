"""Reference implementation of the update-rules assignment (private: never shown to students)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _as_float(value: Any) -> Any:
    # Floats stay floats and arrays stay float64 arrays, so the results look like the inputs.
    arr = np.asarray(value, dtype=np.float64)
    return float(arr) if arr.ndim == 0 else arr


def sgd_step(params: dict[str, Any], grads: dict[str, Any], lr: float) -> dict[str, Any]:
    return {k: _as_float(np.asarray(v) - lr * np.asarray(grads[k])) for k, v in params.items()}


def momentum_step(
    params: dict[str, Any], grads: dict[str, Any], velocity: dict[str, Any], lr: float, beta: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    new_params, new_velocity = {}, {}
    for k, theta in params.items():
        v = beta * np.asarray(velocity.get(k, 0.0)) + np.asarray(grads[k])
        new_velocity[k] = _as_float(v)
        new_params[k] = _as_float(np.asarray(theta) - lr * v)
    return new_params, new_velocity


def adam_step(
    params: dict[str, Any],
    grads: dict[str, Any],
    state: dict[str, Any],
    lr: float = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> tuple[dict[str, Any], dict[str, Any]]:
    t = int(state.get("t", 0)) + 1
    m_old, v_old = state.get("m", {}), state.get("v", {})
    m, v, new_params = {}, {}, {}
    for k, theta in params.items():
        g = np.asarray(grads[k], dtype=np.float64)
        mk = beta1 * np.asarray(m_old.get(k, 0.0)) + (1 - beta1) * g
        vk = beta2 * np.asarray(v_old.get(k, 0.0)) + (1 - beta2) * g * g
        m_hat = mk / (1 - beta1**t)
        v_hat = vk / (1 - beta2**t)
        new_params[k] = _as_float(np.asarray(theta) - lr * m_hat / (np.sqrt(v_hat) + eps))
        m[k], v[k] = _as_float(mk), _as_float(vk)
    return new_params, {"m": m, "v": v, "t": t}


def perceptron_update(w: Any, b: float, x: Any, y: float, lr: float) -> tuple[Any, float]:
    w = np.asarray(w, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    y_hat = 1.0 if float(w @ x) + b >= 0 else 0.0
    return w + lr * (y - y_hat) * x, float(b + lr * (y - y_hat))


def minimize(grad_fn: Callable[[Any], Any], theta0: Any, lr: float, n_steps: int) -> Any:
    theta = np.array(theta0, dtype=np.float64)
    for _ in range(n_steps):
        theta = theta - lr * np.asarray(grad_fn(theta))
    return theta
