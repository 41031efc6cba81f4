"""grader: a sandboxed grader for machine-learning coursework.

The public surface for check authors and tools; everything else may change. Names are
imported on first use, so that `grade` can start its sandbox before pytest and friends load.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_WHERE = {
    "check": "engine",
    "CheckFailed": "errors",
    "CheckProblem": "errors",
    "GraderError": "errors",
    "MissingDefinition": "errors",
    "NotCheckable": "errors",
    "StudentError": "errors",
    "StudentTimeout": "errors",
    "Undecided": "errors",
    "GradeOptions": "grading",
    "grade_path": "grading",
    "CheckResult": "results",
    "GradeResult": "results",
    "Outcome": "results",
    "QuestionResult": "results",
}

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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'grader' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
