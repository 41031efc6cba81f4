"""Faults: a batch killed with SIGKILL and re-run, two batches on one folder, repeat grading.

Every test runs the real ``grade`` command in a subprocess. The kill test stops ``grade batch``
at seeded random moments (after a random delay, on the k-th file write, while a class file is
being written), sometimes its whole process group and sometimes the batch process alone, checks
that no process of the batch or its sandboxes survives and that no file is half-written, and
re-runs it until a run finishes; the result must be the gradebook of an uninterrupted run.
These tests never signal a process they did not start.
"""

from __future__ import annotations

import csv
import ctypes
import io
import json
import os
import random
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from grader.batch_store import STATE_DIR

ROOT = Path(__file__).resolve().parent.parent
SUBMISSIONS = {
    "alice.ipynb": ROOT / "student_submissions" / "backprop" / "correct_loops.ipynb",
    "bob/hw.ipynb": ROOT / "student_submissions" / "backprop" / "mistake_sign_error.ipynb",
    "carol.py": ROOT / "student_submissions" / "backprop" / "correct_sympy.py",
    "dan.ipynb": ROOT / "tests" / "corpus" / "backprop" / "infinite_loop.ipynb",
    "erin.ipynb": ROOT / "tests" / "corpus" / "backprop" / "missing_factor.ipynb",
}
UNREADABLE = ("zed.ipynb", "{ not json")
STUDENTS = ["alice", "bob", "carol", "dan", "erin", "zed"]
CLASS_FILES = ("grades.csv", "canvas.csv", "summary.html")
TIMING_KEYS = frozenset({"duration_s", "timings", "execution_time"})
GRADED_IN = re.compile(r"Graded by grader (\S+) in [0-9.]+ s\.")
SANDBOX_MARKS = ("/opt/grader", "bwrap")
SEED = 61
KILLS = 12
PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 36, 37
IN_CREATE = 0x100


def grade(*args: str) -> list[str]:
    return [sys.executable, "-m", "grader.cli", *args]


def batch(subs: Path, out: Path) -> list[str]:
    return grade("batch", str(subs), "--jobs", "2", "--output-dir", str(out), "--course", str(ROOT))


def without_timings(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: without_timings(v) for k, v in data.items() if k not in TIMING_KEYS}
    if isinstance(data, list):
        return [without_timings(v) for v in data]
    return data


def first_difference(a: Any, b: Any, where: str = "") -> str:
    """Where two JSON values first differ, for a readable failure."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(a.keys() | b.keys()):
            if a.get(k) != b.get(k):
                return first_difference(a.get(k), b.get(k), f"{where}/{k}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return first_difference(x, y, f"{where}[{i}]")
    return f"{where or '/'}: {str(a)[:200]!r} != {str(b)[:200]!r}"


def gradebook(out: Path) -> dict[str, Any]:
    """Every file under ``out`` with what may differ between equal runs taken out: timings
    in the JSON files, the "graded in N s" line of the reports, the pid in the lock, and the
    grading times kept to order the next run (written once a run has graded, so a run killed
    before that leaves none)."""
    files: dict[str, Any] = {}
    for path in sorted(out.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(out).as_posix()
        if rel == f"{STATE_DIR}/.seconds.json":
            continue
        if rel == f"{STATE_DIR}/lock":
            files[rel] = None
        elif path.suffix == ".json":
            files[rel] = without_timings(json.loads(path.read_text(encoding="utf-8")))
        elif path.suffix == ".html":
            files[rel] = GRADED_IN.sub(r"Graded by grader \1 in - s.", path.read_text("utf-8"))
        else:
            files[rel] = path.read_text(encoding="utf-8")
    return files


def assert_same_gradebook(out: Path, expected: dict[str, Any]) -> None:
    got = gradebook(out)
    assert sorted(got) == sorted(expected), "a different set of files"
    differ = [name for name in expected if got[name] != expected[name]]
    assert differ == [], f"{differ} differ; first: {differ and got[differ[0]]!r:.300}"


def assert_no_half_written_file(out: Path) -> set[Path]:
    """Every file a reader could open is complete; return the temporary files."""
    temporary = set()
    for path in out.rglob("*"):
        if not path.is_file() or path.name == "lock":
            continue
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            temporary.add(path)
            continue
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            assert isinstance(json.loads(text), dict), path
        elif path.suffix == ".html":
            assert text.endswith("</html>\n"), path
        elif path.suffix == ".csv":
            rows = list(csv.reader(io.StringIO(text)))
            assert text.endswith("\n") and len({len(r) for r in rows}) == 1, path
            if path.name == "grades.csv":
                assert len(rows) == 1 + len(STUDENTS), path
        else:
            pytest.fail(f"unexpected file {path}")
    return temporary


# --- processes ----------------------------------------------------------------------------------


@pytest.fixture
def subreaper() -> Iterator[None]:
    """Orphans of a killed batch (workers, sandboxes) are re-parented to this process, where
    they can be seen and reaped, instead of to init."""
    libc = ctypes.CDLL(None, use_errno=True)
    was = ctypes.c_int(0)
    libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(was), 0, 0, 0)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    yield
    libc.prctl(PR_SET_CHILD_SUBREAPER, was.value, 0, 0, 0)


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) for every process this one can see."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # it ended while we looked
        fields = stat.rsplit(")", 1)[1].split()
        table[int(entry)] = (int(fields[1]), fields[0])
    return table


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def children() -> set[int]:
    me = os.getpid()
    return {pid for pid, (ppid, _) in process_table().items() if ppid == me}


def live_descendants(known: set[int]) -> list[tuple[int, str]]:
    """Living processes descended from children of ours not in ``known``; reaps zombies."""
    me = os.getpid()
    table = process_table()
    below: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        below.setdefault(ppid, []).append(pid)
    todo = [pid for pid in below.get(me, []) if pid not in known]
    alive = []
    while todo:
        pid = todo.pop()
        todo += below.get(pid, [])
        ppid, state = table[pid]
        if state == "Z":
            if ppid == me:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
            continue
        alive.append((pid, cmdline(pid)))
    return alive


def survivors(known: set[int], grace: float = 10.0) -> list[tuple[int, str]]:
    """What is still alive of a killed batch after ``grace`` seconds (dying takes a moment)."""
    deadline = time.monotonic() + grace
    while (alive := live_descendants(known)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return alive


def kill_all(left: list[tuple[int, str]], known: set[int]) -> None:
    """End what a failing test found alive (all descended from a process it started)."""
    for pid, _ in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if left:
        survivors(known, grace=5.0)  # reaps them


class Creations:
    """Names of files created in some folders, from inotify: a kill can follow a write at once."""

    def __init__(self, *folders: Path) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self.fd >= 0, os.strerror(ctypes.get_errno())
        for folder in folders:
            assert libc.inotify_add_watch(self.fd, os.fsencode(folder), IN_CREATE) >= 0

    def wait(self, timeout: float) -> list[str]:
        if not select.select([self.fd], [], [], timeout)[0]:
            return []
        try:
            data = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return []
        names, at = [], 0
        while at < len(data):
            length = struct.unpack_from("iIII", data, at)[3]
            names.append(data[at + 16 : at + 16 + length].rstrip(b"\0").decode())
            at += 16 + length
        return names

    def close(self) -> None:
        os.close(self.fd)


# --- workers die with their batch ---------------------------------------------------------------

POOL_THEN_DIE = """
import os
from grader.batch import _local_pool

pool = _local_pool(2, warm=False)
print(pool.submit(os.getpid).result(), flush=True)
os._exit(0)  # as if killed: no shutdown; the workers are left waiting for work
"""


def test_local_workers_do_not_outlive_their_batch(subreaper: None, tmp_path: Path) -> None:
    known = children()
    # A file, not a pipe: a surviving worker would hold a pipe open and hang the test.
    with (tmp_path / "out").open("w+") as out:
        run = subprocess.run(
            [sys.executable, "-c", POOL_THEN_DIE], stdout=out, stderr=out, timeout=120
        )
        out.seek(0)
        printed = out.read()
    assert run.returncode == 0 and int(printed) > 0, printed[-2000:]
    left = survivors(known)
    kill_all(left, known)
    assert left == []


def test_a_worker_whose_batch_is_already_gone_ends_itself() -> None:
    # Between fork and prctl the batch may die; the worker sees a parent that is not it.
    code = "from grader.batch_worker import die_with_parent; die_with_parent(1); print('alive')"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stdout) == (-signal.SIGKILL, "")


# --- the batch that is killed ------------------------------------------------------------------


@pytest.fixture(scope="module")
def subs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("faults") / "subs"
    for rel, source in SUBMISSIONS.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(source.read_bytes())
    name, text = UNREADABLE
    (folder / name).write_text(text, encoding="utf-8")
    return folder


@dataclass(frozen=True)
class Reference:
    out: Path
    gradebook: dict[str, Any]
    seconds: float


@pytest.fixture(scope="module")
def reference(subs: Path) -> Reference:
    """The gradebook of an uninterrupted batch, and how long that batch took."""
    out = subs.parent / "reference"
    started = time.monotonic()
    run = subprocess.run(batch(subs, out), capture_output=True, text=True, timeout=300)
    seconds = time.monotonic() - started
    assert run.returncode == 1, run.stderr[-2000:]  # zed cannot be read
    rows = {r["student"]: r for r in csv.DictReader(io.StringIO((out / "grades.csv").read_text()))}
    assert sorted(rows) == STUDENTS
    assert (rows["dan"]["status"], rows["zed"]["status"]) == ("timeout", "unreadable")
    assert (rows["alice"]["total"], rows["bob"]["total"]) == ("18", "8")
    return Reference(out, gradebook(out), seconds)


@dataclass(frozen=True)
class Attempt:
    plan: str
    killed: bool
    returncode: int
    seconds: float
    records: int  # submissions recorded as done when the batch was stopped
    temporary: int  # temporary files of writes this kill interrupted
    stderr: str


def moment(proc: subprocess.Popen[bytes], writes: Creations, kind: str, value: Any) -> bool:
    """Wait for the chosen moment; False if the batch finished first."""
    deadline = time.monotonic() + 300
    if kind == "time":
        try:
            proc.wait(timeout=value)
        except subprocess.TimeoutExpired:
            return True
        return False
    seen = 0
    while time.monotonic() < deadline:
        for name in writes.wait(0.05):
            if not name.endswith(".tmp"):
                continue
            seen += 1
            if (kind == "write" and seen == value) or (
                kind == "class" and name.startswith(f".{value}.")
            ):
                return True
        if proc.poll() is not None:
            return False
    pytest.fail(f"the batch ran for more than 300 s ({kind} {value})")


def run_and_kill(subs: Path, out: Path, kind: str, value: Any, target: str) -> Attempt:
    state = out / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)  # to watch it from the start
    writes = Creations(out, state)
    earlier = assert_no_half_written_file(out)
    known = children()
    log = out.parent / f"{out.name}.log"
    started = time.monotonic()
    with log.open("ab") as err:
        proc = subprocess.Popen(
            batch(subs, out), stdout=subprocess.DEVNULL, stderr=err, start_new_session=True
        )
    try:
        if moment(proc, writes, kind, value):
            if target == "group":
                os.killpg(proc.pid, signal.SIGKILL)
            else:  # the batch alone: its workers and sandboxes must not outlive it
                proc.send_signal(signal.SIGKILL)
        returncode = proc.wait(timeout=300)
    finally:
        writes.close()
        if proc.poll() is None:  # the test failed: leave nothing running
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    seconds = time.monotonic() - started
    killed = returncode == -signal.SIGKILL
    left = survivors(known)
    kill_all(left, known)
    sandboxes = [(p, c) for p, c in left if any(m in c for m in SANDBOX_MARKS)]
    assert not sandboxes, f"sandbox processes outlived the kill: {sandboxes}"
    assert not left, f"processes outlived the kill of the batch: {left}"
    temporary = len(assert_no_half_written_file(out) - earlier)
    records = sum(1 for p in state.glob("*.json") if not p.name.startswith("."))
    return Attempt(
        f"{kind} {value} ({target})",
        killed,
        returncode,
        seconds,
        records,
        temporary,
        log.read_text(errors="replace")[-2000:],
    )


@pytest.mark.slow
def test_a_batch_killed_at_random_moments_resumes_to_the_same_gradebook(
    subs: Path, reference: Reference, subreaper: None, tmp_path: Path
) -> None:
    expected, full = reference.gradebook, reference.seconds
    rng = random.Random(SEED)
    kinds = ["time", "write", "class"] * (KILLS // 3)
    targets = ["group", "group", "batch"] * (KILLS // 3)
    rng.shuffle(kinds)
    rng.shuffle(targets)
    plans = list(zip(kinds, targets, strict=True))
    kills: list[Attempt] = []
    chains, out = 0, None
    for _ in range(4 * KILLS):
        if not plans and out is None:
            break
        if out is None:
            chains += 1
            out = tmp_path / f"chain{chains}"
        kind, target = plans[0] if plans else ("time", "group")
        value: Any = {
            "time": rng.uniform(0.0, full),
            "write": rng.randint(1, 10),
            "class": rng.choice(CLASS_FILES),
        }[kind]
        if not plans:
            value = 1e9  # the last run of the last chain is not interrupted
        attempt = run_and_kill(subs, out, kind, value, target)
        if attempt.killed:
            plans.pop(0)
            kills.append(attempt)
            continue
        # A run that was not killed finishes the chain: the gradebook of an uninterrupted run.
        assert attempt.returncode == 1, f"{attempt.plan}: {attempt.stderr}"
        assert_same_gradebook(out, expected)
        out = None
    assert not plans and out is None, "the kills did not all happen"
    summary = [(a.plan, a.records, a.temporary, round(a.seconds, 1)) for a in kills]
    print(f"\n{chains} chains, reference {full:.1f} s; kills (plan, recorded, tmp, s): {summary}")
    assert len(kills) >= 10
    assert sum(0 < a.records < len(STUDENTS) for a in kills) >= 3, summary  # mid-batch
    assert sum(a.temporary > 0 for a in kills) >= 1, summary  # mid-write


# --- two batches on one folder -----------------------------------------------------------------


@pytest.mark.slow
def test_a_second_batch_on_the_same_folder_refuses_clearly_and_harms_nothing(
    subs: Path, reference: Reference, tmp_path: Path
) -> None:
    out = Path(shutil.copytree(reference.out, tmp_path / "out"))
    # The first batch has one submission to grade: the infinite loop, which takes seconds.
    (out / STATE_DIR / "dan.json").unlink()
    first = subprocess.Popen(
        batch(subs, out),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        lock = out / STATE_DIR / "lock"
        deadline = time.monotonic() + 60
        while not (lock.is_file() and lock.read_text().strip() == str(first.pid)):
            assert first.poll() is None and time.monotonic() < deadline, "no lock was taken"
            time.sleep(0.02)
        started = time.monotonic()
        second = subprocess.run(batch(subs, out), capture_output=True, text=True, timeout=60)
        refused_in = time.monotonic() - started
        assert first.poll() is None, "the first batch ended before the second was refused"
    finally:
        _, err = first.communicate(timeout=300)
    assert second.returncode == 2 and second.stdout == ""
    assert second.stderr.splitlines() == [
        f"grade: error: another `grade batch` (pid {first.pid}) is writing to {out}; wait for "
        "it to finish or pass another --output-dir"
    ]
    assert refused_in < 20
    assert first.returncode == 1, err.decode(errors="replace")[-2000:]
    assert_same_gradebook(out, reference.gradebook)
    assert "1 graded now, 0 updated, 4 unchanged, 1 not graded" in err.decode()
    again = subprocess.run(batch(subs, out), capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "0 graded now" in again.stderr, again.stderr[-2000:]


# --- the same submission, graded again and again ------------------------------------------------


@pytest.mark.slow
def test_the_same_submission_graded_ten_times_gives_the_same_json(tmp_path: Path) -> None:
    notebook = ROOT / "student_submissions" / "backprop" / "mistake_sign_error.ipynb"
    # The tests' settings turn the warm server off; a private one is turned on here.
    plain = dict(os.environ, GRADER_NO_SERVER="1")
    server = {k: v for k, v in plain.items() if k != "GRADER_NO_SERVER"}
    server.update(GRADER_SERVER_DIR=str(tmp_path / "server"), GRADER_SERVER_IDLE="60")

    def run(seed: int, via_server: bool) -> subprocess.CompletedProcess[str]:
        # A different hash seed each time: no result may depend on the order of a set.
        env = dict(server if via_server else plain, PYTHONHASHSEED=str(seed))
        args = grade(str(notebook), "--format", "json", "--no-report", "--course", str(ROOT))
        return subprocess.run(
            args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )

    manage = [sys.executable, "-m", "grader.server"]
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            # Runs 1-5 grade in their own process. So does run 0, which then starts a private
            # warm server, whose forked workers grade runs 6-9.
            first = [pool.submit(run, seed, seed == 0) for seed in range(6)]
            runs = [f.result() for f in first]
            runs += pool.map(run, range(6, 10), [True] * 4)
        status = subprocess.run([*manage, "status"], env=server, capture_output=True, timeout=60)
        assert status.returncode == 0, "no warm server graded the last runs"
    finally:
        subprocess.run([*manage, "stop"], env=server, capture_output=True, timeout=60)
    assert [r.returncode for r in runs] == [1] * 10, [r.stderr[-500:] for r in runs]
    raw = [json.loads(r.stdout) for r in runs]
    assert raw[0]["timings"] and raw[0]["duration_s"] > 0  # really there, and taken out
    results = [without_timings(r) for r in raw]
    checks = [c for q in results[0]["questions"] for c in q["checks"]]
    assert sum(bool(c["inputs"]) for c in checks) >= 5
    assert sum(c["outcome"] == "failed" and bool(c["message"]) for c in checks) >= 3
    for i, result in enumerate(results[1:], start=1):
        assert result == results[0], f"run {i}: {first_difference(results[0], result)}"
