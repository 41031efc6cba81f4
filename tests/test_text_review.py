"""Defects a review of the text rubrics found, each pinned against the real assignment specs.

The rubrics are loaded from ``assignments/*/spec.toml`` as ``grade`` loads them, so a test here
fails when either the scorer or the rubric it is about goes wrong.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from grader.assignment import load_assignment
from grader.checks.text import Rubric, TextScore, score_text
from grader.checks.text._reading import normalise
from grader.submission import find_markdown_answer, read_submission

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


# -- 2. the forget gate's name is not the verb "forget" -----------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        "A forget gate of 0 means the cell remembers everything from before.",
        "A forget gate of 0 lets all of the previous cell state pass through unchanged.",
        "A forget gate of 0 keeps all of the previous information.",
        "The gates decide what to remember. A forget gate of 0 means remember everything.",
        "If the forget gate is 0, everything from the past is kept.",
        "With the forget gate at 0 the forget gate is closed, so all of the past is kept.",
    ],
)
def test_the_opposite_of_forget_zero_earns_nothing(answer: str, rnn: dict[str, Rubric]) -> None:
    assert _points(score_text(answer, rnn["2b"]))["forget-zero"] == 0.0


@pytest.mark.parametrize(
    "answer",
    [
        "A forget gate of 0 erases the previous cell state.",
        "A forget gate of 0 forgets the previous cell state.",
        "A forget gate of 0 wipes the previous cell state.",
        "f=0 resets the memory.",
        "When the forget gate is zero the cell forgets everything.",
        "With a forget gate of 0 the cell completely forgets its past.",
        "A forget gate of 0 forgets all of the old context.",
        "A forget gate of 0: everything stored before is forgotten.",
        "With f = 0 the cell forgets everything it stored so far.",
        "Setting forget gate to zero means you don't want to remember anything from before.",
        "A forget gate of 0 means no previous memory is used.",
        "A forget gate of 0 means the network doesn't use its memory, e.g. at a topic change.",
    ],
)
def test_forget_zero_said_right_still_scores(answer: str, rnn: dict[str, Rubric]) -> None:
    score = score_text(answer, rnn["2b"])
    assert _points(score)["forget-zero"] == 1.0 and not score.needs_review


def test_the_rubrics_restated_in_test_text_are_the_specs() -> None:
    from test_text import RUBRICS

    for key, spec in RUBRICS.items():
        aid, qid = key.split()
        real = load_assignment(ROOT, aid).question(qid).rubric
        assert Rubric.from_spec(spec, where=key) == Rubric.from_spec(real, where=key), key


# -- 3. wrong reasons earn no rubric points -----------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        "An LSTM adds a memory cell and gates.",
        "LSTMs add gates that control the cell state.",
        "The LSTM adds an extra memory cell to the network.",
        "An LSTM adds a cell state to the RNN.",
        "An LSTM solves this by adding a memory cell and three gates.",
        "In addition, an LSTM has a memory cell.",
        "The LSTM has additional gates around its memory cell.",
    ],
)
def test_adding_a_cell_is_not_an_additive_update(answer: str, rnn: dict[str, Rubric]) -> None:
    assert _points(score_text(answer, rnn["1c"]))["additive"] == 0.0


@pytest.mark.parametrize(
    "answer",
    [
        "The cell state is updated additively.",
        "The cell state is updated by addition rather than by repeated multiplication.",
        "The cell state is a sum of the old state and the new input.",
        "The cell state is summed over time, not multiplied.",
        "New information is added to the cell state instead of multiplying it.",
        "The input gate adds new information to the memory cell.",
        "The memory cell is updated by adding the gated input to the old state.",
        "The new cell state is the old one plus the gated candidate.",
        "Since c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t, the cell state changes additively.",
        "The gradient can travel along the cell state over many timesteps without getting smaller.",
        "The cell state provides a direct route for the gradient, so it can flow back many steps.",
        "The cell state lets the gradient flow back without being multiplied by the weights again "
        "and again.",
    ],
)
def test_an_additive_update_said_right_still_scores(answer: str, rnn: dict[str, Rubric]) -> None:
    assert _points(score_text(answer, rnn["1c"]))["additive"] == 1.0


@pytest.mark.parametrize(
    "answer",
    [
        "Gradients grow exponentially over many time steps, so they explode.",
        "The gradients grow exponentially because many Jacobians larger than one are multiplied, "
        "so they explode.",
        "Gradients become exponentially large as a product of many factors greater than 1.",
        "Multiplying many weight matrices makes the gradient explode exponentially.",
        "The gradient increases exponentially with the number of time steps.",
    ],
)
def test_exploding_gradients_are_not_the_vanishing_product(
    answer: str, rnn: dict[str, Rubric]
) -> None:
    assert _points(score_text(answer, rnn["1b"]))["product"] == 0.0


@pytest.mark.parametrize(
    "answer",
    [
        "Gradients shrink exponentially because many factors smaller than one are multiplied.",
        "The gradient is a product of many Jacobians, so it vanishes.",
        "Repeated multiplication by factors below 1 makes the gradient decay exponentially.",
        "The gradients become exponentially small as they are passed back over many time steps.",
        "Backpropagation may involve many steps so the gradient may decrease exponentially.",
        "The gradient goes to zero exponentially fast with the number of time steps.",
        "The error signal diminishes geometrically as it is multiplied through many layers.",
        "As it is passed back over many time steps, the gradient falls exponentially.",
        "The gradient drops exponentially with each time step.",
        "The gradient dies out exponentially with the number of steps.",
    ],
)
def test_a_vanishing_product_said_right_still_scores(answer: str, rnn: dict[str, Rubric]) -> None:
    assert _points(score_text(answer, rnn["1b"]))["product"] == 1.0


# -- 4. a name is not what it names; loose words say only what they say ------------------------

# The items tightened below, by question, with the answers on file that must keep earning them.
TIGHTENED = [("1b", "product"), ("1c", "additive"), ("2a", "struggles"), ("2b", "forget-zero")]


def _answers_on_file(qid: str) -> dict[str, str]:
    """The reference answer, the sample notebooks' answers and test_text's seed and paraphrase."""
    from test_text import GOOD, SEED

    reference = tomllib.loads((ROOT / "solutions" / "rnn-lstm" / "answers.toml").read_text())
    out = {"reference": reference["answers"][qid]}
    for stem in ("correct_vectorised", "seed_student"):
        notebook = read_submission(ROOT / "student_submissions" / "rnn-lstm" / f"{stem}.ipynb")
        found = find_markdown_answer(notebook.cells, qid)
        assert found is not None, (stem, qid)
        out[stem] = found.text
    out["seed"] = SEED[f"rnn-lstm {qid}"]
    out["paraphrase"] = GOOD[f"rnn-lstm {qid}"]
    return out


@pytest.mark.parametrize(("qid", "item"), TIGHTENED)
def test_the_answers_on_file_still_earn_the_tightened_items(
    qid: str, item: str, rnn: dict[str, Rubric]
) -> None:
    from test_text import SEED_MATCHED

    full = next(i.points for i in rnn[qid].items if i.id == item)
    seed_earns = item in SEED_MATCHED[f"rnn-lstm {qid}"]
    for source, answer in _answers_on_file(qid).items():
        expected = full if seed_earns or source not in {"seed", "seed_student"} else 0.0
        assert _points(score_text(answer, rnn[qid]))[item] == expected, source


@pytest.mark.parametrize(
    "answer",
    [
        "The vanishing gradient problem is when gradients explode.",
        "The vanishing gradient problem is when gradients explode over many time steps.",
        "The vanishing-gradient problem means gradients grow exponentially over many steps.",
        "The vanishing gradient problem happens when many factors are multiplied.",
        "The vanishing gradients problem is caused by multiplying many weight matrices.",
        "The problem of vanishing gradients appears when many Jacobians are multiplied.",
    ],
)
def test_the_problems_name_is_not_a_shrinking_gradient(answer: str, rnn: dict[str, Rubric]) -> None:
    assert _points(score_text(answer, rnn["1b"]))["product"] == 0.0


@pytest.mark.parametrize(
    "answer",
    [
        "Even small gradients grow exponentially when multiplied over many steps.",
        "Small gradients become exponentially large after many multiplications.",
        "A small change in the weights makes the gradient explode after multiplying many matrices.",
        "With a small learning rate the gradient still explodes after many time steps.",
        "Small errors in the gradient add up over many time steps and explode exponentially.",
    ],
)
def test_small_as_an_adjective_is_not_a_shrinking_gradient(
    answer: str, rnn: dict[str, Rubric]
) -> None:
    assert _points(score_text(answer, rnn["1b"]))["product"] == 0.0


@pytest.mark.parametrize(
    "answer",
    [
        "The vanishing gradient problem: the gradient shrinks exponentially over many time steps.",
        "In the vanishing gradient problem the gradients vanish as many Jacobians are multiplied.",
        "The gradient is multiplied by many factors smaller than one.",
        "The gradient is multiplied by many small factors.",
        "The gradients become exponentially small as they are passed back over many time steps.",
        "The gradient becomes smaller and smaller as it is multiplied by the same weight matrix at "
        "every step.",
        "After many time steps the gradient gets so small that the early layers stop learning.",
        "The gradient is too small after being multiplied over many steps.",
        "The gradients get very small because BPTT multiplies them by many Jacobians.",
    ],
)
def test_a_shrinking_gradient_said_right_still_scores(answer: str, rnn: dict[str, Rubric]) -> None:
    assert _points(score_text(answer, rnn["1b"]))["product"] == 1.0


@pytest.mark.parametrize(
    "answer",
    [
        "The gates control the gradient flow.",
        "The gates control the gradient flow in the memory cell.",
        "The gates regulate how the gradient passes through the network.",
        "The error travels through the gates.",
        "LSTMs solve the vanishing gradient problem with gates that control the gradient flow.",
        "An LSTM doesn't have the vanishing gradient problem because its gates control the cell.",
        "The LSTM has no vanishing gradient problem, since its memory cell is protected by gates.",
        "An LSTM has a memory cell plus three gates.",
    ],
)
def test_gradient_flow_and_the_problems_name_are_not_an_additive_path(
    answer: str, rnn: dict[str, Rubric]
) -> None:
    assert _points(score_text(answer, rnn["1c"]))["additive"] == 0.0


@pytest.mark.parametrize(
    "answer",
    [
        "The new cell state is the old one plus the gated candidate.",
        "c_t is f_t times the previous cell state plus i_t times g_t.",
        "The gradient flows freely along the cell state.",
        "The gradient flows back through the cell state without vanishing.",
        "Along the cell state the gradient passes back unchanged.",
        "Because of the additive cell update the vanishing gradient problem is avoided.",
        "The cell state is updated additively, so the LSTM avoids the vanishing gradient problem.",
        "The cell state acts as a constant error carousel.",
    ],
)
def test_an_additive_path_said_right_still_scores(answer: str, rnn: dict[str, Rubric]) -> None:
    assert _points(score_text(answer, rnn["1c"]))["additive"] == 1.0


@pytest.mark.parametrize(
    "answer",
    [
        "A forget gate of 0 means nothing happens to the memory.",
        "With a forget gate of 0 nothing changes in the memory cell.",
        "A forget gate of 0 means the cell state is kept; nothing is lost from memory.",
        "A forget gate of 0 does not touch the memory.",
        "A forget gate of 0 means there is no change to the memory.",
        "A forget gate of 0: the cell forgets nothing and keeps all of the previous state.",
    ],
)
def test_nothing_happening_to_the_memory_is_not_forgetting(
    answer: str, rnn: dict[str, Rubric]
) -> None:
    assert _points(score_text(answer, rnn["2b"]))["forget-zero"] == 0.0


@pytest.mark.parametrize(
    "answer",
    [
        "A forget gate of 0 means the cell has no memory of the past.",
        "A forget gate of 0 means nothing passes through.",
        "A forget gate of 0 means no information is kept.",
        "A forget gate of 0 means nothing of the old state remains.",
        "A forget gate of 0 means the previous cell state is not carried over.",
        "With a forget gate of 0 nothing from the previous steps survives in the cell.",
    ],
)
def test_nothing_kept_said_right_still_scores(answer: str, rnn: dict[str, Rubric]) -> None:
    score = score_text(answer, rnn["2b"])
    assert _points(score)["forget-zero"] == 1.0 and not score.needs_review


@pytest.mark.parametrize(
    "answer",
    [
        "A vanilla RNN would be fine here; the LSTM forget gate is only needed for longer texts.",
        "It is a long-term dependency; an RNN is fine, but an LSTM forget gate helps.",
        "No: a plain RNN handles it, the forget gate matters only for LSTMs.",
    ],
)
def test_the_lstms_forget_gate_is_not_a_struggling_rnn(answer: str, rnn: dict[str, Rubric]) -> None:
    assert _points(score_text(answer, rnn["2a"]))["struggles"] == 0.0


@pytest.mark.parametrize(
    "answer",
    [
        "Yes, a vanilla RNN would forget Ireland by the time it reaches the blank.",
        "Yes, a vanilla RNN tends to forget early words like Ireland.",
        "Yes, RNNs struggle here because they have no forget gate.",
        "Yes, a plain RNN loses the information about Ireland.",
    ],
)
def test_a_struggling_rnn_said_right_still_scores(answer: str, rnn: dict[str, Rubric]) -> None:
    assert _points(score_text(answer, rnn["2a"]))["struggles"] == 0.5


def _rubric(assignment: str, qid: str) -> Rubric:
    spec = load_assignment(ROOT, assignment).question(qid).rubric
    return Rubric.from_spec(spec, where=f"{assignment} {qid}")


@pytest.mark.parametrize(
    "answer",
    [
        "The normal equation gives an exact computation even with many features.",
        "Direct computation is cheap and exact, even for many features.",
        "Solving the normal equation directly is one exact computation, even with many features.",
    ],
)
def test_a_computation_is_not_a_cost(answer: str) -> None:
    assert _points(score_text(answer, _rubric("normal-equation", "7")))["cost"] == 0.0


@pytest.mark.parametrize(
    "answer",
    [
        "We know calculating the inverse is a long and complex method and for higher dimensions "
        "it just becomes more longer and complex and hence computationally expensive.",
        "Inverting XᵀX takes a lot of computation when there are many features.",
        "Solving the normal equation is computationally intensive for a large number of features.",
        "The computational cost of the inversion grows as O(p^3).",
        "Inverting the matrix is too demanding with thousands of features.",
    ],
)
def test_a_cost_said_right_still_scores(answer: str) -> None:
    assert _points(score_text(answer, _rubric("normal-equation", "7")))["cost"] == 1.0


@pytest.mark.parametrize(
    "answer",
    [
        "Inverting X^T X requires many computations when there are many features.",
        "Inverting X^T X needs a large number of computations when p is large.",
        "Solving the normal equation needs more computation when there are many features.",
        "The normal equation requires a huge amount of computation for high dimensional data.",
        "Inverting the matrix takes lots of memory and computation with many features.",
    ],
)
def test_a_cost_said_in_computations_scores(answer: str) -> None:
    assignment = load_assignment(ROOT, "normal-equation")
    rubric = Rubric.from_spec(assignment.question("7").rubric, where="normal-equation 7")
    assert _points(score_text(answer, rubric))["cost"] == 1.0
