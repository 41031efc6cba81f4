"""Private checks of update-rules that compare with the reference implementation."""

from __future__ import annotations

from typing import Any

import numpy as np

from grader import CheckFailed, check
from grader.checks.numeric import compare, compare_dict


def _pair(got: Any, name: str) -> tuple[Any, Any]:
    if not isinstance(got, tuple | list) or len(got) != 2:
        raise CheckFailed(f"{name} must return a pair", actual=type(got).__name__)
    return got[0], got[1]


def _compare_dict(got: Any, want: Any, *, name: str, rtol: float, hint: str = "") -> None:
    """``compare_dict`` that attaches a hint to its failure."""
    try:
        compare_dict(got, want, name=name, rtol=rtol)
    except CheckFailed as exc:
        exc.hint = exc.hint or hint or None
        raise


def _grads(rng: Any, steps: int) -> list[dict[str, Any]]:
    return [
        {"W": rng.normal(size=(2, 3)), "b": rng.normal(size=3), "s": float(rng.normal())}
        for _ in range(steps)
    ]


def _params(rng: Any) -> dict[str, Any]:
    return {"W": rng.normal(size=(2, 3)), "b": rng.normal(size=3), "s": float(rng.normal())}


@check("3", 1.5)
def check_momentum_matches_reference(sub: Any, ref: Any, record: Any, rng: Any) -> None:
    """matches the reference over five steps, from an empty and from a zero velocity"""
    params, grads = _params(rng), _grads(rng, 5)
    record.input("params", params)
    record.input("lr, beta", (0.05, 0.8))
    for start in (
        {},
        {k: np.zeros_like(v) if isinstance(v, np.ndarray) else 0.0 for k, v in params.items()},
    ):
        mine: Any = (dict(params), dict(start))
        theirs: Any = (dict(params), dict(start))
        for step, g in enumerate(grads, 1):
            mine = _pair(sub.momentum_step(mine[0], g, mine[1], 0.05, 0.8), "momentum_step")
            theirs = ref.momentum_step(theirs[0], g, theirs[1], 0.05, 0.8)
            label = "an empty velocity" if not start else "a zero velocity"
            compare_dict(
                mine[0], theirs[0], name=f"params after {step} steps from {label}", rtol=1e-9
            )
            _compare_dict(
                mine[1],
                theirs[1],
                name=f"velocity after {step} steps from {label}",
                rtol=1e-9,
                hint="v ← β·v + g, then θ ← θ − lr·v",
            )


@check("4", 1.5)
def check_adam_matches_reference(sub: Any, ref: Any, record: Any, rng: Any) -> None:
    """matches the reference over several steps, with default and custom hyperparameters"""
    params, grads = _params(rng), _grads(rng, 4)
    grads[2]["b"] = grads[2]["b"] * 1e-3  # small gradients expose where ε sits
    record.input("params", params)
    for kwargs in ({}, {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6}):
        mine: Any = (dict(params), {})
        theirs: Any = (dict(params), {})
        for step, g in enumerate(grads, 1):
            mine = _pair(sub.adam_step(mine[0], g, mine[1], **kwargs), "adam_step")
            theirs = ref.adam_step(theirs[0], g, theirs[1], **kwargs)
            label = f"{step} steps with " + (
                ", ".join(f"{k}={v:g}" for k, v in kwargs.items()) or "the default hyperparameters"
            )
            _compare_dict(
                mine[0],
                theirs[0],
                name=f"params after {label}",
                rtol=1e-7,
                hint="m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; t ← t + 1; "
                "θ ← θ − lr·m̂/(√v̂ + ε) with m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ)",
            )
            state = mine[1]
            if not isinstance(state, dict) or not {"m", "v", "t"} <= set(state):
                raise CheckFailed(
                    "the Adam state must be a dict with keys 'm', 'v' and 't'",
                    actual=f"keys {sorted(map(str, state))}"
                    if isinstance(state, dict)
                    else type(state).__name__,
                )
            compare_dict(state["m"], theirs[1]["m"], name=f"state['m'] after {label}", rtol=1e-7)
            compare_dict(state["v"], theirs[1]["v"], name=f"state['v'] after {label}", rtol=1e-7)
            compare(state["t"], step, name=f"state['t'] after {label}", scalar_ok=True)


@check("5", 1)
def check_perceptron_matches_reference(sub: Any, ref: Any, record: Any, rng: Any) -> None:
    """matches the reference on random points, weights and labels"""
    for trial in range(12):
        d = 1 + trial % 4
        w, x = rng.normal(size=d), rng.normal(size=d)
        b, y, lr = float(rng.normal()), float(trial % 2), float(rng.uniform(0.1, 2.0))
        if trial == 0:
            for name, value in (("w", w), ("b", b), ("x", x), ("y", y), ("lr", lr)):
                record.input(name, value)
        got_w, got_b = _pair(sub.perceptron_update(w.copy(), b, x, y, lr), "perceptron_update")
        want_w, want_b = ref.perceptron_update(w, b, x, y, lr)
        compare(got_w, want_w, name=f"w (trial {trial + 1}, d={d})")
        compare(got_b, want_b, name=f"b (trial {trial + 1}, d={d})", scalar_ok=True)
