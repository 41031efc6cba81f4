"""Public checks of the normal-equation code questions (4–6): properties and fingerprints.

These need no reference solution: least squares is characterised by its residual being
orthogonal to the columns of X, ridge by its first-order condition, and one gradient-descent
step by the formula the question gives. Results of shape (p,) and (p, 1) are both accepted.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from grader import CheckFailed, check
from grader.checks.numeric import as_array, compare

RTOL = 1e-6


def _tall(rng: Any, n: int, p: int) -> Any:
    """A well-conditioned random design matrix (cond(X) stays small for n ≫ p)."""
    return rng.normal(size=(n, p)) + np.eye(n, p) * 2.0


def _lstsq(X: Any, y: Any) -> Any:
    return np.linalg.lstsq(X, y, rcond=None)[0]


def _record(record: Any, **values: Any) -> None:
    for name, value in values.items():
        record.input(name, value)


# --- question 4: normal_equation --------------------------------------------------------------


@check("4", 1)
def check_normal_equation_exact_recovery(sub: Any, record: Any, rng: Any) -> None:
    """recovers β* exactly when y = Xβ* (no noise)"""
    X = _tall(rng, 8, 3)
    beta_star = np.array([1.5, -2.0, 0.25])
    y = X @ beta_star
    _record(record, X=X, y=y)
    got = sub.normal_equation(X, y)
    compare(
        got,
        beta_star,
        name="normal_equation(X, X @ [1.5, -2, 0.25])",
        rtol=RTOL,
        atol=1e-9,
        column_ok=True,
        hint="β̂ = (XᵀX)⁻¹Xᵀy: check the transposes and the order of the products.",
    )


@check("4", 0.75)
def check_normal_equation_residual_orthogonal(sub: Any, record: Any, rng: Any) -> None:
    """the residual y − Xβ̂ is orthogonal to every column of X"""
    for n, p in ((20, 4), (6, 5)):
        X = _tall(rng, n, p)
        y = rng.normal(size=n) * 3
        if n == 20:
            _record(record, X=X, y=y)
        beta = as_array(
            sub.normal_equation(X, y), name="normal_equation(X, y)", shape=(p,), column_ok=True
        )
        gradient = X.T @ (y - X @ beta)
        scale = np.linalg.norm(X) * (np.linalg.norm(y) + np.linalg.norm(X) * np.linalg.norm(beta))
        worst = float(np.max(np.abs(gradient)))
        if worst > 1e-9 * scale:
            raise CheckFailed(
                f"Xᵀ(y − Xβ̂) should be 0 for the least-squares β̂, but an entry is {worst:.3g} "
                f"(X of shape {X.shape})",
                expected="Xᵀ(y − Xβ̂) ≈ 0",
                actual=np.array2string(gradient, precision=4),
                hint="β̂ solves the normal equation XᵀXβ = Xᵀy.",
            )


@check("4", 0.5)
def check_normal_equation_inputs_unchanged(sub: Any, record: Any, rng: Any) -> None:
    """does not modify X or y"""
    X = _tall(rng, 7, 3)
    y = rng.normal(size=7)
    _record(record, X=X, y=y)
    out = sub.normal_equation.inspect(X.copy(), y.copy())
    after = out.args_after or []
    for name, before, now in zip(("X", "y"), (X, y), after, strict=False):
        if (
            not isinstance(now, np.ndarray)
            or now.shape != before.shape
            or not np.array_equal(now, before)
        ):
            raise CheckFailed(
                f"normal_equation changed its argument {name}",
                hint="work on a copy (X = X.copy()) or avoid in-place operations "
                "such as -=, /= on the arguments",
            )


# --- question 5: ridge ------------------------------------------------------------------------


@check("5", 0.5)
def check_ridge_lambda_zero(sub: Any, record: Any, rng: Any) -> None:
    """ridge with lam=0 equals the least-squares solution"""
    X = _tall(rng, 12, 3)
    y = rng.normal(size=12)
    _record(record, X=X, y=y, lam=0.0)
    compare(
        sub.ridge(X, y, 0.0),
        _lstsq(X, y),
        name="ridge(X, y, 0)",
        rtol=RTOL,
        atol=1e-9,
        column_ok=True,
    )


@check("5", 0.5)
def check_ridge_shrinks(sub: Any, record: Any, rng: Any) -> None:
    """‖β‖ shrinks as lam grows"""
    X = _tall(rng, 15, 4)
    y = rng.normal(size=15) + 2
    lams = [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]
    _record(record, X=X, y=y, lam=lams)
    norms = []
    for lam in lams:
        beta = as_array(
            sub.ridge(X, y, lam), name=f"ridge(X, y, {lam:g})", shape=(4,), column_ok=True
        )
        norms.append(float(np.linalg.norm(beta)))
    if not all(b < a for a, b in itertools.pairwise(norms)) or norms[-1] > 0.5 * norms[0]:
        raise CheckFailed(
            "‖β‖ should shrink as lam grows, but for lam = "
            + ", ".join(f"{lam:g}" for lam in lams)
            + " it is "
            + ", ".join(f"{v:.4g}" for v in norms),
            hint="the penalty adds λ to the diagonal of XᵀX: (XᵀX + λI)β = Xᵀy.",
        )


@check("5", 0.5)
def check_ridge_wide(sub: Any, record: Any, rng: Any) -> None:
    """works when p > n (lam > 0): (XᵀX + λI)β = Xᵀy holds"""
    X = rng.normal(size=(4, 7))
    y = rng.normal(size=4)
    lam = 0.5
    _record(record, X=X, y=y, lam=lam)
    beta = as_array(sub.ridge(X, y, lam), name="ridge(X, y, 0.5)", shape=(7,), column_ok=True)
    compare(
        (X.T @ X + lam * np.eye(7)) @ beta,
        X.T @ y,
        name="(XᵀX + λI)β for your β",
        rtol=RTOL,
        atol=1e-9,
        hint="use the p × p identity (np.eye(X.shape[1])) and λ itself, not 2λ or λ/2.",
    )


# --- question 6: gradient_descent -------------------------------------------------------------


@check("6", 1)
def check_gradient_descent_one_step(sub: Any, record: Any, rng: Any) -> None:
    """one step is exactly β0 − lr·Xᵀ(Xβ0 − y)"""
    X = _tall(rng, 10, 3)
    y = rng.normal(size=10)
    beta0 = rng.normal(size=3)
    lr = 0.01
    _record(record, X=X, y=y, lr=lr, n_iters=1, beta0=beta0)
    want = beta0 - lr * (X.T @ (X @ beta0 - y))
    compare(
        sub.gradient_descent(X, y, lr, 1, beta0.copy()),
        want,
        name="gradient_descent(X, y, 0.01, 1, beta0)",
        rtol=1e-9,
        atol=1e-12,
        column_ok=True,
        hint="one step is β ← β − lr·Xᵀ(Xβ − y): no 1/n, no factor 2, minus sign, "
        "start from beta0, and exactly n_iters steps.",
    )


@check("6", 0.5)
def check_gradient_descent_zero_iterations(sub: Any, record: Any, rng: Any) -> None:
    """n_iters=0 returns beta0 (zeros when beta0 is None)"""
    X = _tall(rng, 6, 2)
    y = rng.normal(size=6)
    beta0 = np.array([0.5, -1.25])
    _record(record, X=X, y=y, lr=0.1, n_iters=0, beta0=beta0)
    compare(
        sub.gradient_descent(X, y, 0.1, 0, beta0.copy()),
        beta0,
        name="gradient_descent(X, y, 0.1, 0, beta0)",
        rtol=0,
        atol=0,
        column_ok=True,
    )
    compare(
        sub.gradient_descent(X, y, 0.1, 0),
        np.zeros(2),
        name="gradient_descent(X, y, 0.1, 0)",
        rtol=0,
        atol=0,
        column_ok=True,
        hint="when beta0 is None, start from np.zeros(X.shape[1])",
    )


@check("6", 0.75)
def check_gradient_descent_converges(sub: Any, record: Any, rng: Any) -> None:
    """a small learning rate converges to the normal-equation solution"""
    X = _tall(rng, 30, 3)
    y = rng.normal(size=30) + X @ np.array([1.0, -1.0, 2.0])
    lr = 1.0 / float(np.linalg.eigvalsh(X.T @ X)[-1])
    _record(record, X=X, y=y, lr=lr, n_iters=800)
    compare(
        sub.gradient_descent(X, y, lr, 800),
        _lstsq(X, y),
        name="gradient_descent(X, y, 1/λmax, 800)",
        rtol=1e-6,
        atol=1e-9,
        column_ok=True,
        hint="β ← β − lr·Xᵀ(Xβ − y) should approach (XᵀX)⁻¹Xᵀy for lr < 2/λmax(XᵀX)",
    )
