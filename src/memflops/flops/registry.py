"""One registry of per-operator FLOP rules.

A rule is a short pure function of an ATen op's arguments, with every tensor
replaced by its `Shape`, and of the shapes it produced (`out=`). It returns
an `OpCost`: exact integers, never floats. Rules are registered with the
`register` decorator, once per op: registering an op twice is an error, so
there is one source of truth. An op the registry does not know and that is
not a view is reported as *uncounted* by the capture, never as zero, unless
it reads and writes no floating-point tensor (`integer_cost`).

This module and every rule import no torch (the layer-spec frontend
evaluates the same rules on plain shapes); pricing a dispatched ATen call is
`memflops.capture.costing.cost_of`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from memflops.conventions import Convention


class Shape(tuple[int, ...]):
    """The shape of one tensor argument, as a rule sees it."""

    __slots__ = ()

    @property
    def numel(self) -> int:
        return math.prod(self)


@dataclass(frozen=True)
class OpCost:
    """The cost of one op call.

    `macs` counts multiply-accumulates of matmul-like work only (convolution,
    matrix products, attention); `flops` counts every arithmetic operation
    under the article's exact rules. Both count floating-point work only: a
    call on integer and boolean tensors has none (`integer_cost`), and the
    multiply-accumulates of such a call (an int8 matmul) are kept apart in
    `integer_macs`, which no convention counts. Rules never set it.

    `bytes_read` and `bytes_written` are the call's memory traffic under the
    traffic model of docs/time-model.md (each distinct input region read once,
    each output written once, views move nothing); the capture prices them
    from the real tensors (`memflops.capture.costing.traffic`). Rules never
    set them either.

    `depthwise_macs` is the part of `macs` done by a depthwise convolution
    (one input channel per group, as `aten/src/ATen/native/Convolution.cpp`'s
    `is_depthwise` defines it): a hardware-free fact about the shape that the
    time model reads, since such a product has no reduction over channels for
    a matrix unit to tile (docs/time-model.md).
    """

    macs: int = 0
    flops: int = 0
    integer_macs: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    depthwise_macs: int = 0

    def __add__(self, other: OpCost) -> OpCost:
        return OpCost(
            self.macs + other.macs,
            self.flops + other.flops,
            self.integer_macs + other.integer_macs,
            self.bytes_read + other.bytes_read,
            self.bytes_written + other.bytes_written,
            self.depthwise_macs + other.depthwise_macs,
        )

    def __mul__(self, times: int) -> OpCost:
        """The cost of `times` calls of this op (an op repeated per step,
        `OpRecord.repeat`)."""
        if times == 1:
            return self
        return OpCost(
            self.macs * times,
            self.flops * times,
            self.integer_macs * times,
            self.bytes_read * times,
            self.bytes_written * times,
            self.depthwise_macs * times,
        )

    @property
    def bytes(self) -> int:
        """Bytes read plus bytes written."""
        return self.bytes_read + self.bytes_written

    @property
    def arithmetic(self) -> OpCost:
        """This cost without its traffic: MACs and FLOPs alone."""
        return OpCost(self.macs, self.flops, self.integer_macs,
                      depthwise_macs=self.depthwise_macs)

    def under(self, convention: Convention) -> int:
        """FLOPs of this op under a convention."""
        if convention is Convention.EXACT:
            return self.flops
        if convention is Convention.TWO_MAC:
            return 2 * self.macs
        return self.macs


ZERO = OpCost()


def integer_cost(rule_cost: OpCost | None) -> OpCost:
    """The cost of a call whose tensors, read and written, are all integer or boolean.

    A FLOP is a floating-point operation, so such a call (index math, a counter
    such as BatchNorm's `num_batches_tracked += 1`, a mask) costs 0 FLOPs and 0
    MACs under every convention, whether a rule covers it or not (`rule_cost`
    None): zero is its true count, so it is counted, not reported as uncounted.
    The MACs its rule counts (an int8 matrix product) are real work on integers:
    they are kept as `integer_macs`, for the report's warnings, out of every total.
    """
    return OpCost(integer_macs=rule_cost.macs if rule_cost is not None else 0)


RuleFn = Callable[..., OpCost]


@dataclass(frozen=True)
class Rule:
    """A registered rule: which ops it covers, its formula in words, its code."""

    ops: tuple[str, ...]
    formula: str
    family: str
    fn: RuleFn


_RULES: dict[str, Rule] = {}


class DuplicateRuleError(ValueError):
    """An op was registered twice."""


def op_name(func: Any) -> str:
    """`aten.convolution` for `torch.ops.aten.convolution.default`."""
    return str(func.overloadpacket)


def register(*ops: str, formula: str) -> Callable[[RuleFn], RuleFn]:
    """Register `fn` as the rule of `ops` (names such as ``"aten.mm"``).

    `formula` is the rule in one line of words and symbols; it is what
    `docs/conventions.md` shows.
    """

    def decorate(fn: RuleFn) -> RuleFn:
        family = fn.__module__.rsplit(".", 1)[-1]
        rule = Rule(ops=tuple(ops), formula=formula, family=family, fn=fn)
        for op in ops:
            if op in _RULES:
                raise DuplicateRuleError(
                    f"{op} already has a rule ({_RULES[op].fn.__qualname__} in "
                    f"{_RULES[op].family}); each op has exactly one"
                )
            _RULES[op] = rule
        return fn

    return decorate


def unregister(*ops: str) -> None:
    """Remove the rules of `ops` (names given to `register`); unknown names are an error."""
    missing = [op for op in ops if op not in _RULES]
    if missing:
        raise KeyError(f"no rule registered for {', '.join(missing)}")
    for op in ops:
        del _RULES[op]


def register_zero(*ops: str, reason: str) -> None:
    """Register ops that perform no arithmetic (data movement, creation)."""

    def zero(*_args: Any, out: Any = None) -> OpCost:
        return ZERO

    zero.__qualname__ = zero.__name__ = f"zero_{reason.replace(' ', '_')}"
    zero.__module__ = _caller_module()
    register(*ops, formula=f"0 ({reason})")(zero)


def _caller_module() -> str:
    import inspect

    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None and frame.f_back.f_back is not None
    return str(frame.f_back.f_back.f_globals.get("__name__", __name__))


def lookup(name: str) -> Rule | None:
    return _RULES.get(name)


def rules() -> Iterator[Rule]:
    """Every registered rule once, in registration order."""
    seen: set[int] = set()
    for rule in _RULES.values():
        if id(rule) not in seen:
            seen.add(id(rule))
            yield rule


def numel(shape: Sequence[int]) -> int:
    return math.prod(shape)


def contraction(macs: int, outputs: int, *, bias: bool = False) -> OpCost:
    """A sum of products: `macs` multiplies reduced into `outputs` values.

    Each output of n products needs n multiplies and n - 1 adds, so the exact
    count is 2 * macs - outputs; adding a bias to each output restores the
    missing add: 2 * macs (the article's "bias removes the -1").
    """
    return OpCost(macs=macs, flops=2 * macs - (0 if bias else outputs))
