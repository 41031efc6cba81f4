"""The attack checklist of issue 6, each attack a submission graded by the real ``grade`` command.

Every run plants canaries (a secret environment variable in the grader's environment, a secret
file next to the solutions and one in the grader's home folder) and then checks that the attack
gained no point beyond what its honest part earns, that no canary value appears anywhere in
the grader's output, that no process carrying the run's marker is left behind, that the grader
exited with 0 or 1 (never 3) and that it finished in bounded time. The course is a copy of
this repository's with shorter time limits, so that hanging attacks cost seconds, not minutes.

Every attack runs twice: against a child started directly under bubblewrap (as ``grade`` does
for one submission) and against a child forked by a zygote (as batch workers do), which must
hold exactly as well.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grader.checks.numeric import compare
from grader.errors import CheckProblem

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "corpus" / "attacks"
ENV_CANARY = "GRADER_TEST_SECRET"
HONEST = {"3": 2.0}  # every attack file has an honest sigmoid: question 3, 2 points
TIME_LIMITS = "[limits]\ncall_timeout = 1.5\ncell_timeout = 3\ntotal_timeout = 90\n"


@dataclass
class Course:
    root: Path
    home: Path
    work: Path
    tokens: dict[str, str]
    secret_paths: list[Path] = field(default_factory=list)
    zygote: bool = False


def _token() -> str:
    return "GRADERCANARY" + secrets.token_hex(10)


@pytest.fixture(scope="module", params=["direct", "zygote"])
def course(request: pytest.FixtureRequest) -> Iterator[Course]:
    """A readable copy of the course with canaries planted; removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="grader-attacks-"))
    os.chmod(base, 0o755)  # readable by others: only the sandbox may keep the child out
    try:
        root = base / "course"
        for part in ("assignments", "solutions"):
            shutil.copytree(REPO / part / "backprop", root / part / "backprop")
        spec = root / "assignments" / "backprop" / "spec.toml"
        text = re.sub(r"\[limits\][^\[]*", TIME_LIMITS + "\n", spec.read_text(), count=1)
        spec.write_text(text)
        tokens = {"env": _token(), "solutions": _token(), "home": _token()}
        home = base / "home"
        home.mkdir()
        planted = [root / "solutions" / "backprop" / "secret_notes.txt", home / ".secret"]
        planted[0].write_text(f"expected answers: {tokens['solutions']}\n")
        planted[1].write_text(f"api key: {tokens['home']}\n")
        work = base / "work"
        work.mkdir()
        yield Course(root, home, work, tokens, planted, zygote=request.param == "zygote")
    finally:
        shutil.rmtree(base, ignore_errors=True)


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    marker: str

    @property
    def result(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.stdout)
        return data

    def scores(self) -> dict[str, float]:
        return {q["id"]: q["score"] for q in self.result["questions"]}

    def messages(self) -> str:
        parts = [c["message"] for q in self.result["questions"] for c in q["checks"]]
        parts += [c.get("error_message", "") for c in self.result.get("cells", [])]
        return "\n".join(parts)


def grade_command() -> list[str]:
    script = Path(sys.executable).with_name("grade")
    return [str(script)] if script.exists() else [sys.executable, "-m", "grader.cli"]


def marked_processes(marker: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "cmdline").read_bytes() + b" " + (entry / "comm").read_bytes()
        except OSError:
            continue
        if marker.encode() in text:
            found.append(f"{entry.name}: {text[:80]!r}")
    return found


def grade(
    course: Course,
    name: str,
    *,
    fmt: str = "json",
    fill: dict[str, str] | None = None,
    time_limit: float = 60.0,
) -> Run:
    """Grade one attack file; check everything every attack must respect."""
    marker = "atk" + secrets.token_hex(6)
    text = (CORPUS / name).read_text().replace("__MARKER__", marker)
    for key, value in (fill or {}).items():
        text = text.replace(key, value)
    path = course.work / name
    path.write_text(text)
    os.chmod(path, 0o644)
    env = dict(os.environ, HOME=str(course.home), **{ENV_CANARY: course.tokens["env"]})
    env["GRADER_ZYGOTE"] = "1" if course.zygote else "0"
    started = time.monotonic()
    proc = subprocess.run(
        [*grade_command(), str(path), "--format", fmt, "--no-report", "--course", str(course.root)],
        cwd=course.work,
        env=env,
        capture_output=True,
        text=True,
        timeout=time_limit + 30,
        check=False,
    )
    run = Run(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started, marker)
    assert run.returncode in (0, 1), run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert run.seconds < time_limit
    for kind, token in course.tokens.items():
        assert token not in run.stdout + run.stderr, f"the {kind} canary leaked"
    deadline = time.monotonic() + 1.0
    while marked_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marked_processes(marker) == []
    return run


def assert_only_honest_points(run: Run) -> None:
    scores = run.scores()
    for qid, score in scores.items():
        assert score == HONEST.get(qid, 0.0), (qid, score, run.messages()[:3000])
    assert run.result["score"] == sum(HONEST.values())
    assert run.returncode == 1


# --- 1. comparison tricks ---------------------------------------------------------------------


def test_comparison_tricks_earn_nothing(course: Course) -> None:
    run = grade(course, "comparison_tricks.py")
    assert_only_honest_points(run)


def test_each_trick_is_refused_on_its_own() -> None:
    """Every trick value, sent through the real sandbox and wire, fails a comparison."""
    from grader.remote import Runner, SubmissionProxy
    from grader.sandbox.launcher import Launcher, Mode
    from grader.submission import read_submission

    sub = read_submission(CORPUS / "comparison_tricks.py")
    runner = Runner(Launcher(Mode.BUBBLEWRAP), sub.cells, module_name="__submission__")
    try:
        assert all(run.ok for run in runner.start())
        proxy = SubmissionProxy(runner)
        count = proxy.get("TRICK_COUNT")
        assert count >= 20
        for i in range(count):
            for n, expected in ((3, np.array([0.1, 0.2, 0.3])), (1, np.array(0.5))):
                with pytest.raises(CheckProblem):
                    compare(proxy.trick_value(i, n), expected, name=f"trick {i}", scalar_ok=n == 1)
    finally:
        runner.close()


# --- 2. monkeypatching and hunting for expected values ------------------------------------------


def test_monkeypatching_and_frame_walking_earn_nothing(course: Course) -> None:
    assert_only_honest_points(grade(course, "monkeypatch.py"))


# --- 3. the wire --------------------------------------------------------------------------------


def test_forged_records_cost_only_the_forging_calls(course: Course) -> None:
    run = grade(course, "wire_forgery.py")
    assert_only_honest_points(run)
    cells = run.result["cells"]
    died = [c for c in cells if c["error_type"] == "ProcessDied"]
    assert len(died) == 6
    assert all("invalid data" in c["error_message"] for c in died)


# --- 4. process control -------------------------------------------------------------------------


def test_exits_signals_sleepers_and_daemons_gain_nothing(course: Course) -> None:
    run = grade(course, "process_control.py")
    assert_only_honest_points(run)
    assert run.result["full_marks"] is False if "full_marks" in run.result else True
    assert '"score": 18.0' not in run.stdout  # the atexit hook's fake result never surfaces
    outcomes = {
        c["outcome"] for q in run.result["questions"] if q["id"] in "456" for c in q["checks"]
    }
    assert "timeout" in outcomes  # the busy loop and the sleeper were stopped by the clock


# --- 5. resources and output ------------------------------------------------------------------


@pytest.fixture(scope="module")
def resources_run(course: Course) -> Run:
    return grade(course, "resources.py")


def test_memory_processes_output_and_files_gain_nothing(resources_run: Run) -> None:
    run = resources_run
    assert_only_honest_points(run)
    assert len(run.stdout) < 1 << 20  # the 100 MB flood stayed in the sandbox
    types = [c["error_type"] for c in run.result["cells"]]
    assert "MemoryError" in types
    assert types.count("PermissionError") >= 2  # fork and subprocess refused


def test_terminal_summary_carries_no_control_characters(resources_run: Run) -> None:
    """A student's message must not clear, retitle or overwrite the grader's terminal."""
    from grader.report.terminal import summary
    from grader.results import GradeResult

    text = summary(GradeResult.from_json(resources_run.result))
    assert "ValueError" in text  # the cell whose message carries the escape codes is shown
    assert [c for c in text if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) < 0xA0] == []


# --- 6. secrets ---------------------------------------------------------------------------------


def test_secrets_are_out_of_reach(course: Course) -> None:
    paths = [
        *course.secret_paths,
        course.root / "solutions" / "backprop",
        course.root / "solutions" / "backprop" / "checks",
        REPO / "grader",
        course.home,
    ]
    run = grade(course, "secrets.py", fill={"__SECRET_PATHS__": "\n".join(map(str, paths))})
    assert_only_honest_points(run)
    messages = run.messages()
    assert "SEARCHED" in messages and "FOUND: nothing" in messages
    for path in paths:
        assert f"'{path}': 'dir:" not in messages and f"'{path}': 'read" not in messages


# --- 7. network and privilege -------------------------------------------------------------------


class Listeners:
    """TCP and UDP listeners on the host's loopback, and an abstract Unix socket."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.socks: list[socket.socket] = []
        self.addresses: dict[str, str] = {}
        self._stop = threading.Event()
        for name, family, kind, host in (
            ("tcp4", socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1"),
            ("udp4", socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.1"),
            ("tcp6", socket.AF_INET6, socket.SOCK_STREAM, "::1"),
            ("udp6", socket.AF_INET6, socket.SOCK_DGRAM, "::1"),
        ):
            try:
                s = socket.socket(family, kind)
                s.bind((host, 0))
            except OSError:
                continue  # no IPv6 on this machine: the attack's attempt fails anyway
            self._add(name, s, str(s.getsockname()[1]))
        abstract = "grader-test-" + secrets.token_hex(6)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind("\0" + abstract)
        self._add("abstract", s, abstract)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _add(self, name: str, s: socket.socket, address: str) -> None:
        if s.type == socket.SOCK_STREAM:
            s.listen(4)
        s.setblocking(False)
        self.socks.append(s)
        self.addresses[name] = address

    def _serve(self) -> None:
        import select

        while not self._stop.is_set():
            ready, _, _ = select.select(self.socks, [], [], 0.1)
            for s in ready:
                if s.type == socket.SOCK_STREAM:
                    conn, _ = s.accept()
                    self.hits.append(f"connection on {s.getsockname()!r}")
                    conn.close()
                else:
                    data, peer = s.recvfrom(100)
                    self.hits.append(f"datagram {data!r}")
                    s.sendto(b"pong", peer)

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=2)
        for s in self.socks:
            s.close()


def test_network_and_privileged_interfaces_are_closed(course: Course) -> None:
    listeners = Listeners()
    try:
        net = "\n".join(f"{k}={v}" for k, v in listeners.addresses.items())
        run = grade(course, "network_privilege.py", fill={"__NET__": net})
    finally:
        listeners.close()
    assert listeners.hits == []
    assert_only_honest_points(run)
    report = next(m for m in run.messages().splitlines() if "PROBES" in m)
    probes = dict(p.split("=", 1) for p in report.split("PROBES ", 1)[1].split())
    assert len(probes) >= 35
    assert [k for k, v in probes.items() if v == "ESCAPED"] == []
    for name in ("tcp4", "tcp6", "udp4", "udp6", "vsock", "netlink", "packet", "inet_raw"):
        assert probes[name] == "EAFNOSUPPORT", name
    for name in (
        "ptrace_attach_1",
        "keyctl",
        "io_uring",
        "bpf",
        "unshare_user",
        "clone_newuser",
        "tiocsti_stdin",
    ):
        assert probes[name] == "EPERM", name
