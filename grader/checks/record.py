"""The ``record`` fixture: what a check tells the report besides pass or fail.

Checks are trusted code running in the parent. ``record`` collects the inputs used, typed
details (array differences, gradient tables, maths echoes, rubric items), notes, and partial
credit; the engine turns them into the check's ``CheckResult``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import as_text
from ..memo import Memo
from ..results import Detail, TextNote


def describe_input(value: Any, *, seed: int | None = None, small: int = 12) -> str:
    """Small inputs in full, large ones by shape (and the seed that made them)."""
    if isinstance(value, np.ndarray):
        if value.size <= small:
            return _small_array(value)
        seeded = f", seed {seed}" if seed is not None else ""
        return f"array of shape {value.shape} ({value.dtype}{seeded})"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{k!r}: {describe_input(v, seed=seed)}" for k, v in value.items())
            + "}"
        )
    if isinstance(value, list | tuple) and len(value) <= small:
        return "[" + ", ".join(describe_input(v, seed=seed) for v in value) + "]"
    text = repr(value)
    return text if len(text) < 120 else text[:117] + "…"


def _small_array(value: np.ndarray) -> str:
    """A small array in full, as NumPy prints it (with 4 digits)."""
    if type(value) is not np.ndarray or value.dtype.kind not in "biuf":
        return _array_text(value)
    # Checks draw their inputs from fixed seeds, so every submission is shown the same arrays:
    # the text is remembered by the exact array (type, shape, bytes) and print options.
    key = (value.dtype.str, value.shape, value.tobytes(), repr(np.get_printoptions()))
    text = _ARRAY_TEXTS.get(key)
    if text is None:
        text = _ARRAY_TEXTS.put(key, _array_text(value))
    return text


_ARRAY_TEXTS: Memo[tuple[Any, ...], str] = Memo(4096)


def _array_text(value: np.ndarray) -> str:
    body = np.array2string(value, precision=4, separator=", ", suppress_small=False)
    return body.replace("\n", " ")


class _SmallArray:
    """A small numeric array input, described only if it is shown.

    A property check records the inputs of every example but shows one example's; formatting
    an array costs more than the rest of recording it. The copy keeps what was recorded even
    if the check changes its array afterwards.
    """

    __slots__ = ("name", "seed", "value")

    def __init__(self, name: str, value: np.ndarray, seed: int) -> None:
        self.name = name
        self.value = value.copy()
        self.seed = seed

    def __str__(self) -> str:
        return f"{self.name} = {describe_input(self.value, seed=self.seed)}"


class CheckRecorder:
    """Collects what one check wants the report to show."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.inputs: list[str | _SmallArray] = []
        self.first_example: list[str | _SmallArray] | None = None
        self.details: list[Detail] = []
        self.message = ""
        self.credit: float | None = None
        self.hint = ""
        self.expected = ""
        self.actual = ""

    def input(self, name: str, value: Any) -> None:
        """Record one input of the call under test."""
        if type(value) is np.ndarray and value.size <= 12 and value.dtype.kind in "biuf":
            self.inputs.append(_SmallArray(name, value, self.seed))
        else:
            self.inputs.append(f"{name} = {describe_input(value, seed=self.seed)}")

    def new_example(self) -> None:
        """Start the inputs of a new Hypothesis example.

        A passing check shows its first example; a failing one the last (Hypothesis replays
        the minimal failing example last). Which example happens to run last on a pass can
        depend on the process's history, so showing it would break reproducible reports.
        """
        if self.inputs and self.first_example is None:
            self.first_example = list(self.inputs)
        self.inputs.clear()

    def inputs_text(self, *, passed: bool = False) -> str:
        shown = self.first_example if passed and self.first_example is not None else self.inputs
        return "; ".join(map(str, shown))

    def detail(self, detail: Detail) -> None:
        self.details.append(detail)

    def note(self, text: str) -> None:
        self.details.append(TextNote(text=text))

    def award(
        self,
        fraction: float,
        message: str = "",
        *,
        hint: str = "",
        expected: Any = "",
        actual: Any = "",
    ) -> None:
        """Give ``fraction`` of the check's points (partial credit) and say why (``expected``
        and ``actual`` may be any value; the report shows them as text)."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction={fraction!r} must be between 0 and 1")
        self.credit = fraction
        if message:
            self.message = message
        self.hint = hint or self.hint
        self.expected = as_text(expected) or self.expected
        self.actual = as_text(actual) or self.actual
