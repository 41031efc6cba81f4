# A correct update-rules submission with explicit loops and copies; floats and arrays are
# handled alike through np.asarray, and the optimiser states are rebuilt, never mutated.
import copy

import numpy as np

__assignment__ = "update-rules"


def sgd_step(params, grads, lr):
    new = {}
    for name in params:
        new[name] = np.asarray(params[name]) - lr * np.asarray(grads[name])
    return new


def momentum_step(params, grads, velocity, lr, beta):
    velocity = copy.deepcopy(velocity)
    params = copy.deepcopy(params)
    for name in params:
        if name not in velocity:
            velocity[name] = np.zeros_like(np.asarray(grads[name], dtype=float))
        velocity[name] = beta * velocity[name] + grads[name]
        params[name] = params[name] - lr * velocity[name]
    return params, velocity


def adam_step(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    if not state:
        state = {"m": {}, "v": {}, "t": 0}
    t = state["t"] + 1
    m, v, new_params = dict(state["m"]), dict(state["v"]), {}
    for name, theta in params.items():
        g = np.asarray(grads[name], dtype=float)
        m[name] = beta1 * m.get(name, np.zeros_like(g)) + (1 - beta1) * g
        v[name] = beta2 * v.get(name, np.zeros_like(g)) + (1 - beta2) * g * g
        m_hat = m[name] / (1 - beta1**t)
        v_hat = v[name] / (1 - beta2**t)
        new_params[name] = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return new_params, {"m": m, "v": v, "t": t}


def perceptron_update(w, b, x, y, lr):
    activation = b
    for wi, xi in zip(w, x):
        activation += wi * xi
    y_hat = 1 if activation >= 0 else 0
    new_w = [wi + lr * (y - y_hat) * xi for wi, xi in zip(w, x)]
    return np.array(new_w), b + lr * (y - y_hat)


def minimize(grad_fn, theta0, lr, n_steps):
    theta = np.array(theta0, dtype=float)
    step = 0
    while step < n_steps:
        theta = theta - lr * np.asarray(grad_fn(theta))
        step += 1
    return theta
