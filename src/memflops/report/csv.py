"""The CSV renderer: one row per module (or per op call), every numeric column, for spreadsheets.

Numbers are exact integers (no units, no separators) and times are seconds as
floats written to full precision; FLOPs are counted under the report's
convention, which the JSON document and the other formats state. Columns, per
module (`render_csv(report)`):

    path, type, depth, params, flops_forward, flops_backward, macs_forward,
    macs_backward, activation_bytes, calls, output_shape

then, each group only when the report has its data (`module_columns`):

    bytes_forward, bytes_backward          bytes read + written (ops priced)
    time_forward_s, time_backward_s        with an accelerator (`gpu=`)
    flops_recompute, macs_recompute        with activation checkpointing: the part of
                                           backward that re-ran the module's forward

and per op call, in the order the ops ran (`render_csv(report, per_op=True)`):

    index, phase, module, op, flops, macs[, bytes]

where an op with no FLOP rule has empty `flops` and `macs` (it is listed in
the report's `uncounted_ops`, never counted as 0). `output_shape` is
`8x10`, shapes of several outputs joined by `;`, or empty. Rows end with
`\n` (spreadsheet programs read it; a text file stays a text file).
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from memflops.report.text import shape_text

if TYPE_CHECKING:
    from memflops.report.model import Report

MODULE_COLUMNS = (
    "path", "type", "depth", "params", "flops_forward", "flops_backward", "macs_forward",
    "macs_backward", "activation_bytes", "calls", "output_shape",
)
BYTES_COLUMNS = ("bytes_forward", "bytes_backward")
TIME_COLUMNS = ("time_forward_s", "time_backward_s")
RECOMPUTE_COLUMNS = ("flops_recompute", "macs_recompute")
OP_COLUMNS = ("index", "phase", "module", "op", "flops", "macs")


def module_columns(report: Report) -> tuple[str, ...]:
    """The per-module header: `MODULE_COLUMNS`, then the groups the report has data for."""
    return (
        *MODULE_COLUMNS,
        *(BYTES_COLUMNS if report.bytes_priced else ()),
        *(TIME_COLUMNS if report.timing is not None else ()),
        *(RECOMPUTE_COLUMNS if report.checkpointing is not None else ()),
    )


def render_csv(report: Report, *, per_op: bool = False) -> str:
    """The report's modules (or, with `per_op`, its op calls) as CSV with a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    conv = report.convention
    if per_op:
        priced = report.bytes_priced
        repeated = report.grad_accumulation is not None
        writer.writerow(OP_COLUMNS + (("bytes",) if priced else ())
                        + (("repeat",) if repeated else ()))
        for i, rec in enumerate(report.records):
            cost = rec.cost
            call: list[object] = [
                i, rec.phase.value, rec.module, rec.op,
                "" if cost is None else cost.under(conv),
                "" if cost is None else cost.macs,
            ]
            if priced:
                call.append("" if cost is None else cost.bytes)
            if repeated:
                call.append(rec.repeat)
            writer.writerow(call)
        return buffer.getvalue()
    writer.writerow(module_columns(report))
    timing = report.timing
    for row in report.modules:
        cells: list[object] = [
            row.path, row.type, row.depth, row.params,
            row.forward.under(conv), row.backward.under(conv),
            row.forward.macs, row.backward.macs,
            row.activation_bytes, row.calls,
            ";".join(shape_text(s) for s in row.output_shape),
        ]
        if report.bytes_priced:
            cells += [row.forward.bytes, row.backward.bytes]
        if timing is not None:
            cells += [repr(seconds) for seconds in timing.module(row.path)]
        if report.checkpointing is not None:
            cells += [row.recompute.under(conv), row.recompute.macs]
        writer.writerow(cells)
    return buffer.getvalue()
