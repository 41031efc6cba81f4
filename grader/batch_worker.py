"""Grading one submission of a batch inside a worker process, returning plain data.

A worker is a local process of a ``ProcessPoolExecutor`` or a Dask worker. It keeps warm what
every submission needs (imports, compiled templates, loaded assignments, sandbox launchers),
runs each submission in its own sandbox, and returns a ``Done``: the result, the report HTML
and the per-submission JSON texts. It never writes a file (only the parent does), never
outlives the batch that started it, and never grades in the weak "process" sandbox unless the
batch asked for it by name.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from .errors import GraderError, SandboxUnavailable, UsageError
from .overrides import Override, apply_fitting, overrides_for
from .report.gradebook import Entry, gradescope_json, result_json, status_of
from .results import GradeResult

__all__ = [
    "Done",
    "Task",
    "dumps",
    "grade_task",
    "start_worker",
    "task_limit",
    "warm_up",
    "watched",
]

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


@dataclass(frozen=True)
class Task:
    key: str
    path: str
    source: str
    student: str
    course: str
    assignment: str | None
    sandbox: str
    use_solutions: bool
    overrides: tuple[Override, ...] = ()
    cached: dict[str, Any] | None = None  # a stored raw result: re-render, do not re-grade
    sha256: str | None = None  # the file's hash when the batch listed it (None: not checked)


@dataclass(frozen=True)
class Done:
    key: str
    status: str
    message: str = ""
    raw: dict[str, Any] | None = None  # the result before overrides
    html: str = ""
    final_json: str = ""
    gradescope: str = ""
    seconds: float = 0.0


class _WorkerState:
    """What a worker process keeps between submissions: sandbox factories and assignments."""

    def __init__(self) -> None:
        from .grading import SandboxFactory

        self.factories: dict[str, SandboxFactory] = {}
        self.preload: tuple[str, ...] | None = None  # the zygote's imports; None: the default
        self.assignments: dict[tuple[str, str, bool], Any] = {}
        # pytest (which runs the checks) and nbconvert are not re-entrant: one submission at
        # a time per process, even on a Dask worker that runs several tasks in threads.
        self.lock = threading.Lock()

    def factory(self, sandbox: str) -> Any:
        from .grading import SandboxFactory

        if sandbox not in self.factories:
            extra = {} if self.preload is None else {"preload": self.preload}
            self.factories[sandbox] = SandboxFactory(
                sandbox, allow_fallback=False, zygote=True, **extra
            )
        return self.factories[sandbox]

    def assignment(self, course: str, aid: str, use_solutions: bool) -> Any:
        from .assignment import load_assignment

        key = (course, aid, use_solutions)
        if key not in self.assignments:
            self.assignments[key] = load_assignment(Path(course), aid, use_solutions=use_solutions)
        return self.assignments[key]


@cache
def _state() -> _WorkerState:
    return _WorkerState()


def start_worker(
    batch_pid: int | None,
    warm: bool,
    sandbox: str = "auto",
    preload: tuple[str, ...] | None = None,
) -> None:
    """Initialise a local worker process: die with the batch, watch its tasks' time, then
    warm up if asked.

    ``batch_pid`` is the batch's own pid when it is the worker's parent (fork or spawn), and
    None when a fork server stands between them. ``preload`` is what the worker's zygote
    imports (see ``sandbox.launcher.zygote_preload``); None for the default.
    """
    die_with_parent(batch_pid)
    threading.Thread(target=_watchdog, name="grader-task-watchdog", daemon=True).start()
    _state().preload = preload
    if warm:
        warm_up(sandbox)


def task_limit() -> float:
    """Seconds one task may take in a local worker (``GRADER_TASK_LIMIT``, default 600)."""
    try:
        return max(0.1, float(os.environ.get("GRADER_TASK_LIMIT", "600")))
    except ValueError:
        return 600.0


class _Watch:
    started: float | None = None  # when the task under way began (monotonic), or None


def watched(work: Any, task: Task) -> Done:
    """``work(task)``, timed by the worker's watchdog."""
    _Watch.started = time.monotonic()
    try:
        result: Done = work(task)
        return result
    finally:
        _Watch.started = None


def _watchdog() -> None:
    """End the worker if one task outlives ``task_limit()``.

    The student's code has its own limits in the sandbox; this is for the grader's own work
    on hostile input (a pattern or a renderer taking minutes on some text), which no signal
    can interrupt while it runs in C. The batch sees the worker die, grades the task again
    alone, and reports it if it runs out of time again.
    """
    limit = task_limit()
    while True:
        time.sleep(min(1.0, limit / 4))
        started = _Watch.started
        if started is not None and time.monotonic() - started > limit:
            os._exit(70)  # EX_SOFTWARE; the sandbox dies with this process


def die_with_parent(parent: int | None) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux; a no-op elsewhere).

    A worker forked by a batch holds the batch's output lock (the descriptor is inherited) and
    waits on its task queue forever: if it outlived a batch killed with SIGKILL, it would keep
    its sandbox running and make every re-run refuse the folder. Dying with the batch takes
    the sandbox along too (bubblewrap runs with ``--die-with-parent``).
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return  # cannot fail on Linux for a valid signal; never stop a batch over it
    if parent is not None and os.getppid() != parent:
        # The parent died between our fork and the prctl: no signal will come any more.
        os.kill(os.getpid(), signal.SIGKILL)


def warm_up(sandbox: str | None = None) -> None:
    """Import and build what every submission needs, once per worker process.

    With ``sandbox``, also start the zygote for the usual limits: it imports in its own
    process meanwhile, instead of holding up the first submission.
    """
    if sandbox is not None:
        from .sandbox.launcher import Limits

        try:
            _state().factory(sandbox).zygote(Limits())
        except GraderError:
            pass  # the first submission reports it
    import hypothesis.strategies  # noqa: F401  (every check file uses it)

    from . import engine, grading  # noqa: F401  (pytest, the checks' helpers, the sandbox)
    from .report.cells import _exporter
    from .report.html import environment

    _state()
    environment().get_template("report.html.j2")
    _exporter()


def grade_task(task: Task) -> Done:
    """Grade (or re-render) one submission; never raises for a problem with the submission."""
    started = time.perf_counter()
    try:
        with _state().lock:
            done = _grade_task(task)
    except SandboxUnavailable as exc:
        done = Done(task.key, "sandbox", str(exc))
    except GraderError as exc:
        done = Done(task.key, "error", str(exc))
    except Exception as exc:  # a bug in the grader must cost one row, not the batch
        done = Done(task.key, "error", f"internal error: {type(exc).__name__}: {exc}")
    return replace(done, seconds=time.perf_counter() - started)


def _grade_task(task: Task) -> Done:
    from .errors import SubmissionChanged, SubmissionError
    from .grading import GradeOptions, grade_submission, resolve_assignment
    from .report.html import render_report
    from .submission import read_submission

    state = _state()
    if task.cached is not None:
        raw = GradeResult.from_json(task.cached)
        assignment = state.assignment(task.course, raw.assignment, task.use_solutions)
        try:
            sub = read_submission(
                task.path, display=task.source, follow_links=False, sha256=task.sha256
            )
        except GraderError:
            sub = None
    else:
        options = GradeOptions(
            course=Path(task.course),
            assignment=task.assignment,
            sandbox=task.sandbox,
            use_solutions=task.use_solutions,
        )
        try:
            sub = read_submission(
                task.path, display=task.source, follow_links=False, sha256=task.sha256
            )
            resolved = resolve_assignment(sub, options, Path(task.course))
        except SubmissionChanged as exc:  # not the student's doing: read again next run
            return Done(task.key, "error", str(exc))
        except (SubmissionError, UsageError) as exc:  # the file, or which assignment it is for
            return Done(task.key, "unreadable", str(exc))
        assignment = state.assignment(task.course, resolved.id, task.use_solutions)
        graded = grade_submission(sub, assignment, state.factory(task.sandbox))
        # Rendered from the result as it is stored (durations rounded), so that a re-run that
        # re-renders it from its record writes the very same files.
        raw = GradeResult.from_json(graded.to_json())
    # An override that does not fit this assignment is left out here; the parent reports it.
    final, _ = apply_fitting(raw, overrides_for(task.overrides, task.student, raw.assignment))
    entry = Entry(task.key, task.student, task.source, status_of(final), result=final)
    return Done(
        task.key,
        entry.status,
        raw=raw.to_json(),
        html=render_report(final, sub, assignment, student=task.student),
        final_json=dumps(result_json(final)),
        gradescope=dumps(gradescope_json(entry)),
    )


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
