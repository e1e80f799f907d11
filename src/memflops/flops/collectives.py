"""Collective communication and the copies around it (distributed training).

A collective moves data between ranks; its cost on a rank is communication
time (`memflops.capture.collectives` records its bytes), not arithmetic,
except for the reduction a reduce-scatter does: with N ranks, the rank
holding a shard of n elements adds the other N - 1 ranks' n partial values
into its own, (N - 1) x n = input.numel - output.numel adds. An all-reduce
does the same on every shard of its buffer, (N - 1) / N x numel adds.
DTensor's `_c10d_functional.all_reduce` names its group, not its size: the
capture of a distributed step puts the size in its place before pricing it
(`memflops.capture.parallel.ParallelRecorder.priced`). The average
FSDP asks for (ReduceOp.AVG) divides inside the same kernel; the schema
does not say which reduction ran, so that divide is not counted. The FSDP2
copies into and out of the flat communication buffers (`torch.ops.fsdp`)
move data only: 0.
"""

from __future__ import annotations

from typing import Any

from memflops.flops.registry import OpCost, numel, register, register_zero

register_zero(
    "c10d._allgather_base_", "c10d.allgather_into_tensor_coalesced_",
    "_c10d_functional.all_gather_into_tensor", "_c10d_functional.wait_tensor",
    "c10d.broadcast_",
    reason="communication: moves shards between ranks",
)

register_zero(
    "fsdp.all_gather_copy_in", "fsdp.split_with_sizes_copy", "fsdp.chunk_cat",
    reason="data movement: copies into or out of a flat communication buffer",
)


@register(
    "c10d._reduce_scatter_base_",
    formula="input.numel - output.numel adds ((N - 1) partial shards summed into this rank's)",
)
def reduce_scatter(output: Any, input: Any, *_: Any, out: Any = None) -> OpCost:
    return OpCost(flops=numel(input) - numel(output))


@register(
    "_c10d_functional.reduce_scatter_tensor",
    formula="input.numel - input.numel / N adds (N = group_size)",
)
def functional_reduce_scatter(input: Any, reduce_op: Any, group_size: Any, *_: Any,
                              out: Any = None) -> OpCost:
    return OpCost(flops=numel(input) - numel(input) // int(group_size))


@register(
    "_c10d_functional.all_reduce",
    formula="input.numel - input.numel / N adds (N = the group's size, which the capture "
    "of a distributed step reads from the group's name)",
)
def functional_all_reduce(input: Any, reduce_op: Any, group: Any, *_: Any,
                          out: Any = None) -> OpCost:
    if not isinstance(group, int):
        raise ValueError(f"the size of process group {group!r} is unknown outside a "
                         f"distributed step analysed with parallel=")
    return OpCost(flops=numel(input) - numel(input) // group)
