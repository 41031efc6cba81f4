"""Scoring a free-text answer against a rubric: per item matched or not, with evidence.

Deterministic and explainable: every point comes with the student's sentence that earned it.
It must never call a model or the network, and never raise on a student's text (any string is
a valid answer; only a rubric can be invalid, and that is caught when the rubric is loaded).
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from grader.results import RubricMatch

from ...memo import Memo
from ._reading import (
    FUNCTION_WORDS,
    NEGATION_REACH,
    PREFIX_INDEXED,
    SCOPE_BREAKS,
    Sentence,
    Token,
    is_placeholder,
    read_answer,
)
from ._rubric import Concept, PatternWord, Rubric, RubricItem, compile_synonym

__all__ = ["KEYWORD_CREDIT", "REVIEW_BELOW", "ItemScore", "TextScore", "score_text", "to_details"]

REVIEW_BELOW = 0.6  # an item scored with less confidence than this is flagged for review
KEYWORD_CREDIT = 0.5  # share of an item's points earned from a bare list of keywords
_PHRASE_GAP = 2  # function words allowed between the words of a multi-word synonym
_MAX_COMBINATIONS = 4096  # bound on the ways one phrasing can be placed in one sentence

# Confidence levels, from "surely right" down to "please look".
_SURE_ABSENT = 0.95
_SURE_PRESENT = 0.9
_CUE_NEARBY = 0.7  # matched, but a negation elsewhere in the sentence might reach it
_SOMETHING_FOUND = 0.75  # unmatched, but part of the item was said
_NEAR_MISS = 0.55  # every concept but one found, and that one half said
_NEGATED = 0.5
_KEYWORDS = 0.4

# A sentence "reads like a list of keywords" when it is at least this long, has fewer function
# words than this share, and packs at least this many rubric concepts together.
_LIST_MIN_WORDS = 5
_LIST_MAX_FUNCTION_SHARE = 0.15
_LIST_MIN_CONCEPTS = 2
# The whole answer (its sentences that hit the rubric) is a keyword list below this share.
_ANSWER_MIN_WORDS = 6
_ANSWER_MAX_FUNCTION_SHARE = 0.12


@dataclass(frozen=True)
class ItemScore:
    """The result of one rubric item.

    ``evidence`` is the student's sentence(s) that matched; for an unmatched item, the closest
    sentence found (negated or half said), or empty.
    """

    id: str
    description: str
    matched: bool
    points: float
    max_points: float
    confidence: float
    evidence: str


@dataclass(frozen=True)
class TextScore:
    """The provisional score of one text answer; ``needs_review`` asks an instructor to look."""

    items: tuple[ItemScore, ...]
    score: float
    max_score: float
    needs_review: bool
    notes: tuple[str, ...]


class _State(enum.IntEnum):
    MATCHED = 0
    NEGATED = 1
    PARTIAL = 2


@dataclass(frozen=True)
class _Hit:
    """The best placement of one concept in one sentence."""

    state: _State
    sentence: int
    cue_nearby: bool = False  # an unconsumed negation cue sits in the same sentence


def score_text(answer: str, rubric: Rubric) -> TextScore:
    """Score ``answer`` against ``rubric``, item by item, with evidence and confidence.

    A pure function of the two values, and the result is immutable: a text scored before
    against an identical rubric (same ``repr``: every field, types included) is not scored
    again.
    """
    if type(answer) is not str:
        return _score_text(answer, rubric)
    key = (answer, repr(rubric))
    score = _SCORED.get(key)
    if score is None:
        score = _SCORED.put(key, _score_text(answer, rubric))
    return score


_SCORED: Memo[tuple[str, str], TextScore] = Memo(512)


def _score_text(answer: str, rubric: Rubric) -> TextScore:
    if is_placeholder(answer):
        items = tuple(
            ItemScore(item.id, item.description, False, 0.0, item.points, 1.0, "")
            for item in rubric.items
        )
        return TextScore(items, 0.0, rubric.max_points, False, ("No answer was given.",))

    sentences = read_answer(answer)
    table: list[list[_Hit | None]] = []  # one row per concept of every item, in order
    for item in rubric.items:
        names = [_names_in(item.names, s) for s in sentences]
        for concept in item.concepts:
            table.append([_place_concept(concept, s, n, names[n]) for n, s in enumerate(sentences)])
    listy = _keyword_sentences(sentences, table)

    results: list[ItemScore] = []
    notes: list[str] = []
    capped: list[str] = []
    flat = 0
    for item in rubric.items:
        rows = table[flat : flat + len(item.concepts)]
        flat += len(item.concepts)
        # Prefer evidence from the sentences that say most of the item at once.
        together = [
            sum(1 for row in rows if (h := row[n]) is not None and h.state is _State.MATCHED)
            for n in range(len(sentences))
        ]
        best = [_best(row, listy, together) for row in rows]
        result, note = _score_item(item, best, sentences, listy)
        results.append(result)
        if note:
            notes.append(note)
        if result.matched and result.points < item.points:
            capped.append(item.id)
    if capped:
        shown = "; ".join(
            f"“{_short(sentences[n].text)}”" for n in sorted(listy) if _has_clean(table, n)
        )
        notes.insert(
            0,
            f"This reads like a list of keywords rather than an explanation ({shown}): "
            f"{', '.join(capped)} earn {KEYWORD_CREDIT:g} of their points until reviewed.",
        )
    score = round(sum(r.points for r in results), 6)
    return TextScore(
        items=tuple(results),
        score=score,
        max_score=rubric.max_points,
        needs_review=any(r.confidence < REVIEW_BELOW for r in results),
        notes=tuple(notes),
    )


def to_details(score: TextScore) -> tuple[RubricMatch, ...]:
    """The per-item results as report details (one ``RubricMatch`` per rubric item)."""
    return tuple(
        RubricMatch(
            item=r.id,
            description=r.description,
            matched=r.matched,
            points=r.points,
            max_points=r.max_points,
            evidence=r.evidence,
            confidence=r.confidence,
        )
        for r in score.items
    )


# --- one item -------------------------------------------------------------------------------


def _score_item(
    item: RubricItem,
    best: list[_Hit | None],
    sentences: tuple[Sentence, ...],
    listy: frozenset[int],
) -> tuple[ItemScore, str]:
    clean = [h for h in best if h is not None and h.state is _State.MATCHED]
    negated = [h for h in best if h is not None and h.state is _State.NEGATED]
    partial = [h for h in best if h is not None and h.state is _State.PARTIAL]
    need = item.required
    note = ""
    if len(clean) >= need:
        used = sorted(clean, key=lambda h: (h.sentence in listy, h.cue_nearby, h.sentence))[:need]
        if any(h.sentence in listy for h in used):
            points, confidence = item.points * KEYWORD_CREDIT, _KEYWORDS
        else:
            points = item.points
            confidence = _CUE_NEARBY if any(h.cue_nearby for h in used) else _SURE_PRESENT
        return _result(item, True, points, confidence, used, sentences), ""
    if negated and len(clean) + len(negated) >= need:
        evidence = _evidence(negated, sentences)
        note = f"{item.id}: “{_short(evidence)}” reads as a negation, so it did not count."
        return _result(item, False, 0.0, _NEGATED, negated, sentences), note
    if need > 1 and len(clean) == need - 1 and partial:
        found = clean + partial[:1]
        note = f"{item.id}: nearly matched (one idea only half said) — please check."
        return _result(item, False, 0.0, _NEAR_MISS, found, sentences), note
    found = clean + negated + partial
    confidence = _SOMETHING_FOUND if found else _SURE_ABSENT
    return _result(item, False, 0.0, confidence, found, sentences), note


def _result(
    item: RubricItem,
    matched: bool,
    points: float,
    confidence: float,
    hits: list[_Hit],
    sentences: tuple[Sentence, ...],
) -> ItemScore:
    return ItemScore(
        id=item.id,
        description=item.description,
        matched=matched,
        points=points,
        max_points=item.points,
        confidence=confidence,
        evidence=_evidence(hits, sentences),
    )


def _evidence(hits: Iterable[_Hit], sentences: tuple[Sentence, ...]) -> str:
    order = sorted({h.sentence for h in hits})
    return " … ".join(sentences[n].text for n in order)


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _best(hits: list[_Hit | None], listy: frozenset[int], together: list[int]) -> _Hit | None:
    found = [h for h in hits if h is not None]
    if not found:
        return None
    return min(
        found,
        key=lambda h: (
            h.state,
            h.sentence in listy,
            -together[h.sentence],
            h.cue_nearby,
            h.sentence,
        ),
    )


def _has_clean(table: list[list[_Hit | None]], sentence: int) -> bool:
    return any((h := row[sentence]) is not None and h.state is _State.MATCHED for row in table)


# --- keyword lists --------------------------------------------------------------------------


def _keyword_sentences(
    sentences: tuple[Sentence, ...], table: list[list[_Hit | None]]
) -> frozenset[int]:
    """Sentences whose matches came from a bare list of rubric words, not from prose."""
    listy = set()
    hit_words: list[str] = []
    hit_sentences = []
    for n, sentence in enumerate(sentences):
        packed = sum(1 for row in table if (h := row[n]) is not None and h.state is _State.MATCHED)
        if not packed:
            continue
        hit_sentences.append(n)
        words = sentence.words
        hit_words.extend(words)
        if (
            len(words) >= _LIST_MIN_WORDS
            and _function_share(words) < _LIST_MAX_FUNCTION_SHARE
            and packed >= _LIST_MIN_CONCEPTS
        ):
            listy.add(n)
    # Spread over short lines ("- chain rule / - reuse / - cache"), no single line is long
    # enough to tell; the answer's matching lines taken together are.
    if (
        len(hit_words) >= _ANSWER_MIN_WORDS
        and _function_share(hit_words) < _ANSWER_MAX_FUNCTION_SHARE
    ):
        listy.update(hit_sentences)
    return frozenset(listy)


def _function_share(words: Iterable[str]) -> float:
    words = list(words)
    return sum(w in FUNCTION_WORDS for w in words) / len(words) if words else 1.0


# --- finding a concept in a sentence --------------------------------------------------------


def _names_in(names: tuple[str, ...], sentence: Sentence) -> tuple[frozenset[int], ...]:
    """The positions of each occurrence of an item's ``names`` in ``sentence``."""
    return tuple(
        frozenset(occurrence)
        for name in names
        for occurrence in _find(compile_synonym(name), sentence)
    )


def _place_concept(
    concept: Concept, sentence: Sentence, index: int, names: tuple[frozenset[int], ...] = ()
) -> _Hit | None:
    """The best way ``concept`` occurs in ``sentence``: clean, negated, half said, or not.

    ``names`` are where the item's names occur: their words only count for a synonym that
    spells out the whole name."""
    best: _Hit | None = None
    for phrasing in concept.phrasings:
        hit = _place_phrasing(phrasing, sentence, index, names)
        if hit is not None and (best is None or _rank(hit) < _rank(best)):
            best = hit
    return best


def _rank(hit: _Hit) -> tuple[int, bool]:
    return (hit.state, hit.cue_nearby)


def _place_phrasing(
    phrasing: tuple[tuple[str, ...], ...],
    sentence: Sentence,
    index: int,
    names: tuple[frozenset[int], ...] = (),
) -> _Hit | None:
    occurrences = [_term_occurrences(term, sentence, names) for term in phrasing]
    present = sum(1 for o in occurrences if o)
    if present < len(phrasing):
        # One word of a two-word phrasing says little; two of three is worth a second look.
        if present >= 2 and present * 2 >= len(phrasing):
            return _Hit(_State.PARTIAL, index)
        return None
    best: tuple[bool, bool, int] | None = None
    for combination in itertools.islice(itertools.product(*occurrences), _MAX_COMBINATIONS):
        positions = [p for occurrence in combination for p in occurrence]
        used = frozenset(positions)
        if len(used) != len(positions):
            continue  # two terms may not claim the same word ("forget" in "forget gate")
        if not all(_cue_applies(sentence, c, used) for c in used & sentence.cues):
            continue
        negated = any(_negated_at(sentence, occ[0], used) for occ in combination)
        cue_nearby = any(c not in used for c in sentence.cues)
        key = (negated, cue_nearby, max(used) - min(used))
        if best is None or key < best:
            best = key
    if best is None:
        return None
    return _Hit(_State.NEGATED if best[0] else _State.MATCHED, index, best[1])


def _negated_at(sentence: Sentence, start: int, used: frozenset[int]) -> bool:
    """Whether a negation cue before ``start`` reaches it (cues that are part of the match,
    like the "not" of a phrasing "not + invertible", negate nothing)."""
    return any(
        k in sentence.cues and k not in used for k in _reach(sentence, range(start - 1, -1, -1))
    )


def _cue_applies(sentence: Sentence, cue: int, used: frozenset[int]) -> bool:
    """Whether a negation the phrasing asks for ("not + remember") reaches a later matched
    word; a "not" elsewhere in the sentence says nothing about the phrasing's words."""
    return any(k in used for k in _reach(sentence, range(cue + 1, len(sentence.tokens))))


def _reach(sentence: Sentence, positions: range) -> Iterable[int]:
    """The positions a negation spans, walking from it (or back to it): up to the clause's end
    or ``NEGATION_REACH`` content words, whichever comes first."""
    content = 0
    for k in positions:
        yield k
        token = sentence.tokens[k]
        if token.separator or token.word in SCOPE_BREAKS:
            return
        if token.word not in FUNCTION_WORDS:
            content += 1
            if content > NEGATION_REACH:
                return


def _term_occurrences(
    term: tuple[str, ...], sentence: Sentence, names: tuple[frozenset[int], ...] = ()
) -> list[tuple[int, ...]]:
    found: dict[tuple[int, ...], None] = {}
    for synonym in term:
        for occurrence in _find(compile_synonym(synonym), sentence):
            if not any(_inside_name(occurrence, name) for name in names):
                found[occurrence] = None
    return list(found)


def _inside_name(occurrence: tuple[int, ...], name: frozenset[int]) -> bool:
    """Whether a synonym found at ``occurrence`` uses some of a name's words without spelling
    out the whole name ("vanish*" in "vanishing gradient problem"), which does not count."""
    return not name.isdisjoint(occurrence) and not name <= set(occurrence)


def _find(pattern: tuple[PatternWord, ...], sentence: Sentence) -> list[tuple[int, ...]]:
    """Every place where the pattern's words occur in order, allowing a few function words
    between them but never a clause separator."""
    tokens = sentence.tokens
    out = []
    for start in _starts(pattern[0], sentence):
        positions = [start]
        for word in pattern[1:]:
            k = positions[-1] + 1
            gaps = 0
            while (
                k < len(tokens)
                and gaps < _PHRASE_GAP
                and not _word_matches(word, tokens[k])
                and tokens[k].word in FUNCTION_WORDS
            ):
                k += 1
                gaps += 1
            if k >= len(tokens) or not _word_matches(word, tokens[k]):
                break
            positions.append(k)
        else:
            out.append(tuple(positions))
    return out


def _starts(word: PatternWord, sentence: Sentence) -> Iterable[int]:
    """The positions ``word`` matches, in order. A whole word is looked up in the sentence's
    stem index instead of being compared with every token (the scorer's hottest loop)."""
    if not word.prefix:
        return sentence.stem_positions.get(word.stem, ())
    if all(len(p) <= PREFIX_INDEXED for p in word.prefixes):
        found = [sentence.prefix_positions.get(p, ()) for p in word.prefixes]
        return found[0] if len(found) == 1 else sorted(set().union(*found))
    return [k for k, token in enumerate(sentence.tokens) if _word_matches(word, token)]


def _word_matches(word: PatternWord, token: Token) -> bool:
    if token.separator:
        return False
    if not word.prefix:
        return token.stem == word.stem
    return any(token.word.startswith(p) or token.stem.startswith(p) for p in word.prefixes)
