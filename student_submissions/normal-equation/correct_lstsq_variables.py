# A correct normal-equation submission using library solvers (lstsq, pinv), answers as
# module variables, and the derivation as a list of steps.
import numpy as np
from numpy.linalg import lstsq, pinv

__assignment__ = "normal-equation"

answer_3 = "X.T*X*beta - X.T*y"

answer_2 = [
    r"J(\beta) = \frac{1}{2}(y - X\beta)^T (y - X\beta)",
    r"J(\beta) = \frac{1}{2}(y^T y - 2 y^T X\beta + \beta^T X^T X\beta)",
    r"\nabla J(\beta) = -X^T y + X^T X\beta",
    r"X^T X\beta = X^T y",
    r"\beta = (X^T X)^{-1} X^T y",
]


def normal_equation(X, y):
    beta, *_ = lstsq(X, y, rcond=None)
    return beta


def ridge(X, y, lam):
    # Augmenting X with √λ·I turns ridge into ordinary least squares.
    p = X.shape[1]
    X_aug = np.vstack([X, np.sqrt(lam) * np.eye(p)])
    y_aug = np.concatenate([y, np.zeros(p)])
    return pinv(X_aug) @ y_aug


def gradient_descent(X, y, lr, n_iters, beta0=None):
    beta = np.zeros(X.shape[1]) if beta0 is None else beta0.copy()
    XtX, Xty = X.T @ X, X.T @ y
    for _ in range(n_iters):
        beta -= lr * (XtX @ beta - Xty)
    return beta
