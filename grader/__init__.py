"""grader: a sandboxed grader for machine-learning coursework.

The public surface for check authors and tools; everything else may change.
"""

from __future__ import annotations

from .engine import check
from .errors import (
    CheckFailed,
    CheckProblem,
    GraderError,
    MissingDefinition,
    NotCheckable,
    StudentError,
    StudentTimeout,
    Undecided,
)
from .grading import GradeOptions, grade_path
from .results import CheckResult, GradeResult, Outcome, QuestionResult

__version__ = "0.1.0"

__all__ = [
    "CheckFailed",
    "CheckProblem",
    "CheckResult",
    "GradeOptions",
    "GradeResult",
    "GraderError",
    "MissingDefinition",
    "NotCheckable",
    "Outcome",
    "QuestionResult",
    "StudentError",
    "StudentTimeout",
    "Undecided",
    "__version__",
    "check",
    "grade_path",
]
