# Common mistakes: rnn_forward returns h_0 … h_T, shape (T + 1, h) (question 3), dWh built
# from h_t instead of h_{t−1} (question 4), and the LSTM input concatenated as [h_prev, x_t]
# (question 5).
import numpy as np

__assignment__ = "rnn-lstm"


def rnn_step(x_t, h_prev, Wx, Wh, b):
    return np.tanh(Wx @ x_t + Wh @ h_prev + b)


def rnn_forward(xs, h0, Wx, Wh, b):
    hs = [h0]
    for x_t in xs:
        hs.append(rnn_step(x_t, hs[-1], Wx, Wh, b))
    return np.array(hs)


def rnn_backward(xs, h0, Wx, Wh, b, dhs):
    hs = rnn_forward(xs, h0, Wx, Wh, b)[1:]
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dh = np.zeros_like(h0)
    for t in reversed(range(len(xs))):
        dz = (dhs[t] + dh) * (1 - hs[t] ** 2)
        dWx += np.outer(dz, xs[t])
        dWh += np.outer(dz, hs[t])
        db += dz
        dh = Wh.T @ dz
    return {"Wx": dWx, "Wh": dWh, "b": db, "h0": dh}


def lstm_step(x_t, h_prev, c_prev, W, b):
    n = len(h_prev)
    z = W @ np.concatenate([h_prev, x_t]) + b
    i, f, o = (1 / (1 + np.exp(-z[k * n : (k + 1) * n])) for k in range(3))
    c_t = f * c_prev + i * np.tanh(z[3 * n :])
    return o * np.tanh(c_t), c_t
