"""``grade batch``: discovery, the gradebook files, resume, the lock, crashes, Dask."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from grader import __version__
from grader import batch as batch_module
from grader.batch import BatchOptions, Progress, run_batch, run_tasks, start_order
from grader.batch_store import (
    STATE_DIR,
    Found,
    discover,
    grader_version,
    load_seconds,
    output_lock,
    save_seconds,
)
from grader.batch_worker import Done, Task, _state, grade_task
from grader.cli import main as cli_main
from grader.errors import OutputLocked, SandboxUnavailable, UsageError
from grader.report.gradebook import (
    Entry,
    canvas_csv,
    duplicates,
    grades_csv,
    gradescope_json,
    summarise,
)
from grader.results import CheckResult, GradeResult, Outcome, QuestionResult

COURSE = Path(__file__).resolve().parent.parent

CORRECT = """__assignment__ = "backprop"
import numpy as np

def sigmoid(z):
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))

def forward(x, w1, b1, w2, b2):
    a1 = sigmoid(w1 * np.asarray(x) + b1)
    return a1, sigmoid(w2 * a1 + b2)

def backward(x, y, w1, b1, w2, b2):
    a1, a2 = forward(x, w1, b1, w2, b2)
    d2 = a2 - y
    d1 = d2 * w2 * a1 * (1 - a1)
    return {"w1": d1 * x, "b1": d1, "w2": d2 * a1, "b2": d2}
"""
MISSING_FACTOR = CORRECT.replace("d2 * w2 * a1 * (1 - a1)", "d2 * w2")


# --- discovery -------------------------------------------------------------------------------


def touch(path: Path, text: str = "x = 1\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_discover_names_students_by_file_or_folder(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    for rel in (
        "alice.py",
        "bob/hw.ipynb",
        "carol/a.py",
        "carol/b.py",
        "summary.py",
        "notes.txt",
        ".hidden.py",
        "dan/.ipynb_checkpoints/hw-checkpoint.ipynb",
        "out/old.py",
    ):
        touch(subs / rel)
    (subs / "eve.py").symlink_to(tmp_path / "elsewhere.py")
    found = discover(subs, subs / "out")
    assert [(f.source, f.student, f.key) for f in found] == [
        ("alice.py", "alice", "alice"),
        ("bob/hw.ipynb", "bob", "bob"),
        ("carol/a.py", "carol", "carol__a.py"),
        ("carol/b.py", "carol", "carol__b.py"),
        ("eve.py", "eve", "eve"),
        ("summary.py", "summary", "summary-submission"),
    ]
    assert [f.key for f in found if f.problem] == ["eve"]


def test_discover_keeps_keys_unique_and_never_reads_links_or_fifos(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    for rel in ("summary.py", "summary-submission.py", "notes.txt", "zed/data.csv", ".x.txt"):
        touch(subs / rel)
    os.mkfifo(subs / "quinn.py")  # opening it to hash it would wait forever
    (tmp_path / "outside").mkdir()
    touch(tmp_path / "outside" / "hw.py")
    (subs / "mallory").symlink_to(tmp_path / "outside", target_is_directory=True)
    ignored: list[str] = []
    found = discover(subs, tmp_path / "out", ignored=ignored)
    assert [(f.source, f.key, bool(f.problem)) for f in found] == [
        ("mallory/", "mallory", True),
        ("quinn.py", "quinn", True),
        ("summary-submission.py", "summary-submission", False),
        ("summary.py", "summary-submission-2", False),
    ]
    assert "regular file" in found[1].problem and "symbolic link" in found[0].problem
    assert ignored == ["notes.txt", "zed/data.csv"]


def test_the_workers_zygote_imports_what_the_submissions_name(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    touch(subs / "ada.py", "import numpy as np\n")
    os.mkfifo(subs / "quinn.py")  # never opened: it would block the scan
    (tmp_path / "outside").mkdir()
    touch(tmp_path / "outside" / "hw.py", "import sympy\n")
    (subs / "mallory").symlink_to(tmp_path / "outside", target_is_directory=True)
    options = BatchOptions(folder=subs, output_dir=tmp_path / "out")
    assert batch_module._zygote_preload(options) == ("numpy",)  # the link is not followed
    touch(subs / "bo" / "hw.ipynb", '{"cells": [{"source": ["import sympy as sp"]}]}')
    assert batch_module._zygote_preload(options) == ("numpy", "sympy")
    assert batch_module._zygote_preload(replace(options, folder=tmp_path / "none")) is None


def test_a_worker_hands_its_preload_to_the_zygote(monkeypatch: pytest.MonkeyPatch) -> None:
    from grader import batch_worker

    monkeypatch.setattr(batch_worker, "die_with_parent", lambda parent: None)
    monkeypatch.setattr(batch_worker, "_watchdog", lambda: None)
    state = _state()
    saved_preload, saved = state.preload, dict(state.factories)
    state.factories.clear()
    try:
        batch_worker.start_worker(None, False, "process", ("numpy",))
        assert state.factory("process").preload == ("numpy",)
        state.factories.clear()
        batch_worker.start_worker(None, False, "process", None)
        assert state.factory("process").preload == ("numpy", "sympy")  # the default
    finally:
        state.preload = saved_preload
        state.factories.clear()
        state.factories.update(saved)


def test_a_batch_reports_a_fifo_instead_of_waiting_on_it(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    subs.mkdir()
    os.mkfifo(subs / "quinn.py")
    outcome = run_batch(BatchOptions(subs, tmp_path / "out", jobs=1, course=COURSE))
    (entry,) = outcome.entries
    assert entry.status == "unreadable" and "not a regular file" in entry.message
    assert (outcome.graded, len(outcome.failures)) == (0, 1)


def test_a_file_swapped_after_discovery_is_opened_never_blocked_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FIFO or a link put where discover saw a regular file is refused when opened."""
    from grader.batch_store import open_regular

    subs = tmp_path / "subs"
    subs.mkdir()
    os.mkfifo(subs / "quinn.py")
    (subs / "link.py").symlink_to(touch(tmp_path / "elsewhere.py"))
    for name in ("quinn.py", "link.py"):
        with pytest.raises(OSError):
            open_regular(subs / name)  # returns at once: never waits for a FIFO's writer
    swapped = [Found(subs / "quinn.py", "quinn.py", "quinn", "quinn")]  # as if still a file
    monkeypatch.setattr(batch_module, "discover", lambda *args, **kwargs: swapped)
    outcome = run_batch(BatchOptions(subs, tmp_path / "out", jobs=1, course=COURSE))
    (entry,) = outcome.entries
    assert entry.status == "unreadable" and "not a regular file" in entry.message
    # Swapped for a link after the parent hashed it: the worker gets the link's own path.
    swapped[:] = [Found(subs / "link.py", "link.py", "link", "link")]
    monkeypatch.setattr(batch_module, "file_hash", lambda path: "0" * 64)
    outcome = run_batch(BatchOptions(subs, tmp_path / "out2", jobs=1, course=COURSE))
    (entry,) = outcome.entries
    assert entry.status == "error" and "symbolic link" in entry.message  # read again next run
    # A regular file whose contents are not those the parent hashed (changed, or reached
    # through a folder swapped for a link): its record would name other contents.
    swapped[:] = [Found(tmp_path / "elsewhere.py", "elsewhere.py", "elsewhere", "elsewhere")]
    outcome = run_batch(BatchOptions(subs, tmp_path / "out3", jobs=1, course=COURSE))
    (entry,) = outcome.entries
    assert entry.status == "error" and "changed while the batch" in entry.message
    # No record to reuse: the next run reads it again.
    assert not (tmp_path / "out3" / STATE_DIR / "elsewhere.json").exists()


def test_a_worker_refuses_a_file_swapped_after_hashing_without_waiting(tmp_path: Path) -> None:
    """The last window: the parent has hashed the file, the worker opens it later."""
    os.mkfifo(tmp_path / "quinn.py")
    (tmp_path / "link.py").symlink_to(touch(tmp_path / "elsewhere.py", CORRECT))
    for name, why in (("quinn.py", "not a regular file"), ("link.py", "symbolic link")):
        task = Task(name, str(tmp_path / name), name, name, str(COURSE), None, "auto", True)
        done = grade_task(task)  # returns at once: never waits for a FIFO's writer
        assert done.status == "error" and why in done.message, done.message


def test_batch_refuses_a_file_and_an_empty_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = touch(tmp_path / "a.py")
    assert cli_main(["batch", str(file), "--course", str(COURSE)]) == 2
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert (
        cli_main(
            ["batch", str(tmp_path / "empty"), "--course", str(COURSE), "-o", str(tmp_path / "out")]
        )
        == 2
    )
    assert "no .ipynb or .py submissions" in capsys.readouterr().err


# --- the gradebook files ---------------------------------------------------------------------


def graded(student: str, q5: float, hint: str = "", review: bool = False) -> Entry:
    check = CheckResult(
        "gradients",
        "5",
        "",
        Outcome.FAILED if q5 < 4 else Outcome.PASSED,
        q5,
        4.0,
        message="w1 is wrong",
        hint=hint,
    )
    undecided = CheckResult(
        "rubric", "1", "", Outcome.UNDECIDED if review else Outcome.PASSED, 1.0, 2.0
    )
    result = GradeResult(
        "backprop",
        f"{student}.py",
        "bubblewrap",
        (
            QuestionResult("1", "text", "Why?", 1.0, 2.0, (undecided,)),
            QuestionResult("5", "code", "backward", q5, 4.0, (check,)),
        ),
    )
    return Entry(student, student, f"{student}.py", "graded", result=result)


def entries() -> list[Entry]:
    return [
        graded("zoe", 4.0),
        graded("=cmd|'/c calc'!A1", 2.0, hint="check σ′(z1)"),
        graded("amy", 2.0, hint="check σ′(z1)", review=True),
        Entry("dan", "dan", "dan.ipynb", "unreadable", "dan.ipynb is not JSON"),
    ]


def test_grades_csv_has_a_sorted_row_per_submission_and_no_formulas() -> None:
    rows = list(csv.reader(io.StringIO(grades_csv(entries()))))
    assert rows[0] == [
        "student",
        "submission",
        "assignment",
        "Q1",
        "Q5",
        "total",
        "max",
        "status",
        "needs_review",
        "overridden",
        "message",
    ]
    assert [r[0] for r in rows[1:]] == ["'=cmd|'/c calc'!A1", "amy", "dan", "zoe"]
    assert rows[2][3:10] == ["1", "2", "3", "6", "graded", "yes", ""]
    assert (
        rows[3][2:8] == ["", "", "", "", "", "unreadable"]
        and rows[3][-1] == "dan.ipynb is not JSON"
    )


def test_canvas_csv_has_points_possible_and_blank_for_ungraded() -> None:
    rows = list(csv.reader(io.StringIO(canvas_csv(entries(), {"backprop": "Backprop"}))))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Backprop"]
    assert rows[1] == ["Points Possible", "", "", "", "", "6"]
    assert ["amy", "", "", "amy", "", "3"] in rows and ["dan", "", "", "dan", "", ""] in rows


def test_canvas_has_one_row_per_student_and_leaves_a_duplicate_grade_blank() -> None:
    def of(entry: Entry, assignment: str, key: str, source: str) -> Entry:
        assert entry.result is not None
        return replace(
            entry, key=key, source=source, result=replace(entry.result, assignment=assignment)
        )

    amy_py = of(graded("amy", 4.0), "backprop", "amy__a.py", "amy/a.py")
    amy_nb = of(graded("amy", 2.0), "backprop", "amy__b.ipynb", "amy/b.ipynb")
    zoe_bp = of(graded("zoe", 4.0), "backprop", "zoe__a.py", "zoe/a.py")
    zoe_ne = of(graded("zoe", 2.0), "normal-equation", "zoe__b.py", "zoe/b.py")
    all_four = [amy_py, amy_nb, zoe_bp, zoe_ne]
    rows = list(csv.reader(io.StringIO(canvas_csv(all_four, {}))))
    assert rows[0][5:] == ["backprop", "normal-equation"]
    assert rows[2:] == [["amy", "", "", "amy", "", "", ""], ["zoe", "", "", "zoe", "", "5", "3"]]
    assert duplicates(all_four) == {("amy", "backprop"): (amy_py, amy_nb)}


def test_gradescope_results_have_one_test_per_question() -> None:
    data = gradescope_json(graded("amy", 2.0, hint="check σ′(z1)", review=True))
    assert data["score"] == 3.0 and "provisional" in data["output"]
    five = data["tests"][1]
    assert {k: five[k] for k in ("number", "score", "max_score", "status", "visibility")} == {
        "number": "5",
        "score": 2.0,
        "max_score": 4.0,
        "status": "failed",
        "visibility": "visible",
    }
    assert "w1 is wrong" in five["output"] and "hint: check σ′(z1)" in five["output"]
    failed = gradescope_json(entries()[3])
    assert failed["tests"] == [] and "dan.ipynb is not JSON" in failed["output"]


@pytest.mark.parametrize("seconds", [0.53496, 0.5349999, 0.04996, 1.0049, 2.0])
def test_files_rendered_again_from_a_record_are_the_files_first_written(
    seconds: float, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-run re-renders an unchanged submission's files from its stored result, whose
    durations are rounded: they must be byte for byte the files the first run wrote (the
    Gradescope time and the report's footer round the duration again)."""
    entry = graded("amy", 2.0)
    assert entry.result is not None
    result = replace(entry.result, duration_s=seconds)
    monkeypatch.setattr("grader.grading.grade_submission", lambda *a, **k: result)
    path = touch(tmp_path / "amy.py", CORRECT)
    task = Task("amy", str(path), "amy.py", "amy", str(COURSE), None, "auto", True)
    first = grade_task(task)
    assert first.status == "graded" and first.raw is not None
    again = grade_task(replace(task, cached=json.loads(json.dumps(first.raw))))
    assert (again.html, again.gradescope, again.final_json) == (
        first.html,
        first.gradescope,
        first.final_json,
    )


def test_summary_counts_mistakes_review_and_failures() -> None:
    s = summarise(entries(), {"backprop": "Backprop"}, folder="subs")
    (a,) = s.assignments
    assert (a.count, a.mean, a.lowest, a.highest) == (3, 11 / 3, 3.0, 5.0)
    five = a.questions[1]
    assert (five.full, five.zero, five.mean) == (1, 0, pytest.approx(8 / 3))
    top = a.mistakes[0]
    assert (top.question, top.hint, top.count, top.points_lost) == ("5", "check σ′(z1)", 2, 4.0)
    assert [e.student for e in s.review] == ["amy"]
    assert [e.student for e in s.failures] == ["dan"]
    from grader.report.html import render_summary

    page = render_summary(s)
    assert "check σ′(z1)" in page and "dan.ipynb is not JSON" in page
    assert "=cmd|&#39;/c calc&#39;!A1" in page and '<svg class="chart"' in page


# --- lock, crashes and the sandbox rule ------------------------------------------------------


def test_a_second_batch_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / STATE_DIR).mkdir()
    leftover = touch(tmp_path / ".grades.csv.abc.tmp")
    with output_lock(tmp_path):
        assert not leftover.exists()
        with pytest.raises(OutputLocked, match=rf"pid {os.getpid()}\) is writing to"):
            with output_lock(tmp_path):
                pass
    with output_lock(tmp_path):  # released when the first run ended
        pass


def crash_on_boom(task: Task) -> Done:
    if task.key == "boom":
        os._exit(9)  # the worker dies as if killed by the kernel
    return Done(task.key, "graded", "fine")


def sandbox_missing(task: Task) -> Done:
    return Done(task.key, "sandbox", "bubblewrap could not start")


def tasks(*keys: str) -> list[tuple[Found, Task]]:
    return [(Found(Path(k), k, k, k), Task(k, "", k, k, "", None, "auto", True)) for k in keys]


def test_what_was_slow_last_time_is_started_early_and_spread_out() -> None:
    queue = tasks(*"abcdefghij")
    last = {"b": 0.2, "c": 1.5, "i": 5.1, "j": 12.0}  # the others are new
    # The slow ones, longest first, each followed by an equal share of the rest in order:
    # never all at once at the start, never last.
    order = "".join(f.key for f, _ in start_order(queue, last))
    assert order == "jabcdiefgh"
    assert start_order(queue, {}) == queue  # a first run keeps the folder's order
    # Shares differ by one at most, the larger ones first.
    order = "".join(f.key for f, _ in start_order(queue, {"a": 3.0, "b": 4.0, "c": 5.0}))
    assert order == "cdefbghaij"
    # More slow ones than others: the slow ones left over follow each other, longest first.
    order = "".join(f.key for f, _ in start_order(tasks(*"abcde"), {"a": 3, "b": 4, "c": 5}))
    assert order == "cdbea"
    every = {k: 2.0 + i for i, k in enumerate("abcdefghij")}
    assert "".join(f.key for f, _ in start_order(queue, every)) == "jihgfedcba"


def test_the_grading_times_are_only_a_hint_read_with_care(tmp_path: Path) -> None:
    assert load_seconds(tmp_path) == {}  # no file yet
    save_seconds(tmp_path, {"bob": 5.12345, "alice": 0.1})
    assert load_seconds(tmp_path) == {"alice": 0.1, "bob": 5.123}
    path = tmp_path / STATE_DIR / ".seconds.json"
    for junk in ("[1, 2]", "{not json", '"text"'):
        path.write_text(junk)
        assert load_seconds(tmp_path) == {}
    huge = "1" + "0" * 400  # an integer no float can hold
    path.write_text(
        f'{{"a": -1, "b": NaN, "c": Infinity, "d": "3", "e": 2.5, "f": null, "g": {huge}}}'
    )
    assert load_seconds(tmp_path) == {"e": 2.5}


def test_a_worker_that_dies_costs_only_its_own_submission(tmp_path: Path) -> None:
    seen: dict[str, Done] = {}
    options = BatchOptions(tmp_path, tmp_path, jobs=2)
    run_tasks(
        options,
        tasks("a", "boom", "c", "d"),
        lambda f, done: seen.__setitem__(done.key, done),
        work=crash_on_boom,
    )
    assert sorted(seen) == ["a", "boom", "c", "d"]
    assert seen["boom"].status == "crashed" and "died" in seen["boom"].message
    assert seen["boom"].seconds > 0  # measured by the parent, which made this result
    assert {seen[k].status for k in "acd"} == {"graded"}


def hang_on_slow(task: Task) -> Done:
    if task.key == "slow":
        time.sleep(120)  # as if the grader itself were stuck on this submission
    return Done(task.key, "graded", "fine")


def test_a_task_that_outlives_its_limit_is_stopped_and_the_batch_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRADER_TASK_LIMIT", "1")
    seen: dict[str, Done] = {}
    started = time.monotonic()
    run_tasks(
        BatchOptions(tmp_path, tmp_path, jobs=2),
        tasks("a", "slow", "c"),
        lambda f, done: seen.__setitem__(done.key, done),
        work=hang_on_slow,
    )
    assert time.monotonic() - started < 60
    assert seen["slow"].status == "error" and "more than 1 s" in seen["slow"].message
    assert seen["a"].status == seen["c"].status == "graded"


def _children() -> set[int]:
    """This process's child processes (from /proc), zombies included."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                found.add(int(entry))
    return found


def _settled(before: set[int]) -> set[int]:
    """The children beyond ``before`` once those that are ending have ended (up to 10 s)."""
    deadline = time.monotonic() + 10
    while (extra := _children() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    return extra


def test_a_first_run_starts_its_workers_at_once_and_a_rerun_only_for_work(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    before = _children()
    early = batch_module._start_early(BatchOptions(tmp_path, out, jobs=2))
    assert early is not None
    try:
        assert len(_children() - before) == 2  # started before any task was submitted
    finally:
        early[1]()
    assert _settled(before) == set()
    (out / STATE_DIR).mkdir(parents=True)
    touch(out / STATE_DIR / "alice.json", "{}")
    assert batch_module._start_early(BatchOptions(tmp_path, out, jobs=2)) is None
    forced = batch_module._start_early(BatchOptions(tmp_path, out, jobs=2, force=True))
    assert forced is not None
    forced[1]()
    assert batch_module._start_early(BatchOptions(tmp_path, out, executor="dask")) is None
    assert _settled(before) == set()


def test_workers_started_early_are_stopped_when_the_batch_is_refused(tmp_path: Path) -> None:
    touch(tmp_path / "subs" / "alice.py", CORRECT)
    before = _children()
    started = time.monotonic()
    with pytest.raises(UsageError, match="unknown assignment"):
        run_batch(BatchOptions(tmp_path / "subs", tmp_path / "out", assignment="nope", jobs=2))
    assert _settled(before) == set()
    assert time.monotonic() - started < 5  # killed, not waited for through their imports


def test_batch_never_falls_back_to_the_weak_sandbox(tmp_path: Path) -> None:
    factory = _state().factory("auto")
    assert factory.allow_fallback is False
    with pytest.raises(SandboxUnavailable):
        factory.fall_back("bubblewrap is missing")
    with pytest.raises(SandboxUnavailable, match="pass --sandbox process"):
        run_tasks(
            BatchOptions(tmp_path, tmp_path, jobs=1),
            tasks("a"),
            lambda f, d: None,
            work=sandbox_missing,
        )


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    done = [graded("amy", 2.0), Entry("dan", "dan", "dan.ipynb", "unreadable", "not JSON")]
    tty, plain = Terminal(), io.StringIO()
    for stream in (tty, plain):
        bar = Progress(2, stream)
        for entry in done:
            bar.step(entry, 1.25)
    assert tty.getvalue().startswith("\r[###") and tty.getvalue().endswith("\n")
    assert "2/2 dan: unreadable: not JSON" in tty.getvalue()
    assert plain.getvalue().splitlines() == [
        "[1/2] amy: 3 / 6 (1.2 s)",
        "[2/2] dan: unreadable: not JSON (1.2 s)",
    ]


def test_dask_needs_a_scheduler_address(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="needs --scheduler ADDRESS"):
        run_tasks(
            BatchOptions(tmp_path, tmp_path, executor="dask"),
            tasks("a"),
            lambda f, d: None,
            work=sandbox_missing,
        )


# --- real batches (sandbox) ------------------------------------------------------------------


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("batch")
    subs = root / "subs"
    touch(subs / "alice.py", CORRECT)
    touch(subs / "bob" / "backprop.py", MISSING_FACTOR)
    touch(subs / "dave.ipynb", "{ not json")
    outcome = run_batch(BatchOptions(subs, root / "out", jobs=2, course=COURSE))
    # Each submission counts once: dave's is not graded, the other two are graded now.
    assert (outcome.graded, outcome.reused, len(outcome.failures)) == (2, 0, 1)
    return subs, root / "out"


def copy_out(out: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(out, tmp_path / "out"))


def snapshot(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.relative_to(out).as_posix() not in NOT_OUTPUTS
    }


# The lock, and the grading times kept to order the next run.
NOT_OUTPUTS = (f"{STATE_DIR}/lock", f"{STATE_DIR}/.seconds.json")


@pytest.mark.slow
def test_batch_writes_every_output(first_run: tuple[Path, Path]) -> None:
    _, out = first_run
    for key in ("alice", "bob", "dave"):
        for suffix in (".html", ".json", ".results.json"):
            assert (out / f"{key}{suffix}").is_file(), key + suffix
    rows = {r["student"]: r for r in csv.DictReader(io.StringIO((out / "grades.csv").read_text()))}
    assert rows["alice"]["Q5"] == "4" and rows["bob"]["Q5"] == "2"
    assert rows["bob"]["submission"] == "bob/backprop.py"
    assert rows["dave"]["status"] == "unreadable" and "not" in rows["dave"]["message"]
    bob = json.loads((out / "bob.json").read_text())
    assert bob["submission"] == "bob/backprop.py" and bob["assignment"] == "backprop"
    report = (out / "bob.html").read_text()
    assert "Feedback for bob</h1>" in report  # the student's folder, not the file's stem
    assert "<strong>w1</strong>" in report and "σ′(z1)" in report
    summary = (out / "summary.html").read_text()
    assert "σ′(z1)" in summary and "dave" in summary and "Most common mistakes" in summary
    gradescope = json.loads((out / "bob.results.json").read_text())
    assert [t["number"] for t in gradescope["tests"]][-1] == "6"
    assert "Points Possible" in (out / "canvas.csv").read_text()


@pytest.mark.slow
def test_rerun_reuses_everything_and_overrides_touch_one(
    first_run: tuple[Path, Path], tmp_path: Path
) -> None:
    subs, first = first_run
    out = copy_out(first, tmp_path)
    before = snapshot(out)
    times = load_seconds(out)
    again = run_batch(BatchOptions(subs, out, jobs=2, course=COURSE))
    assert (again.graded, again.updated, again.reused, len(again.failures)) == (0, 0, 2, 1)
    assert snapshot(out) == before
    overrides = touch(tmp_path / "o.csv", "student,question,points,comment\nbob,5,3,typo\n")
    changed = run_batch(BatchOptions(subs, out, jobs=2, course=COURSE, overrides=overrides))
    assert (changed.graded, changed.updated, changed.reused) == (0, 1, 1)
    after = snapshot(out)
    assert {k for k in after if after[k] != before.get(k)} == {
        "bob.html",
        "bob.json",
        "bob.results.json",
        "grades.csv",
        "canvas.csv",
        "summary.html",
    }
    assert "automatic score 2 / 4 replaced by 3: typo" in after["bob.html"].decode()
    assert load_seconds(out) == times  # re-rendering is not grading: the times stand
    tests = json.loads(after["bob.results.json"])["tests"]
    assert next(t for t in tests if t["number"] == "5")["score"] == 3.0
    row = next(
        r
        for r in csv.DictReader(io.StringIO(after["grades.csv"].decode()))
        if r["student"] == "bob"
    )
    assert (row["Q5"], row["overridden"]) == ("3", "5")


@pytest.mark.slow
def test_a_regrade_starts_with_what_was_slow_and_keeps_the_new_times(
    first_run: tuple[Path, Path], tmp_path: Path
) -> None:
    subs, first = first_run
    out = copy_out(first, tmp_path)
    assert set(load_seconds(out)) == {"alice", "bob", "dave"}  # the first run's times
    save_seconds(out, {"alice": 0.1, "bob": 999.0, "dave": 0.1, "gone": 3.0})
    progress = io.StringIO()
    again = run_batch(BatchOptions(subs, out, jobs=1, course=COURSE, force=True), progress=progress)
    assert again.graded == 2
    # One worker grades in the order the tasks are started: bob, then the folder's order.
    order = [line.split("] ", 1)[1].split(":")[0] for line in progress.getvalue().splitlines()]
    assert order == ["bob", "alice", "dave"]
    times = load_seconds(out)
    assert set(times) == {"alice", "bob", "dave"}  # a submission no longer there is forgotten
    assert times["bob"] < 999.0  # measured again


@pytest.mark.slow
def test_a_student_named_seconds_and_an_unwritable_times_file_change_nothing(
    tmp_path: Path,
) -> None:
    subs, out = tmp_path / "subs", tmp_path / "out"
    touch(subs / "seconds.py", CORRECT)
    (out / STATE_DIR / ".seconds.json").mkdir(parents=True)  # cannot be written as a file
    first = run_batch(BatchOptions(subs, out, jobs=1, course=COURSE))
    assert (first.graded, len(first.failures)) == (1, 0)
    assert (out / "grades.csv").is_file() and load_seconds(out) == {}
    again = run_batch(BatchOptions(subs, out, jobs=1, course=COURSE))
    assert (again.graded, again.reused) == (0, 1)  # its record is its own


@pytest.mark.slow
def test_a_record_made_by_other_grading_code_is_graded_again(
    first_run: tuple[Path, Path], tmp_path: Path
) -> None:
    subs, first = first_run
    out = copy_out(first, tmp_path)
    record_path = out / STATE_DIR / "alice.json"
    record = json.loads(record_path.read_text(encoding="utf-8"))
    assert record["grader"] == grader_version() and record["grader"].startswith(__version__)
    record["grader"] = __version__  # the same version number, other code
    record_path.write_text(json.dumps(record), encoding="utf-8")
    again = run_batch(BatchOptions(subs, out, jobs=1, course=COURSE))
    assert (again.graded, again.updated, again.reused) == (1, 0, 1)


@pytest.mark.slow
def test_an_override_that_does_not_fit_the_submission_is_left_out_and_reported(
    first_run: tuple[Path, Path], tmp_path: Path
) -> None:
    subs, first = first_run
    out = copy_out(first, tmp_path)
    before = snapshot(out)
    # 1a is a question of rnn-lstm, not of bob's backprop; alice submitted no normal-equation.
    overrides = touch(
        tmp_path / "o.csv",
        "student,question,points,assignment\nbob,1a,1,\nalice,1,0,normal-equation\n",
    )
    stream = io.StringIO()
    outcome = run_batch(
        BatchOptions(subs, out, jobs=2, course=COURSE, overrides=overrides), progress=stream
    )
    assert [e.key for e in outcome.failures] == ["dave"]
    after = snapshot(out)
    assert after["bob.json"] == before["bob.json"] and after["bob.html"] == before["bob.html"]
    err = stream.getvalue()
    assert (
        f"warning: {overrides}:2: not applied to bob/backprop.py (backprop): assignment "
        "'backprop' has no question '1a'; the override was not used"
    ) in err
    assert (
        f"warning: {overrides}:3: no graded normal-equation submission from student 'alice'"
    ) in err
    summary = after["summary.html"].decode()
    assert "Batch notes" in summary and "has no question &#39;1a&#39;" in summary


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_gradebook(
    first_run: tuple[Path, Path], tmp_path: Path
) -> None:
    subs, first = first_run
    out = copy_out(first, tmp_path)
    expected = snapshot(out)
    # As if killed after dave's files were written but before his record, and before
    # alice's report: a temporary file is left over, the class files are from an older run.
    (out / STATE_DIR / "dave.json").unlink()
    (out / "alice.html").unlink()
    touch(out / ".dave.json.x1.tmp", "half")
    (out / "grades.csv").write_text("stale\n")
    outcome = run_batch(BatchOptions(subs, out, jobs=1, course=COURSE))
    assert (outcome.graded, outcome.updated, outcome.reused, len(outcome.failures)) == (0, 1, 1, 1)
    assert snapshot(out) == expected


DASK_RUN = """
import json, sys
from pathlib import Path
from dask.distributed import LocalCluster
from grader.batch import BatchOptions, run_batch

folder, out, course = map(Path, sys.argv[1:4])
with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                  dashboard_address=None) as cluster:
    outcome = run_batch(BatchOptions(folder, out, executor="dask",
                                     scheduler=cluster.scheduler_address, course=course))
print(json.dumps([[e.status, e.result and e.result.to_json()] for e in outcome.entries]))
"""


@pytest.mark.slow
def test_dask_cluster_grades_like_local_processes(tmp_path: Path) -> None:
    # The cluster runs in a child process: multiprocessing's helper process that Dask starts
    # then ends with it, and leaves nothing running in the test process.
    touch(tmp_path / "subs" / "bob.py", MISSING_FACTOR)
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            DASK_RUN,
            str(tmp_path / "subs"),
            str(tmp_path / "out"),
            str(COURSE),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    ((status, data),) = json.loads(run.stdout.strip().splitlines()[-1])
    result = GradeResult.from_json(data)
    assert status == "graded" and result.question("5").score == 2.0
    assert result.question("3").score == 2.0
    assert "<strong>w1</strong>" in (tmp_path / "out" / "bob.html").read_text()


def test_an_override_applied_to_one_of_two_submissions_is_not_reported(tmp_path: Path) -> None:
    from grader.batch import _override_notices
    from grader.batch_store import Store
    from grader.overrides import Override

    used = Override("amy", "5", 3.0, where="o.csv:2")  # fits backprop, not her other one
    unused = Override("amy", "7", 1.0, where="o.csv:3")
    store = Store(tmp_path, COURSE, (used, unused), None, True, "auto")
    store.applied.add("o.csv:2")
    store.refused["o.csv:2"] = "not applied to amy/rnn.ipynb (rnn-lstm): no question '5'"
    store.refused["o.csv:3"] = "not applied to amy/rnn.ipynb (rnn-lstm): no question '7'"
    notices = _override_notices([used, unused], store, [graded("amy", 4.0)])
    assert notices == [
        "o.csv:3: not applied to amy/rnn.ipynb (rnn-lstm): no question '7'; the override was "
        "not used"
    ]
