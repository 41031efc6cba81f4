"""Answers a submission defines but whose code stopped before the sandbox could give them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from grader.answers import literal_assigned
from grader.cli import main
from grader.submission import read_submission

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "student_submissions" / "normal-equation" / "correct_lstsq_variables.py"


def module(tmp_path: Path, name: str, code: str) -> Path:
    path = tmp_path / name
    path.write_text(code, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("code", "value"),
    [
        ('answer_3 = "X.T @ (X @ beta - y)"\n', "X.T @ (X @ beta - y)"),
        ('answer_2 = ["a = b", "b = c"]\n', ["a = b", "b = c"]),
        ('answer_3: str = "first"\nanswer_3 = "second"\n', "second"),
        ('answer_3 = "x"\nanswer_3 += "y"\n', None),  # changed by code: only running it tells
        ('answer_3 = "x".upper()\n', None),
        ('def f():\n    answer_3 = "inside"\n', None),  # not at top level
        ("answer_3 = (\n", None),  # a cell that does not parse
        ('answer_3 = "x"\nanswer_3, other = compute(), 1\n', None),  # replaced by code
        ('answer_3 = "x"\nif True:\n    answer_3 = compute()\n', None),
        ('answer_3 = "x"\nfor answer_3 in range(2):\n    pass\n', None),
        ('answer_3 = "x"\nfrom m import y as answer_3\n', None),
        ('answer_3 = "x"\ndef answer_3():\n    pass\n', None),
        ('answer_3 = "x"\ndef f():\n    global answer_3\n', None),
        ('answer_3 = "x"\nprint(answer_3)\nother = answer_3 = "y"\n', "y"),
    ],
)
def test_a_literal_answer_is_read_from_the_code(tmp_path: Path, code: str, value: Any) -> None:
    sub = read_submission(module(tmp_path, "m.py", code))
    name = "answer_2" if "answer_2" in code else "answer_3"
    assert literal_assigned(sub, name) == value


def grade(path: Path, *args: str) -> dict[str, Any]:
    out = path.parent / "out"
    code = main([str(path), "-o", str(out), "--course", str(ROOT), "--no-server", *args])
    assert code in (0, 1)
    (report,) = (out / "normal-equation").glob(f"{path.stem}*.json")  # .q3.json: partial
    result: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    return result


@pytest.mark.slow
def test_answers_survive_code_that_ends_the_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = MODULE.read_text(encoding="utf-8") + "\nimport os\nos._exit(3)\n"
    result = grade(module(tmp_path, "dies.py", code), "-q", "2", "-q", "3")
    capsys.readouterr()
    scores = {q["id"]: q["score"] for q in result["questions"]}
    assert scores == {"2": 4.0, "3": 2.0}
    three = next(q for q in result["questions"] if q["id"] == "3")
    assert "read from its cell" in three["answer_source"]


@pytest.mark.slow
def test_an_answer_computed_by_code_that_never_ran_is_not_called_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = MODULE.read_text(encoding="utf-8").replace(
        'answer_3 = "X.T*X*beta - X.T*y"', 'answer_3 = "X.T*X*beta - " + "X.T*y"'
    )
    assert code != MODULE.read_text(encoding="utf-8")
    result = grade(module(tmp_path, "dies.py", code + "\nimport os\nos._exit(3)\n"), "-q", "3")
    capsys.readouterr()
    (check,) = result["questions"][0]["checks"]
    assert result["questions"][0]["score"] == 0.0
    assert "your code stopped before giving its value" in check["message"]
    assert "no answer" not in check["message"]


@pytest.mark.slow
def test_a_bare_result_is_told_it_is_not_a_derivation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = module(tmp_path, "bare.py", 'answer_2 = r"$$\\beta = (X^TX)^{-1}X^Ty$$"\n')
    result = grade(path, "-q", "2", "--assignment", "normal-equation")
    capsys.readouterr()
    (question,) = result["questions"]
    steps = next(c for c in question["checks"] if c["score"] < c["max_score"])
    assert steps["message"].startswith("a single line is not a derivation")
    assert 0 < question["score"] < question["max_score"]
