"""Builds the golden backprop corpus used by tests/test_grade_e2e.py (run: python build_backprop.py).

Each file is a real submission graded through the real `grade` command by the tests.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent / "backprop"

IMPORTS = "import numpy as np\n"
SIGMOID = """def sigmoid(z):
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))
"""
FORWARD = """def forward(x, w1, b1, w2, b2):
    a1 = sigmoid(w1 * np.asarray(x) + b1)
    return a1, sigmoid(w2 * a1 + b2)
"""
BACKWARD = """def backward(x, y, w1, b1, w2, b2):
    a1, a2 = forward(x, w1, b1, w2, b2)
    d2 = a2 - y
    d1 = d2 * w2 * a1 * (1 - a1)
    return {"w1": d1 * x, "b1": d1, "w2": d2 * a1, "b2": d2}
"""
BATCH = """def backward_batch(X, Y, W1, b1, W2, b2):
    n = len(Y)
    H = sigmoid(X @ W1 + b1)
    p = sigmoid(H @ W2 + b2)
    d2 = (p - Y) / n
    d1 = np.outer(d2, W2) * H * (1 - H)
    return {"W1": X.T @ d1, "b1": d1.sum(0), "W2": H.T @ d2, "b2": d2.sum()}
"""


def notebook(cells: list[str | tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["grader"] = {"assignment": "backprop"}
    for cell in cells:
        if isinstance(cell, tuple):
            nb.cells.append(new_markdown_cell(cell[1]))
        else:
            nb.cells.append(new_code_cell(cell))
    return nb


def write(name: str, nb: nbformat.NotebookNode) -> None:
    nbformat.write(nb, HERE / name)


def main() -> None:
    HERE.mkdir(exist_ok=True)
    good = [IMPORTS, SIGMOID, FORWARD, BACKWARD, BATCH]
    write("correct.ipynb", notebook(good))
    (HERE / "correct.py").write_text(
        '__assignment__ = "backprop"\n'
        + "\n\n".join(good)
        + '\n\nif __name__ == "__main__":\n    raise SystemExit("main block must not run")\n'
    )
    write(
        "missing_factor.ipynb",
        notebook([IMPORTS, SIGMOID, FORWARD, BACKWARD.replace(" * a1 * (1 - a1)", ""), BATCH]),
    )
    write(
        "syntax_error.ipynb",
        notebook(
            [
                IMPORTS,
                SIGMOID,
                FORWARD,
                BACKWARD,
                BATCH.replace(
                    "def backward_batch(X, Y, W1, b1, W2, b2):",
                    "def backward_batch(X, Y, W1, b1, W2, b2)",
                ),
            ]
        ),
    )
    write(
        "top_level_exception.ipynb",
        notebook(
            [
                IMPORTS,
                SIGMOID,
                "raise RuntimeError('oops at top level')\n",
                FORWARD,
                BACKWARD,
                BATCH,
            ]
        ),
    )
    write(
        "infinite_loop.ipynb",
        notebook(
            [
                IMPORTS,
                SIGMOID,
                FORWARD,
                "def backward(x, y, w1, b1, w2, b2):\n    while True:\n        pass\n",
                BATCH,
            ]
        ),
    )
    write(
        "magics.ipynb",
        notebook(
            [
                "%matplotlib inline\n!pip install numpy\n" + IMPORTS,
                "%%time\n" + SIGMOID,
                "%%bash\necho hello\n",
                "%load_ext autoreload\n%autoreload 2\n" + FORWARD,
                "x = !ls\n" + BACKWARD,
                BATCH,
            ]
        ),
    )
    # Attacks: none of these may gain a point.
    write(
        "attack_eq_true.ipynb",
        notebook(
            [
                IMPORTS,
                """class Liar:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __bool__(self): return True
    def __float__(self): return 0.5
def sigmoid(z): return Liar()
def forward(x, w1, b1, w2, b2): return Liar(), Liar()
def backward(x, y, w1, b1, w2, b2): return {"w1": Liar(), "b1": Liar(), "w2": Liar(), "b2": Liar()}
def backward_batch(X, Y, W1, b1, W2, b2): return Liar()
""",
            ]
        ),
    )
    write(
        "attack_ndarray_subclass.ipynb",
        notebook(
            [
                IMPORTS,
                """class Always(np.ndarray):
    def __eq__(self, other): return np.ones(np.shape(other), bool)
def sigmoid(z): return np.zeros(np.shape(z)).view(Always)
def forward(x, w1, b1, w2, b2): return np.zeros(3).view(Always), np.zeros(3).view(Always)
def backward(x, y, w1, b1, w2, b2): return {k: np.zeros(1).view(Always) for k in ("w1", "b1", "w2", "b2")}
def backward_batch(X, Y, W1, b1, W2, b2): return {k: np.zeros((0, 3)).view(Always) for k in ("W1", "b1", "W2", "b2")}
""",
            ]
        ),
    )
    write(
        "attack_monkeypatch.ipynb",
        notebook(
            [
                IMPORTS
                + """import numpy.testing, math, builtins
np.allclose = lambda *a, **k: True
np.isclose = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
math.isclose = lambda *a, **k: True
builtins.abs = lambda x: 0
def sigmoid(z): return np.zeros(np.shape(z))
def forward(x, w1, b1, w2, b2): return 0.0, 0.0
def backward(x, y, w1, b1, w2, b2): return {"w1": 0.0, "b1": 0.0, "w2": 0.0, "b2": 0.0}
def backward_batch(X, Y, W1, b1, W2, b2): return {"W1": 0 * W1, "b1": 0 * b1, "W2": 0 * W2, "b2": 0.0}
"""
            ]
        ),
    )
    write(
        "attack_sys_exit.ipynb",
        notebook(
            [
                IMPORTS,
                SIGMOID,
                "import sys\nsys.exit(0)\n",
                FORWARD,
                "import atexit\natexit.register(lambda: print('{\\\"score\\\": 18}'))\n" + BACKWARD,
                "raise SystemExit('stop grading')\n",
                BATCH,
            ]
        ),
    )
    (HERE / "attack_os_exit.py").write_text(
        '__assignment__ = "backprop"\n'
        + IMPORTS
        + SIGMOID
        + FORWARD
        + "import os\n\ndef backward(x, y, w1, b1, w2, b2):\n    os._exit(0)\n\n"
        + BATCH
    )
    (HERE / "attack_read_files.py").write_text(
        '__assignment__ = "backprop"\n'
        + IMPORTS
        + """
import os

def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read(300).decode("utf-8", "replace")
    except OSError as exc:
        return type(exc).__name__

FOUND = [repr(dict(os.environ))]
for path in ("/proc/1/environ", "/proc/1/cmdline", "/etc/shadow", "/etc/passwd"):
    FOUND.append(path + "=" + _read(path))
for top in ("/", "/root", "/home", "/tmp", "/opt", "/work", "/srv", "/mnt"):
    for dirpath, dirnames, files in os.walk(top):
        dirnames[:] = [d for d in dirnames if d not in ("proc", "sys", "usr", "dev", ".pyenv")]
        for name in files:
            if "canary" in name or "secret" in name or name in ("reference.py", "answers.toml"):
                FOUND.append(os.path.join(dirpath, name) + "=" + _read(os.path.join(dirpath, name)))

def sigmoid(z):
    raise RuntimeError("LEAK " + " | ".join(FOUND))
"""
        + FORWARD
        + BACKWARD
        + BATCH
    )
    (HERE / "attack_bombs.py").write_text(
        '__assignment__ = "backprop"\n'
        + IMPORTS
        + SIGMOID
        + FORWARD
        + BATCH
        + """
import os

def backward(x, y, w1, b1, w2, b2):
    if x > 0:
        blob = []
        while True:
            blob.append(bytearray(50 * 2**20))
    while True:
        try:
            os.fork()
        except OSError:
            pass
"""
    )


if __name__ == "__main__":
    main()
