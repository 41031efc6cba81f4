# loses: 1a
# Mutant of rnn-lstm: question 1a answered by a bare list of rubric words (code correct).
import numpy as np

__assignment__ = "rnn-lstm"


def rnn_step(x_t, h_prev, Wx, Wh, b):
    return np.tanh(Wx @ x_t + Wh @ h_prev + b)


def rnn_forward(xs, h0, Wx, Wh, b):
    hs = []
    h = h0
    for x_t in xs:
        h = np.tanh(Wx @ x_t + Wh @ h + b)
        hs.append(h)
    return np.array(hs)


def rnn_backward(xs, h0, Wx, Wh, b, dhs):
    hs, h = [], h0
    for x_t in xs:
        h = np.tanh(Wx @ x_t + Wh @ h + b)
        hs.append(h)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dh_next = np.zeros_like(h0)
    for t in reversed(range(len(xs))):
        h_prev = hs[t - 1] if t > 0 else h0
        dz = (dhs[t] + dh_next) * (1 - hs[t] ** 2)
        dWx += np.outer(dz, xs[t])
        dWh += np.outer(dz, h_prev)
        db += dz
        dh_next = Wh.T @ dz
    return {"Wx": dWx, "Wh": dWh, "b": db, "h0": dh_next}


def lstm_step(x_t, h_prev, c_prev, W, b):
    n = h_prev.shape[0]
    z = W @ np.concatenate([x_t, h_prev]) + b
    i = 1 / (1 + np.exp(-z[:n]))
    f = 1 / (1 + np.exp(-z[n : 2 * n]))
    o = 1 / (1 + np.exp(-z[2 * n : 3 * n]))
    g = np.tanh(z[3 * n :])
    c_t = f * c_prev + i * g
    h_t = o * np.tanh(c_t)
    return h_t, c_t


# %%
answer_1a = "sequence step by step hidden state memory shared weights time steps"
