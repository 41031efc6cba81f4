"""The HTML report: content a student needs, escaping of everything from the student, speed."""

from __future__ import annotations

import html.parser
import json
import time
from pathlib import Path

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grader.report.cells import neutralise, render_cells
from grader.report.html import render_report, safe_mathml
from grader.report.svg import gradient_chart, histogram
from grader.results import (
    ArrayDiff,
    CellRun,
    CheckResult,
    DerivationStep,
    GradeResult,
    GradientRow,
    GradientTable,
    MathAnswer,
    Outcome,
    QuestionResult,
    RubricMatch,
    TextNote,
)
from grader.submission import read_submission

EVIL = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>"
MATHML = (
    '<math xmlns="http://www.w3.org/1998/Math/MathML"><mrow><mi>a</mi><mo>-</mo>'
    "<mi>y</mi></mrow></math>"
)


def gradient_check() -> CheckResult:
    rows = (
        GradientRow("w1", -0.444724, -0.106518, 0.6135, False),
        GradientRow("b1", -0.611964, -0.146575, 0.6135, False),
        GradientRow("w2", 0.109257, 0.109257, 1.1e-10, True),
        GradientRow("b2", 0.274789, 0.274789, 3.3e-12, True),
    )
    return CheckResult(
        name="each gradient agrees with central finite differences",
        question="5",
        description="each gradient agrees with central finite differences",
        score=2.0,
        max_score=4.0,
        outcome=Outcome.FAILED,
        message="gradient disagrees with finite differences for w1, b1",
        hint="∂L/∂w1 = (a2 − y)·w2·a1(1 − a1)·x: check σ′(z1) = a1(1 − a1).",
        expected="w1: -0.106518; b1: -0.146575",
        actual="w1: -0.444724; b1: -0.611964",
        inputs="x = 0.73; w1 = -0.05",
        details=(GradientTable(rows, 1e-5, 1e-6),),
    )


def sample_result(
    evil: str = "", sandbox: str = "bubblewrap", solutions: bool = True
) -> GradeResult:
    """A result touching every kind of detail; ``evil`` is put into every student string."""
    e = evil
    q5 = QuestionResult(
        "5",
        "code",
        "backward(x, y, ...)",
        2.0,
        4.0,
        (gradient_check(),),
        answer_source="the cell that defines `backward`",
        answer_cell=2,
    )
    array = CheckResult(
        name="backward_batch matches the reference",
        question="6",
        description="",
        score=0.0,
        max_score=2.0,
        outcome=Outcome.ERROR,
        message=f"your code raised ValueError{e}",
        traceback=f'File "<cell 3>", line 4, in backward_batch\nValueError: shapes{e}',
        inputs=f"X of shape (8, 3), seed 7{e}",
        details=(
            ArrayDiff("W1", (3, 4), (4, 3)),
            ArrayDiff("b1", (4,), (4,), 0.25, 0.5, (2,), 0.5, 0.25, 1e-7, 1e-12),
            TextNote(f"read from cell 3{e}"),
        ),
    )
    q6 = QuestionResult("6", "code", "backward_batch", 0.0, 2.0, (array,), answer_cell=2)
    math = CheckResult(
        name="∂L/∂b2",
        question="2",
        description="",
        score=1.0,
        max_score=1.0,
        outcome=Outcome.PASSED,
        details=(MathAnswer("∂L/∂b2", f"a2 - y{e}", f"a2 - y{e}", MATHML, MATHML),),
    )
    steps = CheckResult(
        name="derivation",
        question="2",
        description="",
        score=0.0,
        max_score=1.0,
        outcome=Outcome.FAILED,
        message="step 2 is not valid",
        details=(
            DerivationStep(0, "J = (y - Xb)^2", "J = (y - X*b)**2", "ok", "", MATHML),
            DerivationStep(
                1,
                f"dJ = X(y - Xb){e}",
                "dJ = X*(y - X*b)",
                "invalid",
                f"an n×n matrix where a scalar belongs{e}",
                f"<math>{e}</math>",
            ),
        ),
    )
    q2 = QuestionResult(
        "2",
        "symbolic",
        "The gradients",
        1.0,
        2.0,
        (math, steps),
        answer_source="the markdown cell labelled 'Answer 2'",
        answer_cell=1,
    )
    rubric = CheckResult(
        name="answer 1 against the rubric",
        question="1",
        description="",
        score=1.2,
        max_score=2.0,
        outcome=Outcome.UNDECIDED,
        message="low confidence",
        details=(
            RubricMatch(
                "reuse",
                "reuses the upstream gradient",
                True,
                0.7,
                0.7,
                f"we reuse the error term{e}",
                0.55,
            ),
            RubricMatch("passes", "one forward and one backward pass", False, 0.0, 0.7),
        ),
    )
    q1 = QuestionResult(
        "1", "text", f"Why is backprop efficient?{e}", 1.2, 2.0, (rubric,), answer_cell=1
    )
    q3 = QuestionResult("3", "text", "Unchecked", 0.0, 2.0, (), unchecked_points=2.0)
    return GradeResult(
        assignment="backprop",
        submission=f"alice.ipynb{e}",
        sandbox=sandbox,
        questions=(q1, q2, q3, q5, q6),
        duration_s=1.25,
        cells=(CellRun(2, False, "NameError", f"name 'np' is not defined{e}", "Traceback"),),
        solutions_available=solutions,
    )


def hostile_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            f"# Answers\n\n{EVIL}\n\n![remote](http://example.com/x.png)"
            " [click](javascript:alert(1))"
        ),
        nbformat.v4.new_markdown_cell("**Answer 2**: $\\partial L / \\partial b_2 = a_2 - y$"),
        nbformat.v4.new_code_cell("import numpy as np\ndef backward(x):\n    return x < 2\n"),
    ]
    nb.cells[2].outputs = [
        nbformat.v4.new_output("display_data", data={"text/html": EVIL, "text/plain": "DF"}),
        nbformat.v4.new_output("display_data", data={"application/javascript": "alert(1)"}),
        nbformat.v4.new_output("display_data", data={"image/svg+xml": f"<svg>{EVIL}</svg>"}),
        nbformat.v4.new_output(
            "display_data",
            data={"image/png": "iVBORw0KGgo="},
            metadata={"filenames": {"image/png": "http://example.com/a"}},
        ),
        nbformat.v4.new_output("stream", name="stdout", text=f"printed {EVIL}"),
        nbformat.v4.new_output("error", ename="E", evalue=EVIL, traceback=[EVIL]),
    ]
    path.write_text(nbformat.writes(nb), encoding="utf-8")
    return path


class Tags(html.parser.HTMLParser):
    """Every start tag and its attributes, as the browser would parse them."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def assert_inert(page: str) -> None:
    """No script, no event handler, no remote resource, no frame or style from anyone."""
    for tag, attrs in Tags(page).tags:
        assert tag not in {
            "script",
            "iframe",
            "object",
            "embed",
            "link",
            "base",
            "form",
            "frame",
        }, tag
        assert not any(a.startswith("on") for a in attrs), (tag, attrs)
        src = attrs.get("src")
        assert src is None or src.startswith("data:image/"), (tag, src)
        href = attrs.get("href") or ""
        assert not href.lower().startswith(("javascript:", "data:")), href
        if tag == "meta":
            assert attrs.get("http-equiv") in (None, "Content-Security-Policy")


@pytest.fixture(scope="module")
def notebook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hostile_notebook(tmp_path_factory.mktemp("nb") / "alice.ipynb")


def test_every_student_string_is_escaped(notebook: Path) -> None:
    page = render_report(sample_result(EVIL), read_submission(notebook), None)
    assert "<script" not in page.lower()
    assert "<img src=x" not in page
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in page
    assert_inert(page)


def test_report_top_lists_total_questions_review_and_sandbox() -> None:
    page = render_report(sample_result(sandbox="process", solutions=False), None, None)
    text = " ".join(page.split())
    assert '4.2 <span class="of">/ 12 points' in text
    assert "Needs review:" in text and 'href="#q-1"' in text
    assert "Weaker sandbox:" in text
    assert "2 points could not be checked here" in text
    assert "reference solutions are not installed" in text
    good = " ".join(render_report(sample_result(), None, None).split())
    assert "Weaker sandbox" not in good and "bubblewrap sandbox" in good


def test_gradient_report_says_which_gradient_is_wrong_by_how_much_and_why() -> None:
    page = render_report(sample_result(), None, None)
    text = " ".join(page.split())
    assert (
        "<strong>w1</strong> (yours -0.444724, finite differences -0.106518, "
        "relative error 0.61; yours is 4.18 × the correct value)" in text
    )
    assert "<strong>b1</strong>" in text and "<strong>w2</strong>" not in text
    assert "check σ′(z1) = a1(1 − a1)" in text
    assert text.count("<svg") == 1 and "tolerance 1e-05" in text


def test_array_math_derivation_and_rubric_details() -> None:
    text = " ".join(render_report(sample_result(), None, None).split())
    assert "<code>(3, 4)</code>" in text and "<code>(4, 3)</code>" in text
    assert "at index <code>[2]</code>" in text and "expected 0.5, yours 0.25" in text
    assert text.count(MATHML) >= 3  # the answer, the expected form, the first step
    evil = " ".join(render_report(sample_result(EVIL), None, None).split())
    # A step whose MathML is not trusted is shown as the grader's plain reading instead.
    assert '<span class="mark bad" title="invalid">✗</span> <code>dJ = X*(y - X*b)</code>' in evil
    assert "an n×n matrix where a scalar belongs" in text
    assert "✗" in text and "provisional" in text and "confidence 55%" in text
    assert "“we reuse the error term”" in text
    assert "NameError" in text and "name &#39;np&#39; is not defined" in text


def test_questions_link_to_the_cell_holding_the_answer(notebook: Path) -> None:
    page = render_report(sample_result(), read_submission(notebook), None)
    assert 'href="#cell-2"' in page and 'href="#cell-1"' in page
    ids = [a.get("id") for _, a in Tags(page).tags if (a.get("id") or "").startswith("cell-")]
    assert ids == ["cell-0", "cell-1", "cell-2"]
    assert "When the grader ran this cell it raised NameError" in page
    assert render_report(sample_result(), None, None).count('href="#cell-') == 0


def test_notebook_outputs_are_reduced_to_safe_kinds(notebook: Path) -> None:
    cells = str(render_cells(read_submission(notebook)))
    assert "[image: remote]" in cells and "http://example.com" not in cells
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in cells
    assert "<pre>DF</pre>" in cells and "printed &lt;script&gt;" in cells
    assert "alert(1)" not in cells.replace("&lt;img src=x onerror=alert(1)&gt;", "")
    assert_inert(cells)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.sampled_from(
            [
                "<script>x()</script>",
                "<img src=http://e/x onerror=f()>",
                "<svg onload=f()>",
                "<math>",
                "<iframe src=//e>",
                "<style>*{}</style>",
                "<a href='javascript:f()'>a</a>",
                "![i](http://e)",
                "[l](data:text/html,x)",
                "`<b>`",
                "$x<y$",
                "<!-- c -->",
                "<div onclick=f()>",
                "\n\n",
                "<",
                ">",
                "&",
                '"',
                "'",
                "**b**",
                "# h",
                "<base href=//e>",
                "<link rel=x href=//e>",
                "<form action=//e>",
                "<object data=//e>",
                "<meta http-equiv=refresh content=0>",
            ]
        ),
        max_size=8,
    ),
    st.text(max_size=20),
)
def test_any_markdown_renders_inert(tmp_path: Path, parts: list[str], noise: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("".join(parts) + noise)]
    path = tmp_path / "nb.ipynb"
    path.write_text(nbformat.writes(nb), encoding="utf-8")
    assert_inert(str(render_cells(read_submission(path))))


def test_neutralise_turns_active_tags_into_text() -> None:
    assert (
        neutralise("<p>a</p><SCRIPT>x</script><iframe>")
        == "<p>a</p>&lt;SCRIPT>x&lt;/script>&lt;iframe>"
    )


@settings(max_examples=200, derandomize=True)
@given(st.text(alphabet=st.sampled_from(list("<>/=\"' mathiscrpon:-xlk")), max_size=60))
def test_safe_mathml_accepts_only_known_markup(text: str) -> None:
    wrapped = f"<math>{text}</math>"
    marked = safe_mathml(wrapped)
    if marked is not None:
        low = str(marked).lower()
        assert "<script" not in low and "onload" not in low and "href" not in low
        assert_inert(str(marked))


def test_safe_mathml_examples() -> None:
    assert safe_mathml(MATHML) == MATHML
    assert safe_mathml("<mrow><mi>x</mi></mrow>") is None
    assert safe_mathml("<math><mi>x</mi><script>f()</script></math>") is None
    assert safe_mathml('<math><mi onmouseover="f()">x</mi></math>') is None
    assert safe_mathml("<math><annotation-xml><img src=x></annotation-xml></math>") is None
    assert safe_mathml("<math><mtext><img src=x></mtext></math>") is None
    assert safe_mathml(None) is None


def test_charts_escape_labels_and_mark_the_tolerance() -> None:
    rows = (
        GradientRow("<b>", 1.0, 2.0, 0.33, False),
        GradientRow("ok", 1.0, 1.0, 0.0, True),
        GradientRow("nan", 1.0, 1.0, float("nan"), False),
    )
    svg = str(gradient_chart(rows, 1e-5))
    assert "&lt;b&gt;" in svg and "<b>" not in svg and "tolerance 1e-05" in svg
    assert svg.count("<rect") == 3 and "NaN" in svg
    hist = str(histogram([0, 5, 10, 10], 10, bins=5))
    assert hist.count("<rect") == 5 and "Histogram of 4 scores: 1, 0, 1, 0, 2" in hist


def test_stored_result_renders_like_the_live_one(notebook: Path) -> None:
    result = sample_result(EVIL)
    sub = read_submission(notebook)
    again = GradeResult.from_json(json.loads(json.dumps(result.to_json())))
    assert render_report(again, sub, None) == render_report(result, sub, None)


def test_rendering_is_fast_once_warm(notebook: Path) -> None:
    result, sub = sample_result(), read_submission(notebook)
    render_report(result, sub, None)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        render_report(result, sub, None)
        times.append(time.perf_counter() - started)
    assert sorted(times)[1] < 0.15


CORRECT = """__assignment__ = "backprop"
import numpy as np

def sigmoid(z):
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))

def forward(x, w1, b1, w2, b2):
    a1 = sigmoid(w1 * np.asarray(x) + b1)
    return a1, sigmoid(w2 * a1 + b2)

def backward(x, y, w1, b1, w2, b2):
    a1, a2 = forward(x, w1, b1, w2, b2)
    d2 = a2 - y
    d1 = d2 * w2 * a1 * (1 - a1)
    return {"w1": d1 * x, "b1": d1, "w2": d2 * a1, "b2": d2}
"""


@pytest.mark.slow
def test_missing_backprop_factor_is_explained_in_the_real_report(tmp_path: Path) -> None:
    from grader.grading import GradeOptions, grade_path

    path = tmp_path / "missing_factor.py"
    path.write_text(CORRECT.replace("d2 * w2 * a1 * (1 - a1)", "d2 * w2"), encoding="utf-8")
    result, sub, assignment = grade_path(path, GradeOptions(questions=("5",)))
    page = render_report(result, sub, assignment)
    text = " ".join(page.split())
    assert '<strong class="bad">Wrong:</strong> <strong>w1</strong>' in text
    assert "<strong>b1</strong>" in text and "<strong>w2</strong> (" not in text
    assert "relative error 0.6" in text or "relative error 0.5" in text
    assert "× the correct value" in text
    assert "σ′(z1)" in text  # why: the derivative of the sigmoid is missing
    assert 'href="#cell-0"' in text and 'id="cell-0"' in text
