# Common mistakes: sgd_step updates the caller's params in place (question 1), Adam without
# bias correction (question 4), and minimize running one step too many (question 6).
import numpy as np

__assignment__ = "update-rules"

answer_2 = """The learning rate is how big each step is. If it is too big the loss jumps around."""


def sgd_step(params, grads, lr):
    for k in params:
        params[k] -= lr * grads[k]
    return params


def momentum_step(params, grads, velocity, lr, beta):
    v = {k: beta * velocity.get(k, 0.0) + grads[k] for k in params}
    return {k: params[k] - lr * v[k] for k in params}, v


def adam_step(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    m = {k: beta1 * state.get("m", {}).get(k, 0.0) + (1 - beta1) * grads[k] for k in params}
    v = {k: beta2 * state.get("v", {}).get(k, 0.0) + (1 - beta2) * grads[k] ** 2 for k in params}
    new = {k: params[k] - lr * m[k] / (np.sqrt(v[k]) + eps) for k in params}
    return new, {"m": m, "v": v, "t": state.get("t", 0) + 1}


def perceptron_update(w, b, x, y, lr):
    y_hat = 1 if np.dot(w, x) + b >= 0 else 0
    return w + lr * (y - y_hat) * x, b + lr * (y - y_hat)


def minimize(grad_fn, theta0, lr, n_steps):
    theta = theta0
    for _ in range(n_steps + 1):
        theta = theta - lr * grad_fn(theta)
    return theta
