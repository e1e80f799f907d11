"""A distributed step's memory by the kinds of parallel training (`memory.parallel`)."""

from __future__ import annotations

from torch import nn

import memflops
from memflops.memory.parallel import PARALLEL_KINDS


def test_kinds_at_the_peak_sum_to_the_peak() -> None:
    # three repeated Linear(32, 32) blocks and a head: FSDP units 0.0, 0.1, 0.2 and the root
    model = nn.Sequential(nn.Sequential(*(nn.Linear(32, 32) for _ in range(3))),
                          nn.Linear(32, 8))
    report = memflops.analyze(model, (4, 32), mode="train", optimizer="adamw",
                              parallel="fsdp=4")
    assert report.parallel is not None
    kinds = dict(report.parallel.by_kind)
    assert tuple(kinds) == PARALLEL_KINDS
    assert sum(kinds.values()) == report.totals.memory.peak
    # rank 0's shard of every parameter: 32 rows / 4 = 8 of each 32x32 weight and 8 of each
    # bias, 2 rows of the 8x32 head and 2 of its bias: (3 * (8*32 + 8) + 2*32 + 2) * 4 bytes
    assert kinds["sharded_params"] == report.totals.memory.params == (3 * 264 + 66) * 4
    # a block's parameters are gathered whole while it runs: 32*32 + 32 elements at least
    assert kinds["unsharded_params"] >= (32 * 32 + 32) * 4
