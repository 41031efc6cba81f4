"""The parent's view of a running submission: the runner (cells, restarts) and the proxy.

Runs in the trusted parent. ``Runner`` starts the sandboxed child, runs the submission's code
cells one by one (recording each cell's outcome), and restarts the child for the remaining
checks when a call kills it. ``SubmissionProxy`` is what checks use: ``sub.backward(x, ...)``
sends the call to the child; only decoded data comes back. Objects that cannot travel stay in
the child behind a ``RemoteHandle``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import CheckFailed, ChildDied, MissingDefinition, StudentError, StudentTimeout
from .results import CellRun
from .sandbox import wire
from .sandbox.launcher import Launcher
from .sandbox.process import ChildGone, ChildProcess, Zygote
from .submission import Cell

PRELOAD = ("numpy",)


@dataclass(frozen=True)
class Timeouts:
    """Wall-clock limits, in seconds."""

    start: float = 20.0
    cell: float = 10.0
    call: float = 5.0
    total: float = 120.0
    max_restarts: int = 6


@dataclass(frozen=True)
class CallOutcome:
    value: Any
    args_after: list[Any] | None
    kwargs_after: dict[str, Any] | None
    stdout: str
    stderr: str
    seconds: float


class DefinitionFailed(MissingDefinition):
    """A name is missing because the cell that defines it raised (e.g. a syntax error)."""


class Runner:
    """Owns the child process of one submission. Never shared between submissions."""

    def __init__(
        self,
        launcher: Launcher,
        cells: Sequence[Cell],
        *,
        module_name: str,
        timeouts: Timeouts | None = None,
        zygote: Callable[[], Zygote | None] | None = None,
    ) -> None:
        self.launcher = launcher
        # Where children come from when they are forked rather than started (batch workers).
        self.zygote = zygote or (lambda: None)
        self.cells = [c for c in cells if c.kind == "code"]
        self.module_name = module_name
        self.timeouts = timeouts or Timeouts()
        self.child: ChildProcess | None = None
        self.cell_runs: list[CellRun] = []
        self.skip: set[int] = set()  # cells that hung or killed the child: not run again
        self.restarts = 0
        self.started = time.monotonic()
        self.sandbox_seconds = 0.0
        # After a timeout or crash inside one check, the rest of that check fails fast with
        # the same problem instead of restarting the child for every Hypothesis example.
        self.current_check_error: StudentTimeout | ChildDied | None = None
        # A function that ran past its time limit once is not called again: every later call
        # fails at once with the first timeout. One infinite loop then costs one time limit,
        # not one per check that calls the function.
        self.hung: dict[str, StudentTimeout] = {}

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> list[CellRun]:
        """Start the child and run every code cell once, recording how each went."""
        self.cell_runs = []
        self._spawn(record=True)
        return self.cell_runs

    def _spawn(self, *, record: bool) -> None:
        t0 = time.perf_counter()
        init = {
            "module_name": self.module_name,
            "preload": list(PRELOAD),
            "limits": self.launcher.limits.as_rlimits(
                with_nproc=self.launcher.mode.value == "bubblewrap"
                or self.launcher.run_as is not None
            ),
        }
        self.child = self._new_child(init)
        for cell in self.cells:
            if cell.index in self.skip:
                continue
            run = self._run_cell(cell)
            if record:
                self.cell_runs.append(run)
            if self.child is None or self.child.closed:
                # The cell hung or killed the process: skip it from now on and start again.
                self.skip.add(cell.index)
                self.child = self._new_child(init)
                self._replay_until(cell.index)
        self.sandbox_seconds += time.perf_counter() - t0

    def _new_child(self, init: dict[str, Any]) -> ChildProcess:
        return ChildProcess(
            self.launcher, init=init, timeout=self.timeouts.start, zygote=self.zygote()
        )

    def _replay_until(self, index: int) -> None:
        for cell in self.cells:
            if cell.index >= index:
                return
            if cell.index not in self.skip:
                self._run_cell(cell)

    def _run_cell(self, cell: Cell) -> CellRun:
        assert self.child is not None
        try:
            reply, _ = self.child.request(
                {
                    "op": "cell",
                    "source": cell.code,
                    "filename": cell.filename,
                    "first_line": cell.first_line,
                },
                timeout=self.timeouts.cell,
            )
        except ChildGone as gone:
            kind = "Timeout" if gone.timed_out else "ProcessDied"
            message = (
                f"this cell did not finish within {self.timeouts.cell:g} s and was stopped"
                if gone.timed_out
                else f"this cell ended the process: {gone.reason}"
            )
            return CellRun(
                index=cell.index,
                ok=False,
                error_type=kind,
                error_message=message,
                notes=cell.notes,
                timed_out=gone.timed_out,
            )
        if reply.get("ok"):
            return CellRun(
                index=cell.index, ok=True, stdout=_text(reply.get("stdout")), notes=cell.notes
            )
        err = reply.get("error") or {}
        return CellRun(
            index=cell.index,
            ok=False,
            error_type=_text(err.get("type"), 100),
            error_message=_text(err.get("message"), 2000),
            traceback=_text(err.get("traceback"), 8000),
            stdout=_text(reply.get("stdout")),
            notes=cell.notes,
        )

    def missing(self, name: str) -> MissingDefinition:
        """Why ``name`` is not defined: the failing cell that would define it, when there is one.

        A cell that raises stops where it raised, so a name it (textually) defines may never
        exist; the student should hear about that cell's error, not "define it".
        """
        failed = {run.index: run for run in self.cell_runs if not run.ok}
        pattern = definition_pattern(name)
        for cell in self.cells:
            run = failed.get(cell.index)
            if run is None or not pattern.search(cell.code):
                continue
            if cell.filename.startswith("<cell"):
                where = f"cell {cell.index + 1}"
            else:
                where = f"the code from line {cell.first_line} of {cell.filename}"
            error = f"{run.error_type}: {run.error_message}" if run.error_type else "an error"
            return DefinitionFailed(name, f"`{name}` could not be defined: {where} raised {error}")
        return MissingDefinition(name)

    def add_helper(self, filename: str, source: str) -> CellRun | None:
        """Run grader-written code after the student's cells, now and after every restart.

        For values that cannot travel as data (e.g. a gradient *function* to pass to the
        student's ``minimize``): the helper builds them inside the child. Returns how it ran,
        or None if it was already installed.
        """
        if any(c.filename == filename for c in self.cells):
            return None
        cell = Cell(
            index=1_000_000 + len(self.cells),
            kind="code",
            source=source,
            code=source,
            filename=filename,
        )
        self.cells.append(cell)
        if self.child is None or self.child.closed:
            return CellRun(index=cell.index, ok=True)
        return self._run_cell(cell)

    def close(self) -> None:
        if self.child is not None:
            self.child.close()
            self.child = None

    def _ensure_child(self) -> ChildProcess:
        if self.child is not None and not self.child.closed:
            return self.child
        if self.restarts >= self.timeouts.max_restarts:
            raise ChildDied(
                "your code crashed the sandbox too many times; remaining checks were not run",
            )
        if time.monotonic() - self.started > self.timeouts.total:
            raise StudentTimeout(
                f"grading this submission took longer than {self.timeouts.total:g} s in total; "
                "remaining checks were not run",
                seconds=self.timeouts.total,
            )
        self.restarts += 1
        try:
            self._spawn(record=False)
        except ChildGone as gone:
            self.child = None
            raise ChildDied(f"the sandbox could not be restarted: {gone.reason}") from None
        assert self.child is not None
        return self.child

    # --- requests ---------------------------------------------------------------------------

    def request(
        self,
        header: dict[str, Any],
        blobs: list[bytes] | None = None,
        *,
        timeout: float | None = None,
        what: str = "",
        target: str | None = None,
    ) -> tuple[dict[str, Any], list[bytes]]:
        """Send one request to the child (restarting it if needed) and return its reply.

        ``target`` names the student's function being called, for the hung-function rule.
        """
        if self.current_check_error is not None:
            raise self.current_check_error
        if target is not None and target in self.hung:
            first = self.hung[target]
            raise StudentTimeout(
                f"{what or 'your code'} was not called again: it did not finish within "
                f"{first.seconds:g} s in an earlier check (is there an infinite loop?)",
                seconds=0.0,
            )
        child = self._ensure_child()
        limit = timeout if timeout is not None else self.timeouts.call
        t0 = time.perf_counter()
        try:
            return child.request(header, blobs, timeout=limit)
        except ChildGone as gone:
            self.child = None
            problem: StudentTimeout | ChildDied
            if gone.timed_out:
                problem = StudentTimeout(
                    f"{what or 'your code'} did not finish within {limit:g} s "
                    "(is there an infinite loop?)",
                    seconds=limit,
                )
                if target is not None:
                    self.hung[target] = problem
            else:
                problem = ChildDied(f"{what or 'your code'} crashed: {gone.reason}")
            self.current_check_error = problem
            raise problem from None
        finally:
            self.sandbox_seconds += time.perf_counter() - t0

    def names(self) -> dict[str, dict[str, str]]:
        reply, _ = self.request({"op": "names"}, what="listing your definitions")
        names = reply.get("names")
        return names if isinstance(names, dict) else {}


def _text(value: Any, cap: int = 20000) -> str:
    return value[:cap] if isinstance(value, str) else ""


def _student_error(reply: dict[str, Any], label: str) -> StudentError:
    """The student's exception as the child reported it (type, message, their own frames)."""
    err = reply.get("error")
    err = err if isinstance(err, dict) else {}
    return StudentError(
        _text(err.get("type"), 100) or "Error",
        _text(err.get("message"), 2000),
        _text(err.get("traceback"), 8000),
        call=f"`{label}`",
    )


class RemoteHandle:
    """An object that stayed in the child (it could not be sent as data)."""

    def __init__(self, proxy: SubmissionProxy, tagged: wire.Tagged, label: str) -> None:
        self._proxy = proxy
        self.handle_id = tagged.handle_id
        self.type_name = tagged.type_name
        self.repr_text = tagged.repr_text
        self.label = label

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._proxy._call(
            {"handle": self.handle_id}, args, kwargs, label=f"{self.label}(...)"
        ).value

    def attr(self, name: str) -> Any:
        return self._proxy._attr(
            {"handle": self.handle_id, "attr": name}, label=f"{self.label}.{name}"
        )

    def item(self, key: Any) -> Any:
        blobs: list[bytes] = []
        encoded = wire.encode_value(key, blobs)
        return self._proxy._attr(
            {"handle": self.handle_id, "key": encoded}, label=f"{self.label}[{key!r}]"
        )

    def __repr__(self) -> str:
        return f"<{self.type_name} object from your code>"


class RemoteFunction:
    def __init__(self, proxy: SubmissionProxy, name: str) -> None:
        self._proxy = proxy
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._proxy.call(self.name, *args, **kwargs)

    def inspect(self, *args: Any, **kwargs: Any) -> CallOutcome:
        return self._proxy.call_inspect(self.name, *args, **kwargs)


class SubmissionProxy:
    """What checks see as ``sub``: calls go to the sandbox, data comes back."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self._names: dict[str, dict[str, str]] | None = None

    def __getattr__(self, name: str) -> RemoteFunction:
        if name.startswith("_"):
            raise AttributeError(name)
        return RemoteFunction(self, name)

    @property
    def runner(self) -> Runner:
        return self._runner

    def names(self) -> dict[str, dict[str, str]]:
        if self._names is None:
            self._names = self._runner.names()
        return self._names

    def has(self, name: str) -> bool:
        return name in self.names()

    def get(self, name: str) -> Any:
        """The value of a top-level variable (SymPy values come back as ``wire.Tagged`` text)."""
        reply, blobs = self._runner.request({"op": "get", "name": name}, what=f"reading `{name}`")
        if not reply.get("ok"):
            raise self._runner.missing(name)
        return self._decode(reply.get("value"), blobs, name)

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._call({"name": name}, args, kwargs, label=f"{name}(...)").value

    def call_inspect(self, name: str, *args: Any, **kwargs: Any) -> CallOutcome:
        """Call and also return the arguments as they were after the call (mutation checks)."""
        return self._call({"name": name}, args, kwargs, label=f"{name}(...)", return_args=True)

    # --- internals ----------------------------------------------------------------------------

    def _decode(self, data: Any, blobs: list[bytes], label: str) -> Any:
        try:
            value = wire.decode_value(data, blobs)
        except wire.ValueTooLarge as exc:
            raise CheckFailed(f"{label} returned {exc}; it cannot be checked") from exc
        except wire.WireError as exc:
            raise ChildDied(f"{label} returned data the grader refuses: {exc}") from exc
        return self._wrap(value, label)

    def _wrap(self, value: Any, label: str) -> Any:
        if isinstance(value, wire.Tagged) and value.kind == "handle":
            return RemoteHandle(self, value, label)
        if isinstance(value, list):
            return [self._wrap(v, label) for v in value]
        if isinstance(value, tuple):
            return tuple(self._wrap(v, label) for v in value)
        if isinstance(value, dict):
            return {k: self._wrap(v, label) for k, v in value.items()}
        return value

    def _call(
        self,
        target: dict[str, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        label: str,
        return_args: bool = False,
    ) -> CallOutcome:
        blobs: list[bytes] = []
        header = dict(
            target,
            op="call",
            args=wire.encode_value(list(args), blobs),
            kwargs=wire.encode_value(dict(kwargs), blobs),
            return_args=return_args,
        )
        name = target.get("name")
        reply, reply_blobs = self._runner.request(
            header,
            blobs,
            what=f"`{label}`",
            target=name if isinstance(name, str) else f"handle {target.get('handle')}",
        )
        if not reply.get("ok"):
            if "missing" in reply:
                raise self._runner.missing(str(target.get("name")))
            raise _student_error(reply, label)
        value = self._decode(reply.get("value"), reply_blobs, label)
        args_after = kwargs_after = None
        if return_args:
            args_after = self._decode(reply.get("args_after"), reply_blobs, label)
            kwargs_after = self._decode(reply.get("kwargs_after"), reply_blobs, label)
        seconds = reply.get("seconds")
        return CallOutcome(
            value,
            args_after,
            kwargs_after,
            _text(reply.get("stdout")),
            _text(reply.get("stderr")),
            float(seconds) if isinstance(seconds, int | float) else 0.0,
        )

    def _attr(self, target: dict[str, Any], *, label: str) -> Any:
        op = "item" if "key" in target else "attr"
        reply, blobs = self._runner.request(dict(target, op=op), what=f"`{label}`")
        if not reply.get("ok"):
            raise _student_error(reply, label)
        return self._decode(reply.get("value"), blobs, label)


def definition_pattern(name: str) -> re.Pattern[str]:
    """Lines that (textually) define ``name`` at top level: ``def``/``class`` or assignment.

    Line by line only (``[ \t]``, ``[^=\n]``): matching across lines, a cell of many ``name:``
    lines took the parent, where no time limit applies, quadratic time to search.
    """
    return re.compile(
        rf"^(?:(?:async[ \t]+)?def|class)[ \t]+{re.escape(name)}\b"
        rf"|^{re.escape(name)}[ \t]*(?::[^=\n]*)?=(?!=)",
        re.MULTILINE,
    )
