"""Charts of a `Report` as static SVG, drawn by this module: no plotting library, no script.

Each chart is a function of the typed `Report` that returns an `<svg>`
element as text, or None when the report lacks its data, so a chart
appears exactly when its data is in the report:

- `timeline`: bytes live by kind over the op sequence of the step
  (`Report.memory_timeline`), phases shaded, the peak and what is live
  then annotated, and the capacity of `fit` drawn when it is in range;
- `modules`: parameters and forward FLOPs per module, side by side
  (`Report.chart_modules`); for examples/vgg16.yaml it is the reference
  article's figure;
- `sweep`: peak memory against batch size (`Report.sweep`, `Report.fit`),
  with the fitted line, the article's estimate and the capacity.

A new chart (the roofline once the report has time data, advice savings)
is one more function here and one entry in `CHARTS`. Charts read numbers
from the report; the arithmetic here is only drawing (scales, stacking,
ticks). The SVG uses no ids, so several reports fit in one notebook.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape
from typing import TYPE_CHECKING

from memflops.report import text
from memflops.units import format_bytes, format_count, format_int

if TYPE_CHECKING:
    from memflops.report.model import MemoryTimeline, Report

WIDTH = 960
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
INK = "#1f2933"
MUTED = "#616e7c"
GRID = "#e4e7eb"
CAPACITY = "#c81e1e"
KIND_COLORS = {
    "params": "#4e79a7",
    "buffers": "#a0cbe8",
    "inputs": "#9c755f",
    "optimizer": "#f28e2b",
    "kv_cache": "#b07aa1",
    "grads": "#e15759",
    "activations": "#59a14f",
    "temporaries": "#bab0ac",
}
OVERHEAD_COLOR = "#d9dde3"
PARAMS_COLOR = "#4e79a7"
FLOPS_COLOR = "#f28e2b"
PHASE_SHADES = ("#f5f7fa", "#ffffff")
MAX_MODULE_ROWS = 48


# --- the charts ----------------------------------------------------------------------------


def timeline_chart(report: Report) -> str | None:
    """Bytes live by kind over the step's op sequence, phases shaded, the peak annotated."""
    series = report.memory_timeline
    if series is None or not series.points:
        return None
    left, right, top, bottom = 78, 230, 34, 46
    height = 380
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    peak = report.totals.memory.peak
    capacity = report.fit.capacity if report.fit is not None else None
    top_value = max(peak, capacity) if capacity is not None and capacity <= 1.6 * peak else peak
    ticks, unit, scale = _byte_ticks(int(top_value * 1.3))
    y_max = ticks[-1]

    def x(op: float) -> float:
        return left + (op + 1) / (series.ops + 1) * plot_w

    def y(value: float) -> float:
        return top + plot_h - value / y_max * plot_h

    svg = _Svg(height, "timeline", "Memory over the step")
    for i, span in enumerate(series.phases):
        x0, x1 = x(span.first - 0.5), x(span.last + 0.5)
        svg.rect(x0, top, x1 - x0, plot_h, fill=PHASE_SHADES[i % 2])
        label = _fitting(span.phase, x1 - x0)
        if label:
            svg.text((x0 + x1) / 2, top - 8, label, anchor="middle", fill=MUTED, size=11)
        if i:
            svg.line(x0, top, x0, top + plot_h, stroke="#cbd2d9", dash="3 3")
    _y_grid(svg, ticks, unit, scale, left, left + plot_w, y)
    layers = _stacked(series)
    for _, color, lower, upper in layers:
        if any(upper[i] != lower[i] for i in range(len(upper))):
            svg.path(_area(series, lower, upper, x, y), fill=color, stroke="none")
    totals = layers[-1][3] if layers else []
    svg.path(_step_line(series, totals, x, y), fill="none", stroke=INK, width=1.2)
    _axes(svg, left, top, plot_w, plot_h)
    for tick in _count_ticks(series.ops)[:-1]:
        svg.line(x(tick), top + plot_h, x(tick), top + plot_h + 4, stroke=MUTED)
        svg.text(x(tick), top + plot_h + 17, format_int(int(tick)), anchor="middle", fill=MUTED,
                 size=11)
    svg.text(left + plot_w / 2, height - 10, f"op sequence ({format_int(series.ops)} ops)",
             anchor="middle", fill=MUTED)
    svg.text(14, top + plot_h / 2, f"bytes live ({unit})", anchor="middle", fill=MUTED,
             rotate=-90)

    point = series.points[series.peak_point]
    px, py = x(point.op), y(peak)
    svg.line(px, top, px, top + plot_h, stroke=INK, dash="4 3")
    svg.circle(px, py, 4, fill=INK)
    where = report.memory_detail
    lines = [f"peak {format_bytes(peak)}"]
    if where is not None:
        lines.append(f"{where.peak_phase}: {where.peak_op}")
        lines.append(f"in {where.peak_module or text.ROOT_LABEL}")
    anchor = "end" if px > left + plot_w * 0.6 else "start"
    dx = -8 if anchor == "end" else 8
    for i, line in enumerate(lines):
        svg.text(px + dx, top + 16 + 15 * i, line, anchor=anchor, fill=INK,
                 weight="bold" if i == 0 else None, halo=True)
    off_scale = capacity is not None and capacity > y_max
    if capacity is not None and not off_scale:
        cy = y(capacity)
        svg.line(left, cy, left + plot_w, cy, stroke=CAPACITY, dash="6 4", width=1.5)
        svg.text(left + plot_w - 4, cy - 5, f"capacity {format_bytes(capacity)}",
                 anchor="end", fill=CAPACITY, halo=True)
    end = _kind_legend(svg, series, left + plot_w + 22, top)
    if capacity is not None:
        svg.line(left + plot_w + 22, end + 2, left + plot_w + 34, end + 2, stroke=CAPACITY,
                 dash="4 2", width=1.5)
        svg.text(left + plot_w + 40, end + 6, f"capacity {format_bytes(capacity)}",
                 fill=CAPACITY, size=11)
        if off_scale:
            svg.text(left + plot_w + 40, end + 21, "(above the chart)", fill=CAPACITY, size=11)
    return svg.finish()


def modules_chart(report: Report) -> str | None:
    """Parameters and forward FLOPs per module, side by side."""
    rows, total_rows = report.chart_modules(MAX_MODULE_ROWS)
    if not rows:
        return None
    conv = report.convention
    label_w, gap, row_h, top = 250, 24, 18, 48
    panel_w = (WIDTH - label_w - gap - 24) / 2
    note = total_rows > len(rows)
    height = top + row_h * len(rows) + (40 if note else 20)
    svg = _Svg(height, "modules", "Parameters and FLOPs per module")
    panels = (
        ("parameters", [r.params for r in rows], PARAMS_COLOR, label_w),
        (f"forward FLOPs ({conv.value})", [r.forward.under(conv) for r in rows], FLOPS_COLOR,
         label_w + panel_w + gap),
    )
    for title, values, color, x0 in panels:
        unit = title.split(" (")[0]
        largest = max(values) or 1
        svg.text(x0, 20, title, fill=INK, weight="bold")
        svg.line(x0, top - 6, x0, top + row_h * len(rows), stroke="#9aa5b1")
        for i, value in enumerate(values):
            yy = top + i * row_h
            w = value / largest * (panel_w - 70)
            if value:
                svg.rect(x0, yy + 2, max(w, 1.0), row_h - 5, fill=color,
                         tip=f"{text.module_label(rows[i])}: {format_int(value)} {unit}")
            svg.text(x0 + w + 5, yy + row_h - 5, format_count(value), fill=MUTED, size=11)
    for i, row in enumerate(rows):
        yy = top + i * row_h + row_h - 5
        svg.text(label_w - 10, yy, f"{_clip(text.module_label(row), 26)} ", anchor="end",
                 fill=INK, size=11, tail=(row.type, MUTED))
    if note:
        svg.text(label_w, height - 12, f"the first {len(rows)} of {total_rows} top-level modules",
                 fill=MUTED, size=11)
    return svg.finish()


def sweep_chart(report: Report) -> str | None:
    """Peak memory against batch size: analysed points, fitted line, estimate and capacity."""
    sweep, fit = report.sweep, report.fit
    if sweep is None and fit is None:
        return None
    dim = (sweep or fit).dimension  # type: ignore[union-attr]
    left, right, top, bottom = 78, 40, 28, 48
    height = 360
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    sizes = [p.size for p in sweep.points] if sweep is not None else []
    values = [p.peak for p in sweep.points] + [p.seed_estimate for p in sweep.points] \
        if sweep is not None else []
    if fit is not None:
        sizes += [fit.largest + 1]
        values += [fit.capacity, fit.peak_at_largest]
        if fit.peak_at_next is not None:
            values.append(fit.peak_at_next)
    y_ticks, unit, scale = _byte_ticks(int(max(values) * 1.08))
    y_max = y_ticks[-1]
    log_x = max(sizes) >= 16 * max(min(sizes), 1)
    if log_x:  # a fit far beyond the sweep: powers of two, so both are readable
        k0, k1 = math.floor(math.log2(max(min(sizes), 1))), math.ceil(math.log2(max(sizes) * 1.05))
        x_ticks = [float(2**k) for k in range(k0, k1 + 1)]
        if len(x_ticks) > 14:
            x_ticks = x_ticks[::2]

        def x(size: float) -> float:
            return left + (math.log2(max(size, 2**k0)) - k0) / (k1 - k0) * plot_w
    else:
        x_ticks = _count_ticks(max(sizes) * 1.04)

        def x(size: float) -> float:
            return left + size / x_ticks[-1] * plot_w

    x_lo, x_hi = (x_ticks[0], x_ticks[-1]) if log_x else (0.0, x_ticks[-1])

    def y(value: float) -> float:
        return top + plot_h - value / y_max * plot_h

    svg = _Svg(height, "sweep", f"Peak memory by {dim}")
    _y_grid(svg, y_ticks, unit, scale, left, left + plot_w, y)
    for tick in x_ticks:
        svg.line(x(tick), top + plot_h, x(tick), top + plot_h + 4, stroke=MUTED)
        svg.text(x(tick), top + plot_h + 17, format_int(int(tick)), anchor="middle", fill=MUTED,
                 size=11)
    _axes(svg, left, top, plot_w, plot_h)
    axis = f"{dim} (log scale)" if log_x else dim
    svg.text(left + plot_w / 2, height - 8, axis, anchor="middle", fill=MUTED)
    svg.text(14, top + plot_h / 2, f"peak ({unit})", anchor="middle", fill=MUTED, rotate=-90)
    legend: list[tuple[str, str]] = []
    if fit is not None:
        cy = y(fit.capacity)
        svg.line(left, cy, left + plot_w, cy, stroke=CAPACITY, dash="6 4", width=1.5)
        svg.text(left + 6, cy - 6, f"capacity {format_bytes(fit.capacity)}", fill=CAPACITY,
                 halo=True)
    if sweep is not None:
        line = []
        for i in range(81):
            size = x_lo * (x_hi / x_lo) ** (i / 80) if log_x else x_lo + (x_hi - x_lo) * i / 80
            value = sweep.constant + sweep.per_item * size
            if value > y_max:
                break
            line.append(f"{x(size):.1f},{y(value):.1f}")
        if len(line) > 1:
            svg.path("M" + " L".join(line), fill="none", stroke=INK, width=1.2, dash="5 4")
        for p in sweep.points:
            svg.rect(x(p.size) - 4, y(p.seed_estimate) - 4, 8, 8, fill="#ffffff", stroke=MUTED,
                     width=1.5)
            svg.circle(x(p.size), y(p.peak), 5, fill=PARAMS_COLOR)
            svg.text(x(p.size) + 8, y(p.peak) - 7, format_bytes(p.peak), fill=INK, size=11,
                     halo=True)
        legend += [
            ("peak (analysed)", "dot"),
            ("seed estimate (article's formula)", "square"),
            (f"fit: {format_bytes(sweep.constant)} + {format_bytes(sweep.per_item)} x {dim}",
             "dash"),
        ]
    if fit is not None and fit.largest:
        fx, fy = x(fit.largest), y(fit.peak_at_largest)
        svg.path(f"M{fx:.1f},{fy - 7:.1f} L{fx + 7:.1f},{fy:.1f} L{fx:.1f},{fy + 7:.1f} "
                 f"L{fx - 7:.1f},{fy:.1f} Z", fill=CAPACITY, stroke="none")
        anchor = "end" if fx > left + plot_w * 0.6 else "start"
        svg.text(fx + (-12 if anchor == "end" else 12), fy + 18,
                 f"largest {dim} that fits: {format_int(fit.largest)}", anchor=anchor,
                 fill=CAPACITY, weight="bold", halo=True)
        legend.append((f"largest {dim} that fits", "diamond"))
    _marker_legend(svg, legend, left + plot_w - 300, top + plot_h - 18 * len(legend) + 2)
    return svg.finish()


CHARTS: tuple[tuple[str, str, Callable[[Report], str | None]], ...] = (
    ("timeline", "Memory over the step", timeline_chart),
    ("modules", "Parameters and FLOPs per module", modules_chart),
    ("sweep", "Peak memory by batch size", sweep_chart),
)
"""(name, title, chart) of every chart, in the order a report shows them."""


def charts(report: Report) -> list[tuple[str, str, str]]:
    """(name, title, svg) of the charts the report has data for."""
    drawn = [(name, title, chart(report)) for name, title, chart in CHARTS]
    return [(name, title, svg) for name, title, svg in drawn if svg is not None]


# --- drawing helpers -----------------------------------------------------------------------


class _Svg:
    """An SVG document built element by element (coordinates in a WIDTH-wide viewBox)."""

    def __init__(self, height: float, name: str, title: str) -> None:
        self.parts = [
            f'<svg class="chart" data-chart="{name}" xmlns="http://www.w3.org/2000/svg" '
            f'viewBox="0 0 {WIDTH} {height:.0f}" width="{WIDTH}" height="{height:.0f}" '
            f'role="img" aria-label="{escape(title)}" font-family="{escape(FONT)}" '
            f'font-size="12">',
            f"<title>{escape(title)}</title>",
        ]

    def finish(self) -> str:
        return "\n".join([*self.parts, "</svg>"])

    def rect(self, x: float, y: float, w: float, h: float, *, fill: str,
             stroke: str | None = None, width: float = 1, tip: str | None = None) -> None:
        """A rectangle; `tip` is shown when the pointer rests on it."""
        edge = f' stroke="{stroke}" stroke-width="{width}"' if stroke else ""
        shape = (f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
                 f'fill="{fill}"{edge}')
        tail = f"><title>{escape(tip)}</title></rect>" if tip else "/>"
        self.parts.append(shape + tail)

    def line(self, x1: float, y1: float, x2: float, y2: float, *, stroke: str,
             width: float = 1, dash: str | None = None) -> None:
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" '
            f'stroke-width="{width}"{dashes}/>'
        )

    def circle(self, x: float, y: float, r: float, *, fill: str) -> None:
        self.parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{fill}"/>')

    def path(self, d: str, *, fill: str, stroke: str, width: float = 1,
             dash: str | None = None) -> None:
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(
            f'<path d="{d}" fill="{fill}" stroke="{stroke}" stroke-width="{width}" '
            f'stroke-linejoin="round"{dashes}/>'
        )

    def text(self, x: float, y: float, content: str, *, anchor: str = "start",
             fill: str = INK, size: int | None = None, weight: str | None = None,
             rotate: int | None = None, halo: bool = False,
             tail: tuple[str, str] | None = None) -> None:
        attrs = [f'x="{x:.1f}"', f'y="{y:.1f}"', f'fill="{fill}"']
        if anchor != "start":
            attrs.append(f'text-anchor="{anchor}"')
        if size is not None:
            attrs.append(f'font-size="{size}"')
        if weight is not None:
            attrs.append(f'font-weight="{weight}"')
        if rotate is not None:
            attrs.append(f'transform="rotate({rotate} {x:.1f} {y:.1f})"')
        if halo:
            attrs.append('stroke="#ffffff" stroke-width="3" paint-order="stroke"')
        body = escape(content)
        if tail is not None:
            body += f'<tspan fill="{tail[1]}">{escape(tail[0])}</tspan>'
        self.parts.append(f"<text {' '.join(attrs)}>{body}</text>")


def _stacked(series: MemoryTimeline) -> list[tuple[str, str, list[int], list[int]]]:
    """(label, colour, lower, upper) of each band, bottom up: the overhead, then each kind."""
    lower = [series.overhead] * len(series.points)
    bands = []
    if series.overhead:
        bands.append(("CUDA context", OVERHEAD_COLOR, [0] * len(lower), list(lower)))
    for k, kind in enumerate(series.kinds):
        upper = [base + p.bytes[k] for base, p in zip(lower, series.points, strict=True)]
        bands.append((kind, KIND_COLORS.get(kind, "#888888"), lower, upper))
        lower = upper
    return bands


def _step_points(series: MemoryTimeline, values: Sequence[int],
                 x: Callable[[float], float], y: Callable[[float], float]) -> list[str]:
    """`x,y` vertices of a step line: each point's value held until the next point."""
    ops = [p.op for p in series.points]
    ends = [*ops[1:], series.ops]
    out: list[str] = []
    for op, end, value in zip(ops, ends, values, strict=True):
        out += [f"{x(op - 0.5):.1f},{y(value):.1f}", f"{x(end - 0.5):.1f},{y(value):.1f}"]
    return out


def _area(series: MemoryTimeline, lower: Sequence[int], upper: Sequence[int],
          x: Callable[[float], float], y: Callable[[float], float]) -> str:
    top = _step_points(series, upper, x, y)
    bottom = _step_points(series, lower, x, y)[::-1]
    return "M" + " L".join(top + bottom) + " Z"


def _step_line(series: MemoryTimeline, values: Sequence[int],
               x: Callable[[float], float], y: Callable[[float], float]) -> str:
    return "M" + " L".join(_step_points(series, values, x, y))


def _axes(svg: _Svg, left: float, top: float, plot_w: float, plot_h: float) -> None:
    svg.line(left, top + plot_h, left + plot_w, top + plot_h, stroke="#9aa5b1")
    svg.line(left, top, left, top + plot_h, stroke="#9aa5b1")


def _y_grid(svg: _Svg, ticks: Sequence[float], unit: str, scale: int, x0: float, x1: float,
            y: Callable[[float], float]) -> None:
    for tick in ticks:
        svg.line(x0, y(tick), x1, y(tick), stroke=GRID)
        svg.text(x0 - 8, y(tick) + 4, _tick_label(tick / scale), anchor="end", fill=MUTED,
                 size=11)
    svg.text(x0 - 8, y(ticks[-1]) - 10, unit, anchor="end", fill=MUTED, size=11)


def _kind_legend(svg: _Svg, series: MemoryTimeline, x0: float, y0: float) -> float:
    """The kinds drawn, top band first, each with the bytes it holds at the peak; returns the
    y below the last row."""
    point = series.points[series.peak_point]
    svg.text(x0, y0 + 4, "live at the peak", fill=INK, weight="bold")
    drawn = [k for k, _ in enumerate(series.kinds) if any(p.bytes[k] for p in series.points)]
    rows = [(series.kinds[k], point.bytes[k]) for k in reversed(drawn)]
    if series.overhead:
        rows.append(("CUDA context", series.overhead))
    for i, (kind, nbytes) in enumerate(rows):
        yy = y0 + 24 + i * 20
        svg.rect(x0, yy - 10, 12, 12, fill=KIND_COLORS.get(kind, OVERHEAD_COLOR))
        svg.text(x0 + 18, yy, text.kind_label(kind), fill=INK, size=11)
        svg.text(x0 + 200, yy, format_bytes(nbytes), anchor="end", fill=MUTED, size=11)
    return y0 + 24 + len(rows) * 20


def _marker_legend(svg: _Svg, items: Sequence[tuple[str, str]], x0: float, y0: float) -> None:
    if items:
        svg.rect(x0 - 8, y0 - 16, 300, 18 * len(items) + 6, fill="#ffffff", stroke=GRID)
    for i, (label, marker) in enumerate(items):
        yy = y0 + i * 18
        if marker == "dot":
            svg.circle(x0 + 6, yy - 4, 5, fill=PARAMS_COLOR)
        elif marker == "square":
            svg.rect(x0 + 2, yy - 8, 8, 8, fill="#ffffff", stroke=MUTED, width=1.5)
        elif marker == "dash":
            svg.line(x0, yy - 4, x0 + 14, yy - 4, stroke=INK, dash="5 3", width=1.2)
        else:
            svg.path(f"M{x0 + 6},{yy - 11} L{x0 + 13},{yy - 4} L{x0 + 6},{yy + 3} "
                     f"L{x0 - 1},{yy - 4} Z", fill=CAPACITY, stroke="none")
        svg.text(x0 + 20, yy, label, fill=INK, size=11, halo=True)


def _nice_step(span: float, count: int = 5) -> float:
    """A step of 1, 2, 2.5 or 5 x 10^k giving about `count` ticks over `span`."""
    raw = span / count
    power = 10.0 ** math.floor(math.log10(raw))
    for mult in (1, 2, 2.5, 5, 10):
        if raw <= mult * power:
            return mult * power
    return 10 * power


def _count_ticks(top: float) -> list[float]:
    """Ticks from 0 past `top` (at least 1) on a 1-2-5 step."""
    step = max(1.0, _nice_step(max(top, 1.0)))
    step = float(math.ceil(step))
    n = max(1, math.ceil(top / step))
    return [i * step for i in range(n + 1)]


BINARY_UNITS = (("B", 1), ("KiB", 2**10), ("MiB", 2**20), ("GiB", 2**30), ("TiB", 2**40),
                ("PiB", 2**50))


def byte_unit(top: int) -> tuple[str, int]:
    """The binary unit an axis up to `top` bytes is labelled in, and its size in bytes."""
    unit, scale = BINARY_UNITS[0]
    for name, size in BINARY_UNITS:
        if max(top, 1) >= size:
            unit, scale = name, size
    return unit, scale


def _byte_ticks(top: int) -> tuple[list[float], str, int]:
    """Ticks in bytes from 0 past `top`, their binary unit and its size in bytes."""
    top = max(top, 1)
    unit, scale = byte_unit(top)
    step = _nice_step(top / scale)
    n = max(1, math.ceil(top / scale / step - 1e-9))
    return [i * step * scale for i in range(n + 1)], unit, scale


def _tick_label(value: float) -> str:
    return f"{value:g}"


SHORT_PHASES = {"forward": "fwd", "backward": "bwd", "optimizer": "opt", "decode": "dec"}


def _fitting(phase: str, width: float) -> str:
    """The phase's name if it fits in `width` pixels, else its short form, else nothing."""
    for label in (phase, SHORT_PHASES.get(phase, "")):
        if label and width >= 7 * len(label) + 6:
            return label
    return ""


def _clip(label: str, width: int) -> str:
    return label if len(label) <= width else "…" + label[-(width - 1):]
