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

from memflops.advisor.chart import BASELINE, COMBINED, COSTS, MAX_ROWS, SAVES, UNCHANGED
from memflops.advisor.text import measured
from memflops.errors import UsageError
from memflops.report.charts import CAPACITY, INK, MUTED, byte_unit
from memflops.report.plot import new_figure
from memflops.units import format_bytes, format_count

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from memflops.advisor.advice import Advice


def plot_savings(advice: Advice) -> Figure:
    """Peak memory and FLOPs per step of the baseline and of each measured change."""
    changes = [c for c in measured(advice) if c.delta is not None][: MAX_ROWS - 1]
    if not changes:
        raise UsageError("no change was analysed, so there is nothing to chart (every change "
                         "was not applicable or failed: see the advice's table)")
    base = advice.baseline
    labels = ["(baseline)"] + [c.name for c in changes]
    peaks = [base.peak] + [c.measured.peak for c in changes if c.measured is not None]
    flops = [base.flops_step] + [c.measured.flops_step for c in changes
                                 if c.measured is not None]
    colors = [BASELINE] + [_colour(c.delta.peak if c.delta is not None else 0) for c in changes]
    fit = advice.fit
    if fit is not None and fit.measured is not None and fit.changes:
        labels.append(" + ".join(fit.changes))
        peaks.append(fit.measured.peak)
        flops.append(fit.measured.flops_step)
        colors.append(COMBINED)
    unit, scale = byte_unit(max([*peaks, advice.budget or 0]))
    fig = new_figure(11, 1.4 + 0.28 * len(labels))
    memory, work = fig.subplots(1, 2, sharey=True)
    rows = list(range(len(labels)))
    memory.barh(rows, [p / scale for p in peaks], color=colors)
    memory.axvline(base.peak / scale, color=INK, linestyle="--", linewidth=1)
    if advice.budget is not None:
        memory.axvline(advice.budget / scale, color=CAPACITY, linewidth=1.5,
                       label=f"budget {format_bytes(advice.budget)}")
        memory.legend(loc="lower right", fontsize=8)
    for row, peak in zip(rows, peaks, strict=True):
        memory.text(peak / scale, row, f" {format_bytes(peak)}", va="center", fontsize=8,
                    color=MUTED)
    memory.set_xlabel(f"peak memory ({unit})")
    work.barh(rows, flops, color=colors)
    work.axvline(base.flops_step, color=INK, linestyle="--", linewidth=1)
    for row, count in zip(rows, flops, strict=True):
        work.text(count, row, f" {format_count(count)}", va="center", fontsize=8, color=MUTED)
    work.set_xlabel("FLOPs per step (recompute included)")
    memory.set_yticks(rows, labels, fontsize=8)
    memory.invert_yaxis()
    for ax in (memory, work):
        ax.margins(x=0.25)
        ax.grid(axis="x", color="#e4e7eb")
        ax.set_axisbelow(True)
    fig.suptitle(f"What each change saves: {advice.model}", fontsize=11)
    return fig


def _colour(delta: int) -> str:
    return SAVES if delta < 0 else COSTS if delta > 0 else UNCHANGED
