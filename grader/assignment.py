"""Loading an assignment: its spec (questions, points, kinds, symbols, rubrics) and its checks.

Runs in the trusted parent. An assignment lives in ``assignments/<id>/`` (public: ``spec.toml``,
the template notebook, ``checks/``) and optionally ``solutions/<id>/`` (private: ``reference.py``,
``answers.toml``, ``checks/``, ``mutants/``). Specs are validated when loaded; every error names
the file and quotes the offending value.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SpecError, UsageError
from .memo import Memo

KINDS = ("code", "symbolic", "derivation", "text")
SPEC_FILE = "spec.toml"
DEFAULT_PLACEHOLDERS = ("YOUR ANSWER HERE", "TODO", "...", "…", "Your answer here")

# The keys a spec may use; any other is a typo that would otherwise be ignored without a word.
SPEC_KEYS = ("id", "title", "symbols", "placeholders", "limits", "questions")
QUESTION_KEYS = ("id", "kind", "points", "title", "text")
# Per kind, what else a question may hold: the derivation settings are read from
# ``Question.extra`` by the standard checks (grader/checks/standard_checks.py).
KIND_KEYS: Mapping[str, tuple[str, ...]] = {
    "code": ("functions",),
    "symbolic": ("answer_names",),
    "derivation": ("start", "variable", "final", "final_points"),
    "text": ("rubric",),
}


@dataclass(frozen=True)
class Question:
    id: str
    kind: str
    points: float
    title: str
    text: str = ""
    functions: tuple[str, ...] = ()
    answer_names: tuple[str, ...] = ()
    rubric: tuple[Mapping[str, Any], ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def answer_variable(self) -> str:
        return f"answer_{self.id}"


@dataclass(frozen=True)
class Assignment:
    id: str
    title: str
    questions: tuple[Question, ...]
    public_dir: Path
    private_dir: Path | None
    symbols: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    placeholders: tuple[str, ...] = DEFAULT_PLACEHOLDERS
    limits: Mapping[str, Any] = field(default_factory=dict)
    spec_path: Path = Path()

    @property
    def max_score(self) -> float:
        return sum(q.points for q in self.questions)

    @property
    def has_solutions(self) -> bool:
        return self.private_dir is not None

    def question(self, qid: str) -> Question:
        for q in self.questions:
            if q.id == qid:
                return q
        known = ", ".join(q.id for q in self.questions)
        raise UsageError(f"assignment {self.id!r} has no question {qid!r} (it has {known})")

    @property
    def functions(self) -> frozenset[str]:
        return frozenset(f for q in self.questions for f in q.functions)

    def check_files(self) -> list[Path]:
        dirs = [self.public_dir / "checks"]
        if self.private_dir is not None:
            dirs.append(self.private_dir / "checks")
        files: list[Path] = []
        for d in dirs:
            if d.is_dir():
                files += sorted(p for p in d.glob("check_*.py"))
        return files

    def uses_hypothesis(self) -> bool:
        """Whether a check file uses Hypothesis (which costs half a second to import)."""
        return any(
            "hypothesis" in p.read_text(encoding="utf-8", errors="replace")
            for p in self.check_files()
        )

    def reference_path(self) -> Path | None:
        if self.private_dir is None:
            return None
        path = self.private_dir / "reference.py"
        return path if path.is_file() else None

    def answers_path(self) -> Path | None:
        if self.private_dir is None:
            return None
        path = self.private_dir / "answers.toml"
        return path if path.is_file() else None

    def template_path(self) -> Path:
        return self.public_dir / "template.ipynb"


# --- course folder ------------------------------------------------------------------------------


def find_course_dir(explicit: str | Path | None = None) -> Path:
    """The folder holding ``assignments/`` (and maybe ``solutions/``), as an absolute path.

    Resolved here, once: every path built from it (specs, check files) is then absolute, and
    pytest's rootdir (the common folder of the check files and the grader's own) can be found.
    """
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    env = os.environ.get("GRADER_COURSE_DIR")
    if env:
        candidates.append(Path(env))
    if not explicit and not env:
        here = Path.cwd().resolve()
        candidates += [here, *here.parents]
        candidates.append(Path(__file__).resolve().parent.parent)
    for c in candidates:
        if (c / "assignments").is_dir():
            return c.resolve()
    where = candidates[0] if explicit or env else Path.cwd()
    raise UsageError(
        f"no assignments/ folder found at {where}; run from the course folder or pass --course DIR"
    )


def list_assignments(course: Path) -> list[str]:
    root = course / "assignments"
    return sorted(p.name for p in root.iterdir() if (p / SPEC_FILE).is_file())


def load_assignment(course: Path, assignment_id: str, *, use_solutions: bool = True) -> Assignment:
    # Only the name of one of the course's assignments: an id can be a student's text (a
    # notebook's metadata), and as a path ("../x", "/tmp/x") it would make the parent load
    # check code from any folder.
    known = list_assignments(course)
    if assignment_id not in known:
        raise UsageError(
            f"unknown assignment {assignment_id!r} (known: {', '.join(known) or 'none'})"
        )
    public = course / "assignments" / assignment_id
    spec_path = public / SPEC_FILE
    private = course / "solutions" / assignment_id
    return parse_spec(spec_path, private if use_solutions and private.is_dir() else None)


def parse_spec(spec_path: Path, private_dir: Path | None) -> Assignment:
    """The assignment that ``spec_path`` describes; raises SpecError naming what is wrong.

    The same spec text (with the same folders) gives the same, immutable Assignment again:
    a batch worker resolves each submission's assignment from its spec, and parsing and
    validating it cost more than reading it.
    """
    try:
        text = spec_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{spec_path}: cannot read: {exc}") from exc
    key = (spec_path, private_dir, text)
    parsed = _PARSED.get(key)
    if parsed is None:
        parsed = _PARSED.put(key, _parse_spec_text(spec_path, private_dir, text))
    return parsed


_PARSED: Memo[tuple[Path, Path | None, str], Assignment] = Memo(64)


def _parse_spec_text(spec_path: Path, private_dir: Path | None, text: str) -> Assignment:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{spec_path}: invalid TOML: {exc}") from exc
    where = str(spec_path)
    lines = _SpecLines(text)
    for key in data:
        if key not in SPEC_KEYS:
            raise SpecError(
                f"{where}{lines.top(key)}: unknown key `{key}`{_did_you_mean(key, SPEC_KEYS)}; "
                f"a spec takes {', '.join(SPEC_KEYS)}"
            )
    aid = _req(data, "id", str, where)
    if aid != spec_path.parent.name:
        raise SpecError(
            f"{where}: id = {aid!r} does not match its folder {spec_path.parent.name!r}"
        )
    questions = []
    seen: set[str] = set()
    for i, q in enumerate(_req(data, "questions", list, where)):
        if not isinstance(q, dict):
            raise SpecError(f"{where}: question number {i + 1} must be a table, got {q!r}")
        _check_question_keys(q, where, lines, i)
        question = _parse_question(q, where, lines, i)
        if question.id in seen:
            line = lines.question(i, "id") or lines.question(i, None)
            raise SpecError(f"{where}{line}: duplicate question id {question.id!r}")
        seen.add(question.id)
        questions.append(question)
    symbols = data.get("symbols", {})
    if not isinstance(symbols, dict):
        raise SpecError(f"{where}: symbols must be a table, got {symbols!r}")
    placeholders = data.get("placeholders", list(DEFAULT_PLACEHOLDERS))
    if not isinstance(placeholders, list) or not all(isinstance(p, str) for p in placeholders):
        raise SpecError(f"{where}: placeholders must be a list of strings, got {placeholders!r}")
    limits = data.get("limits", {})
    _validate_limits(limits, f"{where}{lines.top('limits')}")
    return Assignment(
        id=aid,
        title=str(data.get("title", aid)),
        questions=tuple(questions),
        public_dir=spec_path.parent,
        private_dir=private_dir,
        symbols=symbols,
        placeholders=tuple(placeholders),
        limits=limits,
        spec_path=spec_path,
    )


def _parse_question(q: dict[str, Any], spec: str, lines: _SpecLines, index: int) -> Question:
    """The ``index``-th ``[[questions]]`` table; errors name the question by its id and line."""

    def at(key: str | None) -> str:
        """``spec.toml:LINE: question ID``: the key's line, else the question's first line."""
        line = (lines.question(index, key) if key else "") or lines.question(index, None)
        return f"{spec}{line}: question {qid}"

    qid = q.get("id")
    if not isinstance(qid, str) or not qid or not qid.replace("_", "").isalnum():
        line = lines.question(index, "id") or lines.question(index, None)
        raise SpecError(
            f"{spec}{line}: question number {index + 1}: id must be a short string like "
            f'"2" or "1b", got {qid!r}'
        )
    kind = q.get("kind")
    if kind not in KINDS:
        raise SpecError(f"{at('kind')}: kind = {kind!r} must be one of {KINDS}")
    points = q.get("points")
    if isinstance(points, bool) or not isinstance(points, int | float) or points <= 0:
        raise SpecError(f"{at('points')}: points = {points!r} must be a positive number")
    functions = q.get("functions", [])
    if kind == "code" and not functions:
        raise SpecError(f"{at('functions')}: a code question must list its functions")
    _str_list(functions, f"{at('functions')}: functions")
    names = q.get("answer_names", [])
    _str_list(names, f"{at('answer_names')}: answer_names")
    rubric = q.get("rubric", [])
    if kind == "text" and not rubric:
        raise SpecError(f"{at(None)}: a text question needs a rubric")
    if not isinstance(rubric, list) or not all(isinstance(r, dict) for r in rubric):
        raise SpecError(f"{at('rubric')}: rubric must be a list of tables")
    if kind == "text":
        from .checks.text import Rubric

        parsed = Rubric.from_spec(rubric, where=at(None))
        if abs(parsed.max_points - float(points)) > 1e-9:
            raise SpecError(
                f"{at('points')}: its rubric items add up to "
                f"{parsed.max_points:g} points, the question is worth {points:g}"
            )
    known = {*QUESTION_KEYS, "functions", "answer_names", "rubric"}
    extra = {k: v for k, v in q.items() if k not in known}
    return Question(
        id=qid,
        kind=kind,
        points=float(points),
        title=str(q.get("title", f"Question {qid}")),
        text=str(q.get("text", "")),
        functions=tuple(functions),
        answer_names=tuple(names),
        rubric=tuple(rubric),
        extra=extra,
    )


def _check_question_keys(q: Mapping[str, Any], where: str, lines: _SpecLines, index: int) -> None:
    """Refuse a key the question's kind does not use (a bad kind is reported by its parser)."""
    kind = q.get("kind")
    if not isinstance(kind, str) or kind not in KIND_KEYS:
        return
    allowed = (*QUESTION_KEYS, *KIND_KEYS[kind])
    for key in q:
        if key in allowed:
            continue
        at = f"{where}{lines.question(index, key) or lines.question(index, None)}"
        label = f"question {q.get('id', index + 1)} ({kind})"
        other = [k for k, keys in KIND_KEYS.items() if key in keys]
        if other:
            raise SpecError(
                f"{at}: {label}: `{key}` is for {other[0]} questions; "
                f"a {kind} question takes {', '.join(allowed)}"
            )
        raise SpecError(
            f"{at}: {label}: unknown key `{key}`{_did_you_mean(key, allowed)}; "
            f"a {kind} question takes {', '.join(allowed)}"
        )


def _did_you_mean(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


class _SpecLines:
    """Where a key stands in a spec's text, as ``:LINE`` for messages (empty when not found).

    TOML's reader gives no positions; a spec written as the guide shows it (tables and
    ``[[questions]]`` blocks, one key a line) is searched line by line.
    """

    _HEADER = re.compile(r"^\s*\[\[?\s*([\w.\-\"]+)\s*\]\]?")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def _key_line(self, key: str, start: int, stop: int) -> str:
        pattern = re.compile(rf"^\s*(?:{re.escape(key)}|\"{re.escape(key)}\")\s*=")
        for n in range(start, stop):
            if pattern.match(self.lines[n]):
                return f":{n + 1}"
        return ""

    def _end_of_block(self, start: int) -> int:
        """The line after the block opened at ``start``: up to the next header of another table."""
        for n in range(start + 1, len(self.lines)):
            header = self._HEADER.match(self.lines[n])
            if header and not header.group(1).startswith("questions."):
                return n
        return len(self.lines)

    def top(self, key: str) -> str:
        """The line of a top-level key or table ``[key]``."""
        first_header = next(
            (n for n, line in enumerate(self.lines) if self._HEADER.match(line)), len(self.lines)
        )
        found = self._key_line(key, 0, first_header)
        if found:
            return found
        for n, line in enumerate(self.lines):
            header = self._HEADER.match(line)
            if header and header.group(1).split(".")[0].strip('"') == key:
                return f":{n + 1}"
        return ""

    def question(self, index: int, key: str | None) -> str:
        """The line of ``key`` in the ``index``-th ``[[questions]]`` block (its header: None)."""
        headers = [
            n
            for n, line in enumerate(self.lines)
            if (m := self._HEADER.match(line)) and m.group(1) == "questions"
        ]
        if index >= len(headers):
            return ""
        start = headers[index]
        if key is None:
            return f":{start + 1}"
        return self._key_line(key, start + 1, self._end_of_block(start))


def _req(data: Mapping[str, Any], key: str, typ: type, where: str) -> Any:
    value = data.get(key)
    if not isinstance(value, typ):
        raise SpecError(f"{where}: `{key}` must be a {typ.__name__}, got {value!r}")
    return value


def _str_list(value: Any, where: str) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SpecError(f"{where} must be a list of names, got {value!r}")


_LIMIT_KEYS = {
    "call_timeout": (0.1, 300),
    "cell_timeout": (0.1, 600),
    "memory_mb": (64, 16384),
    "total_timeout": (1, 3600),
    "cpu_seconds": (1, 3600),
}


def _validate_limits(limits: Any, where: str) -> None:
    if not isinstance(limits, dict):
        raise SpecError(f"{where}: limits must be a table, got {limits!r}")
    for key, value in limits.items():
        if key == "allow_fork":
            if not isinstance(value, bool):
                raise SpecError(f"{where}: limits.allow_fork = {value!r} must be true or false")
            continue
        if key not in _LIMIT_KEYS:
            known = sorted([*_LIMIT_KEYS, "allow_fork"])
            raise SpecError(f"{where}: unknown limit {key!r} (known: {known})")
        lo, hi = _LIMIT_KEYS[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            raise SpecError(f"{where}: limits.{key} = {value!r} must be between {lo} and {hi}")


def infer_assignment(course: Path, defined: Sequence[str]) -> str:
    """Guess the assignment from the function names a submission defines."""
    names = set(defined)
    scores = []
    for aid in list_assignments(course):
        spec = load_assignment(course, aid, use_solutions=False)
        funcs = spec.functions
        if funcs:
            scores.append((len(names & funcs) / len(funcs), aid))
    scores.sort(reverse=True)
    if scores and scores[0][0] >= 0.5 and (len(scores) == 1 or scores[1][0] < scores[0][0]):
        return scores[0][1]
    candidates = ", ".join(aid for _, aid in scores) or "none"
    raise UsageError(
        "cannot tell which assignment this submission is for (no metadata.grader.assignment or "
        f"__assignment__); pass --assignment ID (candidates: {candidates})"
    )
