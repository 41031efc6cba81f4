"""Finds the formulas in a markdown answer: display blocks, aligned rows, inline math, lines.

``split_steps`` gives the steps of a derivation (prose that holds no equation is dropped);
``formula_segments`` gives every candidate formula, for answers holding several equations.
Only text is cut here; nothing is read or evaluated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

__all__ = ["formula_segments", "split_steps"]

_DISPLAY = re.compile(
    r"\$\$(?P<a>.+?)\$\$|\\\[(?P<b>.+?)\\\]"
    r"|(?P<c>\\begin\{(?P<env>align\*?|aligned|equation\*?|gather\*?|eqnarray\*?|split)\}"
    r".+?\\end\{(?P=env)\})",
    re.DOTALL,
)
_INLINE = re.compile(r"\$(.+?)\$|\\\((.+?)\\\)", re.DOTALL)
_ENVIRONMENT = re.compile(r"\\(?:begin|end)\{[A-Za-z*]+\}")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)]|\(?[a-z][.)])\s+(.*)$")
_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")
_MATH_WORDS = {
    "exp", "log", "tanh", "sqrt", "sigma", "sigmoid", "beta", "alpha", "lambda", "theta",
    "inv", "transpose", "frac", "cdot", "left", "right", "partial", "nabla", "hat",
}  # fmt: skip


def _rows(block: str) -> list[str]:
    """The rows of a display block: split on ``\\\\``, alignment marks removed."""
    body = _ENVIRONMENT.sub(" ", block)
    rows = re.split(r"\\\\", body)
    return [row.replace("&", " ").strip() for row in rows if row.replace("&", " ").strip()]


# No two quantifiers over the same spaces in a row: "^\s*X?\s*" takes quadratic time to fail
# on a line of many spaces, and the text is the student's.
_LABEL = re.compile(r"^\s*(?:(?:#+|\*\*|__)\s*)?answer\b", re.IGNORECASE)
_IMPLIES = re.compile(
    r"\\(?:Rightarrow|implies|Longrightarrow|iff|Leftrightarrow|Longleftrightarrow)(?![A-Za-z])"
    r"|⇒|⟹|⇔|⟺"
)


def _statements(row: str) -> list[str]:
    """``A = B ⇒ C = D`` is two steps; a part without '=' before ⇒ is only a lead-in."""
    parts = [p.strip() for p in _IMPLIES.split(row)]
    kept = [p for p in parts[:-1] if "=" in p]
    last = parts[-1]
    if not kept:
        return [row.strip()] if row.strip() else []
    return [*kept, last] if last else kept


def _is_prose(text: str) -> bool:
    words = [w for w in _WORD.findall(text) if w.lower() not in _MATH_WORDS]
    return len(words) >= 2


def _has_equation(text: str) -> bool:
    return "=" in text or _IMPLIES.search(text) is not None


def _chunks(markdown: str) -> list[tuple[str, str]]:
    """("display", content) and ("text", line) pieces in reading order."""
    chunks: list[tuple[str, str]] = []
    position = 0
    for match in _DISPLAY.finditer(markdown):
        before = markdown[position : match.start()]
        chunks.extend(("text", line) for line in before.split("\n"))
        content = match.group("a") or match.group("b") or match.group("c") or ""
        chunks.append(("display", content))
        position = match.end()
    chunks.extend(("text", line) for line in markdown[position:].split("\n"))
    return chunks


def _line_steps(line: str, *, inline_only_equations: bool) -> list[str]:
    item = _LIST_ITEM.match(line)
    text = item.group(1) if item else line
    inline = [m.group(1) or m.group(2) for m in _INLINE.finditer(text)]
    if inline:
        outside = _INLINE.sub(" ", text)
        if item and not _is_prose(outside):
            return [text.replace("$", " ").strip()]
        if inline_only_equations:
            return [seg.strip() for seg in inline if _has_equation(seg)]
        return [seg.strip() for seg in inline]
    stripped = text.strip()
    if not stripped or _is_prose(stripped) or _LABEL.match(line) or line.lstrip().startswith("#"):
        return []
    return [stripped]


def split_steps(markdown_or_list: str | Sequence[str]) -> list[str]:
    """The steps of a derivation, in order, as formula text without ``$`` delimiters.

    Each display-math line, each row of an aligned/align block (split on ``\\\\``, ``&``
    removed) and each list item is a step; a prose line whose inline math holds an equation
    gives that equation as a step; other prose is ignored. ``A = B ⇒ C = D`` is two steps.
    A list of strings is taken as given, one step each (rows of an aligned block in an item
    are still split).
    """
    if not isinstance(markdown_or_list, str):
        steps: list[str] = []
        for item in markdown_or_list:
            found = split_steps(item) if "$" in item or "\\begin" in item else [item.strip()]
            steps.extend(s for s in found if s)
        return steps
    steps = []
    for row in _formula_rows(markdown_or_list, inline_only_equations=True):
        steps.extend(_statements(row))
    return steps


def _formula_rows(markdown: str, *, inline_only_equations: bool) -> Iterator[str]:
    """Each row of a display block, and the formulas of each other line, in order."""
    for kind, content in _chunks(markdown):
        if kind == "display":
            yield from _rows(content)
        else:
            yield from _line_steps(content, inline_only_equations=inline_only_equations)


# Between two equations on one line: \quad, \text{and}, "and", ',' or ';' (any run of them).
_SEPARATOR = (
    r"(?:\\qquad|\\quad|\\(?:text|textrm|mbox)\s*\{\s*(?:and|,|;)?\s*\}"
    r"|(?<![\\A-Za-z])and(?![A-Za-z])|(?<!\\)[,;])"
)
# Starts at a separator, never at a space, so that long runs of spaces cost linear time.
_SEPARATORS = re.compile(rf"{_SEPARATOR}(?:\s*{_SEPARATOR})*\s*")
# What a left side naming a derivative starts with: \frac{\partial L}, ∂L/, dL/dw2, dL_dw2, ∇.
_DERIVATIVE_START = re.compile(
    r"\\frac\s*\{\s*(?:\\partial|d)|\\partial|∂|\\nabla|∇"
    r"|d(?:\\mathcal\s*\{?)?[A-Za-z][\w{}\\]*\s*/\s*d|d[A-Za-z]\w*_d"
)


def _depths(text: str) -> list[int]:
    depth, out = 0, []
    for ch in text:
        if ch in ")]}":
            depth -= 1
        out.append(depth)
        if ch in "([{":
            depth += 1
    return out


def _equations(segment: str) -> list[str]:
    """``∂L/∂w2 = … , ∂L/∂b2 = …``: the equations of a line, split where a separator outside
    brackets stands between an equation and another equation whose left side is a derivative."""
    depths = _depths(segment)
    pieces: list[str] = []
    start = 0
    last_equals = segment.rfind("=")
    for match in _SEPARATORS.finditer(segment):
        if (
            depths[match.start()] == 0
            and last_equals >= match.end()
            and _DERIVATIVE_START.match(segment, match.end())
            and segment.find("=", start, match.start()) >= 0
        ):
            pieces.append(segment[start : match.start()].strip())
            start = match.end()
    pieces.append(segment[start:].strip())
    return [p for p in pieces if p]


def formula_segments(markdown: str) -> list[str]:
    """Every candidate formula in ``markdown``: display rows, inline math and plain lines; a
    line holding several derivative equations gives each of them."""
    segments: list[str] = []
    for row in _formula_rows(markdown, inline_only_equations=False):
        segments.extend(_equations(row))
    return segments
