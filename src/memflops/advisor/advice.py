"""The advice: frozen data, `to_dict()` gives the JSON schema `memflops.advice/1`.

Every number here is read from a `memflops.analyze` report of the changed model or
step (`Measured.from_report`), or is the difference of two of them; nothing is
estimated. Bytes and FLOPs are exact Python ints. `time_step` is the step time on
the accelerator of the analysis when the report has one (the time model), else None.
Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memflops.advisor.schema import SCHEMA


@dataclass(frozen=True)
class Measured:
    """What one analysis of a model and step found (a report's totals)."""

    params: int
    flops_forward: int
    flops_step: int
    flops_recompute: int
    """FLOPs of forwards run again in backward (activation checkpointing), part of the step."""
    macs_forward: int
    peak: int
    activations: int
    """Bytes saved for backward."""
    time_step: float | None = None
    """Seconds per step on the analysis' accelerator; None until a time model gives it."""


@dataclass(frozen=True)
class Delta:
    """Changed minus baseline (negative: the change saves), and the fractions saved."""

    params: int
    flops_forward: int
    flops_step: int
    flops_recompute: int
    macs_forward: int
    peak: int
    activations: int
    time_step: float | None
    peak_saved: float
    """Fraction of the baseline peak the change saves (0.25: a quarter; negative: it adds)."""
    flops_step_saved: float
    """Fraction of the baseline step FLOPs the change saves."""
    macs_forward_saved: float
    """Fraction of the baseline forward MACs the change saves."""


@dataclass(frozen=True)
class ArticleClaim:
    """What the reference article says a method saves, to read beside the measurement."""

    text: str
    quantity: str
    """The measured quantity the claim is about: "peak" (GPU memory) or "macs_forward"."""
    saved: float | None
    """The fraction it claims saved (0.40 for "about 40%"); None: the article gives none."""


@dataclass(frozen=True)
class ModuleChange:
    """One rewritten module: its forward FLOPs and MACs before and after."""

    path: str
    flops_forward_before: int
    flops_forward_after: int
    macs_forward_before: int
    macs_forward_after: int


@dataclass(frozen=True)
class BatchTerms:
    """Peak = constant + per_sample x batch, through the analysed batches, and the largest
    batch whose analysed peak fits the budget (None without a budget)."""

    batch: int
    constant: int
    per_sample: int
    budget: int | None = None
    largest_fitting: int | None = None
    peak_at_largest: int | None = None


@dataclass(frozen=True)
class ChangeResult:
    """One change: what it touched and, when it applies, the analysis of the changed step."""

    name: str
    title: str
    kind: str
    """"memory", "flops" or "both": what the change is meant to save."""
    preserves_function: bool
    """False: the model computes something else (accuracy must be re-validated)."""
    applies: bool
    reason: str = ""
    """Not applicable: why; failed: the error, naming the change and the module."""
    failed: bool = False
    """The change applied but the changed model could not be analysed."""
    modules: tuple[str, ...] = ()
    measured: Measured | None = None
    delta: Delta | None = None
    article_claim: ArticleClaim | None = None
    note: str = ""
    module_changes: tuple[ModuleChange, ...] = ()
    batch_terms: BatchTerms | None = None

    @property
    def measured_ok(self) -> bool:
        return self.measured is not None


@dataclass(frozen=True)
class FitResult:
    """The cheapest set of changes whose analysed peak fits the budget, or the closest."""

    budget: int
    fits: bool
    changes: tuple[str, ...]
    measured: Measured | None
    """The analysis of the combined change (None when no change saves anything)."""
    tried: tuple[tuple[tuple[str, ...], int], ...]
    """Each combination analysed, with its peak, in the order tried
    (`checkpoint-blocks[k/n]`: k of the n repeated blocks checkpointed)."""
    note: str = ""
    micro_batches: int | None = None
    """With grad-accumulation chosen: the micro-batches per optimizer step it keeps when
    fewer than its finest split suffice (None: the finest split, or not chosen)."""
    checkpointed: tuple[str, ...] = ()
    """With checkpoint-blocks chosen: the blocks checkpointed when fewer than all suffice
    (empty: all of them)."""
    kept_ops: tuple[str, ...] = ()
    """With checkpoint-blocks chosen and checkpointed selectively: the ATen ops whose
    outputs every block keeps (empty: whole blocks recomputed)."""


@dataclass(frozen=True)
class Advice:
    """Every change tried on a model and step, measured, ranked; and what fits a budget."""

    model: str
    mode: str
    convention: str
    budget: int | None
    budget_label: str | None
    baseline: Measured
    changes: tuple[ChangeResult, ...]
    """Measured changes first, largest peak saving first; then failed, then not applicable."""
    fit: FitResult | None = None
    warnings: tuple[str, ...] = ()
    accelerator: str | None = None
    """The accelerator every step was timed on (`gpu`), None when not timed."""
    layout: str | None = None
    """With `parallel`: the layout every step ran under, e.g. "fsdp=4"; every number is
    then one GPU's (the rank in `layout_rank`). None on one GPU."""
    layout_rank: int | None = None

    def change(self, name: str) -> ChangeResult:
        """The result of the change called `name`."""
        for result in self.changes:
            if result.name == name:
                return result
        raise KeyError(name)

    def __repr__(self) -> str:
        """A few readable lines: the model, the baseline, the largest saving and the fit."""
        from memflops.advisor import text

        lines = [f"<memflops Advice: {self.model}>", "  " + " · ".join(text.facts(self))]
        measured = text.measured(self)
        best = text.best(self)
        lines.append(f"  {len(measured)} change(s) analysed, "
                     f"{len(self.changes) - len(measured)} not applicable or failed")
        if best is not None and best.delta is not None:
            lines.append(f"  largest saving: {best.name}, {best.delta.peak_saved:.1%} of the "
                         f"peak ({text.signed_bytes(best.delta.peak)})")
        section = text.fit(self.fit, self.budget_label)
        if section is not None:
            lines.append(f"  {section.title}: {section.lines[0]}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The HTML advice (its chart included), as Jupyter shows it in a cell."""
        from memflops.advisor.html import advice_fragment

        return advice_fragment(self)

    def plot_savings(self) -> Any:
        """The savings chart as a matplotlib `Figure` (needs `memflops[plot]`)."""
        from memflops.advisor.plot import plot_savings

        return plot_savings(self)

    def to_dict(self) -> dict[str, Any]:
        """The advice as schema `memflops.advice/1` (JSON-ready)."""
        return {
            "schema": SCHEMA,
            "model": self.model,
            "mode": self.mode,
            "convention": self.convention,
            "budget": self.budget,
            "budget_label": self.budget_label,
            "accelerator": self.accelerator,
            "layout": self.layout,
            "layout_rank": self.layout_rank,
            "baseline": _measured(self.baseline),
            "changes": [_change(c) for c in self.changes],
            "fit": _fit(self.fit),
            "warnings": list(self.warnings),
        }


def _measured(m: Measured | None) -> dict[str, Any] | None:
    if m is None:
        return None
    return {
        "params": m.params,
        "flops_forward": m.flops_forward,
        "flops_step": m.flops_step,
        "flops_recompute": m.flops_recompute,
        "macs_forward": m.macs_forward,
        "peak": m.peak,
        "activations": m.activations,
        "time_step": m.time_step,
    }


def _change(c: ChangeResult) -> dict[str, Any]:
    measured = _measured(c.measured) or {}
    return {
        "name": c.name,
        "title": c.title,
        "kind": c.kind,
        "preserves_function": c.preserves_function,
        "applies": c.applies,
        "failed": c.failed,
        "reason": c.reason,
        "modules": list(c.modules),
        "params": measured.get("params"),
        "flops_forward": measured.get("flops_forward"),
        "flops_step": measured.get("flops_step"),
        "flops_recompute": measured.get("flops_recompute"),
        "macs_forward": measured.get("macs_forward"),
        "peak": measured.get("peak"),
        "activations": measured.get("activations"),
        "time_step": measured.get("time_step"),
        "delta": None if c.delta is None else dict(vars(c.delta)),
        "article_claim": None if c.article_claim is None else dict(vars(c.article_claim)),
        "note": c.note,
        "module_changes": [dict(vars(m)) for m in c.module_changes],
        "batch_terms": None if c.batch_terms is None else dict(vars(c.batch_terms)),
    }


def _fit(f: FitResult | None) -> dict[str, Any] | None:
    if f is None:
        return None
    measured = _measured(f.measured) or {}
    return {
        "budget": f.budget,
        "fits": f.fits,
        "changes": list(f.changes),
        "peak": measured.get("peak"),
        "time_step": measured.get("time_step"),
        "measured": _measured(f.measured),
        "tried": [{"changes": list(names), "peak": peak} for names, peak in f.tried],
        "checkpointed": list(f.checkpointed),
        "kept_ops": list(f.kept_ops),
        "micro_batches": f.micro_batches,
        "note": f.note,
    }
