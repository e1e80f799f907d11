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
    tensor): the time model picks the unit's peak by it.
    """

    op: str
    module: str
    phase: Phase
    cost: OpCost | None
    recompute: bool = False
    dtype: str | None = None
