"""The advice's words and formatted numbers, shared by its renderers (the terminal table,
Markdown and HTML), so each says the same thing: the header's facts, the ranked rows,
and the sections (the article's claims, the batch terms, what each change did, what
failed or does not apply, the fit, warnings).

It formats what the typed `Advice` holds and computes nothing; bytes in binary units
(1 GiB = 2^30 B), FLOPs with decimal prefixes (1 G = 10^9).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from memflops.units import format_bytes, format_count, format_int

if TYPE_CHECKING:
    from memflops.advisor.advice import Advice, BatchTerms, ChangeResult, FitResult, Measured

UNITS = "Bytes: 1 GiB = 2^30 B; FLOPs: 1 G = 10^9."
COLUMNS = ("#", "change", "saves", "function", "params", "FLOPs step", "recompute", "peak",
           "Δ peak", "saved for bwd", "time/step")
NUMERIC = tuple(name not in ("#", "change", "saves", "function") for name in COLUMNS)


@dataclass(frozen=True)
class Section:
    """A titled list of lines; `bulleted`: each line is an item of a list."""

    title: str
    lines: tuple[str, ...]
    bulleted: bool = True


def facts(advice: Advice) -> list[str]:
    """The header's facts, after the model's name."""
    b = advice.baseline
    out = [f"mode {advice.mode}", f"convention {advice.convention}",
           f"baseline: {format_count(b.params)} params, {format_count(b.flops_step)} FLOPs per "
           f"step, peak {format_bytes(b.peak)} ({format_int(b.peak)} B)"]
    if advice.layout is not None:
        out.append(f"layout {advice.layout}: every number is rank {advice.layout_rank}'s")
    if advice.accelerator is not None:
        out.append(f"timed on {advice.accelerator}")
    if advice.budget is not None:
        out.append(f"budget {advice.budget_label} = {format_bytes(advice.budget)} "
                   f"({format_int(advice.budget)} B)")
    return out


def measured(advice: Advice) -> list[ChangeResult]:
    """The changes that were analysed, in the advice's order (largest peak saving first)."""
    return [c for c in advice.changes if c.measured is not None]


def best(advice: Advice) -> ChangeResult | None:
    """The measured change that saves the most peak memory, if any saves some."""
    ranked = [c for c in measured(advice) if c.delta is not None and c.delta.peak < 0]
    return ranked[0] if ranked else None


def ranked_rows(advice: Advice) -> list[dict[str, str]]:
    """The baseline, then each measured change, as {column: text} over `COLUMNS`."""
    b = advice.baseline
    rows = [dict(zip(COLUMNS, ("", "(baseline)", "", "", *_numbers(b), "",
                               format_bytes(b.activations), time(b.time_step)), strict=True))]
    for rank, c in enumerate(measured(advice), 1):
        m, d = c.measured, c.delta
        assert m is not None and d is not None
        rows.append(dict(zip(COLUMNS, (
            str(rank), c.name, c.kind, "kept" if c.preserves_function else "CHANGED",
            *_numbers(m), f"{signed_bytes(d.peak)} ({percent(-d.peak_saved)})",
            format_bytes(m.activations), time(m.time_step),
        ), strict=True)))
    return rows


def _numbers(m: Measured) -> tuple[str, str, str, str]:
    recompute = format_count(m.flops_recompute) if m.flops_recompute else "-"
    return format_count(m.params), format_count(m.flops_step), recompute, format_bytes(m.peak)


def percent(fraction: float) -> str:
    """`+12.5%`, `-3.0%`; no change is `+0.0%`, never `-0.0%`."""
    return f"{fraction + 0.0:+.1%}"


def signed_bytes(n: int) -> str:
    return ("+" if n > 0 else "-" if n < 0 else "±") + format_bytes(abs(n))


def signed_count(n: int) -> str:
    return ("+" if n > 0 else "-" if n < 0 else "±") + format_count(abs(n))


def time(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.1f} ms"


def sections(advice: Advice) -> list[Section]:
    """Every section after the ranked table that has something to say, in order."""
    found = (claims(advice), batch(advice), modules(advice), failed(advice),
             not_applicable(advice), fit(advice.fit, advice.budget_label), warnings(advice))
    return [s for s in found if s is not None]


def claims(advice: Advice) -> Section | None:
    lines = []
    for c in measured(advice):
        claim, d = c.article_claim, c.delta
        if claim is None or d is None:
            continue
        if claim.quantity == "peak":
            what = f"{_effect(d.peak_saved)} the peak ({signed_bytes(d.peak)})"
        else:
            what = (f"{_effect(d.macs_forward_saved)} the forward MACs "
                    f"({signed_count(d.macs_forward)})")
        said = f" ({claim.saved:.0%})" if claim.saved is not None else ""
        lines.append(f"{c.name}: article: \"{claim.text}\"{said}; measured: {what}")
    return Section("The article's methods, claim beside measurement", tuple(lines)) \
        if lines else None


def _effect(saved: float) -> str:
    """`saves 48.1% of` / `adds 6.3% to`."""
    return f"saves {saved:.1%} of" if saved >= 0 else f"adds {-saved:.1%} to"


def batch(advice: Advice) -> Section | None:
    terms = next((c.batch_terms for c in advice.changes if c.batch_terms is not None), None)
    if terms is None:
        return None
    return Section("Batch size", _batch_lines(terms), bulleted=False)


def _batch_lines(t: BatchTerms) -> tuple[str, ...]:
    lines = [f"peak ≈ {format_bytes(t.constant)} + {format_bytes(t.per_sample)} x batch "
             f"(constant: params, gradients, optimizer state; per sample: activations); "
             f"analysed batch {t.batch}"]
    if t.budget is not None and t.largest_fitting is not None:
        lines.append(f"largest batch fitting {format_bytes(t.budget)}: " + (
            f"{t.largest_fitting} (peak {format_bytes(t.peak_at_largest or 0)}, analysed)"
            if t.largest_fitting else "none, not even batch 1"))
    return tuple(lines)


def modules(advice: Advice) -> Section | None:
    lines = []
    for c in measured(advice):
        shown = [m for m in c.module_changes if m.macs_forward_before or m.macs_forward_after]
        if shown:
            rows = ", ".join(
                f"{m.path} {format_count(m.macs_forward_before)} -> "
                f"{format_count(m.macs_forward_after)} MACs" for m in shown[:4])
            more = len(shown) - 4
            lines.append(f"{c.name}: {rows}" + (f", ... ({more} more)" if more > 0 else ""))
        elif c.note:
            lines.append(f"{c.name}: {c.note}")
    return Section("What each change did", tuple(lines)) if lines else None


def failed(advice: Advice) -> Section | None:
    lines = tuple(c.reason for c in advice.changes if c.failed)
    return Section("Failed (the change applied but could not be analysed)", lines) \
        if lines else None


def not_applicable(advice: Advice) -> Section | None:
    lines = tuple(f"{c.name}: {c.reason}" for c in advice.changes if not c.applies)
    return Section("Not applicable", lines) if lines else None


def fit(result: FitResult | None, label: str | None) -> Section | None:
    if result is None:
        return None
    head = f"Make it fit in {label} ({format_bytes(result.budget)})"
    if result.fits and not result.changes:
        return Section(head, ("the step fits as it is",), bulleted=False)
    if result.measured is None:
        return Section(head, (f"NOTHING FITS: {result.note}",), bulleted=False)
    chosen = " + ".join(result.changes) or "(none)"
    peak = format_bytes(result.measured.peak) if result.measured is not None else "-"
    verdict = "fits" if result.fits else "NOTHING FITS; closest"
    together = " together" if len(result.changes) > 1 else ""
    lines = [f"{verdict}: {chosen}, analysed{together}: peak {peak}"]
    if result.measured is not None:
        lines.append(f"its step: {format_count(result.measured.flops_step)} FLOPs "
                     f"({format_count(result.measured.flops_recompute)} recomputed), "
                     f"time/step {time(result.measured.time_step)}")
    if result.checkpointed:
        shown = ", ".join(result.checkpointed[:8])
        more = (f", ... ({len(result.checkpointed) - 8} more)"
                if len(result.checkpointed) > 8 else "")
        lines.append(f"blocks checkpointed: {shown}{more}")
    if result.tried:
        lines.append("combinations analysed: " + "; ".join(
            f"{' + '.join(n)} {format_bytes(p)}" for n, p in result.tried))
    if result.note:
        lines.append(result.note)
    return Section(head, tuple(lines), bulleted=False)


def warnings(advice: Advice) -> Section | None:
    return Section("Warnings", tuple(advice.warnings)) if advice.warnings else None
