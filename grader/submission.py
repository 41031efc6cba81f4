"""Reading submissions: notebooks (nbformat) and Python modules, cells and markdown answers.

Runs in the trusted parent and never executes anything: code is only read as text (and, to
learn which names a cell defines, parsed with ``ast``). IPython magics and shell lines are
rewritten into plain Python here, with a note, so that the child runs ordinary code.
"""

from __future__ import annotations

import ast
import errno
import functools
import hashlib
import itertools
import json
import os
import re
import stat
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .errors import SubmissionChanged, SubmissionError

MAX_BYTES = 20 << 20
MAX_CELLS = 2000
RUN_BODY_CELL_MAGICS = frozenset({"time", "capture", "timeit", "prun"})


@dataclass(frozen=True)
class Cell:
    """One cell: ``index`` is its position in the notebook (0-based), as in the report."""

    index: int
    kind: str  # "code" | "markdown" | "raw"
    source: str
    tags: tuple[str, ...] = ()
    code: str = ""  # source with magics rewritten (code cells)
    notes: tuple[str, ...] = ()
    filename: str = ""
    first_line: int = 1


@dataclass(frozen=True)
class Submission:
    path: Path
    display: str
    kind: str  # "notebook" | "module"
    cells: tuple[Cell, ...]
    assignment_hint: str | None = None
    notebook: Any = field(default=None, compare=False, repr=False)
    # Question id -> every cell tagged ``answer:Q`` (0-based), where more than one is.
    duplicate_tags: dict[str, tuple[int, ...]] = field(default_factory=dict, compare=False)

    def duplicate_tag_note(self, qid: str) -> str:
        """'cells 5 and 6 are both tagged answer:1' when several are ('' when not)."""
        where = self.duplicate_tags.get(qid.lower(), ())
        if len(where) < 2:
            return ""
        numbers = ", ".join(str(i + 1) for i in where[:-1]) + f" and {where[-1] + 1}"
        both = "both" if len(where) == 2 else "all"
        return f"cells {numbers} are {both} tagged answer:{qid}"

    @property
    def code_cells(self) -> tuple[Cell, ...]:
        return tuple(c for c in self.cells if c.kind == "code")

    @property
    def stem(self) -> str:
        return self.path.stem

    def defined_names(self) -> dict[str, int]:
        """Top-level functions and variables defined by each code cell (name -> cell index)."""
        names: dict[str, int] = {}
        for cell in self.code_cells:
            for name in _names_in(cell.code):
                names.setdefault(name, cell.index)
        return names


class NotARegularFile(OSError):
    """Opened, but a FIFO, a device or a socket: not a file to read."""


def open_regular(path: str | Path, *, follow_links: bool = False) -> BinaryIO:
    """``path`` opened for reading if it is a regular file when opened: never a FIFO or a
    device, which could block the reader for ever, and never through a symbolic link unless
    ``follow_links``. Checked on the open descriptor, so a file swapped since it was listed is
    refused too: ``OSError`` (ELOOP for a link, ``IsADirectoryError`` for a folder,
    ``NotARegularFile`` for anything else)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_links else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "a folder", str(path))
        if not stat.S_ISREG(mode):
            raise NotARegularFile(errno.EINVAL, "not a regular file", str(path))
        os.set_blocking(fd, True)  # opened without blocking only in case it was a FIFO
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_submission(
    path: str | Path,
    *,
    display: str | None = None,
    follow_links: bool = True,
    sha256: str | None = None,
) -> Submission:
    """Read a ``.ipynb`` or ``.py`` file; raise SubmissionError (one clear line) if unreadable.

    Only a regular file is read (a FIFO would block the reader until something writes to it),
    checked on the open file itself, so that a file swapped since it was listed is refused, not
    waited on. ``follow_links=False`` (a batch, which never follows links) refuses a symbolic
    link too. ``sha256`` is the file's hash when a batch listed it: a file whose contents
    changed since (or that a link swapped in above it now points elsewhere) is refused, since
    the batch's record of it would name other contents than those graded.
    """
    p = Path(path)
    shown = display or str(path)
    # A batch listed the file as a regular one: if it is not one now, it changed since.
    swapped = SubmissionChanged if sha256 is not None or not follow_links else SubmissionError
    try:
        f = open_regular(p, follow_links=follow_links)
    except IsADirectoryError:
        raise swapped(
            f"{shown} is a folder, not a submission (use `grade batch` for folders)"
        ) from None
    except NotARegularFile:
        raise swapped(f"{shown} is not a regular file (a pipe or a device?)") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_links:
            raise swapped(f"{shown} is a symbolic link; a batch does not follow links") from None
        raise SubmissionError(f"cannot read {shown}: {exc.strerror or exc}") from exc
    with f:
        try:
            size = os.fstat(f.fileno()).st_size
        except OSError as exc:
            raise SubmissionError(f"cannot read {shown}: {exc.strerror or exc}") from exc
        if size > MAX_BYTES:
            raise SubmissionError(
                f"{shown} is {size / 2**20:.0f} MB, more than the {MAX_BYTES >> 20} MB the "
                "grader accepts; clear the outputs (Kernel → Restart & Clear Output) and save "
                "again"
            )
        try:
            raw = f.read(MAX_BYTES + 1)  # the file may have grown since fstat()
        except OSError as exc:
            raise SubmissionError(f"cannot read {shown}: {exc.strerror or exc}") from exc
    # Before any verdict on the contents: those of a changed file are not the batch's to judge.
    if sha256 is not None and len(raw) <= MAX_BYTES and hashlib.sha256(raw).hexdigest() != sha256:
        raise SubmissionChanged(
            f"{shown} changed while the batch was grading it; run the batch again to grade "
            "the file as it is now"
        )
    if not raw:
        raise SubmissionError(f"{shown} is empty")
    if len(raw) > MAX_BYTES:
        raise SubmissionError(f"{shown} is more than the {MAX_BYTES >> 20} MB the grader accepts")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SubmissionError(f"{shown} is UTF-16 text; save it again as UTF-8")
    if b"\x00" in raw[:8192]:
        raise SubmissionError(f"{shown} is a binary file, not a notebook or Python module")
    raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark some editors add
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SubmissionError(
            f"{shown} is not UTF-8 text (byte {exc.start}); save it again as UTF-8"
        ) from exc
    suffix = p.suffix.lower()
    if suffix == ".ipynb":
        return _read_notebook(p, shown, text)
    if suffix == ".py":
        return _read_module(p, shown, text)
    if text.lstrip().startswith("{"):
        return _read_notebook(p, shown, text)
    raise SubmissionError(f"{shown}: expected a .ipynb notebook or a .py module")


# --- notebooks --------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def check_notebook_json(text: str, shown: str) -> dict[str, Any]:
    """Parse a notebook's JSON and check its outline, with one clear message per problem."""
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise SubmissionError(
            f"{shown} is not a valid notebook: it is not JSON "
            f"(line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise SubmissionError(
            f"{shown} is not a valid notebook: it is not JSON ({reason})"
        ) from exc
    if not isinstance(data, dict):
        raise SubmissionError(
            f"{shown} is not a notebook: its JSON is a {_kind(data)}, not an object"
        )
    version = data.get("nbformat")
    if version is None:
        raise SubmissionError(f"{shown} is not a Jupyter notebook: it has no nbformat version")
    if type(version) is not int:
        raise SubmissionError(
            f"{shown} is not a valid notebook: nbformat is {version!r}, not a whole number"
        )
    if version == 3:
        # Upgraded by nbformat when it is read; only its outline is checked here.
        sheets = data.get("worksheets")
        if not isinstance(sheets, list) or not all(
            isinstance(w, dict) and isinstance(w.get("cells", []), list) for w in sheets
        ):
            raise SubmissionError(
                f"{shown} is not a valid nbformat 3 notebook: 'worksheets' is malformed"
            )
        if sum(len(w.get("cells", [])) for w in sheets) > MAX_CELLS:
            raise SubmissionError(f"{shown} has more than the {MAX_CELLS} cells the grader accepts")
        _check_unicode(data, shown)
        return data
    if version < 3:
        raise SubmissionError(
            f"{shown} is an old nbformat {version} notebook; open it in Jupyter and save it "
            "again (File → Save) to convert it to nbformat 4"
        )
    if version > 4:
        raise SubmissionError(
            f"{shown} is nbformat {version}, newer than the nbformat 4 this grader reads"
        )
    cells = data.get("cells")
    if not isinstance(cells, list):
        raise SubmissionError(
            f"{shown} is not a valid notebook: 'cells' is a {_kind(cells)}, not a list"
        )
    if len(cells) > MAX_CELLS:
        raise SubmissionError(
            f"{shown} has {len(cells)} cells, more than the {MAX_CELLS} the grader accepts"
        )
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict):
            raise SubmissionError(
                f"{shown} is not a valid notebook: cell {i + 1} is a {_kind(cell)}, not an object"
            )
        source = cell.get("source", "")
        if not isinstance(source, str) and not (
            isinstance(source, list) and all(isinstance(x, str) for x in source)
        ):
            raise SubmissionError(
                f"{shown} is not a valid notebook: the source of cell {i + 1} is not text"
            )
    _check_unicode(data, shown)
    return data


def _check_unicode(data: dict[str, Any], shown: str) -> None:
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SubmissionError(
            f"{shown} contains invalid Unicode (a lone surrogate "
            f"{exc.object[exc.start : exc.end]!a}); save it again"
        ) from exc


def _kind(value: Any) -> str:
    names = {
        dict: "object",
        list: "list",
        str: "string",
        int: "number",
        float: "number",
        bool: "boolean",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


def _duplicate_answer_tags(cells: Sequence[Cell]) -> dict[str, tuple[int, ...]]:
    """Question id -> the cells tagged ``answer:Q``, for the questions tagged more than once.

    Not an error: students duplicate cells with their tags, and the first tagged cell wins
    (the report says so).
    """
    tagged: dict[str, list[int]] = {}
    for cell in cells:
        for tag in dict.fromkeys(t.lower() for t in cell.tags):
            if tag.startswith("answer:"):
                tagged.setdefault(tag.removeprefix("answer:"), []).append(cell.index)
    return {qid: tuple(where) for qid, where in tagged.items() if len(where) > 1}


def _read_notebook(path: Path, shown: str, text: str) -> Submission:
    import nbformat
    from nbformat.reader import NotJSONError

    check_notebook_json(text, shown)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # nbformat.reads would also run the JSON-schema validator, which only logs (and
            # takes most of the reading time); the outline was checked above.
            nb = nbformat.convert(nbformat.reader.reads(text), 4)  # type: ignore[no-untyped-call]
    except NotJSONError as exc:
        raise SubmissionError(f"{shown} is not a valid notebook: it is not JSON") from exc
    except Exception as exc:  # nbformat raises many types for broken files; keep the cause
        raise SubmissionError(f"{shown} is not a valid notebook: {_one_line(exc)}") from exc
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise SubmissionError(f"{shown} is not a valid notebook: it has no list of cells")
    if len(nb["cells"]) > MAX_CELLS:
        raise SubmissionError(
            f"{shown} has {len(nb['cells'])} cells, more than the {MAX_CELLS} the grader accepts"
        )
    cells = []
    for i, raw in enumerate(nb["cells"]):
        if not isinstance(raw, dict):
            raise SubmissionError(f"{shown} is not a valid notebook: cell {i} is not an object")
        kind = str(raw.get("cell_type", "code"))
        source = raw.get("source", "")
        if isinstance(source, list):
            source = "".join(str(s) for s in source)
        source = str(source)
        meta = raw.get("metadata") or {}
        tags = meta.get("tags") or [] if isinstance(meta, dict) else []
        tags = tuple(str(t) for t in tags if isinstance(t, str | int))
        if kind == "code":
            code, notes = rewrite_magics(source)
            cells.append(Cell(i, "code", source, tags, code, notes, f"<cell {i + 1}>", 1))
        else:
            cells.append(Cell(i, kind, source, tags))
    hint = None
    meta = nb.get("metadata") or {}
    if isinstance(meta, dict):
        grader_meta = meta.get("grader") or {}
        if isinstance(grader_meta, dict) and isinstance(grader_meta.get("assignment"), str):
            hint = grader_meta["assignment"]
    return Submission(
        path, shown, "notebook", tuple(cells), hint, nb, _duplicate_answer_tags(cells)
    )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


# --- modules ----------------------------------------------------------------------------------

_CELL_MARK = re.compile(r"^# ?%%(?P<rest>.*)$")
_ASSIGNMENT_VAR = re.compile(r"^__assignment__\s*=\s*['\"]([\w.-]+)['\"]", re.MULTILINE)


def _read_module(path: Path, shown: str, text: str) -> Submission:
    lines = text.splitlines(keepends=True)
    cells: list[Cell] = []
    starts = [i for i, line in enumerate(lines) if _CELL_MARK.match(line)]
    if not starts or starts[0] != 0:
        starts = [0, *starts]
    bounds = [*starts, len(lines)]
    for n, (start, end) in enumerate(itertools.pairwise(bounds)):
        chunk = lines[start:end]
        mark = _CELL_MARK.match(chunk[0]) if chunk else None
        body_start = start + 1 if mark else start
        body = "".join(lines[body_start:end])
        if mark and "[markdown]" in mark.group("rest"):
            md = "".join(re.sub(r"^# ?", "", line) for line in lines[body_start:end])
            cells.append(Cell(n, "markdown", md))
            continue
        code, notes = rewrite_magics(body)
        cells.append(Cell(n, "code", body, (), code, notes, shown, body_start + 1))
    if len(cells) > MAX_CELLS:
        raise SubmissionError(f"{shown} has more than {MAX_CELLS} cells")
    found = _ASSIGNMENT_VAR.search(text)
    return Submission(path, shown, "module", tuple(cells), found.group(1) if found else None)


# --- magics -----------------------------------------------------------------------------------

_LINE_MAGIC = re.compile(r"^(?P<indent>\s*)(?:[\w.]+\s*=\s*)?(?P<kind>[%!])(?P<body>.*)$")


def rewrite_magics(source: str) -> tuple[str, tuple[str, ...]]:
    """Turn IPython syntax into plain Python: cell magics, line magics and ``!`` shell lines."""
    notes: list[str] = []
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        magic = lines[0].strip()[2:].split()[0] if lines[0].strip()[2:] else ""
        if magic in RUN_BODY_CELL_MAGICS:
            notes.append(f"ran the body of this %%{magic} cell without the magic")
            lines = ["pass", *lines[1:]]
        else:
            notes.append(f"skipped this %%{magic} cell (cell magics are not run by the grader)")
            return "pass\n", tuple(notes)
    out = []
    for line in lines:
        m = _LINE_MAGIC.match(line)
        if m and not line.lstrip().startswith(("%=", "!=")):
            what = "shell command" if m.group("kind") == "!" else "magic"
            notes.append(f"skipped {what}: {line.strip()[:80]}")
            out.append(f"{m.group('indent')}pass")
        elif "get_ipython()" in line:
            notes.append(f"skipped IPython call: {line.strip()[:80]}")
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}pass")
        else:
            out.append(line)
    return "\n".join(out) + ("\n" if source.endswith("\n") else ""), tuple(notes)


def _names_in(code: str) -> list[str]:
    try:
        return list(_names_in_memo(code))
    except (RecursionError, MemoryError):  # not remembered: it depends on the moment
        return []


@functools.lru_cache(maxsize=1024)
def _names_in_memo(code: str) -> tuple[str, ...]:
    """The names ``code`` defines at top level, remembered: they depend only on the text, and
    a batch sees the template's cells (and much shared code) in every submission."""
    return tuple(_parse_names(code))


def _parse_names(code: str) -> list[str]:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return []
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names.append(target.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return names


# --- markdown answers -------------------------------------------------------------------------

_LABEL = re.compile(
    r"""^\s*(?:\#{1,6}\s*)?(?:(?:\*\*|__|\*|_)\s*)?answer\s*
        (?:\(\s*(?P<a>[0-9]+[a-z]?)\s*\)|(?P<b>[0-9]+[a-z]?))
        \s*(?:\*\*|__|\*|_)?\s*[:.)-]?\s*(?:\*\*|__|\*|_)?\s*[:.]?\s*(?P<rest>.*)$""",
    re.IGNORECASE | re.VERBOSE,
)


@dataclass(frozen=True)
class MarkdownAnswer:
    text: str
    source: str
    cell: int


def label_of(markdown: str) -> tuple[str, str] | None:
    """(question id, rest of text) if the cell's first non-empty line is an answer label."""
    lines = markdown.splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        m = _LABEL.match(line)
        if not m:
            return None
        qid = (m.group("a") or m.group("b")).lower()
        rest = "\n".join([m.group("rest"), *lines[i + 1 :]]).strip()
        return qid, rest
    return None


def find_markdown_answer(cells: Sequence[Cell], qid: str) -> MarkdownAnswer | None:
    """The answer to question ``qid`` from a tagged cell, else from a labelled cell."""
    qid = qid.lower()
    for cell in cells:
        if cell.kind == "markdown" and f"answer:{qid}" in (t.lower() for t in cell.tags):
            text = cell.source
            labelled = label_of(text)
            if labelled and labelled[0] == qid:
                text = labelled[1]
            return MarkdownAnswer(
                text.strip(), f"the markdown cell tagged answer:{qid}", cell.index
            )
    for cell in cells:
        if cell.kind != "markdown":
            continue
        labelled = label_of(cell.source)
        if labelled and labelled[0] == qid:
            return MarkdownAnswer(
                labelled[1], f"the markdown cell labelled 'Answer {qid}'", cell.index
            )
    return None
