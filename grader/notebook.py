"""Checking one question from inside a running Jupyter notebook: ``check("5")``.

Runs in the student's kernel, never in the sandbox. ``check`` gathers the kernel's current
definitions (the source of the functions and classes the notebook defined, its imports, plain
values), adds the markdown cells of the saved notebook when it can find the file (text and
maths answers live there), writes them as a temporary notebook and grades that question with
the public checks in a separate ``grade`` process, so the kernel never imports pytest or the
checks and nothing of the kernel's state is shared with the grader but source text and literal
values. The result is shown inline as a compact table.
"""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .kernel_source import live_source
from .results import GradeResult, Outcome, QuestionResult

__all__ = ["CheckReport", "check", "find_notebook", "live_source"]


@dataclass(frozen=True)
class CheckReport:
    """What ``check`` shows: the graded question, or why it could not be checked."""

    question: str
    result: GradeResult | None = None
    error: str = ""
    notes: tuple[str, ...] = ()

    @property
    def graded(self) -> QuestionResult | None:
        if self.result is None:
            return None
        try:
            return self.result.question(self.question)
        except KeyError:
            return None

    @property
    def passed(self) -> bool:
        """True when every check that could run here passed."""
        q = self.graded
        return q is not None and all(
            c.outcome is Outcome.PASSED for c in q.checks if c.outcome is not Outcome.SKIPPED
        )

    def lines(self) -> list[str]:
        q = self.graded
        if q is None:
            return [
                f"Question {self.question}: not checked — {self.error or 'no result'}",
                *(f"  note: {n}" for n in self.notes),
            ]
        checked = q.max_score - q.unchecked_points
        out = [f"Question {q.id} ({q.title}): {q.score:g} / {checked:g} points checked here"]
        for c in q.checks:
            if c.outcome is Outcome.SKIPPED:
                continue
            line = f"  {c.outcome.symbol} {c.name} ({c.score:g}/{c.max_score:g})"
            if c.outcome is not Outcome.PASSED and c.message:
                line += f": {c.message.splitlines()[0]}"
            out.append(line)
            if c.outcome is not Outcome.PASSED and c.hint:
                out.append(f"      hint: {c.hint}")
        if q.unchecked_points:
            out.append(f"  – {q.unchecked_points:g} more points are checked by your instructor")
        broken = [c for c in self.result.cells if not c.ok] if self.result else []
        out += [f"  a cell failed: {c.error_type}: {c.error_message}"[:200] for c in broken[:3]]
        out += [f"  note: {n}" for n in self.notes]
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        q = self.graded
        esc = html.escape
        if q is None:
            body = f"<b>Question {esc(self.question)}</b>: not checked — {esc(self.error)}"
            return f"<div class='grader-check'>{body}{self._notes_html()}</div>"
        checked = q.max_score - q.unchecked_points
        colour = "#1a7f37" if self.passed else "#cf222e"
        rows = []
        for c in q.checks:
            if c.outcome is Outcome.SKIPPED:
                continue
            detail = (
                ""
                if c.outcome is Outcome.PASSED
                else esc(c.message.splitlines()[0] if c.message else "")
            )
            if c.outcome is not Outcome.PASSED and c.hint:
                detail += f"<br><i>hint: {esc(c.hint)}</i>"
            rows.append(
                f"<tr><td>{esc(c.outcome.symbol)}</td><td>{esc(c.name)}</td>"
                f"<td>{c.score:g}/{c.max_score:g}</td><td>{detail}</td></tr>"
            )
        extra = (
            f"<div>{q.unchecked_points:g} more points are checked by your instructor.</div>"
            if q.unchecked_points
            else ""
        )
        return (
            f"<div class='grader-check'><b style='color:{colour}'>Question {esc(q.id)}: "
            f"{q.score:g} / {checked:g} points</b> {esc(q.title)}"
            f"<table>{''.join(rows)}</table>{extra}{self._notes_html()}</div>"
        )

    def _notes_html(self) -> str:
        if not self.notes:
            return ""
        items = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return f"<ul style='color:#57606a'>{items}</ul>"


# --- finding the notebook ---------------------------------------------------------------------


def find_notebook(namespace: Mapping[str, Any]) -> Path | None:
    """The saved notebook of this kernel, if the front end tells us (VS Code, Jupyter ≥ 2)."""
    for candidate in (
        namespace.get("__session__"),
        os.environ.get("JPY_SESSION_NAME"),
        namespace.get("__vsc_ipynb_file__"),
    ):
        if isinstance(candidate, str) and candidate.endswith(".ipynb"):
            # Front ends may give the path relative to the server's root, while the kernel
            # runs in the notebook's own folder: try both.
            for path in (Path(candidate), Path.cwd() / Path(candidate).name):
                if path.is_file():
                    return path
    return None


# --- the kernel's definitions as source -------------------------------------------------------


# --- the check itself -------------------------------------------------------------------------


def _course_for(notebook: Path | None) -> Path | None:
    start = notebook.resolve().parent if notebook is not None else Path.cwd()
    for folder in (start, *start.parents):
        if (folder / "assignments").is_dir():
            return folder
    return None


def _saved_notebook(path: Path) -> dict[str, Any] | None:
    """The saved notebook as JSON, or None when it cannot be read (grade the live code alone)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("cells"), list) else None


def _text(source: Any) -> str:
    return "".join(map(str, source)) if isinstance(source, list) else str(source)


def build_notebook(code: str, notebook: Path | None, assignment: str | None) -> dict[str, Any]:
    """A notebook (nbformat 4 JSON) of the live code plus the saved notebook's markdown cells."""
    cells: list[dict[str, Any]] = [
        {
            "cell_type": "code",
            "id": "live-code",
            "metadata": {},
            "source": code,
            "execution_count": None,
            "outputs": [],
        }
    ]
    metadata: dict[str, Any] = {}
    saved = _saved_notebook(notebook) if notebook is not None else None
    if saved is not None:
        grader_meta = (saved.get("metadata") or {}).get("grader") or {}
        if assignment is None and isinstance(grader_meta.get("assignment"), str):
            assignment = grader_meta["assignment"]
        for i, cell in enumerate(saved["cells"]):
            if isinstance(cell, dict) and cell.get("cell_type") == "markdown":
                tags = (cell.get("metadata") or {}).get("tags") or []
                cells.append(
                    {
                        "cell_type": "markdown",
                        "id": f"saved-{i}",
                        "metadata": {"tags": [str(t) for t in tags]},
                        "source": _text(cell.get("source", "")),
                    }
                )
    if assignment:
        metadata["grader"] = {"assignment": assignment}
    return {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}


def _notebook_wording(message: str, question: str) -> str:
    """A ``grade`` error as a notebook user acts on it: ``check``'s arguments, not options."""
    message = message.removeprefix("grade: error: ")
    for option, argument in (("--assignment ID", "assignment"), ("--course DIR", "course")):
        message = message.replace(
            f"pass {option}", f'call check({question!r}, {argument}="{option.split()[1]}")'
        )
    return message


def check(
    question: str,
    *,
    path: str | Path | None = None,
    assignment: str | None = None,
    course: str | Path | None = None,
    namespace: Mapping[str, Any] | None = None,
    live: bool = True,
    public_only: bool = True,
    timeout: float = 120.0,
) -> CheckReport:
    """Run question ``question``'s public checks against this notebook, and show the result.

    By default the kernel's current definitions are checked (no need to save first), together
    with the markdown answers of the saved notebook, found from the front end or ``path``.
    ``live=False`` grades the saved file exactly as it is.
    """
    if namespace is None:
        namespace = sys._getframe(1).f_globals
    question = str(question)
    notebook = Path(path) if path is not None else find_notebook(namespace)
    notes: list[str] = []
    if notebook is None:
        notes.append(
            "the notebook file was not found (pass path=...), so markdown answers were not included"
        )
    aid = assignment or (
        namespace.get("__assignment__")
        if isinstance(namespace.get("__assignment__"), str)
        else None
    )
    with tempfile.TemporaryDirectory(prefix="grader-check-") as tmp:
        if live:
            code, skipped = live_source(namespace)
            notes += skipped
            nb = build_notebook(code, notebook, aid)
            target = Path(tmp) / ((notebook.stem if notebook else "notebook") + ".ipynb")
            target.write_text(json.dumps(nb, indent=1), encoding="utf-8")
        elif notebook is not None:
            target = notebook
        else:
            return CheckReport(question, error="live=False needs the notebook file (path=...)")
        argv = [
            sys.executable,
            "-m",
            "grader.cli",
            str(target),
            "-q",
            question,
            "--format",
            "json",
            "--no-report",
        ]
        if aid:
            argv += ["--assignment", aid]
        found = Path(course) if course is not None else _course_for(notebook)
        if found is not None:
            argv += ["--course", str(found)]
        if public_only:
            argv.append("--no-solutions")
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=str(notebook.resolve().parent) if notebook else None,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return CheckReport(
                question, error=f"the check took longer than {timeout:g} s", notes=tuple(notes)
            )
    if done.returncode not in (0, 1):
        message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "unknown"
        return CheckReport(question, error=_notebook_wording(message, question), notes=tuple(notes))
    try:
        result = GradeResult.from_json(json.loads(done.stdout))
    except (ValueError, KeyError, TypeError) as exc:
        return CheckReport(
            question, error=f"the grader's answer could not be read ({exc})", notes=tuple(notes)
        )
    return CheckReport(question, result=result, notes=tuple(notes))
