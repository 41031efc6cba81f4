"""Small inline SVG charts for the reports: gradient errors against a tolerance, a histogram.

Pure functions from numbers to markup, drawn by hand so the pages need no script and no
network. Every label passes through ``markupsafe.escape``; this module never inserts an
unescaped string and never refers to anything outside the returned ``<svg>`` element.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape

from ..results import GradientRow

__all__ = ["gradient_chart", "histogram"]

_OK = "#2e7d32"
_BAD = "#c62828"
_INK = "#444"

# Log-scale bounds of the gradient chart, in decades: wide enough for float64 agreement
# (1e-12 and below) and for errors larger than the value itself.
_MIN_DECADE = -16
_MAX_DECADE = 3


def _num(x: float) -> str:
    """A coordinate with two decimals: short output, stable across platforms."""
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _sci(x: float) -> str:
    if not math.isfinite(x):
        return "NaN" if math.isnan(x) else "inf"
    return f"{x:.2g}"


def _decade_range(values: Sequence[float], tolerance: float) -> tuple[int, int]:
    finite = [math.log10(v) for v in values if math.isfinite(v) and v > 0]
    tol = math.log10(tolerance) if tolerance > 0 else -5.0
    lo = math.floor(min([tol - 3, *finite]))
    hi = math.ceil(max([tol + 1, *finite]))
    lo = max(_MIN_DECADE, min(lo, _MAX_DECADE - 2))
    hi = min(_MAX_DECADE, max(hi, lo + 2))
    return lo, hi


def gradient_chart(rows: Sequence[GradientRow], tolerance: float) -> Markup:
    """Horizontal bars of each parameter's relative error on a log axis, tolerance dashed.

    A bar that ends right of the dashed line is a gradient the check rejected. Zero errors sit
    at the left edge; NaN and inf fill the whole width and are labelled.
    """
    label_w, plot_w, right_pad = 64.0, 250.0, 46.0
    bar_h, gap, top, axis_h = 14.0, 6.0, 8.0, 30.0
    width = label_w + plot_w + right_pad
    height = top + len(rows) * (bar_h + gap) + axis_h
    lo, hi = _decade_range([r.rel_error for r in rows], tolerance)

    def x_of(value: float) -> float:
        if not math.isfinite(value):
            return label_w + plot_w
        if value <= 0:
            return label_w
        d = min(max(math.log10(value), lo), hi)
        return label_w + (d - lo) / (hi - lo) * plot_w

    parts: list[str] = []
    for i, row in enumerate(rows):
        y = top + i * (bar_h + gap)
        colour = _OK if row.ok else _BAD
        x_end = max(x_of(row.rel_error), label_w + 1.5)
        name = row.parameter + (str(list(row.index)) if row.index else "")
        verdict = "within tolerance" if row.ok else "too large"
        parts.append(
            f"<g><title>{escape(name)}: relative error {escape(_sci(row.rel_error))} "
            f"({verdict})</title>"
            f'<text x="{_num(label_w - 6)}" y="{_num(y + bar_h - 3)}" text-anchor="end" '
            f'font-size="11" fill="{_INK}">{escape(name[:10])}</text>'
            f'<rect x="{_num(label_w)}" y="{_num(y)}" width="{_num(x_end - label_w)}" '
            f'height="{_num(bar_h)}" fill="{colour}"/>'
            f'<text x="{_num(x_end + 4)}" y="{_num(y + bar_h - 3)}" font-size="10" '
            f'fill="{_INK}">{escape(_sci(row.rel_error))}</text></g>'
        )
    axis_y = top + len(rows) * (bar_h + gap)
    step = 1 if hi - lo <= 8 else (2 if hi - lo <= 14 else 4)
    parts.append(
        f'<line x1="{_num(label_w)}" y1="{_num(axis_y)}" x2="{_num(label_w + plot_w)}" '
        f'y2="{_num(axis_y)}" stroke="{_INK}" stroke-width="1"/>'
    )
    for d in range(lo, hi + 1, step):
        x = label_w + (d - lo) / (hi - lo) * plot_w
        parts.append(
            f'<line x1="{_num(x)}" y1="{_num(axis_y)}" x2="{_num(x)}" '
            f'y2="{_num(axis_y + 4)}" stroke="{_INK}"/>'
            f'<text x="{_num(x)}" y="{_num(axis_y + 15)}" font-size="9" '
            f'text-anchor="middle" fill="{_INK}">1e{d}</text>'
        )
    tx = x_of(tolerance)
    parts.append(
        f'<line x1="{_num(tx)}" y1="{_num(top - 4)}" x2="{_num(tx)}" '
        f'y2="{_num(axis_y)}" stroke="{_INK}" stroke-dasharray="4 3" stroke-width="1.2"/>'
        f'<text x="{_num(tx)}" y="{_num(axis_y + 27)}" font-size="9" '
        f'text-anchor="middle" fill="{_INK}">tolerance {escape(_sci(tolerance))}</text>'
    )
    label = (
        f"Relative error of each gradient on a log scale; tolerance {_sci(tolerance)}; "
        + ", ".join(f"{r.parameter} {_sci(r.rel_error)}" for r in rows)
    )
    return Markup(
        f'<svg class="chart" role="img" aria-label="{escape(label)}" '
        f'viewBox="0 0 {_num(width)} {_num(height)}" xmlns="http://www.w3.org/2000/svg">'
        + "".join(parts)
        + "</svg>"
    )


def histogram(
    values: Sequence[float], max_value: float, *, bins: int = 10, label: str = "points"
) -> Markup:
    """A bar per score bin (the last bin includes the maximum), count on top of each bar."""
    bins = max(1, bins)
    top_value = max_value if max_value > 0 else max([1.0, *values])
    counts = [0] * bins
    for v in values:
        i = int(min(max(v, 0.0), top_value) / top_value * bins)
        counts[min(i, bins - 1)] += 1
    width, height, left, bottom, top = 360.0, 150.0, 8.0, 28.0, 14.0
    plot_h = height - bottom - top
    bar_w = (width - 2 * left) / bins
    peak = max([1, *counts])
    parts: list[str] = []
    for i, count in enumerate(counts):
        lo_v = top_value * i / bins
        hi_v = top_value * (i + 1) / bins
        h = plot_h * count / peak
        x = left + i * bar_w
        y = top + plot_h - h
        span = f"{lo_v:g}–{hi_v:g} {label}"
        parts.append(
            f"<g><title>{escape(span)}: {count}</title>"
            f'<rect x="{_num(x + 1)}" y="{_num(y)}" width="{_num(bar_w - 2)}" '
            f'height="{_num(max(h, 0.5))}" fill="#3f6fb5"/>'
            f'<text x="{_num(x + bar_w / 2)}" y="{_num(y - 3)}" font-size="10" '
            f'text-anchor="middle" fill="{_INK}">{count or ""}</text>'
            f'<text x="{_num(x + bar_w / 2)}" y="{_num(height - bottom + 12)}" font-size="9" '
            f'text-anchor="middle" fill="{_INK}">{escape(f"{lo_v:.3g}")}</text></g>'
        )
    parts.append(
        f'<line x1="{_num(left)}" y1="{_num(top + plot_h)}" '
        f'x2="{_num(width - left)}" y2="{_num(top + plot_h)}" stroke="{_INK}"/>'
        f'<text x="{_num(width / 2)}" y="{_num(height - 2)}" font-size="10" '
        f'text-anchor="middle" fill="{_INK}">{escape(label)} (max {top_value:g})</text>'
    )
    aria = f"Histogram of {len(values)} scores: " + ", ".join(str(c) for c in counts)
    return Markup(
        f'<svg class="chart" role="img" aria-label="{escape(aria)}" '
        f'viewBox="0 0 {_num(width)} {_num(height)}" xmlns="http://www.w3.org/2000/svg">'
        + "".join(parts)
        + "</svg>"
    )
