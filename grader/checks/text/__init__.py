"""Scoring free-text answers against rubrics, from the student's own words.

Deterministic and explainable: no model, no network, no download. Every point comes with the
student's sentence that earned it, every item with a confidence, and a low confidence flags the
answer for an instructor (a text score is provisional; an override replaces it).

How an instructor writes a rubric (in an assignment's TOML spec)::

    [[questions.rubric]]
    id = "cost"
    points = 1
    description = "solving/inverting XᵀX costs O(p³), too slow for many features"
    concepts = [
        # concept 1: inverting or solving is expensive
        "invert*|inverse|inversion|solv* + expensive|slow|cost*|O(p^3)|cubic",
        # concept 2: for many features; a list gives alternative phrasings
        ["many|large|high|huge + feature*|dimension*|parameter*", "O(p^3)|cubic|p^3"],
    ]
    need = 2          # optional: how many concepts must be found (default: all)

- An item earns its points when ``need`` of its ``concepts`` are found (anywhere in the answer,
  each in a sentence of its own or together).
- A concept is a *phrasing* string, or a list of alternative phrasings (any one will do).
- In a phrasing, ``+`` joins *terms* that must all occur in one sentence, in any order; ``|``
  separates a term's synonyms.
- A synonym is a word or a few words in order (``hidden state``, ``step by step``; a couple of
  small words may sit between them). Words are compared after stemming, so ``reuse`` also finds
  "reusing" and "reused"; a final ``*`` matches any word that starts with it (``recomput*``).
- Answers and synonyms are normalised alike: case, accents, hyphens ("long-term"), British and
  American spelling ("minimise"), contractions ("doesn't"), an acronym's plural ("RNNs" is
  ``rnn``), and maths: ``XᵀX``, ``X^T X``, ``X'X``, ``X.T @ X``; ``(XᵀX)⁻¹``; ``O(p³)``/
  ``O(p^3)``; ``f_t ≈ 1``; ``∂c_t/∂c_{t−1}``; Greek letters by name. Write a formula in a
  synonym the way a student would.
- An item's optional ``names`` (``names = ["vanishing gradient* problem", "forget gate*"]``)
  are phrases that *name* something, written like synonyms, at least two words each. Where a
  name occurs in an answer, its words count for the item only through a synonym that spells out
  the whole name: ``vanish*`` does not find "vanishing" in "the vanishing gradient problem is
  when gradients explode", nor ``forget*`` the gate's name, while a synonym ``forget gate``
  still does. Names belong to their item; other items read the same words as usual.
- A negation (not, no, never, without, instead of, …) at most two content words before a
  matched word, in the same clause, makes the match not count and flags the item for review.
  To require a negative statement, put the negation in the phrasing: ``"not|non + invertible"``
  or ``"no closed form"``; such a negation must then reach one of the phrasing's other words
  ("inverting is *not* expensive" does not satisfy ``"not + invertible"``).
- Sentences end at ``.``, ``?``, ``!``, a blank line, a bullet or enumerated line, or a short
  line; a semicolon does not end one.
- A sentence that is a bare list of rubric words ("chain rule reuse forward backward cache")
  earns only half an item's points and flags the answer for review.
- An empty answer or a placeholder ("Your answer here") scores 0 and is not flagged.
"""

from __future__ import annotations

from ._rubric import Concept, Rubric, RubricItem
from ._scoring import KEYWORD_CREDIT, REVIEW_BELOW, ItemScore, TextScore, score_text, to_details

__all__ = [
    "KEYWORD_CREDIT",
    "REVIEW_BELOW",
    "Concept",
    "ItemScore",
    "Rubric",
    "RubricItem",
    "TextScore",
    "score_text",
    "to_details",
]
