# A correct normal-equation submission written with explicit loops and column vectors:
# every function returns β of shape (p, 1), which the question accepts.
import numpy as np

__assignment__ = "normal-equation"


def _gram(X):
    n, p = X.shape
    G = np.zeros((p, p))
    for i in range(p):
        for j in range(p):
            total = 0.0
            for k in range(n):
                total += X[k, i] * X[k, j]
            G[i, j] = total
    return G


def _xty(X, y):
    n, p = X.shape
    out = np.zeros((p, 1))
    for j in range(p):
        for k in range(n):
            out[j, 0] += X[k, j] * y[k]
    return out


def normal_equation(X, y):
    return np.linalg.inv(_gram(X)) @ _xty(X, y)


def ridge(X, y, lam):
    G = _gram(X)
    for j in range(G.shape[0]):
        G[j, j] += lam
    return np.linalg.solve(G, _xty(X, y))


def gradient_descent(X, y, lr, n_iters, beta0=None):
    p = X.shape[1]
    beta = np.zeros((p, 1)) if beta0 is None else np.reshape(beta0, (p, 1)).astype(float)
    y_col = np.reshape(y, (-1, 1))
    for _ in range(n_iters):
        residual = X @ beta - y_col
        beta = beta - lr * (X.T @ residual)
    return beta


# %% [markdown]
# **Answer 2**
#
# $$
# \begin{aligned}
# J(\beta) &= \frac{1}{2} (y - X\beta)^\top (y - X\beta) \\
# &= \frac{1}{2} \left(y^\top y - 2\beta^\top X^\top y + \beta^\top X^\top X \beta\right) \\
# \nabla_\beta J &= X^\top X\beta - X^\top y = 0 \\
# \beta &= (X^\top X)^{-1} X^\top y
# \end{aligned}
# $$

# %% [markdown]
# **Answer 3**
#
# $\nabla_\beta J(\beta) = X^\top X\beta - X^\top y$

# %%
answer_1 = """Linear regression assumes the target depends linearly on the features, y ≈ Xβ. We pick
β to minimise the sum of squared errors ‖y − Xβ‖² (least squares), and then use the fitted
coefficients to predict y for new inputs we have not seen."""

answer_7 = """Forming XᵀX costs O(np²) and inverting it O(p³), which is too expensive with many
features; XᵀX may also be singular or badly conditioned, which makes the direct solution
numerically unstable. Gradient descent and SGD only touch the data a batch at a time, so they
scale to huge or streaming datasets and also work for models without a closed-form solution."""

if __name__ == "__main__":
    X = np.random.default_rng(0).normal(size=(10, 3))
    print(normal_equation(X, X @ np.ones(3)).ravel())
