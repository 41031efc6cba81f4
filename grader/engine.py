"""Runs an assignment's checks against one submission and builds its ``GradeResult``.

Runs in the trusted parent. Checks are ordinary pytest test functions (Hypothesis for property
tests) in ``assignments/<id>/checks/`` and ``solutions/<id>/checks/``, marked with
``@grader.check(question, points)``. pytest runs in this process with a plugin object that
provides the fixtures (``sub``, ``answers``, ``ref``, ``assignment``, ``rng``, ``record``) and
turns each test's outcome into a ``CheckResult``. Student code never runs here: ``sub`` is a
proxy to the sandboxed child.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import os
import sys
import zlib
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from traceback import extract_tb, format_exception_only
from types import ModuleType
from typing import Any, Literal, TypeVar

import pytest

from . import replay
from .answers import Answers
from .assignment import Assignment
from .checks.record import CheckRecorder
from .errors import (
    CheckFailed,
    CheckProblem,
    ChildDied,
    GraderError,
    MissingDefinition,
    NotCheckable,
    SpecError,
    StudentError,
    StudentTimeout,
    Undecided,
)
from .remote import DefinitionFailed, SubmissionProxy
from .results import CheckResult, Outcome, QuestionResult, TextNote
from .submission import Submission

F = TypeVar("F", bound=Callable[..., Any])
MARKER = "grader_check"
CTX_KEY = pytest.StashKey["GradeContext"]()
STANDARD_CHECKS = Path(__file__).resolve().parent / "checks" / "standard_checks.py"


def check(question: str, points: float, *, name: str | None = None) -> Callable[[F], F]:
    """Mark a pytest function as a check worth ``points`` for ``question``.

    The docstring's first line is what the student sees as the check's description.
    """
    if isinstance(points, bool) or not isinstance(points, int | float) or points < 0:
        raise ValueError(f"points={points!r} must be a non-negative number")

    def decorate(func: F) -> F:
        marked: F = getattr(pytest.mark, MARKER)(
            question=str(question), points=float(points), name=name
        )(func)
        return marked

    return decorate


def _setup_hypothesis() -> None:
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "grader",
        derandomize=True,
        database=None,
        deadline=None,
        max_examples=12,
        print_blob=False,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )
    settings.load_profile("grader")
    _no_local_constants()


def _no_local_constants() -> None:
    """Keep Hypothesis from drawing examples from constants in whatever local modules are loaded.

    Hypothesis mixes in literals from loaded modules outside site-packages (so: the grader in an
    editable install, check files, whatever ran before in a worker). The same check would then
    see different examples in `grade`, a batch worker or the warm server. Only its built-in
    constants are kept. (An internal hook: if it moves, examples merely vary more.)
    """
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - a future Hypothesis without it
        return
    constants = getattr(providers, "Constants", None)
    if hasattr(providers, "_get_local_constants") and constants is not None:
        empty = constants()
        providers._get_local_constants = lambda: empty


@dataclass
class GradeContext:
    """Everything the fixtures hand to checks for one submission."""

    assignment: Assignment
    submission: Submission
    proxy: SubmissionProxy | None
    answers: Answers
    reference: ModuleType | None
    questions: frozenset[str] | None = None
    results: list[CheckResult] = field(default_factory=list)
    collected: dict[str, float] = field(default_factory=dict)


def load_reference(assignment: Assignment) -> ModuleType | None:
    """Import the trusted reference implementation from ``solutions/<id>/reference.py``."""
    path = assignment.reference_path()
    if path is None:
        return None
    name = f"_grader_reference_{assignment.id.replace('-', '_')}"
    st = path.stat()
    stamp = (st.st_mtime_ns, st.st_size)  # an edited reference is loaded again
    cached = sys.modules.get(name)
    if (
        cached is not None
        and getattr(cached, "__file__", None) == str(path)
        and getattr(cached, "_grader_stamp", None) == stamp
    ):
        return cached
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    module._grader_stamp = stamp  # type: ignore[attr-defined]
    return module


class GraderPlugin:
    """The pytest plugin: fixtures for checks and a hook that records each outcome."""

    def __init__(self, ctx: GradeContext, *, select: bool = True) -> None:
        self.ctx = ctx
        # False in a kept session: it collects every check once, and each run picks its own.
        self.select = select
        self._recorders: dict[str, CheckRecorder] = {}
        self._errors: dict[str, tuple[BaseException, float]] = {}
        self._durations: dict[str, float] = {}
        self._nodeid = ""  # the check being set up or run
        self.fatal: GraderError | None = None

    def begin(self, ctx: GradeContext, config: pytest.Config) -> None:
        """Start a new submission in a kept session: nothing of the last one is left."""
        self.ctx = ctx
        self._recorders = {}
        self._errors = {}
        self._durations = {}
        self.fatal = None
        config.stash[CTX_KEY] = ctx

    # fixtures ------------------------------------------------------------------------------

    @pytest.fixture(scope="session")
    def sub(self) -> SubmissionProxy:
        if self.ctx.proxy is None:
            raise NotCheckable("the submission's code could not be run")
        return self.ctx.proxy

    @pytest.fixture(scope="session")
    def answers(self) -> Answers:
        return self.ctx.answers

    @pytest.fixture(scope="session")
    def ref(self) -> ModuleType:
        if self.ctx.reference is None:
            raise NotCheckable("this check needs the reference solution, which is not installed")
        return self.ctx.reference

    @pytest.fixture(scope="session")
    def assignment(self) -> Assignment:
        return self.ctx.assignment

    # The per-check fixtures take the check's id from ``pytest_runtest_setup`` rather than from
    # pytest's ``request``: asking for ``request`` costs pytest a signature inspection per use,
    # 70 of them per submission.

    @pytest.fixture
    def record(self) -> CheckRecorder:
        rec = CheckRecorder(_seed(self._nodeid))
        self._recorders[self._nodeid] = rec
        return rec

    @pytest.fixture
    def rng(self) -> Any:
        import numpy as np

        return np.random.default_rng(_seed(self._nodeid))

    @pytest.fixture
    def seed(self) -> int:
        return _seed(self._nodeid)

    # hooks ---------------------------------------------------------------------------------

    def pytest_configure(self, config: pytest.Config) -> None:
        config.addinivalue_line("markers", f"{MARKER}(question, points, name): a graded check")
        config.stash[CTX_KEY] = self.ctx

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(
        self, collector: pytest.Collector
    ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
        """A check file that cannot be imported (or parametrised) stops grading, named.

        pytest would count it as one failure among the checks and go on without its checks,
        so a broken check file looked like points "not checked here".
        """
        report = yield
        call = getattr(report, "call", None)
        if report.failed and call is not None and call.excinfo:
            # pytest leaves a module that failed half-way in sys.modules and would take it,
            # without the checks after the error, as the check file next time.
            _forget_module(str(collector.path))
            if self.fatal is None:
                self.fatal = _collection_error(collector, call.excinfo.value)
        return report

    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        problem = _misplaced_checks(items, self.ctx.assignment)
        if problem is not None:
            # A check for a question the spec lacks, or more check points than the question
            # is worth: the spec or the checks are wrong, so nothing is graded against them.
            self.fatal = self.fatal or problem
            items[:] = []
        elif self.select:
            items[:] = _select(items, self.ctx)
        else:
            items[:] = [item for item in items if item.get_closest_marker(MARKER) is not None]

    @pytest.hookimpl(tryfirst=True)  # before pytest's own, which sets up the fixtures
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self._nodeid = item.nodeid
        if self.ctx.proxy is not None:
            self.ctx.proxy.runner.current_check_error = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        """Run a property check through ``replay`` (its examples are drawn once per process)."""
        test = pyfuncitem.obj
        if not replay.is_property(test):
            return None
        funcargs = pyfuncitem.funcargs
        names = [n for n in inspect.signature(test).parameters if n in funcargs]

        def fresh() -> dict[str, Any]:
            if "record" in funcargs:  # the quick attempt's inputs and notes are dropped
                rec = CheckRecorder(_seed(pyfuncitem.nodeid))
                self._recorders[pyfuncitem.nodeid] = funcargs["record"] = rec
            return {n: funcargs[n] for n in names}

        replay.run_property(test, {n: funcargs[n] for n in names}, before_retry=fresh)
        return True

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> pytest.TestReport:
        """Record the outcome; hand pytest a bare report.

        pytest's own report formats a source traceback for every failure, which cost a third
        of a warm worker's time per submission; nothing reads it, because the grader builds
        its own result from the exception.
        """
        nodeid = item.nodeid
        self._durations[nodeid] = self._durations.get(nodeid, 0.0) + call.duration
        if call.excinfo is not None and nodeid not in self._errors:
            self._errors[nodeid] = (call.excinfo.value, call.duration)
        if call.when == "teardown":
            self.ctx.results.append(self._result(item, self._durations[nodeid]))
        longrepr: tuple[str, int, str] | str | None = None
        outcome: Literal["passed", "failed", "skipped"] = "passed"
        if call.excinfo is not None:
            if isinstance(call.excinfo.value, pytest.skip.Exception):
                outcome = "skipped"
                longrepr = (str(item.path), 0, str(call.excinfo.value))
            else:
                outcome = "failed"
                longrepr = f"{call.excinfo.typename}: see the grader's result"
        assert call.when != "collect"
        return pytest.TestReport(
            nodeid,
            item.location,
            {},
            outcome,
            longrepr,
            call.when,
            duration=call.duration,
            start=call.start,
            stop=call.stop,
        )

    def _result(self, item: pytest.Item, duration: float) -> CheckResult:
        mark = item.get_closest_marker(MARKER)
        assert mark is not None
        question, points = mark.kwargs["question"], mark.kwargs["points"]
        func = getattr(item, "function", None)
        doc = (func.__doc__ or "").strip() if func is not None else ""
        title = mark.kwargs.get("name") or (doc.splitlines()[0] if doc else item.name)
        rec = self._recorders.get(item.nodeid) or CheckRecorder(0)
        exc, _ = self._errors.get(item.nodeid, (None, 0.0))
        base: dict[str, Any] = {
            "name": title,
            "question": question,
            "description": doc,
            "max_score": points,
            "inputs": rec.inputs_text(passed=exc is None),
            "duration_s": duration,
            "public": "/solutions/" not in str(getattr(item, "path", "")).replace(os.sep, "/"),
        }
        details = list(rec.details)
        if exc is None:
            credit = 1.0 if rec.credit is None else rec.credit
            outcome = Outcome.PASSED if credit >= 1.0 else Outcome.FAILED
            return CheckResult(
                outcome=outcome,
                score=round(points * credit, 6),
                message=rec.message,
                hint=rec.hint,
                expected=rec.expected,
                actual=rec.actual,
                details=tuple(details),
                **base,
            )
        exc = _unwrap(exc)
        if isinstance(exc, GraderError) and self.fatal is None:
            # A broken spec or check is the instructor's problem: stop, don't blame the student.
            self.fatal = exc
        outcome, message, traceback = _classify(exc)
        credit = exc.credit if isinstance(exc, CheckProblem) else 0.0
        hint = (exc.hint if isinstance(exc, CheckProblem) else None) or rec.hint
        expected = (exc.expected if isinstance(exc, CheckProblem) else None) or rec.expected
        actual = (exc.actual if isinstance(exc, CheckProblem) else None) or rec.actual
        if isinstance(exc, CheckProblem):
            details += list(exc.details)
        if isinstance(exc, DefinitionFailed):
            details.append(
                TextNote(
                    text="fix that error: a cell runs only up to its first error "
                    "(none of it after a syntax error)"
                )
            )
        elif isinstance(exc, MissingDefinition):
            details.append(TextNote(text="define it at the top level of your notebook or module"))
        return CheckResult(
            outcome=outcome,
            score=round(points * credit, 6),
            message=message,
            hint=hint or "",
            expected=expected or "",
            actual=actual or "",
            traceback=traceback,
            details=tuple(details),
            **base,
        )


def _select(items: Sequence[pytest.Item], ctx: GradeContext) -> list[pytest.Item]:
    """The checks of the questions ``ctx`` grades, in order; counts their points by question."""
    keep = []
    for item in items:
        mark = item.get_closest_marker(MARKER)
        if mark is None:
            continue
        question = mark.kwargs["question"]
        if ctx.questions is not None and question not in ctx.questions:
            continue
        keep.append(item)
        ctx.collected[question] = ctx.collected.get(question, 0.0) + mark.kwargs["points"]
    return keep


def _misplaced_checks(items: Sequence[pytest.Item], assignment: Assignment) -> SpecError | None:
    """A check marked for a question the spec lacks, or a question whose checks are worth more
    than it is; each check is named by its file and function, with its points."""
    worth = {q.id: q.points for q in assignment.questions}
    by_question: dict[str, list[tuple[str, float]]] = {}
    for item in items:
        mark = item.get_closest_marker(MARKER)
        if mark is None:
            continue
        question, points = mark.kwargs["question"], mark.kwargs["points"]
        if question not in worth:
            code = getattr(getattr(item, "function", None), "__code__", None)
            line = f":{code.co_firstlineno}" if code is not None else ""
            return SpecError(
                f"{item.path}{line}: {item.name} is marked @check({question!r}, {points:g}), but "
                f"{assignment.spec_path} has no question {question!r} "
                f"(it has {', '.join(worth)})"
            )
        by_question.setdefault(question, []).append((_check_label(item, assignment), points))
    for question, checks in by_question.items():
        total = sum(points for _, points in checks)
        if total > worth[question] + 1e-6:
            listed = ", ".join(f"{label} ({points:g})" for label, points in checks)
            return SpecError(
                f"{assignment.spec_path}: question {question} is worth {worth[question]:g} "
                f"points but its checks add up to {total:g}: {listed}"
            )
    return None


def _check_label(item: pytest.Item, assignment: Assignment) -> str:
    """``assignments/<id>/checks/check_x.py::check_y``, or the built-in check's name."""
    if Path(item.path) == STANDARD_CHECKS:
        mark = item.get_closest_marker(MARKER)
        name = mark.kwargs.get("name") if mark is not None else None
        return f"the built-in check '{name or item.name}'"
    course = assignment.public_dir.parent.parent
    try:
        shown = Path(item.path).relative_to(course)
    except ValueError:
        shown = Path(item.path)
    return f"{shown.as_posix()}::{item.name}"


def _collection_error(collector: pytest.Collector, exc: BaseException) -> GraderError:
    """The error that stops grading when ``collector`` (a check file) could not be collected."""
    cause = exc.__cause__ if isinstance(exc, pytest.Collector.CollectError) else exc
    if cause is None:  # an error of pytest's own: its message is all there is
        return SpecError(f"{collector.path}: cannot load this check file: {exc}")
    if isinstance(cause, GraderError):  # e.g. a bad spec value met while parametrising
        return cause
    path = str(collector.path)
    lines = [f.lineno for f in extract_tb(cause.__traceback__) if f.filename == path]
    if isinstance(cause, SyntaxError) and cause.filename == path and cause.lineno:
        lines.append(cause.lineno)
    where = f"{path}:{lines[-1]}" if lines else path
    message = "".join(format_exception_only(cause)).strip().splitlines()[-1]
    if isinstance(cause, SyntaxError) and cause.filename != path and cause.filename:
        message += f" ({cause.filename}, line {cause.lineno})"
    return SpecError(f"{where}: cannot load this check file: {message}")


def _unwrap(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _classify(exc: BaseException) -> tuple[Outcome, str, str]:
    if isinstance(exc, StudentError):
        return Outcome.ERROR, f"your code raised {exc.message}", exc.traceback
    if isinstance(exc, StudentTimeout):
        return Outcome.TIMEOUT, exc.message, ""
    if isinstance(exc, ChildDied | MissingDefinition):
        return Outcome.ERROR, exc.message, ""
    if isinstance(exc, Undecided):
        return Outcome.UNDECIDED, exc.message, ""
    if isinstance(exc, NotCheckable):
        return Outcome.SKIPPED, exc.message, ""
    if isinstance(exc, CheckFailed | CheckProblem):
        return Outcome.FAILED, exc.message, ""
    if isinstance(exc, AssertionError):
        text = str(exc).split("\nassert ")[0].strip() or "an assertion about your answer failed"
        return Outcome.FAILED, text, ""
    if isinstance(exc, pytest.skip.Exception):
        return Outcome.SKIPPED, str(exc) or "skipped", ""
    text = f"{type(exc).__name__}: {exc}"
    return Outcome.ERROR, f"the check could not examine your result ({text[:300]})", ""


def _seed(nodeid: str) -> int:
    """A fixed seed per check, the same on every machine (the file name, not its path)."""
    key = nodeid.replace(os.sep, "/").split("/")[-1]
    return zlib.crc32(key.encode("utf-8"))


def run_checks(ctx: GradeContext, check_files: Sequence[Path]) -> list[CheckResult]:
    """Run pytest over ``check_files`` with the grader plugin; return one result per check."""
    # Hypothesis costs half a second to import: load it only when a check file uses it. Its
    # profile (fixed seeds) must be in place before the check modules are imported, because
    # @given captures the default settings when it decorates.
    if ctx.assignment.uses_hypothesis():
        _setup_hypothesis()
    kinds = {q.kind for q in ctx.assignment.questions}
    if kinds & {"text", "symbolic", "derivation"}:
        check_files = [*check_files, STANDARD_CHECKS]
    if not check_files:
        return ctx.results
    args = _pytest_args(check_files)
    stamps = _stamps(check_files)
    if stamps is not None:
        _forget_changed_modules(stamps)
    kept = _kept_session(ctx, stamps, args) if stamps is not None else None
    if kept is not None:
        code, fatal = kept.run(ctx)
    else:
        plugin = GraderPlugin(ctx)
        with _no_plugin_autoload():
            code = pytest.main(args, plugins=[plugin])
        fatal = plugin.fatal
    if fatal is not None:
        raise fatal
    if code not in (0, 1, 5):
        raise RuntimeError(
            f"pytest could not run the checks (exit code {int(code)}); "
            f"check files: {', '.join(map(str, check_files))}"
        )
    return ctx.results


def _pytest_args(check_files: Sequence[Path]) -> list[str]:
    # Absolute: the grader's own standard checks are, and commonpath cannot mix the two.
    rootdir = os.path.commonpath([os.path.abspath(p.parent) for p in check_files])
    # Only the plugins checks need: collection, fixtures, skipping and assertion rewriting.
    # The others cost time per run (the unraisable/thread hooks collect garbage per test).
    disabled = (
        "cacheprovider",
        "terminal",
        "stepwise",
        "logging",
        "junitxml",
        "pastebin",
        "doctest",
        "faulthandler",
        "legacypath",
        "debugging",
        "setuponly",
        "setupplan",
        "monkeypatch",
        "tmpdir",
        "recwarn",
        "unittest",
        "threadexception",
        "unraisableexception",
        "warnings",
        "python_path",
    )
    args = [*map(str, check_files)]
    for name in disabled:
        args += ["-p", f"no:{name}"]
    args += [
        "--import-mode=importlib",
        "--rootdir",
        rootdir,
        "--noconftest",
        "-o",
        "python_files=check_*.py",
        "-o",
        "python_functions=check_* test_*",
        "-o",
        "addopts=",
        "-o",
        "testpaths=",
        "--capture=no",
        "-c",
        os.devnull,
    ]
    return args


@contextlib.contextmanager
def _no_plugin_autoload() -> Iterator[None]:
    """Entry-point plugins of whatever else is installed have no business here (and scanning
    for them costs a quarter of a second)."""
    saved = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
        else:
            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = saved


# --- a pytest session kept between submissions ------------------------------------------------


class KeptSession:
    """One configured, collected pytest session that runs the same checks for many submissions.

    Setting up pytest and collecting the checks cost a third of a warm worker's time per
    submission, and gave the same items every time: the check modules stay imported, and the
    parametrisation depends only on the assignment. Each run goes through pytest's own
    per-test protocol (as ``pytest_runtestloop`` does), the last test with no successor so
    that every fixture, the session-scoped ones included, is torn down before the next
    submission; the plugin is reset by ``GraderPlugin.begin``. Nothing else carries over: a
    test's request and arguments are rebuilt by pytest for each run.
    """

    def __init__(self, key: tuple[Any, ...], ctx: GradeContext, args: list[str]) -> None:
        from _pytest.config import _prepareconfig

        self.key = key
        self.assignment = ctx.assignment  # held, so the key's id() cannot be reused
        # Collection reads only the assignment from the context (for the parametrisation).
        self.plugin = GraderPlugin(ctx, select=False)
        with _no_plugin_autoload():
            self.config = _prepareconfig(args, plugins=[self.plugin])
        self.session: pytest.Session | None = None
        self.items: list[pytest.Item] = []

    def start(self) -> bool:
        """Configure and collect; False when collection failed (``plugin.fatal`` says why)."""
        self.config._do_configure()
        self.session = pytest.Session.from_config(self.config)
        self.config.hook.pytest_sessionstart(session=self.session)
        self.config.hook.pytest_collection(session=self.session)
        self.items = list(self.session.items)
        return not self.session.testsfailed and self.plugin.fatal is None

    def run(self, ctx: GradeContext) -> tuple[int, GraderError | None]:
        """Run the checks ``ctx`` selects; the exit code pytest.main would have given."""
        assert self.session is not None
        self.plugin.begin(ctx, self.config)
        items = _select(self.items, ctx)
        failed = 0
        item: pytest.Item | None = None
        try:
            for i, item in enumerate(items):
                nextitem = items[i + 1] if i + 1 < len(items) else None
                item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
            failed = self.session.testsfailed
            self.session.testsfailed = 0
            if self.session.shouldfail or self.session.shouldstop:
                raise RuntimeError("pytest was asked to stop")
        except Exception as exc:
            _drop_kept()
            if self.plugin.fatal is not None:
                return 3, self.plugin.fatal
            # Name the check and the cause: "exit code 3" alone sent instructors to the source.
            where = f" {item.nodeid}" if item is not None else ""
            raise RuntimeError(
                f"pytest could not run the check{where}: {type(exc).__name__}: {exc}"
            ) from exc
        except BaseException:
            _drop_kept()
            raise
        code = 1 if failed else (0 if items else 5)
        return code, self.plugin.fatal

    def close(self) -> None:
        try:
            if self.session is not None:
                self.config.hook.pytest_sessionfinish(session=self.session, exitstatus=0)
        finally:
            self.config._ensure_unconfigure()


_KEPT: list[KeptSession] = []


def _drop_kept() -> None:
    while _KEPT:
        kept = _KEPT.pop()
        with contextlib.suppress(Exception):
            kept.close()


Stamps = tuple[tuple[str, int, int], ...]  # (path, mtime_ns, size) of each check file

# The size and modification time of each check file when this process last loaded it.
_LOADED: dict[str, tuple[int, int]] = {}


def _stamps(check_files: Sequence[Path]) -> Stamps | None:
    """Each check file's path, modification time and size; None when one cannot be read
    (then ``pytest.main`` runs and reports it)."""
    stamps = []
    for path in check_files:
        try:
            st = path.stat()
        except OSError:
            return None
        stamps.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(stamps)


def _forget_changed_modules(stamps: Stamps) -> None:
    """Drop the module of every check file that changed since this process loaded it.

    pytest's importlib mode takes a module it finds in ``sys.modules`` as it is: a long-lived
    process (a batch worker, a notebook kernel running ``check``) would go on grading with a
    check file's old contents after an instructor edited it.
    """
    for path, mtime, size in stamps:
        if _LOADED.get(path) != (mtime, size):  # changed, or loaded by someone else
            _forget_module(path)
        _LOADED[path] = (mtime, size)


def _forget_module(path: str) -> None:
    for name, module in list(sys.modules.items()):
        if getattr(module, "__file__", None) == path:
            del sys.modules[name]


def _kept_session(ctx: GradeContext, stamps: Stamps, args: list[str]) -> KeptSession | None:
    """The kept session for these checks (built on first use), or None to run pytest.main.

    The key holds the assignment object (the parametrisation comes from it) and each check
    file's size and modification time; any other set of checks replaces the kept session.
    None when pytest's internals differ from what this relies on, or collection failed for a
    reason of pytest's own: then ``pytest.main`` runs and reports the problem as it always did.
    A check file that cannot be loaded raises its ``SpecError`` here.
    """
    key = (id(ctx.assignment), tuple(args), stamps)
    if _KEPT and _KEPT[0].key == key and _KEPT[0].assignment is ctx.assignment:
        return _KEPT[0]
    _drop_kept()
    try:
        kept = KeptSession(key, ctx, args)
    except Exception:
        return None
    try:
        ok = kept.start()
    except Exception:
        ok = False
    if not ok:
        with contextlib.suppress(Exception):
            kept.close()
        if kept.plugin.fatal is not None:  # a broken check file: no use collecting it again
            raise kept.plugin.fatal
        return None
    _KEPT.append(kept)
    return kept


def assemble(ctx: GradeContext, results: Sequence[CheckResult]) -> tuple[QuestionResult, ...]:
    """Group check results by question; points no check could cover are 'unchecked'."""
    defined = ctx.submission.defined_names()
    questions = []
    for q in ctx.assignment.questions:
        if ctx.questions is not None and q.id not in ctx.questions:
            continue
        checks = tuple(r for r in results if r.question == q.id)
        checked = sum(c.max_score for c in checks if c.outcome is not Outcome.SKIPPED)
        unchecked = max(0.0, round(q.points - checked, 6))
        score = min(q.points, round(sum(c.score for c in checks), 6))
        source, cell = ctx.answers.sources.get(q.id, ("", None))
        if q.kind == "code":
            cells = [defined[f] for f in q.functions if f in defined]
            cell = cells[0] if cells else None
            source = (
                "the cell that defines " + ", ".join(f"`{f}`" for f in q.functions) if cells else ""
            )
        source = _with_duplicate_tags(ctx.submission, q.id, q.kind, source, cell)
        questions.append(
            QuestionResult(
                id=q.id,
                kind=q.kind,
                title=q.title,
                score=score,
                max_score=q.points,
                checks=checks,
                unchecked_points=unchecked,
                answer_source=source,
                answer_cell=cell,
            )
        )
    return tuple(questions)


def _with_duplicate_tags(
    sub: Submission, qid: str, kind: str, source: str, cell: int | None
) -> str:
    """``source``, with a note when several cells are tagged ``answer:qid``."""
    note = sub.duplicate_tag_note(qid)
    if not note:
        return source
    if kind == "code":
        note += (
            "; code cells all run in order, so a function defined twice is tested as last defined"
        )
    elif "tagged" in source and cell is not None:
        note += f"; the first, cell {cell + 1}, was graded"
    return f"{source} ({note})" if source else note
