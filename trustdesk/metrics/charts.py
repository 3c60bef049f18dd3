"""Server-side SVG charts: geometry and markup computed here, placed by
templates/metrics/_chart.html (which adds the caption and legend).

No JavaScript and no style attributes (the CSP forbids them): colours are SVG presentation
attributes and classes from static/css/metrics.css; series differ by dash pattern and marker
as well as colour, so a black-and-white print stays legible. Every point carries a <title>.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH = 560
HEIGHT = 210
LEFT = 52
RIGHT = 14
TOP = 14
BOTTOM = 34

# (stroke colour, dash pattern, marker shape) per series, in order.
SERIES_STYLES = (
    ("#1f4e8c", "", "circle"),
    ("#b3261e", "6 3", "square"),
    ("#1e7a46", "2 3", "diamond"),
    ("#8a5a00", "9 3 2 3", "triangle"),
)


@dataclass
class Point:
    x: float
    y: float
    label: str
    text: str
    href: str | None = None
    shape: str = "circle"
    polygon: str = ""  # the marker's outline, for every shape but the circle


def _marker(shape: str, x: float, y: float, r: float = 3.5) -> str:
    if shape == "square":
        corners = [(x - r, y - r), (x + r, y - r), (x + r, y + r), (x - r, y + r)]
    elif shape == "diamond":
        r += 0.8
        corners = [(x, y - r), (x + r, y), (x, y + r), (x - r, y)]
    elif shape == "triangle":
        r += 0.8
        corners = [(x, y - r), (x + r, y + r * 0.8), (x - r, y + r * 0.8)]
    else:
        return ""
    return " ".join(f"{round(a, 1)},{round(b, 1)}" for a, b in corners)


@dataclass
class Series:
    name: str
    css: str
    stroke: str
    dash: str
    marker: str
    path: str = ""
    points: list[Point] = field(default_factory=list)


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    text: str
    href: str | None = None


@dataclass
class Chart:
    id: str
    title: str
    description: str
    width: int
    height: int
    series: list[Series]
    bars: list[Bar]
    y_ticks: list[tuple[float, str]]
    x_labels: list[tuple[float, str]]
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int
    empty: bool

    @property
    def mid_x(self) -> float:
        return (self.plot_left + self.plot_right) / 2

    @property
    def svg(self) -> SafeString:
        """The <svg> element. Built as text because a chart has hundreds of elements, which the
        template engine renders ten times slower; every text in it is escaped."""
        return mark_safe(render_svg(self))


def _link(href: str | None, inner: str, text: str) -> str:
    """A link around a mark, named by the mark's text (screen readers read the link's name)."""
    if not href:
        return inner
    return f'<a href="{escape(href)}" aria-label="{escape(text)}">{inner}</a>'


# Rough width of one character of the 11 px tick labels, to leave the y axis room for its labels.
TICK_CHAR_WIDTH = 6.6


def left_margin(tick_labels: Sequence[str]) -> int:
    """Room left of the plot for the widest y tick label, so none is clipped ("10000 min")."""
    widest = max((len(label) for label in tick_labels), default=0)
    return max(LEFT, math.ceil(widest * TICK_CHAR_WIDTH) + 12)


def duration_unit(largest_seconds: float) -> tuple[float, str]:
    """The unit a duration axis reads best in, from its largest value: (seconds per unit, name).

    Minutes up to two hours, hours up to three days, days beyond.
    """
    if largest_seconds <= 2 * 3600:
        return 60.0, "min"
    if largest_seconds <= 3 * 86400:
        return 3600.0, "h"
    return 86400.0, "days"


def render_svg(c: Chart) -> str:
    ink, grid = "#3d4756", "#d5dbe3"
    # An image's content is presentational, so links inside it would be hidden from assistive
    # technology (axe: nested-interactive): a chart with links is a group of them instead.
    linked = any(b.href for b in c.bars) or any(p.href for s in c.series for p in s.points)
    role = "group" if linked else "img"
    out = [
        f'<svg class="chart-svg" viewBox="0 0 {c.width} {c.height}" role="{role}" '
        f'aria-labelledby="{c.id}-title {c.id}-desc" xmlns="http://www.w3.org/2000/svg" '
        'font-family="sans-serif">',
        f'<title id="{c.id}-title">{escape(c.title)}</title>',
        f'<desc id="{c.id}-desc">{escape(c.description)}</desc>',
    ]
    for y, label in c.y_ticks:
        out.append(
            f'<line class="chart-grid" x1="{c.plot_left}" x2="{c.plot_right}" y1="{y}" '
            f'y2="{y}" stroke="{grid}" stroke-width="1"/>'
            f'<text class="chart-tick" x="{c.plot_left - 6}" y="{y}" text-anchor="end" '
            f'dominant-baseline="middle" font-size="11" fill="{ink}">{escape(label)}</text>'
        )
    out.append(
        f'<line class="chart-axis" x1="{c.plot_left}" x2="{c.plot_right}" y1="{c.plot_bottom}" '
        f'y2="{c.plot_bottom}" stroke="{ink}" stroke-width="1"/>'
    )
    for x, label in c.x_labels:
        out.append(
            f'<text class="chart-tick" x="{x}" y="{c.plot_bottom + 16}" text-anchor="middle" '
            f'font-size="11" fill="{ink}">{escape(label)}</text>'
        )
    for b in c.bars:
        rect = (
            f'<rect class="chart-bar" x="{b.x}" y="{b.y}" width="{b.width}" height="{b.height}" '
            f'fill="#a9c1e3" stroke="#1f4e8c" stroke-width="1"><title>{escape(b.text)}</title>'
            "</rect>"
        )
        out.append(_link(b.href, rect, b.text))
    for s in c.series:
        if s.path:
            dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
            out.append(
                f'<path class="chart-line {s.css}" d="{s.path}" fill="none" stroke="{s.stroke}" '
                f'stroke-width="2"{dash}/>'
            )
        for p in s.points:
            title = f"<title>{escape(p.text)}</title>"
            paint = f'fill="{s.stroke}" stroke="#fff" stroke-width="1"'
            if p.shape == "circle":
                mark = (
                    f'<circle class="chart-point {s.css}" cx="{p.x}" cy="{p.y}" r="3.5" {paint}>'
                    f"{title}</circle>"
                )
            else:
                mark = (
                    f'<polygon class="chart-point {s.css}" points="{p.polygon}" {paint}>'
                    f"{title}</polygon>"
                )
            out.append(_link(p.href, mark, p.text))
    if c.empty:
        out.append(
            f'<text class="chart-empty" x="{c.mid_x}" y="{c.plot_top + 70}" text-anchor="middle" '
            'font-size="13" fill="#5b6675">No data in these weeks yet</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _nice_max(value: float) -> float:
    """The top of the axis: four ticks of a round step (1, 2, 2.5, 3 or 5 times a power of ten),
    so that the tick labels are exact (counts get whole numbers)."""
    if value <= 0:
        return 4.0
    least = value / 4
    magnitude = 10 ** math.floor(math.log10(least))
    # 2.5 only from 25 up, where its ticks stay whole numbers
    steps = (1, 2, 2.5, 3, 5, 10) if magnitude >= 10 else (1, 2, 3, 5, 10)
    for step in steps:
        if least <= step * magnitude:
            return 4 * step * magnitude
    return 40 * magnitude


def chart(
    *,
    ident: str,
    title: str,
    description: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]] = (),
    bars: Sequence[float | None] | None = None,
    fmt: Callable[[float], str] = lambda v: f"{v:g}",
    y_max: float | None = None,
    hrefs: Sequence[str | None] | None = None,
    short_label: Callable[[str], str] = lambda s: s,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Chart:
    """A line chart (one or more series) or a bar chart over the same x labels.

    Missing values (None) leave a gap in the line; they are not drawn as zero.
    """
    n = len(labels)
    values = [v for _, vs in series for v in vs if v is not None]
    values += [v for v in (bars or []) if v is not None]
    top = y_max if y_max is not None else _nice_max(max(values, default=0))
    tick_values = [top * k / 4 for k in range(5)]
    left = left_margin([fmt(v) for v in tick_values])
    plot_w = width - left - RIGHT
    plot_h = height - TOP - BOTTOM
    step = plot_w / max(n, 1)

    def x_at(i: int) -> float:
        return round(left + step * (i + 0.5), 1)

    def y_at(v: float) -> float:
        return round(TOP + plot_h * (1 - min(v, top) / top), 1)

    hrefs = list(hrefs) if hrefs is not None else [None] * n
    out_series = []
    for index, (name, vs) in enumerate(series):
        stroke, dash, marker = SERIES_STYLES[index % len(SERIES_STYLES)]
        s = Series(name, f"series-{index}", stroke, dash, marker)
        segments: list[list[str]] = [[]]
        for i, v in enumerate(vs):
            if v is None:
                segments.append([])
                continue
            x, y = x_at(i), y_at(v)
            segments[-1].append(f"{x},{y}")
            s.points.append(
                Point(
                    x,
                    y,
                    labels[i],
                    f"{labels[i]}: {name} {fmt(v)}",
                    hrefs[i],
                    marker,
                    _marker(marker, x, y),
                )
            )
        s.path = " ".join(
            "M" + " L".join(seg) for seg in segments if seg
        )  # each run of values is its own sub-path
        out_series.append(s)
    out_bars = []
    for i, v in enumerate(bars or []):
        if v is None:
            continue
        y = y_at(v)
        out_bars.append(
            Bar(
                round(left + step * i + step * 0.15, 1),
                y,
                round(step * 0.7, 1),
                round(TOP + plot_h - y, 1),
                labels[i],
                f"{labels[i]}: {fmt(v)}",
                hrefs[i],
            )
        )
    ticks = [(y_at(v), fmt(v)) for v in tick_values]
    every = max(1, math.ceil(n / max(2, plot_w // 60)))
    x_labels = [(x_at(i), short_label(label)) for i, label in enumerate(labels) if i % every == 0]
    return Chart(
        id=f"chart-{ident}",
        title=title,
        description=description,
        width=width,
        height=height,
        series=out_series,
        bars=out_bars,
        y_ticks=ticks,
        x_labels=x_labels,
        plot_left=left,
        plot_right=width - RIGHT,
        plot_top=TOP,
        plot_bottom=height - BOTTOM,
        empty=not values,
    )
