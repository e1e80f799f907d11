"""Stand-ins for a model's weights: fake tensors with shapes and no data.

`fake_weights` swaps every parameter and buffer of a live module for a fake
CPU tensor of the same shape (and the analysis dtype for floating ones), and
puts the originals back afterwards. Nothing is copied: a fake tensor holds
only metadata, so a model with 70 billion real or meta parameters is
analysed in the memory of its module tree. Tied weights stay tied: one
original maps to one stand-in.

A model may convert its own modules while it runs (`self.classifier =
self.classifier.to(self.dtype)`, Switch Transformers' router). PyTorch's
`Module._apply` converts fake parameters with `torch.utils.swap_tensors`,
which keeps the parameter object and refuses any tensor with a weak
reference; a `FakeTensorMode` memoises every fake tensor it makes in a
`WeakValueDictionary`, so the swap always fails (pytorch/pytorch#148977).
While the stand-ins are in place, `swap_tensors` first drops the two
tensors' entries from that memo (it maps fresh meta tensors to their fakes,
and a swapped tensor is never looked up again). The parameter keeps its
identity; converted to the dtype it has, it keeps its storage too.

`capture_fake_mode` makes the fake mode of a capture: PyTorch's, except that a
jagged nested tensor made from fake offsets gets the plain nested int eager
mode gives real offsets, not a symbol of a shape environment it has not got.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.utils
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.nested._internal.nested_int import NestedIntNode


def capture_fake_mode() -> FakeTensorMode:
    """The capture's fake mode: static shapes, and jagged nested tensors allowed.

    A jagged nested tensor (`torch.nested`, layout `torch.jagged`) names its ragged size
    by a nested int tied to its offsets. For fake offsets PyTorch's fake mode makes it a
    symbol of its shape environment, which only a tracing compiler gives it; without
    one it fails an assertion. The capture keeps static shapes (no shape environment:
    data-dependent ops stay refused or answered from known values), so here a fake
    offsets tensor gets what a real one gets in eager mode: a plain nested int, one per
    offsets tensor, which every jagged op of PyTorch's accepts. The tensors the jagged
    ops run on (its values, its offsets) keep their static shapes.

    The mode is PyTorch's own class, its method replaced on this instance only: the
    rules of higher-order ops (flex attention) are registered by the mode's exact type.
    """
    mode = FakeTensorMode(allow_non_fake_inputs=True)

    def plain_nested_int(*, nt_tensor_id: int | None = None) -> torch.SymInt:
        if nt_tensor_id is None:
            nt_tensor_id = mode.nt_tensor_id_counter
            mode.nt_tensor_id_counter += 1
        return torch.SymInt(NestedIntNode(nt_tensor_id, 1))

    mode.create_symbolic_nested_int = plain_nested_int  # type: ignore[method-assign]
    return mode


def fake_like(
    tensor: torch.Tensor, mode: FakeTensorMode, dtype: torch.dtype | None
) -> torch.Tensor:
    """A fake CPU tensor with `tensor`'s shape and strides; `dtype` for floating tensors."""
    target = dtype if dtype is not None and tensor.is_floating_point() else tensor.dtype
    with mode:
        return torch.empty_strided(
            tuple(tensor.shape), tuple(tensor.stride()), dtype=target, device="cpu"
        )


def _forget_memo(mode: FakeTensorMode, t: torch.Tensor) -> None:
    """Drop `t` from `mode`'s memo of the fake tensors it made (its only weak reference)."""
    memo = mode.fake_tensor_converter.tensor_memo
    for ref in weakref.getweakrefs(t):
        if isinstance(ref, weakref.KeyedRef) and memo.get(ref.key) is t:
            del memo[ref.key]


@contextmanager
def swappable_fakes(mode: FakeTensorMode) -> Iterator[None]:
    """Let `Module._apply` swap fake parameters (see the module docstring)."""
    original = torch.utils.swap_tensors

    def swap(t1: torch.Tensor, t2: torch.Tensor) -> None:
        _forget_memo(mode, t1)
        _forget_memo(mode, t2)
        original(t1, t2)  # type: ignore[no-untyped-call]

    torch.utils.swap_tensors = swap
    try:
        yield
    finally:
        torch.utils.swap_tensors = original


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
        with swappable_fakes(mode):
            yield stand_ins
    finally:
        for slots, name, original in reversed(swapped):
            slots[name] = original
