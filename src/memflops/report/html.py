"""The HTML renderer: one self-contained page to look at and to share.

`render_html(report)` is a complete document that works offline: styles
inline, charts as static SVG (`report/charts.py`), no script, no font, no
image or anything else fetched. It shows the summary, the charts the report
has data for, the totals, time on the accelerator, generation, memory
(reserved and the device total with the allocator simulated), activation
checkpointing, sweep and fit, each when the report has its data, the module tree
(collapsible: `<details>`, the first two levels open), the convention,
uncounted ops and warnings. `html_fragment(report)` is the same page body
with its styles, for notebooks (`Report._repr_html_`); every style is
scoped under `.memflops` so a notebook's own styles are untouched.

It reads the typed `Report` and computes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import TYPE_CHECKING

from memflops import __version__
from memflops.report import text
from memflops.report.charts import charts
from memflops.report.schema import SCHEMA
from memflops.units import format_bytes, format_count, format_int, format_rate, format_seconds

if TYPE_CHECKING:
    from memflops.report.model import ModuleRow, Report

OPEN_DEPTH = 2
"""Tree nodes above this depth start open."""
TYPE_CHARS = 18
"""The module tree's type column is as wide as this many characters at most (longer types
end in an ellipsis; the whole type is the cell's tooltip)."""

STYLE = """
.memflops { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial,
  sans-serif; color: #1f2933; line-height: 1.45; max-width: 1100px; margin: 0 auto;
  padding: 24px 28px 40px; background: #ffffff; font-size: 14px; }
.memflops h1 { font-size: 22px; margin: 0 0 4px; font-weight: 650; }
.memflops h1 code { font-size: 21px; color: #0b5cad; }
.memflops h2 { font-size: 17px; margin: 30px 0 10px; padding-bottom: 4px;
  border-bottom: 1px solid #e4e7eb; font-weight: 650; }
.memflops code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 0.92em; }
.memflops .facts { color: #52606d; margin: 0 0 18px; }
.memflops .facts b { color: #1f2933; font-weight: 600; }
.memflops .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr));
  gap: 12px; margin: 8px 0 4px; }
.memflops .card { box-sizing: border-box; border: 1px solid #e4e7eb;
  border-radius: 8px;
  padding: 10px 14px; background: #f8fafc; }
.memflops .card .label { color: #616e7c; font-size: 12px; text-transform: uppercase;
  letter-spacing: 0.04em; }
.memflops .card .value { font-size: 22px; font-weight: 650; margin-top: 2px; }
.memflops .card .exact { color: #616e7c; font-size: 12px; }
.memflops figure { margin: 18px 0 6px; border: 1px solid #e4e7eb; border-radius: 8px;
  padding: 10px 12px 6px; }
.memflops figcaption { font-weight: 650; margin-bottom: 6px; }
.memflops figure svg { display: block; width: 100%; height: auto; }
.memflops table { border-collapse: collapse; margin: 6px 0; }
.memflops th, .memflops td { padding: 4px 12px 4px 0; text-align: left; vertical-align: top; }
.memflops th { font-weight: 600; border-bottom: 1px solid #cbd2d9; }
.memflops td.num, .memflops th.num { text-align: right; font-variant-numeric: tabular-nums;
  white-space: nowrap; }
.memflops .wide { overflow-x: auto; }
.memflops .wide td { white-space: nowrap; }
.memflops table.kv td:first-child { font-weight: 600; white-space: nowrap; padding-right: 24px; }
.memflops .note { color: #616e7c; font-size: 13px; margin: 4px 0; }
.memflops .tree { border: 1px solid #e4e7eb; border-radius: 8px; overflow-x: auto;
  font-size: 13px; }
.memflops .tree .row { display: grid; grid-template-columns: var(--cols); align-items: baseline;
  padding: 2px 10px; border-bottom: 1px solid #f0f2f5; white-space: nowrap;
  font-variant-numeric: tabular-nums; width: max-content; min-width: calc(100% - 20px); }
.memflops .tree .head { font-weight: 600; background: #f5f7fa; align-items: end;
  border-bottom: 1px solid #cbd2d9; }
.memflops .tree .head .n { white-space: normal; }
.memflops .tree .n { text-align: right; padding-left: 14px; }
.memflops .tree .t { color: #616e7c; padding-left: 12px; overflow: hidden;
  text-overflow: ellipsis; }
.memflops .tree .s { color: #616e7c; padding-left: 16px; }
.memflops .tree .name { overflow: hidden; text-overflow: ellipsis; }
.memflops .tree summary { list-style: none; cursor: pointer; }
.memflops .tree summary::-webkit-details-marker { display: none; }
.memflops .tree summary .name::before { content: '\\25B8'; display: inline-block; width: 1.1em;
  color: #616e7c; }
.memflops .tree details[open] > summary .name::before { content: '\\25BE'; }
.memflops .tree .leaf .name::before { content: ''; display: inline-block; width: 1.1em; }
.memflops .tree summary:hover, .memflops .tree .leaf:hover { background: #f5f9ff; }
.memflops .tree .root { font-weight: 650; }
.memflops ul.warnings { padding-left: 20px; margin: 6px 0; }
.memflops footer { margin-top: 32px; color: #7b8794; font-size: 12px; }
"""


def render_html(report: Report) -> str:
    """The report as one self-contained HTML document."""
    return page(f"memflops report: {report.model}", _body(report))


def page(title: str, body: str) -> str:
    """A self-contained HTML document of `body` (a `.memflops` block) under `title`."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f'<body style="margin:0">\n{body}\n</body>\n</html>\n'
    )


def html_fragment(report: Report) -> str:
    """The page body with its (scoped) styles, for a notebook cell."""
    return f"<style>{STYLE}</style>\n{_body(report)}"


def _body(report: Report) -> str:
    parts = [
        '<div class="memflops">',
        f"<h1>memflops report: <code>{escape(report.model)}</code></h1>",
        '<p class="facts">' + " · ".join(_fact(f) for f in text.header_facts(report)) + "</p>",
        _cards(report),
    ]
    for name, title, svg in charts(report):
        parts.append(
            f'<figure class="chart-box" data-chart="{name}"><figcaption>{escape(title)}'
            f"</figcaption>\n{svg}\n</figure>"
        )
    parts += [section("Totals", _totals(report), f"FLOPs and MACs: {text.COUNT_UNITS}.")]
    for part in (_time(report), _generation(report), _memory(report),
                 _checkpointing(report), _parallel(report), _sweep(report), _fit(report)):
        if part:
            parts.append(part)
    parts.append(_modules(report))
    parts.append(section("Convention", f"<p>{escape(report.convention.sentence)}.</p>"))
    if report.uncounted_ops:
        parts.append(_uncounted(report))
    if report.warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in report.warnings)
        parts.append(section("Warnings", f'<ul class="warnings">{items}</ul>'))
    parts.append(
        f"<footer>memflops {escape(__version__)} · schema {SCHEMA} · "
        "every number is exact in the JSON document (<code>--format json</code>)</footer>"
    )
    parts.append("</div>")
    return "\n".join(parts)


def _fact(fact: str) -> str:
    name, _, value = fact.partition(" ")
    return f"{escape(name)} <b>{escape(value)}</b>"


def section(title: str, body: str, note: str | None = None) -> str:
    intro = f'<p class="note">{escape(note)}</p>' if note else ""
    return f"<section><h2>{escape(title)}</h2>{intro}\n{body}\n</section>"


def card(label: str, value: str, exact: str | None = None) -> str:
    detail = f'<div class="exact">{escape(exact)}</div>' if exact else ""
    return (
        f'<div class="card"><div class="label">{escape(label)}</div>'
        f'<div class="value">{escape(value)}</div>{detail}</div>'
    )


def _cards(report: Report) -> str:
    totals, memory, conv = report.totals, report.totals.memory, report.convention
    cards = [card("parameters", format_count(totals.params), format_int(totals.params))]
    if text.is_train(report):
        step = totals.costs.step.under(conv)
        cards.append(card("FLOPs per step", format_count(step), format_int(step)))
    else:
        label = "prefill FLOPs" if report.generation is not None else "forward FLOPs"
        forward = totals.costs.forward.under(conv)
        cards.append(card(label, format_count(forward), format_int(forward)))
    if memory.peak:
        cards.append(card("peak memory", format_bytes(memory.peak),
                           f"{format_int(memory.peak)} B"))
    if memory.device_total is not None and memory.reserved is not None:
        cards.append(card("device total", format_bytes(memory.device_total),
                           f"reserved {format_bytes(memory.reserved)} + context"))
    timing = report.timing
    if timing is not None:
        est = timing.estimate
        label = "generation time" if report.mode == "generate" else "step time"
        cards.append(card(label, format_seconds(est.step), f"on {timing.accelerator.name}"))
        if timing.samples_per_s is not None:
            tokens = (f"{format_rate(timing.tokens_per_s)} tokens/s"
                      if timing.tokens_per_s is not None else None)
            cards.append(card("throughput", f"{format_rate(timing.samples_per_s)}/s",
                               tokens or "samples per second"))
        mfu = est.mfu()
        if mfu is not None:
            cards.append(card("MFU", f"{100 * mfu:.1f}%", f"of the {est.peak_dtype} dense peak"))
    if memory.seed_estimate:
        cards.append(card("article's estimate", format_bytes(memory.seed_estimate),
                           f"{format_int(memory.seed_estimate)} B"))
    if memory.kv_cache:
        cards.append(card("KV cache", format_bytes(memory.kv_cache),
                           f"{format_int(memory.kv_cache)} B"))
    if report.fit is not None:
        fit = report.fit
        best = "fewest" if fit.dimension == "ranks" else "largest"
        if fit.reached_limit:
            cards.append(card(f"{best} {fit.dimension}", "no limit found",
                              f"every size up to {format_int(fit.limit)} fits "
                              f"({fit.limit_reason})"))
        else:
            cards.append(card(f"{best} {fit.dimension}", format_int(fit.largest),
                              f"that fits in {format_bytes(fit.capacity)}"))
    return '<div class="cards">' + "".join(cards) + "</div>"


def kv_table(rows: Iterable[tuple[str, str]]) -> str:
    body = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


def grid_table(header: Sequence[str], rows: Iterable[Sequence[str]],
                numeric: Sequence[bool]) -> str:
    def cls(i: int) -> str:
        return ' class="num"' if numeric[i] else ""

    head = "".join(f"<th{cls(i)}>{escape(h)}</th>" for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{escape(c)}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _totals(report: Report) -> str:
    totals = report.totals
    rows = [
        ("params", f"{text.exact_count(totals.params)}: {format_int(totals.trainable_params)} "
                   f"trainable, {format_int(totals.frozen_params)} frozen"),
        ("buffers", f"{text.exact_count(totals.buffers)} elements"),
    ]
    if totals.active_params is not None:
        rows.append(("active params (per token)", text.exact_count(totals.active_params)))
    for label, cost, with_macs in text.phases(report):
        rows.append((label, text.cost_line(report, cost, with_macs)))
    return kv_table(rows)


def _time(report: Report) -> str:
    title = text.time_title(report)
    if title is None:
        return ""
    return section(title, kv_table(text.time_rows(report)),
                    "Each op's time is the larger of its compute and memory time at the stated "
                    "fractions of peak, plus a per-kernel overhead; see docs/time-model.md.")


def _parallel(report: Report) -> str:
    rows = text.parallel_rows(report)
    if not rows:
        return ""
    return section("Parallel", kv_table(rows),
                   "One rank of a step over several GPUs; the sections above are that rank's.")


def _checkpointing(report: Report) -> str:
    rows = text.checkpointing_rows(report)
    if not rows:
        return ""
    return section("Activation checkpointing", kv_table(rows),
                    "The recomputed forward is part of backward's FLOPs, counted once.")


def _memory(report: Report) -> str:
    rows = [(label, text.exact_bytes(value)) for label, value in text.memory_rows(report)]
    if not rows:
        return ""
    where = text.peak_where(report)
    if where is not None:
        rows.append(("peak reached", where))
        live = ", ".join(f"{text.kind_label(kind)} {format_bytes(n)}"
                         for kind, n in text.peak_by_kind(report))
        rows.append(("live at peak", live))
    rows += text.allocator_rows(report)
    return section("Memory", kv_table(rows), f"Binary units: {text.BYTE_UNITS}.")


def _generation(report: Report) -> str:
    rows = text.generation_rows(report)
    if not rows:
        return ""
    return section("Generation", kv_table(rows),
                    "Prefill, then one token at a time with a KV cache.")


def _sweep(report: Report) -> str:
    header, rows, notes = text.sweep_table(report)
    if not header:
        return ""
    body = grid_table(header, rows, [True] * len(header))
    body += "".join(f'<p class="note">{escape(note)}</p>' for note in notes)
    return section(f"Peak memory by {header[0]} size", body)


def _fit(report: Report) -> str:
    rows = text.fit_rows(report)
    if not rows:
        return ""
    return section(text.fit_title(report.fit.dimension),  # type: ignore[union-attr]
                   kv_table(rows))


def _modules(report: Report) -> str:
    """The module tree: nested `<details>`, one grid row per module."""
    train = text.is_train(report)
    conv = report.convention
    header = ["module", "type", "params", "MACs fwd", "FLOPs fwd"]
    if train:
        header += ["FLOPs bwd", "saved for bwd"]
    header += text.module_time_header(report)
    header.append("output shape")
    numeric = len(header) - 3
    rows = report.modules
    # Every row is a grid of its own (rows nest in <details>), so columns get fixed widths
    # from the longest text of each (about 0.6rem a character), in rem: the same in bold rows.
    name = max((len(_node_name(r)) + 1.8 * r.depth for r in rows), default=8) + 3
    kind = min(max((len(r.type) for r in rows), default=4), TYPE_CHARS) * 0.92 + 2
    shape = max((len(text.output_shape_text(r)) for r in rows), default=8) + 1
    cols = (f"{0.6 * min(max(name, 16), 70):.1f}em {0.6 * kind:.1f}em "
            f"repeat({numeric}, 6.4em) {0.6 * max(shape, 14) + 1.2:.1f}em")

    def cells(row: ModuleRow) -> str:
        values = [format_count(row.params), format_count(row.forward.macs),
                  format_count(row.forward.under(conv))]
        if train:
            values += [format_count(row.backward.under(conv)), format_bytes(row.activation_bytes)]
        values += text.module_time_cells(report, row)
        indent = f' style="padding-left:{row.depth * 1.1:.1f}em"' if row.depth else ""
        return (
            f'<span class="name" title="{escape(text.module_label(row))}"{indent}>'
            f"{escape(_node_name(row))}</span>"
            f'<span class="t" title="{escape(row.type)}">{escape(row.type)}</span>'
            + "".join(f'<span class="n">{v}</span>' for v in values)
            + f'<span class="s">{escape(text.output_shape_text(row))}</span>'
        )

    head = (
        '<div class="row head"><span class="name">module</span><span class="t">type</span>'
        + "".join(f'<span class="n">{escape(h)}</span>' for h in header[2:-1])
        + '<span class="s">output shape</span></div>'
    )
    out = [f'<div class="tree" style="--cols: {cols}">', head]
    open_nodes = 0
    for i, row in enumerate(rows):
        parent = i + 1 < len(rows) and rows[i + 1].depth > row.depth
        root = " root" if row.depth == 0 else ""
        if parent:
            opened = " open" if row.depth < OPEN_DEPTH else ""
            out.append(f'<details{opened}><summary class="row{root}">{cells(row)}</summary>')
            open_nodes += 1
        else:
            out.append(f'<div class="row leaf{root}">{cells(row)}</div>')
        following = rows[i + 1].depth if i + 1 < len(rows) else 0
        closing = row.depth - following if not parent else 0
        for _ in range(max(0, closing)):
            if open_nodes:
                out.append("</details>")
                open_nodes -= 1
    out += ["</details>"] * open_nodes
    out.append("</div>")
    note = ("Each row counts the module and everything inside it; click a row with a "
            "triangle to fold or unfold it.")
    return section("Modules", "\n".join(out), note)


def _node_name(row: ModuleRow) -> str:
    """A row's name in the tree: the last part of its dotted path (its parent shows the rest)."""
    return text.module_label(row).rpartition(".")[2]


def _uncounted(report: Report) -> str:
    rows = [[op.op, str(op.count), ", ".join(op.modules), op.reason]
            for op in report.uncounted_ops]
    return section(
        "Uncounted ops",
        grid_table(["op", "count", "modules", "reason"], rows, [False, True, False, False]),
        "No FLOP rule: not included in the totals above.",
    )
