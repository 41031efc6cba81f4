"""How an assignment's spec and check files are loaded: broken ones stop with a clear error.

Each test builds a broken course in ``tmp_path`` (a copy of ``assignments/`` and ``solutions/``
with one change) and loads or grades against it as ``grade`` does.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader.assignment import KIND_KEYS, QUESTION_KEYS, SPEC_KEYS, find_course_dir, load_assignment
from grader.cli import main
from grader.errors import SpecError
from grader.solutions import check_solutions

ROOT = Path(__file__).resolve().parent.parent


def make_course(tmp_path: Path) -> Path:
    course = tmp_path / "course"
    shutil.copytree(ROOT / "assignments", course / "assignments")
    shutil.copytree(ROOT / "solutions", course / "solutions")
    return course


def reference_submission(folder: Path) -> Path:
    """The backprop reference as a module that names its assignment."""
    path = folder / "ref_bp.py"
    text = (ROOT / "solutions" / "backprop" / "reference.py").read_text(encoding="utf-8")
    path.write_text(text + '\n__assignment__ = "backprop"\n', encoding="utf-8")
    return path


# --- the course folder ---------------------------------------------------------------------------


def test_a_relative_course_folder_is_found_as_an_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_course(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert find_course_dir("course") == tmp_path.resolve() / "course"
    monkeypatch.setenv("GRADER_COURSE_DIR", "course")
    assert find_course_dir() == tmp_path.resolve() / "course"


@pytest.mark.slow
@pytest.mark.parametrize("how", ["option", "environment"])
def test_grading_with_a_relative_course_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    make_course(tmp_path)
    sub = reference_submission(tmp_path)
    monkeypatch.chdir(tmp_path)
    args = [str(sub.resolve()), "--no-report", "-q", "3"]
    if how == "option":
        args += ["--course", "course"]
    else:
        monkeypatch.setenv("GRADER_COURSE_DIR", "course")
    assert main(args) == 0, capsys.readouterr().err


# --- check files that cannot be loaded ---------------------------------------------------------


def break_check_file(course: Path, line: str) -> tuple[Path, int]:
    """Insert ``line`` after the ``from __future__`` import of backprop's public code checks."""
    path = course / "assignments" / "backprop" / "checks" / "check_code.py"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    at = next(i for i, text in enumerate(lines) if text.startswith("from __future__")) + 1
    lines.insert(at, line + "\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path, at + 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("import nonexistent_helper_mod", "ModuleNotFoundError: No module named 'nonexistent_"),
        ("def broken(:", "SyntaxError: "),
        ("1 / 0", "ZeroDivisionError: division by zero"),
    ],
)
def test_a_check_file_that_cannot_be_imported_stops_grading_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, error: str
) -> None:
    course = make_course(tmp_path)
    path, lineno = break_check_file(course, line)
    sub = reference_submission(tmp_path)
    # Twice: the second run in this process must not find the half-imported module instead.
    for _ in range(2):
        assert main([str(sub), "--course", str(course), "--no-report", "-q", "3"]) == 2
        err = capsys.readouterr().err
        assert f"{path}:{lineno}: cannot load this check file: {error}" in err, err


@pytest.mark.slow
def test_check_solutions_fails_on_a_check_file_that_cannot_be_imported(tmp_path: Path) -> None:
    course = make_course(tmp_path)
    path, lineno = break_check_file(course, "import nonexistent_helper_mod")
    verdicts = check_solutions(course, ["backprop"], jobs=1, sandbox="auto")
    reference = next(v for v in verdicts if v.case.role == "reference")
    assert not reference.ok
    assert f"{path}:{lineno}: cannot load this check file: ModuleNotFoundError" in " ".join(
        reference.problems
    )
    assert verdicts and all(not v.ok for v in verdicts)


# --- unknown keys in a spec --------------------------------------------------------------------


def edit_spec(course: Path, aid: str, old: str, new: str) -> Path:
    path = course / "assignments" / aid / "spec.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def line_of(path: Path, text: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.startswith(text))


@pytest.mark.parametrize(
    ("aid", "old", "new", "error"),
    [
        ("backprop", "title =", "titel =", "unknown key `titel` (did you mean `title`?)"),
        ("backprop", "[limits]", "[limit]", "unknown key `limit` (did you mean `limits`?)"),
        (
            "backprop",
            "functions =",
            "functons =",
            "question 3 (code): unknown key `functons` (did you mean `functions`?)",
        ),
        (
            "normal-equation",
            "variable =",
            "variabel =",
            "question 2 (derivation): unknown key `variabel` (did you mean `variable`?)",
        ),
        (
            "backprop",
            "answer_names =",
            "functions = []\nanswer_names =",
            "question 2 (symbolic): `functions` is for code questions",
        ),
    ],
)
def test_an_unknown_key_in_a_spec_is_refused_naming_it_and_its_line(
    tmp_path: Path, aid: str, old: str, new: str, error: str
) -> None:
    course = make_course(tmp_path)
    path = edit_spec(course, aid, old, new)
    key = new.split("\n")[0].split(" =")[0]
    with pytest.raises(SpecError) as info:
        load_assignment(course, aid)
    message = str(info.value)
    assert message.startswith(f"{path}:{line_of(path, key)}: "), message
    assert error in message


def test_the_limit_in_a_mistyped_limits_table_is_not_ignored(tmp_path: Path) -> None:
    course = make_course(tmp_path)
    path = course / "assignments" / "backprop" / "spec.toml"
    path.write_text(path.read_text(encoding="utf-8") + "\n[limit]\ncall_timeout = 1\n")
    with pytest.raises(SpecError, match="unknown key `limit`"):
        load_assignment(course, "backprop")


def test_every_key_the_real_specs_and_the_guide_use_is_known() -> None:
    guide = (ROOT / "docs" / "authoring.md").read_text(encoding="utf-8")
    known = {*SPEC_KEYS, *QUESTION_KEYS, *(k for keys in KIND_KEYS.values() for k in keys)}
    for key in known:
        assert f"`{key}`" in guide or f"{key} =" in guide, f"the guide does not mention {key}"
    for spec in sorted((ROOT / "assignments").glob("*/spec.toml")):
        load_assignment(ROOT, spec.parent.name)  # raises on any key it does not know


# --- checks that do not fit the spec -----------------------------------------------------------


def edit_check_file(course: Path, old: str, new: str) -> Path:
    path = course / "assignments" / "backprop" / "checks" / "check_code.py"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.slow
def test_a_check_for_a_question_the_spec_lacks_is_an_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    course = make_course(tmp_path)
    path = edit_check_file(course, '@check("5", 4)', '@check("9", 4)')
    sub = reference_submission(tmp_path)
    line = line_of(path, '@check("9"')
    for _ in range(2):  # a kept session must not keep the checks either
        assert main([str(sub), "--course", str(course), "--no-report", "-q", "3"]) == 2
        err = capsys.readouterr().err
        assert f"{path}:{line}: check_backward_finite_differences" in err
        assert (
            "@check('9', 4), but" in err and "has no question '9' (it has 1, 2, 3, 4, 5, 6)" in err
        )


@pytest.mark.slow
def test_check_points_above_a_question_s_points_name_every_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    course = make_course(tmp_path)
    edit_check_file(course, '@check("5", 4)', '@check("5", 5)')
    sub = reference_submission(tmp_path)
    assert main([str(sub), "--course", str(course), "--no-report", "-q", "3"]) == 2
    err = capsys.readouterr().err
    assert (
        "spec.toml: question 5 is worth 4 points but its checks add up to 5: "
        "assignments/backprop/checks/check_code.py::check_backward_finite_differences (5), "
        "assignments/backprop/checks/check_consistency.py::check_code_matches_own_formulas (0)"
    ) in err, err


# --- where a bad value is ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "key", "error"),
    [
        (
            "points = 4",
            'points = "4"',
            'points = "4"',
            "question 2: points = '4' must be a positive",
        ),
        (
            'kind = "symbolic"',
            'kind = "symbolc"',
            'kind = "symbolc"',
            "question 2: kind = 'symbolc' must",
        ),
        ('id = "3"', 'id = "2"', 'id = "2"', "duplicate question id '2'"),
        (
            'functions = ["sigmoid"]',
            "functions = []",
            "functions = []",
            "question 3: a code question",
        ),
        ("call_timeout = ", "call_timeout = 0 #", "[limits]", "limits.call_timeout = 0 must be"),
    ],
)
def test_a_bad_value_is_located_by_question_id_and_line(
    tmp_path: Path, old: str, new: str, key: str, error: str
) -> None:
    course = make_course(tmp_path)
    path = edit_spec(course, "backprop", old, new)
    with pytest.raises(SpecError) as info:
        load_assignment(course, "backprop")
    message = str(info.value)
    lines = path.read_text(encoding="utf-8").splitlines()
    # The duplicate is the second line with that id: the one that repeats it.
    line = [n for n, text in enumerate(lines, 1) if text.startswith(key)][-1 if "id" in key else 0]
    assert message.startswith(f"{path}:{line}: {error}"), message
    assert "questions[" not in message
