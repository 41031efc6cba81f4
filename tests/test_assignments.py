"""The four assignments: specs match the contract, check points add up, templates are
complete, and (slow) the sample submissions get the grades they were written for.

The contract is ../shared/ASSIGNMENTS.md; its question tables are restated here so that a
change to a spec that breaks the contract fails a test.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from grader.assignment import list_assignments, load_assignment
from grader.results import GradeResult, RubricMatch
from grader.solutions import Case, grade_cases
from grader.submission import label_of, read_submission

ROOT = Path(__file__).resolve().parent.parent

# id → [(question, kind, points)], as in ASSIGNMENTS.md.
CONTRACT: dict[str, list[tuple[str, str, float]]] = {
    "normal-equation": [
        ("1", "text", 2),
        ("2", "derivation", 4),
        ("3", "symbolic", 2),
        ("4", "code", 3),
        ("5", "code", 2),
        ("6", "code", 3),
        ("7", "text", 2),
    ],
    "backprop": [
        ("1", "text", 2),
        ("2", "symbolic", 4),
        ("3", "code", 2),
        ("4", "code", 2),
        ("5", "code", 4),
        ("6", "code", 4),
    ],
    "update-rules": [
        ("1", "code", 2),
        ("2", "text", 2),
        ("3", "code", 3),
        ("4", "code", 3),
        ("5", "code", 3),
        ("6", "code", 3),
    ],
    "rnn-lstm": [
        ("1a", "text", 2),
        ("1b", "text", 2),
        ("1c", "text", 2),
        ("1d", "text", 2),
        ("1e", "text", 1),
        ("2a", "text", 2),
        ("2b", "text", 2),
        ("3", "code", 3),
        ("4", "code", 4),
        ("5", "code", 3),
    ],
}
TOTALS = {"normal-equation": 18, "backprop": 18, "update-rules": 16, "rnn-lstm": 23}


def test_every_assignment_is_present() -> None:
    assert list_assignments(ROOT) == sorted(CONTRACT)


@pytest.mark.parametrize("aid", sorted(CONTRACT))
def test_spec_matches_the_contract(aid: str) -> None:
    a = load_assignment(ROOT, aid)
    assert [(q.id, q.kind, q.points) for q in a.questions] == CONTRACT[aid]
    assert a.max_score == TOTALS[aid]
    for q in a.questions:
        assert q.title and q.text, f"{aid} question {q.id} needs a title and a text"
        if q.kind == "text":
            assert sum(float(r["points"]) for r in q.rubric) == pytest.approx(q.points)
            assert all({"id", "points", "description"} <= set(r) for r in q.rubric)


def _check_functions(aid: str) -> list[tuple[ast.FunctionDef, bool, list[tuple[str, float]]]]:
    """Every check of an assignment (read, not imported): node, public, [(question, points)]."""
    found = []
    for folder, public in (
        (ROOT / "assignments" / aid / "checks", True),
        (ROOT / "solutions" / aid / "checks", False),
    ):
        for path in sorted(folder.glob("check_*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in tree.body:
                if not isinstance(node, ast.FunctionDef):
                    continue
                marks = [
                    (ast.literal_eval(d.args[0]), float(ast.literal_eval(d.args[1])))
                    for d in node.decorator_list
                    if isinstance(d, ast.Call)
                    and isinstance(d.func, ast.Name)
                    and d.func.id == "check"
                ]
                if marks:
                    found.append((node, public, marks))
    return found


@pytest.mark.parametrize("aid", sorted(CONTRACT))
def test_code_check_points_add_up_exactly(aid: str) -> None:
    a = load_assignment(ROOT, aid)
    totals: dict[str, float] = {}
    for _, _, marks in _check_functions(aid):
        for q, points in marks:
            totals[q] = totals.get(q, 0.0) + points
    for q in a.questions:
        if q.kind == "code":
            assert totals.get(q.id) == pytest.approx(q.points), f"{aid} question {q.id}"


@pytest.mark.parametrize("aid", sorted(CONTRACT))
def test_public_checks_need_no_reference_and_explain_themselves(aid: str) -> None:
    functions = _check_functions(aid)
    assert any(public for _, public, _ in functions) and any(not p for _, p, _ in functions)
    for node, public, _ in functions:
        params = [arg.arg for arg in node.args.args]
        if public:
            assert "ref" not in params, f"public check {node.name} uses the reference"
        assert (ast.get_docstring(node) or "").strip(), f"{node.name} has no docstring"


# --- templates ---------------------------------------------------------------------------------

_SIGNATURE = re.compile(r"(\w+)\(([^()]*)\)")


def _title_signatures(title: str) -> dict[str, list[str]]:
    return {
        m.group(1): [p.split("=")[0].strip() for p in m.group(2).split(",") if p.strip()]
        for m in _SIGNATURE.finditer(title)
    }


@pytest.mark.parametrize("aid", sorted(CONTRACT))
def test_template_has_every_question(aid: str) -> None:
    a = load_assignment(ROOT, aid)
    path = a.template_path()
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["grader"]["assignment"] == aid
    cells = nb.cells
    sources = [c.source for c in cells]
    defined: dict[str, ast.FunctionDef] = {}
    for c in cells:
        if c.cell_type == "code":
            defined |= {
                n.name: n for n in ast.parse(c.source).body if isinstance(n, ast.FunctionDef)
            }
    for q in a.questions:
        heading = f"## Question {q.id} ({q.points:g} point"
        assert any(s.startswith(heading) for s in sources), f"no heading for question {q.id}"
        assert f'from grader.notebook import check\n\ncheck("{q.id}")' in sources
        if q.kind != "code":
            answer = [c for c in cells if f"answer:{q.id}" in c.metadata.get("tags", [])]
            assert len(answer) == 1 and answer[0].cell_type == "markdown"
            assert label_of(answer[0].source) == (q.id, "YOUR ANSWER HERE")
            continue
        for fn in q.functions:
            node = defined[fn]
            assert isinstance(node.body[-1], ast.Raise), f"{fn} stub must raise"
            assert ast.unparse(node.body[-1]) == "raise NotImplementedError"
            wanted = _title_signatures(q.title).get(fn)
            if wanted is not None:
                assert [arg.arg for arg in node.args.args] == wanted, fn
    sub = read_submission(path)
    assert sub.assignment_hint == aid


# --- sample submissions (slow) -----------------------------------------------------------------

# file → code questions it must lose points on (all other code questions: full marks).
SAMPLES: dict[str, set[str]] = {
    "normal-equation/seed_student.ipynb": set(),
    "normal-equation/correct_loops.py": set(),
    "normal-equation/correct_lstsq_variables.py": set(),
    "normal-equation/mistake_no_transpose.py": {"4", "5", "6"},
    "normal-equation/mistake_sign_error.ipynb": {"6"},
    "backprop/seed_student.ipynb": set(),
    "backprop/correct_loops.ipynb": set(),
    "backprop/correct_sympy.py": set(),
    "backprop/mistake_overflow.py": {"3", "5", "6"},
    "backprop/mistake_sign_error.ipynb": {"5"},
    "update-rules/seed_student.ipynb": set(),
    "update-rules/correct_loops.py": set(),
    "update-rules/correct_functional.ipynb": set(),
    "update-rules/mistake_in_place.py": {"1", "4", "6"},
    "update-rules/mistake_momentum_perceptron.ipynb": {"3", "5"},
    "rnn-lstm/seed_student.ipynb": set(),
    "rnn-lstm/correct_loops.py": set(),
    "rnn-lstm/correct_vectorised.ipynb": set(),
    "rnn-lstm/mistake_truncated_bptt.ipynb": {"4", "5"},
    "rnn-lstm/mistake_shapes.py": {"3", "4", "5"},
}


# file → {symbolic or derivation question: True if it must score full marks, False if it must
# lose points}: correct answers written differently, and the listed mistakes.
MATHS: dict[str, dict[str, bool]] = {
    "backprop/seed_student.ipynb": {"2": True},
    "backprop/correct_loops.ipynb": {"2": True},  # in terms of ŷ and σ(z1)
    "backprop/correct_sympy.py": {"2": True},  # SymPy expressions, shorthands expanded
    "backprop/mistake_sign_error.ipynb": {"2": False},  # (y − a2)
    "backprop/mistake_overflow.py": {"2": False},  # ∂L/∂w1 without x
    "normal-equation/seed_student.ipynb": {"2": False, "3": True},
    "normal-equation/correct_loops.py": {"2": True, "3": True},  # aligned block, \top
    "normal-equation/correct_lstsq_variables.py": {"2": True, "3": True},  # list of steps
    "normal-equation/mistake_no_transpose.py": {"3": False},  # Xᵀ(y − Xβ)
    "normal-equation/mistake_sign_error.ipynb": {"2": False, "3": False},
}


def test_every_sample_is_listed() -> None:
    on_disk = {
        str(p.relative_to(ROOT / "student_submissions"))
        for p in (ROOT / "student_submissions").glob("*/*")
        if p.suffix in (".py", ".ipynb")
    }
    assert on_disk == set(SAMPLES)


@pytest.fixture(scope="module")
def graded() -> dict[str, GradeResult]:
    cases = [
        Case(name.split("/")[0], "sample", name, ROOT / "student_submissions" / name)
        for name in SAMPLES
    ]
    results = grade_cases(cases, ROOT, jobs=2)
    out = {}
    for case, result in zip(cases, results, strict=True):
        assert isinstance(result, GradeResult), f"{case.name}: {result}"
        out[case.name] = result
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_code_questions(graded: dict[str, GradeResult], name: str) -> None:
    result = graded[name]
    for q in result.questions:
        if q.kind != "code":
            continue
        if q.id in SAMPLES[name]:
            assert q.score < q.max_score, f"{name}: question {q.id} should lose points"
        else:
            assert q.score == q.max_score, f"{name}: question {q.id} lost points: " + "; ".join(
                f"{c.name}: {c.message}" for c in q.checks if c.score < c.max_score
            )


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MATHS))
def test_sample_maths_questions(graded: dict[str, GradeResult], name: str) -> None:
    for qid, full in MATHS[name].items():
        q = graded[name].question(qid)
        reasons = "; ".join(f"{c.name}: {c.message}" for c in q.checks if c.score < c.max_score)
        if full:
            assert q.score == q.max_score, f"{name}: question {qid} lost points: {reasons}"
        else:
            assert q.score < q.max_score, f"{name}: question {qid} should lose points"


@pytest.mark.slow
def test_seed_student_grades(graded: dict[str, GradeResult]) -> None:
    """The issue's bar: backprop Q2 full, normal-equation Q2 partial (final right, steps not)."""
    backprop = graded["backprop/seed_student.ipynb"].question("2")
    assert backprop.score == backprop.max_score
    derivation = graded["normal-equation/seed_student.ipynb"].question("2")
    assert 0 < derivation.score < derivation.max_score
    final = [c for c in derivation.checks if c.name == "the derivation's final answer"]
    assert final and final[0].score == final[0].max_score


@pytest.mark.slow
@pytest.mark.parametrize("aid", sorted(CONTRACT))
def test_seed_student_text_answers(graded: dict[str, GradeResult], aid: str) -> None:
    """The seed's text answers earn at least half marks, with the matched items shown."""
    result = graded[f"{aid}/seed_student.ipynb"]
    for q in result.questions:
        if q.kind != "text":
            continue
        assert q.score >= q.max_score / 2, f"{aid} question {q.id}: {q.score}/{q.max_score}"
        items = [d for c in q.checks for d in c.details if isinstance(d, RubricMatch)]
        assert items and any(i.matched for i in items), f"{aid} question {q.id}"
