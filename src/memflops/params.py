"""Parameter and buffer counts of a module tree, shared tensors counted once."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ParamCounts:
    total: int
    trainable: int
    trainable_bytes: int
    buffers: int
    param_bytes: int
    buffer_bytes: int
    per_module: dict[str, int]
    shared: tuple[tuple[str, str], ...]
    """(name, the name it shares its tensor with), one pair per extra reference."""


def _bytes(t: torch.Tensor, dtype: torch.dtype | None) -> int:
    size = dtype.itemsize if dtype is not None and t.is_floating_point() else t.element_size()
    return t.numel() * size


def count_params(model: nn.Module, dtype: torch.dtype | None = None) -> ParamCounts:
    """Count unique parameters (tied weights once), trainable ones and buffers.

    `dtype` is the analysis dtype floating tensors are cast to (for bytes).
    """
    first_name: dict[int, str] = {}
    shared: list[tuple[str, str]] = []
    total = trainable = param_bytes = trainable_bytes = 0
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in first_name:
            shared.append((name, first_name[id(p)]))
            continue
        first_name[id(p)] = name
        total += p.numel()
        param_bytes += _bytes(p, dtype)
        if p.requires_grad:
            trainable += p.numel()
            trainable_bytes += _bytes(p, dtype)
    buffers = buffer_bytes = 0
    for b in model.buffers():
        buffers += b.numel()
        buffer_bytes += _bytes(b, dtype)
    per_module = {
        path: sum(p.numel() for p in module.parameters()) for path, module in model.named_modules()
    }
    return ParamCounts(total, trainable, trainable_bytes, buffers, param_bytes, buffer_bytes,
                       per_module,
                       tuple(shared))
