# loses: 3
# Mutant of update-rules: v ← β·v + (1 − β)·g (an exponential average) instead of β·v + g.
import numpy as np

__assignment__ = "update-rules"


def sgd_step(params, grads, lr):
    return {k: params[k] - lr * grads[k] for k in params}


def momentum_step(params, grads, velocity, lr, beta):
    new_params, new_velocity = {}, {}
    for k in params:
        v = beta * velocity.get(k, 0.0) + (1 - beta) * grads[k]
        new_velocity[k] = v
        new_params[k] = params[k] - lr * v
    return new_params, new_velocity


def adam_step(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    t = state.get("t", 0) + 1
    m_old, v_old = state.get("m", {}), state.get("v", {})
    m, v, new_params = {}, {}, {}
    for k in params:
        g = grads[k]
        m[k] = beta1 * m_old.get(k, 0.0) + (1 - beta1) * g
        v[k] = beta2 * v_old.get(k, 0.0) + (1 - beta2) * g**2
        m_hat = m[k] / (1 - beta1**t)
        v_hat = v[k] / (1 - beta2**t)
        new_params[k] = params[k] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return new_params, {"m": m, "v": v, "t": t}


def perceptron_update(w, b, x, y, lr):
    y_hat = 1 if np.dot(w, x) + b >= 0 else 0
    return w + lr * (y - y_hat) * x, b + lr * (y - y_hat)


def minimize(grad_fn, theta0, lr, n_steps):
    theta = np.array(theta0, dtype=float)
    for _ in range(n_steps):
        theta = theta - lr * grad_fn(theta)
    return theta
