# loses: 5
# Mutant of normal-equation: 2λ on the diagonal (the gradient of λ‖β‖² without the ½ of J).
import numpy as np

__assignment__ = "normal-equation"


def normal_equation(X, y):
    XtX = X.T @ X
    return np.linalg.solve(XtX, X.T @ y)


def ridge(X, y, lam):
    p = X.shape[1]
    return np.linalg.solve(X.T @ X + 2 * lam * np.eye(p), X.T @ y)


def gradient_descent(X, y, lr, n_iters, beta0=None):
    if beta0 is None:
        beta = np.zeros(X.shape[1])
    else:
        beta = np.array(beta0, dtype=float)
    for _ in range(n_iters):
        grad = X.T @ (X @ beta - y)
        beta = beta - lr * grad
    return beta
