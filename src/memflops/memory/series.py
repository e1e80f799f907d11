"""The memory timeline as a series: bytes live by kind over the op sequence of a step.

`memory.timeline.replay` finds the peak and what is live then; this module
replays the same allocation and free events once more to keep the curve
itself, for charts. Its size is bounded whatever the model: the ops are cut
into at most `MAX_POINTS` equal spans and each span keeps the moment with
the most bytes live in it (an upper envelope), so the step's exact peak is
always one of the points.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from memflops.capture.records import OpRecord
from memflops.memory.fit import ALLOCATION_GRANULARITY, CUDA_CONTEXT_BYTES
from memflops.memory.kinds import Kind
from memflops.memory.timeline import classify
from memflops.report.model import MemoryTimeline, PhaseSpan, TimelinePoint

if TYPE_CHECKING:
    from memflops.capture.step import Capture
    from memflops.memory.storage import StorageTracker

MAX_POINTS = 400
"""Spans of ops the series is cut into at most (one point each, plus the baseline)."""

BEFORE = -1
"""The op index of events before the step (parameters, inputs, optimizer state)."""


def capture_series(
    cap: Capture, *, allocator_overhead: bool = False, max_points: int = MAX_POINTS
) -> MemoryTimeline | None:
    """The series of one captured step, as `timeline.replay_capture` counts its bytes."""
    assert cap.storages is not None
    return memory_series(
        cap.storages,
        cap.records,
        cap.grads,
        cap.optimizer_state,
        granularity=ALLOCATION_GRANULARITY if allocator_overhead else 1,
        overhead=CUDA_CONTEXT_BYTES if allocator_overhead else 0,
        max_points=max_points,
        transient=cap.transient,
    )


def memory_series(
    storages: StorageTracker,
    records: Sequence[OpRecord],
    grads: frozenset[int],
    state: frozenset[int],
    *,
    kv_cache: frozenset[int] = frozenset(),
    granularity: int = 1,
    overhead: int = 0,
    max_points: int = MAX_POINTS,
    transient: frozenset[int] = frozenset(),
) -> MemoryTimeline | None:
    """Bytes live per kind, the most in each span of ops; None when nothing was allocated.

    Every allocation is rounded up to `granularity` (as `timeline.replay`);
    `overhead` is stated beside the points, in no kind (the CUDA context).
    """
    if not storages.events:
        return None
    kinds = classify(storages, grads, state, kv_cache, transient)
    slot = {kind: i for i, kind in enumerate(Kind)}
    ops = len(records)
    live = [0] * len(slot)
    total = 0
    # span -> (total, op index, bytes per kind) at the most bytes live in the span
    kept: dict[int, tuple[int, int, tuple[int, ...]]] = {}
    for event in storages.events:
        nbytes = -(-event.nbytes // granularity) * granularity
        delta = nbytes if event.alloc else -nbytes
        live[slot[kinds[event.key]]] += delta
        total += delta
        span = _span(event.op_index, ops, max_points)
        best = kept.get(span)
        if best is None or total > best[0]:
            kept[span] = (total, event.op_index, tuple(live))
    points = tuple(TimelinePoint(op, by_kind) for _, op, by_kind in
                   (kept[span] for span in sorted(kept)))
    totals = [sum(p.bytes) for p in points]
    return MemoryTimeline(
        kinds=tuple(kind.value for kind in Kind),
        ops=ops,
        points=points,
        peak_point=totals.index(max(totals)),
        phases=phase_spans(records),
        overhead=overhead,
    )


def _span(op: int, ops: int, max_points: int) -> int:
    """The span of op index `op` (`BEFORE` for events before the step)."""
    if op < 0:
        return BEFORE
    if ops <= max_points:
        return op
    return min(op, ops - 1) * max_points // ops


def phase_spans(records: Sequence[OpRecord]) -> tuple[PhaseSpan, ...]:
    """Runs of consecutive records of one phase, in order."""
    spans: list[PhaseSpan] = []
    for i, rec in enumerate(records):
        if spans and spans[-1].phase == rec.phase.value:
            spans[-1] = PhaseSpan(rec.phase.value, spans[-1].first, i)
        else:
            spans.append(PhaseSpan(rec.phase.value, i, i))
    return tuple(spans)
