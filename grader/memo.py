"""A bounded memo: results of pure computations, by their exact input, within one process.

The grader reads the same reference formulas, symbol tables, rubrics and check inputs for
every submission a worker grades; the caches that keep those use this one class. A memo holds
at most ``size`` entries and forgets all of them at once when it is full, which keeps it
simple and its memory bounded. Only results that depend on nothing but the key belong here:
nothing of one submission may change another's result.
"""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Memo(Generic[K, V]):
    """A dict of at most ``size`` entries that empties itself when full."""

    __slots__ = ("_items", "size")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a memo holds at least one entry")
        self.size = size
        self._items: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __getitem__(self, key: K) -> V:
        return self._items[key]

    def __len__(self) -> int:
        return len(self._items)

    def put(self, key: K, value: V) -> V:
        """Keep ``value`` for ``key`` (starting afresh if full); return it."""
        if len(self._items) >= self.size and key not in self._items:
            self._items.clear()
        self._items[key] = value
        return value

    def clear(self) -> None:
        self._items.clear()
