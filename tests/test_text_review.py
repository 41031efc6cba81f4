"""Defects a review of the text rubrics found, each pinned against the real assignment specs.

The rubrics are loaded from ``assignments/*/spec.toml`` as ``grade`` loads them, so a test here
fails when either the scorer or the rubric it is about goes wrong.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.assignment import load_assignment
from grader.checks.text import Rubric, TextScore, score_text
from grader.checks.text._reading import normalise

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rnn() -> dict[str, Rubric]:
    """The text rubrics of rnn-lstm, by question id."""
    assignment = load_assignment(ROOT, "rnn-lstm")
    return {
        q.id: Rubric.from_spec(q.rubric, where=f"rnn-lstm {q.id}")
        for q in assignment.questions
        if q.kind == "text"
    }


def _points(score: TextScore) -> dict[str, float]:
    return {item.id: item.points for item in score.items}


# -- 1. an acronym's plural is the acronym ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("RNNs and LSTMs", "rnn and lstm"),
        ("GRUs, CNNs, MLPs, ANNs", "gru, cnn, mlp, ann"),
        ("the RNNs' hidden states", "the rnn  hidden states"),
        # a word, a single capital and a word in capitals keep their s
        ("gas bus Xs NaNs ReLUs RNNS", "gas bus xs nans relus rnns"),
    ],
)
def test_acronym_plurals_read_as_the_acronym(text: str, expected: str) -> None:
    assert normalise(text) == expected


@pytest.mark.parametrize(
    ("question", "plural", "singular", "item"),
    [
        (
            "2a",
            "It is a long-term dependency. Yes, RNNs would struggle, since gradients vanish.",
            "It is a long-term dependency. Yes, an RNN would struggle, since gradients vanish.",
            "struggles",
        ),
        (
            "1e",
            "ANNs: predicting house prices from tabular features. RNNs: predicting the next word "
            "in a short sentence. LSTMs: machine translation of long documents.",
            "ANN: predicting house prices from tabular features. RNN: predicting the next word "
            "in a short sentence. LSTM: machine translation of long documents.",
            "sequences",
        ),
        (
            "1e",
            "MLPs are used for tabular data, RNNs for the next word in a sentence and LSTMs for "
            "the translation of long documents.",
            "MLP are used for tabular data, RNN for the next word in a sentence and LSTM for "
            "the translation of long documents.",
            "ann",
        ),
    ],
)
def test_plural_acronyms_score_as_the_singular(
    question: str, plural: str, singular: str, item: str, rnn: dict[str, Rubric]
) -> None:
    by_plural = score_text(plural, rnn[question])
    by_singular = score_text(singular, rnn[question])
    assert _points(by_plural) == _points(by_singular)
    assert by_plural.needs_review == by_singular.needs_review
    assert _points(by_plural)[item] > 0
    assert by_plural.score == by_plural.max_score and not by_plural.needs_review
