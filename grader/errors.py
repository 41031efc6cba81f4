"""The grader's two exception families.

::

    GraderError                 usage, configuration and input errors: one line, exit code 2
    ├── UsageError              bad command-line arguments or options
    ├── SpecError               an assignment spec (or its checks) is invalid
    ├── SubmissionError         a submission cannot be read (corrupt notebook, not a file, ...)
    ├── SandboxUnavailable      no sandbox of the requested strength can start on this machine
    └── OutputLocked            another batch holds the output folder

    CheckProblem                a student-visible outcome raised inside a check
    ├── CheckFailed             the student's answer is wrong (rationale, hint, expected, actual)
    ├── StudentError            the student's code raised (type, message, the student's frames)
    ├── StudentTimeout          the student's code ran past its time limit
    ├── ChildDied               the sandboxed process died (memory, exit, kill) during a call
    ├── MissingDefinition       a function or answer the question needs is not defined
    ├── Undecided               the grader cannot decide: flagged for review, never marked wrong
    └── NotCheckable            the check needs something this installation lacks (solutions/)

Library exceptions are translated where they enter (``raise ... from exc``): nothing but these
two families ever reaches the command line.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CheckFailed",
    "CheckProblem",
    "ChildDied",
    "GraderError",
    "MissingDefinition",
    "NotCheckable",
    "OutputLocked",
    "SandboxUnavailable",
    "SpecError",
    "StudentError",
    "StudentTimeout",
    "SubmissionError",
    "Undecided",
    "UsageError",
    "as_text",
]


class GraderError(Exception):
    """A usage, configuration or input error: printed as one line, exit code 2."""


class UsageError(GraderError):
    """Bad command-line arguments."""


class SpecError(GraderError):
    """An assignment spec or check file is invalid; the message names the file and value."""


class SubmissionError(GraderError):
    """A submission cannot be read at all."""


class SubmissionChanged(SubmissionError):
    """A batch's file is not what the batch listed and hashed any more: its contents changed,
    or it was swapped for a link, a FIFO or a folder. Not a fact about the submission to
    remember: the next run reads it again."""


class SandboxUnavailable(GraderError):
    """The requested sandbox cannot start here; the message says what to change."""


class OutputLocked(GraderError):
    """Another grader process holds the output folder."""


def as_text(value: Any, limit: int = 1000) -> str | None:
    """``value`` as text for the report (a check may pass an array or a number), or None."""
    if value is None or isinstance(value, str):
        return value
    text = str(value)
    return text if len(text) <= limit else text[:limit] + " …"


class CheckProblem(Exception):
    """Base for outcomes a student sees. ``message`` is written for the student."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        expected: Any = None,  # any value: shown as text (see ``as_text``)
        actual: Any = None,
        credit: float = 0.0,
        details: tuple[Any, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        # Typed evidence for the report (grader.results.Detail values).
        self.details = tuple(details)
        self.hint = hint
        self.expected = as_text(expected)
        self.actual = as_text(actual)
        # Fraction of the check's points still awarded (partial credit for a known mistake).
        self.credit = credit


class CheckFailed(CheckProblem):
    """The answer is wrong."""


class StudentError(CheckProblem):
    """The student's code raised an exception; ``traceback`` holds only the student's frames."""

    def __init__(self, exc_type: str, exc_message: str, traceback: str, *, call: str = "") -> None:
        where = f" in {call}" if call else ""
        super().__init__(f"{exc_type}{where}: {exc_message}".rstrip(": "))
        self.exc_type = exc_type
        self.exc_message = exc_message
        self.traceback = traceback


class StudentTimeout(CheckProblem):
    """The student's code did not finish within its time limit."""

    def __init__(self, message: str, *, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


class ChildDied(CheckProblem):
    """The sandboxed process died during a call (memory limit, exit, a signal)."""


class MissingDefinition(CheckProblem):
    """A name the question needs is not defined by the submission."""

    def __init__(self, name: str, message: str | None = None) -> None:
        super().__init__(message or f"`{name}` is not defined in your submission.")
        self.name = name


class Undecided(CheckProblem):
    """The grader cannot decide this answer; it is flagged for review, never marked wrong.

    Unless told otherwise the check keeps its points provisionally (``credit=1.0``).
    """

    def __init__(self, message: str, *, credit: float = 1.0, **kwargs: Any) -> None:
        super().__init__(message, credit=credit, **kwargs)


class NotCheckable(CheckProblem):
    """The check needs a part of the grader this installation lacks (e.g. the solutions)."""
