"""The report's charts as matplotlib figures, for notebooks and PNG/PDF files.

`pip install 'memflops[plot]'` brings matplotlib; nothing else in memflops
needs it (the HTML report and `--plot NAME -o chart.svg` draw their SVG
themselves, `report/charts.py`). The figures are the same charts, in the
same colours: `plot_timeline`, `plot_modules`, `plot_sweep` (with a
throughput panel when timed) and `plot_roofline`, each a
function of the typed `Report` returning a `matplotlib.figure.Figure`
(made without pyplot, so no global figure state is touched), or raising a
`UsageError` that says which option brings the chart's data.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from memflops.errors import UsageError
from memflops.report import text
from memflops.report.charts import (
    CAPACITY,
    FLOPS_COLOR,
    INK,
    KIND_COLORS,
    MAX_MODULE_ROWS,
    MUTED,
    OVERHEAD_COLOR,
    PARAMS_COLOR,
    PHASE_SHADES,
    POINT_COLOR,
    RESERVED_COLOR,
    ROOF_COLOR,
    ROOFLINE_NAMED,
    THROUGHPUT_COLOR,
    byte_unit,
)
from memflops.units import format_bytes, format_count, format_int

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from memflops.report.model import Report

INSTALL = "pip install 'memflops[plot]'"
PLOTS = ("timeline", "modules", "sweep", "roofline")


def new_figure(width: float, height: float) -> Figure:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError(f"plots need matplotlib: {INSTALL}") from None
    return Figure(figsize=(width, height), layout="constrained")


def figure(report: Report, plot: str) -> Figure:
    """The chart `plot` ("timeline", "modules", "sweep" or "roofline") as a figure.

    Each chart checks that the report has its data before matplotlib is
    imported, so a missing sweep is reported as such, with or without it.
    """
    charts = {"timeline": plot_timeline, "modules": plot_modules, "sweep": plot_sweep,
              "roofline": plot_roofline}
    if plot not in charts:
        raise UsageError(f"unknown plot {plot!r}; expected one of: {', '.join(PLOTS)}")
    return charts[plot](report)


def plot_timeline(report: Report) -> Figure:
    """Bytes live by kind over the step's op sequence, phases shaded, the peak annotated."""
    series = report.memory_timeline
    if series is None or not series.points:
        raise UsageError(
            "no memory timeline in this report (a layer-list spec and generation have none): "
            "analyse a module or a zoo model"
        )
    peak = report.totals.memory.peak
    unit, scale = byte_unit(peak)
    fig = new_figure(10, 4.6)
    ax = fig.add_subplot()
    for i, span in enumerate(series.phases):
        ax.axvspan(span.first - 0.5, span.last + 0.5, color=PHASE_SHADES[i % 2], zorder=0)
        if span.last - span.first + 1 >= 0.08 * series.ops:  # room for its name
            ax.text((span.first + span.last) / 2, 0.98, span.phase, ha="center", va="top",
                    color=MUTED, fontsize=8, transform=ax.get_xaxis_transform())
    xs = [p.op - 0.5 for p in series.points] + [series.ops - 0.5]
    lower = [series.overhead / scale] * len(xs)
    if series.overhead:
        ax.fill_between(xs, 0, lower, step="post", color=OVERHEAD_COLOR, lw=0,
                        label=f"CUDA context {format_bytes(series.overhead)}")
    at_peak = series.points[series.peak_point].bytes
    for k, kind in enumerate(series.kinds):
        values = [p.bytes[k] / scale for p in series.points]
        if not any(values):
            continue
        upper = [base + v for base, v in zip(lower, [*values, values[-1]], strict=True)]
        ax.fill_between(xs, lower, upper, step="post", color=KIND_COLORS.get(kind, MUTED), lw=0,
                        label=f"{text.kind_label(kind)} {format_bytes(at_peak[k])}")
        lower = upper
    ax.step(xs, lower, where="post", color=INK, lw=0.8)
    point = series.points[series.peak_point]
    ax.axvline(point.op, color=INK, ls="--", lw=0.8)
    where = report.memory_detail
    label = f"peak {format_bytes(peak)}"
    if where is not None:
        label += f"\n{where.peak_phase}: {where.peak_op}\nin {where.peak_module or '(root)'}"
    ax.annotate(label, (point.op, peak / scale), xytext=(-8, 8), textcoords="offset points",
                ha="right", va="bottom", fontsize=8, color=INK)
    top = peak * 1.3
    if report.fit is not None:
        capacity = report.fit.capacity
        if capacity <= 1.6 * peak:
            ax.axhline(capacity / scale, color=CAPACITY, ls="--", lw=1.2)
            top = max(top, capacity * 1.05)
        name = f"capacity {format_bytes(capacity)}"
        ax.plot([], [], color=CAPACITY, ls="--",
                label=name if capacity <= 1.6 * peak else f"{name} (above the chart)")
    ax.set_xlim(-1, series.ops)
    ax.set_ylim(0, top / scale)
    ax.set_xlabel(f"op sequence ({format_int(series.ops)} ops)")
    ax.set_ylabel(f"bytes live ({unit})")
    ax.set_title(f"Memory over the step: {report.model}", loc="left", fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], labels[::-1], title="live at the peak", loc="upper left",
              bbox_to_anchor=(1.01, 1), fontsize=8, title_fontsize=8, frameon=False)
    return fig


def plot_modules(report: Report) -> Figure:
    """Parameters and forward FLOPs per module, side by side."""
    rows, total = report.chart_modules(MAX_MODULE_ROWS)
    if not rows:
        raise UsageError("no module with parameters or FLOPs in this report")
    conv = report.convention
    fig = new_figure(10, 1.0 + 0.22 * len(rows))
    params_ax, flops_ax = fig.subplots(1, 2, sharey=True)
    names = [f"{text.module_label(r)} ({r.type})" for r in rows]
    ys = list(range(len(rows)))
    for ax, values, colour, title in (
        (params_ax, [r.params for r in rows], PARAMS_COLOR, "parameters"),
        (flops_ax, [r.forward.under(conv) for r in rows], FLOPS_COLOR,
         f"forward FLOPs ({conv.value})"),
    ):
        ax.barh(ys, values, color=colour, height=0.7)
        for y, value in zip(ys, values, strict=True):
            ax.annotate(format_count(value), (value, y), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize=7, color=MUTED)
        ax.set_title(title, loc="left", fontsize=10)
        ax.set_xlim(0, max(max(values), 1) * 1.2)
        ax.xaxis.set_visible(False)
        for side in ("top", "right", "bottom"):
            ax.spines[side].set_visible(False)
    params_ax.set_yticks(ys, names, fontsize=8)
    params_ax.invert_yaxis()
    if total > len(rows):
        fig.suptitle(f"the first {len(rows)} of {total} top-level modules", fontsize=8,
                     color=MUTED)
    return fig


def plot_sweep(report: Report) -> Figure:
    """Peak memory against batch size: analysed points, fitted line, estimate and capacity."""
    sweep, fit = report.sweep, report.fit
    if sweep is None and fit is None:
        raise UsageError("no batch sweep or fit in this report: give --batch-sweep or --fit")
    dim = sweep.dimension if sweep is not None else fit.dimension  # type: ignore[union-attr]
    sizes = [p.size for p in sweep.points] if sweep is not None else []
    values = [p.peak for p in sweep.points] if sweep is not None else []
    if fit is not None:
        sizes.append(fit.largest + 1)
        values.append(fit.capacity)
    unit, scale = byte_unit(max(values))
    timed = [(p.size, p.samples_per_s) for p in sweep.points if p.samples_per_s is not None] \
        if sweep is not None else []
    fig = new_figure(10, 6.8 if timed else 4.2)
    if timed:
        ax, throughput_ax = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    else:
        ax = fig.add_subplot()
    log_x = max(sizes) >= 16 * max(min(sizes), 1)
    if log_x:
        ax.set_xscale("log", base=2)
        first, last = math.floor(math.log2(max(min(sizes), 1))), math.ceil(math.log2(max(sizes)))
        ticks = [2**k for k in range(first, last + 1)]
        ax.set_xticks(ticks, [format_int(t) for t in ticks])
        ax.minorticks_off()
    lo, hi = (max(min(sizes), 1) / 1.2, max(sizes) * 1.2) if log_x else (0, max(sizes) * 1.05)
    if sweep is not None:
        xs = _grid(lo, hi, log_x)
        ax.plot(xs, [(sweep.constant + sweep.per_item * x) / scale for x in xs], color=INK,
                ls="--", lw=1,
                label=f"fit: {format_bytes(sweep.constant)} + {format_bytes(sweep.per_item)} "
                      f"x {dim}")
        ax.scatter(sizes[: len(sweep.points)], [p.peak / scale for p in sweep.points],
                   color=PARAMS_COLOR, zorder=3, label="peak (analysed)")
        ax.scatter(sizes[: len(sweep.points)], [p.seed_estimate / scale for p in sweep.points],
                   facecolors="white", edgecolors=MUTED, marker="s", zorder=3,
                   label="seed estimate (article's formula)")
        reserved = [(p.size, p.reserved) for p in sweep.points if p.reserved is not None]
        if reserved:
            ax.scatter([s for s, _ in reserved], [r / scale for _, r in reserved],
                       facecolors="white", edgecolors=RESERVED_COLOR, linewidths=1.5, zorder=3,
                       label="reserved (caching allocator)")
    if fit is not None:
        ax.axhline(fit.capacity / scale, color=CAPACITY, ls="--", lw=1.2,
                   label=f"capacity {format_bytes(fit.capacity)}")
        if fit.largest:
            ax.scatter([fit.largest], [fit.peak_at_largest / scale], color=CAPACITY, marker="D",
                       zorder=4, label=f"largest {dim} that fits: {format_int(fit.largest)}")
    ax.set_xlim(lo, hi)
    if max(values) >= 16 * max(min(values), 1):  # a capacity far above the sweep, as the SVG
        ax.set_yscale("log", base=2)
        y_lo, y_hi = min(values) / 1.3 / scale, max(values) * 1.15 / scale
        ticks = [2.0**k for k in range(math.ceil(math.log2(y_lo)), math.floor(math.log2(y_hi)) + 1)]
        ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_ylim(y_lo, y_hi)
        ax.set_ylabel(f"peak ({unit}, log scale)")
    else:
        ax.set_ylim(0, max(values) * 1.1 / scale)
        ax.set_ylabel(f"peak ({unit})")
    ax.set_xlabel(f"{dim} (log scale)" if log_x else dim)
    ax.set_title(f"Peak memory by {dim}: {report.model}", loc="left", fontsize=10)
    ax.grid(True, color="#e4e7eb", lw=0.6)
    ax.legend(fontsize=8, loc="center left", framealpha=0.9, edgecolor="#e4e7eb")
    if timed:
        _throughput(throughput_ax, report, timed)
        throughput_ax.set_xlabel(ax.get_xlabel())
        ax.set_xlabel("")  # the axes below, which shares it, names the size
    return fig


def _throughput(ax: Any, report: Report, timed: list[tuple[int, float]]) -> None:
    """Samples/s against size (the axes below the memory one), the saturation marked."""
    ax.plot([s for s, _ in timed], [r for _, r in timed], color=THROUGHPUT_COLOR, marker="o",
            label="samples/s")
    fit = report.fit
    if fit is not None and fit.largest and fit.samples_per_s is not None:
        ax.scatter([fit.largest], [fit.samples_per_s], color=CAPACITY, marker="D", zorder=4,
                   label=f"largest that fits: {fit.samples_per_s:,.0f}/s")
    sweep = report.sweep
    if sweep is not None and sweep.saturated_at is not None:
        ax.axvline(sweep.saturated_at, color=INK, ls="--", lw=0.8,
                   label=f"saturates at {sweep.dimension} {format_int(sweep.saturated_at)}")
    name = report.timing.accelerator.name if report.timing is not None else "the accelerator"
    ax.set_ylabel("samples/s")
    rates = [r for _, r in timed] + ([fit.samples_per_s] if fit and fit.samples_per_s else [])
    ax.set_ylim(0, max(rates) * 1.15)
    ax.set_title(f"throughput on {name}", loc="left", fontsize=9)
    ax.grid(True, color="#e4e7eb", lw=0.6)
    ax.legend(fontsize=8, loc="lower right", framealpha=0.9, edgecolor="#e4e7eb")


def plot_roofline(report: Report) -> Figure:
    """Each module's arithmetic intensity against its attained FLOP/s (log-log), under the
    accelerator's roofs; a point's area is its share of the step's time."""
    roofline = report.roofline()
    if roofline is None:
        raise UsageError("no time model in this report: give --gpu NAME (analyze(gpu=...)) "
                         "for the roofline")
    fig = new_figure(10, 5.2)
    ax = fig.add_subplot()
    ax.set_xscale("log")
    ax.set_yscale("log")
    points = roofline.points
    bandwidth, eff = roofline.bandwidth, roofline.memory_efficiency
    highest = roofline.roofs[0]
    x_lo = min(min(p.intensity for p in points), min(r.ridge for r in roofline.roofs) / 10) / 2
    x_hi = max(max(p.intensity for p in points), highest.ridge) * 3
    ax.plot([x_lo, highest.ridge], [bandwidth * x_lo, highest.flops_per_s], color=ROOF_COLOR,
            lw=1.6, label=f"memory {bandwidth / 1e9:,.0f} GB/s")
    for roof in roofline.roofs:
        ax.plot([roof.ridge, x_hi], [roof.flops_per_s] * 2, color=ROOF_COLOR, lw=1.6)
        ax.annotate(f"{roof.unit} peak {roof.flops_per_s / 1e12:g} TFLOP/s",
                    (x_hi, roof.flops_per_s), xytext=(-4, 4), textcoords="offset points",
                    ha="right", fontsize=8, color=ROOF_COLOR)
        reach = roof.flops_per_s * roof.efficiency
        ax.plot([reach / (bandwidth * eff), x_hi], [reach] * 2, color=ROOF_COLOR, lw=0.8,
                ls="--")
    top = highest.flops_per_s * highest.efficiency
    ax.plot([x_lo, top / (bandwidth * eff)], [bandwidth * eff * x_lo, top], color=ROOF_COLOR,
            lw=0.8, ls="--", label="what the time model lets a kernel reach")
    largest = max(p.share for p in points)
    ax.scatter([p.intensity for p in points], [p.attained for p in points],
               s=[8 + 150 * p.share / largest for p in points], color=POINT_COLOR,
               edgecolors="white", linewidths=0.5, zorder=3,
               label=f"modules, {roofline.scope} (area: share of the time)")
    named: list[tuple[float, float]] = []
    for p in sorted(points, key=lambda p: -p.share):
        where = (math.log10(p.intensity), math.log10(p.attained))
        if len(named) == ROOFLINE_NAMED:
            break
        if any(abs(where[0] - a) < 0.3 and abs(where[1] - b) < 0.15 for a, b in named):
            continue  # a label already stands there
        named.append(where)
        ax.annotate(f"{p.path or text.ROOT_LABEL} {p.share:.1%}", (p.intensity, p.attained),
                    xytext=(6, -3), textcoords="offset points", fontsize=7, color=INK)
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(min(p.attained for p in points) / 2, highest.flops_per_s * 2.5)
    ax.set_xlabel("arithmetic intensity (FLOPs per byte moved)")
    ax.set_ylabel("attained FLOP/s")
    ax.set_title(f"Roofline on {roofline.accelerator}: {report.model}", loc="left", fontsize=10)
    ax.grid(True, which="major", color="#e4e7eb", lw=0.6)
    ax.legend(fontsize=8, loc="lower right", framealpha=0.9, edgecolor="#e4e7eb")
    return fig


def _grid(lo: float, hi: float, log: bool, n: int = 100) -> list[float]:
    if log:
        return [lo * (hi / lo) ** (i / n) for i in range(n + 1)]
    return [lo + (hi - lo) * i / n for i in range(n + 1)]


def save(figure: Any, path: str) -> None:
    """Write `figure` to `path` in the format of its extension (png, pdf, svg, ...)."""
    figure.savefig(path, dpi=150)

