"""Turn a dispatched ATen call into the arguments of its FLOP rule.

Rules see every schema argument positionally, defaults filled in, each
tensor replaced by its `Shape`, and `out=` the output shape(s).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from memflops.flops.registry import OpCost, Shape, lookup, op_name


def to_shapes(value: Any) -> Any:
    """Replace every tensor in `value` (nested lists/tuples) by its `Shape`."""
    if isinstance(value, torch.Tensor):
        return Shape(int(d) for d in value.shape)
    if isinstance(value, list):
        return [to_shapes(v) for v in value]
    if isinstance(value, tuple):
        return tuple(to_shapes(v) for v in value)
    return value


_SCHEMA_CACHE: dict[Any, tuple[tuple[str, bool, Any], ...]] = {}


def _schema_of(func: Any) -> tuple[tuple[str, bool, Any], ...]:
    cached = _SCHEMA_CACHE.get(func)
    if cached is None:
        cached = tuple(
            (a.name, a.kwarg_only, a.default_value if a.has_default_value() else None)
            for a in func._schema.arguments
        )
        _SCHEMA_CACHE[func] = cached
    return cached


def full_args(func: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> list[Any]:
    """Every schema argument in order, positional or keyword, defaults filled in."""
    result: list[Any] = []
    for i, (name, kwarg_only, default) in enumerate(_schema_of(func)):
        if not kwarg_only and i < len(args):
            result.append(args[i])
        else:
            result.append(kwargs.get(name, default))
    return result


def named_args(func: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """`full_args` by schema name."""
    names = (name for name, _, _ in _schema_of(func))
    return dict(zip(names, full_args(func, args, kwargs), strict=True))


def cost_of(func: Any, args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> OpCost | None:
    """The cost of one dispatched call, or None when no rule covers the op."""
    rule = lookup(op_name(func))
    if rule is None:
        return None
    return rule.fn(*to_shapes(full_args(func, args, kwargs)), out=to_shapes(out))
