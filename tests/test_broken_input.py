"""Broken and hostile input files: one clear line on stderr, exit code 2, no traceback.

The files are written at test time (a sparse 100 MB notebook, 10 000 cells, giant base64
outputs, ...) or taken from ``tests/corpus/broken``; nothing big is committed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from grader.cli import main
from grader.submission import read_submission

REPO = Path(__file__).resolve().parent.parent
BROKEN = REPO / "tests" / "corpus" / "broken"


def notebook(cells: list[dict[str, Any]], metadata: dict[str, Any] | None = None) -> str:
    return json.dumps(
        {"nbformat": 4, "nbformat_minor": 5, "metadata": metadata or {}, "cells": cells}
    )


def code(source: str, tags: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "source": source,
        "metadata": {"tags": list(tags)},
        "outputs": [],
        "execution_count": None,
    }


def markdown(source: str, tags: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"cell_type": "markdown", "source": source, "metadata": {"tags": list(tags)}}


BACKPROP = {"grader": {"assignment": "backprop"}}


def write(name: str, data: str | bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8")
        return path

    return make


def sparse_notebook(folder: Path) -> Path:
    path = folder / "huge.ipynb"
    with path.open("wb") as f:
        f.write(b'{"nbformat": 4, "cells": [')
        f.truncate(100 << 20)  # 100 MB, almost all of it a hole: nothing is written to disk
    return path


def base64_outputs(folder: Path) -> Path:
    cell = code("import numpy as np")
    cell["outputs"] = [
        {
            "output_type": "display_data",
            "metadata": {},
            "data": {"image/png": "iVBORw0KGgo" * (3 << 20)},
        }
    ]
    return write("plots.ipynb", notebook([cell], BACKPROP))(folder)


def symlink_loop(folder: Path) -> Path:
    (folder / "a.ipynb").symlink_to(folder / "b.ipynb")
    (folder / "b.ipynb").symlink_to(folder / "a.ipynb")
    return folder / "a.ipynb"


def fifo(folder: Path) -> Path:
    os.mkfifo(folder / "pipe.ipynb")
    return folder / "pipe.ipynb"


def directory(folder: Path) -> Path:
    (folder / "sub.ipynb").mkdir()
    return folder / "sub.ipynb"


def corpus(name: str) -> Callable[[Path], Path]:
    return lambda folder: BROKEN / name


CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "malformed-json": (corpus("malformed.ipynb"), "is not JSON (line"),
    "nbformat-2": (
        write("v2.ipynb", '{"nbformat": 2, "nbformat_minor": 0, "worksheets": []}'),
        "old nbformat 2 notebook",
    ),
    "nbformat-5": (write("v5.ipynb", '{"nbformat": 5, "cells": []}'), "newer than"),
    "nbformat-text": (write("v.ipynb", '{"nbformat": "4", "cells": []}'), "not a whole number"),
    "not-a-notebook": (corpus("not_a_notebook.ipynb"), "has no nbformat version"),
    "json-list": (write("list.ipynb", "[1, 2, 3]"), "its JSON is a list"),
    "python-in-ipynb": (write("code.ipynb", "import numpy as np\n"), "is not JSON"),
    "text-file": (write("notes.txt", "hello"), "expected a .ipynb notebook or a .py module"),
    "empty-notebook": (write("empty.ipynb", ""), "is empty"),
    "empty-module": (write("empty.py", ""), "is empty"),
    "binary": (corpus("binary.ipynb"), "is a binary file"),
    "png": (write("plot.py", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(200)), "binary file"),
    "latin-1-module": (corpus("latin1.py"), "is not UTF-8 text"),
    "latin-1-notebook": (
        write(
            "l.ipynb", notebook([code("# caf\xe9")]).replace("\\u00e9", "\xe9").encode("latin-1")
        ),
        "is not UTF-8 text",
    ),
    "utf-16": (write("u.ipynb", notebook([code("x = 1")]).encode("utf-16")), "UTF-16"),
    "100-MB": (sparse_notebook, "more than the 20 MB"),
    "10000-cells": (
        write("many.ipynb", notebook([code(f"x = {i}") for i in range(10_000)])),
        "has 10000 cells",
    ),
    "giant-base64": (base64_outputs, "clear the outputs"),
    "nan": (
        write("nan.ipynb", '{"nbformat": 4, "nbformat_minor": NaN, "cells": []}'),
        "NaN is not valid JSON",
    ),
    "deep-json": (write("deep.ipynb", "[" * 100_000 + "]" * 100_000), "nested too deeply"),
    "cells-not-list": (write("c.ipynb", '{"nbformat": 4, "cells": "x"}'), "'cells' is a string"),
    "cell-not-object": (write("c.ipynb", '{"nbformat": 4, "cells": [5]}'), "cell 1 is a number"),
    "source-not-text": (
        write("s.ipynb", notebook([{"cell_type": "code", "source": 5}])),
        "source of cell 1 is not text",
    ),
    "lone-surrogate": (
        write("s.ipynb", notebook([code("x = '\\ud800'")]).replace("\\\\ud800", "\\ud800")),
        "lone surrogate",
    ),
    "missing-assignment": (
        write("nometa.ipynb", notebook([code("x = 1")])),
        "cannot tell which assignment",
    ),
    "unknown-assignment": (corpus("unknown_assignment.ipynb"), "unknown here"),
    "directory": (directory, "is a folder"),
    "symlink-loop": (symlink_loop, "Too many levels of symbolic links"),
    "fifo": (fifo, "is not a regular file"),
    "missing-file": (lambda folder: folder / "nothing.ipynb", "No such file"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_input_is_one_clear_line(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, expected = CASES[case]
    path = make(tmp_path)
    started = time.monotonic()
    code_ = main([str(path), "--no-report", "--course", str(REPO)])
    out, err = capsys.readouterr()
    assert code_ == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("grade: error: ")
    assert expected in lines[0]
    assert str(path) in lines[0] or case in ("missing-assignment",)
    assert time.monotonic() - started < 10


def test_outputs_are_not_read_into_cells(tmp_path: Path) -> None:
    """Big (but accepted) outputs cost parsing time only: cells keep their source alone."""
    cell = code("import numpy as np")
    cell["outputs"] = [
        {"output_type": "display_data", "metadata": {}, "data": {"image/png": "A" * (15 << 20)}}
    ]
    path = tmp_path / "plots.ipynb"
    path.write_text(notebook([cell], BACKPROP))
    started = time.monotonic()
    sub = read_submission(path)
    assert time.monotonic() - started < 5
    assert [c.code for c in sub.code_cells] == ["import numpy as np"]


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.ipynb"
    path.write_bytes(b"\xef\xbb\xbf" + notebook([code("x = 1")], BACKPROP).encode())
    assert read_submission(path).assignment_hint == "backprop"


@pytest.mark.slow
def test_real_command_exits_2_without_traceback(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("grade")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "grader.cli"]
    for path in (BROKEN / "binary.ipynb", BROKEN / "malformed.ipynb", symlink_loop(tmp_path)):
        proc = subprocess.run(
            [*command, str(path), "--no-report", "--course", str(REPO)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_nbformat_3_is_upgraded() -> None:
    sub = read_submission(BROKEN / "nbformat3.ipynb")
    assert sub.kind == "notebook"
    assert [c.kind for c in sub.cells] == ["code"]
    assert "def sigmoid(z):" in sub.cells[0].code
