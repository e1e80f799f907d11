"""One place builds a `Report`, for every analysis: a captured step (`memflops.analyze`),
generation (`memflops.generation`) and a layer list (`memflops.layerspec`).

Each analysis measures in its own way and hands over what it found: the
parameter counts, the memory totals, the module rows, its priced op records
and the ops it could not price. The assembler adds what every report derives
the same way: the costs per phase (from the records unless given), the
totals, and the warnings in one order: the analysis' notes first, then the
one warning about uncounted ops, then the one about integer multiply-accumulates
(which no FLOP count includes), then the values answered by assumption.

Torch-free, like the layer-list pipeline that uses it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from memflops import aggregate
from memflops.capture.records import OpRecord
from memflops.conventions import Convention
from memflops.memory.fit import Fit, Sweep
from memflops.report.model import (
    Checkpointing,
    Generation,
    GradAccumulation,
    MemoryDetail,
    MemoryTimeline,
    MemoryTotals,
    ModuleRow,
    Parallel,
    PhaseCosts,
    Report,
    Timing,
    Totals,
    UncountedOp,
)
from memflops.tensor_spec import TensorSpec


def assemble_report(
    *,
    model: str,
    mode: str,
    convention: Convention,
    precision: str,
    inputs: Iterable[tuple[str, TensorSpec]],
    params: int,
    trainable_params: int,
    buffers: int,
    memory: MemoryTotals,
    modules: tuple[ModuleRow, ...],
    records: Sequence[OpRecord],
    uncounted: tuple[UncountedOp, ...],
    notes: Iterable[str] = (),
    assumptions: Iterable[str] = (),
    costs: PhaseCosts | None = None,
    active_params: int | None = None,
    shared_params: tuple[tuple[str, str], ...] = (),
    optimizer: str | None = None,
    memory_detail: MemoryDetail | None = None,
    sweep: Sweep | None = None,
    fit: Fit | None = None,
    generation: Generation | None = None,
    checkpointing: Checkpointing | None = None,
    memory_timeline: MemoryTimeline | None = None,
    priced: Sequence[OpRecord] | None = None,
    timing: Timing | None = None,
    bytes_priced: bool = True,
    parallel: Parallel | None = None,
    grad_accumulation: GradAccumulation | None = None,
) -> Report:
    """The report of one analysis.

    `records` are the ops the report keeps (`Report.by_operator`); `costs`
    defaults to their sums per phase. `notes` and `assumptions` are the
    warnings before and after those of uncounted ops and integer MACs, both
    read from `priced` (default: `records`), the calls `uncounted` came from.
    """
    return Report(
        model=model,
        mode=mode,
        convention=convention,
        precision=precision,
        inputs=tuple(inputs),
        totals=Totals(
            params=params,
            trainable_params=trainable_params,
            buffers=buffers,
            active_params=active_params,
            costs=aggregate.phase_costs(records) if costs is None else costs,
            memory=memory,
        ),
        modules=modules,
        uncounted_ops=uncounted,
        warnings=(
            *notes,
            *aggregate.uncounted_warnings(uncounted),
            *aggregate.integer_warnings(records if priced is None else priced),
            *assumptions,
            *(timing.estimate.warnings if timing is not None else ()),
        ),
        shared_params=shared_params,
        optimizer=optimizer,
        memory_detail=memory_detail,
        sweep=sweep,
        fit=fit,
        generation=generation,
        checkpointing=checkpointing,
        memory_timeline=memory_timeline,
        records=tuple(records),
        timing=timing,
        bytes_priced=bytes_priced,
        parallel=parallel,
        grad_accumulation=grad_accumulation,
    )
