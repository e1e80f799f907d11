"""Replay a capture's allocations and frees: the true peak and what is live then."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from memflops.capture.records import MicroBatches, OpRecord
from memflops.memory.fit import ALLOCATION_GRANULARITY, CUDA_CONTEXT_BYTES
from memflops.memory.kinds import Kind
from memflops.memory.storage import StorageTracker

if TYPE_CHECKING:
    from memflops.capture.step import Capture


@dataclass(frozen=True)
class Peak:
    """The moment the most bytes are live, and what they are."""

    bytes: int
    phase: str
    op: str
    module: str
    by_kind: tuple[tuple[Kind, int], ...]
    micro_batch: int | None = None
    """Gradient accumulation: the captured micro-batch the peak falls in (1, or 2 for
    each of 2..M); None without accumulation, before the step or in the optimizer."""


@dataclass(frozen=True)
class Timeline:
    """Bytes per kind and the peak of one step (all exact integers)."""

    kind_bytes: tuple[tuple[Kind, int], ...]
    """Bytes of the storages of each kind (for temporaries: the most live at once)."""
    peak: Peak
    baseline: int
    """Bytes live before the step starts (parameters, buffers, inputs, optimizer state)."""
    saved_by_module: tuple[tuple[str, int], ...]
    """Bytes saved for backward, by the module that created them, largest first (under
    gradient accumulation, and in the activations' bytes: one micro-batch's, the second's)."""

    def bytes_of(self, kind: Kind) -> int:
        return dict(self.kind_bytes).get(kind, 0)


def classify(
    storages: StorageTracker,
    grads: frozenset[int],
    state: frozenset[int],
    kv_cache: frozenset[int] = frozenset(),
    transient: frozenset[int] = frozenset(),
) -> dict[int, Kind]:
    """One kind per storage serial (see `Kind` for the precedence). `transient` storages
    are temporaries even when autograd saved them (a distributed step's gathered
    parameters and communication buffers, `capture.parallel`)."""
    kinds: dict[int, Kind] = {}
    for serial in storages.info:
        preexisting = storages.preexisting.get(serial)
        if preexisting is not None:
            kinds[serial] = preexisting
        elif serial in kv_cache:
            kinds[serial] = Kind.KV_CACHE
        elif serial in state:
            kinds[serial] = Kind.OPTIMIZER
        elif serial in grads:
            kinds[serial] = Kind.GRADS
        elif serial in transient:
            kinds[serial] = Kind.TEMPORARIES
        elif serial in storages.saved:
            kinds[serial] = Kind.ACTIVATIONS
        else:
            kinds[serial] = Kind.TEMPORARIES
    return kinds


def replay(
    storages: StorageTracker,
    records: Sequence[OpRecord],
    grads: frozenset[int],
    state: frozenset[int],
    *,
    kv_cache: frozenset[int] = frozenset(),
    granularity: int = 1,
    transient: frozenset[int] = frozenset(),
    micro_batches: MicroBatches | None = None,
) -> Timeline:
    """Replay the events; `granularity` rounds every allocation up (allocator blocks).
    With `micro_batches` (gradient accumulation), the activations are those one
    micro-batch saves: the storages saved that the second captured one created."""
    kinds = classify(storages, grads, state, kv_cache, transient)

    def size(nbytes: int) -> int:
        return -(-nbytes // granularity) * granularity
    live: dict[Kind, int] = defaultdict(int)
    total = 0
    peak_total = -1
    peak_at = -1
    peak_kinds: dict[Kind, int] = {}
    baseline = 0
    max_temporaries = 0
    for event in storages.events:
        kind = kinds[event.key]
        delta = size(event.nbytes) if event.alloc else -size(event.nbytes)
        live[kind] += delta
        total += delta
        if event.op_index < 0:
            baseline = total
        max_temporaries = max(max_temporaries, live[Kind.TEMPORARIES])
        if total > peak_total:
            peak_total, peak_at, peak_kinds = total, event.op_index, dict(live)
    if 0 <= peak_at < len(records):
        rec = records[peak_at]
        op, module, phase = rec.op, rec.module, rec.phase.value
    else:
        op, module, phase = "", "", "before"
    kind_bytes: dict[Kind, int] = defaultdict(int)
    saved_by_module: dict[str, int] = defaultdict(int)
    for serial, info in storages.info.items():
        kind = kinds[serial]
        if kind is Kind.ACTIVATIONS and micro_batches is not None \
                and micro_batches.of(info.op_index) != 2:
            continue
        if kind is not Kind.TEMPORARIES:
            kind_bytes[kind] += size(info.nbytes)
        if kind is Kind.ACTIVATIONS:
            saved_by_module[info.module] += size(info.nbytes)
    kind_bytes[Kind.TEMPORARIES] = max_temporaries
    return Timeline(
        kind_bytes=tuple((k, kind_bytes.get(k, 0)) for k in Kind),
        peak=Peak(
            bytes=max(peak_total, 0),
            phase=phase,
            op=op,
            module=module,
            by_kind=tuple((k, peak_kinds.get(k, 0)) for k in Kind),
            micro_batch=micro_batches.of(peak_at) if micro_batches is not None else None,
        ),
        baseline=baseline,
        saved_by_module=tuple(sorted(saved_by_module.items(), key=lambda kv: (-kv[1], kv[0]))),
    )


def replay_capture(cap: Capture, *, allocator_overhead: bool = False) -> Timeline:
    """The timeline of one captured step.

    With `allocator_overhead`, as a GPU process sees it: every allocation
    rounded up to the caching allocator's block and a CUDA context added to
    the peak (`memory.fit` states both constants and their sources).
    """
    assert cap.storages is not None
    timeline = replay(
        cap.storages,
        cap.records,
        cap.grads,
        cap.optimizer_state,
        granularity=ALLOCATION_GRANULARITY if allocator_overhead else 1,
        transient=cap.transient,
        micro_batches=cap.micro_batches,
    )
    if allocator_overhead:
        peak = timeline.peak
        timeline = replace(timeline, peak=replace(peak, bytes=peak.bytes + CUDA_CONTEXT_BYTES))
    return timeline
