"""Indexing by a known boolean mask: its size needs the mask's values, not the data's.

`x[mask]`, `x[mask] = y` and their backward (`aten.index`, `aten.index_put`) have an
output size set by how many entries of `mask` are true, so the fake kernel refuses
them. When the mask's values are known (`values.known`: masks of ones, token-id
comparisons, constants) but `x`'s are not (activations, gradients), the op runs again
on the fakes with each boolean mask replaced by the positions of its true entries,
one int64 index tensor per mask dimension (`mask.nonzero().unbind(1)`): PyTorch
defines indexing by a mask as exactly that, so the output, and the op's FLOPs and
bytes, are those of the original op. The positions' values are noted as known.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

PositionsOf = Callable[[torch.Tensor], "list[torch.Tensor] | None"]
"""A mask's true positions, one int64 index tensor per dimension, or None when its
values are unknown (`KnownValues.mask_positions`)."""

INDEXING = frozenset({
    "aten.index", "aten.index_put", "aten.index_put_", "aten._index_put_impl",
    "aten._index_put_impl_", "aten._unsafe_index", "aten._unsafe_index_put",
})
"""Ops taking `(self, indices, ...)` whose boolean indices may be given as positions."""

_MASKS = (torch.bool, torch.uint8)


def index_by_positions(positions_of: PositionsOf, name: str, func: Any, args: tuple[Any, ...],
                       kwargs: dict[str, Any]) -> Any:
    """`func`'s fake output with known masks given as positions, or None (see the module
    docstring): not an indexing op, no mask, or a mask whose values are unknown."""
    if name == "aten.masked_select":
        return _masked_select(positions_of, args[0], args[1])
    if name not in INDEXING or len(args) < 2 or not isinstance(args[1], (list, tuple)):
        return None
    indices: list[Any] = []
    masked = False
    for index in args[1]:
        if not (isinstance(index, torch.Tensor) and index.dtype in _MASKS):
            indices.append(index)
            continue
        positions = positions_of(index)
        if positions is None:
            return None
        masked = True
        indices += positions
    if not masked:
        return None  # the refusal has another cause
    return func(args[0], indices, *args[2:], **kwargs)


def _masked_select(positions_of: PositionsOf, data: torch.Tensor, mask: torch.Tensor) -> Any:
    """`data.masked_select(mask)` with a known mask: a 1-D tensor of the entries where the
    mask, broadcast with `data`, is true (values unknown), or None when the mask is unknown.
    Broadcasting repeats every mask entry equally, so the count is the mask's true entries
    times the broadcast's repeats."""
    positions = positions_of(mask)
    if positions is None or mask.dim() == 0 or mask.numel() == 0:
        return None
    shape = torch.broadcast_shapes(data.shape, mask.shape)  # type: ignore[no-untyped-call]
    count = int(positions[0].shape[0]) * (math.prod(shape) // mask.numel())
    return data.new_empty((count,))

