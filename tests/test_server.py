"""The warm grading server: same results as in-process, staleness, privacy, crashes, Ctrl-C.

Every server here lives in a socket folder of its own (``GRADER_SERVER_DIR``) with a short idle
timeout, and every process whose command line names that folder is killed at teardown, where
the test also asserts that none is left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from comparable import comparable
from hypothesis import given, settings
from hypothesis import strategies as st

from grader import server

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "student_submissions" / "backprop" / "seed_student.ipynb"
MODULE = ROOT / "student_submissions" / "backprop" / "mistake_overflow.py"


# --- helpers ---------------------------------------------------------------------------------


def _processes_naming(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text.encode() in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(entry.name))
    return out


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            _reap(pid)
            return True
        time.sleep(0.05)
    return False


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)  # an orphan re-parented to this (sub-reaper) process
    except ChildProcessError:
        pass


def _kill_all(text: str) -> list[int]:
    """Kill every process naming ``text``; return those that were still running."""
    alive = _processes_naming(text)
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _gone(pid, 5.0)
    return alive


@pytest.fixture
def folder() -> Iterator[Path]:
    """A private socket folder with a short path (a socket path has ~100 bytes at most)."""
    path = Path(tempfile.mkdtemp(prefix="gs-", dir="/tmp"))
    path.chmod(0o700)
    yield path
    _kill_all(str(path))
    shutil.rmtree(path, ignore_errors=True)


def _env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GRADER_NO_SERVER"}
    env.update(GRADER_SERVER_DIR=str(folder), GRADER_SERVER_IDLE="60")
    return env


def _grade(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grader.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _server(env: dict[str, str], command: str, *python: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, *(python or ["-m", "grader.server"]), command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    state: dict[str, Any] = json.loads(proc.stdout)
    return state


def _spare_ready(env: dict[str, str]) -> dict[str, Any]:
    """Wait until the server's spare sandbox (a zygote) has finished importing."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = _server(env, "status")
        if state["spare_sandbox"]:
            return state
        time.sleep(0.1)
    raise AssertionError("the server's spare sandbox never became ready")


# --- end to end --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[dict[str, str], dict[str, Any]]]:
    """One server for the module, started over a stale socket file left by a dead one."""
    path = Path(tempfile.mkdtemp(prefix="gs-", dir="/tmp"))
    path.chmod(0o700)
    env = _env(path)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    planted = server.socket_path(path)
    stale.bind(str(planted))
    stale.close()  # the file stays, nobody listens
    state = _server(env, "start")
    yield env, state
    _server(env, "stop")
    assert _gone(state["pid"], 10.0), "the server did not stop when asked"
    assert _kill_all(str(path)) == [], "a server process outlived its test"
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_the_server_replaces_a_stale_socket_and_has_no_threads(
    running: tuple[dict[str, str], dict[str, Any]],
) -> None:
    state = running[1]
    assert state["running"] is True  # it answers where a dead server's socket file was
    assert state["threads"] == 1
    assert state["warm_failures"] == []
    assert state["identity"] == server.identity()


@pytest.mark.slow
@pytest.mark.parametrize("submission", [SEED, MODULE], ids=["notebook", "module"])
def test_results_are_the_same_with_and_without_the_server(
    running: tuple[dict[str, str], dict[str, Any]], tmp_path: Path, submission: Path
) -> None:
    env = running[0]
    before = _spare_ready(env)
    served = before["served"]
    warm = _grade(env, str(submission), "--format", "json", "-o", str(tmp_path / "warm"))
    after = _server(env, "status")
    assert after["served"] == served + 1, "not graded by the server"
    # The grade took the spare sandbox (a zygote, see sandbox/zygote.py) and a new one waits.
    assert after["spares_started"] == before["spares_started"] + 1
    _spare_ready(env)
    cold = _grade(
        env, str(submission), "--format", "json", "-o", str(tmp_path / "cold"), "--no-server"
    )
    assert _server(env, "status")["served"] == served + 1
    assert warm.returncode == cold.returncode == 1, warm.stderr + cold.stderr
    assert warm.stderr == cold.stderr
    assert comparable(json.loads(warm.stdout)) == comparable(json.loads(cold.stdout))
    aid = json.loads(warm.stdout)["assignment"]
    for ext in (".json", ".html"):
        assert (tmp_path / "warm" / aid / (submission.stem + ext)).is_file()
    written = [
        comparable(json.loads((tmp_path / out / aid / f"{submission.stem}.json").read_text()))
        for out in ("warm", "cold")
    ]
    assert written[0] == written[1]


def _slow_submission(folder: Path) -> Path:
    path = folder / "sleeper.py"
    path.write_text('__assignment__ = "backprop"\nimport time\ntime.sleep(30)\n')
    return path


def _start_slow_grade(env: dict[str, str], folder: Path, server_pid: int) -> tuple[Any, int]:
    _spare_ready(env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "grader.cli", str(_slow_submission(folder)), "--no-report"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        # The server's children: the worker, and the bwrap of the spare sandbox (a zygote).
        workers = [pid for pid in _children(server_pid) if b"bwrap" not in _cmdline(pid)]
        if workers and _forked_children():  # the worker's sandbox child runs
            return proc, workers[0]
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("no worker started")


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _forked_children() -> list[int]:
    """Sandbox children forked by a zygote: zygote processes whose parent is a zygote too
    (not bubblewrap, whose command line also names the zygote)."""
    found = []
    for pid in _processes_naming("import zygote"):
        try:
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        mine, parents = _cmdline(pid), _cmdline(ppid)
        if b"bwrap" not in mine and b"import zygote" in parents and b"bwrap" not in parents:
            found.append(pid)
    return found


@pytest.mark.slow
def test_a_crashed_worker_reports_exit_code_3(
    running: tuple[dict[str, str], dict[str, Any]], tmp_path: Path
) -> None:
    env, state = running
    proc, worker = _start_slow_grade(env, tmp_path, state["pid"])
    sandbox = _forked_children()
    os.kill(worker, signal.SIGKILL)  # SIGKILL, not SIGSEGV: no core file in the checkout
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 3
    assert "the grading worker died (SIGKILL)" in err
    assert _gone(worker, 5.0)
    assert sandbox and all(_gone(pid, 5.0) for pid in sandbox)
    assert _server(env, "status")["grading"] == 0


@pytest.mark.slow
def test_ctrl_c_on_the_client_stops_its_worker(
    running: tuple[dict[str, str], dict[str, Any]], tmp_path: Path
) -> None:
    env, state = running
    proc, worker = _start_slow_grade(env, tmp_path, state["pid"])
    sandbox = _forked_children()
    assert sandbox
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "interrupted" in err
    assert _gone(worker, 5.0)
    assert all(_gone(pid, 5.0) for pid in sandbox)
    assert _server(env, "status")["grading"] == 0


@pytest.mark.slow
def test_a_changed_grader_makes_the_server_hand_back_and_exit(folder: Path) -> None:
    # A copy of the package: touching it stands for an upgrade, and no one else's server sees it.
    root = folder / "pkg"
    shutil.copytree(server.PACKAGE, root / "grader", ignore=shutil.ignore_patterns("__pycache__"))
    prefix = f"import sys; sys.path.insert(0, {str(root)!r}); "
    env = _env(folder / "sockets")
    (folder / "sockets").mkdir(mode=0o700)
    state = _server(env, "start", "-c", prefix + "from grader.server import main; sys.exit(main())")
    assert f"grader={root / 'grader'}" in state["identity"]
    later = time.time() + 10
    os.utime(root / "grader" / "results.py", (later, later))
    proc = subprocess.run(
        [sys.executable, "-c", prefix + "from grader.cli import main; sys.exit(main())", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0 and "usage: grade" in proc.stdout  # graded here instead
    assert _gone(state["pid"], 10.0), "the stale server did not exit"
    log = Path(state["socket"]).with_suffix(".log").read_text()
    assert "the installed grader changed since this server started" in log


# --- in-process units ----------------------------------------------------------------------


def test_a_folder_of_another_user_is_refused(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADER_SERVER_DIR", str(folder))
    assert server.private_folder() == folder
    real = os.geteuid()
    monkeypatch.setattr(os, "geteuid", lambda: real + 1)
    with pytest.raises(server.Refused, match=f"belongs to uid {real}, not to you"):
        server.private_folder()


def test_a_folder_open_to_others_is_refused_and_grade_runs_without_a_server(
    folder: Path,
) -> None:
    folder.chmod(0o755)
    proc = _grade(_env(folder), "--help")
    assert proc.returncode == 0
    assert "usage: grade" in proc.stdout
    assert "is open to other users (mode 755)" in proc.stderr
    time.sleep(0.5)
    assert list(folder.iterdir()) == []
    assert _processes_naming(str(folder)) == []


def test_a_missing_folder_is_created_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "a" / "b"
    monkeypatch.setenv("GRADER_SERVER_DIR", str(target))
    assert server.private_folder() == target
    assert target.stat().st_mode & 0o777 == 0o700


def test_the_server_is_off_by_variable_or_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRADER_NO_SERVER", raising=False)
    assert not server.disabled(["x.ipynb", "--format", "json"])
    assert server.disabled(["x.ipynb", "--no-server"])
    assert server.disabled(["--no-se", "x.ipynb"])
    assert not server.disabled(["--", "--no-server"])
    assert not server.disabled(["--no-s", "x.ipynb"])  # ambiguous with --no-solutions
    monkeypatch.setenv("GRADER_NO_SERVER", "1")
    assert server.disabled(["x.ipynb"])
    monkeypatch.setenv("GRADER_NO_SERVER", "0")
    assert not server.disabled(["x.ipynb"])


def test_a_bad_idle_timeout_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADER_SERVER_IDLE", "soon")
    with pytest.raises(server.UsageError, match="GRADER_SERVER_IDLE='soon'"):
        server.idle_timeout()
    monkeypatch.setenv("GRADER_SERVER_IDLE", "2.5")
    assert server.idle_timeout() == 2.5


def _grade_request(argv: list[str]) -> dict[str, Any]:
    return {
        "op": "grade",
        "identity": server.identity(),
        "argv": argv,
        "cwd": "/",
        "env": {"HOME": "/nowhere"},
        "umask": 0o022,
        "dont_write_bytecode": True,
        "stdio": [["utf-8", "strict", False, False]] * 3,
    }


@settings(derandomize=True, max_examples=40, deadline=None)
@given(argv=st.lists(st.text(max_size=40), max_size=8))
def test_a_request_and_its_fds_cross_the_socket_intact(argv: list[str]) -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        request = _grade_request(argv)
        server._send_request(a, request, (0, 1, 2))
        got, fds = server._read_request(b)
        try:
            assert got == request
            assert len(fds) == 3
            assert all(os.path.sameopenfile(fd, n) for n, fd in enumerate(fds))
        finally:
            for fd in fds:
                os.close(fd)


@pytest.mark.parametrize(
    ("request_", "fds", "reason"),
    [
        ({"op": "exec"}, (), "unknown request"),
        (_grade_request(["x"]), (0,), "1 fds passed, 3 needed"),
        ({**_grade_request(["x"]), "argv": "x"}, (0, 1, 2), "argv must be a list"),
        ({**_grade_request(["x"]), "umask": 0o7777}, (0, 1, 2), "umask 4095 out of range"),
        ({**_grade_request(["x"]), "env": {"A": 1}}, (0, 1, 2), "env must map strings"),
    ],
)
def test_a_malformed_request_is_refused_and_its_fds_closed(
    request_: dict[str, Any], fds: tuple[int, ...], reason: str
) -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        before = len(os.listdir("/proc/self/fd"))
        server._send_request(a, request_, fds)
        with pytest.raises(ValueError, match=reason):
            server._read_request(b)
        assert len(os.listdir("/proc/self/fd")) == before
