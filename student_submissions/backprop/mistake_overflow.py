# Common mistakes: the naive sigmoid 1/(1 + exp(−z)), which overflows for z ≪ 0 (question 3),
# an extra a2(1 − a2) at the output (question 5), and the summed instead of the mean loss in
# the batch version (question 6). Question 2's ∂L/∂w1 misses the factor x.
import numpy as np

__assignment__ = "backprop"

answer_2 = """
dL/dw2 = (a2 - y)*a1
dL/db2 = (a2 - y)
dL/dw1 = (a2 - y)*w2*a1*(1 - a1)
dL/db1 = (a2 - y)*w2*a1*(1 - a1)
"""


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def forward(x, w1, b1, w2, b2):
    a1 = sigmoid(w1 * x + b1)
    a2 = sigmoid(w2 * a1 + b2)
    return a1, a2


def backward(x, y, w1, b1, w2, b2):
    a1, a2 = forward(x, w1, b1, w2, b2)
    dz2 = (a2 - y) * a2 * (1 - a2)
    dz1 = dz2 * w2 * a1 * (1 - a1)
    return {"w1": dz1 * x, "b1": dz1, "w2": dz2 * a1, "b2": dz2}


def backward_batch(X, Y, W1, b1, W2, b2):
    H = sigmoid(X @ W1 + b1)
    p = sigmoid(H @ W2 + b2)
    dz2 = p - Y
    dz1 = np.outer(dz2, W2) * H * (1 - H)
    return {"W1": X.T @ dz1, "b1": dz1.sum(axis=0), "W2": H.T @ dz2, "b2": dz2.sum()}
