"""Private checks of rnn-lstm that compare with the reference implementation."""

from __future__ import annotations

from typing import Any

from grader import CheckFailed, check
from grader.checks.numeric import compare, compare_dict


def _weights(rng: Any, d: int, h: int) -> tuple[Any, Any, Any]:
    return rng.normal(size=(h, d)) * 0.6, rng.normal(size=(h, h)) * 0.6, rng.normal(size=h) * 0.3


@check("3", 0.5)
def check_rnn_step_matches_reference(sub: Any, ref: Any, record: Any, rng: Any) -> None:
    """rnn_step matches the reference on random shapes (d ≠ h)"""
    for d, h in ((3, 5), (6, 2)):
        Wx, Wh, b = _weights(rng, d, h)
        x_t, h_prev = rng.normal(size=d), rng.normal(size=h)
        record.input("shapes", f"d={d}, h={h}")
        compare(
            sub.rnn_step(x_t, h_prev, Wx, Wh, b),
            ref.rnn_step(x_t, h_prev, Wx, Wh, b),
            name=f"rnn_step(...) with d={d}, h={h}",
        )


@check("3", 1)
def check_rnn_forward_matches_reference(sub: Any, ref: Any, record: Any, rng: Any) -> None:
    """rnn_forward matches the reference on random shapes, including T=1"""
    for T, d, h in ((6, 4, 3), (1, 2, 2), (3, 1, 5)):
        Wx, Wh, b = _weights(rng, d, h)
        xs, h0 = rng.normal(size=(T, d)), rng.normal(size=h)
        record.input("shapes", f"T={T}, d={d}, h={h}")
        compare(
            sub.rnn_forward(xs, h0, Wx, Wh, b),
            ref.rnn_forward(xs, h0, Wx, Wh, b),
            name=f"rnn_forward(...) with T={T}, d={d}, h={h}",
            hint="return h_1 … h_T stacked into shape (T, h)",
        )


@check("4", 1)
def check_rnn_backward_matches_reference(sub: Any, ref: Any, record: Any, rng: Any) -> None:
    """rnn_backward matches the reference on a longer sequence (T=10, d=5, h=6)"""
    Wx, Wh, b = _weights(rng, 5, 6)
    xs, h0, dhs = rng.normal(size=(10, 5)), rng.normal(size=6), rng.normal(size=(10, 6))
    record.input("shapes", "T=10, d=5, h=6")
    compare_dict(
        sub.rnn_backward(xs, h0, Wx, Wh, b, dhs),
        ref.rnn_backward(xs, h0, Wx, Wh, b, dhs),
        name="rnn_backward(...)",
        rtol=1e-7,
        scalar_ok=False,
    )


@check("5", 1)
def check_lstm_matches_reference(sub: Any, ref: Any, record: Any, rng: Any) -> None:
    """lstm_step matches the reference on random shapes"""
    for d, h in ((3, 4), (5, 1), (2, 6)):
        W, b = rng.normal(size=(4 * h, d + h)), rng.normal(size=4 * h)
        x_t, h_prev, c_prev = rng.normal(size=d), rng.normal(size=h), rng.normal(size=h)
        record.input("shapes", f"d={d}, h={h}")
        got = sub.lstm_step(x_t, h_prev, c_prev, W, b)
        if not isinstance(got, tuple | list) or len(got) != 2:
            raise CheckFailed("lstm_step must return a pair (h_t, c_t)", actual=type(got).__name__)
        want_h, want_c = ref.lstm_step(x_t, h_prev, c_prev, W, b)
        compare(got[1], want_c, name=f"c_t with d={d}, h={h}")
        compare(got[0], want_h, name=f"h_t with d={d}, h={h}")
