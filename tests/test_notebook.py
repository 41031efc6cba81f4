"""`check("Q")` from inside a notebook: the kernel's definitions as source, finding the
notebook, the inline report, and (slow) a real check in a separate `grade` process.

A kernel is simulated the way IPython runs cells: code compiled under a file name that is
registered in `linecache`, executed in a namespace dict whose `__name__` is `__main__`.
"""

from __future__ import annotations

import ast
import functools
import itertools
import keyword
import linecache
import subprocess
import types
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.notebook import CheckReport, build_notebook, check, find_notebook, live_source
from grader.results import CheckResult, GradeResult, Outcome, QuestionResult

ROOT = Path(__file__).resolve().parent.parent
_cells = itertools.count(1)


def kernel(*cells: str) -> dict[str, Any]:
    """A namespace after running ``cells`` the way IPython does."""
    namespace: dict[str, Any] = {"__name__": "__main__", "In": [], "Out": {}}
    for code in cells:
        filename = f"<ipython-input-{next(_cells)}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        exec(compile(code, filename, "exec"), namespace)
    return namespace


SIGMOID = """
import numpy as np

def sigmoid(z):
    z = np.asarray(z, dtype=float)
    return np.exp(-np.logaddexp(0.0, -z))
"""


def test_live_source_recreates_definitions() -> None:
    ns = kernel(
        SIGMOID,
        "from numpy.linalg import solve as sv\nimport numpy.linalg\n",
        "answer_1 = 'the chain rule'\nsteps = ['a = b', 'b = c']\nlam = 0.5\n",
        "class Net:\n    def f(self):\n        return helper()\n\ndef helper():\n    return 2\n",
        "alias = helper\n",
    )
    source, notes = live_source(ns)
    tree = ast.parse(source)  # it is valid Python
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    assert names == {"sigmoid", "Net", "helper"}
    for line in (
        "import numpy as np",
        "from numpy.linalg import solve as sv",
        "import numpy",
        "answer_1 = 'the chain rule'",
        "steps = ['a = b', 'b = c']",
        "lam = 0.5",
        "alias = helper",
    ):
        assert line in source.splitlines(), line
    assert "In" not in source and notes == ()
    replayed: dict[str, Any] = {}
    exec(compile(source, "<replay>", "exec"), replayed)
    assert replayed["sigmoid"](0.0) == 0.5 and replayed["Net"]().f() == 2


def test_live_source_sends_arrays_and_sympy_as_data_and_notes_the_rest() -> None:
    import sympy

    ns = kernel("import numpy as np\nX = np.arange(6.0).reshape(2, 3)\n")
    w2, a1, a2, y = sympy.symbols("w2 a1 a2 y")
    ns.update(
        dL_dw2=(a2 - y) * a1, eq=sympy.Eq(w2, a1), handle=open(__file__), check=lambda q: None
    )
    try:
        source, notes = live_source(ns)
    finally:
        ns["handle"].close()
    replayed: dict[str, Any] = {}
    exec(compile(source, "<replay>", "exec"), replayed)
    assert np.array_equal(replayed["X"], ns["X"])
    assert replayed["dL_dw2"] == str((a2 - y) * a1)
    assert replayed["eq"] == "w2 = a1"
    assert "check" not in replayed
    assert notes == ("`handle` (TextIOWrapper) was not sent to the check",)


_LITERALS = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(
    values=st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), _LITERALS, max_size=4
    )
)
def test_live_source_round_trips_literals(values: dict[str, Any]) -> None:
    source, notes = live_source({"__name__": "__main__", **values})
    replayed: dict[str, Any] = {}
    exec(compile(source, "<replay>", "exec"), replayed)
    assert notes == ()
    kept = {
        k: v
        for k, v in values.items()
        if not keyword.iskeyword(k) and k not in ("check", "exit", "quit")
    }
    assert {k: v for k, v in replayed.items() if k != "__builtins__"} == kept


def test_live_source_skips_functions_without_source() -> None:
    ns = kernel("def f():\n    return 1\n")
    exec("def g():\n    return 2\n", ns)  # no linecache entry: like code typed into exec
    source, notes = live_source(ns)
    assert "def f" in source and "def g" not in source
    assert notes == ("`g`: its source could not be found; it was left out",)


def test_find_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = tmp_path / "hw.ipynb"
    nb.write_text("{}")
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert find_notebook({}) is None
    assert find_notebook({"__session__": str(nb)}) == nb
    assert find_notebook({"__session__": str(tmp_path / "gone.ipynb")}) is None
    monkeypatch.setenv("JPY_SESSION_NAME", str(nb))
    assert find_notebook({}) == nb
    monkeypatch.chdir(tmp_path)  # a path relative to the server root, kernel in the folder
    assert find_notebook({"__session__": "course/week3/hw.ipynb"}) == tmp_path / "hw.ipynb"


def test_build_notebook_keeps_markdown_answers(tmp_path: Path) -> None:
    saved = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell(
                "**Answer 1**\n\nchain rule", metadata={"tags": ["answer:1"]}
            ),
            nbformat.v4.new_code_cell("def stale(): pass"),
        ]
    )
    saved.metadata["grader"] = {"assignment": "backprop"}
    path = tmp_path / "hw.ipynb"
    nbformat.write(saved, str(path))
    nb = nbformat.from_dict(build_notebook("def fresh():\n    return 1\n", path, None))
    nbformat.validate(nb)
    assert [c.cell_type for c in nb.cells] == ["code", "markdown"]
    assert "fresh" in nb.cells[0].source and "stale" not in nb.cells[0].source
    assert nb.cells[1].metadata["tags"] == ["answer:1"]
    assert nb.metadata["grader"]["assignment"] == "backprop"
    other = build_notebook("x = 1\n", None, "rnn-lstm")
    assert other["metadata"]["grader"]["assignment"] == "rnn-lstm"
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    assert len(build_notebook("x = 1\n", broken, None)["cells"]) == 1


def _report(outcome: Outcome, message: str = "", hint: str = "") -> CheckReport:
    check_result = CheckResult(
        name="sigmoid(0) is <0.5>",
        question="3",
        description="",
        outcome=outcome,
        score=0.5 if outcome is Outcome.PASSED else 0,
        max_score=0.5,
        message=message,
        hint=hint,
    )
    q = QuestionResult(
        id="3",
        kind="code",
        title="sigmoid(z)",
        score=check_result.score,
        max_score=2,
        checks=(check_result,),
        unchecked_points=1.5,
    )
    return CheckReport("3", GradeResult("backprop", "hw", "process", (q,)), notes=("n<1>",))


def test_report_text_and_html() -> None:
    good = _report(Outcome.PASSED)
    assert good.passed
    assert str(good).splitlines()[0] == "Question 3 (sigmoid(z)): 0.5 / 0.5 points checked here"
    assert "1.5 more points are checked by your instructor" in str(good)
    bad = _report(Outcome.FAILED, "off by <1>", "use np.logaddexp")
    assert not bad.passed
    assert "✗ sigmoid(0) is <0.5> (0/0.5): off by <1>" in str(bad)
    assert "hint: use np.logaddexp" in str(bad)
    page = bad._repr_html_()
    assert "&lt;0.5&gt;" in page and "off by &lt;1&gt;" in page and "n&lt;1&gt;" in page
    assert "<0.5>" not in page
    missing = CheckReport("9", error="assignment 'backprop' has no question '9'")
    assert not missing.passed and "not checked" in str(missing)


@pytest.mark.slow
def test_check_runs_public_checks_on_live_code() -> None:
    good = check("3", namespace=kernel(SIGMOID), assignment="backprop", course=ROOT)
    assert good.passed, str(good)
    assert good.graded is not None and good.graded.score == 2
    wrong = kernel("import numpy as np\n\ndef sigmoid(z):\n    return 1 / (1 + np.exp(z))\n")
    bad = check("3", namespace=wrong, assignment="backprop", course=ROOT)
    assert not bad.passed and bad.graded is not None and bad.graded.score < 2
    missing = check("9", namespace=kernel(SIGMOID), assignment="backprop", course=ROOT)
    assert missing.result is None and "no question '9'" in missing.error


@pytest.mark.slow
def test_check_of_the_saved_template_scores_zero() -> None:
    template = ROOT / "assignments" / "normal-equation" / "template.ipynb"
    report = check("4", path=template, namespace={}, live=False)
    assert report.graded is not None, report.error
    assert report.graded.score == 0 and not report.passed
    assert report.graded.unchecked_points > 0  # the private checks are not run by students


def _replay(source: str) -> dict[str, Any]:
    replayed: dict[str, Any] = {}
    exec(compile(source, "<replay>", "exec"), replayed)
    return replayed


def test_live_source_rebuilds_lambdas_and_renamed_functions() -> None:
    ns = kernel(
        "import numpy as np\nsigmoid = lambda z: 1/(1+np.exp(-z))\n",
        "relu, neg = lambda x: max(x, 0), lambda x: -x\nsquare = (lambda x:\n    x * x)\n",
        "def f():\n    return 1\n\ng = f\nh = g\n",
        "def f():\n    return 2\n",  # g and h keep the first f, f is the new one
        "def make(k):\n    return lambda x: k * x\n\ntriple = make(3)\n",
    )
    source, notes = live_source(ns)
    assert "<lambda>" not in source
    assert "sigmoid = lambda z: 1/(1+np.exp(-z))" in source.splitlines()
    replayed = _replay(source)
    assert replayed["sigmoid"](0.0) == 0.5
    assert (replayed["relu"](-2), replayed["neg"](2), replayed["square"](3)) == (0, -2, 9)
    assert (replayed["f"](), replayed["g"](), replayed["h"]()) == (2, 1, 1)
    assert "triple" not in replayed  # a closure: its text alone cannot rebuild it
    assert notes == (
        "`triple` (a lambda) could not be rebuilt from its cell, so it was left out; "
        "write it as `def triple(...):` to have it checked",
    )


def test_live_source_sends_ufuncs_numpy_scalars_and_containers_of_them() -> None:
    ns = kernel(
        "import numpy as np\nfrom scipy.special import expit\nfrom numpy import exp\n"
        "sigmoid = expit\n",
        "EPS = np.float64(1e-12)\nsteps = (np.int64(3), 2, [np.float32(0.5)])\n"
        "flags = {np.bool_(True): np.nan, 'n': np.uint8(7)}\nholes = np.array([1.0, np.nan])\n"
        "odd = {np.complex128(1 - 2j), np.float64(np.inf)}\none = (np.int8(-1),)\n",
    )
    source, notes = live_source(ns)
    assert notes == ()
    for line in (
        "from scipy.special import expit",
        "from scipy.special import expit as sigmoid",
        "from numpy import exp",
        "EPS = _grader_np.float64(1e-12)",
    ):
        assert line in source.splitlines(), line
    replayed = _replay(source)
    assert replayed["sigmoid"] is ns["expit"] and replayed["exp"] is np.exp
    for name in ("EPS", "steps", "one"):
        assert replayed[name] == ns[name] and repr(replayed[name]) == repr(ns[name]), name
    assert np.isnan(replayed["flags"][np.bool_(True)]) and replayed["flags"]["n"] == 7
    assert replayed["odd"] == ns["odd"]
    assert np.array_equal(replayed["holes"], ns["holes"], equal_nan=True)


@pytest.mark.slow
def test_check_of_a_lambda_over_a_ufunc_and_a_numpy_constant() -> None:
    ns = kernel(
        "import numpy as np\nfrom scipy.special import expit\nEPS = np.float64(1e-12)\n",
        "sigmoid = lambda z: expit(z) + 0 * EPS\n",
    )
    report = check("3", namespace=ns, assignment="backprop", course=ROOT)
    assert report.passed, str(report)
    assert report.graded is not None and report.graded.score == 2


def _ipython_open(file: Any, *args: Any, **kwargs: Any) -> Any:
    return open(file, *args, **kwargs)  # like IPython's: it refuses 0, 1 and 2 first


def test_live_source_leaves_out_what_ipython_put_in_the_namespace() -> None:
    ipython_open = functools.wraps(open)(_ipython_open)
    ns = kernel("x = 1\n")
    assert live_source({**ns, "open": ipython_open}) == ("x = 1\n", ())  # a bare kernel
    shell = types.SimpleNamespace(user_ns_hidden={"open": ipython_open, "ip_helper": object()})

    def get_ipython() -> Any:
        return shell

    get_ipython.__module__ = "IPython.core.interactiveshell"
    ns.update(shell.user_ns_hidden, get_ipython=get_ipython)
    assert live_source(ns) == ("x = 1\n", ())
    own = kernel("def open(path):\n    return path\n")  # the notebook's own `open` is sent
    assert "def open(path):" in live_source(own)[0]


def test_check_words_grade_errors_for_the_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    said = (
        "grade: error: cannot tell which assignment this submission is for (no metadata."
        "grader.assignment or __assignment__); pass --assignment ID (candidates: backprop)\n"
    )

    def grade(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 2, "", said)

    monkeypatch.setattr(subprocess, "run", grade)
    report = check("3", namespace=kernel(SIGMOID))
    assert "--assignment" not in report.error
    assert report.error.endswith("""call check('3', assignment="ID") (candidates: backprop)""")
    lines = str(report).splitlines()
    assert lines[1:] == [
        "  note: the notebook file was not found (pass path=...), so markdown answers were "
        "not included"
    ]
    said = "grade: error: no assignments/ folder found at /x; run from the course folder or "
    said += "pass --course DIR\n"
    assert check("3", namespace={}).error.endswith("""call check('3', course="DIR")""")
