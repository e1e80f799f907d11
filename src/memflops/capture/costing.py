"""Price a dispatched ATen call: turn it into the arguments of its FLOP rule.

Rules see every schema argument positionally, defaults filled in, each
tensor replaced by its `Shape`, and `out=` the output shape(s). Rules see no
dtypes; the one dtype question is asked here, once for every op: a call with
no floating-point or complex tensor does no floating-point arithmetic and
costs 0 FLOPs under every convention (`registry.integer_cost`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from memflops.flops.registry import OpCost, Shape, integer_cost, lookup, op_name


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


def _floating(value: Any) -> bool:
    """Whether `value` is, or (in nested lists/tuples) holds, a floating-point or complex tensor."""
    if isinstance(value, torch.Tensor):
        return value.dtype.is_floating_point or value.dtype.is_complex
    if isinstance(value, (list, tuple)):
        return any(_floating(v) for v in value)
    return False


def integer_only(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> bool:
    """Whether no tensor a call reads or writes is floating-point or complex (integer, bool)."""
    return not (_floating(args) or _floating(out) or _floating(tuple(kwargs.values())))


def cost_of(func: Any, args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> OpCost | None:
    """The cost of one dispatched call, or None when no rule covers the op.

    An integer-only call (`integer_only`) costs 0 FLOPs, rule or no rule; its rule's
    MACs are kept apart as integer MACs (`registry.integer_cost`).
    """
    rule = lookup(op_name(func))
    cost = None
    if rule is not None:
        cost = rule.fn(*to_shapes(full_args(func, args, kwargs)), out=to_shapes(out))
    return integer_cost(cost) if integer_only(args, kwargs, out) else cost
