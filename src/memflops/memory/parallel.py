"""A distributed step's memory on one rank, by the finer kinds of parallel training.

The step's timeline (`memory.timeline`) keeps the closed `Kind` set: there a
rank's gathered parameters and communication buffers are temporaries. Here
the same events are replayed with those told apart, and parameters named
for what a rank holds of them:

- `sharded_params`: this rank's shards (the step's `params`);
- `unsharded_params`: parameters gathered for a unit's forward or backward;
- `all_gather_buffers`, `reduce_scatter_buffers`: the flat buffers the
  collectives read and write;
- `grads`, `optimizer`, `activations`, `buffers`, `inputs`, `kv_cache` and
  `temporaries` as in `Kind`.

The bytes of each at the rank's peak sum to that peak.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memflops.memory.kinds import Kind
from memflops.memory.timeline import classify

if TYPE_CHECKING:
    from memflops.capture.step import Capture

PARALLEL_KINDS = (
    "sharded_params", "unsharded_params", "all_gather_buffers", "reduce_scatter_buffers",
    "grads", "optimizer", "activations", "buffers", "inputs", "kv_cache", "temporaries",
)


def kinds_at_peak(cap: Capture) -> tuple[tuple[str, int], ...]:
    """Bytes of each of `PARALLEL_KINDS` live at the step's peak (the first moment the
    most bytes are live, as `timeline.replay` finds it)."""
    storages, parallel = cap.storages, cap.parallel
    assert storages is not None and parallel is not None
    base = classify(storages, cap.grads, cap.optimizer_state, transient=cap.transient)
    kinds: dict[int, str] = {}
    for serial, kind in base.items():
        if kind is Kind.PARAMS:
            kinds[serial] = "sharded_params"
        elif kind is not Kind.TEMPORARIES:
            kinds[serial] = kind.value
        elif serial in parallel.unsharded:
            kinds[serial] = "unsharded_params"
        elif serial in parallel.gather_buffers:
            kinds[serial] = "all_gather_buffers"
        elif serial in parallel.reduce_buffers:
            kinds[serial] = "reduce_scatter_buffers"
        else:
            kinds[serial] = "temporaries"
    live = dict.fromkeys(PARALLEL_KINDS, 0)
    total, peak, at_peak = 0, -1, dict(live)
    for event in storages.events:
        delta = event.nbytes if event.alloc else -event.nbytes
        live[kinds[event.key]] += delta
        total += delta
        if total > peak:
            peak, at_peak = total, dict(live)
    return tuple((k, at_peak[k]) for k in PARALLEL_KINDS)
