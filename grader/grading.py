"""Grading one submission end to end: read, pick the assignment, sandbox, checks, result.

Runs in the trusted parent; the only place where the pieces meet. The child process belongs to
this one submission and is always killed before this returns.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .assignment import Assignment, find_course_dir, infer_assignment, load_assignment
from .errors import SandboxUnavailable, SpecError, UsageError
from .remote import Runner, SubmissionProxy, Timeouts
from .results import GradeResult
from .sandbox.launcher import ZYGOTE_PRELOAD, Launcher, Limits, Mode
from .sandbox.process import ChildGone, Zygote
from .submission import Submission, read_submission


@dataclass(frozen=True)
class GradeOptions:
    course: Path | None = None
    assignment: str | None = None
    questions: tuple[str, ...] | None = None
    sandbox: str = "auto"  # auto | bubblewrap | process
    use_solutions: bool = True
    report: bool = False  # an HTML report will be rendered (its imports can start early)


class SandboxFactory:
    """Creates launchers; remembers a fallback so a batch probes the machine only once."""

    # A zygote that failed this often in one process is not started again (children are then
    # started directly, as for a single grade).
    ZYGOTE_STARTS = 3

    def __init__(
        self,
        requested: str,
        *,
        allow_fallback: bool,
        zygote: bool = False,
        preload: tuple[str, ...] = ZYGOTE_PRELOAD,
    ) -> None:
        if requested not in ("auto", "bubblewrap", "process"):
            raise UsageError(f"--sandbox {requested!r} must be auto, bubblewrap or process")
        self.requested = requested
        self.preload = preload  # what a zygote started here imports
        self.allow_fallback = allow_fallback and requested == "auto"
        self.mode = Mode.PROCESS if requested == "process" else Mode.BUBBLEWRAP
        self.warning: str | None = None
        self._launchers: dict[tuple[str, Limits], Launcher] = {}
        # Batch workers fork children from a zygote (see sandbox/zygote.py); a single grade
        # starts its one child directly, which is quicker than starting a zygote first.
        # GRADER_ZYGOTE=1 or 0 overrides that either way (to compare, or to rule it out).
        forced = os.environ.get("GRADER_ZYGOTE", "").strip()
        self.use_zygote = forced == "1" if forced in ("0", "1") else zygote
        self.no_zygote = forced == "0"
        self._zygotes: dict[tuple[str, Limits], Zygote] = {}
        self._zygote_starts = 0

    def launcher(self, limits: Limits) -> Launcher:
        key = (self.mode.value, limits)
        if key not in self._launchers:
            self._launchers[key] = Launcher(self.mode, limits=limits)
        return self._launchers[key]

    def zygote(self, limits: Limits) -> Zygote | None:
        """The running zygote for these limits (started if needed), or None to start directly.

        A spare zygote handed over by the warm server is used even where none would be started.
        """
        if self.mode is not Mode.BUBBLEWRAP or self.no_zygote:
            return None
        key = (self.mode.value, limits)
        current = self._zygotes.get(key)
        if current is not None and current.alive:
            return current
        if current is not None:
            current.close()
            del self._zygotes[key]
        spare = take_spare_zygote(limits)
        if spare is not None:
            self._zygotes[key] = spare
            return spare
        if not self.use_zygote or self._zygote_starts >= self.ZYGOTE_STARTS:
            return None
        self._zygote_starts += 1
        try:
            started = Zygote(self.launcher(limits), self.preload)
        except SandboxUnavailable:
            self._zygote_starts = self.ZYGOTE_STARTS
            return None
        self._zygotes[key] = started
        return started

    def close(self) -> None:
        """Stop the zygotes (their sandboxes also end with this process)."""
        for zygote in self._zygotes.values():
            zygote.close()
        self._zygotes.clear()

    def fall_back(self, reason: str) -> None:
        if not self.allow_fallback:
            raise SandboxUnavailable(reason)
        self.mode = Mode.PROCESS
        self.warning = (
            f"warning: {reason} Graded in the weaker 'process' sandbox "
            "(no isolation from your files); see `grade doctor`."
        )
        print(self.warning, file=sys.stderr)


_spare: list[tuple[int, Zygote]] = []


def adopt_spare_zygote(zygote: Zygote) -> None:
    """Hand this process a zygote started ahead of time (by the warm server, before forking)."""
    zygote.adopt()
    _spare[:] = [(os.getpid(), zygote)]


def take_spare_zygote(limits: Limits) -> Zygote | None:
    """The spare zygote, if this process was given one for these limits; used once.

    Only by the process it was handed to: a process forked from that one (a batch's pool
    worker) must never talk to the same zygote.
    """
    if not _spare or _spare[0][0] != os.getpid() or _spare[0][1].limits != limits:
        return None
    zygote = _spare.pop()[1]
    if zygote.alive:
        return zygote
    zygote.close()
    return None


def resolve_assignment(sub: Submission, options: GradeOptions, course: Path) -> Assignment:
    aid = options.assignment or sub.assignment_hint
    if aid is None:
        aid = infer_assignment(course, list(sub.defined_names()))
    try:
        return load_assignment(course, aid, use_solutions=options.use_solutions)
    except UsageError as exc:
        if options.assignment is None and sub.assignment_hint is not None:
            raise UsageError(
                f"{sub.display}: its metadata names assignment {aid!r}, which is "
                f"unknown here ({exc}); pass --assignment ID"
            ) from exc
        raise


def assignment_mismatch(sub: Submission, assignment: Assignment) -> str | None:
    """A warning when ``--assignment`` names another assignment than the submission does."""
    hint = sub.assignment_hint
    if hint is None or hint == assignment.id:
        return None
    return (
        f"{sub.display} says it is for assignment {hint!r}, but it was graded as "
        f"{assignment.id!r} (--assignment); its answers may not fit"
    )


def limits_for(assignment: Assignment) -> tuple[Limits, Timeouts]:
    lim = assignment.limits
    limits = Limits(
        memory_bytes=int(lim.get("memory_mb", 1024)) << 20,
        cpu_seconds=int(lim.get("cpu_seconds", 60)),
        allow_fork=bool(lim.get("allow_fork", False)),
    )
    timeouts = Timeouts(
        cell=float(lim.get("cell_timeout", 10.0)),
        call=float(lim.get("call_timeout", 5.0)),
        total=float(lim.get("total_timeout", 120.0)),
    )
    return limits, timeouts


def grade_submission(
    sub: Submission,
    assignment: Assignment,
    factory: SandboxFactory,
    *,
    questions: tuple[str, ...] | None = None,
    report: bool = False,
) -> GradeResult:
    """Run ``sub`` in a fresh sandbox and run the assignment's checks against it.

    ``report`` says an HTML report will follow, so its imports can start early.
    """
    started = time.perf_counter()
    timings: dict[str, float] = {}
    if questions is not None:
        for q in questions:
            assignment.question(q)  # raises a UsageError naming the known questions
    limits, timeouts = limits_for(assignment)
    module_name = "__main__" if sub.kind == "notebook" else "__submission__"
    runner = None
    warm = _warm_imports(assignment, report=report)
    for _attempt in range(2):
        runner = Runner(
            factory.launcher(limits),
            sub.cells,
            module_name=module_name,
            timeouts=timeouts,
            zygote=lambda: factory.zygote(limits),
        )
        try:
            t0 = time.perf_counter()
            cells = runner.start()
            timings["sandbox_start_and_cells"] = time.perf_counter() - t0
            break
        except (ChildGone, SandboxUnavailable) as exc:
            runner.close()
            reason = exc.reason if isinstance(exc, ChildGone) else str(exc)
            if factory.mode is Mode.PROCESS:
                raise SandboxUnavailable(f"the sandbox could not start: {reason}") from exc
            factory.fall_back(f"bubblewrap could not start here ({reason}).")
    assert runner is not None
    warm.join()
    # pytest and the answer readers load here, after the child has started (see _warm_imports).
    from .answers import Answers
    from .engine import GradeContext, assemble, load_reference, run_checks

    try:
        proxy = SubmissionProxy(runner)
        ctx = GradeContext(
            assignment=assignment,
            submission=sub,
            proxy=proxy,
            answers=Answers(proxy, sub, assignment),
            reference=load_reference(assignment),
            questions=frozenset(questions) if questions else None,
        )
        t0 = time.perf_counter()
        sandbox_before = runner.sandbox_seconds
        results = run_checks(ctx, assignment.check_files())
        timings["checks"] = time.perf_counter() - t0
        timings["checks_in_sandbox"] = runner.sandbox_seconds - sandbox_before
    finally:
        runner.close()
    questions_out = assemble(ctx, results)
    for qr in questions_out:
        spec_q = assignment.question(qr.id)
        total = sum(c.max_score for c in qr.checks)
        if total > spec_q.points + 1e-9:
            raise SpecError(
                f"{assignment.spec_path}: question {qr.id} is worth {spec_q.points:g} "
                f"points but its checks add up to {total:g}"
            )
    return GradeResult(
        assignment=assignment.id,
        submission=sub.display,
        sandbox=factory.mode.value,
        questions=questions_out,
        duration_s=time.perf_counter() - started,
        cells=tuple(cells),
        timings=timings,
        solutions_available=assignment.has_solutions,
    )


def _warm_imports(assignment: Assignment, *, report: bool) -> threading.Thread:
    """Import what the checks (and the report) will need while the sandbox starts.

    The child boots on the other core and the main thread only waits on its pipe, so these
    imports (SymPy, pytest, Hypothesis, nbconvert: most of a single grade's parent time) cost
    no wall time up to the sandbox's start-up time.
    """
    names = ["grader.engine", "grader.answers", "_pytest.python", "_pytest.fixtures"]
    kinds = {q.kind for q in assignment.questions}
    if kinds & {"symbolic", "derivation"}:
        names.append("grader.checks.math")
    if "text" in kinds:
        names.append("grader.checks.text")
    if report:
        names.append("grader.report.html")
    if assignment.uses_hypothesis():
        names.append("hypothesis")

    def run() -> None:
        for name in names:
            try:
                module = importlib.import_module(name)
                if name == "grader.report.html":
                    module.prepare()  # compile the report templates too
            except Exception:  # only a head start: the real import reports any error
                pass

    thread = threading.Thread(target=run, name="grader-warm-imports", daemon=True)
    thread.start()
    return thread


def grade_path(
    path: str | Path,
    options: GradeOptions,
    factory: SandboxFactory | None = None,
    *,
    display: str | None = None,
) -> tuple[GradeResult, Submission, Assignment]:
    """Read and grade one file. Raises GraderError subclasses for usage and input errors."""
    course = find_course_dir(options.course)
    sub = read_submission(path, display=display)
    assignment = resolve_assignment(sub, options, course)
    factory = factory or SandboxFactory(options.sandbox, allow_fallback=True)
    result = grade_submission(
        sub, assignment, factory, questions=options.questions, report=options.report
    )
    return result, sub, assignment
