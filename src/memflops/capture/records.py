"""What a capture produces: one `OpRecord` per dispatched ATen op."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from memflops.flops.registry import OpCost


class Phase(str, Enum):
    """When an op ran within the analysed step."""

    FORWARD = "forward"
    LOSS = "loss"
    BACKWARD = "backward"
    OPTIMIZER = "optimizer"
    DECODE = "decode"


@dataclass(frozen=True)
class OpRecord:
    """One ATen op call.

    `cost` is None when no rule covers the op (it is then reported as
    uncounted, never as zero). `module` is the dotted path of the innermost
    module that ran it ("" for the root). `recompute` marks a forward op run
    again during backward (activation checkpointing): backward ops run
    without grad mode, a recomputed forward with it. `dtype` is the dtype it computes in
    (its first floating-point input's, e.g. "bfloat16"; None when it has no
    tensor): the time model picks the unit's peak by it. `repeat` is how many
    times the call runs per analysed step: 1, except under gradient
    accumulation over M micro-batches, where the captured second micro-batch
    stands for micro-batches 2..M (M - 1; `MicroBatches`). Every sum over
    records (FLOPs, bytes, time, calls per op) counts a call `repeat` times.
    """

    op: str
    module: str
    phase: Phase
    cost: OpCost | None
    recompute: bool = False
    dtype: str | None = None
    repeat: int = 1

    @property
    def step_cost(self) -> OpCost | None:
        """`cost` of the call's `repeat` runs per analysed step."""
        return self.cost if self.cost is None or self.repeat == 1 else self.cost * self.repeat


@dataclass(frozen=True)
class MicroBatches:
    """Where the captured micro-batches of a step with gradient accumulation lie among
    its records.

    The step runs `count` (M >= 2) micro-batches of forward, loss and backward, then
    the optimizer step. The capture runs two: micro-batch 1 (records `[0, second)`),
    which starts with no gradients and creates them, and micro-batch 2 (records
    `[second, end)`), which adds into the gradients micro-batch 1 left; micro-batches
    3..M do what micro-batch 2 does (`OpRecord.repeat` is M - 1 for its records).
    Records from `end` on are the optimizer step's.
    """

    count: int
    second: int
    end: int

    def of(self, op_index: int) -> int | None:
        """The captured micro-batch (1 or 2) an op index falls in; None before the first
        or in the optimizer step."""
        if 0 <= op_index < self.second:
            return 1
        if self.second <= op_index < self.end:
            return 2
        return None
