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
