# Common mistakes: the transpose dropped in the normal equation, λ added to every entry of
# XᵀX in ridge, and the mean gradient (1/n) in gradient descent. Sign error in the gradient.
import numpy as np

__assignment__ = "normal-equation"

answer_3 = "X.T @ (y - X @ beta)"


def normal_equation(X, y):
    return np.linalg.inv(X.T @ X) @ X @ y


def ridge(X, y, lam):
    return np.linalg.solve(X.T @ X + lam, X.T @ y)


def gradient_descent(X, y, lr, n_iters, beta0=None):
    n, p = X.shape
    beta = np.zeros(p) if beta0 is None else beta0
    for _ in range(n_iters):
        beta = beta - lr / n * X.T @ (X @ beta - y)
    return beta
