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


def test_narrow_terminal_leaves_out_columns_not_digits(handmade_report: Report) -> None:
    """At 60 characters the timed train tree (11 columns, 142 wide) keeps the module, its
    forward FLOPs and times, whole, and says which columns it left out; 60 is too narrow for
    the other seven, which go in OPTIONAL_COLUMNS' order."""
    full = render_table(handmade_report, depth=3)
    narrow = render_table(handmade_report, depth=3, width=60)
    tree = narrow.split("columns left out")[0]
    assert "…" not in tree
    header = next(line for line in tree.splitlines() if line.startswith("module"))
    assert header.split() == ["module", "FLOPs", "fwd", "time", "fwd", "time", "bwd"]
    assert max(len(line) for line in tree.splitlines()) <= 60
    assert "encoder.0.act" in tree and "6.10 M" in tree and "8.00 ms" in tree
    assert " ".join(narrow.split("columns left out to fit 60 characters: ")[1].split()).startswith(
        "output shape, bytes fwd, MACs fwd, type, params, saved for bwd, FLOPs bwd (")
    assert "columns left out" not in full
    # a width the whole tree fits in leaves nothing out
    widest = max(len(line) for line in full.split("Totals")[0].splitlines())
    assert "columns left out" not in render_table(handmade_report, depth=3, width=widest)


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
