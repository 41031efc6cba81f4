"""Reading notebooks and modules, magics, and finding markdown answers."""

from __future__ import annotations

import errno
import hashlib
import os
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader import submission as submission_module
from grader.errors import SubmissionChanged, SubmissionError
from grader.submission import find_markdown_answer, label_of, read_submission, rewrite_magics


def test_module_cells_and_assignment_variable(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text(
        '__assignment__ = "backprop"\nx = 1\n# %% [markdown]\n# **Answer 1** hi\n'
        "# %%\ndef f():\n    return 2\n"
    )
    sub = read_submission(path)
    assert sub.assignment_hint == "backprop"
    kinds = [c.kind for c in sub.cells]
    assert kinds == ["code", "markdown", "code"]
    assert sub.cells[2].first_line == 6  # tracebacks point at the file's own line numbers
    assert sub.defined_names() == {"__assignment__": 0, "x": 0, "f": 2}
    assert find_markdown_answer(sub.cells, "1").text == "hi"


def test_notebook_metadata_tags_and_labels(tmp_path: Path) -> None:
    nb = new_notebook()
    nb.metadata["grader"] = {"assignment": "rnn-lstm"}
    nb.cells = [
        new_code_cell("a = 1"),
        new_markdown_cell("**Answer 1b:** An RNN forgets."),
        new_markdown_cell("something else"),
    ]
    nb.cells[2].metadata["tags"] = ["answer:1a"]
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    sub = read_submission(path)
    assert sub.assignment_hint == "rnn-lstm"
    b = find_markdown_answer(sub.cells, "1b")
    assert b is not None and b.text == "An RNN forgets." and b.cell == 1
    a = find_markdown_answer(sub.cells, "1a")
    assert a is not None and "tagged" in a.source and a.text == "something else"
    assert find_markdown_answer(sub.cells, "2") is None


@pytest.mark.parametrize(
    "line",
    [
        "## Answer 1b",
        "**Answer 1b**",
        "Answer 1b:",
        "Answer (1b)",
        "**Answer 1b:** text",
        "### answer 1B",
    ],
)
def test_label_spellings(line: str) -> None:
    found = label_of(line + "\nmore")
    assert found is not None and found[0] == "1b"


def test_labels_that_are_not_answers() -> None:
    assert label_of("The answer is 42") is None
    assert label_of("Answers to all questions") is None


def test_magics_rewritten_with_notes() -> None:
    code, notes = rewrite_magics("%matplotlib inline\n!pip install x\ny = 10 % 3\nz = !ls\n")
    assert code.splitlines() == ["pass", "pass", "y = 10 % 3", "pass"]
    assert len(notes) == 3
    code, notes = rewrite_magics("%%time\nx = 1\n")
    assert "x = 1" in code and "without the magic" in notes[0]
    code, notes = rewrite_magics("%%bash\necho hi\n")
    assert code.strip() == "pass" and "skipped" in notes[0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\x00\x01binary", "binary"),
        (b"{not json", "not a valid notebook"),
        (b"caf\xe9 latin-1", "not UTF-8"),
    ],
)
def test_unreadable_files_give_one_clear_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.ipynb"
    path.write_bytes(content)
    with pytest.raises(SubmissionError, match=message) as info:
        read_submission(path)
    assert "\n" not in str(info.value)


def test_folder_is_not_a_submission(tmp_path: Path) -> None:
    with pytest.raises(SubmissionError, match="folder"):
        read_submission(tmp_path)


def test_placeholders_are_not_answers_but_answers_starting_with_dots_are() -> None:
    from grader.answers import Answers
    from grader.assignment import find_course_dir, load_assignment

    assignment = load_assignment(find_course_dir(None), "backprop")
    answers = Answers(None, read_submission_text("x = 1\n"), assignment)
    assert answers._placeholder("YOUR ANSWER HERE")
    assert answers._placeholder("  $$ $$ ")
    assert answers._placeholder("YOUR ANSWER HERE (2 points)")
    assert not answers._placeholder("... so the gradient vanishes")
    assert not answers._placeholder("TODO lists are a poor analogy, but gates forget")


def read_submission_text(code: str):  # type: ignore[no-untyped-def]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.py"
        path.write_text(code)
        return read_submission(path)


def test_repeated_answer_tags_are_read_and_the_first_cell_wins() -> None:
    """Students copy cells with their tags: not an error (ASSIGNMENTS.md: the first wins)."""
    path = Path(__file__).parent / "corpus" / "broken" / "duplicate_tags.ipynb"
    sub = read_submission(path)
    answer = find_markdown_answer(sub.cells, "1")
    assert answer is not None and answer.cell == 1
    assert sub.duplicate_tags == {"1": (1, 2)}
    assert sub.duplicate_tag_note("1") == "cells 2 and 3 are both tagged answer:1"
    assert sub.duplicate_tag_note("2") == ""


@pytest.mark.parametrize("prefix", ["", "# ", "** ", "Answer 1", "**Answer"])
def test_a_line_of_many_spaces_is_read_in_linear_time(prefix: str) -> None:
    """The answer-label patterns once took quadratic time to fail on such a line (seconds for
    a few thousand spaces); the budget below is far above linear and far below quadratic."""
    from grader.checks.math._markdown import split_steps
    from grader.submission import _LABEL

    line = prefix + " " * 100_000 + "x"
    started = time.process_time()
    _LABEL.match(line)
    split_steps(line)
    assert time.process_time() - started < 1.0


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_file_that_cannot_be_examined_is_one_clear_line_and_leaks_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.py"
    path.write_text("x = 1\n")
    before = _open_fds()

    def broken(fd: int) -> os.stat_result:
        raise OSError(errno.EIO, "Input/output error")

    with monkeypatch.context() as m:
        m.setattr(submission_module.os, "fstat", broken)
        with pytest.raises(SubmissionError, match=r"cannot read .*Input/output error"):
            read_submission(path)
    assert _open_fds() == before


def test_a_batch_refuses_contents_other_than_those_it_hashed(tmp_path: Path) -> None:
    path = tmp_path / "a.py"
    path.write_text('__assignment__ = "backprop"\n')
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert read_submission(path, sha256=digest).kind == "module"
    path.write_text('__assignment__ = "backprop"\nx = 2\n')
    with pytest.raises(SubmissionError, match="changed while the batch was grading it"):
        read_submission(path, sha256=digest)
    path.write_text("")  # emptied since: changed, not "empty" (which a record would keep)
    with pytest.raises(SubmissionChanged):
        read_submission(path, sha256=digest)
    with pytest.raises(SubmissionError, match="is empty") as err:
        read_submission(path, sha256=hashlib.sha256(b"").hexdigest())
    assert not isinstance(err.value, SubmissionChanged)
