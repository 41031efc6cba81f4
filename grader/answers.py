"""Finding the answers to non-code questions: variable, tagged cell, or labelled cell.

Runs in the trusted parent. Variable values come from the sandbox as data (SymPy values as
text, never as objects); markdown answers come from the submission's text. The first source
found wins and is remembered, so the report can say where each answer was read from.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from .assignment import Assignment
from .errors import CheckProblem
from .remote import SubmissionProxy
from .sandbox.wire import Tagged
from .submission import Submission, find_markdown_answer


@dataclass(frozen=True)
class Answer:
    """One answer as the grader found it. ``text`` is what the maths/text readers take."""

    qid: str
    text: str
    source: str
    cell: int | None
    steps: tuple[str, ...] = ()  # a derivation given as a list of strings
    from_sympy: bool = False


class Answers:
    """Looks answers up lazily and remembers where each was found."""

    def __init__(
        self, proxy: SubmissionProxy | None, submission: Submission, assignment: Assignment
    ) -> None:
        self._proxy = proxy
        self._submission = submission
        self._assignment = assignment
        self._cache: dict[str, Answer | None] = {}
        self.sources: dict[str, tuple[str, int | None]] = {}
        # Variables the submission defines whose value the sandbox could not give, and why.
        self.problems: dict[str, str] = {}
        self._defined = submission.defined_names()

    def _placeholder(self, text: str) -> bool:
        stripped = text.strip().strip("$").strip()
        if not stripped:
            return True
        lowered = stripped.lower()
        # A long placeholder left at the start ("YOUR ANSWER HERE (2 points)") still counts;
        # a short one ("...", "TODO") only on its own, or a real answer starting "... so"
        # would be thrown away.
        return any(
            lowered == p.lower() or (len(p) >= 8 and lowered.startswith(p.lower() + " "))
            for p in self._assignment.placeholders
            if p.strip()
        )

    def variable(self, name: str, qid: str | None = None) -> Answer | None:
        """A module-level variable (e.g. ``answer_2`` or ``dL_dw1``) as an Answer, if given."""
        if name in self._cache:
            return self._cache[name]
        answer = None
        if self._proxy is not None and name in self._defined:
            source = f"the variable `{name}`"
            try:
                value = self._proxy.get(name)
            except CheckProblem as exc:
                # The code could not run to give the value (it crashed, hung or ran out of
                # memory): an answer written as a literal is still the student's answer.
                value = literal_assigned(self._submission, name)
                if value is None:
                    self.problems[name] = exc.message
                else:
                    source += " (read from its cell: your code stopped before giving its value)"
            answer = self._from_value(qid or name, value, source, self._defined.get(name))
        self._cache[name] = answer
        return answer

    def _from_value(self, qid: str, value: Any, source: str, cell: int | None) -> Answer | None:
        if value is None:
            return None
        if isinstance(value, Tagged) and value.kind == "sym":
            return Answer(qid, value.text, source, cell, from_sympy=True)
        if isinstance(value, str):
            return None if self._placeholder(value) else Answer(qid, value, source, cell)
        if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
            steps = tuple(v for v in value if v.strip())
            if not steps or all(self._placeholder(s) for s in steps):
                return None
            return Answer(qid, "\n".join(steps), source, cell, steps=steps)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return Answer(qid, repr(value), source, cell)
        return None

    def get(self, qid: str) -> Answer | None:
        """The answer to question ``qid``: variable ``answer_Q``, tagged cell, labelled cell."""
        key = f"#{qid}"
        if key in self._cache:
            return self._cache[key]
        answer = self.variable(f"answer_{qid}", qid)
        if answer is None:
            md = find_markdown_answer(self._submission.cells, qid)
            if md is not None and not self._placeholder(md.text):
                answer = Answer(qid, md.text, md.source, md.cell)
        self._cache[key] = answer
        if answer is not None:
            self.sources[qid] = (answer.source, answer.cell)
        return answer

    def note_source(self, qid: str, source: str, cell: int | None) -> None:
        self.sources.setdefault(qid, (source, cell))


def literal_assigned(submission: Submission, name: str) -> Any:
    """The value of ``name`` when it is only ever bound by top-level assignments of literals
    (the last one wins), read from the code without running it; None otherwise.

    Any other binding anywhere (``+=``, unpacking, ``for``, ``with``, ``:=``, an import, a
    ``def``, an assignment inside a block or function, ``global``) means only running the code
    could tell the value.
    """
    value: Any = None
    for cell in submission.code_cells:
        try:
            tree = ast.parse(cell.code)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        plain: list[ast.Name] = []  # the targets of top-level `name = literal` statements
        for node in tree.body:
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                named = [t for t in targets if isinstance(t, ast.Name) and t.id == name]
                if not named or node.value is None:
                    continue
                try:
                    value = ast.literal_eval(node.value)
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    return None
                plain += named
        try:
            bindings = [n for n in ast.walk(tree) if _binds(n, name)]
        except RecursionError:
            return None
        if any(not any(b is t for t in plain) for b in bindings):
            return None
    return value


def _binds(node: ast.AST, name: str) -> bool:
    if isinstance(node, ast.Name):
        return node.id == name and not isinstance(node.ctx, ast.Load)
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return node.name == name
    if isinstance(node, ast.alias):
        return (node.asname or node.name.split(".")[0]) == name
    if isinstance(node, ast.Global | ast.Nonlocal):
        return name in node.names
    if isinstance(node, ast.ExceptHandler):
        return node.name == name
    if isinstance(node, ast.MatchAs | ast.MatchStar):
        return node.name == name
    return False
