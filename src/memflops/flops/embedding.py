"""Embedding lookups and their gradients.

A lookup is a gather (rows copied from the table): no arithmetic. Its
gradient scatters each gradient row into a zeroed table, one add per value
scattered (which row receives it depends on the indices).
"""

from __future__ import annotations

from typing import Any

from memflops.flops.registry import OpCost, numel, register, register_zero

register_zero("aten.embedding", reason="a gather: table rows are copied")
register_zero("aten.one_hot", reason="writes ones at the indexed positions of zeros")


@register(
    "aten.embedding_dense_backward",
    formula="grad_out.numel adds (each gradient row scattered into the table);"
    " +grad_out.numel divides with scale_grad_by_freq",
)
def embedding_backward(grad: Any, indices: Any, num_weights: Any, padding_idx: Any,
                       scale_grad_by_freq: Any = False, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=(1 + bool(scale_grad_by_freq)) * numel(grad))


@register(
    "aten._embedding_bag", "aten._embedding_bag_forward_only",
    formula="L = indices.numel rows of D gathered into B bags: sum (mode 0) (L - B)*D adds;"
    " mean (mode 1) + B*D divides; max (mode 2) (L - B)*D compares;"
    " per_sample_weights + L*D multiplies",
)
def embedding_bag(weight: Any, indices: Any, offsets: Any, scale_grad_by_freq: Any = False,
                  mode: Any = 0, sparse: Any = False, per_sample_weights: Any = None,
                  *_: Any, out: Any) -> OpCost:
    dim = weight[1]
    rows = numel(indices)
    bags = out[0][0]
    flops = max(rows - bags, 0) * dim
    if mode == 1:
        flops += bags * dim
    if per_sample_weights is not None:
        flops += rows * dim
    return OpCost(flops=flops)


_BAG_BACKWARD = (
    "each of the L = indices.numel rows gets its bag's gradient row of D: L*D adds into the"
    " table; mean (mode 1) + L*D divides (by the bag size); per_sample_weights + L*D"
    " multiplies"
)


def _bag_backward(grad: Any, indices: Any, mode: Any, per_sample_weights: Any) -> OpCost:
    per_row = 1 + (mode == 1) + (per_sample_weights is not None)
    return OpCost(flops=numel(indices) * grad[-1] * per_row)


@register("aten._embedding_bag_backward", formula=_BAG_BACKWARD)
def embedding_bag_backward(grad: Any, indices: Any, offsets: Any, offset2bag: Any,
                           bag_size: Any, maximum_indices: Any, num_weights: Any,
                           scale_grad_by_freq: Any, mode: Any, sparse: Any,
                           per_sample_weights: Any, *_: Any, out: Any) -> OpCost:
    return _bag_backward(grad, indices, mode, per_sample_weights)


@register("aten._embedding_bag_dense_backward", formula=_BAG_BACKWARD)
def embedding_bag_dense_backward(grad: Any, indices: Any, offset2bag: Any, bag_size: Any,
                                 maximum_indices: Any, num_weights: Any,
                                 scale_grad_by_freq: Any, mode: Any, per_sample_weights: Any,
                                 *_: Any, out: Any) -> OpCost:
    return _bag_backward(grad, indices, mode, per_sample_weights)
