"""The advice's savings as a static SVG chart: each measured change's peak memory and
FLOPs per step beside the baseline's, and the budget.

One row per analysis, in the advice's order (the largest peak saving first), then the
combination the budget search confirmed: a bar for its peak (green below the baseline,
red above, grey level with it), a bar for its FLOPs per step (recomputation included),
the baseline as a dashed line through each panel and the budget as a red line through
the memory panel. It reads the typed `Advice` and computes nothing but the drawing
(scales, positions), with the drawing helpers of the report's charts (`report/charts.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from memflops.advisor.text import percent
from memflops.report.charts import CAPACITY, INK, MUTED, WIDTH, Svg
from memflops.units import format_bytes, format_count, format_int

if TYPE_CHECKING:
    from memflops.advisor.advice import Advice, Measured

SAVES = "#59a14f"
COSTS = "#e15759"
BASELINE = "#9aa5b1"
UNCHANGED = "#cbd2d9"
COMBINED = "#0f7b8a"
MAX_ROWS = 40


@dataclass(frozen=True)
class Row:
    label: str
    tail: str
    measured: Measured
    color: str
    saved: tuple[float, float] | None = None
    """The fractions of the baseline's peak and step FLOPs saved (the change's delta)."""


def rows(advice: Advice) -> list[Row]:
    """The baseline, each measured change and the budget's combination, with the colour
    of their bars (the SVG here and the matplotlib figure of `advisor/plot.py`)."""
    base = advice.baseline
    found = [Row("(baseline)", "", base, BASELINE)]
    for c in advice.changes:
        if c.measured is None or c.delta is None:
            continue
        d = c.delta
        found.append(Row(c.name, " kept" if c.preserves_function else " changed", c.measured,
                         SAVES if d.peak < 0 else COSTS if d.peak > 0 else UNCHANGED,
                         (d.peak_saved, d.flops_step_saved)))
    fit = advice.fit
    if fit is not None and fit.measured is not None and fit.changes:
        found.append(Row(" + ".join(fit.changes), " fits" if fit.fits else " closest",
                         fit.measured, COMBINED))
    return found


def savings_chart(advice: Advice) -> str | None:
    """The chart, or None when no change was measured."""
    all_rows = rows(advice)
    if len(all_rows) < 2:
        return None
    shown = all_rows[:MAX_ROWS]
    label_w, gap, row_h, top = 270, 30, 20, 50
    panel_w = (WIDTH - label_w - gap - 20) / 2
    bar_w = panel_w - 150  # room for the value and its change beside the longest bar
    note = len(all_rows) > len(shown)
    height = top + row_h * len(shown) + (58 if note else 40)
    svg = Svg(height, "savings", "What each change saves")
    base = advice.baseline
    budget = advice.budget
    panels: Sequence[tuple[str, Callable[[Measured], int], Callable[[int], str], int | None]] = (
        ("peak memory", lambda m: m.peak, format_bytes, budget),
        ("FLOPs per step (recompute included)", lambda m: m.flops_step, format_count, None),
    )
    for p, (title, value, fmt, limit) in enumerate(panels):
        x0 = label_w + p * (panel_w + gap)
        largest = max([value(r.measured) for r in shown] + [limit or 0]) or 1

        def x(v: float, x0: float = x0, largest: int = largest) -> float:
            return x0 + v / largest * bar_w

        svg.text(x0, 20, title, weight="bold")
        bottom = top + row_h * len(shown)
        svg.line(x0, top - 8, x0, bottom, stroke="#9aa5b1")
        reference = value(base)
        for i, row in enumerate(shown):
            y = top + i * row_h
            v = value(row.measured)
            change = "" if row.saved is None else f" ({percent(-row.saved[p])})"
            svg.rect(x0, y + 3, max(x(v) - x0, 1.0), row_h - 7, fill=row.color,
                     tip=f"{row.label}: {format_int(v)}{' B' if p == 0 else ' FLOPs'}")
            svg.text(x(v) + 5, y + row_h - 6, fmt(v) + change, fill=MUTED, size=11)
        svg.line(x(reference), top - 8, x(reference), bottom, stroke=INK, dash="4 3")
        svg.text(x(reference), top - 12, "baseline", anchor="middle", fill=MUTED, size=11)
        if limit is not None:
            svg.line(x(limit), top - 8, x(limit), bottom, stroke=CAPACITY, width=1.5)
            svg.text(x(limit), bottom + 16, f"budget {advice.budget_label or ''} "
                     f"({format_bytes(limit)})".replace("  ", " "), anchor="middle",
                     fill=CAPACITY, size=11)
    for i, row in enumerate(shown):
        svg.text(label_w - 12, top + i * row_h + row_h - 6, _clip(row.label, 34), anchor="end",
                 size=11, tail=(row.tail, MUTED))
    if note:
        svg.text(label_w, height - 12, f"the first {len(shown)} of {len(all_rows)} analyses",
                 fill=MUTED, size=11)
    return svg.finish()


def _clip(label: str, width: int) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"
