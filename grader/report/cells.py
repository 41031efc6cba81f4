"""The submission itself, as HTML for the end of a report, rendered with nbconvert.

Runs in the trusted parent and never executes the notebook. Student notebooks are hostile
input: this module never lets student HTML, scripts, styles or remote URLs into the page.
It rebuilds a clean notebook from the submission (no student metadata; outputs reduced to
text, PNG/JPEG images and escaped markdown, all capped in size), renders it with nbconvert's
basic template through ``templates/cells.html.j2`` (markdown with raw HTML escaped, images
only from ``data:`` URIs), and finally neutralises any active tag that could still appear.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape

from ..memo import Memo
from ..results import CellRun
from ..submission import Submission

__all__ = ["render_cells"]

TEMPLATES = Path(__file__).parent / "templates"
MAX_TEXT = 20_000  # characters of one text output kept in the report
MAX_OUTPUTS = 30  # outputs of one cell
MAX_IMAGE = 2 << 20  # bytes of base64 of one image
MAX_TRACEBACK_LINES = 80
# Markdown goes through mistune, whose time grows faster than linearly on some inputs (runs of
# "$", "[" or "**"): one piece (a cell or a markdown output) longer than this, or any piece
# once a notebook's total is spent, is shown as plain text instead.
MAX_MARKDOWN = 20_000  # characters of one piece
MAX_MARKDOWN_TOTAL = 100_000  # characters of one notebook
_IMAGE_TYPES = ("image/png", "image/jpeg")
_ATTACHMENT_TYPES = ("image/png", "image/jpeg", "image/gif")
_B64 = re.compile(r"[A-Za-z0-9+/=\s]*")
# Tags that run code, load resources or restyle the page. The template never emits them, so
# one found in the output can only have come from the student: it is turned into text.
_ACTIVE_TAG = re.compile(
    r"<(?=/?\s*(?:script|style|iframe|frame|object|embed|link|meta|base|form|svg|math|"
    r"template|audio|video|source|track|applet|portal)\b)",
    re.IGNORECASE,
)
# nbconvert writes a code cell's id as "cell-id=<id>"; the grader's ids are "g-<index>".
_CELL_ID = re.compile(r'id="cell-id=g-([0-9]+)"')
_DATA_IMAGE = ("data:image/png;base64,", "data:image/jpeg;base64,", "data:image/gif;base64,")


def render_cells(sub: Submission, runs: Sequence[CellRun] = ()) -> Markup:
    """The submission's cells as an HTML fragment with a ``cell-N`` anchor per cell.

    ``runs`` are the grader's own runs of the code cells; a cell that failed there gets the
    grader's error appended below its saved outputs.
    """
    clean = _clean_notebook(sub, {r.index: r for r in runs})
    try:
        key = json.dumps(clean, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        key = ""
    html = _RENDERED.get(key) if key else None
    if html is None:
        html, ok = _render_clean(sub, clean)
        if ok and key and len(key) <= _MEMO_NOTEBOOK:
            _RENDERED.put(key, html)
    return html


# The HTML of a cleaned notebook depends on nothing but that notebook (the exporter is the
# same for the whole process): the same notebook graded again, or a second copy of it, is not
# rendered again. Only notebooks up to this size (as JSON) are remembered, the last few.
_MEMO_NOTEBOOK = 256 * 1024
_RENDERED: Memo[str, Markup] = Memo(32)


def _render_clean(sub: Submission, clean: dict[str, Any]) -> tuple[Markup, bool]:
    """The cells' HTML, and whether nbconvert rendered them (else they are plain text)."""
    import nbformat

    from_dict: Any = nbformat.from_dict
    try:
        _BUDGET.left = MAX_MARKDOWN_TOTAL
        body, _ = _exporter().from_notebook_node(_owned()(from_dict(clean)))
    except Exception as exc:  # nbconvert raises many types on odd input; fall back to text
        return Markup(_plain_cells(sub, f"{type(exc).__name__}: {exc}")), False
    return Markup(_CELL_ID.sub(r'id="cell-\1"', neutralise(body))), True


@functools.cache
def _owned() -> Any:
    """The class of a notebook built for one render: the exporter's defensive deep copy of it
    is the notebook itself."""
    from nbformat import NotebookNode

    class Owned(NotebookNode):
        def __deepcopy__(self, memo: Any) -> Any:
            return self

    return Owned


def neutralise(html: str) -> str:
    """Turn any script, style, frame, form or similar tag into visible text."""
    return _ACTIVE_TAG.sub("&lt;", html)


# --- the notebook handed to nbconvert ---------------------------------------------------------


def _clean_notebook(sub: Submission, runs: Mapping[int, CellRun]) -> dict[str, Any]:
    """The notebook nbconvert is given, as plain JSON data."""
    raw_cells: list[Any] = []
    if sub.notebook is not None and isinstance(sub.notebook.get("cells"), list):
        raw_cells = sub.notebook["cells"]
    cells = []
    for cell in sub.cells:
        raw = raw_cells[cell.index] if cell.index < len(raw_cells) else {}
        raw = raw if isinstance(raw, dict) else {}
        common = {
            "id": f"g-{cell.index}",
            "source": cell.source,
            "metadata": {"grader": {"index": cell.index}},
        }
        if cell.kind == "code":
            outputs = _outputs(raw.get("outputs"))
            run = runs.get(cell.index)
            if run is not None and not run.ok:
                outputs.append(_grader_note(run))
            cells.append(
                {"cell_type": "code", **common, "outputs": outputs, "execution_count": None}
            )
        elif cell.kind == "markdown":
            cells.append(
                {
                    "cell_type": "markdown",
                    **common,
                    "attachments": _attachments(raw.get("attachments")),
                }
            )
        else:
            cells.append({"cell_type": "raw", **common})
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "cells": cells,
        "metadata": {"language_info": {"name": "python", "pygments_lexer": "python"}},
    }


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    text = "".join(str(v) for v in value) if isinstance(value, list) else str(value or "")
    if len(text) > limit:
        text = text[:limit] + f"\n… ({len(text) - limit} more characters not shown)"
    return text


def _image(value: Any) -> str | None:
    data = _text(value, MAX_IMAGE + 1)
    if len(data) > MAX_IMAGE or not _B64.fullmatch(data):
        return None
    return re.sub(r"\s+", "", data)


def _outputs(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        return []
    out: list[dict[str, Any]] = []
    for item in raw[:MAX_OUTPUTS]:
        if not isinstance(item, dict):
            continue
        kind = item.get("output_type")
        if kind == "stream":
            name = item.get("name") if item.get("name") in ("stdout", "stderr") else "stdout"
            out.append({"output_type": "stream", "name": name, "text": _text(item.get("text"))})
        elif kind == "error":
            tb = item.get("traceback")
            lines = (
                [_text(t, 2000) for t in tb[:MAX_TRACEBACK_LINES]] if isinstance(tb, list) else []
            )
            out.append(
                {
                    "output_type": "error",
                    "ename": _text(item.get("ename"), 200),
                    "evalue": _text(item.get("evalue"), 2000),
                    "traceback": lines,
                }
            )
        elif kind in ("execute_result", "display_data"):
            out.append(
                {
                    "output_type": "display_data",
                    "metadata": {},
                    "data": _rich_data(item.get("data")),
                }
            )
    if isinstance(raw, list) and len(raw) > MAX_OUTPUTS:
        out.append(
            {
                "output_type": "stream",
                "name": "stdout",
                "text": f"[{len(raw) - MAX_OUTPUTS} more outputs not shown]",
            }
        )
    return out


def _rich_data(data: Any) -> dict[str, str]:
    data = data if isinstance(data, dict) else {}
    kept: dict[str, str] = {}
    for mime in _IMAGE_TYPES:
        if mime in data:
            image = _image(data[mime])
            if image:
                kept[mime] = image
    if "text/markdown" in data and not kept:
        kept["text/markdown"] = _text(data["text/markdown"])
    if "text/plain" in data:
        kept["text/plain"] = _text(data["text/plain"])
    if not kept:
        kinds = ", ".join(sorted(str(k) for k in data)[:3]) or "an empty"
        kept["text/plain"] = f"[{kinds} output not shown in this report]"
    return kept


def _attachments(raw: Any) -> dict[str, dict[str, str]]:
    if not isinstance(raw, dict):
        return {}
    kept: dict[str, dict[str, str]] = {}
    for name, bundle in raw.items():
        if not isinstance(bundle, dict):
            continue
        for mime in _ATTACHMENT_TYPES:
            image = _image(bundle.get(mime)) if mime in bundle else None
            if image:
                kept[str(name)] = {mime: image}
                break
    return kept


def _grader_note(run: CellRun) -> dict[str, Any]:
    what = "did not finish in time" if run.timed_out else f"raised {run.error_type}"
    text = f"When the grader ran this cell it {what}: {run.error_message}".rstrip(": ")
    if run.traceback:
        text += "\n" + run.traceback
    return {"output_type": "stream", "name": "stderr", "text": _text(text)}


# --- nbconvert --------------------------------------------------------------------------------


@functools.cache
def _exporter() -> Any:
    """One exporter per process: building it loads and compiles the templates."""
    import nbconvert

    # nbconvert has no type hints; its classes are used as Any.
    html_exporter: Any = nbconvert.HTMLExporter
    template_exporter: Any = nbconvert.TemplateExporter

    class CellsExporter(html_exporter):  # type: ignore[misc]
        def from_notebook_node(self, nb: Any, resources: Any = None, **kw: Any) -> Any:
            # HTMLExporter's own version re-parses the finished page with BeautifulSoup to add
            # alt texts and tab stops for the lab template. This template writes its own alt
            # texts, and that pass took half of the render time.
            return template_exporter.from_notebook_node(self, nb, resources, **kw)

        def _preprocess(self, nb: Any, resources: Any) -> Any:
            # The notebook is the grader's own, built for this one render (_clean_notebook):
            # valid by construction and owned, so it is neither copied (three deep copies),
            # normalised nor validated again. None of the enabled preprocessors applies to it
            # (no tags or patterns to remove; magics are highlighted as Python here anyway; the
            # page CSS is not part of the cells), so none runs: together a third of a render.
            return nb, resources

    exporter = CellsExporter(
        template_name="basic",
        template_file="cells.html.j2",
        extra_template_paths=[str(TEMPLATES)],
        # The default would also search the current folder for template overrides.
        extra_template_basedirs=[],
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        exclude_anchor_links=True,
        anchor_link_text="",
        embed_images=False,
        sanitize_html=False,
        # Validate the (grader-built) notebook once, not after each preprocessor.
        optimistic_validation=True,
    )
    cache = bytecode_cache()
    if cache is not None:
        exporter.environment.bytecode_cache = cache
    exporter.register_filter("highlight_code", _highlight)
    exporter.register_filter("filter_data_type", _data_type)
    exporter.register_filter("grader_markdown", _markdown_filter)
    return exporter


def prepare() -> None:
    """Build the exporter and compile its templates ahead of the first render."""
    _exporter().template  # noqa: B018 - loading the template is the point


@functools.cache
def bytecode_cache() -> Any:
    """Compiled templates kept between runs (nbconvert's take ~0.5 s to compile), or None.

    In the user's own cache folder, created private: only the user can plant bytecode there.
    """
    from jinja2 import FileSystemBytecodeCache

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "grader", "jinja")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        if os.stat(folder).st_uid != os.geteuid():
            return None
    except OSError:
        return None
    return FileSystemBytecodeCache(folder)


@functools.cache
def _pygments() -> tuple[Any, Any]:
    """One lexer and one formatter per process (nbconvert's filter builds both per cell)."""
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    return PythonLexer(), HtmlFormatter(cssclass="highlight")


# Sources up to this length are remembered: a batch shows the template's cells (and much
# shared code) in every report, so most cells were already rendered for an earlier student.
_MEMO_SOURCE = 4096


def _highlight(source: str, metadata: Any = None) -> str:
    """Python source as highlighted HTML; Pygments escapes every character of it."""
    if len(source) <= _MEMO_SOURCE:
        return _highlight_memo(source)
    return _highlight_now(source)


@functools.lru_cache(maxsize=1024)
def _highlight_memo(source: str) -> str:
    """``_highlight_now``, remembered: its HTML depends on nothing but the source text."""
    return _highlight_now(source)


def _highlight_now(source: str) -> str:
    from pygments import highlight

    lexer, formatter = _pygments()
    return str(highlight(source, lexer, formatter))


def _data_type(data: Mapping[str, Any]) -> list[str]:
    """The one representation of an output to show: the first kind this report can show."""
    for mime in (*_IMAGE_TYPES, "text/markdown", "text/plain"):
        if mime in data:
            return [mime]
    return []


@functools.cache
def _renderer_class() -> Any:
    from mistune import HTMLRenderer
    from nbconvert.filters import markdown_mistune

    ipython_renderer: Any = markdown_mistune.IPythonRenderer

    class SafeRenderer(ipython_renderer):  # type: ignore[misc]
        """Raw HTML escaped, harmful link protocols refused, images only from data: URIs."""

        def block_mermaidjs(self, code: str) -> str:
            # nbconvert's version puts the code into the page unescaped.
            return f"<pre><code>{escape(code)}</code></pre>\n"

        def image(self, text: str, url: str, title: str | None = None) -> str:
            src = url
            if url.startswith("attachment:"):
                bundle = self.attachments.get(url[len("attachment:") :], {})
                src = next(
                    (f"data:{m};base64,{bundle[m]}" for m in _ATTACHMENT_TYPES if m in bundle), ""
                )
            if not src.startswith(_DATA_IMAGE):
                return str(escape(f"[image: {text or url}]"))
            return str(HTMLRenderer.image(self, text, src, title))

    return SafeRenderer


# What is left of the notebook's markdown budget in the render under way (one per thread).
_BUDGET = threading.local()


@pass_context
def _markdown_filter(context: Context, source: str) -> str:
    left = getattr(_BUDGET, "left", MAX_MARKDOWN_TOTAL)
    if len(source) > min(left, MAX_MARKDOWN):
        return _plain_markdown(source)
    _BUDGET.left = left - len(source)
    cell = context.get("cell")
    attachments = cell.get("attachments") if isinstance(cell, dict) else None
    return _markdown(source, attachments if isinstance(attachments, dict) else None)


def _plain_markdown(source: str) -> str:
    why = (
        f"more than {MAX_MARKDOWN:,} characters"
        if len(source) > MAX_MARKDOWN
        else f"the notebook's markdown is over {MAX_MARKDOWN_TOTAL:,} characters"
    )
    return (
        f'<p class="output_note">This markdown ({len(source):,} characters) is shown as plain '
        f"text: {why}.</p><pre>{escape(_text(source))}</pre>"
    )


def _markdown(source: str, attachments: Mapping[str, Any] | None = None) -> str:
    if not attachments and len(source) <= _MEMO_SOURCE:
        return _markdown_memo(source)
    return _markdown_now(source, attachments)


@functools.lru_cache(maxsize=1024)
def _markdown_memo(source: str) -> str:
    """``_markdown_now`` of a cell without attachments, remembered: a fresh renderer is built
    per call, so its HTML depends on nothing but the source text."""
    return _markdown_now(source, None)


def _markdown_now(source: str, attachments: Mapping[str, Any] | None) -> str:
    from nbconvert.filters.markdown_mistune import MarkdownWithMath

    renderer = _renderer_class()(
        escape=True,
        allow_harmful_protocols=False,
        exclude_anchor_links=True,
        anchor_link_text="",
        attachments=dict(attachments or {}),
    )
    try:
        return str(MarkdownWithMath(renderer=renderer).render(source))
    except Exception:  # a markdown corner case must not cost the student their report
        return f"<pre>{escape(source)}</pre>"


def _plain_cells(sub: Submission, problem: str) -> str:
    parts = [
        f'<p class="output_note">The notebook could not be rendered ({escape(problem)}); '
        "its cells are shown as plain text.</p>"
    ]
    for cell in sub.cells:
        parts.append(
            f'<div id="cell-{cell.index}" class="cell">'
            f'<div class="cell-label">cell {cell.index + 1}</div>'
            f"<pre>{escape(cell.source)}</pre></div>"
        )
    return "\n".join(parts)
