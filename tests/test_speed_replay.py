"""Property checks replay the examples Hypothesis drew, and give Hypothesis's own result.

``grader.replay`` writes down the examples of a property check's first all-passing run in a
process and calls the check with them afterwards; any failure sends the check back through
Hypothesis from the start. End to end (the same JSON and HTML with the memos warm or cleared,
for a submission that fails the property on a shrunk example) is in ``test_speed_caches.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from grader import replay

# As the grader runs every check (``engine._setup_hypothesis``), without changing the profile
# of the rest of the test session.
AS_GRADED = settings(derandomize=True, database=None, deadline=None, max_examples=12)


@pytest.fixture(autouse=True)
def _forget() -> Any:
    replay.forget()
    yield
    replay.forget()


def _property(seen: list[Any], limit: list[float | None]) -> Any:
    """A property that records its calls and fails for a value above ``limit[0]`` (if set)."""

    @AS_GRADED
    @given(z=st.lists(st.floats(-30, 30), min_size=1, max_size=8))
    def prop(box: list[str], z: list[float]) -> None:
        seen.append((box[0], list(z)))
        if limit[0] is not None and any(v > limit[0] for v in z):
            raise AssertionError(f"too large: {z}")

    return prop


class _NoHypothesis:
    """The property's handle, but running it through Hypothesis fails the test."""

    is_hypothesis_test = True

    def __init__(self, prop: Any) -> None:
        self.hypothesis = prop.hypothesis

    def __call__(self, **kwargs: Any) -> None:
        raise AssertionError("Hypothesis ran")


def test_the_recorded_examples_are_the_ones_hypothesis_draws_and_are_replayed() -> None:
    seen: list[Any] = []
    prop = _property(seen, [None])
    prop(box=["plain"])
    plain = [z for _, z in seen]
    seen.clear()
    retries: list[str] = []

    def retry() -> dict[str, Any]:
        retries.append("retry")
        return {"box": ["retry"]}

    replay.run_property(prop, {"box": ["first"]}, before_retry=retry)
    assert seen == [("first", z) for z in plain] and len(plain) >= 10
    seen.clear()
    replay.run_property(_NoHypothesis(prop), {"box": ["again"]}, before_retry=retry)
    assert seen == [("again", z) for z in plain]
    assert retries == []


def test_a_failing_replay_reruns_hypothesis_which_shrinks_the_failure() -> None:
    seen: list[Any] = []
    limit: list[float | None] = [None]
    prop = _property(seen, limit)
    replay.run_property(prop, {"box": ["pass"]}, before_retry=lambda: {})
    assert any(v > 5 for _, z in seen for v in z)  # an example that fails once the limit is 5
    seen.clear()
    limit[0] = 5.0
    retries: list[str] = []

    def retry() -> dict[str, Any]:
        retries.append("retry")
        return {"box": ["retry"]}

    with pytest.raises(AssertionError, match="too large"):
        replay.run_property(prop, {"box": ["quick"]}, before_retry=retry)
    assert retries == ["retry"]
    boxes = [b for b, _ in seen]
    assert boxes[0] == "quick" and boxes[-1] == "retry"
    # Hypothesis replays its shrunk example last: a single value above the limit.
    last = seen[-1][1]
    assert len(last) == 1 and last[0] > 5
    # And a failing run records nothing new: the passing list stays.
    seen.clear()
    limit[0] = None
    replay.run_property(_NoHypothesis(prop), {"box": ["later"]}, before_retry=retry)
    assert seen and retries == ["retry"]


def test_a_run_where_an_example_raised_is_not_recorded() -> None:
    seen: list[float] = []

    @AS_GRADED
    @given(z=st.floats(-30, 30))
    def prop(box: list[str], z: float) -> None:
        seen.append(z)
        assume(z != 0.0)

    replay.run_property(prop, {"box": []}, before_retry=lambda: {})
    assert seen and replay._EXAMPLES == {}
    first = list(seen)
    seen.clear()
    replay.run_property(prop, {"box": []}, before_retry=lambda: {})
    assert seen == first  # Hypothesis again, the same draws


def test_only_given_functions_are_properties() -> None:
    def plain(box: list[str]) -> None:
        pass

    assert replay.is_property(_property([], [None]))
    assert not replay.is_property(plain)
