# A correct rnn-lstm submission written with scalar loops and math.tanh / math.exp only.
import math

import numpy as np

__assignment__ = "rnn-lstm"


def _matvec(W, v):
    return [sum(W[i][j] * v[j] for j in range(len(v))) for i in range(len(W))]


def rnn_step(x_t, h_prev, Wx, Wh, b):
    a = _matvec(Wx, x_t)
    c = _matvec(Wh, h_prev)
    return np.array([math.tanh(a[i] + c[i] + b[i]) for i in range(len(b))])


def rnn_forward(xs, h0, Wx, Wh, b):
    states = []
    h = h0
    for t in range(len(xs)):
        h = rnn_step(xs[t], h, Wx, Wh, b)
        states.append(list(h))
    return np.array(states)


def rnn_backward(xs, h0, Wx, Wh, b, dhs):
    T, d, n = len(xs), len(xs[0]), len(h0)
    hs = rnn_forward(xs, h0, Wx, Wh, b)
    dWx = np.zeros((n, d))
    dWh = np.zeros((n, n))
    db = np.zeros(n)
    carry = np.zeros(n)
    for t in range(T - 1, -1, -1):
        prev = hs[t - 1] if t > 0 else h0
        delta = [(dhs[t][i] + carry[i]) * (1 - hs[t][i] ** 2) for i in range(n)]
        for i in range(n):
            db[i] += delta[i]
            for j in range(d):
                dWx[i][j] += delta[i] * xs[t][j]
            for j in range(n):
                dWh[i][j] += delta[i] * prev[j]
        carry = np.array([sum(Wh[i][j] * delta[i] for i in range(n)) for j in range(n)])
    return {"Wx": dWx, "Wh": dWh, "b": db, "h0": carry}


def _sigmoid(v):
    return 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))


def lstm_step(x_t, h_prev, c_prev, W, b):
    n = len(h_prev)
    z = _matvec(W, list(x_t) + list(h_prev))
    z = [z[k] + b[k] for k in range(4 * n)]
    h_t, c_t = np.zeros(n), np.zeros(n)
    for k in range(n):
        i, f, o = _sigmoid(z[k]), _sigmoid(z[n + k]), _sigmoid(z[2 * n + k])
        g = math.tanh(z[3 * n + k])
        c_t[k] = f * c_prev[k] + i * g
        h_t[k] = o * math.tanh(c_t[k])
    return h_t, c_t
