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


def test_parallel_section(handmade_report: Report) -> None:
    """The rank, its bytes by kind, its collectives and communication, as the report holds
    them; no section on one GPU."""
    from memflops.report.model import CollectiveRow, Parallel

    # a 2 GiB all-gather over 8 ranks sends 7/8 of it: 1,879,048,192 B; a 1 GiB
    # reduce-scatter 7/8 of that: 939,524,096 B; 2,818,572,288 B in all
    rows = (CollectiveRow("all_gather", 2 * 2**30, "fsdp", 8, "forward", "layers.0",
                          1_879_048_192),
            CollectiveRow("reduce_scatter", 2**30, "fsdp", 8, "backward", "layers.0",
                          939_524_096))
    par = Parallel("fsdp=8", 8, 0, "captured", ("layers.0", ""),
                   (("sharded_params", 3 * 2**30), ("grads", 0)), rows, "NVLink", 0.25, 1.5,
                   1.25)
    text = render_markdown(replace(handmade_report, parallel=par))
    for shown in ("## Parallel", "| layout | fsdp=8: the numbers are rank 0's of 8 (captured) |",
                  "| FSDP units | 2 |", "| at the peak | sharded_params 3.00 GiB |",
                  "all_gather x1 (2.00 GiB), reduce_scatter x1 (1.00 GiB)",
                  "2.62 GiB (2,818,572,288 B) sent per step", "250.00 ms on NVLink",
                  "1.50 s with no overlap, 1.25 s with full overlap"):
        assert shown in text, shown
    assert "Parallel" not in render_markdown(replace(handmade_report, parallel=None))
