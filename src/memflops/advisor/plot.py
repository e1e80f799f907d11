"""The advice's savings chart as a matplotlib figure, for notebooks and PNG/PDF files
(`Advice.plot_savings()`, `memflops advise ... --plot savings -o savings.png`).

The same chart as the SVG of `advisor/chart.py`, in its colours: each measured change's
peak memory and FLOPs per step (recompute included) beside the baseline's (dashed), and
the budget (red). Made without pyplot, so no global figure state is touched; matplotlib
comes with `pip install 'memflops[plot]'`. It reads the typed `Advice` and computes
nothing but the drawing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memflops.advisor.chart import MAX_ROWS, rows
from memflops.errors import UsageError
from memflops.report.charts import CAPACITY, INK, MUTED, byte_unit
from memflops.report.plot import new_figure
from memflops.units import format_bytes, format_count

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from memflops.advisor.advice import Advice


def plot_savings(advice: Advice) -> Figure:
    """Peak memory and FLOPs per step of the baseline and of each measured change."""
    shown = rows(advice)[:MAX_ROWS]
    if len(shown) < 2:
        raise UsageError("no change was analysed, so there is nothing to chart (every change "
                         "was not applicable or failed: see the advice's table)")
    base = advice.baseline
    labels = [row.label for row in shown]
    peaks = [row.measured.peak for row in shown]
    flops = [row.measured.flops_step for row in shown]
    colors = [row.color for row in shown]
    unit, scale = byte_unit(max([*peaks, advice.budget or 0]))
    fig = new_figure(11, 1.4 + 0.28 * len(labels))
    memory, work = fig.subplots(1, 2, sharey=True)
    bars = list(range(len(labels)))
    memory.barh(bars, [p / scale for p in peaks], color=colors)
    memory.axvline(base.peak / scale, color=INK, linestyle="--", linewidth=1)
    if advice.budget is not None:
        memory.axvline(advice.budget / scale, color=CAPACITY, linewidth=1.5,
                       label=f"budget {format_bytes(advice.budget)}")
        memory.legend(loc="lower right", fontsize=8)
    for bar, peak in zip(bars, peaks, strict=True):
        memory.text(peak / scale, bar, f" {format_bytes(peak)}", va="center", fontsize=8,
                    color=MUTED)
    memory.set_xlabel(f"peak memory ({unit})")
    work.barh(bars, flops, color=colors)
    work.axvline(base.flops_step, color=INK, linestyle="--", linewidth=1)
    for bar, count in zip(bars, flops, strict=True):
        work.text(count, bar, f" {format_count(count)}", va="center", fontsize=8, color=MUTED)
    work.set_xlabel("FLOPs per step (recompute included)")
    memory.set_yticks(bars, labels, fontsize=8)
    memory.invert_yaxis()
    for ax in (memory, work):
        ax.margins(x=0.25)
        ax.grid(axis="x", color="#e4e7eb")
        ax.set_axisbelow(True)
    fig.suptitle(f"What each change saves: {advice.model}", fontsize=11)
    return fig

