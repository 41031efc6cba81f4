"""A grading result (as JSON data) with its timings left out, for comparing two runs."""

from __future__ import annotations

from typing import Any


def comparable(data: Any) -> Any:
    """``data`` without ``timings`` and every ``duration_s``, at any depth."""
    if isinstance(data, dict):
        return {k: comparable(v) for k, v in data.items() if k not in ("timings", "duration_s")}
    if isinstance(data, list):
        return [comparable(v) for v in data]
    return data
