"""The Markdown renderer (report.markdown): golden files, depth, GitHub table syntax."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from memflops.report.markdown import render_markdown
from memflops.report.model import Report


def test_tiny_markdown(tiny_report: Report, golden: Callable[[str, str], None]) -> None:
    golden("tiny.md", render_markdown(tiny_report))


def test_handmade_markdown_train(
    handmade_report: Report, golden: Callable[[str, str], None]
) -> None:
    golden("handmade.md", render_markdown(handmade_report))


def test_tables_are_well_formed(handmade_report: Report) -> None:
    """Every table row has as many cells as its header (a stray pipe would add one)."""
    report = replace(handmade_report, warnings=("a | b",), model="x|y")
    lines = render_markdown(report, depth=3).splitlines()
    tables: list[list[str]] = []
    for line, before in zip(lines, ["", *lines], strict=False):
        if line.startswith("| "):
            if not before.startswith("| "):
                tables.append([])
            tables[-1].append(line)
    assert len(tables) >= 5
    for rows in tables:
        widths = {len(row.replace("\\|", "").split(" | ")) for row in rows}
        assert len(widths) == 1, rows
    assert "- a \\| b" in lines


def test_depth_hides_deeper_modules(handmade_report: Report) -> None:
    shallow = render_markdown(handmade_report, depth=1)
    assert "`encoder.0`" not in shallow
    assert "2 deeper module(s) not shown (depth 1)." in shallow
    assert "`encoder.0.act`" in render_markdown(handmade_report, depth=3)


def test_sections_only_with_their_data(handmade_report: Report) -> None:
    """Time, reserved memory and checkpointing appear with their data and not without."""
    full = render_markdown(handmade_report)
    for shown in ("## Time on Test GPU", "| whole step | 13.00 ms |",
                  "| reserved (caching allocator) | 6.00 GiB (6,442,450,944 B) |",
                  "## Activation checkpointing", "| time fwd | time bwd |",
                  "| 8 | 5.00 GiB | 5.50 GiB | 4.00 GiB | 10.00 ms | 800.0 |"):
        assert shown in full, shown
    memory = replace(handmade_report.totals.memory, reserved=None, device_total=None)
    bare = replace(handmade_report, timing=None, checkpointing=None, sweep=None, fit=None,
                   memory_detail=replace(handmade_report.memory_detail, allocator=None),
                   totals=replace(handmade_report.totals, memory=memory))
    text = render_markdown(bare)
    for absent in ("Time on", "reserved", "checkpointing", "time fwd"):
        assert absent not in text, absent
