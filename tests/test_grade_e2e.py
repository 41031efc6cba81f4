"""The golden backprop corpus graded end to end through the real `grade` command.

Every file under tests/corpus/backprop is graded once (two at a time) with canaries planted: a
secret environment variable, a secret file in the grader's HOME and one next to the solutions.
Tests then assert on the JSON each run printed.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus" / "backprop"
CODE_QUESTIONS = ("3", "4", "5", "6")
CANARY_ENV = "canary-env-7f3a9c"
CANARY_HOME = "canary-home-51be02"
CANARY_SOLUTIONS = "canary-solutions-c0ffee"

PR_SET_CHILD_SUBREAPER = 36

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def children_before() -> set[int]:
    """Children this process had before the runs (e.g. another test's helpers): not ours."""
    return set(_live_children())


@pytest.fixture(scope="module")
def graded(
    tmp_path_factory: pytest.TempPathFactory, children_before: set[int]
) -> dict[str, dict[str, Any]]:
    base = tmp_path_factory.mktemp("e2e")
    course = base / "course"
    shutil.copytree(ROOT / "assignments", course / "assignments")
    shutil.copytree(ROOT / "solutions", course / "solutions")
    (course / "solutions" / "backprop" / "canary-secret.txt").write_text(CANARY_SOLUTIONS)
    home = base / "home"
    home.mkdir()
    (home / "canary-secret.txt").write_text(CANARY_HOME)
    env = dict(os.environ, GRADER_CANARY_SECRET=CANARY_ENV, HOME=str(home))
    # Orphans of the grade runs (a daemon that escaped) are re-parented to this process.
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1)

    def run(path: Path) -> tuple[str, dict[str, Any]]:
        args = [
            sys.executable,
            "-m",
            "grader.cli",
            str(path),
            "--format",
            "json",
            "--no-report",
            "--course",
            str(course),
        ]
        for q in CODE_QUESTIONS:
            args += ["-q", q]
        t0 = time.monotonic()
        proc = subprocess.run(
            args, capture_output=True, text=True, env=env, timeout=300, check=False
        )
        out: dict[str, Any] = {
            "exit": proc.returncode,
            "stdout": proc.stdout,
            "stderr": proc.stderr,
            "wall": time.monotonic() - t0,
        }
        if proc.stdout.strip():
            out["json"] = json.loads(proc.stdout)
        return path.name, out

    files = sorted(p for p in CORPUS.iterdir() if p.suffix in (".ipynb", ".py"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(run, files))


def scores(result: dict[str, Any]) -> dict[str, float]:
    return {q["id"]: q["score"] for q in result["json"]["questions"]}


FULL = {"3": 2.0, "4": 2.0, "5": 4.0, "6": 4.0}


@pytest.mark.parametrize("name", ["correct.ipynb", "correct.py", "magics.ipynb"])
def test_correct_submissions_get_full_marks(graded: dict[str, Any], name: str) -> None:
    result = graded[name]
    assert result["exit"] == 0, result["stderr"]
    assert scores(result) == FULL
    assert result["json"]["sandbox"] == "bubblewrap"


def test_module_main_block_does_not_run(graded: dict[str, Any]) -> None:
    cells = graded["correct.py"]["json"]["cells"]
    assert all(c["ok"] for c in cells)


def test_magics_are_skipped_with_notes(graded: dict[str, Any]) -> None:
    cells = graded["magics.ipynb"]["json"]["cells"]
    notes = [n for c in cells for n in c["notes"]]
    assert any("!pip install numpy" in n for n in notes)
    assert any("%%bash" in n for n in notes)
    assert any("%%time" in n for n in notes)


def test_missing_factor_loses_only_question_5(graded: dict[str, Any]) -> None:
    result = graded["missing_factor.ipynb"]
    got = scores(result)
    assert got["5"] == 2.0  # w1 and b1 wrong, w2 and b2 right
    assert {k: v for k, v in got.items() if k != "5"} == {"3": 2.0, "4": 2.0, "6": 4.0}
    check = result["json"]["questions"][2]["checks"][0]
    assert "w1" in check["message"] and "b1" in check["message"]
    assert "a1(1 − a1)" in check["hint"]
    table = [d for d in check["details"] if d["type"] == "gradient_table"]
    assert table and {r["parameter"]: r["ok"] for r in table[0]["rows"]} == {
        "w1": False,
        "b1": False,
        "w2": True,
        "b2": True,
    }
    assert result["exit"] == 1


def test_syntax_error_costs_only_that_cells_functions(graded: dict[str, Any]) -> None:
    result = graded["syntax_error.ipynb"]
    assert scores(result) == {**FULL, "6": 0.0}
    bad = [c for c in result["json"]["cells"] if not c["ok"]]
    assert len(bad) == 1 and bad[0]["error_type"] == "SyntaxError"


def test_top_level_exception_is_recorded_and_grading_goes_on(graded: dict[str, Any]) -> None:
    result = graded["top_level_exception.ipynb"]
    assert scores(result) == FULL
    bad = [c for c in result["json"]["cells"] if not c["ok"]]
    assert [b["error_type"] for b in bad] == ["RuntimeError"]
    assert "oops at top level" in bad[0]["traceback"]
    assert "grader" not in bad[0]["traceback"]  # only the student's own frames


def test_infinite_loop_times_out_only_question_5(graded: dict[str, Any]) -> None:
    result = graded["infinite_loop.ipynb"]
    assert scores(result) == {**FULL, "5": 0.0}
    outcome = result["json"]["questions"][2]["checks"][0]["outcome"]
    assert outcome == "timeout"
    assert result["wall"] < 30


@pytest.mark.parametrize(
    "name", ["attack_eq_true.ipynb", "attack_ndarray_subclass.ipynb", "attack_monkeypatch.ipynb"]
)
def test_comparison_attacks_gain_nothing(graded: dict[str, Any], name: str) -> None:
    result = graded[name]
    assert result["exit"] == 1, result["stderr"]
    assert sum(scores(result).values()) == 0.0


def test_sys_exit_and_atexit_gain_nothing(graded: dict[str, Any]) -> None:
    result = graded["attack_sys_exit.ipynb"]
    # The honest functions still earn their points; the exits are recorded per cell.
    assert scores(result) == FULL
    errors = [c["error_type"] for c in result["json"]["cells"] if not c["ok"]]
    assert errors == ["SystemExit", "SystemExit"]
    assert '"score": 18' not in result["stdout"]


def test_os_exit_in_a_function_costs_only_that_question(graded: dict[str, Any]) -> None:
    result = graded["attack_os_exit.py"]
    assert scores(result) == {**FULL, "5": 0.0}
    check = result["json"]["questions"][2]["checks"][0]
    assert check["outcome"] == "error" and "crashed" in check["message"]


def test_bombs_are_contained(graded: dict[str, Any]) -> None:
    result = graded["attack_bombs.py"]
    assert scores(result) == {**FULL, "5": 0.0}
    assert result["wall"] < 60


def test_no_secret_leaks_into_any_output(graded: dict[str, Any]) -> None:
    leak_probe = graded["attack_read_files.py"]
    assert "LEAK" in leak_probe["stdout"]  # the probe did run and report what it saw
    for name, result in graded.items():
        for canary in (CANARY_ENV, CANARY_HOME, CANARY_SOLUTIONS):
            assert canary not in result["stdout"], (name, canary)
            assert canary not in result["stderr"], (name, canary)


def _live_children() -> dict[int, bytes]:
    """This process's live children (a zombie is dead, merely unreaped)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == os.getpid() and state != "Z":
            found[int(proc.name)] = cmdline[:100]
    return found


def test_no_process_is_left_behind(graded: dict[str, Any], children_before: set[int]) -> None:
    assert graded  # every run has finished
    time.sleep(0.2)
    leftovers = [cmd for pid, cmd in _live_children().items() if pid not in children_before]
    assert leftovers == []


def _grade_without_bwrap(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PATH="/nonexistent")  # no bwrap to be found
    return subprocess.run(
        [sys.executable, "-m", "grader.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
        cwd=ROOT,
    )


def test_without_bubblewrap_grade_falls_back_and_says_so() -> None:
    proc = _grade_without_bwrap(
        str(CORPUS / "correct.py"), "-q", "3", "--format", "json", "--no-report"
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["sandbox"] == "process"
    warning = proc.stderr.strip().splitlines()
    assert len(warning) == 1 and "bubblewrap is not installed" in warning[0]
    assert "process" in warning[0]


def test_without_bubblewrap_a_batch_refuses_the_weak_mode(tmp_path: Path) -> None:
    folder = tmp_path / "subs"
    folder.mkdir()
    shutil.copy(CORPUS / "correct.py", folder / "alice.py")
    proc = _grade_without_bwrap("batch", str(folder), "--output-dir", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "bubblewrap is not installed" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_ctrl_c_during_the_checks_exits_130(tmp_path: Path) -> None:
    """An interrupt in the middle of a check stops the grade (it is not a failed check)."""
    import signal

    path = tmp_path / "slow.py"
    path.write_text(
        '__assignment__ = "backprop"\nimport time\n\ndef sigmoid(z):\n    time.sleep(30)\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "grader.cli", str(path), "--no-report"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3)  # the first sigmoid call is waiting on its sandbox by now
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert time.monotonic() - started < 5
