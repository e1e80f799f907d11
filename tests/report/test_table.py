"""The table renderer (report.table): golden files, depth, width, colour, typed input."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from memflops.flops.registry import OpCost
from memflops.report.model import (
    ModuleRow,
    Report,
)
from memflops.report.table import render_table

WIDTH = 120


def test_tiny_table(tiny_report: Report, golden: Callable[[str, str], None]) -> None:
    golden("tiny.table.txt", render_table(tiny_report, width=WIDTH))


def test_handmade_table_train(golden: Callable[[str, str], None], handmade_report: Report) -> None:
    # As wide as its module tree needs (the CLI's width for a file): the timed tree has ten
    # numeric columns, which 120 characters would cut.
    golden("handmade.table.txt", render_table(handmade_report, depth=2))


def test_depth_limits_the_tree(handmade_report: Report) -> None:
    report = handmade_report
    deep = render_table(report, depth=3, width=WIDTH)
    shallow = render_table(report, depth=0, width=WIDTH)
    assert "encoder.0.act" in deep
    assert "encoder" not in shallow.split("Totals")[0]  # only the root row above the footer


def test_natural_width_does_not_wrap(handmade_report: Report) -> None:
    """Without a width the text is as wide as the module tree needs: no cell is cut."""
    report = handmade_report
    assert "…" not in render_table(report, depth=3)
    assert "…" in render_table(report, depth=3, width=60)  # the same tree squeezed


def test_color_only_when_asked(tiny_report: Report) -> None:
    assert "\x1b[" not in render_table(tiny_report, width=WIDTH)
    assert "\x1b[" in render_table(tiny_report, width=WIDTH, color=True)


def test_output_shapes_of_scalars_and_no_output(handmade_report: Report) -> None:
    """A 0-d output is `scalar`; several outputs are listed; no output is `-`."""
    report = replace(handmade_report, timing=None)  # "saved for bwd" just before the shape
    rows = (
        ModuleRow("total", "Sum", 1, 0, OpCost(), OpCost(), ((),), 1),
        ModuleRow("pair", "Split", 1, 0, OpCost(), OpCost(), ((), (3,)), 1),
        ModuleRow("sink", "Log", 1, 0, OpCost(), OpCost(), (), 1),
    )
    text = render_table(replace(report, modules=report.modules + rows), width=WIDTH)
    row = {line.split()[0]: line for line in text.splitlines() if line.startswith("  ")}
    assert row["total"].endswith("0 B   scalar")
    assert row["pair"].endswith("0 B   scalar, 3")
    assert row["sink"].endswith("0 B   -")


def test_table_reads_the_typed_report(
    monkeypatch: pytest.MonkeyPatch, handmade_report: Report
) -> None:
    """The table formats the dataclasses, not the schema dict (so mypy checks every field)."""
    expected = render_table(handmade_report, width=WIDTH)

    def no_dict(self: Report) -> None:
        raise AssertionError("render_table called Report.to_dict()")

    monkeypatch.setattr(Report, "to_dict", no_dict)
    assert render_table(handmade_report, width=WIDTH) == expected
