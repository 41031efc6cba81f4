"""``grade batch``: grade a folder of submissions in parallel and write the class outputs.

Runs in the trusted parent; each submission is graded by a worker (a local process, or a Dask
worker) that runs it in its own sandbox and returns plain data: the result, the report HTML
and the per-submission JSON texts. Only the parent writes files, each atomically, and the
class files (``grades.csv``, ``canvas.csv``, ``summary.html``) are rebuilt from every
submission's record at the end of each run, so a batch killed at any moment resumes with no
half-written file and no lost or duplicated row. A lock file keeps a second batch out of the
same output folder. A submission that cannot be read or crashes gets a row; the batch goes on.

This module never grades with the weak "process" sandbox unless it was asked for by name.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from .batch_store import (
    STATE_DIR,
    Found,
    Store,
    discover,
    file_hash,
    load_seconds,
    open_regular,
    output_lock,
    save_seconds,
)
from .batch_worker import Done, Task, grade_task, start_worker, task_limit, watched
from .cli import atomic_write
from .errors import GraderError, SandboxUnavailable, UsageError
from .overrides import Override, load_overrides, validate_overrides
from .report.gradebook import Entry, duplicates

__all__ = ["BatchOptions", "BatchOutcome", "main", "run_batch"]


@dataclass(frozen=True)
class BatchOptions:
    folder: Path
    output_dir: Path
    assignment: str | None = None
    jobs: int | None = None
    force: bool = False
    sandbox: str = "auto"  # auto (= bubblewrap, never falls back) | bubblewrap | process
    executor: str = "local"  # local | dask
    scheduler: str | None = None
    overrides: Path | None = None
    course: Path | None = None
    use_solutions: bool = True


@dataclass(frozen=True)
class BatchOutcome:
    entries: tuple[Entry, ...]
    graded: int  # graded in this run
    updated: int  # unchanged submissions whose outputs were rewritten (e.g. new overrides)
    reused: int  # unchanged, outputs current
    seconds: float
    output_dir: Path

    @property
    def failures(self) -> tuple[Entry, ...]:
        return tuple(e for e in self.entries if e.failed)


# --- running ----------------------------------------------------------------------------------


class Progress:
    """A bar on a terminal, one plain line per submission otherwise."""

    def __init__(self, total: int, stream: TextIO | None) -> None:
        self.total, self.done, self.stream = total, 0, stream
        self.tty = bool(stream is not None and stream.isatty())

    def step(self, entry: Entry, seconds: float) -> None:
        self.done += 1
        if self.stream is None:
            return
        r = entry.result
        what = (
            f"{r.score:g} / {r.max_score:g}"
            if r is not None
            else f"{entry.status}: {entry.message}"
        )
        if self.tty:
            width = shutil.get_terminal_size((80, 20)).columns
            bar_w = max(10, min(30, width - 50))
            filled = int(bar_w * self.done / max(1, self.total))
            line = (
                f"[{'#' * filled}{'.' * (bar_w - filled)}] {self.done}/{self.total} "
                f"{entry.student}: {what}"
            )
            self.stream.write("\r" + line[: width - 1].ljust(width - 1))
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(
                f"[{self.done}/{self.total}] {entry.student}: {what} ({seconds:.1f} s)\n"
            )
        self.stream.flush()


def _make_executor(
    options: BatchOptions, *, warm: bool = True
) -> tuple[cf.Executor, Callable[[], None]]:
    if options.executor == "dask":
        if not options.scheduler:
            raise UsageError("--executor dask needs --scheduler ADDRESS (e.g. tcp://host:8786)")
        try:
            from dask import distributed
        except ImportError as exc:
            raise UsageError("--executor dask needs Dask: pip install 'grader[dask]'") from exc
        client_class: Any = distributed.Client  # Dask has no complete type hints
        try:
            client = client_class(options.scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise UsageError(
                f"cannot reach the Dask scheduler at {options.scheduler}: {exc}"
            ) from exc
        executor: cf.Executor = client.get_executor(pure=False)
        return executor, client.close
    jobs = options.jobs or len(os.sched_getaffinity(0))
    preload = _zygote_preload(options) if warm else None
    pool = _local_pool(max(1, jobs), warm=warm, sandbox=options.sandbox, preload=preload)
    return pool, lambda: pool.shutdown(wait=True, cancel_futures=True)


def _zygote_preload(options: BatchOptions) -> tuple[str, ...] | None:
    """What the workers' zygotes import, from what the submissions name (None: the default,
    when the folder cannot be listed; the batch then reports that itself)."""
    from .sandbox.launcher import zygote_preload
    from .submission import MAX_BYTES

    try:
        found = discover(options.folder, options.output_dir)
    except (GraderError, OSError):
        return None

    def contents() -> Iterator[bytes]:
        for f in found:
            if f.problem:
                continue  # never read (a link, a FIFO…)
            try:
                with open_regular(f.path) as fh:
                    if os.fstat(fh.fileno()).st_size <= MAX_BYTES:  # else refused unread
                        yield fh.read(MAX_BYTES)
            except OSError:
                continue  # reported when the batch hashes it

    return zygote_preload(contents())


def _local_pool(
    jobs: int, *, warm: bool, sandbox: str = "auto", preload: tuple[str, ...] | None = None
) -> cf.ProcessPoolExecutor:
    """Worker processes that die with this one, so a batch killed with SIGKILL leaves none
    behind to hold the output lock or a sandbox."""
    context = multiprocessing.get_context()
    # The kernel's parent-death signal follows the thread that forked a worker: the caller's,
    # which outlives the pool. A fork server is the workers' parent instead of us; it exits
    # when we die, and they with it.
    parent = None if context.get_start_method() == "forkserver" else os.getpid()
    return cf.ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=context,
        initializer=start_worker,
        initargs=(parent, warm, sandbox, preload),
    )


def _start_early(options: BatchOptions) -> tuple[cf.Executor, Callable[[], None]] | None:
    """Start the local workers now when the batch will surely grade: a first run into this
    output folder, or ``--force``. They import and start their sandboxes while this process
    reads the specs and hashes the files. A re-run, which may find nothing changed, starts
    them once it knows there is work."""
    if options.executor != "local":
        return None
    if not options.force and _has_records(options.output_dir):
        return None
    executor, close = _make_executor(options)
    try:
        executor.submit(int)  # a local pool starts its processes with the first task
    except Exception:
        _stop_now(executor, close)
        return None
    return executor, lambda: _stop_now(executor, close)


def _has_records(output_dir: Path) -> bool:
    try:
        return any(
            p.suffix == ".json" and not p.name.startswith(".")
            for p in (output_dir / STATE_DIR).iterdir()
        )
    except OSError:
        return False


def _stop_now(executor: cf.Executor, close: Callable[[], None]) -> None:
    """Close an executor; its local workers are killed first, not awaited (they may still be
    importing, which takes seconds, and have nothing to finish)."""
    processes = getattr(executor, "_processes", None) or {}
    for process in list(processes.values()):
        process.kill()
    close()


def run_tasks(
    options: BatchOptions,
    tasks: Sequence[tuple[Found, Task]],
    on_done: Callable[[Found, Done], None],
    work: Callable[[Task], Done] = grade_task,
    *,
    started: tuple[cf.Executor, Callable[[], None]] | None = None,
) -> None:
    """Run every task through the executor; ``on_done`` sees each result as it arrives.

    ``started`` is an executor already started for these tasks (see ``_start_early``); it is
    closed here. When a local worker dies, the pool breaks and every unfinished task fails
    with it; those are retried one at a time in a fresh process, so only the one that kills
    its worker again is marked crashed.
    """
    if not tasks:
        if started is not None:
            started[1]()
        return

    def finish(found: Found, done: Done) -> None:
        if done.status == "sandbox":
            raise SandboxUnavailable(
                f"{done.message} (to grade anyway in the weaker process sandbox, pass "
                "--sandbox process)"
            )
        on_done(found, done)

    executor, close = started or _make_executor(options, warm=work is grade_task)
    retry: list[tuple[Found, Task]] = []
    try:
        futures = {executor.submit(watched, work, t): (f, t) for f, t in tasks}
        for fut in cf.as_completed(futures):
            found, task = futures[fut]
            try:
                done = fut.result()
            except BrokenProcessPool:
                retry.append((found, task))
                continue
            except Exception as exc:  # e.g. a Dask worker killed while grading this one
                done = Done(task.key, "crashed", f"the worker died: {type(exc).__name__}: {exc}")
            finish(found, done)
    finally:
        close()
    for found, task in sorted(retry, key=lambda ft: ft[1].key):
        # The pool broke while these were queued or running; alone, only the culprit crashes.
        with _local_pool(1, warm=False) as single:
            began = time.monotonic()
            try:
                done = single.submit(watched, work, task).result()
            except BrokenProcessPool:
                if time.monotonic() - began >= task_limit():
                    done = Done(
                        task.key,
                        "error",
                        f"grading this submission took the grader itself more than "
                        f"{task_limit():g} s (the student's code has limits of its own), so "
                        "it was stopped; please report it with the file",
                    )
                else:
                    done = Done(
                        task.key,
                        "crashed",
                        "the grading process died (out of memory or "
                        "killed) while grading this submission",
                    )
                # Made here, not by the worker: how long it took is measured here too.
                done = replace(done, seconds=time.monotonic() - began)
        finish(found, done)


# A submission that took at least this long when it was last graded is started early. (A
# worker's first submission takes about a second more than the rest: it imports what grading
# needs.)
SLOW_S = 2.0


def start_order(
    tasks: Sequence[tuple[Found, Task]], seconds: dict[str, float]
) -> list[tuple[Found, Task]]:
    """The tasks in the order to start them, from how long each took when last graded.

    Each worker takes the next task when it is free. A long task started last (say, a function
    that runs into its time limit) keeps one worker busy after the others have run out of
    work; long tasks started together hold every worker at once. So the slow ones (at least
    ``SLOW_S``, longest first) are spread from the start of the queue, each followed by an
    equal share (within one) of the rest, which keep their own order. When most are slow,
    some slow ones follow each other: longest first, the usual rule for known durations.
    """
    slow = sorted(
        (ft for ft in tasks if seconds.get(ft[0].key, 0.0) >= SLOW_S),
        key=lambda ft: seconds[ft[0].key],
        reverse=True,
    )
    if not slow:
        return list(tasks)
    rest = [ft for ft in tasks if seconds.get(ft[0].key, 0.0) < SLOW_S]
    share, extra = divmod(len(rest), len(slow))
    ordered: list[tuple[Found, Task]] = []
    taken = 0
    for i, ft in enumerate(slow):
        n = share + (1 if i < extra else 0)
        ordered.append(ft)
        ordered.extend(rest[taken : taken + n])
        taken += n
    return ordered


def run_batch(options: BatchOptions, *, progress: TextIO | None = None) -> BatchOutcome:
    """Grade every submission under ``options.folder``; write all outputs; return the entries."""
    from .assignment import find_course_dir

    started = time.perf_counter()
    _check_options(options)
    course = find_course_dir(options.course).resolve()
    early = _start_early(options)
    try:
        return _run_batch(options, course, early, started, progress)
    finally:
        if early is not None:
            early[1]()  # closed already when it was used; never left running


def _run_batch(
    options: BatchOptions,
    course: Path,
    early: tuple[cf.Executor, Callable[[], None]] | None,
    started: float,
    progress: TextIO | None,
) -> BatchOutcome:
    from .assignment import list_assignments, load_assignment
    from .report.gradebook import canvas_csv, grades_csv, summarise
    from .report.html import render_summary

    known = list_assignments(course)
    if options.assignment is not None and options.assignment not in known:
        raise UsageError(
            f"unknown assignment {options.assignment!r} (known: {', '.join(known) or 'none'})"
        )
    specs = {a: load_assignment(course, a, use_solutions=False) for a in known}
    titles = {a: spec.title for a, spec in specs.items()}
    overrides: tuple[Override, ...] = ()
    if options.overrides is not None:
        overrides = load_overrides(options.overrides)
        scope = [options.assignment] if options.assignment else known
        validate_overrides(
            overrides, {a: {q.id: q.points for q in specs[a].questions} for a in scope}
        )
    ignored: list[str] = []
    found = discover(options.folder, options.output_dir, ignored=ignored)
    if not found:
        raise UsageError(f"no .ipynb or .py submissions under {options.folder}")
    store = Store(
        options.output_dir,
        course,
        overrides,
        assignment=options.assignment,
        use_solutions=options.use_solutions,
        sandbox=options.sandbox,
        force=options.force,
    )

    def task(f: Found, cached: dict[str, Any] | None = None) -> tuple[Found, Task]:
        return f, Task(
            f.key,
            # Absolute, for a worker elsewhere; the file's own name is never resolved, so a
            # file swapped for a link since it was hashed is refused by the worker, not followed.
            str(f.path.parent.resolve() / f.path.name),
            f.source,
            f.student,
            str(course),
            options.assignment,
            options.sandbox,
            options.use_solutions,
            overrides,
            cached,
            digests[f.key],
        )

    with output_lock(options.output_dir):
        bar = Progress(len(found), progress)
        entries: dict[str, Entry] = {}
        tasks: list[tuple[Found, Task]] = []
        digests: dict[str, str] = {}
        reused: set[str] = set()
        for f in found:
            if f.problem:
                entries[f.key] = store.write(
                    f, "", Done(f.key, "unreadable", f"{f.source}: {f.problem}")
                )
                bar.step(entries[f.key], 0.0)
                continue
            try:
                digests[f.key] = digest = file_hash(f.path)
            except OSError as exc:  # gone, or swapped for a link or a FIFO since discover
                entries[f.key] = store.write(
                    f, "", Done(f.key, "unreadable", f"{f.source}: cannot read: {exc}")
                )
                bar.step(entries[f.key], 0.0)
                continue
            record = store.reusable(f, digest)
            if record is None:
                tasks.append(task(f))
                continue
            entry, current = store.reuse(f, record)
            if current:
                entries[f.key] = entry
                reused.add(f.key)
                bar.step(entry, 0.0)
            elif isinstance(record.get("result"), dict):
                tasks.append(task(f, cached=record["result"]))
            else:
                entries[f.key] = store.write(f, digest, Done(f.key, entry.status, entry.message))
                bar.step(entry, 0.0)

        def on_done(f: Found, done: Done) -> None:
            entries[f.key] = store.write(f, digests[f.key], done)
            bar.step(entries[f.key], done.seconds)

        took = load_seconds(options.output_dir)  # the grading times of the latest runs

        def on_graded(f: Found, done: Done) -> None:
            took[f.key] = done.seconds
            on_done(f, done)

        # Re-rendering a stored result is trusted, quick work: do it here, not in a new pool.
        for f, t in tasks:
            if t.cached is not None:
                on_done(f, grade_task(t))
        fresh_tasks = start_order([(f, t) for f, t in tasks if t.cached is None], took)
        try:
            run_tasks(options, fresh_tasks, on_graded, started=early)
        finally:  # also when stopped part way: the times measured so far are kept
            if fresh_tasks:
                save_seconds(
                    options.output_dir, {f.key: took[f.key] for f in found if f.key in took}
                )
        ordered = tuple(entries[f.key] for f in found)
        notices = [
            *_override_notices(overrides, store, ordered),
            *_duplicate_notices(ordered),
            *_ignored_notices(ignored),
        ]
        if progress is not None:
            progress.writelines(f"warning: {n}\n" for n in notices)
        out = options.output_dir
        atomic_write(out / "grades.csv", grades_csv(ordered))
        atomic_write(out / "canvas.csv", canvas_csv(ordered, titles))
        summary = summarise(ordered, titles, folder=options.folder.name, notices=notices)
        atomic_write(out / "summary.html", render_summary(summary))

    # Every submission is counted once: not graded (whenever that was decided), or graded now,
    # updated (re-rendered from its record) or unchanged.
    def count(keys: set[str]) -> int:
        return sum(1 for k in keys if not entries[k].failed)

    updated = {f.key for f, t in tasks if t.cached is not None}
    fresh = {f.key for f, t in tasks if t.cached is None}
    seconds = time.perf_counter() - started
    return BatchOutcome(ordered, count(fresh), count(updated), count(reused), seconds, out)


def _check_options(options: BatchOptions) -> None:
    if options.sandbox not in ("auto", "bubblewrap", "process"):
        raise UsageError(f"--sandbox {options.sandbox!r} must be auto, bubblewrap or process")
    if options.executor not in ("local", "dask"):
        raise UsageError(f"--executor {options.executor!r} must be local or dask")
    if options.jobs is not None and options.jobs < 1:
        raise UsageError(f"--jobs {options.jobs} must be at least 1")


def _override_notices(
    overrides: Sequence[Override], store: Store, entries: Sequence[Entry]
) -> list[str]:
    """A line for each override this run did not apply, saying why."""
    notices = []
    students = {e.student for e in entries}
    graded = {(e.student, e.result.assignment) for e in entries if e.result is not None}
    for o in overrides:
        if o.where in store.applied:  # it fit one of the student's submissions: as meant
            continue
        if o.where in store.refused:
            notices.append(f"{o.where}: {store.refused[o.where]}; the override was not used")
        elif o.student not in students:
            notices.append(
                f"{o.where}: no submission from student {o.student!r} in this batch; "
                "the override was not used"
            )
        elif o.assignment and (o.student, o.assignment) not in graded:
            notices.append(
                f"{o.where}: no graded {o.assignment} submission from student {o.student!r} in "
                "this batch; the override was not used"
            )
        else:
            notices.append(
                f"{o.where}: no graded submission from student {o.student!r} in this batch; "
                "the override was not used"
            )
    return notices


def _duplicate_notices(entries: Sequence[Entry]) -> list[str]:
    return [
        f"student {student!r} has {len(found)} graded {aid} submissions "
        f"({', '.join(e.source for e in found)}): grades.csv lists each, canvas.csv leaves "
        "that grade empty; keep one and re-run"
        for (student, aid), found in duplicates(entries).items()
    ]


def _ignored_notices(ignored: Sequence[str], shown: int = 5) -> list[str]:
    if not ignored:
        return []
    names = ", ".join(ignored[:shown])
    if len(ignored) > shown:
        names += f" and {len(ignored) - shown} more"
    files = "1 file" if len(ignored) == 1 else f"{len(ignored)} files"
    return [f"{files} not .ipynb or .py, so not graded: {names}"]


# --- the command ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="grade batch",
        description="Grade every .ipynb/.py under DIR in parallel. Writes per submission "
        "<id>.html, <id>.json and <id>.results.json (Gradescope), and for the class grades.csv, "
        "canvas.csv and summary.html. Re-running skips unchanged submissions. Exit codes: 0 all "
        "graded, 1 some could not be graded, 2 usage or input error, 3 internal error.",
    )
    p.add_argument(
        "folder",
        metavar="DIR",
        help="folder of submissions (one file, or one folder named after the student, per student)",
    )
    p.add_argument("--assignment", "-a", help="assignment id (default: from each submission)")
    p.add_argument("--jobs", "-j", type=int, help="parallel workers (default: all cores)")
    p.add_argument("--output-dir", "-o", help="where outputs go (default: reports/<DIR name>)")
    p.add_argument("--force", action="store_true", help="regrade unchanged submissions too")
    p.add_argument(
        "--sandbox",
        choices=("auto", "bubblewrap", "process"),
        default="auto",
        help="auto (default) requires bubblewrap; the weaker process sandbox is used "
        "only when named",
    )
    p.add_argument(
        "--executor",
        choices=("local", "dask"),
        default="local",
        help="local processes (default) or a Dask cluster (needs grader[dask])",
    )
    p.add_argument(
        "--scheduler", metavar="ADDR", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786"
    )
    p.add_argument(
        "--overrides",
        metavar="FILE",
        help="instructor overrides (.csv or .toml: student, question, points, comment)",
    )
    p.add_argument("--course", help="folder with assignments/ and solutions/")
    p.add_argument("--no-solutions", action="store_true", help="public checks only")
    return p


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    folder = Path(args.folder)
    options = BatchOptions(
        folder=folder,
        output_dir=Path(args.output_dir)
        if args.output_dir
        else Path("reports") / (folder.resolve().name or "batch"),
        assignment=args.assignment,
        jobs=args.jobs,
        force=args.force,
        sandbox=args.sandbox,
        executor=args.executor,
        scheduler=args.scheduler,
        overrides=Path(args.overrides) if args.overrides else None,
        course=Path(args.course) if args.course else None,
        use_solutions=not args.no_solutions,
    )
    outcome = run_batch(options, progress=sys.stderr)
    n = len(outcome.entries)
    failed = outcome.failures
    print(
        f"{n} submissions: {outcome.graded} graded now, {outcome.updated} updated, "
        f"{outcome.reused} unchanged, {len(failed)} not graded, in {outcome.seconds:.1f} s "
        f"→ {outcome.output_dir}",
        file=sys.stderr,
    )
    for e in failed:
        print(f"  {e.source}: {e.status}: {e.message}", file=sys.stderr)
    print(outcome.output_dir / "summary.html")
    return 1 if failed else 0
