"""Hostile notebooks against the trusted parent: an assignment id that is a path, markdown
that would smuggle HTML into the report or take the renderer minutes, answers of megabytes."""

from __future__ import annotations

import copy
import json
import shutil
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell, new_notebook

from grader.assignment import load_assignment
from grader.cli import main
from grader.errors import UsageError
from grader.remote import definition_pattern
from grader.report.cells import MAX_MARKDOWN, MAX_MARKDOWN_TOTAL, render_cells
from grader.submission import read_submission

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "student_submissions" / "backprop" / "seed_student.ipynb"


def seed() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SEED.read_text(encoding="utf-8"))
    return data


def write(path: Path, nb: dict[str, Any]) -> Path:
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def planted_assignment(tmp_path: Path, marker: Path) -> Path:
    """A folder outside the course that looks like the backprop assignment, with a check file
    that would leave ``marker`` behind if the parent ever imported it."""
    folder = tmp_path / "elsewhere" / "backprop"
    (folder / "checks").mkdir(parents=True)
    shutil.copy(ROOT / "assignments" / "backprop" / "spec.toml", folder / "spec.toml")
    (folder / "checks" / "check_planted.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n", encoding="utf-8"
    )
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("relative", [False, True])
def test_an_assignment_id_from_the_metadata_is_never_a_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], relative: bool
) -> None:
    marker = tmp_path / "planted-check-ran"
    folder = planted_assignment(tmp_path, marker)
    nb = seed()
    aid = str(folder)
    if relative:  # from the course's assignments/ folder up and over to the planted one
        aid = "../" * len((ROOT / "assignments").parts) + str(folder).lstrip("/")
    nb["metadata"]["grader"] = {"assignment": aid}
    path = write(tmp_path / "sub.ipynb", nb)
    code = main([str(path), "--course", str(ROOT), "--no-report", "--no-server"])
    err = capsys.readouterr().err
    assert code == 2 and not marker.exists()
    assert "unknown" in err and "known: backprop" in err


@pytest.mark.parametrize("aid", ["../assignments/backprop", "/tmp/backprop", "backprop/"])
def test_loading_an_assignment_takes_only_a_name_of_the_course(aid: str) -> None:
    with pytest.raises(UsageError, match=r"unknown assignment .* \(known: backprop, "):
        load_assignment(ROOT, aid)


def render(tmp_path: Path, *sources: str) -> str:
    path = tmp_path / "md.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell(s) for s in sources]), path)
    return str(render_cells(read_submission(path)))


def test_a_mermaid_block_is_shown_as_escaped_code(tmp_path: Path) -> None:
    html = render(
        tmp_path,
        "```mermaid\n<img src=x onerror=alert(1)>\n```",
        "```mermaidfoo\n<a href=javascript:alert(2)>x</a>\n```",
    )
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<a href=javascript" not in html and 'href="javascript' not in html


def test_markdown_past_its_limits_is_plain_text(tmp_path: Path) -> None:
    # A run of "$" is one of the inputs on which mistune's time grows faster than linearly.
    huge = "$" * (MAX_MARKDOWN + 1)
    ordinary = "**bold** and $x^2$"
    html = render(tmp_path, ordinary, huge, ordinary)
    assert html.count("<strong>bold</strong>") == 2
    assert f"This markdown ({MAX_MARKDOWN + 1:,} characters) is shown as plain text" in html
    # Pieces that fit one by one, but not all together.
    piece = "word " * (MAX_MARKDOWN // 5 - 1)
    count = MAX_MARKDOWN_TOTAL // len(piece) + 2
    html = render(tmp_path, *([piece] * count))
    assert html.count("the notebook's markdown is over") == count - MAX_MARKDOWN_TOTAL // len(piece)


@pytest.mark.slow
def test_a_text_answer_of_a_megabyte_goes_to_review(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = seed()
    answer = next(c for c in nb["cells"] if "answer:1" in c.get("metadata", {}).get("tags", []))
    answer = copy.deepcopy(answer)
    nb["cells"] = [
        c for c in nb["cells"] if "answer:1" not in c.get("metadata", {}).get("tags", [])
    ]
    answer["source"] = "The chain rule. " * 70_000
    nb["cells"].insert(1, answer)
    path = write(tmp_path / "long.ipynb", nb)
    code = main([str(path), "--course", str(ROOT), "-o", str(tmp_path / "out"), "-q", "1"])
    capsys.readouterr()
    assert code in (0, 1)
    (report,) = (tmp_path / "out" / "backprop").glob("long*.json")
    (question,) = json.loads(report.read_text(encoding="utf-8"))["questions"]
    assert question["needs_review"] and question["score"] == 0
    assert "characters long; answers over 20,000" in question["checks"][0]["message"]


@pytest.mark.parametrize(
    ("code", "defines"),
    [
        ("def forward(x):\n", True),
        ("async def forward(x):\n", True),
        ("class forward:\n", True),
        ("forward = 1\n", True),
        ("forward: int = 2\n", True),
        ("forward == 3\n", False),
        ("forwards = 1\n", False),
        ("forward:\n" * 100_000, False),  # once minutes in the parent: quadratic across lines
        ("forward" + " " * 100_000 + "\n", False),
    ],
)
def test_finding_a_failed_definition_is_linear(code: str, defines: bool) -> None:
    started = time.process_time()
    assert bool(definition_pattern("forward").search(code)) is defines
    assert time.process_time() - started < 1.0
