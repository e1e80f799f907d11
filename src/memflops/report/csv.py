"""The CSV renderer: one row per module (or per op call), every numeric column, for spreadsheets.

Numbers are exact integers (no units, no separators); FLOPs are counted
under the report's convention, which the JSON document and the other
formats state. Columns, per module (`render_csv(report)`):

    path, type, depth, params, flops_forward, flops_backward, macs_forward,
    macs_backward, activation_bytes, calls, output_shape

and per op call, in the order the ops ran (`render_csv(report, per_op=True)`):

    index, phase, module, op, flops, macs

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
OP_COLUMNS = ("index", "phase", "module", "op", "flops", "macs")


def render_csv(report: Report, *, per_op: bool = False) -> str:
    """The report's modules (or, with `per_op`, its op calls) as CSV with a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    conv = report.convention
    if per_op:
        writer.writerow(OP_COLUMNS)
        for i, rec in enumerate(report.records):
            cost = rec.cost
            writer.writerow([
                i, rec.phase.value, rec.module, rec.op,
                "" if cost is None else cost.under(conv),
                "" if cost is None else cost.macs,
            ])
        return buffer.getvalue()
    writer.writerow(MODULE_COLUMNS)
    for row in report.modules:
        writer.writerow([
            row.path, row.type, row.depth, row.params,
            row.forward.under(conv), row.backward.under(conv),
            row.forward.macs, row.backward.macs,
            row.activation_bytes, row.calls,
            ";".join(shape_text(s) for s in row.output_shape),
        ])
    return buffer.getvalue()
