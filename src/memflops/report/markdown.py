"""The Markdown renderer: a `Report` as GitHub-flavoured Markdown, for PR comments and wikis.

The same sections as the table renderer (`report/table.py`), as GitHub
tables: the header, the module tree down to `depth` (full dotted paths, so
no indentation is needed; bytes and time columns with an accelerator),
totals, time, generation, memory (with the caching allocator's reserved
peak and device total), activation checkpointing, parallel (the rank of a
step over several GPUs), batch sweep, fit, the convention, uncounted ops and
warnings; a section without its data is left out. It reads the typed
`Report` and computes nothing. Counts use decimal prefixes (1 G = 10^9), bytes binary
units (1 GiB = 2^30 bytes), and totals are also given exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from memflops.report import text
from memflops.units import format_bytes, format_count, format_int

if TYPE_CHECKING:
    from memflops.report.model import Report

DEFAULT_DEPTH = 2


def render_markdown(report: Report, *, depth: int = DEFAULT_DEPTH) -> str:
    """The report as Markdown: the module table down to `depth`, then the sections."""
    parts = [
        f"# memflops report: `{report.model}`",
        " · ".join(_inline(fact) for fact in text.header_facts(report)),
        "## Modules",
        _modules(report, depth),
        f"## Totals\n\nFLOPs and MACs: {text.COUNT_UNITS}.",
        _totals(report),
    ]
    for section in (_time(report), _generation(report), _memory(report),
                    _checkpointing(report), _parallel(report), _sweep(report), _fit(report)):
        if section:
            parts.append(section)
    parts.append(f"## Convention\n\n{cell(report.convention.sentence)}.")
    if report.uncounted_ops:
        parts.append(_uncounted(report))
    if report.warnings:
        parts.append("## Warnings\n\n" + "\n".join(f"- {cell(w)}" for w in report.warnings))
    return "\n\n".join(parts) + "\n"


def _inline(fact: str) -> str:
    """`mode train` -> `mode **train**`: the value of a header fact in bold."""
    name, _, value = fact.partition(" ")
    return f"{name} **{cell(value)}**"


def cell(value: str) -> str:
    """A table cell's text: pipes escaped, on one line."""
    return " ".join(value.replace("|", "\\|").split())


def table(header: Sequence[str], rows: Iterable[Sequence[str]], right: Sequence[bool]) -> str:
    """A GitHub table; `right[i]` aligns column i to the right (numbers)."""
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---:" if r else "---" for r in right) + " |",
    ]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _modules(report: Report, depth: int) -> str:
    train = text.is_train(report)
    conv = report.convention
    header = ["module", "type", "params", "MACs fwd", "FLOPs fwd"]
    if train:
        header += ["FLOPs bwd", "saved for bwd"]
    header += text.module_time_header(report)
    header.append("output shape")
    rows = []
    for row in report.modules:
        if row.depth > depth:
            continue
        label = text.module_label(row)
        cells = [
            f"**{label}**" if row.depth == 0 else f"`{label}`",
            row.type,
            format_count(row.params),
            format_count(row.forward.macs),
            format_count(row.forward.under(conv)),
        ]
        if train:
            cells += [format_count(row.backward.under(conv)), format_bytes(row.activation_bytes)]
        cells += text.module_time_cells(report, row)
        cells.append(text.output_shape_text(row))
        rows.append(cells)
    right = [False, False, *([True] * (len(header) - 3)), False]
    hidden = sum(1 for row in report.modules if row.depth > depth)
    note = f"\n\n{hidden} deeper module(s) not shown (depth {depth})." if hidden else ""
    return table(header, rows, right) + note


def _totals(report: Report) -> str:
    totals = report.totals
    rows = [
        [
            "params",
            f"{text.exact_count(totals.params)}: {format_int(totals.trainable_params)} "
            f"trainable, {format_int(totals.frozen_params)} frozen",
        ],
        ["buffers", f"{text.exact_count(totals.buffers)} elements"],
    ]
    if totals.active_params is not None:
        rows.append(["active params (per token)", text.exact_count(totals.active_params)])
    for label, cost, with_macs in text.phases(report):
        rows.append([label, text.cost_line(report, cost, with_macs)])
    return table(["", "count"], rows, [False, False])


def _kv(rows: Iterable[tuple[str, str]], value: str = "value") -> str:
    return table(["", value], [list(row) for row in rows], [False, False])


def _time(report: Report) -> str:
    title = text.time_title(report)
    if title is None:
        return ""
    return (f"## {title}\n\nEach op's time is the larger of its compute and memory time at the "
            f"stated fractions of peak, plus a per-kernel overhead.\n\n"
            + _kv(text.time_rows(report), "time"))


def _parallel(report: Report) -> str:
    rows = text.parallel_rows(report)
    if not rows:
        return ""
    return ("## Parallel\n\nOne rank of a step over several GPUs; the sections above are "
            "that rank's.\n\n" + _kv(rows))


def _checkpointing(report: Report) -> str:
    rows = text.checkpointing_rows(report)
    if not rows:
        return ""
    return ("## Activation checkpointing\n\nThe recomputed forward is part of backward's "
            "FLOPs, counted once.\n\n" + _kv(rows))


def _memory(report: Report) -> str:
    rows = [[label, text.exact_bytes(value)] for label, value in text.memory_rows(report)]
    if not rows:
        return ""
    where = text.peak_where(report)
    if where is not None:
        rows.append(["peak reached", where])
        live = ", ".join(f"{kind} {format_bytes(n)}" for kind, n in text.peak_by_kind(report))
        rows.append(["live at peak", live])
    rows += [list(row) for row in text.allocator_rows(report)]
    return f"## Memory\n\nBinary units: {text.BYTE_UNITS}.\n\n" + table(
        ["", "bytes"], rows, [False, False]
    )


def _generation(report: Report) -> str:
    rows = text.generation_rows(report)
    if not rows:
        return ""
    return "## Generation\n\nPrefill, then one token at a time with a KV cache.\n\n" + _kv(rows)


def _sweep(report: Report) -> str:
    header, rows, notes = text.sweep_table(report)
    if not header:
        return ""
    return (f"## Peak memory by {header[0]} size\n\n"
            + table(header, rows, [True] * len(header)) + "\n\n" + "\n\n".join(notes))


def _fit(report: Report) -> str:
    rows = text.fit_rows(report)
    if not rows:
        return ""
    return f"## {text.fit_title(report.fit.dimension)}\n\n" + _kv(  # type: ignore[union-attr]
        rows
    )


def _uncounted(report: Report) -> str:
    rows = [
        [f"`{op.op}`", str(op.count), ", ".join(op.modules), op.reason]
        for op in report.uncounted_ops
    ]
    return (
        "## Uncounted ops\n\nNo FLOP rule: not included in the totals above.\n\n"
        + table(["op", "count", "modules", "reason"], rows, [False, True, False, False])
    )
