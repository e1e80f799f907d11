"""Checks for non-finite numbers, answered "every number is finite".

Models guard against overflow and NaN with checks whose answer is a value:
`if not torch.isfinite(x).all(): x = x.clamp(...)` (DETR and its family, in
training), `if torch.isinf(x).any() or torch.isnan(x).any(): ...`,
`assert x.isnan().sum() == 0`. Fake tensors have no values, so memflops
answers such a check as a working model does: every number is finite.

A boolean tensor made by a finiteness test has a known constant value, and
the value follows it through logical ops, reductions and comparisons with a
number; reading it (`.item()`, `bool()`, an `if`) gives that value:

- `isnan`, `isinf`, `isposinf`, `isneginf`: all False; `isfinite`: all True;
- `isfinite` as PyTorch decomposes it: `x == x` all True, `x != x` all
  False, `abs(x) != inf` all True, `abs(x) == inf` all False;
- `not`, `and` (`&`, `*` of booleans), `or` (`|`); `any`, `all`, `amax`,
  `amin` of a non-empty tensor keep the value; `sum` multiplies it by the
  elements summed; `==`, `!=`, `<`, ... with a number compare it; copies and
  views keep it.

Any other value read still raises `DataDependentError`. `reads` counts the
values read, which the report states as an assumption.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import torch

from memflops.capture.values.tensor_table import TensorTable

Known = bool | int
Rule = Callable[["FiniteChecks", tuple[Any, ...], torch.Tensor], Known | None]
"""(checks, the op's arguments, its output) -> the output's value, None if unknown."""

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "aten.eq": operator.eq, "aten.ne": operator.ne, "aten.lt": operator.lt,
    "aten.le": operator.le, "aten.gt": operator.gt, "aten.ge": operator.ge,
}


def _constant(value: Known) -> Rule:
    return lambda checks, args, out: value


def _same(checks: FiniteChecks, args: tuple[Any, ...], out: torch.Tensor) -> Known | None:
    """A copy, view or reduction of a non-empty tensor keeps its value."""
    x = args[0]
    if not isinstance(x, torch.Tensor) or x.numel() == 0:
        return None
    return checks.value(x)


def _sum(checks: FiniteChecks, args: tuple[Any, ...], out: torch.Tensor) -> Known | None:
    value = _same(checks, args, out)
    if value is None:
        return None
    return int(value) * (int(args[0].numel()) // max(1, out.numel()))


def _logical(combine: Callable[[bool, bool], bool]) -> Rule:
    def rule(checks: FiniteChecks, args: tuple[Any, ...], out: torch.Tensor) -> Known | None:
        a, b = (checks.value(x) if isinstance(x, torch.Tensor) else x for x in args[:2])
        if not isinstance(a, bool) or not isinstance(b, bool):
            return None
        return combine(a, b)

    return rule


def _not(checks: FiniteChecks, args: tuple[Any, ...], out: torch.Tensor) -> Known | None:
    value = checks.value(args[0])
    return (not value) if isinstance(value, bool) else None


def _compare(name: str) -> Rule:
    compare = _COMPARE[name]

    def rule(checks: FiniteChecks, args: tuple[Any, ...], out: torch.Tensor) -> Known | None:
        x, other = args[0], args[1]
        if isinstance(other, torch.Tensor):
            if other is x and name in ("aten.eq", "aten.ne"):  # the NaN test x == x
                return name == "aten.eq"
            return None
        if isinstance(other, float) and math.isinf(other):  # abs(x) != inf: finite
            return compare(0.0, other) if checks.is_abs(x) else None
        value = checks.value(x)
        return None if value is None else compare(value, other)

    return rule


RULES: dict[str, Rule] = {
    "aten.isnan": _constant(False), "aten.isinf": _constant(False),
    "aten.isposinf": _constant(False), "aten.isneginf": _constant(False),
    "aten.isfinite": _constant(True),
    "aten.logical_not": _not, "aten.bitwise_not": _not,
    "aten.logical_and": _logical(operator.and_), "aten.bitwise_and": _logical(operator.and_),
    "aten.mul": _logical(operator.and_),
    "aten.logical_or": _logical(operator.or_), "aten.bitwise_or": _logical(operator.or_),
    "aten.any": _same, "aten.all": _same, "aten._is_all_true": _same,
    "aten._is_any_true": _same, "aten.amax": _same, "aten.amin": _same,
    "aten.clone": _same, "aten._to_copy": _same, "aten.view": _same, "aten.reshape": _same,
    "aten.squeeze": _same, "aten.unsqueeze": _same, "aten.expand": _same,
    "aten.alias": _same, "aten.select": _same, "aten.slice": _same,
    "aten.sum": _sum,
    **{name: _compare(name) for name in _COMPARE},
}


class FiniteChecks:
    """Known values of the boolean tensors finiteness tests make (module docstring)."""

    def __init__(self) -> None:
        self._known: TensorTable[Known] = TensorTable()
        self._abs: TensorTable[bool] = TensorTable()
        self.reads = 0

    def value(self, t: Any) -> Known | None:
        return self._known.get(t)

    def is_abs(self, t: Any) -> bool:
        return self._abs.get(t) is not None

    def observe(self, name: str, args: tuple[Any, ...], out: Any) -> None:
        """Note `out`'s value if `name` on `args` makes a known one."""
        if not isinstance(out, torch.Tensor):
            return
        if name == "aten.abs":
            self._abs.set(out, True)
            return
        rule = RULES.get(name)
        value = rule(self, args, out) if rule is not None else None
        if value is not None:
            self._known.set(out, value)

    def read(self, t: Any) -> Known | float | None:
        """The value `.item()` of `t` reads, if known (and count the read)."""
        value = self.value(t)
        if value is None:
            return None
        self.reads += 1
        if isinstance(t, torch.Tensor) and t.dtype.is_floating_point:
            return float(value)
        return value if t.dtype is torch.bool else int(value)
