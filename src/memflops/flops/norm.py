"""Normalisation layers: batch, layer, group and RMS norm, forward and backward.

Counted per input element, as the article counts batch norm; the affine
scale and shift (gamma, beta) are not counted (the article leaves them
out), nor is the per-channel or per-row work that finishes the statistics
(dividing the sums by N, adding eps, the square root, updating the
running statistics), which is independent of the spatial size.

    batch statistics (BN train, LayerNorm, GroupNorm):
        mean 1 add, variance 1 add + 1 mul, normalise 1 sub + 1 div = 5
    running statistics (BN eval): normalise 1 sub + 1 div = 2
    RMSNorm: square 1 mul, sum 1 add, normalise 1 div = 3

Backward, per element, with x_hat = (x - mean) * rstd recomputed (2 per
element) and the two sums of the standard formula
`gx = rstd * (g - mean(g) - x_hat * mean(g * x_hat))`:

    BN with batch statistics: x_hat 2, sum(g) 1, sum(g * x_hat) 2, combine 4
        (mul, 2 subs, mul) = 9 for grad_input; the two sums *are*
        grad_bias and grad_weight, so those cost nothing more (alone:
        grad_weight 4, grad_bias 1).
    BN with running statistics: grad_input = g * rstd 1; grad_weight 4;
        grad_bias 1.
    LayerNorm / GroupNorm: grad_input 9, +1 when a weight scales g first
        (g * gamma); grad_weight sum(g * x_hat) over the other axis 2
        (4 without grad_input, recomputing x_hat); grad_bias 1.
    RMSNorm: x_hat = x * rstd 1, sum(g * x_hat) 2, combine 3 (mul, sub, mul)
        = 6 for grad_input (+1 with a weight); grad_weight 2 (3 alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memflops.flops.registry import OpCost, numel, register

BATCH_STATS = 5
RUNNING_STATS = 2
RMS = 3


def _first_bool(args: Sequence[Any]) -> bool:
    """The `training` flag: the first bool argument of every batch-norm schema."""
    return next((a for a in args if isinstance(a, bool)), True)


@register(
    "aten.native_batch_norm", "aten._native_batch_norm_legit",
    "aten._native_batch_norm_legit_functional",
    formula="training: 5 per element (mean 1 add; variance 1 add + 1 mul; normalise 1 sub"
    " + 1 div); running statistics: 2 per element (sub, div); gamma/beta not counted",
)
def batch_norm(x: Any, *args: Any, out: Any) -> OpCost:
    per_element = BATCH_STATS if _first_bool(args) else RUNNING_STATS
    return OpCost(flops=per_element * numel(x))


@register(
    "aten._native_batch_norm_legit_no_training",
    formula="running statistics: 2 per element (sub, div)",
)
def batch_norm_eval(x: Any, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=RUNNING_STATS * numel(x))


@register(
    "aten._batch_norm_with_update", "aten._batch_norm_with_update_functional",
    formula="batch statistics: 5 per element",
)
def batch_norm_with_update(x: Any, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=BATCH_STATS * numel(x))


@register(
    "aten._batch_norm_no_update",
    formula="running statistics given: 2 per element; none (batch statistics): 5",
)
def batch_norm_no_update(x: Any, weight: Any, bias: Any, running_mean: Any, *_: Any,
                         out: Any) -> OpCost:
    per_element = RUNNING_STATS if running_mean is not None else BATCH_STATS
    return OpCost(flops=per_element * numel(x))


@register(
    "aten.batch_norm_stats",
    formula="mean 1 add, variance 1 add + 1 mul: 3 per element",
)
def batch_norm_stats(x: Any, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=3 * numel(x))


@register("aten.batch_norm_elemt", formula="normalise: 2 per element (sub, mul by invstd)")
def batch_norm_elemt(x: Any, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=RUNNING_STATS * numel(x))


def batch_norm_grad(elements: int, mask: Sequence[bool], batch_stats: bool) -> int:
    """FLOPs of a batch-norm backward (see the module docstring)."""
    grad_input, grad_weight, grad_bias = (bool(m) for m in mask)
    if batch_stats and grad_input:
        return 9 * elements
    per_element = (1 if grad_input else 0) + (4 if grad_weight else 0) + (1 if grad_bias else 0)
    return per_element * elements


@register(
    "aten.native_batch_norm_backward",
    formula="batch statistics: 9 per element with grad_input (x_hat 2, sum(g) 1,"
    " sum(g*x_hat) 2, combine 4; the sums are grad_bias and grad_weight), otherwise"
    " grad_weight 4 + grad_bias 1; running statistics: grad_input 1 + grad_weight 4"
    " + grad_bias 1",
)
def batch_norm_backward(
    grad: Any, x: Any, weight: Any, running_mean: Any, running_var: Any, save_mean: Any,
    save_invstd: Any, train: bool, eps: Any, mask: Sequence[bool], *_: Any, out: Any,
) -> OpCost:
    return OpCost(flops=batch_norm_grad(numel(x), mask, bool(train)))


@register(
    "aten.batch_norm_backward",
    formula="as native_batch_norm_backward, batch statistics when `update` (training)",
)
def batch_norm_backward_update(
    grad: Any, x: Any, weight: Any, running_mean: Any, running_var: Any, save_mean: Any,
    save_var: Any, update: bool, eps: Any, mask: Sequence[bool], *_: Any, out: Any,
) -> OpCost:
    # `update` is true for training with running statistics; training without
    # running statistics passes none of them and still uses the batch's.
    batch_stats = bool(update) or running_mean is None
    return OpCost(flops=batch_norm_grad(numel(x), mask, batch_stats))


# --- layer, group and RMS norm --------------------------------------------------


@register(
    "aten.native_layer_norm", "aten.native_group_norm",
    formula="5 per element (mean 1 add; variance 1 add + 1 mul; normalise 1 sub + 1 div);"
    " gamma/beta not counted",
)
def layer_norm(x: Any, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=BATCH_STATS * numel(x))


def stats_norm_grad(elements: int, mask: Sequence[bool], has_weight: bool) -> int:
    """FLOPs of a LayerNorm / GroupNorm backward (see the module docstring)."""
    grad_input, grad_weight, grad_bias = (bool(m) for m in mask)
    per_element = (9 + has_weight) if grad_input else 0
    if grad_weight:
        per_element += 2 if grad_input else 4
    if grad_bias:
        per_element += 1
    return per_element * elements


@register(
    "aten.native_layer_norm_backward",
    formula="grad_input 9 per element (+1 with a weight); grad_weight 2 (4 without"
    " grad_input); grad_bias 1",
)
def layer_norm_backward(
    grad: Any, x: Any, normalized_shape: Any, mean: Any, rstd: Any, weight: Any, bias: Any,
    mask: Sequence[bool], *_: Any, out: Any,
) -> OpCost:
    return OpCost(flops=stats_norm_grad(numel(x), mask, weight is not None))


@register(
    "aten.native_group_norm_backward",
    formula="as native_layer_norm_backward",
)
def group_norm_backward(
    grad: Any, x: Any, mean: Any, rstd: Any, weight: Any, n: Any, c: Any, hxw: Any,
    group: Any, mask: Sequence[bool], *_: Any, out: Any,
) -> OpCost:
    return OpCost(flops=stats_norm_grad(numel(x), mask, weight is not None))


@register(
    "aten._fused_rms_norm",
    formula="3 per element (square 1 mul, sum 1 add, normalise 1 div); gamma not counted",
)
def rms_norm(x: Any, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=RMS * numel(x))


@register(
    "aten._fused_rms_norm_backward",
    formula="grad_input 6 per element (x_hat 1, sum(g*x_hat) 2, combine 3; +1 with a"
    " weight); grad_weight 2 (3 without grad_input)",
)
def rms_norm_backward(
    grad: Any, x: Any, normalized_shape: Any, rstd: Any, weight: Any, mask: Sequence[bool],
    *_: Any, out: Any,
) -> OpCost:
    grad_input, grad_weight = (bool(m) for m in mask)
    per_element = (6 + (weight is not None)) if grad_input else 0
    if grad_weight:
        per_element += 2 if grad_input else 3
    return OpCost(flops=per_element * numel(x))


@register(
    "aten._weight_norm_interface",
    formula="w = v * (g / ||v||) over the n elements of v in m rows (g's elements): "
    "norms 2n (squares, sums, roots), g / norm m, scaling n: 3n + m",
)
def weight_norm(v: Any, g: Any, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=3 * numel(v) + numel(g))


@register(
    "aten._weight_norm_interface_backward",
    formula="grad_g = sum(grad_w * v) / norm: n + (n - m) + m; grad_v = (g / norm) * "
    "(grad_w - v * (grad_g / norm)): 2m + 3n; total 5n + 2m",
)
def weight_norm_backward(grad_w: Any, v: Any, g: Any, norms: Any, *_: Any,
                         out: Any) -> OpCost:
    return OpCost(flops=5 * numel(v) + 2 * numel(g))
