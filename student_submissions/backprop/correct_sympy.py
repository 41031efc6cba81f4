# A correct backprop submission: the gradients of question 2 as SymPy expressions (named
# variables), the code vectorised with np.where and scipy-free stable formulas.
import numpy as np
import sympy as sp

__assignment__ = "backprop"

x, y, w1, b1, w2, b2 = sp.symbols("x y w1 b1 w2 b2")
a1 = 1 / (1 + sp.exp(-(w1 * x + b1)))
a2 = 1 / (1 + sp.exp(-(w2 * a1 + b2)))

dL_dw2 = (a2 - y) * a1
dL_db2 = a2 - y
dL_dw1 = (a2 - y) * w2 * a1 * (1 - a1) * x
dL_db1 = (a2 - y) * w2 * a1 * (1 - a1)

answer_1 = """Going backwards through the network, the chain rule is applied one layer at a time and
the error term computed for a layer is reused for every layer below it, never recomputed. We
do one forward pass (keeping the activations) and one backward pass, which together cost about
as much as two forward passes, and get the gradient of every parameter; numerical
differentiation would need a separate forward pass per parameter. Each parameter's gradient is
the error term of its layer times the input that parameter multiplies."""


def sigmoid(z):
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))
    out = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
    return out[()] if out.ndim == 0 else out


def forward(x, w1, b1, w2, b2):
    a1 = sigmoid(np.multiply(w1, x) + b1)
    return a1, sigmoid(w2 * a1 + b2)


def backward(x, y, w1, b1, w2, b2):
    a1, a2 = forward(x, w1, b1, w2, b2)
    delta2 = a2 - y
    delta1 = delta2 * w2 * a1 * (1 - a1)
    return dict(w1=delta1 * x, b1=delta1, w2=delta2 * a1, b2=delta2)


def backward_batch(X, Y, W1, b1, W2, b2):
    H = sigmoid(X @ W1 + b1)
    err = (sigmoid(H @ W2 + b2) - Y) / len(Y)
    dZ1 = err[:, None] * W2[None, :] * H * (1 - H)
    return {"W1": np.einsum("ni,nj->ij", X, dZ1), "b1": dZ1.sum(0),
            "W2": np.einsum("n,nj->j", err, H), "b2": float(err.sum())}
