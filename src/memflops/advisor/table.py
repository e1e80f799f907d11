"""The advice as text: the baseline, the measured changes ranked by peak saved, the
article's claims beside the measurements, what did not apply and why, and the fit.

It reads the typed `Advice` and computes nothing; bytes in binary units (1 GiB =
2^30 B), FLOPs with decimal prefixes (1 G = 10^9), as the header says.
"""

from __future__ import annotations

import io

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from memflops.advisor.advice import Advice, BatchTerms, ChangeResult, FitResult, Measured
from memflops.units import format_bytes, format_count, format_int

MIN_WIDTH = 100
UNLIMITED = 10_000


def render_advice(advice: Advice, *, width: int | None = None, color: bool = False) -> str:
    """The advice as a ranked table and its sections; `width` None: as wide as needed."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width or UNLIMITED, force_terminal=color,
                      color_system="standard" if color else None, no_color=not color,
                      highlight=False, markup=False, emoji=False, legacy_windows=False)
    ranked = _ranked_table(advice)
    if width is None:
        console.width = max(MIN_WIDTH, console.measure(ranked).maximum)
    else:  # a terminal narrower than the table: leave out columns rather than cut them
        left_out: set[str] = set()
        unbounded = console.options.update_width(UNLIMITED)
        for name in _optional_columns(advice):
            if console.measure(ranked, options=unbounded).maximum <= width:
                break
            left_out.add(name)
            ranked = _ranked_table(advice, left_out)
    parts: list[RenderableType] = [_header(advice), Text(""), ranked]
    for section in (_claims(advice), _batch(advice), _modules(advice), _failed(advice),
                    _not_applicable(advice), _fit(advice.fit, advice.budget_label)):
        if section is not None:
            parts += [Text(""), section]
    if advice.warnings:
        parts += [Text(""), Text("Warnings\n" + "\n".join(f"- {w}" for w in advice.warnings))]
    console.print(Group(*parts))
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def _header(advice: Advice) -> Text:
    b = advice.baseline
    text = Text()
    text.append("memflops advice: ", style="bold")
    text.append(advice.model, style="bold cyan")
    text.append(f"\nmode {advice.mode} · convention {advice.convention} · baseline: "
                f"{format_count(b.params)} params, {format_count(b.flops_step)} FLOPs per step, "
                f"peak {format_bytes(b.peak)} ({format_int(b.peak)} B)")
    if advice.accelerator is not None:
        text.append(f" · timed on {advice.accelerator}")
    if advice.budget is not None:
        text.append(f" · budget {advice.budget_label} = {format_bytes(advice.budget)} "
                    f"({format_int(advice.budget)} B)")
    text.append("\nEvery row is a real analysis of the changed model or step. Bytes: 1 GiB = "
                "2^30 B; FLOPs: 1 G = 10^9.")
    return text


def _measured(advice: Advice) -> list[ChangeResult]:
    return [c for c in advice.changes if c.measured is not None]


COLUMNS = ("#", "change", "saves", "function", "params", "FLOPs step", "recompute", "peak",
           "Δ peak", "saved for bwd", "time/step")
LEFT_ALIGNED = ("#", "change", "saves", "function")


def _optional_columns(advice: Advice) -> list[str]:
    """The columns a narrow terminal goes without, first to last: those with nothing in
    them, then the least asked for."""
    measured = [advice.baseline, *(c.measured for c in _measured(advice) if c.measured)]
    empty = []
    if all(m.time_step is None for m in measured):
        empty.append("time/step")
    if not any(m.flops_recompute for m in measured):
        empty.append("recompute")
    rest = ["saves", "saved for bwd", "params", "time/step", "recompute", "FLOPs step"]
    return empty + [name for name in rest if name not in empty]


def _ranked_table(advice: Advice, left_out: set[str] | frozenset[str] = frozenset()) -> Table:
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    shown = [name for name in COLUMNS if name not in left_out]
    for name in shown:
        table.add_column(name, no_wrap=True,
                         justify="left" if name in LEFT_ALIGNED else "right")
    b = advice.baseline
    rows = [dict(zip(COLUMNS, ("", "(baseline)", "", "", *_numbers(b), "",
                               format_bytes(b.activations), _time(b.time_step)), strict=True))]
    for rank, c in enumerate(_measured(advice), 1):
        m, d = c.measured, c.delta
        assert m is not None and d is not None
        rows.append(dict(zip(COLUMNS, (
            str(rank), c.name, c.kind, "kept" if c.preserves_function else "CHANGED",
            *_numbers(m), f"{_signed_bytes(d.peak)} ({_percent(-d.peak_saved)})",
            format_bytes(m.activations), _time(m.time_step),
        ), strict=True)))
    for i, row in enumerate(rows):
        table.add_row(*(row[name] for name in shown), style="bold" if i == 0 else None)
    return table


def _numbers(m: Measured) -> tuple[str, str, str, str]:
    recompute = format_count(m.flops_recompute) if m.flops_recompute else "-"
    return format_count(m.params), format_count(m.flops_step), recompute, format_bytes(m.peak)


def _signed_bytes(n: int) -> str:
    return ("+" if n > 0 else "-" if n < 0 else "±") + format_bytes(abs(n))


def _percent(fraction: float) -> str:
    return f"{fraction:+.1%}"


def _time(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.1f} ms"


def _claims(advice: Advice) -> RenderableType | None:
    lines = []
    for c in _measured(advice):
        claim, d = c.article_claim, c.delta
        if claim is None or d is None:
            continue
        if claim.quantity == "peak":
            measured = f"{_effect(d.peak_saved)} the peak ({_signed_bytes(d.peak)})"
        else:
            measured = (f"{_effect(d.macs_forward_saved)} the forward MACs "
                        f"({_signed_count(d.macs_forward)})")
        said = f" ({claim.saved:.0%})" if claim.saved is not None else ""
        lines.append(f"- {c.name}: article: \"{claim.text}\"{said}; measured: {measured}")
    return Text("The article's methods, claim beside measurement\n" + "\n".join(lines)) \
        if lines else None


def _effect(saved: float) -> str:
    """`saves 48.1% of` / `adds 6.3% to`."""
    return f"saves {saved:.1%} of" if saved >= 0 else f"adds {-saved:.1%} to"


def _signed_count(n: int) -> str:
    return ("+" if n > 0 else "-" if n < 0 else "±") + format_count(abs(n))


def _batch(advice: Advice) -> RenderableType | None:
    terms = next((c.batch_terms for c in advice.changes if c.batch_terms is not None), None)
    if terms is None:
        return None
    return Text("Batch size\n" + _batch_line(terms))


def _batch_line(t: BatchTerms) -> str:
    line = (f"peak ≈ {format_bytes(t.constant)} + {format_bytes(t.per_sample)} x batch "
            f"(constant: params, gradients, optimizer state; per sample: activations); "
            f"analysed batch {t.batch}")
    if t.budget is not None and t.largest_fitting is not None:
        line += f"\nlargest batch fitting {format_bytes(t.budget)}: " + (
            f"{t.largest_fitting} (peak {format_bytes(t.peak_at_largest or 0)}, analysed)"
            if t.largest_fitting else "none, not even batch 1")
    return line


def _modules(advice: Advice) -> RenderableType | None:
    lines = []
    for c in _measured(advice):
        shown = [m for m in c.module_changes if m.macs_forward_before or m.macs_forward_after]
        if shown:
            rows = ", ".join(
                f"{m.path} {format_count(m.macs_forward_before)} -> "
                f"{format_count(m.macs_forward_after)} MACs" for m in shown[:4])
            more = len(shown) - 4
            lines.append(f"- {c.name}: {rows}" + (f", ... ({more} more)" if more > 0 else ""))
        elif c.note:
            lines.append(f"- {c.name}: {c.note}")
    return Text("What each change did\n" + "\n".join(lines)) if lines else None


def _failed(advice: Advice) -> RenderableType | None:
    failed = [c for c in advice.changes if c.failed]
    if not failed:
        return None
    return Text("Failed (the change applied but could not be analysed)\n"
                + "\n".join(f"- {c.reason}" for c in failed))


def _not_applicable(advice: Advice) -> RenderableType | None:
    skipped = [c for c in advice.changes if not c.applies]
    if not skipped:
        return None
    return Text("Not applicable\n" + "\n".join(f"- {c.name}: {c.reason}" for c in skipped))


def _fit(fit: FitResult | None, label: str | None) -> RenderableType | None:
    if fit is None:
        return None
    head = f"Make it fit in {label} ({format_bytes(fit.budget)})"
    if fit.fits and not fit.changes:
        return Text(f"{head}\nthe step fits as it is")
    chosen = " + ".join(fit.changes) or "(none)"
    peak = format_bytes(fit.measured.peak) if fit.measured is not None else "-"
    verdict = "fits" if fit.fits else "NOTHING FITS; closest"
    together = " together" if len(fit.changes) > 1 else ""
    lines = [head, f"{verdict}: {chosen}, analysed{together}: peak {peak}"]
    if fit.measured is not None:
        lines.append(f"its step: {format_count(fit.measured.flops_step)} FLOPs "
                     f"({format_count(fit.measured.flops_recompute)} recomputed), "
                     f"time/step {_time(fit.measured.time_step)}")
    if fit.checkpointed:
        shown = ", ".join(fit.checkpointed[:8])
        more = f", ... ({len(fit.checkpointed) - 8} more)" if len(fit.checkpointed) > 8 else ""
        lines.append(f"blocks checkpointed: {shown}{more}")
    if fit.tried:
        lines.append("combinations analysed: " + "; ".join(
            f"{' + '.join(n)} {format_bytes(p)}" for n, p in fit.tried))
    if fit.note:
        lines.append(fit.note)
    return Text("\n".join(lines))
