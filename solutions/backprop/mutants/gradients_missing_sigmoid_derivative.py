# loses: 2
# Mutant of backprop: ∂L/∂w1 and ∂L/∂b1 without a1(1 − a1) (code correct).
import numpy as np

__assignment__ = "backprop"


def sigmoid(z):
    z = np.asarray(z, dtype=float)
    out = np.exp(-np.logaddexp(0.0, -z))
    return float(out) if out.ndim == 0 else out


def forward(x, w1, b1, w2, b2):
    a1 = sigmoid(w1 * np.asarray(x) + b1)
    a2 = sigmoid(w2 * a1 + b2)
    return a1, a2


def backward(x, y, w1, b1, w2, b2):
    a1, a2 = forward(x, w1, b1, w2, b2)
    dz2 = a2 - y
    dz1 = dz2 * w2 * a1 * (1 - a1)
    return {"w2": dz2 * a1, "b2": dz2, "w1": dz1 * x, "b1": dz1}


def backward_batch(X, Y, W1, b1, W2, b2):
    n = X.shape[0]
    H = sigmoid(X @ W1 + b1)
    p = sigmoid(H @ W2 + b2)
    dz2 = (p - Y) / n
    dz1 = np.outer(dz2, W2) * H * (1 - H)
    return {"W1": X.T @ dz1, "b1": dz1.sum(axis=0), "W2": H.T @ dz2, "b2": dz2.sum()}


# %%
dL_dw2 = "(a2 - y)*a1"
dL_db2 = "a2 - y"
dL_dw1 = "(a2 - y)*w2*x"
dL_db1 = "(a2 - y)*w2"
