"""The table renderer: a `Report` as a module tree and a footer of totals.

It formats the report's JSON document (`Report.to_dict()`, schema
`memflops.report/1`) and computes nothing, so the table and `--format json`
always state the same numbers. FLOPs and MACs in the tree use decimal
prefixes (1 G = 10^9); totals are also printed exactly; bytes use binary
units (1 GiB = 2^30 bytes), as the footer says.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import Any

from rich import box
from rich.columns import Columns
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from memflops.conventions import Convention
from memflops.report.model import Report
from memflops.units import format_bytes, format_count, format_int

DEFAULT_DEPTH = 2
MIN_WIDTH = 100
"""Plain-text output is as wide as the module table needs, and at least this."""

UNLIMITED = 10_000
"""Console width while measuring the module tree's natural width."""
INDENT = "  "
ROOT_LABEL = "(root)"
MEMORY_FIELDS = (
    ("params", "params"),
    ("buffers", "buffers"),
    ("grads", "gradients"),
    ("optimizer", "optimizer state"),
    ("activations", "activations (saved for backward)"),
)


def render_table(
    report: Report, *, depth: int = DEFAULT_DEPTH, width: int | None = None, color: bool = False
) -> str:
    """The report as text: the module tree down to `depth`, then the footer.

    `width` None: as wide as the module table needs (at least `MIN_WIDTH`),
    so nothing is wrapped. `color` False writes no ANSI escape codes.
    """
    doc = report.to_dict()
    tree = _module_tree(doc, depth)
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
    if width is None:
        console.width = max(MIN_WIDTH, console.measure(tree).maximum)
    console.print(Group(*table_parts(doc, tree)))
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def table_parts(doc: dict[str, Any], tree: Table) -> list[RenderableType]:
    """Header, module tree, totals, memory, batch sweep, fit, convention, uncounted ops and
    warnings, in that order; a section with nothing to say is left out."""
    parts: list[RenderableType] = [_header(doc), Text(""), tree, _totals(doc)]
    for section in (
        _generation(doc.get("generation")),
        _memory(doc),
        _sweep(doc.get("batch_sweep")),
        _fit(doc.get("fit")),
    ):
        if section is not None:
            parts.append(section)
    parts.append(_section("Convention", Text(Convention(doc["convention"]).sentence + ".")))
    if doc["uncounted_ops"]:
        parts.append(_uncounted(doc["uncounted_ops"]))
    if doc["warnings"]:
        warnings = Table.grid(padding=(0, 1))
        warnings.add_column(no_wrap=True)
        warnings.add_column()
        for warning in doc["warnings"]:
            warnings.add_row("-", Text(warning))
        parts.append(_section("Warnings", warnings))
    return parts


def _header(doc: dict[str, Any]) -> Text:
    inputs = ", ".join(
        f"{i['name']}={_shape(i['shape'])}:{i['dtype']}" for i in doc["inputs"]
    )
    facts = [f"mode {doc['mode']}"]
    if _train(doc):
        facts.append(f"optimizer {doc['optimizer'] or 'none'}")
    facts += [
        f"precision {doc['precision']}",
        f"convention {doc['convention']}",
        f"inputs {inputs or 'none'}",
    ]
    text = Text()
    text.append("memflops report: ", style="bold")
    text.append(doc["model"], style="bold cyan")
    text.append("\n" + " · ".join(facts))
    return text


def _train(doc: dict[str, Any]) -> bool:
    return bool(doc["mode"] == "train")


def _module_tree(doc: dict[str, Any], depth: int) -> Table:
    train = _train(doc)
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    table.add_column("module", no_wrap=True)
    table.add_column("type", no_wrap=True)
    numeric = ["params", "MACs fwd", "FLOPs fwd"]
    if train:
        numeric += ["FLOPs bwd", "saved for bwd"]
    for name in numeric:
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("output shape", no_wrap=True)
    for row in doc["modules"]:
        if row["depth"] > depth:
            continue
        cells = [
            INDENT * row["depth"] + (row["path"] or ROOT_LABEL),
            row["type"],
            format_count(row["params"]),
            format_count(row["macs"]["forward"]),
            format_count(row["flops"]["forward"]),
        ]
        if train:
            cells.append(format_count(row["flops"]["backward"]))
            cells.append(format_bytes(row["activation_bytes"]))
        cells.append(_output_shape(row))
        table.add_row(*(Text(c) for c in cells), style="bold" if row["depth"] == 0 else None)
    return table


def _output_shape(row: dict[str, Any]) -> str:
    shape = row["output_shape"]
    if row["calls"] == 0:
        return "(not called)"
    if shape is None:
        return "-"
    if shape and isinstance(shape[0], list):
        return ", ".join(_shape(s) for s in shape)
    return _shape(shape)


def _shape(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape) or "scalar"


def _exact(n: int) -> str:
    """`9,472 (9.47 K)`: the exact count, then its decimal-prefixed form when shorter."""
    short = format_count(n)
    return format_int(n) if short == str(n) else f"{format_int(n)} ({short})"


def _totals(doc: dict[str, Any]) -> RenderableType:
    totals = doc["totals"]
    grid = _grid()
    grid.add_row(
        "params",
        f"{_exact(totals['params'])}: {format_int(totals['trainable_params'])} trainable, "
        f"{format_int(totals['frozen_params'])} frozen",
    )
    grid.add_row("buffers", _exact(totals["buffers"]) + " elements")
    for phase, label in _phases(doc):
        flops, macs = totals["flops"][phase], totals["macs"].get(phase)
        line = f"{_exact(flops)} FLOPs"
        if macs is not None:
            line += f", {_exact(macs)} MACs"
        grid.add_row(label, line)
    return _section("Totals (FLOPs and MACs: K = 10^3, M = 10^6, G = 10^9)", grid)


def _phases(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    yield "forward", "forward"
    if not _train(doc):
        return
    flops = doc["totals"]["flops"]
    if flops.get("loss"):
        yield "loss", "loss"
    yield "backward", "backward"
    if flops.get("optimizer"):
        yield "optimizer", "optimizer step"
    yield "step", "whole step"


def _memory(doc: dict[str, Any]) -> RenderableType | None:
    memory = doc["totals"]["memory"]
    detail = doc.get("memory_detail") or {}
    grid = _grid()

    def add(label: str, value: int) -> None:
        if value:
            grid.add_row(label, _bytes(value))

    for key, label in MEMORY_FIELDS:
        add(label, memory[key])
    add("temporaries (most live at once)", detail.get("temporaries", 0))
    add("KV cache", memory["kv_cache"])
    add("baseline (live before the step)", detail.get("baseline", 0))
    add("peak", memory["peak"])
    peak = detail.get("peak")
    if memory["peak"] and peak:
        module = peak["module"] or ROOT_LABEL
        grid.add_row("peak reached", f"{peak['phase']} phase, op {peak['op']}, module {module}")
        grid.add_row("live at peak", _by_kind(peak["by_kind"]))
    add("seed estimate (article's formula)", memory["seed_estimate"])
    if not grid.row_count:
        return None
    title = "Memory (binary units: 1 KiB = 2^10 B, 1 MiB = 2^20 B, 1 GiB = 2^30 B)"
    return _section(title, grid)


def _by_kind(by_kind: dict[str, int]) -> Columns:
    """`kind size` items laid out in as many rows as the width needs, none split."""
    items = [Text(f"{kind} {format_bytes(n)}", no_wrap=True) for kind, n in by_kind.items() if n]
    return Columns(items, padding=(0, 2))


def _sweep(sweep: dict[str, Any] | None) -> RenderableType | None:
    if not sweep:
        return None
    dim = sweep["dimension"]
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    for name in (dim, "peak", "seed estimate"):
        table.add_column(name, justify="right", no_wrap=True)
    for point in sweep["points"]:
        table.add_row(
            str(point["size"]), format_bytes(point["peak"]), format_bytes(point["seed_estimate"])
        )
    line = Text(
        f"fitted: peak = {_bytes(sweep['constant'])} + {_bytes(sweep['per_item'])} x {dim}"
    )
    return _section(f"Peak memory by {dim} size", Group(table, line))


def _generation(gen: dict[str, Any] | None) -> RenderableType | None:
    if not gen:
        return None
    prompt, new = gen["prompt_len"], gen["new_tokens"]
    grid = _grid()
    grid.add_row(
        "tokens", f"batch {gen['batch']}, prompt {format_int(prompt)}, {format_int(new)} new"
    )
    for key, label in (
        ("prefill", f"prefill ({format_int(prompt)} tokens)"),
        ("decode_first", f"first decode step (cache {format_int(prompt)})"),
        ("decode_last", f"last decode step (cache {format_int(prompt + new - 1)})"),
        ("decode_total", f"all {format_int(new)} decode steps"),
    ):
        cost = gen[key]
        grid.add_row(label, f"{_exact(cost['flops'])} FLOPs, {_exact(cost['macs'])} MACs")
    grid.add_row(f"KV cache ({gen['cache_dtype']})", _bytes(gen["kv_cache"]))
    grid.add_row("peak of prefill", _bytes(gen["prefill_peak"]))
    grid.add_row("peak of last decode step", _bytes(gen["decode_peak"]))
    return _section("Generation (prefill, then one token at a time with a KV cache)", grid)


def _fit(fit: dict[str, Any] | None) -> RenderableType | None:
    if not fit:
        return None
    dim, largest, after = fit["dimension"], fit["largest"], fit["peak_at_next"]
    grid = _grid()
    grid.add_row("capacity", _bytes(fit["capacity"]))
    if largest == 0:
        grid.add_row(f"largest {dim}", "none")
    else:
        peak = _bytes(fit["peak_at_largest"])
        grid.add_row(f"largest {dim}", f"{format_int(largest)}, peak {peak}")
    if after is not None:
        grid.add_row(f"{dim} {format_int(largest + 1)}", f"does not fit, peak {_bytes(after)}")
    grid.add_row("analyses run", str(fit["analyses"]))
    return _section(f"Largest {dim} that fits", grid)


def _bytes(value: int) -> str:
    """`2.35 MiB (2,469,134 B)`; under 1 KiB just `512 B`."""
    human, exact = format_bytes(value), f"{format_int(value)} B"
    return exact if human == f"{value} B" else f"{human} ({exact})"


def _grid() -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    return grid


def _uncounted(ops: list[dict[str, Any]]) -> RenderableType:
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    table.add_column("op", no_wrap=True)
    table.add_column("count", justify="right")
    table.add_column("modules")
    table.add_column("reason")
    for op in ops:
        modules = ", ".join(op["modules"])
        table.add_row(Text(op["op"]), Text(str(op["count"])), Text(modules), Text(op["reason"]))
    title = "Uncounted ops (no FLOP rule: not included in the totals above)"
    return _section(title, table)


def _section(title: str, body: RenderableType) -> Group:
    return Group(Text(""), Text(title, style="bold underline"), body)
