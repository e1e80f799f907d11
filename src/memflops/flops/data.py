"""Data movement, creation and random numbers: ops that do no arithmetic.

They cost memory traffic, not FLOPs, so each is registered as 0 with the
reason why; an op that is missing here is reported as uncounted, never
assumed free. Values computed from an index alone (`arange`, `linspace`)
are a constant sequence, not work on data: 0. Drawing random numbers
(`bernoulli_`, `randn`, ...) is 0 FLOPs too.

The exceptions that accumulate (an indexed write with `accumulate=True`,
`scatter_add`, `index_add`, the backward of padding and of `unfold`) cost
one add per value accumulated into the destination, which starts from its
current contents (or zeros for a gradient).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memflops.flops.elementwise import is_not_one
from memflops.flops.registry import OpCost, numel, register, register_zero

register_zero(
    "aten.empty", "aten.empty_like", "aten.empty_strided", "aten.empty_permuted",
    "aten.new_empty", "aten.new_empty_strided", "aten.zeros", "aten.zeros_like",
    "aten.new_zeros", "aten.ones", "aten.ones_like", "aten.new_ones", "aten.full",
    "aten.full_like", "aten.new_full", "aten.scalar_tensor", "aten.fill", "aten.fill_",
    "aten.zero", "aten.zero_", "aten._foreach_zero_", "aten.eye", "aten.tril_indices",
    "aten.triu_indices", "aten.lift_fresh", "aten.lift_fresh_copy",
    reason="creation: allocates or fills with a constant",
)

register_zero(
    "aten.arange", "aten.linspace", "aten.logspace",
    reason="creation: a constant sequence computed from the index, not from data",
)

register_zero(
    "aten.clone", "aten.copy", "aten.copy_", "aten._to_copy", "aten._copy_from",
    "aten._copy_from_and_resize", "aten._foreach_copy_", "aten._unsafe_view",
    "aten.contiguous", "aten.cat", "aten.stack", "aten.repeat", "aten.flip", "aten.roll",
    "aten.tril", "aten.tril_", "aten.triu", "aten.triu_", "aten.pixel_shuffle",
    "aten.pixel_unshuffle", "aten.native_channel_shuffle", "aten.channel_shuffle",
    "aten.im2col", "aten.diag_embed", "aten.unfold_copy", "aten.unsafe_split",
    "aten.repeat_interleave",
    "aten.unsafe_split_with_sizes", "aten.unsafe_chunk",
    reason="data movement: copies, converts dtype or rearranges elements",
)

register_zero(
    "aten.constant_pad_nd", "aten.reflection_pad1d", "aten.reflection_pad2d",
    "aten.reflection_pad3d", "aten.replication_pad1d", "aten.replication_pad2d",
    "aten.replication_pad3d",
    reason="padding: copies the input and fills or mirrors the border",
)

register_zero(
    "aten.index", "aten._unsafe_index", "aten.index_select", "aten.gather", "aten.take",
    "aten.masked_scatter", "aten.masked_scatter_", "aten.masked_scatter_backward",
    "aten.masked_select", "aten.index_copy", "aten.index_copy_",
    reason="a gather, masked or indexed copy: elements are copied",
)

register_zero(
    "aten.slice_backward", "aten.select_backward", "aten.as_strided_scatter",
    "aten.slice_scatter", "aten.select_scatter", "aten.diagonal_scatter",
    "aten.diagonal_backward",
    reason="copies a gradient or a slice into a larger (zeroed) tensor",
)

register_zero(
    "aten.as_strided_", "aten.transpose_", "aten.t_", "aten.squeeze_", "aten.unsqueeze_",
    "aten.swapdims_", "aten.swapaxes_", "aten.detach_", "aten.resize_", "aten.resize_as_",
    "aten.set_", "aten._local_scalar_dense", "aten._assert_async", "aten._assert_scalar",
    "aten.sym_constrain_range", "aten.sym_constrain_range_for_size",
    reason="metadata, a scalar read or an assertion: no arithmetic",
)

register_zero(
    "aten.bernoulli", "aten.bernoulli_", "aten.rand", "aten.rand_like", "aten.randn",
    "aten.randn_like", "aten.randint", "aten.randint_like", "aten.randperm",
    "aten.uniform", "aten.uniform_", "aten.normal", "aten.normal_", "aten.exponential_",
    "aten.random_",
    reason="random number generation, no arithmetic on data",
)


# --- accumulating writes --------------------------------------------------------


def broadcast(shapes: Sequence[Sequence[int]]) -> tuple[int, ...]:
    """The broadcast of several shapes (numpy rules)."""
    rank = max((len(s) for s in shapes), default=0)
    result = [1] * rank
    for shape in shapes:
        for i, size in enumerate(shape, start=rank - len(shape)):
            if size != 1:
                result[i] = size
    return tuple(result)


def indexed_positions(x: Sequence[int], indices: Sequence[Any]) -> int:
    """Elements of `x` addressed by advanced indexing `x[indices]` (None: a full slice)."""
    given = [i for i in indices if i is not None]
    positions = numel(broadcast(given))
    for dim, index in enumerate(indices):
        if index is None:
            positions *= x[dim]
    return positions * numel(x[len(indices):])


@register(
    "aten.index_put", "aten.index_put_", "aten._index_put_impl_", "aten._unsafe_index_put",
    formula="0 (a scatter); with accumulate=True one add per indexed position",
)
def index_put(x: Any, indices: Sequence[Any], values: Any, accumulate: Any = False,
              *_: Any, out: Any) -> OpCost:
    return OpCost(flops=indexed_positions(x, indices) if accumulate is True else 0)


@register(
    "aten.scatter", "aten.scatter_",
    formula="0 (a scatter); with reduce='add' or 'multiply' one operation per index",
)
def scatter(x: Any, dim: Any, index: Any, src: Any, reduce: Any = None, *_: Any,
            out: Any) -> OpCost:
    return OpCost(flops=numel(index) if isinstance(reduce, str) else 0)


@register("aten.scatter_add", "aten.scatter_add_", formula="index.numel adds")
def scatter_add(x: Any, dim: Any, index: Any, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=numel(index))


@register(
    "aten.scatter_reduce", "aten.scatter_reduce_",
    formula="index.numel operations (add, multiply, max or min); mean + out.numel divides",
)
def scatter_reduce(x: Any, dim: Any, index: Any, src: Any, reduce: Any, *_: Any,
                   out: Any) -> OpCost:
    return OpCost(flops=numel(index) + (numel(out) if reduce == "mean" else 0))


@register(
    "aten.index_add", "aten.index_add_",
    formula="source.numel adds; + source.numel multiplies when alpha != 1",
)
def index_add(x: Any, dim: Any, index: Any, source: Any, alpha: Any = 1, *_: Any,
              out: Any) -> OpCost:
    return OpCost(flops=(1 + is_not_one(alpha)) * numel(source))


@register(
    "aten.reflection_pad1d_backward", "aten.reflection_pad2d_backward",
    "aten.reflection_pad3d_backward", "aten.replication_pad1d_backward",
    "aten.replication_pad2d_backward", "aten.replication_pad3d_backward",
    "aten.unfold_backward",
    formula="grad_out.numel adds (each gradient added into the input it was copied from)",
)
def copy_backward(grad: Any, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=numel(grad))


@register("aten.col2im", formula="input.numel adds (overlapping patches summed into the image)")
def col2im(x: Any, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=numel(x))
