"""Stand-ins for a model's weights: fake tensors with shapes and no data.

`fake_weights` swaps every parameter and buffer of a live module for a fake
CPU tensor of the same shape (and the analysis dtype for floating ones), and
puts the originals back afterwards. Nothing is copied: a fake tensor holds
only metadata, so a model with 70 billion real or meta parameters is
analysed in the memory of its module tree. Tied weights stay tied: one
original maps to one stand-in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode


def fake_like(
    tensor: torch.Tensor, mode: FakeTensorMode, dtype: torch.dtype | None
) -> torch.Tensor:
    """A fake CPU tensor with `tensor`'s shape and strides; `dtype` for floating tensors."""
    target = dtype if dtype is not None and tensor.is_floating_point() else tensor.dtype
    with mode:
        return torch.empty_strided(
            tuple(tensor.shape), tuple(tensor.stride()), dtype=target, device="cpu"
        )


@contextmanager
def fake_weights(
    model: nn.Module, mode: FakeTensorMode, dtype: torch.dtype | None
) -> Iterator[dict[int, torch.Tensor]]:
    """Swap parameters and buffers for fake ones; yields {id(original): stand-in}."""
    stand_ins: dict[int, torch.Tensor] = {}
    swapped: list[tuple[dict[str, Any], str, torch.Tensor]] = []
    try:
        for module in model.modules():
            slot_kinds: tuple[tuple[dict[str, Any], bool], ...] = (
                (module._parameters, True),
                (module._buffers, False),
            )
            for slots, is_param in slot_kinds:
                for name, original in list(slots.items()):
                    if original is None:
                        continue
                    fake = stand_ins.get(id(original))
                    if fake is None:
                        fake = fake_like(original, mode, dtype)
                        if is_param:
                            fake = nn.Parameter(fake, requires_grad=original.requires_grad)
                        stand_ins[id(original)] = fake
                    swapped.append((slots, name, original))
                    slots[name] = fake
        yield stand_ins
    finally:
        for slots, name, original in reversed(swapped):
            slots[name] = original
