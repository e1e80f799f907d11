"""The table renderer: a `Report` as a module tree and a footer of totals.

It reads the typed `Report`, the same fields `report/schema.py` writes to
the JSON document, and computes nothing, so the table and `--format json`
always state the same numbers. FLOPs and MACs in the tree use decimal
prefixes (1 G = 10^9); totals are also printed exactly; bytes use binary
units (1 GiB = 2^30 bytes), as the footer says.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich import box
from rich.columns import Columns
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from memflops.memory.fit import Fit, Sweep
from memflops.report.model import (
    Checkpointing,
    MemoryDetail,
    MemoryTotals,
    Report,
    Timing,
    UncountedOp,
)
from memflops.report.text import (
    RECOMPUTE_LABEL,
    columns_left_out,
    cost_line,
    exact_bytes,
    exact_count,
    fit_next_size,
    fit_title,
    generation_rows,
    header_facts,
    is_train,
    module_label,
    module_time_cells,
    module_time_header,
    no_limit,
    output_shape_text,
    peak_where,
    phases,
    pipeline_rows,
)
from memflops.units import format_bytes, format_count, format_int, format_seconds

DEFAULT_DEPTH = 2
MIN_WIDTH = 100
"""Plain-text output is as wide as the module table needs, and at least this."""

UNLIMITED = 10_000
"""Console width while measuring the module tree's natural width."""
INDENT = "  "
ROOT_LABEL = "(root)"


def render_table(
    report: Report, *, depth: int = DEFAULT_DEPTH, width: int | None = None, color: bool = False
) -> str:
    """The report as text: the module tree down to `depth`, then the footer.

    `width` None: as wide as the module table needs (at least `MIN_WIDTH`),
    so nothing is wrapped. A narrower `width` (a terminal) leaves out whole
    columns of the tree, in `OPTIONAL_COLUMNS`' order, and says which, rather
    than cutting numbers. `color` False writes no ANSI escape codes.
    """
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width or UNLIMITED,
        force_terminal=color,
        color_system="standard" if color else None,
        no_color=not color,
        highlight=False,
        markup=False,
        emoji=False,
        legacy_windows=False,
    )
    unbounded = console.options.update_width(UNLIMITED)
    left_out: list[str] = []
    tree = _module_tree(report, depth)
    if width is None:
        console.width = max(MIN_WIDTH, console.measure(tree, options=unbounded).maximum)
    else:
        shown = set(_columns(report))
        for name in (n for n in OPTIONAL_COLUMNS if n in shown):
            if console.measure(tree, options=unbounded).maximum <= width:
                break
            left_out.append(name)
            tree = _module_tree(report, depth, frozenset(left_out))
    console.print(Group(*table_parts(report, tree, left_out, width)))
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def table_parts(
    report: Report, tree: Table, left_out: Sequence[str] = (), width: int | None = None
) -> list[RenderableType]:
    """Header, module tree (and the columns it left out), totals, memory, batch sweep, fit,
    convention, uncounted ops and warnings, in that order; a section with nothing to say is
    left out."""
    parts: list[RenderableType] = [_header(report), Text(""), tree]
    if left_out:
        parts.append(Text(columns_left_out(width, left_out), style="dim"))
    parts.append(_totals(report))
    for section in (
        _time(report),
        _generation(report),
        _memory(report.totals.memory, report.memory_detail, peak_where(report)),
        _checkpointing(report.checkpointing, report.totals.memory),
        _parallel(report),
        _sweep(report.sweep),
        _fit(report.fit),
    ):
        if section is not None:
            parts.append(section)
    parts.append(_section("Convention", Text(report.convention.sentence + ".")))
    if report.uncounted_ops:
        parts.append(_uncounted(report.uncounted_ops))
    if report.warnings:
        parts.append(_warnings(report.warnings))
    return parts


def _header(report: Report) -> Text:
    facts = header_facts(report)
    text = Text()
    text.append("memflops report: ", style="bold")
    text.append(report.model, style="bold cyan")
    text.append("\n" + " · ".join(facts))
    return text


OPTIONAL_COLUMNS = (
    "output shape", "bytes fwd", "MACs fwd", "type", "params", "saved for bwd", "FLOPs bwd",
    "time bwd", "time fwd",
)
"""The module tree's columns a terminal narrower than the tree goes without, first to last
(the module's path and its forward FLOPs always stay)."""


def _columns(report: Report) -> list[str]:
    """The module tree's columns, in order, for this report."""
    names = ["module", "type", "params", "MACs fwd", "FLOPs fwd"]
    if is_train(report):
        names += ["FLOPs bwd", "saved for bwd"]
    return [*names, *module_time_header(report), "output shape"]


LEFT_ALIGNED = frozenset({"module", "type", "output shape"})


def _module_tree(report: Report, depth: int, left_out: frozenset[str] = frozenset()) -> Table:
    conv = report.convention
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    shown = [name for name in _columns(report) if name not in left_out]
    for name in shown:
        table.add_column(name, justify="left" if name in LEFT_ALIGNED else "right",
                         no_wrap=True)
    for row in report.modules:
        if row.depth > depth:
            continue
        cells = {
            "module": INDENT * row.depth + module_label(row),
            "type": row.type,
            "params": format_count(row.params),
            "MACs fwd": format_count(row.forward.macs),
            "FLOPs fwd": format_count(row.forward.under(conv)),
            "FLOPs bwd": format_count(row.backward.under(conv)),
            "saved for bwd": format_bytes(row.activation_bytes),
            "output shape": output_shape_text(row),
        }
        cells.update(zip(module_time_header(report), module_time_cells(report, row),
                         strict=True))
        table.add_row(*(Text(cells[name]) for name in shown),
                      style="bold" if row.depth == 0 else None)
    return table


def _totals(report: Report) -> RenderableType:
    totals = report.totals
    grid = _grid()
    grid.add_row(
        "params",
        f"{exact_count(totals.params)}: {format_int(totals.trainable_params)} trainable, "
        f"{format_int(totals.frozen_params)} frozen",
    )
    grid.add_row("buffers", exact_count(totals.buffers) + " elements")
    for label, cost, with_macs in phases(report):
        # the recomputed forward is a part of the backward line above it
        grid.add_row(INDENT + label if label == RECOMPUTE_LABEL else label,
                     cost_line(report, cost, with_macs))
    return _section("Totals (FLOPs and MACs: K = 10^3, M = 10^6, G = 10^9)", grid)


def _time(report: Report) -> RenderableType | None:
    """Time on the accelerator: per phase, the step, throughput, MFU, bounds, constants."""
    timing: Timing | None = report.timing
    if timing is None:
        return None
    est, acc, c = timing.estimate, timing.accelerator, timing.constants
    grid = _grid()
    phases = est.phases
    for label, seconds in (("forward", phases.forward), ("loss", phases.loss),
                           ("backward", phases.backward), ("optimizer step", phases.optimizer),
                           ("decode (all steps)", phases.decode),
                           ("idle (pipeline bubble)", phases.idle)):
        if seconds:
            grid.add_row(label, format_seconds(seconds))
    grid.add_row("whole step" if report.mode != "generate" else "whole generation",
                 format_seconds(est.step))
    rates = []
    if timing.samples_per_s is not None:
        rates.append(f"{timing.samples_per_s:,.1f} samples/s")
    if timing.tokens_per_s is not None:
        rates.append(f"{timing.tokens_per_s:,.1f} tokens/s")
    if rates:
        grid.add_row("throughput", ", ".join(rates))
    mfu = est.mfu()
    if mfu is not None:
        grid.add_row("MFU", f"{100 * mfu:.1f}% (2mac FLOPs over time x {est.peak_dtype} dense "
                            f"peak {est.peak_flops / 1e12:g} TFLOP/s)")
    total = est.step or 1.0
    grid.add_row("bound", ", ".join(f"{name} {100 * seconds / total:.0f}%"
                                    for name, seconds in est.by_bound)
                 + f" of the time ({format_int(est.kernels)} kernels)")
    intensity = report.intensity()
    if intensity is not None:
        grid.add_row("arithmetic intensity", f"{intensity:.1f} FLOPs/byte "
                     f"(ridge point {_ridge(timing):.0f})")
    grid.add_row("constants", f"matmul {c.matmul_efficiency:g}, vector {c.vector_efficiency:g} "
                 f"and memory {c.memory_efficiency:g} of peak; {c.kernel_overhead_s * 1e6:g} us "
                 f"per kernel; TF32 matmul {'on' if c.tf32_matmul else 'off'}, conv "
                 f"{'on' if c.tf32_conv else 'off'}; eager (no fusion)")
    title = (f"Time on {acc.name} ({format_bytes(acc.memory_bytes)}, "
             f"{acc.bandwidth_bytes_per_s / 1e9:g} GB/s): a roofline per op")
    return _section(title, grid)


def _ridge(timing: Timing) -> float:
    """FLOPs per byte where the peak of the MFU's unit meets the bandwidth."""
    bandwidth = timing.accelerator.bandwidth_bytes_per_s
    return timing.estimate.peak_flops / bandwidth if bandwidth else 0.0


def _memory(
    memory: MemoryTotals, detail: MemoryDetail | None, where: str | None
) -> RenderableType | None:
    grid = _grid()

    def add(label: str, value: int) -> None:
        if value:
            grid.add_row(label, exact_bytes(value))

    add("params", memory.params)
    add("buffers", memory.buffers)
    add("gradients", memory.grads)
    add("optimizer state", memory.optimizer)
    add("activations (saved for backward)", memory.activations)
    add("temporaries (most live at once)", detail.temporaries if detail is not None else 0)
    add("KV cache", memory.kv_cache)
    add("baseline (live before the step)", detail.baseline if detail is not None else 0)
    add("peak", memory.peak)
    if where is not None and detail is not None:
        grid.add_row("peak reached", where)
        grid.add_row("live at peak", _by_kind(detail.peak_by_kind))
    add("seed estimate (article's formula)", memory.seed_estimate)
    sim = detail.allocator if detail is not None else None
    if sim is not None:
        grid.add_row("reserved (caching allocator)", exact_bytes(sim.reserved))
        if sim.config.text:
            grid.add_row("  allocator options", sim.config.text)
        grid.add_row(
            "  at the reserved peak",
            f"{exact_bytes(sim.allocated_at_reserved_peak)} in use, "
            f"{format_bytes(sim.fragmentation)} free in {format_int(sim.segments)} segments",
        )
        grid.add_row(
            "device total (nvidia-smi)",
            f"{exact_bytes(sim.device_total)}: reserved + CUDA context "
            f"{format_bytes(sim.cuda_context)}",
        )
    if not grid.row_count:
        return None
    title = "Memory (binary units: 1 KiB = 2^10 B, 1 MiB = 2^20 B, 1 GiB = 2^30 B)"
    return _section(title, grid)


CHECKPOINTED_SHOWN = 4
"""Checkpointed regions named in the table; the JSON lists them all."""


def _checkpointing(ckpt: Checkpointing | None, memory: MemoryTotals) -> RenderableType | None:
    if ckpt is None:
        return None
    grid = _grid()
    shown = ", ".join(m or ROOT_LABEL for m in ckpt.modules[:CHECKPOINTED_SHOWN])
    more = len(ckpt.modules) - CHECKPOINTED_SHOWN
    grid.add_row(
        "regions", f"{format_int(len(ckpt.modules))}: {shown}" + (f", ... ({more} more)"
                                                                  if more > 0 else "")
    )
    grid.add_row("activations saved", f"{exact_bytes(memory.activations)} with checkpointing")
    if ckpt.activations_without is not None and ckpt.peak_without is not None:
        grid.add_row("", f"{exact_bytes(ckpt.activations_without)} without")
        grid.add_row("peak", f"{exact_bytes(memory.peak)} with, "
                             f"{exact_bytes(ckpt.peak_without)} without")
    if ckpt.note:
        grid.add_row("without checkpointing", f"not analysed: {ckpt.note}")
    return _section("Activation checkpointing", grid)


def _parallel(report: Report) -> RenderableType | None:
    par = report.parallel
    if par is None:
        return None
    grid = _grid()
    grid.add_row("layout", f"{par.strategy}: the numbers above are rank {par.rank}'s of "
                 f"{par.world_size} ({par.engine})")
    if par.units:
        grid.add_row("units", format_int(len(par.units)))
    grid.add_row("at the peak", _by_kind(par.by_kind))
    calls = ", ".join(f"{op} x{count} ({exact_bytes(size)})" for op, count, size in par.by_op())
    grid.add_row("collectives", calls or "none")
    grid.add_row("communication", f"{exact_bytes(par.communication_bytes)} sent per step")
    if par.time_comm_s is not None:
        grid.add_row("", f"{format_seconds(par.time_comm_s)} on {par.interconnect}")
    if par.time_step_serial_s is not None and par.time_step_overlapped_s is not None:
        grid.add_row("step time", f"{format_seconds(par.time_step_serial_s)} with no overlap, "
                     f"{format_seconds(par.time_step_overlapped_s)} with full overlap of "
                     "compute and communication")
    for note in par.notes:
        grid.add_row("modelled", note.removeprefix("modelled: "))
    for label, value in pipeline_rows(report):
        grid.add_row(label, value)
    return _section("Parallel", grid)


def _by_kind(by_kind: Sequence[tuple[str, int]]) -> Columns:
    """`kind size` items laid out in as many rows as the width needs, none split."""
    items = [Text(f"{kind} {format_bytes(n)}", no_wrap=True) for kind, n in by_kind if n]
    return Columns(items, padding=(0, 2))


def _sweep(sweep: Sweep | None) -> RenderableType | None:
    if sweep is None:
        return None
    dim = sweep.dimension
    timed = any(p.time_step_s is not None for p in sweep.points)
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    reserved = any(p.reserved is not None for p in sweep.points)
    columns = [dim, "peak (allocated)", "reserved"] if reserved else [dim, "peak"]
    columns += ["seed estimate"] + (["step time", "samples/s"] if timed else [])
    for name in columns:
        table.add_column(name, justify="right", no_wrap=True)
    for point in sweep.points:
        cells = [str(point.size), format_bytes(point.peak)]
        if reserved:
            cells.append(format_bytes(point.reserved) if point.reserved is not None else "")
        cells.append(format_bytes(point.seed_estimate))
        if timed:
            cells += [format_seconds(point.time_step_s or 0.0), f"{point.samples_per_s or 0:,.1f}"]
        table.add_row(*cells)
    lines = [f"fitted: peak = {exact_bytes(sweep.constant)} + "
             f"{exact_bytes(sweep.per_item)} x {dim}"]
    if sweep.saturated_at is not None:
        lines.append(f"throughput saturates at {dim} {format_int(sweep.saturated_at)}: within "
                     f"5% of the best of the sweep; a bigger {dim} is no faster per sample")
    elif timed:
        lines.append(f"throughput still rises at the largest {dim} of the sweep")
    return _section(f"Peak memory by {dim} size", Group(table, *(Text(x) for x in lines)))


def _generation(report: Report) -> RenderableType | None:
    if report.generation is None:
        return None
    grid = _grid()
    for label, value in generation_rows(report):
        grid.add_row(label, value)
    return _section("Generation (prefill, then one token at a time with a KV cache)", grid)


def _fit(fit: Fit | None) -> RenderableType | None:
    if fit is None:
        return None
    dim, largest, after = fit.dimension, fit.largest, fit.peak_at_next
    grid = _grid()
    grid.add_row("capacity", exact_bytes(fit.capacity))
    need = "peak" if fit.against == "allocated" else "device total"
    grid.add_row("held against it", f"the {need} ({fit.against})")
    best = "fewest" if dim == "ranks" else "largest"
    if largest == 0:
        grid.add_row(f"{best} {dim}", "none")
    elif fit.reached_limit:
        grid.add_row(f"{best} {dim}", f"{no_limit(fit)}; {need} there "
                                      f"{exact_bytes(fit.peak_at_largest)}")
    else:
        peak = exact_bytes(fit.peak_at_largest)
        grid.add_row(f"{best} {dim}", f"{format_int(largest)}, {need} {peak}")
    if after is not None:
        grid.add_row(f"{dim} {format_int(fit_next_size(dim, largest))}",
                     f"does not fit, {need} {exact_bytes(after)}")
    if fit.samples_per_s is not None and fit.time_step_s is not None:
        grid.add_row(f"at {dim} {format_int(largest)}",
                     f"step {format_seconds(fit.time_step_s)}, {fit.samples_per_s:,.1f} samples/s")
    grid.add_row("analyses run", str(fit.analyses))
    return _section(fit_title(dim), grid)


def _grid() -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    return grid


def _uncounted(ops: Sequence[UncountedOp]) -> RenderableType:
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    table.add_column("op", no_wrap=True)
    table.add_column("count", justify="right")
    table.add_column("modules")
    table.add_column("reason")
    for op in ops:
        modules = ", ".join(op.modules)
        table.add_row(Text(op.op), Text(str(op.count)), Text(modules), Text(op.reason))
    title = "Uncounted ops (no FLOP rule: not included in the totals above)"
    return _section(title, table)


def _warnings(warnings: Sequence[str]) -> RenderableType:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column()
    for warning in warnings:
        grid.add_row("-", Text(warning))
    return _section("Warnings", grid)


def _section(title: str, body: RenderableType) -> Group:
    return Group(Text(""), Text(title, style="bold underline"), body)
