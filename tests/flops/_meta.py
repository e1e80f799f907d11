"""Run one ATen op on meta tensors and ask the registry what it cost."""

from __future__ import annotations

from typing import Any

import torch

from memflops.capture.costing import cost_of
from memflops.flops.registry import OpCost, RuleFn, lookup, op_name

aten = torch.ops.aten


def meta(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A tensor with a shape and no data."""
    return torch.empty(shape, dtype=dtype, device="meta")


def cost(op: Any, *args: Any, **kwargs: Any) -> OpCost:
    """The cost the registry gives one call of `op` (an OpOverload) on `args`."""
    out = op(*args, **kwargs)
    result = cost_of(op, args, kwargs, out)
    assert result is not None, f"{op_name(op)} has no rule"
    return result


def flops(op: Any, *args: Any, **kwargs: Any) -> int:
    """Exact FLOPs of one call; these families never count MACs."""
    result = cost(op, *args, **kwargs)
    assert result.macs == 0, f"{op_name(op)} counted MACs"
    return result.flops


def rule_of(name: str) -> RuleFn:
    """The rule function registered for `name`, to call on plain shapes."""
    rule = lookup(name)
    assert rule is not None, f"{name} has no rule"
    return rule.fn
