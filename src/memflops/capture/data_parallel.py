"""Data parallel (`ddp=N`) and ZeRO-1 (`ddp=N,zero=1`): modelled on the one-GPU capture.

PyTorch's `DistributedDataParallel` cannot run on fake tensors: its C++
reducer allocates and copies into real bucket storage. So the step is
captured on one GPU, as each data-parallel rank runs it whole on its own
batch, and `DataParallelModel.finish` applies the layout's formulas to the
captured storages, so that every analysis after it (timeline, peak,
reserved memory, fit) sees them:

- **DDP's gradient buckets**: the reducer keeps flat buckets as large as
  all the trainable gradients for the life of the job and copies each
  gradient into its bucket for the all-reduce (PyTorch DDP notes,
  "Internal Design", and `torch/nn/parallel/distributed.py`
  `gradient_as_bucket_view`): one more copy of the gradients, alive the
  whole step. With `gradient_as_bucket_view=on` the gradients are views of
  the buckets: no copy, but the gradients live the whole step (the
  captured gradient storages are replaced by the buckets).
- **ZeRO-1** (Rajbhandari et al. 2020, "ZeRO: Memory Optimizations Toward
  Training Trillion Parameter Models", section 5.1, P_os): each rank keeps
  and updates 1/N of the optimizer state; every optimizer-state storage
  of the capture is ceil(bytes / N), as DeepSpeed splits its flat state
  evenly. The optimizer step's own temporaries are left whole (an upper
  bound).
- **Collectives** per step: DDP all-reduces each bucket (`ddp_buckets`:
  the parameters in reverse order, a bucket closed once it holds its cap,
  1 MiB for the first, `bucket_cap_mb` = 25 MiB after, DDP's defaults);
  ZeRO-1 adds an all-gather of the updated parameters (each rank updated
  its 1/N), so its volume per rank is the all-reduce's plus (N - 1) / N of
  the parameters.

The capture is then rank 0's (every rank's: data parallel is symmetric up to
the even split).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from memflops.capture.parallel import RANK, Collective, ParallelCapture
from memflops.capture.recorder import OpRecorder
from memflops.capture.session import CaptureSession
from memflops.capture.tracker import ModuleTracker
from memflops.memory.kinds import Kind
from memflops.memory.storage import Event, StorageInfo, StorageTracker
from memflops.parallel_options import ParallelSpec

FIRST_BUCKET_BYTES = 1024 * 1024
"""DDP's first bucket (`torch.distributed._DEFAULT_FIRST_BUCKET_BYTES`, 1 MiB)."""
BUCKET_BYTES = 25 * 1024 * 1024
"""DDP's `bucket_cap_mb` default, 25 MiB."""

NOTES = {
    "ddp": "modelled: DDP's gradient buckets (one more copy of the gradients, alive the "
           "whole step; none with gradient_as_bucket_view) and an all-reduce of each bucket "
           "(PyTorch DDP design notes)",
    "bucket_view": "modelled: gradient_as_bucket_view: the gradients are views of DDP's "
                   "buckets, alive the whole step",
    "zero1": "modelled: ZeRO-1 (Rajbhandari et al. 2020, section 5.1): each rank keeps 1/N of "
             "the optimizer state, ceil(bytes / N) per state tensor; the updated parameters "
             "all-gathered after the step",
}


def ddp_buckets(sizes: list[int]) -> list[int]:
    """The bytes of each DDP bucket for trainable parameters of `sizes` bytes in model
    order: reverse order (backward produces the last gradients first), a bucket closed once
    it holds `FIRST_BUCKET_BYTES` (the first) or `BUCKET_BYTES`."""
    buckets: list[int] = []
    current = 0
    for size in reversed(sizes):
        current += size
        if current >= (FIRST_BUCKET_BYTES if not buckets else BUCKET_BYTES):
            buckets.append(current)
            current = 0
    if current:
        buckets.append(current)
    return buckets


class DataParallelModel:
    """A `capture.session.StepWrapper` that runs the model unwrapped and models DDP or ZeRO-1
    on the capture (see the module docstring)."""

    def __init__(self, spec: ParallelSpec) -> None:
        self.spec = spec
        self._sizes: list[int] = []
        self._param_bytes = 0

    @contextmanager
    def wrapped(self, session: CaptureSession) -> Iterator[nn.Module]:
        unique = {id(p): p for p in session.model.parameters()}.values()
        self._sizes = [p.numel() * p.element_size() for p in unique if p.requires_grad]
        self._param_bytes = sum(p.numel() * p.element_size() for p in unique)
        yield session.model

    def recorder(self, tracker: ModuleTracker, storages: StorageTracker | None) -> OpRecorder:
        return OpRecorder(tracker, storages)  # type: ignore[no-untyped-call]

    def local(self, t: torch.Tensor) -> torch.Tensor:
        return t

    def result(self, session: CaptureSession) -> ParallelCapture:
        n = self.spec.world_size
        calls = [Collective("all_reduce", b, "ddp", n, "backward", "")
                 for b in ddp_buckets(self._sizes)]
        if self.spec.zero == 1:
            calls.append(Collective("all_gather", self._param_bytes, "ddp", n, "optimizer", ""))
        return ParallelCapture(
            spec=self.spec, rank=RANK, units=(), collectives=tuple(calls),
            unsharded=frozenset(), gather_buffers=frozenset(), reduce_buffers=frozenset(),
        )

    def finish(self, cap: Any) -> Any:
        """`cap` with its storages as the layout leaves them (see the module docstring)."""
        storages = cap.storages
        if storages is None or not self._sizes:
            return cap
        n, zero = self.spec.world_size, self.spec.zero
        split = cap.optimizer_state if zero == 1 else frozenset()
        modelled, grads = with_buckets(storages, cap.grads, sum(self._sizes),
                                       self.spec.gradient_as_bucket_view, split, n)
        return replace(cap, storages=modelled, grads=grads)


def with_buckets(
    storages: StorageTracker, grads: frozenset[int] | set[int], total: int, bucket_view: bool,
    split: frozenset[int] = frozenset(), ranks: int = 1,
) -> tuple[StorageTracker, frozenset[int]]:
    """`storages` with DDP's gradient buckets (`total` bytes, alive the whole step) added
    before the step, and the gradients `grads` dropped when they are views of the buckets
    (`bucket_view`); the storages of `split` (ZeRO-1's optimizer state) ceil(bytes / ranks).
    The storages and the gradients' serials after it."""
    dropped = frozenset(grads) if bucket_view else frozenset()
    info = {k: replace(v, nbytes=math.ceil(v.nbytes / ranks)) if k in split else v
            for k, v in storages.info.items() if k not in dropped}
    events = [replace(e, nbytes=info[e.key].nbytes) for e in storages.events
              if e.key not in dropped]
    bucket = max(info, default=-1) + 1
    info[bucket] = StorageInfo(total, -1, "before", "")
    events.insert(0, Event(bucket, total, True, -1))
    kept = len([e for e in storages.events[: storages.step_end] if e.key not in dropped])
    modelled = StorageTracker(
        events=events, info=info, saved=set(storages.saved) - dropped,
        preexisting={**storages.preexisting, bucket: Kind.GRADS},
        op_count=storages.op_count,
        step_end=None if storages.step_end is None else kept + 1,
    )
    return modelled, (frozenset(grads) - dropped) | {bucket}


def modelled_notes(spec: ParallelSpec) -> tuple[str, ...]:
    """The formulas a modelled layout used, each with its source (`NOTES`)."""
    found = [NOTES["bucket_view"] if spec.gradient_as_bucket_view else NOTES["ddp"]]
    if spec.zero == 1:
        found.append(NOTES["zero1"])
    return tuple(found)
