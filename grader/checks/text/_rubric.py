"""Text rubrics: items made of concepts, concepts made of phrasings, and their TOML-ready syntax.

A rubric is data. This module validates it when it is loaded (quoting the bad value and where it
came from) and compiles each synonym once into the token pattern the scorer looks for. It must
never look at a student's answer: scoring lives in ``_scoring``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from grader.errors import SpecError

from ._reading import Token, normalise, tokenize

__all__ = ["Concept", "PatternWord", "Rubric", "RubricItem", "compile_synonym", "parse_phrasing"]

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_ITEM_KEYS = frozenset({"id", "description", "points", "concepts", "need", "names"})


@dataclass(frozen=True)
class PatternWord:
    """One word of a compiled synonym: its stem, or a prefix when written with a final ``*``."""

    text: str
    stem: str
    prefix: bool

    @cached_property
    def prefixes(self) -> tuple[str, ...]:
        """What a prefix word's tokens may start with: "generalis*" also meets "generalize",
        the unified spelling."""
        if self.text.endswith("is"):
            return (self.text, self.text[:-2] + "iz")
        return (self.text,)


@lru_cache(maxsize=8192)
def compile_synonym(synonym: str) -> tuple[PatternWord, ...]:
    """The words a synonym must match, in order, after the answer's own normalisation.

    Raises ``ValueError`` when nothing is left to match (e.g. the synonym is only punctuation).
    """
    if "*" not in synonym:
        words = [PatternWord(t.word, t.stem, False) for t in _words(synonym)]
    else:
        words = []
        for chunk in synonym.split():
            body = chunk.removesuffix("*")
            if "*" in body:
                raise ValueError("'*' may only end a word (it marks a word prefix)")
            tokens = _words(body)
            words.extend(PatternWord(t.word, t.stem, False) for t in tokens)
            if chunk.endswith("*") and tokens:
                words[-1] = PatternWord(tokens[-1].word, tokens[-1].word, True)
    if not words:
        raise ValueError("nothing left to match after normalisation")
    return tuple(words)


def _words(text: str) -> list[Token]:
    return [t for t in tokenize(normalise(text)) if not t.separator]


def parse_phrasing(text: str) -> tuple[tuple[str, ...], ...]:
    """``"invert*|inverse + slow|expensive"`` → ``(("invert*", "inverse"), ("slow", "expensive"))``.

    Raises ``ValueError`` with a reason a rubric author can act on.
    """
    terms: list[tuple[str, ...]] = []
    for raw_term in text.split("+"):
        synonyms = tuple(s.strip() for s in raw_term.split("|"))
        if not raw_term.strip():
            raise ValueError("a '+' has nothing on one side")
        if any(not s for s in synonyms):
            raise ValueError(f"an empty synonym in {raw_term.strip()!r}")
        for synonym in synonyms:
            try:
                compile_synonym(synonym)
            except ValueError as exc:
                raise ValueError(f"synonym {synonym!r}: {exc}") from None
        terms.append(synonyms)
    return tuple(terms)


@dataclass(frozen=True)
class Concept:
    """One idea an answer must express: any of ``phrasings`` (OR) whose terms (AND) all occur
    in one sentence, in any order; each term is a tuple of synonyms."""

    id: str
    phrasings: tuple[tuple[tuple[str, ...], ...], ...]

    def __post_init__(self) -> None:
        if not self.phrasings or any(not p for p in self.phrasings):
            raise SpecError(f"concept {self.id!r} needs at least one non-empty phrasing")
        for phrasing in self.phrasings:
            for term in phrasing:
                if not term:
                    raise SpecError(f"concept {self.id!r} has a term with no synonyms")
                for synonym in term:
                    try:
                        compile_synonym(synonym)
                    except ValueError as exc:
                        message = f"concept {self.id!r}, synonym {synonym!r}: {exc}"
                        raise SpecError(message) from None

    @classmethod
    def parse(cls, id: str, alternatives: Sequence[str]) -> Concept:
        """A concept from phrasings written as ``"a|b + c"`` strings (``ValueError`` if bad)."""
        return cls(id=id, phrasings=tuple(parse_phrasing(text) for text in alternatives))


@dataclass(frozen=True)
class RubricItem:
    """One scored statement of a rubric: matched when ``required`` of its concepts are found.

    ``need`` is how many concepts must be found; 0 (the default) means all of them. ``names``
    are phrases that name something ("vanishing gradient problem", "forget gate"): where one
    occurs in an answer, its words match only a synonym that spells out the whole name, so the
    name of the problem does not say that gradients vanish, nor the gate's name that anything
    is forgotten.
    """

    id: str
    description: str
    points: float
    concepts: tuple[Concept, ...]
    need: int = 0
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.concepts:
            raise SpecError(f"rubric item {self.id!r} has no concepts")
        for name in self.names:
            problem = _name_problem(name)
            if problem:
                raise SpecError(f"rubric item {self.id!r}, name {name!r}: {problem}")
        if not 0 <= self.need <= len(self.concepts):
            raise SpecError(
                f"rubric item {self.id!r}: need={self.need} must be 0 (all) or between 1 and "
                f"the number of concepts ({len(self.concepts)})"
            )
        if not (math.isfinite(self.points) and self.points > 0):
            raise SpecError(f"rubric item {self.id!r}: points={self.points!r} must be > 0")

    @property
    def required(self) -> int:
        return self.need or len(self.concepts)


def _name_problem(name: object) -> str:
    """Why ``name`` cannot be one of an item's ``names`` ("" when it can)."""
    if not isinstance(name, str):
        return "a name must be text"
    if "|" in name or "+" in name:
        return "a name is one phrase: write each name as its own string, without '|' or '+'"
    try:
        words = compile_synonym(name)
    except ValueError as exc:
        return str(exc)
    if len(words) < 2:
        # A one-word name would only ever meet synonyms that are that word: it changes nothing.
        return "a name must have at least two words (a single word is just a synonym)"
    return ""


@dataclass(frozen=True)
class Rubric:
    """The rubric of one text question."""

    items: tuple[RubricItem, ...]

    def __post_init__(self) -> None:
        if not self.items:
            raise SpecError("a rubric needs at least one item")
        ids = [item.id for item in self.items]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise SpecError(f"rubric item ids must be unique, repeated: {duplicates}")

    @property
    def max_points(self) -> float:
        return sum(item.points for item in self.items)

    @classmethod
    def from_spec(cls, data: Sequence[Mapping[str, Any]], *, where: str) -> Rubric:
        """Build and validate a rubric from its spec form (a list of item tables).

        ``where`` names the source (file and question) in every error message.
        """
        if isinstance(data, str | bytes | Mapping) or not isinstance(data, Sequence):
            raise SpecError(f"{where}: a rubric must be a list of items, got {_show(data)}")
        if not data:
            raise SpecError(f"{where}: a rubric needs at least one item, got an empty list")
        items = [_item_from_spec(raw, index, where) for index, raw in enumerate(data, 1)]
        try:
            return cls(items=tuple(items))
        except SpecError as exc:
            raise SpecError(f"{where}: {exc}") from None


def _item_from_spec(raw: Any, index: int, where: str) -> RubricItem:
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where}: rubric item {index} must be a table, got {_show(raw)}")
    label = f"{where}: rubric item {index}"
    item_id = raw.get("id")
    if not isinstance(item_id, str) or not _ID.fullmatch(item_id):
        raise SpecError(f"{label}: id must be a short name like 'cost', got {_show(item_id)}")
    label = f"{where}: rubric item {index} ({item_id!r})"
    unknown = sorted(str(k) for k in raw if k not in _ITEM_KEYS)
    if unknown:
        raise SpecError(f"{label}: unknown keys {unknown}; allowed: {sorted(_ITEM_KEYS)}")
    description = raw.get("description")
    if not isinstance(description, str) or not description.strip():
        raise SpecError(f"{label}: description must be non-empty text, got {_show(description)}")
    points = raw.get("points")
    if (
        isinstance(points, bool)
        or not isinstance(points, int | float)
        or not math.isfinite(points)
        or points <= 0
    ):
        raise SpecError(f"{label}: points must be a number > 0, got {_show(points)}")
    concepts_raw = raw.get("concepts")
    if isinstance(concepts_raw, str) or not isinstance(concepts_raw, Sequence) or not concepts_raw:
        raise SpecError(
            f"{label}: concepts must be a non-empty list of phrasings, got {_show(concepts_raw)}"
        )
    concepts = tuple(
        _concept_from_spec(c, f"{item_id}.{k}", f"{label}, concept {k}")
        for k, c in enumerate(concepts_raw, 1)
    )
    names = _names_from_spec(raw.get("names", []), label)
    need = raw.get("need", len(concepts))
    if isinstance(need, bool) or not isinstance(need, int) or not 1 <= need <= len(concepts):
        raise SpecError(
            f"{label}: need must be a whole number from 1 to {len(concepts)} (the number of "
            f"concepts), got {_show(need)}"
        )
    return RubricItem(
        id=item_id,
        description=description.strip(),
        points=float(points),
        concepts=concepts,
        need=need,
        names=names,
    )


def _names_from_spec(raw: Any, label: str) -> tuple[str, ...]:
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise SpecError(f"{label}: names must be a list of phrases, got {_show(raw)}")
    for name in raw:
        problem = _name_problem(name)
        if problem:
            raise SpecError(f"{label}: name {_show(name)}: {problem}")
    return tuple(name.strip() for name in raw)


def _concept_from_spec(raw: Any, concept_id: str, label: str) -> Concept:
    alternatives = [raw] if isinstance(raw, str) else raw
    if (
        not isinstance(alternatives, Sequence)
        or not alternatives
        or not all(isinstance(a, str) for a in alternatives)
    ):
        raise SpecError(
            f"{label}: a concept is a phrasing string or a list of them, got {_show(raw)}"
        )
    phrasings = []
    for text in alternatives:
        try:
            phrasings.append(parse_phrasing(text))
        except ValueError as exc:
            raise SpecError(f"{label}: bad phrasing {text!r}: {exc}") from None
    return Concept(id=concept_id, phrasings=tuple(phrasings))


def _show(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
