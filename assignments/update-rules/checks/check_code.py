"""Public checks of the update-rules code questions (1, 3–6): formulas, properties, fingerprints.

These need no reference solution. `minimize` takes a gradient *function*, which cannot travel
to the sandbox as data, so the checks install a small helper in the sandboxed process (plain
grader-written code, run after the student's cells) that builds the gradient function there
and calls the student's `minimize` with it. Only numbers come back.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grader import CheckFailed, MissingDefinition, NotCheckable, check
from grader.checks.numeric import as_array, compare, compare_dict

EXACT = 1e-12


def _pair(got: Any, name: str, what: str) -> tuple[Any, Any]:
    if not isinstance(got, tuple | list) or len(got) != 2:
        raise CheckFailed(
            f"{name} must return a pair {what}",
            actual=type(got).__name__
            if not isinstance(got, tuple | list)
            else f"{len(got)} values",
        )
    return got[0], got[1]


def _compare_dict(
    got: Any, want: Any, *, name: str, rtol: float, hint: str = "", scalar_ok: bool = True
) -> None:
    """``compare_dict`` that attaches a hint to its failure."""
    try:
        compare_dict(got, want, name=name, rtol=rtol, scalar_ok=scalar_ok)
    except CheckFailed as exc:
        exc.hint = exc.hint or hint or None
        raise


def _same_data(a: Any, b: Any) -> bool:
    """Exact equality of plain data: dicts, floats and arrays (shape and values)."""
    if isinstance(a, dict) or isinstance(b, dict):
        return (
            isinstance(a, dict)
            and isinstance(b, dict)
            and a.keys() == b.keys()
            and all(_same_data(a[k], b[k]) for k in a)
        )
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.shape == b.shape
            and bool(np.array_equal(a, b))
        )
    return type(a) is type(b) and a == b


# --- question 1: sgd_step ---------------------------------------------------------------------


@check("1", 0.75)
def check_sgd_arrays(sub: Any, record: Any, rng: Any) -> None:
    """θ ← θ − lr·g exactly, for every array in the dict"""
    params = {"W": rng.normal(size=(2, 3)), "b": rng.normal(size=3)}
    grads = {"W": rng.normal(size=(2, 3)), "b": rng.normal(size=3)}
    record.input("params", params)
    record.input("grads", grads)
    record.input("lr", 0.1)
    want = {k: params[k] - 0.1 * grads[k] for k in params}
    compare_dict(
        sub.sgd_step(params, grads, 0.1),
        want,
        name="sgd_step(params, grads, 0.1)",
        rtol=EXACT,
        scalar_ok=False,
    )


@check("1", 0.5)
def check_sgd_floats(sub: Any, record: Any) -> None:
    """works on float parameters too"""
    params = {"w": 1.5, "b": -0.5}
    grads = {"w": 2.0, "b": -4.0}
    record.input("params", params)
    record.input("grads", grads)
    record.input("lr", 0.25)
    compare_dict(
        sub.sgd_step(params, grads, 0.25),
        {"w": 1.0, "b": 0.5},
        name="sgd_step(params, grads, 0.25)",
        rtol=EXACT,
    )


@check("1", 0.75)
def check_sgd_inputs_unchanged(sub: Any, record: Any, rng: Any) -> None:
    """does not modify params or grads"""
    params = {"W": rng.normal(size=(3, 2)), "b": 0.25}
    grads = {"W": rng.normal(size=(3, 2)), "b": 1.0}
    record.input("params", params)
    record.input("grads", grads)
    out = sub.sgd_step.inspect(
        {k: np.copy(v) if isinstance(v, np.ndarray) else v for k, v in params.items()},
        dict(grads),
        0.1,
    )
    after = out.args_after or [None, None]
    for name, before, now in zip(("params", "grads"), (params, grads), after, strict=False):
        if not _same_data(before, now):
            raise CheckFailed(
                f"sgd_step changed its argument {name}",
                hint="build and return a new dict ({k: params[k] - lr * grads[k] for k in "
                "params}); `params[k] -= …` changes the caller's parameters",
            )


# --- question 3: momentum_step ----------------------------------------------------------------


@check("3", 0.75)
def check_momentum_beta_zero_is_sgd(sub: Any, record: Any, rng: Any) -> None:
    """with beta = 0 a step equals sgd_step and the velocity equals the gradient"""
    params = {"W": rng.normal(size=(2, 2)), "b": 0.5}
    grads = {"W": rng.normal(size=(2, 2)), "b": -1.5}
    old_velocity = {"W": rng.normal(size=(2, 2)), "b": 3.0}
    record.input("params", params)
    record.input("grads", grads)
    want = {k: params[k] - 0.1 * np.asarray(grads[k]) for k in params}
    for velocity in ({}, old_velocity):
        got = sub.momentum_step(params, grads, velocity, 0.1, 0.0)
        new_params, new_velocity = _pair(got, "momentum_step", "(params, velocity)")
        label = "{}" if not velocity else "a nonzero velocity"
        compare_dict(
            new_params, want, name=f"params after one step from {label} with beta=0", rtol=1e-10
        )
        _compare_dict(
            new_velocity,
            grads,
            name=f"velocity after one step from {label} with beta=0",
            rtol=1e-10,
            hint="v ← β·v + g, so with β = 0 the velocity is g",
        )


MOMENTUM_CASE: dict[str, Any] = {
    "params": {"w": np.array([1.0, -2.0]), "b": 0.5},
    "grads": [{"w": np.array([0.5, 0.25]), "b": -1.0}, {"w": np.array([-0.5, 1.0]), "b": 2.0}],
    "lr": 0.1,
    "beta": 0.9,
    "params_after": {"w": np.array([0.955, -2.1475]), "b": 0.49},
    "velocity_after": {"w": np.array([-0.05, 1.225]), "b": 1.1},
}


@check("3", 0.75)
def check_momentum_fingerprint(sub: Any, record: Any) -> None:
    """two steps from an empty velocity match known values"""
    case = MOMENTUM_CASE
    params: Any = case["params"]
    velocity: Any = {}
    record.input("params", params)
    record.input("grads", case["grads"])
    record.input("lr, beta", (case["lr"], case["beta"]))
    for grads in case["grads"]:
        got = sub.momentum_step(params, grads, velocity, case["lr"], case["beta"])
        params, velocity = _pair(got, "momentum_step", "(params, velocity)")
    hint = "v ← β·v + g (no (1 − β) and no lr inside v), then θ ← θ − lr·v with the new v"
    _compare_dict(
        params, case["params_after"], name="params after two steps", rtol=1e-10, hint=hint
    )
    _compare_dict(
        velocity, case["velocity_after"], name="velocity after two steps", rtol=1e-10, hint=hint
    )


# --- question 4: adam_step --------------------------------------------------------------------


@check("4", 0.75)
def check_adam_first_step(sub: Any, record: Any) -> None:
    """the first step moves every coordinate by ≈ lr against the sign of its gradient"""
    params = {"w": np.array([0.5, -1.0, 2.0, 0.0]), "b": 1.0}
    grads = {"w": np.array([3.0, -0.02, 150.0, -7.5]), "b": -0.4}
    record.input("params", params)
    record.input("grads", grads)
    got = sub.adam_step(params, grads, {}, lr=0.01)
    new_params, state = _pair(got, "adam_step", "(params, state)")
    want = {k: params[k] - 0.01 * np.sign(grads[k]) for k in params}
    try:
        compare_dict(new_params, want, name="params after the first Adam step", rtol=1e-5)
    except CheckFailed as exc:
        exc.hint = (
            "on the first step m̂ = g and v̂ = g², so each coordinate moves by "
            "lr·g/(|g| + ε) ≈ lr; check the bias corrections 1 − β1ᵗ and 1 − β2ᵗ with "
            "t = 1 (t is incremented before they are computed)"
        )
        raise
    if not isinstance(state, dict) or state.get("t") != 1:
        t = state.get("t") if isinstance(state, dict) else None
        raise CheckFailed(
            "after the first step the state should hold t = 1",
            expected="state['t'] == 1",
            actual=f"state['t'] = {t!r}",
            hint="state = {'m': {...}, 'v': {...}, 't': 1} after the first call",
        )


@check("4", 0.75)
def check_adam_scale_invariant(sub: Any, record: Any, rng: Any) -> None:
    """three steps are (almost) unchanged when every gradient is multiplied by 100"""
    params = {"w": rng.normal(size=3), "b": 0.3}
    grads = [{"w": rng.normal(size=3), "b": float(rng.normal())} for _ in range(3)]
    record.input("params", params)
    record.input("grads", grads)
    runs = []
    for scale in (1.0, 100.0):
        p: Any = dict(params)
        state: Any = {}
        for g in grads:
            scaled = {
                k: np.asarray(v) * scale if isinstance(v, np.ndarray) else v * scale
                for k, v in g.items()
            }
            p, state = _pair(
                sub.adam_step(p, scaled, state, lr=0.05), "adam_step", "(params, state)"
            )
        runs.append(p)
    if not isinstance(runs[0], dict):
        raise CheckFailed("adam_step must return the new params as a dict")
    _compare_dict(
        runs[1],
        {k: as_array(v, name=f"params[{k!r}]") for k, v in runs[0].items()},
        name="params after 3 steps with 100× gradients",
        rtol=1e-6,
        hint="Adam divides m̂ by √v̂: scaling g scales both alike; make v track g², not |g| or g",
    )


# --- question 5: perceptron_update ------------------------------------------------------------


@check("5", 0.75)
def check_perceptron_no_change_when_correct(sub: Any, record: Any) -> None:
    """no change on a correct prediction (ŷ = 1 exactly when w·x + b ≥ 0)"""
    w = np.array([1.0, -1.0])
    cases = [  # (x, y, b): correct predictions, including w·x + b = 0 with y = 1
        (np.array([2.0, 2.0]), 1.0, 0.0),
        (np.array([3.0, 1.0]), 1.0, -0.5),
        (np.array([0.0, 2.0]), 0.0, 0.5),
    ]
    for x, y, b in cases:
        record.new_example()
        for name, value in (("w", w), ("b", b), ("x", x), ("y", y), ("lr", 0.5)):
            record.input(name, value)
        new_w, new_b = _pair(
            sub.perceptron_update(w.copy(), b, x, y, 0.5), "perceptron_update", "(w, b)"
        )
        hint = "ŷ = 1 if w·x + b ≥ 0 (note ≥) else 0; the update is lr·(y − ŷ), zero when ŷ = y"
        compare(new_w, w, name="w after a correct prediction", rtol=0, atol=0, hint=hint)
        compare(
            new_b, b, name="b after a correct prediction", rtol=0, atol=0, scalar_ok=True, hint=hint
        )


@check("5", 0.5)
def check_perceptron_fingerprint(sub: Any, record: Any) -> None:
    """a misclassified point moves w and b by lr·(y − ŷ)·x and lr·(y − ŷ)"""
    for x, y, b, w_after, b_after in (
        (np.array([1.0, 2.0]), 1.0, 0.2, np.array([0.6, -0.8]), 0.3),
        (np.array([1.0, -2.0]), 0.0, 0.2, np.array([0.4, -0.8]), 0.1),
    ):
        w = np.array([0.5, -1.0])
        record.new_example()
        for name, value in (("w", w), ("b", b), ("x", x), ("y", y), ("lr", 0.1)):
            record.input(name, value)
        new_w, new_b = _pair(sub.perceptron_update(w, b, x, y, 0.1), "perceptron_update", "(w, b)")
        hint = "w ← w + lr·(y − ŷ)·x and b ← b + lr·(y − ŷ), with labels 0 and 1"
        compare(new_w, w_after, name="w after the update", hint=hint)
        compare(new_b, b_after, name="b after the update", scalar_ok=True, hint=hint)


@check("5", 0.75)
def check_perceptron_separates(sub: Any, record: Any, rng: Any) -> None:
    """repeated passes over linearly separable data end with every point classified"""
    X = rng.uniform(-2, 2, size=(40, 2))
    margin = X @ np.array([1.0, -2.0]) + 0.5
    X, margin = X[np.abs(margin) > 0.4][:14], margin[np.abs(margin) > 0.4][:14]
    Y = (margin > 0).astype(float)
    record.input("X", X)
    record.input("Y", Y)
    w: Any = np.zeros(2)
    b: Any = 0.0
    for _epoch in range(60):
        changed = False
        for x, y in zip(X, Y, strict=True):
            new_w, new_b = _pair(
                sub.perceptron_update(w, b, x, float(y), 1.0), "perceptron_update", "(w, b)"
            )
            new_w = as_array(new_w, name="w", shape=(2,))
            new_b = float(as_array(new_b, name="b", shape=(), scalar_ok=True))
            changed = changed or not (np.array_equal(new_w, w) and new_b == b)
            w, b = new_w, new_b
        if not changed:
            break
    wrong = int(np.sum(((X @ w + b) >= 0).astype(float) != Y))
    if wrong:
        raise CheckFailed(
            f"after 60 passes over 14 separable points, {wrong} are still misclassified "
            f"(w = {np.round(w, 4).tolist()}, b = {b:.4g})",
            hint="move w towards x when y = 1 was predicted 0, away when y = 0 was predicted 1",
        )


# --- question 6: minimize ---------------------------------------------------------------------

HELPER_FILE = "<grader helper: minimize>"
HELPER_SOURCE = '''
def _grader_minimize_on(kind, data, theta0, lr, n_steps):
    """Grader-written: build a gradient function here and call the student's minimize."""
    import numpy as _np
    student = globals().get("minimize")
    if student is None:
        raise NameError("minimize is not defined")
    if kind == "quadratic":
        A, b = _np.asarray(data["A"]), _np.asarray(data["b"])
        def grad_fn(theta):
            return A @ _np.asarray(theta, dtype=float) - b
    else:
        c = _np.asarray(data["c"])
        def grad_fn(theta):
            theta = _np.asarray(theta, dtype=float)
            return theta ** 3 - c
    return student(grad_fn, theta0, lr, n_steps)
'''


def _minimize(
    sub: Any, kind: str, data: dict[str, Any], theta0: Any, lr: float, n_steps: int
) -> Any:
    """Call the student's minimize with a gradient function built inside the sandbox."""
    if not sub.has("minimize"):
        raise MissingDefinition("minimize")
    run = sub.runner.add_helper(HELPER_FILE, HELPER_SOURCE)
    if run is not None and not run.ok:
        raise NotCheckable(
            f"the grader's helper could not be installed: {run.error_type}: {run.error_message}"
        )
    return sub.call("_grader_minimize_on", kind, data, theta0, lr, n_steps)


def _spd(rng: Any, eigenvalues: Any) -> Any:
    q, _ = np.linalg.qr(rng.normal(size=(len(eigenvalues), len(eigenvalues))))
    return (q * np.asarray(eigenvalues)) @ q.T


@check("6", 1)
def check_minimize_exact_steps(sub: Any, record: Any, rng: Any) -> None:
    """exactly n_steps steps θ ← θ − lr·∇f(θ) (checked after 0, 1 and 7 steps)"""
    A, b = _spd(rng, [1.0, 2.0, 3.0]), rng.normal(size=3)
    theta0 = rng.normal(size=3)
    record.input("A", A)
    record.input("b", b)
    record.input("theta0", theta0)
    theta = theta0.copy()
    for n in range(8):
        if n in (0, 1, 7):
            got = _minimize(sub, "quadratic", {"A": A, "b": b}, theta0.copy(), 0.1, n)
            compare(
                got,
                theta,
                name=f"minimize(grad_fn, theta0, 0.1, {n})",
                rtol=1e-10,
                hint="n_steps steps exactly (range(n_steps)), each θ ← θ − lr·grad_fn(θ), "
                "starting from theta0",
            )
        theta = theta - 0.1 * (A @ theta - b)


@check("6", 0.75)
def check_minimize_converges(sub: Any, record: Any, rng: Any) -> None:
    """on ½θᵀAθ − bᵀθ, converges to A⁻¹b when lr < 2/λmax"""
    A, b = _spd(rng, [1.0, 2.5, 4.0]), rng.normal(size=3)
    lr = 1.5 / 4.0
    record.input("A", A)
    record.input("b", b)
    record.input("lr", lr)
    got = _minimize(sub, "quadratic", {"A": A, "b": b}, np.zeros(3), lr, 200)
    compare(
        got,
        np.linalg.solve(A, b),
        name="minimize(grad_fn, zeros, 1.5/λmax, 200)",
        rtol=1e-8,
        atol=1e-10,
        hint="step against the gradient: θ ← θ − lr·grad_fn(θ)",
    )


@check("6", 0.5)
def check_minimize_diverges(sub: Any, record: Any, rng: Any) -> None:
    """on ½θᵀAθ − bᵀθ, diverges when lr > 2/λmax"""
    A, b = _spd(rng, [1.0, 2.5, 4.0]), rng.normal(size=3)
    lr = 2.2 / 4.0
    record.input("A", A)
    record.input("lr", lr)
    theta0 = np.linalg.solve(A, b) + 0.1
    got = _minimize(sub, "quadratic", {"A": A, "b": b}, theta0, lr, 60)
    arr = np.asarray(got, dtype=np.float64) if not isinstance(got, str | dict) else None
    if arr is None or arr.shape != (3,):
        raise CheckFailed(
            "minimize should return θ as an array of the shape of theta0", actual=type(got).__name__
        )
    if np.all(np.isfinite(arr)) and np.linalg.norm(arr - np.linalg.solve(A, b)) < 100:
        raise CheckFailed(
            "with lr > 2/λmax plain gradient descent must diverge, but yours stayed within "
            f"{np.linalg.norm(arr - np.linalg.solve(A, b)):.3g} of the minimum after 60 steps",
            hint="plain gradient descent: no step-size control, clipping or line search",
        )


@check("6", 0.75)
def check_minimize_nonlinear(sub: Any, record: Any, rng: Any) -> None:
    """matches plain gradient descent on a non-quadratic function after 25 steps"""
    c = rng.normal(size=4)
    theta0 = rng.normal(size=4)
    record.input("grad_fn", "θ ↦ θ³ − c (elementwise)")
    record.input("c", c)
    record.input("theta0", theta0)
    theta = theta0.copy()
    for _ in range(25):
        theta = theta - 0.05 * (theta**3 - c)
    compare(
        _minimize(sub, "cubic", {"c": c}, theta0.copy(), 0.05, 25),
        theta,
        name="minimize(θ ↦ θ³ − c, theta0, 0.05, 25)",
        rtol=1e-9,
        hint="call grad_fn at the current θ on every step",
    )
