"""`grade FILE` on copies of the seed student's notebook with one change each, in-process."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from grader.cli import main

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "student_submissions" / "backprop" / "seed_student.ipynb"


def seed() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SEED.read_text(encoding="utf-8"))
    return data


def write(folder: Path, name: str, nb: dict[str, Any]) -> Path:
    path = folder / name
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def grade_json(path: Path, *args: str) -> dict[str, Any]:
    out = path.parent / "out"
    code = main([str(path), "-o", str(out), "--course", str(ROOT), *args])
    assert code in (0, 1)
    (found,) = (out / "backprop").glob(f"{path.stem}*.json")  # partial runs: <stem>.q<ids>
    result: dict[str, Any] = json.loads(found.read_text(encoding="utf-8"))
    return result


@pytest.mark.slow
@pytest.mark.parametrize(("index", "qid"), [(4, "1"), (16, "5")])
def test_a_repeated_answer_tag_is_graded_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], index: int, qid: str
) -> None:
    nb = seed()
    nb["cells"].insert(index + 1, copy.deepcopy(nb["cells"][index]))
    result = grade_json(write(tmp_path, "dup_tag.ipynb", nb), "-q", qid)
    capsys.readouterr()
    (question,) = result["questions"]
    assert question["score"] > 0
    note = f"cells {index + 1} and {index + 2} are both tagged answer:{qid}"
    assert note in question["answer_source"]
    if qid == "1":
        assert f"the first, cell {index + 1}, was graded" in question["answer_source"]
    page = (tmp_path / "out" / "backprop" / f"dup_tag.q{qid}.html").read_text(encoding="utf-8")
    assert note in page


@pytest.mark.slow
def test_an_unwritable_output_folder_is_one_line_and_the_summary_still_shows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("")
    code = main([str(SEED), "-o", str(blocker), "--course", str(ROOT), "-q", "3"])
    out, err = capsys.readouterr()
    assert code == 2
    assert "2 / 2 points" in out and "report:" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"grade: error: cannot write the report to {blocker}")
    assert "Traceback" not in err


@pytest.mark.slow
def test_a_cell_that_fails_names_its_error_instead_of_not_defined(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = seed()
    nb["cells"][13]["source"] = "def forward(x, w1, b1, w2, b2)\n    return 1"
    result = grade_json(write(tmp_path, "syntax.ipynb", nb), "-q", "4")
    capsys.readouterr()
    for check in result["questions"][0]["checks"]:
        assert check["message"].startswith(
            "`forward` could not be defined: cell 14 raised SyntaxError: expected ':' (line 1)"
        )
        assert "define it at the top level" not in json.dumps(check["details"])


@pytest.mark.slow
def test_a_module_with_a_syntax_error_names_it_for_every_function(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.py"
    path.write_text(
        '__assignment__ = "backprop"\nimport numpy as np\n\n\ndef sigmoid(z):\n'
        "    return 1 / (1 + np.exp(-z))\n\nx = = 1\n",
        encoding="utf-8",
    )
    result = grade_json(path, "-q", "3", "-q", "4")
    capsys.readouterr()
    q3, q4 = result["questions"]
    assert q3["checks"] and q4["checks"]
    for check in q3["checks"]:
        assert check["message"].startswith(
            f"`sigmoid` could not be defined: the code from line 1 of {path} raised SyntaxError"
        )
    for check in q4["checks"]:  # defined nowhere: still "not defined"
        assert check["message"].startswith("`forward` is not defined")


@pytest.mark.slow
def test_a_partial_run_is_labelled_and_leaves_the_full_report_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main([str(SEED), "-o", str(out), "--course", str(ROOT)]) == 1
    folder = out / "backprop"
    full = {p.name: p.read_bytes() for p in folder.iterdir()}
    capsys.readouterr()
    assert main([str(SEED), "-o", str(out), "--course", str(ROOT), "-q", "5"]) == 0
    text, _ = capsys.readouterr()
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.name in full} == full
    assert "4 / 4 points (partial: question 5 only)" in text.splitlines()[0]
    assert f"partial report: {folder / 'seed_student.q5.html'}" in text
    data = json.loads((folder / "seed_student.q5.json").read_text(encoding="utf-8"))
    assert data["partial"] is True and data["questions_graded"] == ["5"]
    assert json.loads(full["seed_student.json"])["partial"] is False
    page = (folder / "seed_student.q5.html").read_text(encoding="utf-8")
    assert "Partial report:" in " ".join(page.split())
    assert "only question 5 was graded" in " ".join(page.split())


@pytest.mark.slow
def test_grading_as_another_assignment_than_the_notebook_names_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["-a", "update-rules", "-q", "1", "-o", str(out), "--course", str(ROOT)]
    assert main([str(SEED), *args]) == 1
    _, err = capsys.readouterr()
    warning = f"{SEED} says it is for assignment 'backprop', but it was graded as 'update-rules'"
    assert err.startswith(f"warning: {warning}") and len(err.strip().splitlines()) == 1
    data = json.loads((out / "update-rules" / "seed_student.q1.json").read_text("utf-8"))
    assert data["warnings"][0].startswith(warning)
    page = (out / "update-rules" / "seed_student.q1.html").read_text(encoding="utf-8")
    assert "says it is for assignment &#39;backprop&#39;" in page
    assert main([str(SEED), "-a", "backprop", "-q", "3", "--no-report", "--course", str(ROOT)]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.slow
@pytest.mark.parametrize("formula", ["X @ (X @ beta - y)", "X.T @ (X @ beta - y"])
def test_a_failed_formula_check_describes_the_check_and_shows_what_was_expected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], formula: str
) -> None:
    path = tmp_path / "ne.py"
    path.write_text(f'__assignment__ = "normal-equation"\nanswer_3 = {formula!r}\n', "utf-8")
    out = tmp_path / "out"
    assert main([str(path), "-q", "3", "-o", str(out), "--course", str(ROOT)]) == 1
    capsys.readouterr()
    data = json.loads((out / "normal-equation" / "ne.q3.json").read_text("utf-8"))
    (check,) = data["questions"][0]["checks"]
    assert check["outcome"] == "failed"
    assert "is equivalent" not in check["description"]  # a description, not a claim
    assert check["description"].startswith("your formula compared with the correct one")
    assert check["expected"] == "answer 3 equivalent to X.T*(X*beta - y)"
    page = (out / "normal-equation" / "ne.q3.html").read_text(encoding="utf-8")
    assert "answer 3 equivalent to X.T*(X*beta - y)" in page


@pytest.mark.slow
def test_wrong_keys_from_backward_are_named_not_blamed_on_the_formulas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = seed()
    nb["cells"][16]["source"] = (
        "def backward(x, y, w1, b1, w2, b2):\n"
        "    return {'dw1': 0.0, 'db1': 0.0, 'dw2': 0.0, 'db2': 0.0}\n"
    )
    result = grade_json(write(tmp_path, "keys.ipynb", nb), "-q", "5")
    capsys.readouterr()
    (consistency,) = [
        c for c in result["questions"][0]["checks"] if "your own formulas" in c["name"]
    ]
    assert "disagree" not in consistency["message"]
    assert consistency["message"].startswith("backward(...) returned no 'b1', 'b2', 'w1', 'w2'")
    assert "its keys: 'dw1', 'db1', 'dw2', 'db2'" in consistency["message"]
