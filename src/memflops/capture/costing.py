"""Price a dispatched ATen call: turn it into the arguments of its FLOP rule, and count
the bytes it reads and writes.

Rules see every schema argument positionally, defaults filled in, each
tensor replaced by its `Shape`, and `out=` the output shape(s). Rules see no
dtypes; the one dtype question is asked here, once for every op: a call with
no floating-point or complex tensor does no floating-point arithmetic and
costs 0 FLOPs under every convention (`registry.integer_cost`).

Bytes are priced here too, from the real tensors (`traffic`), under the
traffic model of docs/time-model.md: every distinct input region is read
once and every output written once (no reuse across ops, as in eager mode);
a region is a storage, offset, shape and strides, so a tensor passed twice
is read once; a broadcast (stride 0) dimension is read once, at the
tensor's real size; an argument the schema marks as written (in place, or
`out=`) is written once, and `out=` arguments, the targets of
write-only ops (`copy_`, `fill_`, `zero_`, random fills) and the arguments
of `*_like` and `new_*` ops (which read a shape) are not read; an
output that is an input's region (a view in disguise) moves nothing; a
gather reads from its table only the rows it copies, and an in-place
scatter writes only what it scatters. Views themselves are never priced
(the recorder skips them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch.utils._python_dispatch import _disable_current_modes

from memflops.capture.records import OpRecord
from memflops.flops.registry import OpCost, Shape, integer_cost, lookup, op_name

ValueOf = Callable[[Any], "torch.Tensor | None"]
"""A tensor's real value when the capture knows it, else None."""


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


_ACCESS_CACHE: dict[Any, tuple[tuple[bool, bool], ...]] = {}

WRITE_ONLY = frozenset({
    "aten.copy_", "aten.fill_", "aten.zero_", "aten.uniform_", "aten.normal_",
    "aten.random_", "aten.bernoulli_", "aten.exponential_", "aten.geometric_",
    "aten.cauchy_", "aten.log_normal_",
})
"""In-place ops that overwrite their target without reading it."""

SHAPE_ONLY = frozenset({
    "aten.empty_like", "aten.zeros_like", "aten.ones_like", "aten.full_like",
    "aten.rand_like", "aten.randn_like", "aten.randint_like", "aten.new_empty",
    "aten.new_empty_strided", "aten.new_zeros", "aten.new_ones", "aten.new_full",
})
"""Ops that read only the shape and dtype of their tensor arguments, never their data."""

GATHERS = {"aten.embedding": 0, "aten.index_select": 0, "aten.gather": 0, "aten.index": 0}
"""Ops that read from a table (argument index) only the elements they copy: as many as
they write, in the table's dtype."""

SCATTERS = {
    "aten.index_put_": (2, False), "aten.index_copy_": (3, False),
    "aten.index_add_": (3, True), "aten.scatter_": (3, False), "aten.scatter_add_": (3, True),
    "aten.masked_scatter_": (2, False),
}
"""In-place ops that write into their target (argument 0) only where they scatter: as
many elements as their source (argument index) holds; `True`: they also read the
elements they add to."""


def _access_of(func: Any) -> tuple[tuple[bool, bool], ...]:
    """(is `out=`, is written) per schema argument."""
    cached = _ACCESS_CACHE.get(func)
    if cached is None:
        cached = tuple(
            (bool(a.is_out), a.alias_info is not None and bool(a.alias_info.is_write))
            for a in func._schema.arguments
        )
        _ACCESS_CACHE[func] = cached
    return cached


def _tensors(value: Any) -> Sequence[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return (value,)
    if isinstance(value, (list, tuple)):
        found: list[torch.Tensor] = []
        for v in value:
            found.extend(_tensors(v))
        return found
    return ()


def _region(t: torch.Tensor) -> tuple[Any, ...]:
    """What a tensor covers: its storage, offset, shape and strides."""
    try:
        storage = t.untyped_storage()._cdata
    except (RuntimeError, NotImplementedError):  # no storage (sparse, nested): itself
        storage = id(t)
    return (storage, t.storage_offset(), tuple(t.shape), t.stride())


def _stored_bytes(t: torch.Tensor) -> int:
    """Bytes of the distinct elements `t` covers: stride-0 (broadcast) dimensions once."""
    elements = 1
    for size, stride in zip(t.shape, t.stride(), strict=True):
        if stride != 0:
            elements *= int(size)
    return elements * t.element_size()


def _nbytes(t: torch.Tensor) -> int:
    return int(t.numel()) * t.element_size()


def traffic(
    func: Any, name: str, full: Sequence[Any], out: Any
) -> tuple[int, int, torch.dtype | None]:
    """(bytes read, bytes written, the dtype it computes in) of one call.

    `full` is `full_args` of the call; the model is the module docstring's. The dtype
    is that of the first floating-point input (else the first input, else None).
    """
    read = written = 0
    was_read: set[tuple[Any, ...]] = set()
    was_written: set[tuple[Any, ...]] = set()
    dtype: torch.dtype | None = None
    first: torch.dtype | None = None
    gathered = GATHERS.get(name)
    scatter = SCATTERS.get(name)
    write_only = name in WRITE_ONLY
    shape_only = name in SHAPE_ONLY
    for index, (value, (is_out, is_write)) in enumerate(zip(full, _access_of(func),
                                                            strict=False)):
        for t in _tensors(value):
            key = _region(t)
            if not is_out:
                if dtype is None and t.dtype.is_floating_point:
                    dtype = t.dtype
                if first is None:
                    first = t.dtype
            if is_write:
                if key in was_written:
                    continue
                was_written.add(key)
                if scatter is not None and index == 0:
                    moved = _scattered_bytes(full, scatter[0], t)
                    written += moved
                    read += moved if scatter[1] else 0
                    continue
                written += _nbytes(t)
                if is_out or write_only:
                    continue
            if key in was_read or shape_only:
                continue
            was_read.add(key)
            if index == gathered and isinstance(out, torch.Tensor):
                read += min(_stored_bytes(t), int(out.numel()) * t.element_size())
            else:
                read += _stored_bytes(t)
    for t in _tensors(out):
        key = _region(t)
        if key in was_written or key in was_read:
            continue  # written in place (counted above), or an input's region: no move
        was_written.add(key)
        written += _nbytes(t)
    return read, written, dtype or first


def plain_traffic(args: Sequence[Any], out: Any) -> tuple[int, int, torch.dtype | None]:
    """(bytes read, bytes written, dtype) of a call without a schema (a higher-order op):
    each distinct tensor region among its arguments read once, each output written once
    (an output that is an input's region moves nothing); the dtype of the first
    floating-point argument."""
    from memflops.capture.inputs import flatten_tensors

    read = written = 0
    seen: set[tuple[Any, ...]] = set()
    dtype: torch.dtype | None = None
    for t in flatten_tensors(list(args)):
        key = _region(t)
        if key not in seen:
            seen.add(key)
            read += _stored_bytes(t)
        if dtype is None and t.dtype.is_floating_point:
            dtype = t.dtype
    for t in flatten_tensors(out):
        key = _region(t)
        if key not in seen:
            seen.add(key)
            written += _nbytes(t)
    return read, written, dtype


def _scattered_bytes(full: Sequence[Any], source: int, target: torch.Tensor) -> int:
    """Bytes an in-place scatter writes into `target`: as many elements as its source
    holds, or as its largest index tensor (a scalar or broadcast source), in the target's
    dtype, and never more than the target."""
    values = full[source] if source < len(full) else None
    elements = sum(int(t.numel()) for t in _tensors(values))
    for t in _tensors(list(full[1:source])):
        if not t.dtype.is_floating_point:
            elements = max(elements, int(t.numel()))
    return min(elements, int(target.numel())) * target.element_size()


KNOWN_VALUES = {
    "torch_attn._varlen_attn": ("cu_seq_q", "cu_seq_k"),
    "torch_attn._varlen_attn_out": ("cu_seq_q", "cu_seq_k"),
    "torch_attn._varlen_attn_backward": ("cu_seq_q", "cu_seq_k"),
    "aten._flash_attention_forward": ("cum_seq_q", "cum_seq_k"),
    "aten._flash_attention_backward": ("cum_seq_q", "cum_seq_k"),
    "aten._efficient_attention_forward": ("cu_seqlens_q", "cu_seqlens_k"),
    "aten._efficient_attention_backward": ("cu_seqlens_q", "cu_seqlens_k"),
    "aten._cudnn_attention_forward": ("cum_seq_q", "cum_seq_k"),
    "aten._cudnn_attention_backward": ("cum_seq_q", "cum_seq_k"),
}
"""Ops whose rule counts exactly when it knows these arguments' values (a varlen kernel's
cumulative sequence offsets, as jagged nested tensors pass them too): `price` passes
them as lists of ints when the capture knows them, their shapes otherwise."""


def _with_values(func: Any, name: str, full: Sequence[Any], shaped: list[Any],
                 values: ValueOf | None) -> list[Any]:
    """`shaped` (the rule's arguments) with the known values of `name`'s `KNOWN_VALUES`
    arguments (from `full`, the call's) as lists of ints in place of their shapes."""
    wanted = KNOWN_VALUES.get(name)
    if not wanted or values is None:
        return shaped
    for index, (arg, _, _) in enumerate(_schema_of(func)):
        if arg in wanted and index < len(full) and isinstance(full[index], torch.Tensor):
            real = values(full[index])
            if real is not None:
                with _disable_current_modes():  # read the real copy, not through the modes
                    shaped[index] = [int(x) for x in real.tolist()]
    return shaped


def flop_counter_formula(func: Any) -> Any:
    """The formula `torch.utils.flop_counter.register_flop_formula` holds for `func`'s op
    (a user's custom op, or a kernel FlopCounterMode knows), or None.

    It is used only for an op memflops has no rule of (`price`): it gives FlopCounterMode's
    count, 2 x multiply-accumulates, so the op's MACs are half of it and its FLOPs, under
    `exact` too, are that count (the analysis warns, `borrowed_warning`).
    """
    from torch.utils import flop_counter

    packet = getattr(func, "overloadpacket", None)
    return None if packet is None else flop_counter.flop_registry.get(packet)


def borrowed_warning(records: Iterable[OpRecord]) -> list[str]:
    """The report's one warning about ops counted by FlopCounterMode's formulas: those
    with a count and no memflops rule (none when there are none)."""
    calls: dict[str, int] = {}
    for rec in records:
        if rec.cost is not None and (rec.cost.macs or rec.cost.flops) and lookup(rec.op) is None:
            calls[rec.op] = calls.get(rec.op, 0) + rec.repeat
    if not calls:
        return []
    listed = ", ".join(f"{op} ({n} call(s))" for op, n in sorted(calls.items()))
    return [
        f"{listed} counted by formulas registered with torch.utils.flop_counter."
        f"register_flop_formula: their FLOPs are 2 x MACs under every convention (exact "
        f"too); register a memflops rule (memflops.register_formula) for an exact count"
    ]


def price(
    func: Any, name: str, args: Sequence[Any], kwargs: dict[str, Any], out: Any,
    values: ValueOf | None = None,
) -> tuple[OpCost | None, torch.dtype | None]:
    """`cost_of` with the call's bytes (`traffic`) filled in, and the dtype it computes in.

    An op without a memflops rule is priced by FlopCounterMode's formula when one is
    registered (`flop_counter_formula`). `values` gives a tensor's real value when the
    capture knows it, for the arguments in `KNOWN_VALUES`."""
    full = full_args(func, args, kwargs)
    rule = lookup(name)
    cost = None
    if rule is not None:
        shaped = _with_values(func, name, full, list(to_shapes(full)), values)
        cost = rule.fn(*shaped, out=to_shapes(out))
    else:
        formula = flop_counter_formula(func)
        if formula is not None:
            count = int(formula(*args, **kwargs, out_val=out))
            cost = OpCost(macs=count // 2, flops=count)
    if integer_only(args, kwargs, out):
        cost = integer_cost(cost)
    read, written, dtype = traffic(func, name, full, out)
    if cost is None:
        return None, dtype
    return OpCost(cost.macs, cost.flops, cost.integer_macs, read, written,
                  cost.depthwise_macs), dtype


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
