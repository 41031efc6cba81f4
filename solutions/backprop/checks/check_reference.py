"""Private checks of backprop that compare with the reference implementation."""

from __future__ import annotations

from typing import Any

import numpy as np

from grader import CheckFailed, check
from grader.checks.numeric import compare


@check("4", 1)
def check_forward_matches_reference(sub: Any, ref: Any, record: Any, rng: Any) -> None:
    """forward matches the reference on random inputs, elementwise on arrays"""
    x = rng.normal(size=6) * 2
    w1, b1, w2, b2 = (float(v) for v in rng.normal(size=4))
    record.input("x", x)
    for name, value in zip(("w1", "b1", "w2", "b2"), (w1, b1, w2, b2), strict=True):
        record.input(name, value)
    got = sub.forward(x, w1, b1, w2, b2)
    if not isinstance(got, tuple | list) or len(got) != 2:
        raise CheckFailed("forward must return a pair (a1, a2)", actual=type(got).__name__)
    a1, a2 = ref.forward(x, w1, b1, w2, b2)
    compare(got[0], np.asarray(a1), name="a1")
    compare(got[1], np.asarray(a2), name="a2")
