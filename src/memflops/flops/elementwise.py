"""Elementwise arithmetic: one rule per op, counted per output element.

An elementwise op costs a fixed number of FLOPs for every element it
writes, so with broadcasting the output (not the inputs) sets the count:
`(B, C, H, W) + (C, 1, 1)` is `B*C*H*W` adds. Every add, subtract,
multiply, divide, compare, logical operation and elementary function
(`exp`, `log`, `sqrt`, `sin`, `erf`, ...) is one FLOP. A select
(`where`, `masked_fill`) moves data and costs nothing. In-place variants
(`add_`) and the `_foreach_` list forms the optimizers use share the rule
of their op; a list form counts the elements of its first list.

The factories `pointwise` and `op_names` are shared with the activation
family, so that a family of ops registers in one line.
"""

from __future__ import annotations

from typing import Any

from memflops.flops.registry import OpCost, RuleFn, numel, register, register_zero


def op_names(*bases: str, inplace: bool = True) -> tuple[str, ...]:
    """`aten.X` for each base name, and its in-place form `aten.X_` unless told not to."""
    return tuple(f"aten.{form}" for base in bases for form in
                 ((base, f"{base}_") if inplace else (base,)))


def foreach_names(*bases: str) -> tuple[str, ...]:
    """The list forms of each base name: `aten._foreach_X` and `aten._foreach_X_`."""
    return op_names(*(f"_foreach_{base}" for base in bases))


def elements(first: Any, out: Any) -> int:
    """Elements an elementwise op writes: its (first) output, or for a list op its first list."""
    if isinstance(first, list):
        return sum(numel(shape) for shape in first if shape is not None)
    if isinstance(out, (list, tuple)) and out and isinstance(out[0], (list, tuple)):
        return numel(out[0])  # several outputs (log_sigmoid_forward: output, buffer)
    return numel(out)


def is_not_one(value: Any) -> bool:
    """True when a scalar factor (alpha, value) is a number other than 1."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value != 1


def pointwise(per_element: int, *, module: str = __name__) -> RuleFn:
    """A rule costing `per_element` FLOPs per output element.

    `module` names the family the rule is filed under (the registry takes it
    from the function's module).
    """

    def rule(*args: Any, out: Any) -> OpCost:
        return OpCost(flops=per_element * elements(args[0] if args else None, out))

    rule.__module__ = module
    rule.__name__ = rule.__qualname__ = f"pointwise_{per_element}"
    return rule


# --- one FLOP per output element --------------------------------------------

register(
    *op_names("mul", "neg", "abs", "reciprocal", "sqrt", "rsqrt", "exp", "exp2",
              "expm1", "log", "log2", "log10", "log1p", "sin", "cos", "tan", "asin", "acos",
              "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "erf", "erfc", "erfinv",
              "sign", "sgn", "floor", "ceil", "round", "trunc", "frac", "square", "pow",
              "clamp_min", "clamp_max", "remainder", "fmod", "atan2", "hypot", "copysign",
              "floor_divide"),
    *op_names("maximum", "minimum", "fmax", "fmin", inplace=False),
    *foreach_names("mul", "div", "neg", "abs", "reciprocal", "sqrt", "rsqrt", "exp", "log",
                   "sign", "pow", "maximum", "minimum", "clamp_min", "clamp_max"),
    formula="1 per output element (one multiply, divide, negate, compare or elementary"
    " function: pow, sqrt, exp, log, trig and erf are one FLOP each)",
)(pointwise(1))

register(
    *op_names("eq", "ne", "lt", "gt", "le", "ge", "logical_and", "logical_or",
              "logical_xor", "logical_not", "bitwise_and", "bitwise_or", "bitwise_xor",
              "bitwise_not"),
    *op_names("isnan", "isinf", "isfinite", "isneginf", "isposinf", "signbit", inplace=False),
    formula="1 per output element (a compare, test or logical operation)",
)(pointwise(1))


# --- ops with scalar factors -------------------------------------------------


@register(
    *op_names("add", "sub"), *foreach_names("add", "sub"), *op_names("rsub", inplace=False),
    formula="1 per output element; +1 (a multiply) when alpha != 1",
)
def add(a: Any, b: Any = None, alpha: Any = 1, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=(1 + is_not_one(alpha)) * elements(a, out))


@register(
    *op_names("div"),
    formula="1 per output element; +1 (the rounding) with rounding_mode 'floor' or 'trunc'",
)
def div(a: Any, b: Any = None, rounding_mode: Any = None, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=(1 + isinstance(rounding_mode, str)) * elements(a, out))


@register(
    *op_names("addcmul", "addcdiv"), *foreach_names("addcmul", "addcdiv"),
    formula="self + value * t1 * t2 (or t1 / t2): 2 per output element; +1 when value != 1"
    " (list forms: per tensor, by its own value)",
)
def addcmul(a: Any, t1: Any = None, t2: Any = None, value: Any = 1, *_: Any,
            out: Any) -> OpCost:
    if isinstance(a, list) and isinstance(value, list):  # one factor per tensor
        pairs = zip(a, value, strict=True)
        return OpCost(flops=sum((2 + is_not_one(v)) * numel(t) for t, v in pairs))
    # `value` may also be a tensor of per-tensor factors (_foreach_addcmul.Tensor)
    scaled = is_not_one(value) or (isinstance(value, tuple) and isinstance(a, list))
    return OpCost(flops=(2 + scaled) * elements(a, out))


@register(
    *op_names("lerp"), *foreach_names("lerp"),
    formula="start + weight * (end - start): 3 per output element (sub, mul, add)",
)
def lerp(*args: Any, out: Any) -> OpCost:
    return OpCost(flops=3 * elements(args[0], out))


@register(
    *op_names("clamp", "clip"),
    formula="1 compare per output element per given bound (min, max): 0, 1 or 2",
)
def clamp(x: Any, low: Any = None, high: Any = None, *_: Any, out: Any) -> OpCost:
    bounds = (low is not None) + (high is not None)
    return OpCost(flops=bounds * elements(x, out))


@register(
    "aten.nan_to_num", "aten.nan_to_num_",
    formula="3 per output element (tests for NaN, +inf and -inf; the replacement is a select)",
)
def nan_to_num(x: Any, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=3 * elements(x, out))


register(
    *op_names("xlogy"),
    formula="x * log(y), 0 where x == 0: 3 per output element (compare, log, mul)",
)(pointwise(3))


register_zero(
    "aten.where", "aten.masked_fill", "aten.masked_fill_",
    reason="a select: each output element is copied from one input, no arithmetic",
)



register(
    "aten.polar",
    formula="abs * (cos(angle) + i sin(angle)): a cos, a sin and two multiplies = 4 per element",
)(pointwise(4))
