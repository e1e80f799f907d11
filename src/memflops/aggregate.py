"""From op records to per-module and per-phase totals.

Torch-free at run time (torch types are annotations only), so the layer-list
spec frontend shares these reductions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from memflops.capture.records import OpRecord, Phase
from memflops.flops.registry import OpCost
from memflops.memory.kinds import Kind
from memflops.memory.reserved import ReservedMemory
from memflops.report.model import MemoryDetail, ModuleRow, PhaseCosts, UncountedOp

if TYPE_CHECKING:
    from torch import nn

    from memflops.capture.step import Capture
    from memflops.memory.timeline import Timeline
    from memflops.params import ParamCounts

MAX_LISTED_MODULES = 8


def ancestors(path: str) -> list[str]:
    """`a.b.c` -> [`a.b.c`, `a.b`, `a`, ``] (the root is "")."""
    if not path:
        return [""]
    parts = path.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)] + [""]


def phase_costs(records: Iterable[OpRecord]) -> PhaseCosts:
    totals = {phase: OpCost() for phase in Phase}
    recompute = OpCost()
    for rec in records:
        cost = rec.step_cost
        if cost is not None:
            totals[rec.phase] += cost
            if rec.recompute:
                recompute += cost
    return PhaseCosts(
        totals[Phase.FORWARD], totals[Phase.LOSS], totals[Phase.BACKWARD], totals[Phase.OPTIMIZER],
        recompute=recompute,
    )


def micro_batch_costs(cap: Capture) -> tuple[PhaseCosts, PhaseCosts] | None:
    """Gradient accumulation: the costs of micro-batch 1 and of each later micro-batch
    (one run of the second captured one's records, `repeat` aside); None without."""
    split = cap.micro_batches
    if split is None:
        return None
    first = cap.records[:split.second]
    later = [replace(rec, repeat=1) for rec in cap.records[split.second:split.end]]
    return phase_costs(first), phase_costs(later)


def module_rows(
    model: nn.Module, cap: Capture, params: ParamCounts, timeline: Timeline | None = None
) -> tuple[ModuleRow, ...]:
    """One row per module, each counting itself and its submodules."""
    inclusive: dict[tuple[str, Phase], OpCost] = defaultdict(OpCost)
    recomputed: dict[str, OpCost] = defaultdict(OpCost)
    chains: dict[str, list[str]] = {}
    saved: dict[str, int] = defaultdict(int)
    for module_path, nbytes in timeline.saved_by_module if timeline else ():
        for path in ancestors(module_path):
            saved[path] += nbytes
    for rec in cap.records:
        cost = rec.step_cost
        if cost is None or rec.phase is Phase.LOSS:
            continue
        chain = chains.get(rec.module)
        if chain is None:
            chain = chains[rec.module] = ancestors(rec.module)
        for path in chain:
            inclusive[path, rec.phase] += cost
            if rec.recompute:
                recomputed[path] += cost
    rows = []
    # named_modules() at the end of the step: a model may swap a submodule in as it runs
    # (BigBird picks full attention for short sequences, reusing the replaced module's
    # layers). A module the parameter count, taken before the step, has not seen shows 0.
    for path, module in cap.module_tree or tuple(model.named_modules()):
        rows.append(
            ModuleRow(
                path=path,
                type=type(module).__name__,
                depth=0 if not path else path.count(".") + 1,
                params=params.per_module.get(path, 0),
                forward=inclusive.get((path, Phase.FORWARD), OpCost()),
                backward=inclusive.get((path, Phase.BACKWARD), OpCost()),
                recompute=recomputed.get(path, OpCost()),
                output_shape=tuple(cap.output_shapes.get(path, ())),
                calls=cap.calls.get(path, 0),
                activation_bytes=saved.get(path, 0),
            )
        )
    return tuple(rows)


def uncounted(
    records: Iterable[OpRecord], rule_failures: Mapping[str, str]
) -> tuple[UncountedOp, ...]:
    """Ops with no rule (or whose rule failed), most calls first, with the modules that ran them."""
    counts: dict[str, int] = defaultdict(int)
    modules: dict[str, set[str]] = defaultdict(set)
    for rec in records:
        if rec.cost is None:
            counts[rec.op] += rec.repeat
            modules[rec.op].add(rec.module or "<root>")
    result = []
    for op in sorted(counts, key=lambda o: (-counts[o], o)):
        failure = rule_failures.get(op)
        listed = tuple(sorted(modules[op])[:MAX_LISTED_MODULES])
        result.append(
            UncountedOp(op, counts[op], listed, f"rule failed: {failure}" if failure else "no rule")
        )
    return tuple(result)


def uncounted_warnings(uncounted: tuple[UncountedOp, ...]) -> list[str]:
    """The report's one warning about uncounted ops (none when every op was counted)."""
    if not uncounted:
        return []
    total = sum(u.count for u in uncounted)
    return [
        f"{total} op call(s) of {len(uncounted)} kind(s) have no FLOP rule and are not "
        f"counted: {', '.join(u.op for u in uncounted)}"
    ]


def integer_warnings(records: Iterable[OpRecord]) -> list[str]:
    """The report's one warning about multiply-accumulates on integer tensors (none without any).

    They are no FLOPs (`registry.integer_cost`), but an int8 matrix product is real work
    that users of quantised models count, so it is stated, apart from every total; index
    math and counters do none and are not mentioned.
    """
    macs: dict[str, int] = defaultdict(int)
    calls: dict[str, int] = defaultdict(int)
    for rec in records:
        if rec.cost is not None and rec.cost.integer_macs:
            macs[rec.op] += rec.cost.integer_macs * rec.repeat
            calls[rec.op] += rec.repeat
    if not macs:
        return []
    listed = ", ".join(f"{op} {macs[op]} in {calls[op]} call(s)"
                       for op in sorted(macs, key=lambda o: (-macs[o], o)))
    return [
        f"{sum(macs.values())} multiply-accumulate(s) on integer tensors ({listed}) are in no "
        "FLOP or MAC total: FLOPs and MACs count floating-point work only"
    ]


def memory_detail(
    timeline: Timeline,
    feature_map_bytes: int,
    peak_by_kind: tuple[tuple[Kind, int], ...] | None = None,
    allocator: ReservedMemory | None = None,
) -> MemoryDetail:
    """The report's account of the peak; `peak_by_kind` replaces the timeline's own;
    `allocator` is the caching allocator's view of the step."""
    by_kind = timeline.peak.by_kind if peak_by_kind is None else peak_by_kind
    return MemoryDetail(
        peak_phase=timeline.peak.phase,
        peak_op=timeline.peak.op,
        peak_module=timeline.peak.module,
        peak_by_kind=tuple((k.value, b) for k, b in by_kind),
        baseline=timeline.baseline,
        temporaries=timeline.bytes_of(Kind.TEMPORARIES),
        inputs=timeline.bytes_of(Kind.INPUTS),
        feature_maps=feature_map_bytes,
        top_saved_modules=timeline.saved_by_module[:10],
        allocator=allocator,
    )
