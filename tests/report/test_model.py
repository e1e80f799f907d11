"""Queries of the Report (report.model) that renderers read."""

from __future__ import annotations

from dataclasses import replace

from memflops.flops.registry import OpCost
from memflops.report.model import ModuleRow, Report


def test_chart_modules_cuts_the_tree(handmade_report: Report) -> None:
    """At depth 3 the only module is encoder.0.act, a GELU with no counted work, so encoder.0
    (a Linear doing its own work) stands for itself; `unused` did nothing and is left out."""
    rows, total = handmade_report.chart_modules()
    assert [r.path for r in rows] == ["encoder.0", "head"] and total == 2


def test_chart_modules_goes_shallower_when_too_many(handmade_report: Report) -> None:
    """Sixty blocks of two layers: depth 2 has 120 modules, depth 1 sixty; at most 48 shown."""
    root = handmade_report.modules[0]
    rows = [root]
    for i in range(60):
        rows.append(ModuleRow(f"b{i}", "Block", 1, 2, OpCost(1, 2), OpCost(), ((1,),), 1))
        for j in range(2):
            rows.append(ModuleRow(f"b{i}.{j}", "Linear", 2, 1, OpCost(1, 1), OpCost(), ((1,),), 1))
    report = replace(handmade_report, modules=tuple(rows))
    assert len(report.chart_modules(200)[0]) == 120
    shown, total = report.chart_modules(100)
    assert [r.path for r in shown[:2]] == ["b0", "b1"] and len(shown) == total == 60
    shown, total = report.chart_modules(48)
    assert len(shown) == 48 and total == 60
