"""`advise()`: every change of the registry applied to a copy of the model (or to the
step's options), analysed again by `memflops.analyze`, compared with the baseline; and,
with a budget, the cheapest combination that fits (`search.py`).

The target is resolved and its inputs built once; each change gets its own deep copy of
the resolved module (config-only changes share it: `analyze` never changes a model).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import torch
from torch import nn

from memflops import analyze_options as defaults
from memflops.advisor import all_changes  # noqa: F401  (registers every change)
from memflops.advisor.accumulation import NAME as ACCUMULATION
from memflops.advisor.accumulation import split_step, splits
from memflops.advisor.advice import (
    Advice,
    BatchTerms,
    ChangeResult,
    Delta,
    FitResult,
    Measured,
    ModuleChange,
)
from memflops.advisor.batch import batch_of
from memflops.advisor.changes import CHANGES, Applied, Change, NotApplicable, Step, select
from memflops.advisor.checkpoint import (
    checkpoint_block,
    checkpoint_block_selectively,
    fewest_blocks,
    repeated_blocks,
)
from memflops.advisor.search import Candidate, cheapest_fit
from memflops.advisor.selective import Kept, kept_ops_fit, op_items
from memflops.api import build_inputs
from memflops.conventions import Convention
from memflops.errors import AnalysisError, MemflopsError, UsageError
from memflops.frontends.resolve import resolve_model
from memflops.hardware.catalog import Accelerator, memory_of
from memflops.hardware.time_model import TimeConstants
from memflops.memory.fit import Fit, fit_line, largest_fitting
from memflops.memory.optimizers import OptimizerSpec
from memflops.memory.sweep import resized
from memflops.progress import Progress, counting
from memflops.report.model import Report
from memflops.request import AnalysisRequest

ADVICE_TASK = "advice"
BATCH_TASK = "largest batch"
BUDGET_TASK = "budget search"
"""The tasks `progress(task, done, total)` reports: each change's analysis (the baseline's
first), the batch search, the combinations the budget search analyses."""


def advise(
    model: nn.Module | str,
    inputs: Any = None,
    *,
    mode: Literal["inference", "train", "generate"] = defaults.MODE,
    convention: str | Convention = defaults.CONVENTION,
    dtype: str | torch.dtype | None = None,
    optimizer: OptimizerSpec | None = defaults.OPTIMIZER,
    autocast: str | torch.dtype | None = None,
    loss: Any = defaults.LOSS,
    targets: Any = None,
    batch_sweep: Sequence[int] | None = None,
    fit: str | int | None = None,
    fit_dimension: Literal["batch", "seq", "ranks"] = defaults.FIT_DIMENSION,
    fit_against: Literal["allocated", "reserved"] = defaults.FIT_AGAINST,
    allocator_conf: str | None = None,
    allocator_overhead: bool = False,
    batch: int | None = None,
    seq: int | None = None,
    prompt_len: int | None = None,
    new_tokens: int | None = None,
    cache_dtype: str | torch.dtype | None = None,
    name: str | None = None,
    gpu: str | Accelerator | None = None,
    time_constants: str | dict[str, object] | TimeConstants | None = None,
    parallel: str | None = None,
    tp_plan: str | dict[str, str] | None = None,
    grad_accumulation: int | None = None,
    attention: str | None = None,
    budget: str | int | None = None,
    only: Iterable[str] | None = None,
    skip: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> Advice:
    """Try every way to save memory or FLOPs on `model`, each analysed for real.

    Takes `memflops.analyze`'s arguments under the same names (they describe the
    baseline step; `batch_sweep` and `fit` are done on the baseline and reported with
    the batch change; with `gpu`, every step is timed and the budget search prefers the
    least added time; with `parallel`, every step is one GPU's of that layout).
    `budget` (bytes, "24GiB", or an accelerator such as "A100 80GB SXM") asks for the
    cheapest combination of changes whose analysed peak fits, and the largest batch that
    fits. `only` / `skip` restrict the changes by name
    (`memflops.advisor.changes.CHANGES`). `progress(task, done, total)` is called after
    each analysis (`memflops.progress`).
    Mode "generate" is not advised.
    """
    request = AnalysisRequest.from_arguments(
        mode=mode, convention=convention, dtype=dtype, optimizer=optimizer, autocast=autocast,
        loss=loss, targets=targets, batch_sweep=batch_sweep, fit=fit,
        fit_dimension=fit_dimension, allocator_overhead=allocator_overhead, batch=batch, seq=seq,
        prompt_len=prompt_len, new_tokens=new_tokens, cache_dtype=cache_dtype, name=name,
        fit_against=fit_against, allocator_conf=allocator_conf, gpu=gpu,
        time_constants=time_constants, parallel=parallel, tp_plan=tp_plan,
        grad_accumulation=grad_accumulation, attention=attention,
    )
    if request.mode == "generate":
        raise UsageError("advise: mode generate is not advised; use mode train or inference")
    changes = select(only, skip)
    capacity = parse_budget(budget) if budget is not None else None
    target = resolve_model(model, name, request.attention)
    specs = build_inputs(inputs, target, request)
    options = {
        "mode": mode, "convention": request.convention, "dtype": dtype, "optimizer": optimizer,
        "autocast": autocast, "loss": loss, "targets": targets,
        "allocator_conf": allocator_conf, "allocator_overhead": allocator_overhead,
        "name": target.label, "gpu": gpu, "time_constants": time_constants,
        "parallel": parallel, "tp_plan": tp_plan, "grad_accumulation": grad_accumulation,
    }
    base = Step(target.module, specs, options, capacity)
    total = len(changes) + 1
    base_report = analyze_step(base, batch_sweep=batch_sweep, fit=fit,
                               fit_dimension=fit_dimension, fit_against=fit_against)
    _tick(progress, ADVICE_TASK, 1, total)
    baseline = measure(base_report)
    results = []
    for i, chosen in enumerate(changes, 2):
        results.append(try_change(chosen, base, base_report, baseline))
        _tick(progress, ADVICE_TASK, i, total)
    results, notes = _with_batch_terms(results, base, base_report, capacity, progress)
    fitted = None
    if capacity is not None:
        fitted = _fit(capacity, base, base_report, baseline, results, progress)
    return Advice(
        model=target.label, mode=mode, convention=request.convention.value, budget=capacity,
        budget_label=None if budget is None else str(budget), baseline=baseline,
        changes=tuple(_ranked(results)), fit=fitted, warnings=(*target.warnings, *notes),
        accelerator=(base_report.timing.accelerator.name
                     if base_report.timing is not None else None),
        layout=base_report.parallel.strategy if base_report.parallel is not None else None,
        layout_rank=base_report.parallel.rank if base_report.parallel is not None else None,
    )


def parse_budget(budget: str | int) -> int:
    """Bytes from an int, a size ("3GiB", "80GB") or an accelerator of the catalog."""
    if isinstance(budget, int) and not isinstance(budget, bool):
        if budget <= 0:
            raise UsageError(f"budget: expected a positive byte count, got {budget}")
        return budget
    if not isinstance(budget, str):
        raise UsageError(f"budget: expected bytes, a size such as 24GiB or a GPU name, got "
                         f"{type(budget).__name__}")
    return memory_of(budget, "budget")


def analyze_step(step: Step, **extra: Any) -> Report:
    """`memflops.analyze` of a step (its module, inputs and options)."""
    return step.analyzed(**extra)


def measure(report: Report) -> Measured:
    """The numbers the advice compares, read from a report."""
    conv = report.convention
    costs = report.totals.costs
    return Measured(
        params=report.totals.params,
        flops_forward=costs.forward.under(conv),
        flops_step=costs.step.under(conv),
        flops_recompute=costs.recompute.under(conv),
        macs_forward=costs.forward.macs,
        peak=report.totals.memory.peak,
        activations=report.totals.memory.activations,
        time_step=time_step(report),
    )


def time_step(report: Report) -> float | None:
    """Seconds per step on the accelerator of the analysis (`gpu`), None without one."""
    return report.timing.estimate.step if report.timing is not None else None


class CopyError(AnalysisError):
    """The model cannot be deep-copied, so no change can be made to a copy of it."""


def copy_model(module: nn.Module) -> nn.Module:
    """A deep copy of the model for a change to rewrite; a model that cannot be copied
    stops the advice with one line."""
    try:
        return copy.deepcopy(module)
    except Exception as exc:
        raise CopyError(
            f"advise changes a copy of the model, and copy.deepcopy({type(module).__name__}) "
            f"raised {type(exc).__name__}: {_first_line(exc)}; keep unpicklable objects "
            f"(locks, open files, generators) out of the module's attributes"
        ) from exc


def applied_step(chosen: Change, base: Step) -> Applied:
    """`chosen` applied to its own copy of the model (or to the options only)."""
    module = copy_model(base.module) if chosen.copies_model else base.module
    return chosen.apply(Step(module, base.inputs, base.options, base.budget))


def try_change(chosen: Change, base: Step, base_report: Report, baseline: Measured) -> ChangeResult:
    """One change applied and analysed; not applicable or failed when it is."""
    result = ChangeResult(chosen.name, chosen.title, chosen.kind, chosen.preserves_function,
                          applies=True, article_claim=chosen.article_claim)
    try:
        applied = applied_step(chosen, base)
    except NotApplicable as exc:
        return _replace(result, applies=False, reason=str(exc))
    except CopyError:
        raise
    except Exception as exc:
        return _replace(result, failed=True, reason=f"{chosen.name}: rewriting the model raised "
                        f"{type(exc).__name__}: {_first_line(exc)}")
    try:
        report = analyze_step(applied.step)
    except Exception as exc:
        return _replace(result, failed=True, modules=applied.modules, note=applied.note,
                        reason=f"{chosen.name}: the changed model could not be analysed: "
                        f"{_first_line(exc)}")
    measured = measure(report)
    if applied.preserves_function is not None:
        result = _replace(result, preserves_function=applied.preserves_function)
    return _replace(
        result, modules=applied.modules, note=applied.note, measured=measured,
        delta=delta(baseline, measured),
        module_changes=_module_changes(applied.modules, base_report, report, chosen),
    )


def delta(baseline: Measured, measured: Measured) -> Delta:
    """`measured` minus `baseline`, and the fractions saved."""
    time = None
    if measured.time_step is not None and baseline.time_step is not None:
        time = measured.time_step - baseline.time_step
    return Delta(
        params=measured.params - baseline.params,
        flops_forward=measured.flops_forward - baseline.flops_forward,
        flops_step=measured.flops_step - baseline.flops_step,
        flops_recompute=measured.flops_recompute - baseline.flops_recompute,
        macs_forward=measured.macs_forward - baseline.macs_forward,
        peak=measured.peak - baseline.peak,
        activations=measured.activations - baseline.activations,
        time_step=time,
        peak_saved=_saved(baseline.peak, measured.peak),
        flops_step_saved=_saved(baseline.flops_step, measured.flops_step),
        macs_forward_saved=_saved(baseline.macs_forward, measured.macs_forward),
    )


def _saved(before: int, after: int) -> float:
    return (before - after) / before if before else 0.0


def _module_changes(paths: tuple[str, ...], before: Report, after: Report,
                    chosen: Change) -> tuple[ModuleChange, ...]:
    if chosen.kind == "memory":
        return ()
    rows_before, rows_after = before.by_module(), after.by_module()
    conv = before.convention
    return tuple(
        ModuleChange(path, rows_before[path].forward.under(conv),
                     rows_after[path].forward.under(conv), rows_before[path].forward.macs,
                     rows_after[path].forward.macs)
        for path in paths
        if path in rows_before and path in rows_after
    )


def _with_batch_terms(
    results: list[ChangeResult], base: Step, base_report: Report, capacity: int | None,
    progress: Progress | None,
) -> tuple[list[ChangeResult], tuple[str, ...]]:
    """The batch change with peak = constant + per_sample x batch (the baseline's sweep, or
    the line through the baseline and the halved batch) and the largest batch that fits
    (the baseline's fit, else a search under the budget); a warning when that search fails."""
    size = batch_of(base.inputs)
    out, notes = [], []
    for result in results:
        if result.name == "batch-halved" and result.measured is not None and size is not None:
            if base_report.sweep is not None:
                constant, per_sample = base_report.sweep.constant, base_report.sweep.per_item
            else:
                constant, per_sample = fit_line([(size // 2, result.measured.peak),
                                                 (size, base_report.totals.memory.peak)])
            fitted = base_report.fit if base_report.fit is not None else None
            if fitted is None and capacity is not None:
                known = {size: base_report.totals.memory.peak, size // 2: result.measured.peak}
                try:
                    fitted = largest_batch(base, capacity, known, progress)
                except MemflopsError as exc:
                    notes.append(f"the largest batch fitting the budget was not found: "
                                 f"{_first_line(exc)}")
            result = _replace(result, batch_terms=BatchTerms(
                size, constant, per_sample,
                budget=fitted.capacity if fitted is not None else capacity,
                largest_fitting=fitted.largest if fitted is not None else None,
                peak_at_largest=fitted.peak_at_largest if fitted is not None else None,
            ))
        out.append(result)
    return out, tuple(notes)


BATCH_SEARCH_LIMIT = 64
"""The batch search looks up to this many times the analysed batch: a peak that does not
grow with the batch (the optimizer's step dominates) would otherwise send it to huge
batches."""


def largest_batch(base: Step, capacity: int, known: dict[int, int],
                  progress: Progress | None = None) -> Fit:
    """The largest batch whose analysed peak fits `capacity` (`memory.fit.largest_fitting`),
    reusing the peaks already `known` by batch size."""
    size = batch_of(base.inputs) or 1

    def analysed(n: int) -> int:
        step = Step(base.module, resized(base.inputs, n, 0), base.options)
        return analyze_step(step).totals.memory.peak

    counted = counting(analysed, progress, BATCH_TASK, None)

    def peak_at(n: int) -> int:
        if n not in known:
            known[n] = counted(n)
        return known[n]

    return largest_fitting(peak_at, capacity, limit=BATCH_SEARCH_LIMIT * size)


def _fit(capacity: int, base: Step, base_report: Report, baseline: Measured,
         results: list[ChangeResult], progress: Progress | None) -> FitResult:
    measured = [r for r in results
                if r.measured is not None and r.delta is not None and CHANGES[r.name].searchable]
    timed = baseline.time_step is not None and all(
        r.delta is not None and r.delta.time_step is not None for r in measured)
    candidates = [
        Candidate(r.name, CHANGES[r.name].group, r.preserves_function,
                  CHANGES[r.name].architecture, r.delta.peak, _added(r.delta, timed),
                  r.measured)
        for r in measured
        if r.measured is not None and r.delta is not None
    ]

    def analyse(names: tuple[str, ...]) -> Measured | None:
        try:
            return measure(analyze_step(combined_step(names, base)))
        except Exception:  # each change was analysed alone; together they may not run
            return None

    fitted = cheapest_fit(baseline, capacity, candidates,
                          counting(analyse, progress, BUDGET_TASK, None))
    if fitted.fits and CHECKPOINT in fitted.changes:
        # two ways to recompute less than every block whole: fewer blocks, or every
        # block keeping some ops' outputs; the cheaper, both analysed, is the answer
        fewer = _fewer_blocks(fitted, base, base_report, progress)
        selective = _kept_ops(fitted, base, progress)
        if selective is None:
            return fewer
        tried = fewer.tried + selective.tried[len(fitted.tried):]
        best = selective if _recompute(selective) < _recompute(fewer) else fewer
        return dataclasses.replace(best, tried=tried)
    if fitted.fits and ACCUMULATION in fitted.changes:
        fitted = _fewer_micro_batches(fitted, base, progress)
    return fitted


def _recompute(fitted: FitResult) -> float:
    """What a fit's checkpointing costs: seconds per step when timed, else recomputed
    FLOPs."""
    measured = fitted.measured
    assert measured is not None
    if measured.time_step is not None:
        return measured.time_step
    return float(measured.flops_recompute)


def _kept_ops(fitted: FitResult, base: Step, progress: Progress | None) -> FitResult | None:
    """The fit with every repeated block checkpointed selectively, keeping the ops a
    knapsack picks (`selective.kept_ops_fit`); None when that does not fit."""
    blocks = repeated_blocks(base.module)
    others = tuple(name for name in fitted.changes if name != CHECKPOINT)
    if not blocks:
        return None
    try:
        plain = analyze_step(combined_step(others, base))
    except Exception:  # the combination ran with its checkpointing: keep that answer
        return None

    def analysed(kept: Kept) -> Measured | None:
        step = combined_step(others, base, copy=True)
        for path in blocks:
            checkpoint_block_selectively(step.module.get_submodule(path), kept[path])
        try:
            return measure(analyze_step(step))
        except Exception:
            return None

    return kept_ops_fit(fitted, op_items(plain, blocks), blocks,
                        counting(analysed, progress, BUDGET_TASK, None))


def _added(d: Delta, timed: bool) -> float:
    """What a change adds to the step: seconds when timed, else step FLOPs."""
    if timed and d.time_step is not None:
        return max(0.0, d.time_step)
    return float(max(0, d.flops_step))


CHECKPOINT = "checkpoint-blocks"


def _fewer_blocks(fitted: FitResult, base: Step, base_report: Report,
                  progress: Progress | None) -> FitResult:
    """The fit with only as many repeated blocks checkpointed as the budget needs: blocks
    ordered by the activations they keep per forward FLOP (the baseline's rows), the
    fewest found by analyses of the whole combination."""
    rows = base_report.by_module()
    conv = base_report.convention
    blocks = sorted(
        repeated_blocks(base.module),
        key=lambda p: -rows[p].activation_bytes / max(1, rows[p].forward.under(conv)),
    )
    others = tuple(name for name in fitted.changes if name != CHECKPOINT)
    tried = list(fitted.tried)
    found: dict[int, Measured] = {}

    def analysed(k: int) -> Measured | None:
        step = combined_step(others, base, copy=True)
        for path in blocks[:k]:
            checkpoint_block(step.module.get_submodule(path))
        try:
            return measure(analyze_step(step))
        except Exception:  # as many blocks as the search found fitting: keep them
            return None

    counted = counting(analysed, progress, BUDGET_TASK, None)

    def fits(k: int) -> bool:
        measured = counted(k)
        if measured is None:
            return False
        found[k] = measured
        tried.append(((*others, f"{CHECKPOINT}[{k}/{len(blocks)}]"), found[k].peak))
        return found[k].peak <= fitted.budget

    if len(blocks) < 2 or fitted.measured is None:
        return fitted
    k = fewest_blocks(len(blocks), fits)
    if k == len(blocks) or k not in found:
        return dataclasses.replace(fitted, tried=tuple(tried))
    return dataclasses.replace(
        fitted, measured=found[k], tried=tuple(tried), checkpointed=tuple(blocks[:k]),
        note=f"checkpointing {k} of the {len(blocks)} repeated blocks is enough",
    )


def _fewer_micro_batches(fitted: FitResult, base: Step,
                         progress: Progress | None) -> FitResult:
    """The fit with as few micro-batches as the budget needs: the splits of the batch
    (2, 4, 8, ...; `accumulation.splits`), the fewest found by analyses of the whole
    combination (a binary search: the peak does not grow as the micro-batch shrinks)."""
    parts = splits(base)
    others = tuple(name for name in fitted.changes if name != ACCUMULATION)
    tried = list(fitted.tried)
    found: dict[int, Measured] = {}

    def analysed(k: int) -> Measured | None:
        step = split_step(combined_step(others, base), parts[k - 1]).step
        try:
            return measure(analyze_step(step))
        except Exception:  # the finest split fits: keep it
            return None

    counted = counting(analysed, progress, BUDGET_TASK, None)

    def fits(k: int) -> bool:
        measured: Measured | None = counted(k)
        if measured is None:
            return False
        found[k] = measured
        tried.append(((*others, f"{ACCUMULATION}[{parts[k - 1]}]"), measured.peak))
        return measured.peak <= fitted.budget

    if len(parts) < 2 or fitted.measured is None:
        return fitted
    k = fewest_blocks(len(parts), fits)
    if k == len(parts) or k not in found:
        return dataclasses.replace(fitted, tried=tuple(tried))
    micro_batches = parts[k - 1] * (base.options.get("grad_accumulation") or 1)
    return dataclasses.replace(
        fitted, measured=found[k], tried=tuple(tried), micro_batches=micro_batches,
        note=f"{micro_batches} micro-batches per optimizer step are enough",
    )


def combined_step(names: Iterable[str], base: Step, *, copy: bool = False) -> Step:
    """Every change of `names` applied, in registry order, to one copy of the model (made
    when a change rewrites the model, or when `copy` asks for it)."""
    wanted = set(names)
    chosen = [c for name, c in CHANGES.items() if name in wanted]
    step = base
    if copy or any(c.copies_model for c in chosen):
        step = Step(copy_model(base.module), base.inputs, base.options, base.budget)
    for c in chosen:
        step = c.apply(step).step
    return step


def _ranked(results: list[ChangeResult]) -> list[ChangeResult]:
    """Measured first (largest peak saving, then FLOPs saving), then failed, then the not
    applicable, each group in registry order."""
    measured = [r for r in results if r.measured is not None and r.delta is not None]
    measured.sort(key=lambda r: (r.delta.peak, r.delta.flops_step))  # type: ignore[union-attr]
    failed = [r for r in results if r.failed]
    skipped = [r for r in results if not r.applies]
    return measured + failed + skipped


def _replace(result: ChangeResult, **changed: Any) -> ChangeResult:
    return dataclasses.replace(result, **changed)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _tick(progress: Progress | None, task: str, done: int, total: int | None) -> None:
    if progress is not None:
        progress(task, done, total)
