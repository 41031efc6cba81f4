"""Attack, issue 6 list 1: values built to compare equal to anything.

`sigmoid` is honest (question 3, 2 points). `forward`, `backward` and `backward_batch` return a
different trick on every call, and `trick_value(i, n)` returns trick number i on its own, so
the test suite can also send each trick through the sandbox one by one. None may earn a point.
"""

__assignment__ = "backprop"

import numpy as np


def sigmoid(z):
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


class Liar:
    """Equal to everything, smaller than any tolerance, and itself after any arithmetic."""

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __lt__ = __le__ = __gt__ = __ge__ = __eq__

    def __bool__(self):
        return True

    def __hash__(self):
        return 0

    def __abs__(self):
        return 0.0

    def __float__(self):
        return 0.5

    def __len__(self):
        return 1

    def __getitem__(self, key):
        return self

    def _same(self, *args, **kwargs):
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same
    __truediv__ = __rtruediv__ = __pow__ = __neg__ = __pos__ = __matmul__ = _same

    def __repr__(self):
        return "0.5"


class EqArray(np.ndarray):
    """An ndarray subclass whose == is all-True (NumPy's allclose falls for it)."""

    def __eq__(self, other):
        return np.ones(self.shape, dtype=bool)

    def __ne__(self, other):
        return np.zeros(self.shape, dtype=bool)


class LiarFloat(float):
    def __eq__(self, other):
        return True

    def __hash__(self):
        return 0


class LiarDict(dict):
    """Claims every key, and every value is a Liar."""

    def __contains__(self, key):
        return True

    def __getitem__(self, key):
        return Liar()

    def get(self, key, default=None):
        return Liar()


def _objects(n):
    out = np.empty(n, dtype=object)
    for i in range(n):
        out[i] = Liar()
    return out


def trick_value(i, n):
    tricks = [
        lambda: Liar(),
        lambda: np.zeros(n).view(EqArray),
        lambda: np.zeros((0, n)),
        lambda: np.zeros((1, n)),
        lambda: np.zeros((n, 1)) if n > 1 else np.zeros((2, 2)),
        lambda: 0.0,
        lambda: np.full(n, np.nan),
        lambda: np.full(n, np.inf),
        lambda: np.full(n, -np.inf),
        lambda: _objects(n),
        lambda: np.array(["0.5"] * n),
        lambda: np.full(n, 0.5 + 0.5j),
        lambda: np.array(0.0) if n > 1 else np.zeros(3),
        lambda: LiarFloat(0.0),
        lambda: [Liar()] * n,
        lambda: "0.5",
        lambda: None,
        lambda: True,
        lambda: np.zeros(n, dtype=[("a", "f8")]),
        lambda: np.ma.masked_all(n),
        lambda: np.float64("nan"),
        lambda: LiarDict(),
        lambda: np.zeros(n + 1),
        lambda: np.array([np.nan] * n, dtype=np.float16),
    ]
    return tricks[i % len(tricks)]()


TRICK_COUNT = 24
_calls = [0]


def _next(n):
    _calls[0] += 1
    return trick_value(_calls[0], n)


def forward(x, w1, b1, w2, b2):
    n = int(np.size(x))
    return _next(n), _next(n)


def backward(x, y, w1, b1, w2, b2):
    if _calls[0] % 3 == 0:
        _calls[0] += 1
        return LiarDict()
    return {k: _next(1) for k in ("w1", "b1", "w2", "b2")}


def backward_batch(X, Y, W1, b1, W2, b2):
    h = np.shape(W1)[1] if np.ndim(W1) == 2 else 1
    if _calls[0] % 4 == 0:
        _calls[0] += 1
        return Liar()
    return {"W1": _next(h), "b1": _next(h), "W2": _next(h), "b2": _next(1)}
