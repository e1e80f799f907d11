"""The CSV renderer (report.csv): golden files, one row per module or per op, exact numbers."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from memflops.report.csv import (
    BYTES_COLUMNS,
    MODULE_COLUMNS,
    OP_COLUMNS,
    RECOMPUTE_COLUMNS,
    TIME_COLUMNS,
    render_csv,
)
from memflops.report.model import Report


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_tiny_csv(tiny_report: Report, golden: Callable[[str, str], None]) -> None:
    golden("tiny.csv", render_csv(tiny_report))


def test_tiny_csv_per_op(tiny_report: Report, golden: Callable[[str, str], None]) -> None:
    golden("tiny.ops.csv", render_csv(tiny_report, per_op=True))


def test_handmade_csv(handmade_report: Report, golden: Callable[[str, str], None]) -> None:
    golden("handmade.csv", render_csv(handmade_report))


def test_one_row_per_module_with_the_report_numbers(tiny_report: Report) -> None:
    text = render_csv(tiny_report)
    assert text.splitlines()[0] == ",".join((*MODULE_COLUMNS, *BYTES_COLUMNS))
    rows = _rows(text)
    assert [r["path"] for r in rows] == [m.path for m in tiny_report.modules]
    root = rows[0]
    assert int(root["params"]) == tiny_report.totals.params
    assert int(root["flops_forward"]) == tiny_report.total("forward")
    assert int(root["macs_forward"]) == tiny_report.totals.costs.forward.macs


def test_per_op_rows_sum_to_the_totals(tiny_report: Report) -> None:
    text = render_csv(tiny_report, per_op=True)
    assert text.splitlines()[0] == ",".join((*OP_COLUMNS, "bytes"))
    rows = _rows(text)
    assert len(rows) == len(tiny_report.records)
    assert sum(int(r["flops"] or 0) for r in rows) == tiny_report.total()
    assert sum(int(r["bytes"] or 0) for r in rows) == tiny_report.totals.costs.step.bytes


def test_columns_only_with_their_data(tiny_report: Report, handmade_report: Report) -> None:
    """Bytes when priced, time with an accelerator, recompute with checkpointing."""
    assert tuple(_rows(render_csv(tiny_report))[0]) == (*MODULE_COLUMNS, *BYTES_COLUMNS)
    header = tuple(_rows(render_csv(handmade_report))[0])
    assert header == (*MODULE_COLUMNS, *BYTES_COLUMNS, *TIME_COLUMNS, *RECOMPUTE_COLUMNS)


def test_time_and_recompute_cells(handmade_report: Report) -> None:
    rows = {r["path"]: r for r in _rows(render_csv(handmade_report))}
    encoder = rows["encoder.0"]
    assert (encoder["bytes_forward"], encoder["bytes_backward"]) == ("3000000", "6000000")
    assert (float(encoder["time_forward_s"]), float(encoder["time_backward_s"])) == (0.003, 0.006)
    assert (encoder["flops_recompute"], encoder["macs_recompute"]) == ("4000000", "2000000")
    assert rows["head"]["flops_recompute"] == "0"


def test_uncounted_ops_have_empty_cells_not_zero(handmade_report: Report) -> None:
    from memflops.capture.records import OpRecord, Phase
    from memflops.flops.registry import OpCost

    records = (OpRecord("aten.mm", "a", Phase.FORWARD, OpCost(2, 4)),
               OpRecord("aten.my_op", "b", Phase.FORWARD, None))
    from dataclasses import replace

    rows = _rows(render_csv(replace(handmade_report, records=records), per_op=True))
    assert (rows[0]["flops"], rows[0]["macs"]) == ("4", "2")
    assert (rows[1]["flops"], rows[1]["macs"]) == ("", "")


def test_several_outputs_and_none(handmade_report: Report) -> None:
    rows = {r["path"]: r for r in _rows(render_csv(handmade_report))}
    assert rows[""]["output_shape"] == "8x10;8"
    assert rows["unused"]["output_shape"] == ""
    assert rows["unused"]["calls"] == "0"
