"""Pooling, forward and backward: max, average and adaptive, 1d/2d/3d.

Forward, the article's rule: every output element reads a window of
`prod(kernel)` inputs (K^2 in 2d) and costs that many FLOPs, for max
(compares) and average pooling alike (K^2 - 1 adds and a divide), whatever
the stride, padding or dilation. Adaptive pooling has windows of varying
size: along a dim of In inputs and Out outputs, output i covers
[floor(i*In/Out), ceil((i+1)*In/Out)); windows are separable, so the sum of
all window sizes is the product over dims of the per-dim sums, and an
adaptive pool costs that sum per (batch, channel) plane.

Backward ops scatter gradients into a zeroed gradient of the input, one add
per value scattered (which input receives it may depend on the data):
max pooling 1 add per output element (into its argmax); average pooling a
divide and one add per window element, per output element.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memflops.flops.registry import OpCost, RuleFn, numel, register, register_zero


def window(kernel: int | Sequence[int], dims: int) -> int:
    """Elements in one pooling window; a single size (or one-element list) is square."""
    sizes = [kernel] if isinstance(kernel, int) else list(kernel)
    if len(sizes) == 1:
        sizes *= dims
    return numel(sizes)


def _first(out: Any) -> Any:
    """The pooled values of an op returning (values, indices)."""
    if isinstance(out, (list, tuple)) and out and isinstance(out[0], (list, tuple)):
        return out[0]
    return out


def adaptive_window_sum(size_in: int, size_out: int) -> int:
    """Sum over outputs i of the window length ceil((i+1)*In/Out) - floor(i*In/Out)."""
    return sum(
        -(-(i + 1) * size_in // size_out) - (i * size_in // size_out) for i in range(size_out)
    )


def adaptive_windows(x: Sequence[int], out: Sequence[int], dims: int) -> int:
    """Total window elements of an adaptive pool of `x` to `out` over the last `dims` dims."""
    planes = numel(x[: len(x) - dims])
    total = planes
    for size_in, size_out in zip(x[len(x) - dims:], out[len(out) - dims:], strict=True):
        total *= adaptive_window_sum(size_in, size_out)
    return total


def _fixed_window(dims: int) -> RuleFn:
    def rule(x: Any, kernel: int | Sequence[int], *_: Any, out: Any) -> OpCost:
        return OpCost(flops=numel(_first(out)) * window(kernel, dims))

    rule.__name__ = rule.__qualname__ = f"pool{dims}d"
    return rule


for _dims in (1, 2, 3):
    register(
        f"aten.max_pool{_dims}d", f"aten.max_pool{_dims}d_with_indices",
        f"aten.avg_pool{_dims}d",
        formula=f"out.numel * prod(kernel): the article's K^{_dims} per output element, for max"
        " (compares) and average (adds and a divide) pooling alike",
    )(_fixed_window(_dims))


@register(
    "aten.max_pool2d_with_indices_backward", "aten.max_pool3d_with_indices_backward",
    formula="grad_out.numel adds (each gradient scattered into its argmax)",
)
def max_pool_backward(grad: Any, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=numel(grad))


def _avg_backward(dims: int) -> RuleFn:
    def rule(grad: Any, x: Any, kernel: int | Sequence[int], *_: Any, out: Any) -> OpCost:
        return OpCost(flops=numel(grad) * (window(kernel, dims) + 1))

    rule.__name__ = rule.__qualname__ = f"avg_pool{dims}d_backward"
    return rule


for _dims in (2, 3):
    register(
        f"aten.avg_pool{_dims}d_backward",
        formula="grad_out.numel * (prod(kernel) + 1): a divide, then one add per window"
        " element",
    )(_avg_backward(_dims))


# --- adaptive pooling ----------------------------------------------------------


def _adaptive(dims: int) -> RuleFn:
    def rule(x: Any, *_: Any, out: Any) -> OpCost:
        return OpCost(flops=adaptive_windows(x, _first(out), dims))

    rule.__name__ = rule.__qualname__ = f"adaptive_pool{dims}d"
    return rule


def _adaptive_avg_backward(dims: int) -> RuleFn:
    def rule(grad: Any, x: Any, *_: Any, out: Any) -> OpCost:
        return OpCost(flops=adaptive_windows(x, grad, dims) + numel(grad))

    rule.__name__ = rule.__qualname__ = f"adaptive_avg_pool{dims}d_backward"
    return rule


for _dims in (2, 3):
    register(
        f"aten._adaptive_avg_pool{_dims}d", f"aten.adaptive_max_pool{_dims}d",
        formula="B*C * prod over dims of sum_i (end_i - start_i), start_i = floor(i*In/Out),"
        " end_i = ceil((i+1)*In/Out): the exact window size per output element",
    )(_adaptive(_dims))
    register(
        f"aten._adaptive_avg_pool{_dims}d_backward",
        formula="the forward's window sum (adds) + grad_out.numel (divides)",
    )(_adaptive_avg_backward(_dims))
    register(
        f"aten.adaptive_max_pool{_dims}d_backward",
        formula="grad_out.numel adds (each gradient scattered into its argmax)",
    )(max_pool_backward)

register_zero(
    "aten.max_unpool2d", "aten.max_unpool3d",
    reason="scatters values to saved positions, no arithmetic",
)
