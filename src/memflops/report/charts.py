"""Charts of a `Report` as static SVG, drawn by this module: no plotting library, no script.

Each chart is a function of the typed `Report` that returns an `<svg>`
element as text, or None when the report lacks its data, so a chart
appears exactly when its data is in the report:

- `timeline`: bytes live by kind over the op sequence of the step
  (`Report.memory_timeline`), phases shaded, the peak and what is live
  then annotated, the caching allocator's reserved peak and the device
  total (`totals.memory`), and the capacity of `fit` (saying when it was
  held against the device total) drawn when it is in range;
- `modules`: parameters and forward FLOPs per module, side by side
  (`Report.chart_modules`); for examples/vgg16.yaml it is the reference
  article's figure;
- `sweep`: peak memory, allocated and reserved, against batch size
  (`Report.sweep`, `Report.fit`), with the fitted line, the article's
  estimate and the capacity; when timed, samples/s against batch size
  below it, each point's step time, the fit's throughput and where the
  throughput saturates;
- `roofline`: each module's arithmetic intensity against the FLOP/s it
  attains (`Report.roofline`), under the accelerator's roofs, its area its
  share of the step's time.

A new chart of a report is one more function here and one entry in `CHARTS`
(the advice's savings chart is `advisor/chart.py`, drawn with `Svg`). Charts read numbers
from the report; the arithmetic here is only drawing (scales, stacking,
ticks). The SVG uses no ids, so several reports fit in one notebook.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape
from typing import TYPE_CHECKING

from memflops.memory.fit import SATURATION
from memflops.report import text
from memflops.units import format_bytes, format_count, format_int, format_seconds

if TYPE_CHECKING:
    from memflops.report.model import MemoryTimeline, Report, Roofline

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
RESERVED_COLOR = "#0f7b8a"
DEVICE_COLOR = "#7a4f9a"
ROOF_COLOR = "#3e4c59"
POINT_COLOR = "#e15759"
THROUGHPUT_COLOR = "#59a14f"
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
    levels = _allocator_levels(report)
    shown = [v for v in (capacity, *(v for _, v, _ in levels)) if v is not None and v <= 1.6 * peak]
    top_value = max([peak, *shown])
    ticks, unit, scale = _byte_ticks(int(top_value * 1.3))
    y_max = ticks[-1]

    def x(op: float) -> float:
        return left + (op + 1) / (series.ops + 1) * plot_w

    def y(value: float) -> float:
        return top + plot_h - value / y_max * plot_h

    svg = Svg(height, "timeline", "Memory over the step")
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
    for label, value, colour in levels:  # what the allocator holds, beside what is live
        if value <= y_max:
            ly = y(value)
            svg.line(left, ly, left + plot_w, ly, stroke=colour, dash="2 3", width=1.5)
            svg.text(left + 6, ly - 5, f"{label} {format_bytes(value)}", fill=colour, size=11,
                     halo=True)
    off_scale = capacity is not None and capacity > y_max
    against = _against(report)
    if capacity is not None and not off_scale:
        cy = y(capacity)
        svg.line(left, cy, left + plot_w, cy, stroke=CAPACITY, dash="6 4", width=1.5)
        svg.text(left + plot_w - 4, cy - 5, f"capacity {format_bytes(capacity)}{against}",
                 anchor="end", fill=CAPACITY, halo=True)
    end = _kind_legend(svg, series, left + plot_w + 22, top)
    for label, value, colour in levels:
        svg.line(left + plot_w + 22, end + 2, left + plot_w + 34, end + 2, stroke=colour,
                 dash="2 2", width=1.5)
        svg.text(left + plot_w + 40, end + 6, label + (" (above)" if value > y_max else ""),
                 fill=colour, size=11)
        svg.text(left + plot_w + 222, end + 6, format_bytes(value), anchor="end", fill=MUTED,
                 size=11)
        end += 20
    if capacity is not None:
        svg.line(left + plot_w + 22, end + 2, left + plot_w + 34, end + 2, stroke=CAPACITY,
                 dash="4 2", width=1.5)
        svg.text(left + plot_w + 40, end + 6, f"capacity {format_bytes(capacity)}",
                 fill=CAPACITY, size=11)
        notes = [against.strip(" ()")] if against else []
        if off_scale:
            notes.append("(above the chart)")
        for i, note in enumerate(notes):
            svg.text(left + plot_w + 40, end + 21 + 15 * i, note, fill=CAPACITY, size=11)
    return svg.finish()


def _allocator_levels(report: Report) -> list[tuple[str, int, str]]:
    """(label, bytes, colour) of the caching allocator's reserved peak and the device total
    nvidia-smi shows, when the allocator was simulated."""
    memory = report.totals.memory
    levels = []
    if memory.reserved is not None:
        levels.append(("reserved peak", memory.reserved, RESERVED_COLOR))
    if memory.device_total is not None:
        levels.append(("device total", memory.device_total, DEVICE_COLOR))
    return levels


def _against(report: Report) -> str:
    """` (held against the device total)` when the fit judged the device total, else ``."""
    fit = report.fit
    return " (held against the device total)" if fit is not None and fit.against == "reserved" \
        else ""


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
    svg = Svg(height, "modules", "Parameters and FLOPs per module")
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
    """Peak memory against batch size: analysed points (allocated, and reserved when the
    allocator was simulated), fitted line, estimate and capacity; below it, with an
    accelerator, throughput against batch size, the saturation point marked."""
    sweep, fit = report.sweep, report.fit
    if sweep is None and fit is None:
        return None
    dim = (sweep or fit).dimension  # type: ignore[union-attr]
    left, right, top, bottom = 78, 40, 28, 48
    mem_h = 360
    timed = _timed_points(report)
    height = mem_h + (TIME_PANEL_H if timed else 0)
    plot_w, plot_h = WIDTH - left - right, mem_h - top - bottom
    sizes = [p.size for p in sweep.points] if sweep is not None else []
    values = [p.peak for p in sweep.points] + [p.seed_estimate for p in sweep.points] \
        if sweep is not None else []
    reserved = [(p.size, p.reserved) for p in sweep.points if p.reserved is not None] \
        if sweep is not None else []
    values += [r for _, r in reserved]
    if fit is not None:
        sizes += [fit.largest + 1]
        values += [fit.capacity, fit.peak_at_largest]
        if fit.peak_at_next is not None:
            values.append(fit.peak_at_next)
    x, x_ticks, log_x = _size_axis(sizes, left, plot_w)
    x_lo, x_hi = (x_ticks[0], x_ticks[-1]) if log_x else (0.0, x_ticks[-1])
    smallest = min(values)
    log_y = max(values) >= 16 * max(smallest, 1)  # a capacity far above the sweep
    svg = Svg(height, "sweep", f"Peak memory by {dim}")
    if log_y:  # powers of two of bytes, so the swept points are not crushed at the bottom
        k0 = math.floor(math.log2(max(smallest / 1.3, 1)))
        k1 = math.ceil(math.log2(max(values) * 1.15))
        y_max = 2.0**k1

        def y(value: float) -> float:
            v = math.log2(max(value, 2.0**k0))
            return top + plot_h - (v - k0) / (k1 - k0) * plot_h

        step = max(1, math.ceil((k1 - k0) / 8))
        for k in range(k0, k1 + 1, step):
            svg.line(left, y(2.0**k), left + plot_w, y(2.0**k), stroke=GRID)
            svg.text(left - 8, y(2.0**k) + 4, _power_of_two_label(2**k), anchor="end",
                     fill=MUTED, size=11)
        unit = "log scale"
    else:
        y_ticks, unit, scale = _byte_ticks(int(max(values) * 1.08))
        y_max = y_ticks[-1]

        def y(value: float) -> float:
            return top + plot_h - value / y_max * plot_h

        _y_grid(svg, y_ticks, unit, scale, left, left + plot_w, y)
    _size_ticks(svg, x, x_ticks, top + plot_h)
    _axes(svg, left, top, plot_w, plot_h)
    axis = f"{dim} (log scale)" if log_x else dim
    svg.text(left + plot_w / 2, mem_h - 8, axis, anchor="middle", fill=MUTED)
    svg.text(14, top + plot_h / 2, f"peak ({unit})", anchor="middle", fill=MUTED, rotate=-90)
    legend: list[tuple[str, str]] = []
    if fit is not None:
        cy = y(fit.capacity)
        svg.line(left, cy, left + plot_w, cy, stroke=CAPACITY, dash="6 4", width=1.5)
        svg.text(left + 6, cy - 6, f"capacity {format_bytes(fit.capacity)}{_against(report)}",
                 fill=CAPACITY, halo=True)
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
            if p.reserved is not None:
                svg.circle(x(p.size), y(p.reserved), 5, fill="#ffffff", stroke=RESERVED_COLOR,
                           width=2, tip=f"{dim} {p.size}: reserved {format_int(p.reserved)} B")
            svg.circle(x(p.size), y(p.peak), 5, fill=PARAMS_COLOR,
                       tip=f"{dim} {p.size}: peak {format_int(p.peak)} B")
            svg.text(x(p.size) + 8, y(p.peak) + 14, format_bytes(p.peak), fill=INK, size=11,
                     halo=True)
        legend.append(("peak, allocated (analysed)", "dot"))
        if reserved:
            legend.append(("reserved (caching allocator)", "ring"))
        legend += [
            ("seed estimate (article's formula)", "square"),
            (f"fit: {format_bytes(sweep.constant)} + {format_bytes(sweep.per_item)} x {dim}",
             "dash"),
        ]
    if fit is not None and fit.largest:
        fx, fy = x(fit.largest), y(fit.peak_at_largest)
        _diamond(svg, fx, fy)
        anchor = "end" if fx > left + plot_w * 0.6 else "start"
        svg.text(fx + (-12 if anchor == "end" else 12), fy + 18,
                 f"largest {dim} that fits: {format_int(fit.largest)}", anchor=anchor,
                 fill=CAPACITY, weight="bold", halo=True)
        legend.append((f"largest {dim} that fits", "diamond"))
    _marker_legend(svg, legend, left + plot_w - 300, top + plot_h - 18 * len(legend) + 2)
    if timed:
        _throughput_panel(svg, report, timed, x, x_ticks, log_x, left, plot_w, mem_h)
    return svg.finish()


TIME_PANEL_H = 250
"""Height of the sweep chart's throughput panel, below its memory panel."""


def _timed_points(report: Report) -> list[tuple[int, float, float, bool]]:
    """(size, samples/s, step s, from the fit) of every size timed on the accelerator."""
    points = [(p.size, p.samples_per_s, p.time_step_s, False)
              for p in (report.sweep.points if report.sweep is not None else ())
              if p.samples_per_s is not None and p.time_step_s is not None]
    fit = report.fit
    if fit is not None and fit.largest and fit.samples_per_s is not None \
            and fit.time_step_s is not None:
        points.append((fit.largest, fit.samples_per_s, fit.time_step_s, True))
    return points


def _throughput_panel(svg: Svg, report: Report, points: Sequence[tuple[int, float, float, bool]],
                      x: Callable[[float], float], x_ticks: Sequence[float], log_x: bool,
                      left: float, plot_w: float, y0: float) -> None:
    """Samples/s against size below the memory panel (same x axis), each point's step time
    written beside it, and where throughput saturates."""
    sweep = report.sweep
    dim = (sweep or report.fit).dimension  # type: ignore[union-attr]
    top, plot_h = y0 + 34, TIME_PANEL_H - 34 - 48
    ticks = _count_ticks(max(rate for _, rate, _, _ in points) * 1.15)
    y_max = ticks[-1]

    def y(value: float) -> float:
        return top + plot_h - value / y_max * plot_h

    name = report.timing.accelerator.name if report.timing is not None else "the accelerator"
    svg.text(left, y0 + 16, f"throughput on {name} (samples/s; step time beside each point)",
             fill=INK, weight="bold")
    for tick in ticks:
        svg.line(left, y(tick), left + plot_w, y(tick), stroke=GRID)
        svg.text(left - 8, y(tick) + 4, format_int(int(tick)), anchor="end", fill=MUTED, size=11)
    _size_ticks(svg, x, x_ticks, top + plot_h)
    _axes(svg, left, top, plot_w, plot_h)
    svg.text(left + plot_w / 2, y0 + TIME_PANEL_H - 8, f"{dim} (log scale)" if log_x else dim,
             anchor="middle", fill=MUTED)
    svg.text(14, top + plot_h / 2, "samples/s", anchor="middle", fill=MUTED, rotate=-90)
    swept = [pt for pt in points if not pt[3]]
    if len(swept) > 1:
        svg.path("M" + " L".join(f"{x(s):.1f},{y(r):.1f}" for s, r, _, _ in swept),
                 fill="none", stroke=THROUGHPUT_COLOR, width=1.5)
    saturated = sweep.saturated_at if sweep is not None else None
    if saturated is not None:
        sx = x(saturated)
        svg.line(sx, top, sx, top + plot_h, stroke=INK, dash="4 3")
        svg.text(sx + 6, top + 12, f"saturates at {dim} {format_int(saturated)}: within "
                 f"{SATURATION:.0%} of the best; a bigger {dim} is no faster per sample",
                 fill=INK, size=11, halo=True)
    elif swept:
        svg.text(left + 8, top + 12, f"throughput still rises at the largest {dim} swept",
                 fill=MUTED, size=11, halo=True)
    for size, rate, step, from_fit in points:
        px, py = x(size), y(rate)
        tip = f"{dim} {size}: {rate:,.1f} samples/s, step {format_seconds(step)}"
        if from_fit:
            _diamond(svg, px, py, tip=tip)
        else:
            svg.circle(px, py, 5, fill=THROUGHPUT_COLOR, tip=tip)
        anchor = "end" if px > left + plot_w * 0.8 else "start"
        label = f"{rate:,.0f}/s, {format_seconds(step)}"
        svg.text(px + (-9 if anchor == "end" else 9), py + 16,
                 f"largest that fits: {label}" if from_fit else label, anchor=anchor, fill=INK,
                 size=11, halo=True)


def _size_axis(sizes: Sequence[int], left: float,
               plot_w: float) -> tuple[Callable[[float], float], list[float], bool]:
    """The x scale of sizes (log base 2 when they span 16x or more), its ticks, and whether
    it is logarithmic."""
    log_x = max(sizes) >= 16 * max(min(sizes), 1)
    if log_x:  # a fit far beyond the sweep: powers of two, so both are readable
        k0, k1 = math.floor(math.log2(max(min(sizes), 1))), math.ceil(math.log2(max(sizes) * 1.05))
        x_ticks = [float(2**k) for k in range(k0, k1 + 1)]
        if len(x_ticks) > 14:
            x_ticks = x_ticks[::2]

        def x(size: float) -> float:
            return left + (math.log2(max(size, 2**k0)) - k0) / (k1 - k0) * plot_w
        return x, x_ticks, True
    x_ticks = _count_ticks(max(sizes) * 1.04)

    def linear(size: float) -> float:
        return left + size / x_ticks[-1] * plot_w
    return linear, x_ticks, False


def _size_ticks(svg: Svg, x: Callable[[float], float], ticks: Sequence[float],
                base: float) -> None:
    for tick in ticks:
        svg.line(x(tick), base, x(tick), base + 4, stroke=MUTED)
        svg.text(x(tick), base + 17, format_int(int(tick)), anchor="middle", fill=MUTED, size=11)


def _power_of_two_label(nbytes: int) -> str:
    """`512 MiB`, `1 GiB`, `64 GiB`: a power of two of bytes in its binary unit."""
    unit, scale = byte_unit(nbytes)
    return f"{nbytes / scale:g} {unit}"


def _diamond(svg: Svg, x: float, y: float, tip: str | None = None) -> None:
    svg.path(f"M{x:.1f},{y - 7:.1f} L{x + 7:.1f},{y:.1f} L{x:.1f},{y + 7:.1f} "
             f"L{x - 7:.1f},{y:.1f} Z", fill=CAPACITY, stroke="none", tip=tip)


def roofline_chart(report: Report) -> str | None:
    """Each module's arithmetic intensity against the FLOP/s it attains under the time
    model (log-log), below the accelerator's roofs: the memory bandwidth's slope and the
    dense peak of each unit the step computes on; a point's area is its share of the
    step's time, and the modules that take the most time are named."""
    roofline = report.roofline()
    if roofline is None:
        return None
    left, right, top, bottom = 78, 40, 30, 78
    height = 480
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    points = roofline.points
    bandwidth = roofline.bandwidth
    lowest_ridge = min(r.ridge for r in roofline.roofs)
    highest = roofline.roofs[0]
    # The data with a margin on every side (so no point sits on an axis); ticks at decades.
    x_lo = min(min(p.intensity for p in points), lowest_ridge / 10) / 2
    x_hi = max(max(p.intensity for p in points), highest.ridge) * 3
    y_lo = min(p.attained for p in points) / 2
    y_hi = highest.flops_per_s * 2.5
    x_lo = max(x_lo, y_lo / bandwidth / 3)  # no long empty slope below the lowest point

    def x(v: float) -> float:
        return left + math.log10(v / x_lo) / math.log10(x_hi / x_lo) * plot_w

    def y(v: float) -> float:
        return top + plot_h - math.log10(v / y_lo) / math.log10(y_hi / y_lo) * plot_h

    svg = Svg(height, "roofline", f"Roofline on {roofline.accelerator}")
    for k in range(math.ceil(math.log10(x_lo)), math.floor(math.log10(x_hi)) + 1):
        tx = x(10.0**k)
        svg.line(tx, top, tx, top + plot_h, stroke=GRID)
        svg.text(tx, top + plot_h + 17, f"{10.0**k:g}", anchor="middle", fill=MUTED, size=11)
    for k in range(math.ceil(math.log10(y_lo)), math.floor(math.log10(y_hi)) + 1):
        ty = y(10.0**k)
        svg.line(left, ty, left + plot_w, ty, stroke=GRID)
        svg.text(left - 8, ty + 4, _rate_label(10.0**k), anchor="end", fill=MUTED, size=11)
    _axes(svg, left, top, plot_w, plot_h)
    svg.text(left + plot_w / 2, height - 44, "arithmetic intensity (FLOPs per byte moved, log "
             "scale)", anchor="middle", fill=MUTED)
    svg.text(14, top + plot_h / 2, "attained FLOP/s (log scale)", anchor="middle", fill=MUTED,
             rotate=-90)
    _roofs(svg, roofline, x, y, x_lo, x_hi)
    largest = max(p.share for p in points)
    ranked = sorted(points, key=lambda p: -p.share)
    for p in sorted(points, key=lambda p: -p.share):  # big circles first, small ones on top
        r = 2.5 + 9 * math.sqrt(p.share / largest)
        svg.circle(x(p.intensity), y(p.attained), r, fill=POINT_COLOR, stroke="#ffffff",
                   width=0.8,
                   tip=f"{(p.path or text.ROOT_LABEL)} ({p.type}): {p.intensity:,.1f} FLOPs/B, "
                       f"{_rate_label(p.attained)}FLOP/s, {format_seconds(p.seconds)}, "
                       f"{p.share:.1%} of the step")
    named: list[tuple[float, float]] = []
    for p in ranked:
        px, py = x(p.intensity), y(p.attained)
        if len(named) == ROOFLINE_NAMED:
            break
        if any(abs(px - nx) < 120 and abs(py - ny) < 14 for nx, ny in named):
            continue  # a label already stands there
        named.append((px, py))
        right = px > left + plot_w - 220  # near the right edge: the label on the left
        svg.text(px - 9 if right else px + 9, py + 4,
                 f"{_clip(p.path or text.ROOT_LABEL, 28)} {p.share:.1%}",
                 anchor="end" if right else "start", fill=INK, size=11, halo=True)
    reach = ", ".join(f"{r.efficiency:g} of the {r.unit} peak" for r in roofline.roofs)
    whole = "the prefill's" if roofline.scope == "prefill" else "the step's"
    svg.text(left, height - 24, f"{len(points)} modules, {roofline.scope}; a circle's "
             f"area is its share of {whole} time. Solid: the datasheet's roofs; dashed: what "
             "the time model", fill=MUTED, size=11)
    svg.text(left, height - 9, f"lets a kernel reach ({roofline.memory_efficiency:g} of the "
             f"bandwidth, {reach}).", fill=MUTED, size=11)
    return svg.finish()


ROOFLINE_NAMED = 5
"""Modules named on the roofline: those that take the most time."""


def _roofs(svg: Svg, roofline: Roofline, x: Callable[[float], float],
           y: Callable[[float], float], x_lo: float, x_hi: float) -> None:
    """The bandwidth's slope up to the highest roof's ridge, each unit's peak from its ridge
    on (solid: datasheet; dashed: the time model's achievable fractions), labelled."""
    bandwidth, eff = roofline.bandwidth, roofline.memory_efficiency
    highest = roofline.roofs[0]
    svg.line(x(x_lo), y(bandwidth * x_lo), x(highest.ridge), y(highest.flops_per_s),
             stroke=ROOF_COLOR, width=2)
    reach = highest.flops_per_s * highest.efficiency / (bandwidth * eff)
    svg.line(x(x_lo), y(bandwidth * eff * x_lo), x(reach), y(bandwidth * eff * reach),
             stroke=ROOF_COLOR, width=1, dash="5 4")
    dx, dy = x(x_lo * 10) - x(x_lo), y(bandwidth * x_lo * 10) - y(bandwidth * x_lo)
    angle = math.degrees(math.atan2(dy, dx))
    at = x_lo * 10**0.25
    lx, ly = x(at), y(bandwidth * at) - 7
    svg.text(lx, ly, f"memory {bandwidth / 1e9:,.0f} GB/s", fill=ROOF_COLOR, size=11,
             rotate=round(angle), halo=True)
    for i, roof in enumerate(roofline.roofs):
        ry = y(roof.flops_per_s)
        svg.line(x(roof.ridge), ry, x(x_hi), ry, stroke=ROOF_COLOR, width=2)
        achievable = roof.flops_per_s * roof.efficiency
        start = achievable / (bandwidth * eff)
        svg.line(x(start), y(achievable), x(x_hi), y(achievable), stroke=ROOF_COLOR, width=1,
                 dash="5 4")
        label_y = ry - 6 if i == 0 else ry + 15  # lower roofs: below, clear of the points
        svg.text(x(x_hi) - 4, label_y, f"{roof.unit} peak {_rate_label(roof.flops_per_s)}FLOP/s "
                 f"(ridge {roof.ridge:,.1f} FLOPs/B)", anchor="end", fill=ROOF_COLOR, size=11,
                 halo=True)


def _rate_label(value: float) -> str:
    """`100 T`, `1.5 T`, `500 G`: a rate with a decimal prefix and a space before the unit."""
    for prefix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {prefix}"
    return f"{value:.3g} "


CHARTS: tuple[tuple[str, str, Callable[[Report], str | None]], ...] = (
    ("timeline", "Memory over the step", timeline_chart),
    ("modules", "Parameters and FLOPs per module", modules_chart),
    ("sweep", "Peak memory by batch size", sweep_chart),
    ("roofline", "Roofline: where the step's time goes", roofline_chart),
)
"""(name, title, chart) of every chart, in the order a report shows them."""


def charts(report: Report) -> list[tuple[str, str, str]]:
    """(name, title, svg) of the charts the report has data for."""
    drawn = [(name, title, chart(report)) for name, title, chart in CHARTS]
    return [(name, title, svg) for name, title, svg in drawn if svg is not None]


# --- drawing helpers -----------------------------------------------------------------------


class Svg:
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

    def circle(self, x: float, y: float, r: float, *, fill: str, stroke: str | None = None,
               width: float = 1, tip: str | None = None) -> None:
        edge = f' stroke="{stroke}" stroke-width="{width}"' if stroke else ""
        shape = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{fill}"{edge}'
        self.parts.append(shape + (f"><title>{escape(tip)}</title></circle>" if tip else "/>"))

    def path(self, d: str, *, fill: str, stroke: str, width: float = 1,
             dash: str | None = None, tip: str | None = None) -> None:
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        shape = (f'<path d="{d}" fill="{fill}" stroke="{stroke}" stroke-width="{width}" '
                 f'stroke-linejoin="round"{dashes}')
        self.parts.append(shape + (f"><title>{escape(tip)}</title></path>" if tip else "/>"))

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


def _axes(svg: Svg, left: float, top: float, plot_w: float, plot_h: float) -> None:
    svg.line(left, top + plot_h, left + plot_w, top + plot_h, stroke="#9aa5b1")
    svg.line(left, top, left, top + plot_h, stroke="#9aa5b1")


def _y_grid(svg: Svg, ticks: Sequence[float], unit: str, scale: int, x0: float, x1: float,
            y: Callable[[float], float]) -> None:
    for tick in ticks:
        svg.line(x0, y(tick), x1, y(tick), stroke=GRID)
        svg.text(x0 - 8, y(tick) + 4, _tick_label(tick / scale), anchor="end", fill=MUTED,
                 size=11)
    svg.text(x0 - 8, y(ticks[-1]) - 10, unit, anchor="end", fill=MUTED, size=11)


def _kind_legend(svg: Svg, series: MemoryTimeline, x0: float, y0: float) -> float:
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


def _marker_legend(svg: Svg, items: Sequence[tuple[str, str]], x0: float, y0: float) -> None:
    if items:
        svg.rect(x0 - 8, y0 - 16, 300, 18 * len(items) + 6, fill="#ffffff", stroke=GRID)
    for i, (label, marker) in enumerate(items):
        yy = y0 + i * 18
        if marker == "dot":
            svg.circle(x0 + 6, yy - 4, 5, fill=PARAMS_COLOR)
        elif marker == "square":
            svg.rect(x0 + 2, yy - 8, 8, 8, fill="#ffffff", stroke=MUTED, width=1.5)
        elif marker == "ring":
            svg.circle(x0 + 6, yy - 4, 5, fill="#ffffff", stroke=RESERVED_COLOR, width=2)
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
