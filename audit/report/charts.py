"""Inline SVG charts for report.html, drawn in Python: no JavaScript library, no CDN.

Every label may come from the data (file names, check names), so each one goes through
:func:`markupsafe.escape`; the functions return :class:`markupsafe.Markup` for the template.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

SEVERITY_COLOURS = {"error": "#c0392b", "warning": "#e08e0b", "info": "#2e86ab"}
BAR_COLOUR = "#3d6fa8"
MARKER_COLOUR = "#c0392b"
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


@dataclass(frozen=True)
class Column:
    """One bar of a column chart: its height, the axis label under it (may be empty), a tooltip."""

    count: int
    label: str
    tooltip: str


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _nice_max(value: int) -> int:
    """A round axis maximum at or above ``value`` (1, 1.5, 2, 3, 4, 5, 6 or 8 times a power of ten)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(int(step * power) for step in (1, 1.5, 2, 3, 4, 5, 6, 8, 10) if step * power >= value)


def column_chart(
    columns: Sequence[Column],
    *,
    x_title: str,
    y_title: str,
    marker: tuple[float, str] | None = None,
    width: int = 640,
    height: int = 240,
) -> Markup:
    """Vertical bars; ``marker`` = (position in bar units from the left edge, label) draws a
    dashed vertical line, e.g. a detected length limit."""
    left, right, top, bottom = 66, 14, 22, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    y_max = _nice_max(max((c.count for c in columns), default=0))
    step = plot_w / max(len(columns), 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" xmlns="http://www.w3.org/2000/svg" '
        f"{FONT}><title>{escape(y_title)} by {escape(x_title)}</title>"
    ]
    for fraction in (0, 0.5, 1):
        y = top + plot_h * (1 - fraction)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">'
            f"{y_max * fraction:,g}</text>"
        )
    for index, column in enumerate(columns):
        bar_h = plot_h * column.count / y_max
        x = left + index * step
        parts.append(
            f'<rect x="{x + step * 0.08:.1f}" y="{top + plot_h - bar_h:.1f}" width="{step * 0.84:.1f}" '
            f'height="{bar_h:.1f}" fill="{BAR_COLOUR}"><title>{escape(column.tooltip)}</title></rect>'
        )
        if column.label:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{top + plot_h + 15}" text-anchor="middle" fill="#333">'
                f"{escape(column.label)}</text>"
            )
    if marker is not None:
        position, label = marker
        x = left + position * step
        parts.append(
            f'<line class="marker" x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{top + plot_h}" '
            f'stroke="{MARKER_COLOUR}" stroke-width="2" stroke-dasharray="5 3"/>'
            f'<text x="{min(x + 4, width - right):.1f}" y="{top - 8}" fill="{MARKER_COLOUR}" '
            f'text-anchor="{"end" if x > width * 0.7 else "start"}">{escape(label)}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle" fill="#333">'
        f"{escape(x_title)}</text>"
        f'<text transform="translate(13 {top + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle" '
        f'fill="#333">{escape(y_title)}</text></svg>'
    )
    return Markup("".join(parts))


def stacked_bars(
    rows: Sequence[str],
    series: Sequence[str],
    values: Sequence[Sequence[int]],
    colours: dict[str, str],
    *,
    width: int = 640,
) -> Markup:
    """Horizontal bars, one per row, stacked by series (e.g. findings per check by severity)."""
    label_w, right, row_h, top = 170, 60, 24, 26
    height = top + row_h * max(len(rows), 1) + 8
    bar_w = width - label_w - right
    total_max = max((sum(v) for v in values), default=0) or 1
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" xmlns="http://www.w3.org/2000/svg" '
        f"{FONT}><title>findings per check by severity</title>"
    ]
    for index, name in enumerate(series):
        parts.append(
            f'<rect x="{label_w + index * 90}" y="6" width="10" height="10" '
            f'fill="{colours.get(name, BAR_COLOUR)}"/>'
            f'<text x="{label_w + index * 90 + 14}" y="15" fill="#333">{escape(name)}</text>'
        )
    for row_index, (row, row_values) in enumerate(zip(rows, values, strict=True)):
        y = top + row_index * row_h
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" fill="#333">'
            f"<title>{escape(row)}</title>{escape(_short(row, 26))}</text>"
        )
        x = float(label_w)
        for name, value in zip(series, row_values, strict=True):
            if not value:
                continue
            w = bar_w * value / total_max
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row_h - 6}" '
                f'fill="{colours.get(name, BAR_COLOUR)}"><title>{escape(row)}: {value} {escape(name)}'
                "</title></rect>"
            )
            x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 15}" fill="#333">{sum(row_values)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def heat_map(
    rows: Sequence[str],
    columns: Sequence[str],
    cells: Sequence[Sequence[int]],
    *,
    unit: str,
    cell: int | None = None,
) -> Markup:
    """A matrix of counts, darker for more (log scale, so one big cell does not wash out the rest)."""
    cell = cell or (40 if max(len(rows), len(columns)) <= 8 else 28)
    label_w, top, right = 190, 112, 110  # rotated column labels run up and to the right
    width = label_w + cell * max(len(columns), 1) + right
    height = top + cell * max(len(rows), 1) + 6
    peak = max((v for row in cells for v in row), default=0)
    parts = [
        f'<svg class="chart heat" viewBox="0 0 {width} {height}" width="{width}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" {FONT}><title>{escape(unit)}</title>'
    ]
    for index, column in enumerate(columns):
        x = label_w + index * cell + cell / 2
        parts.append(
            f'<text transform="translate({x - 4:.1f} {top - 6}) rotate(-45)" fill="#333">'
            f"<title>{escape(column)}</title>{escape(_short(column, 20))}</text>"
        )
    for row_index, (row, row_cells) in enumerate(zip(rows, cells, strict=True)):
        y = top + row_index * cell
        parts.append(
            f'<text x="{label_w - 8}" y="{y + cell / 2 + 4:.1f}" text-anchor="end" fill="#333">'
            f"<title>{escape(row)}</title>{escape(_short(row, 28))}</text>"
        )
        for col_index, value in enumerate(row_cells):
            shade = math.log1p(value) / math.log1p(peak) if peak else 0.0
            fill = f"rgba(61,111,168,{0.08 + 0.92 * shade:.3f})" if value else "#f4f4f4"
            ink = "#fff" if shade > 0.55 else "#222"
            x = label_w + col_index * cell
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" fill="{fill}">'
                f"<title>{escape(row)} × {escape(columns[col_index])}: {value} {escape(unit)}</title></rect>"
                f'<text x="{x + (cell - 2) / 2:.1f}" y="{y + cell / 2 + 3:.1f}" text-anchor="middle" '
                f'fill="{ink}" font-size="{9 if value >= 1000 else 11}">{value if value else ""}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
