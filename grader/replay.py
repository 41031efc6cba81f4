"""Running a property check for many submissions without drawing its examples again each time.

Hypothesis runs derandomised in the grader (see ``engine._setup_hypothesis``): a property
check whose examples all pass gets the same examples in every run, in the same order, whatever
the submission. Drawing them costs Hypothesis's engine about 20 ms per check, more than the
calls to the student's code, and a batch worker would pay it once per submission for the same
list. So the first run in a process that passes every example writes the examples down (a copy
of each one's drawn arguments, in call order), and later runs call the check with that list.

The result is the one Hypothesis gives: when every example passes again, Hypothesis would have
drawn the very same examples and passed. When any example fails (or raises anything at all),
the check runs again through Hypothesis from the start, which finds, shrinks and reports the
failure as it always does; the recorder the check writes to is replaced first, so nothing of
the quick attempt reaches the report. The one difference a student's code can see: after a
failing example, Hypothesis calls it again with the examples before it.

Examples are only kept from a run in which every call of the check returned normally (an
``assume`` that rejects an example, for instance, changes what Hypothesis draws next). A check
that uses the global ``random`` or ``numpy.random`` state in its body should not (checks get
the ``rng`` fixture): Hypothesis reseeds that state per example, a replay does not.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

__all__ = ["forget", "is_property", "run_property"]

# The inner function of a property check (Hypothesis's ``test.hypothesis.inner_test``) → the
# drawn arguments of each of its examples. A check module imported again makes a new function,
# so nothing recorded for an edited check is ever replayed.
_EXAMPLES: dict[Callable[..., Any], tuple[dict[str, Any], ...]] = {}
_MAX_CHECKS = 256


def is_property(test: Any) -> bool:
    """Whether ``test`` is a function decorated with Hypothesis's ``@given``."""
    return bool(getattr(test, "is_hypothesis_test", False)) and hasattr(test, "hypothesis")


def forget() -> None:
    """Drop every recorded list of examples."""
    _EXAMPLES.clear()


def run_property(
    test: Any, fixtures: dict[str, Any], *, before_retry: Callable[[], dict[str, Any]]
) -> None:
    """Run the property check ``test`` with ``fixtures``; raise as Hypothesis would.

    ``before_retry`` is called when the recorded examples did not all pass, before Hypothesis
    runs the check from the start; it returns the fixtures for that run (a fresh recorder).
    """
    handle = test.hypothesis
    inner = handle.inner_test
    known = _EXAMPLES.get(inner)
    if known is not None:
        try:
            for drawn in known:
                inner(**fixtures, **copy.deepcopy(drawn))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # any surprise: Hypothesis decides
            fixtures = before_retry()
        else:
            return
    calls: list[dict[str, Any]] = []
    clean = True

    @functools.wraps(inner)
    def recording(*args: Any, **kwargs: Any) -> Any:
        nonlocal clean
        drawn = {k: v for k, v in kwargs.items() if k not in fixtures}
        try:
            calls.append(copy.deepcopy(drawn))
        except Exception:  # an example that cannot be copied is not kept
            clean = False
        if args:
            clean = False
        try:
            return inner(*args, **kwargs)
        except BaseException:
            clean = False
            raise

    # ``functools.wraps`` keeps what Hypothesis derives the derandomised seed from (the
    # source, name and signature of the inner function), so the examples are the same.
    handle.inner_test = recording
    try:
        test(**fixtures)
    finally:
        handle.inner_test = inner
    if clean and calls:
        if len(_EXAMPLES) >= _MAX_CHECKS:
            _EXAMPLES.clear()
        _EXAMPLES[inner] = tuple(calls)
