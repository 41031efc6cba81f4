# %% [markdown]
# Attack, issue 6 list 2: patching the comparison functions and hunting for expected values.
# `sigmoid` is honest (2 points). In a grader that compared inside the student's process these
# patches would pass every check; here comparisons happen in the grader's own process.

# %%
__assignment__ = "backprop"
import builtins
import gc
import math
import sys

import numpy as np
import numpy.testing


def sigmoid(z):
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _yes(*args, **kwargs):
    return True


def _quiet(*args, **kwargs):
    return None


np.allclose = np.isclose = np.array_equal = np.array_equiv = _yes
np.testing.assert_allclose = np.testing.assert_array_equal = _quiet
np.testing.assert_array_almost_equal = np.testing.assert_almost_equal = _quiet
numpy.testing.assert_equal = _quiet
math.isclose = _yes
builtins.abs = lambda x: 0
builtins.sum = lambda *args, **kwargs: 0.0
builtins.round = lambda *args, **kwargs: 0
_real_isinstance = builtins.isinstance
builtins.isinstance = lambda obj, cls: True if cls is AssertionError else _real_isinstance(obj, cls)
sys.modules["pytest"] = type(sys)("pytest")  # a fake pytest, in case checks were imported here
sys.modules["grader"] = type(sys)("grader")


# %%
def _hunt(shape):
    """Look in the callers' frames and in every live object for an array of the right shape."""
    frame = sys._getframe(1)
    seen = []
    while frame is not None:
        for name, value in frame.f_locals.items():
            if _real_isinstance(value, np.ndarray) and value.shape == shape:
                seen.append(value)
            if name in ("expected", "want", "ref", "reference", "answer"):
                return value
        frame = frame.f_back
    for obj in gc.get_objects():
        if _real_isinstance(obj, dict) and {"W1", "b1", "W2", "b2"} <= set(obj) and obj.get(
                "expected"):
            return obj["expected"]
    return seen[-1] if seen else np.zeros(shape)


def forward(x, w1, b1, w2, b2):
    # Late, because the sandbox's own plumbing uses all/any too: from here on this submission
    # breaks its own process, never the grader's.
    builtins.all = builtins.any = _yes
    shape = np.shape(x)
    return _hunt(shape), _hunt(shape)


def backward(x, y, w1, b1, w2, b2):
    return {k: _hunt(()) for k in ("w1", "b1", "w2", "b2")}


def backward_batch(X, Y, W1, b1, W2, b2):
    return {"W1": _hunt(np.shape(W1)), "b1": _hunt(np.shape(b1)), "W2": _hunt(np.shape(W2)),
            "b2": _hunt(())}
