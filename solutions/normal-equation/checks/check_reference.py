"""Private checks of normal-equation that compare with the reference implementation."""

from __future__ import annotations

from typing import Any

import numpy as np

from grader import check
from grader.checks.numeric import compare


def _tall(rng: Any, n: int, p: int) -> Any:
    return rng.normal(size=(n, p)) + np.eye(n, p) * 2.0


@check("4", 0.75)
def check_normal_equation_matches_reference(sub: Any, ref: Any, record: Any, rng: Any) -> None:
    """matches least squares on random tall X of several shapes"""
    for n, p in ((25, 5), (9, 1), (40, 8)):
        X = _tall(rng, n, p)
        y = rng.normal(size=n) * 2 + 1
        if n == 25:
            record.input("X", X)
            record.input("y", y)
        compare(
            sub.normal_equation(X, y),
            ref.normal_equation(X, y),
            name=f"normal_equation(X, y) with X of shape {X.shape}",
            rtol=1e-6,
            atol=1e-9,
            column_ok=True,
        )


@check("5", 0.5)
def check_ridge_matches_reference(sub: Any, ref: Any, record: Any, rng: Any) -> None:
    """matches the reference for several λ, tall and wide X"""
    for n, p, lam in ((20, 4, 0.3), (20, 4, 7.0), (3, 6, 2.5)):
        X = rng.normal(size=(n, p))
        y = rng.normal(size=n)
        if lam == 0.3:
            record.input("X", X)
            record.input("y", y)
            record.input("lam", lam)
        compare(
            sub.ridge(X, y, lam),
            ref.ridge(X, y, lam),
            name=f"ridge(X, y, {lam:g}) with X of shape {X.shape}",
            rtol=1e-6,
            atol=1e-9,
            column_ok=True,
            hint="β = (XᵀX + λI)⁻¹Xᵀy with the p × p identity",
        )


@check("6", 0.75)
def check_gradient_descent_matches_reference(sub: Any, ref: Any, record: Any, rng: Any) -> None:
    """matches the reference after a few iterations, from beta0 and from zeros"""
    X = _tall(rng, 12, 4)
    y = rng.normal(size=12)
    beta0 = rng.normal(size=4)
    record.input("X", X)
    record.input("y", y)
    record.input("beta0", beta0)
    compare(
        sub.gradient_descent(X, y, 0.02, 5, beta0.copy()),
        ref.gradient_descent(X, y, 0.02, 5, beta0),
        name="gradient_descent(X, y, 0.02, 5, beta0)",
        rtol=1e-9,
        atol=1e-12,
        column_ok=True,
    )
    compare(
        sub.gradient_descent(X, y, 0.005, 7),
        ref.gradient_descent(X, y, 0.005, 7),
        name="gradient_descent(X, y, 0.005, 7)",
        rtol=1e-9,
        atol=1e-12,
        column_ok=True,
    )
