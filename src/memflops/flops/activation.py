"""Activations, softmax and dropout, forward and backward.

Each count is per output element and follows the function's formula term
by term (one FLOP per add, multiply, divide, compare or elementary
function, as in `elementwise`). A branch that depends on the sign of the
input (relu, leaky_relu, elu) is counted at its costlier side, since the
data decides which side runs. Constants such as `sqrt(2/pi)` are free.

    sigmoid(x) = 1 / (1 + exp(-x))               neg, exp, add, div: 4
    gelu(x)    = x/2 * (1 + erf(x / sqrt 2))     div, erf, add, mul, mul: 5
    gelu_tanh  = x/2 * (1 + tanh(k0 (x + k1 x^3)))
                 x*x, *x, *k1, +x, *k0, tanh, +1, *x, *0.5: 9
    silu(x)    = x * sigmoid(x)                  4 + 1: 5

Softmax over a dim of size n, for R = numel / n rows: a max (n - 1
compares), n subtractions, n exps, a sum (n - 1 adds) and n divisions:
R * (5n - 2). The backward `y * (g - sum(g * y))` is R * (4n - 1).
"""

from __future__ import annotations

from typing import Any

from memflops.flops.elementwise import elements, op_names, pointwise
from memflops.flops.registry import OpCost, numel, register

register(
    *op_names("relu", "threshold"), "aten.threshold_backward",
    formula="1 compare per element (backward: 1 compare selecting the gradient)",
)(pointwise(1, module=__name__))

register(
    *op_names("sigmoid"), "aten._foreach_sigmoid", "aten._foreach_sigmoid_",
    formula="1 / (1 + exp(-x)): 4 per element (neg, exp, add, div)",
)(pointwise(4, module=__name__))
register(
    "aten.sigmoid_backward",
    formula="grad * y * (1 - y): 3 per element",
)(pointwise(3, module=__name__))

register(
    *op_names("tanh"), "aten._foreach_tanh", "aten._foreach_tanh_",
    formula="1 per element (an elementary function)",
)(pointwise(1, module=__name__))
register(
    "aten.tanh_backward",
    formula="grad * (1 - y^2): 3 per element",
)(pointwise(3, module=__name__))

register(
    *op_names("silu"),
    formula="x * sigmoid(x): 5 per element",
)(pointwise(5, module=__name__))
register(
    "aten.silu_backward",
    formula="grad * s * (1 + x * (1 - s)), s = sigmoid(x): 4 + 5 = 9 per element",
)(pointwise(9, module=__name__))

register(
    *op_names("hardtanh"), "aten.hardtanh_backward",
    formula="clamp to [min, max]: 2 compares per element (backward: 2 compares, in range)",
)(pointwise(2, module=__name__))

register(
    *op_names("hardsigmoid"),
    formula="clamp(x + 3, 0, 6) / 6: 4 per element (add, 2 compares, div)",
)(pointwise(4, module=__name__))
register(
    "aten.hardsigmoid_backward",
    formula="grad / 6 where -3 < x < 3: 3 per element (2 compares, div)",
)(pointwise(3, module=__name__))

register(
    *op_names("hardswish"),
    formula="x * clamp(x + 3, 0, 6) / 6: 5 per element (add, 2 compares, mul, div)",
)(pointwise(5, module=__name__))
register(
    "aten.hardswish_backward",
    formula="grad * (2x + 3) / 6 in (-3, 3), grad above: 6 per element"
    " (2 compares, mul, add, div, mul)",
)(pointwise(6, module=__name__))

register(
    *op_names("leaky_relu"), "aten.leaky_relu_backward",
    formula="x > 0 ? x : slope * x: 2 per element (compare, mul); backward likewise",
)(pointwise(2, module=__name__))

register(
    *op_names("elu"),
    formula="scale * (x > 0 ? x : alpha * (exp(x * input_scale) - 1)): 6 per element",
)(pointwise(6, module=__name__))
register(
    "aten.elu_backward",
    formula="grad * input_scale * (y + alpha * scale) on the negative side: 4 per element"
    " (compare, add, 2 mul)",
)(pointwise(4, module=__name__))

register(
    *op_names("celu"),
    formula="x > 0 ? x : alpha * (exp(x / alpha) - 1): 5 per element (compare, div, exp,"
    " sub, mul)",
)(pointwise(5, module=__name__))

register(
    "aten.softplus",
    formula="x * beta > threshold ? x : log1p(exp(x * beta)) / beta: 5 per element",
)(pointwise(5, module=__name__))
register(
    "aten.softplus_backward",
    formula="grad * z / (z + 1), z = exp(x * beta): 6 per element (mul, compare, exp,"
    " add, div, mul)",
)(pointwise(6, module=__name__))

register(
    *op_names("mish"),
    formula="x * tanh(softplus(x)): 5 per element (exp, add, log, tanh, mul)",
)(pointwise(5, module=__name__))
register(
    "aten.mish_backward",
    formula="grad * (t + x * sigmoid(x) * (1 - t^2)), t = tanh(softplus(x)):"
    " 14 per element (softplus 3, tanh 1, sigmoid 4, 6 to combine)",
)(pointwise(14, module=__name__))

register(
    "aten.hardshrink", "aten.hardshrink_backward",
    formula="|x| > lambda ? x : 0: 2 per element (abs, compare); backward likewise",
)(pointwise(2, module=__name__))
register(
    "aten.softshrink",
    formula="x - sign(x) * lambda where |x| > lambda: 3 per element (abs, compare, sub)",
)(pointwise(3, module=__name__))
register(
    "aten.softshrink_backward",
    formula="grad where |x| > lambda: 2 per element (abs, compare)",
)(pointwise(2, module=__name__))

register(
    "aten.log_sigmoid_forward",
    formula="min(x, 0) - log1p(exp(-|x|)): 6 per element (abs, neg, exp, log1p, min, sub)",
)(pointwise(6, module=__name__))
register(
    "aten.log_sigmoid_backward",
    formula="grad * sigmoid(-x): 6 per element (neg, sigmoid 4, mul)",
)(pointwise(6, module=__name__))


@register("aten._prelu_kernel", formula="x > 0 ? x : w * x: 2 per element (compare, mul)")
def prelu(x: Any, weight: Any, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=2 * numel(out))


@register(
    "aten._prelu_kernel_backward",
    formula="grad_input: grad or w * grad, grad_weight: x * grad where x <= 0:"
    " 3 per element (compare, 2 mul)",
)
def prelu_backward(grad: Any, x: Any, weight: Any, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=3 * numel(grad))


# --- gelu ------------------------------------------------------------------


@register(
    "aten.gelu", "aten.gelu_",
    formula="approximate='none': x/2 * (1 + erf(x / sqrt 2)): 5 per element;"
    " approximate='tanh': x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))): 9 per element",
)
def gelu(x: Any, approximate: Any = "none", *_: Any, out: Any) -> OpCost:
    return OpCost(flops=(9 if approximate == "tanh" else 5) * elements(x, out))


@register(
    "aten.gelu_backward",
    formula="approximate='none': grad * (Phi(x) + x * phi(x)): Phi 4 (div, erf, add, mul),"
    " phi 4 (square, mul, exp, mul), 3 to combine: 11 per element; approximate='tanh':"
    " tanh argument 5, tanh 1, 0.5 * (1 + t) 2, 1 - t^2 2, d(argument)/dx 3,"
    " 0.5 * x * (1 - t^2) * d/dx 3, sum 1, grad 1: 18 per element",
)
def gelu_backward(grad: Any, x: Any, approximate: Any = "none", *_: Any, out: Any) -> OpCost:
    return OpCost(flops=(18 if approximate == "tanh" else 11) * numel(grad))


# --- softmax -------------------------------------------------------------


def rows_and_length(shape: Any, dim: int) -> tuple[int, int]:
    """(rows, n): the number of slices along `dim` and their length."""
    if len(shape) == 0:
        return 1, 1
    n = shape[dim]
    total = numel(shape)
    return (total // n if n else 0), n


@register(
    "aten._softmax",
    formula="R rows of n: max R*(n-1) compares, R*n subs, R*n exps, R*(n-1) adds,"
    " R*n divs = R*(5n - 2)",
)
def softmax(x: Any, dim: int, *_: Any, out: Any) -> OpCost:
    rows, n = rows_and_length(x, dim)
    return OpCost(flops=rows * max(5 * n - 2, 0))


@register(
    "aten._log_softmax",
    formula="x - max - log(sum(exp(x - max))): max R*(n-1), subs R*n, exps R*n,"
    " adds R*(n-1), logs R, subs R*n = R*(5n - 1)",
)
def log_softmax(x: Any, dim: int, *_: Any, out: Any) -> OpCost:
    rows, n = rows_and_length(x, dim)
    return OpCost(flops=rows * max(5 * n - 1, 0))


@register(
    "aten._safe_softmax",
    formula="softmax R*(5n - 2), + the all -inf row check (R*n compares, R*(n-1) ands;"
    " zeroing such rows is a select) = R*(7n - 3)",
)
def safe_softmax(x: Any, dim: int, *_: Any, out: Any) -> OpCost:
    rows, n = rows_and_length(x, dim)
    return OpCost(flops=rows * max(7 * n - 3, 0))


@register(
    "aten._softmax_backward_data",
    formula="y * (g - sum(g * y)): R*n muls, R*(n-1) adds, R*n subs, R*n muls = R*(4n - 1)",
)
def softmax_backward(grad: Any, y: Any, dim: int, *_: Any, out: Any) -> OpCost:
    rows, n = rows_and_length(grad, dim)
    return OpCost(flops=rows * max(4 * n - 1, 0))


@register(
    "aten._log_softmax_backward_data",
    formula="g - exp(y) * sum(g): R*(n-1) adds, R*n exps, R*n muls, R*n subs = R*(4n - 1)",
)
def log_softmax_backward(grad: Any, y: Any, dim: int, *_: Any, out: Any) -> OpCost:
    rows, n = rows_and_length(grad, dim)
    return OpCost(flops=rows * max(4 * n - 1, 0))


# --- dropout ---------------------------------------------------------------


@register(
    "aten.native_dropout",
    formula="x * mask * 1/(1-p): 2 per element when training (drawing the mask is random"
    " number generation, 0); 0 when train=False (a copy)",
)
def native_dropout(x: Any, p: Any, train: Any = None, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=0 if train is False else 2 * numel(x))


@register("aten.native_dropout_backward", formula="grad * mask * scale: 2 per element")
def native_dropout_backward(grad: Any, mask: Any, scale: Any, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=2 * numel(grad))


@register(
    "aten.glu",
    formula="a * sigmoid(b) for the two halves: 5 per output element",
)
def glu(x: Any, dim: int = -1, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=5 * numel(out))


@register(
    "aten.glu_backward",
    formula="grad_a = g * s, grad_b = g * a * s * (1 - s), s = sigmoid(b):"
    " 9 per output element (sigmoid 4, 4 mul, sub)",
)
def glu_backward(grad: Any, x: Any, dim: int = -1, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=9 * numel(grad))
