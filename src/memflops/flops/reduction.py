"""Reductions, scans, norms and losses.

A reduction of n input elements into m outputs combines n - m pairs: n - m
adds for a sum (the article's dot product has K - 1 adds), n - m compares
for a max or an argmax, n - m multiplies for a product. What is done once
per output (the divide of a mean, the square root of a std) costs m:

    sum, prod, amax, amin, argmax, any, all    n - m
    mean                                       n - m adds + m divides = n
    var: mean n, deviations n subs, squares n muls, sum n - m, divide m = 4n
    std: var + m square roots = 4n + m
    logsumexp: max n - m, subs n, exps n, sum n - m, log m, add m = 4n
    vector 2-norm: squares n, sum n - m, square roots m = 2n

A scan (cumsum) of length L along its dim costs L - 1 per slice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memflops.flops.registry import OpCost, RuleFn, numel, register

_INF = float("inf")


def _first(out: Any) -> Any:
    """The first output of an op returning several (values, indices / var, mean)."""
    if isinstance(out, (list, tuple)) and out and isinstance(out[0], (list, tuple)):
        return out[0]
    return out


def reduction(per_input: int, per_output: int) -> RuleFn:
    """A rule costing `per_input * n + per_output * m` (n inputs reduced into m outputs)."""

    def rule(x: Any, *_: Any, out: Any) -> OpCost:
        return OpCost(flops=max(per_input * numel(x) + per_output * numel(_first(out)), 0))

    rule.__name__ = rule.__qualname__ = f"reduction_{per_input}n_{per_output}m"
    return rule


register(
    "aten.sum", "aten.prod", "aten.amax", "aten.amin", "aten.argmax", "aten.argmin",
    "aten.any", "aten.all",
    formula="n - m (n inputs reduced into m outputs: adds, multiplies, compares or logical ops)",
)(reduction(1, -1))

register(
    "aten.mean",
    formula="n - m adds + m divides = n",
)(reduction(1, 0))

register(
    "aten.nansum", "aten.count_nonzero",
    formula="n tests (isnan / != 0) + n - m adds = 2n - m",
)(reduction(2, -1))

register("aten.aminmax", formula="2 * (n - m) compares (a min and a max)")(reduction(2, -2))

register(
    "aten.var", "aten.var_mean",
    formula="mean n + n subs + n squares + (n - m) adds + m divides = 4n",
)(reduction(4, 0))

register(
    "aten.std", "aten.std_mean",
    formula="var 4n + m square roots = 4n + m",
)(reduction(4, 1))

register(
    "aten.logsumexp",
    formula="max n - m, n subs, n exps, sum n - m, m logs, m adds = 4n",
)(reduction(4, 0))


@register(
    "aten.max", "aten.min",
    formula="reduction: n - m compares; elementwise with a second tensor: 1 per output element",
)
def max_min(x: Any, other: Any = None, *_: Any, out: Any) -> OpCost:
    n, m = numel(x), numel(_first(out))
    if isinstance(other, (list, tuple)) and m >= n:  # max.other / min.other: elementwise
        return OpCost(flops=m)
    return OpCost(flops=max(n - m, 0))


def vector_norm_flops(n: int, m: int, order: Any) -> int:
    """FLOPs of an `order`-norm of n elements into m outputs."""
    if order is None or order == 2:
        return 2 * n  # n squares, n - m adds, m square roots
    if order in (1, 0, _INF, -_INF):
        return 2 * n - m  # n abs (or != 0 tests), n - m adds (or compares)
    return 3 * n  # n abs, n powers, n - m adds, m roots


@register(
    "aten.linalg_vector_norm", "aten.norm",
    formula="ord 2: n squares + (n - m) adds + m sqrt = 2n; ord 1, 0, inf: n abs (or tests)"
    " + (n - m) adds (or compares) = 2n - m; other p: n abs + n pow + (n - m) adds + m roots"
    " = 3n",
)
def vector_norm(x: Any, order: Any = 2, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=vector_norm_flops(numel(x), numel(_first(out)), order))


@register(
    "aten.cumsum", "aten.cumsum_", "aten.cumprod", "aten.cumprod_", "aten.cummax",
    "aten.cummin",
    formula="n - n/L (L - 1 adds, multiplies or compares per slice of length L along dim)",
)
def cumulative(x: Any, dim: int, *_: Any, out: Any) -> OpCost:
    if len(x) == 0:
        return OpCost()
    length = x[dim]
    total = numel(x)
    return OpCost(flops=total - (total // length if length else 0))


@register(
    "aten._foreach_norm",
    formula="per tensor as linalg_vector_norm to one value: ord 2: 2n",
)
def foreach_norm(tensors: Sequence[Any], order: Any = 2, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=sum(vector_norm_flops(numel(t), 1, order) for t in tensors))


# --- losses --------------------------------------------------------------------


def _reduced(n: int, reduction_mode: Any) -> int:
    """Reducing n per-element losses: none 0, mean n (n - 1 adds + 1 div), sum n - 1."""
    if reduction_mode == 1:
        return n
    if reduction_mode == 2:
        return max(n - 1, 0)
    return 0


@register(
    "aten.mse_loss",
    formula="(x - t)^2: 2 per element, then mean n or sum n - 1",
)
def mse_loss(x: Any, target: Any, reduction_mode: Any = 1, *_: Any, out: Any) -> OpCost:
    n = numel(x)
    return OpCost(flops=2 * n + _reduced(n, reduction_mode))


@register(
    "aten.mse_loss_backward",
    formula="2 * (x - t) * grad (/ n folded into the scalar): 3 per element",
)
def mse_loss_backward(grad: Any, x: Any, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=3 * numel(x))


@register(
    "aten.nll_loss_forward", "aten.nll_loss2d_forward",
    formula="N = target.numel picked values negated N; with a class weight N multiplies"
    " (+ N - 1 adds for the total weight); reduced by mean (N) or sum (N - 1)",
)
def nll_loss(x: Any, target: Any, weight: Any, reduction_mode: Any, *_: Any,
             out: Any) -> OpCost:
    n = numel(target)
    flops = n + _reduced(n, reduction_mode)
    if weight is not None:
        flops += n + (max(n - 1, 0) if reduction_mode == 1 else 0)
    return OpCost(flops=flops)


@register(
    "aten.nll_loss_backward", "aten.nll_loss2d_backward",
    formula="-grad (* weight) (/ total weight) scattered to the N target positions:"
    " 1 per target, +1 with a weight, +1 with mean reduction",
)
def nll_loss_backward(grad: Any, x: Any, target: Any, weight: Any, reduction_mode: Any,
                      *_: Any, out: Any) -> OpCost:
    n = numel(target)
    return OpCost(flops=n * (1 + (weight is not None) + (reduction_mode == 1)))


@register(
    "aten.smooth_l1_loss", "aten.huber_loss",
    formula="d = x - t, |d|, compare with beta, the quadratic side 0.5 * d^2 / beta (3):"
    " 6 per element, then mean n or sum n - 1",
)
def smooth_l1_loss(x: Any, target: Any, reduction_mode: Any = 1, *_: Any, out: Any) -> OpCost:
    n = numel(x)
    return OpCost(flops=6 * n + _reduced(n, reduction_mode))


@register(
    "aten.smooth_l1_loss_backward", "aten.huber_loss_backward",
    formula="d = x - t, |d|, compare, d / beta (or sign), * grad: 5 per element",
)
def smooth_l1_loss_backward(grad: Any, x: Any, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=5 * numel(x))


@register(
    "aten.binary_cross_entropy_with_logits",
    formula="(1 - t) * x + log1p(exp(-|x|)) + max(-x, 0): 10 per element (sub, mul, abs, neg,"
    " exp, log1p, neg, compare, 2 adds); pos_weight + 4 (1 + (pw - 1) * t, and its"
    " multiply); weight + 1; then mean n or sum n - 1",
)
def bce_with_logits(x: Any, target: Any, weight: Any = None, pos_weight: Any = None,
                    reduction_mode: Any = 1, *_: Any, out: Any) -> OpCost:
    n = numel(x)
    per_element = 10 + (4 if pos_weight is not None else 0) + (weight is not None)
    return OpCost(flops=per_element * n + _reduced(n, reduction_mode))


@register(
    "aten.binary_cross_entropy",
    formula="-(t * log(x) + (1 - t) * log(1 - x)), logs clamped at -100: 10 per element"
    " (2 logs, 2 compares, 2 subs, 2 muls, add, neg); weight + 1; then mean n or sum n - 1",
)
def bce(x: Any, target: Any, weight: Any = None, reduction_mode: Any = 1, *_: Any,
        out: Any) -> OpCost:
    n = numel(x)
    return OpCost(flops=(10 + (weight is not None)) * n + _reduced(n, reduction_mode))


@register(
    "aten.binary_cross_entropy_backward",
    formula="grad * (x - t) / max((1 - x) * x, eps): 6 per element (sub, sub, mul, compare,"
    " div, mul); weight + 1",
)
def bce_backward(grad: Any, x: Any, target: Any, weight: Any = None, *_: Any,
                 out: Any) -> OpCost:
    return OpCost(flops=(6 + (weight is not None)) * numel(x))


def _rows_and_length(x: Sequence[int], dim: int) -> tuple[int, int]:
    if not x:
        return 1, 1
    length = x[dim % len(x)]
    return (numel(x) // length if length else 0), length


@register(
    "aten.topk",
    formula="rows * n * ceil(log2(k + 1)) compares (each of n values binary-searched into the "
    "kept k)",
)
def topk(x: Any, k: int, dim: int = -1, *_: Any, out: Any) -> OpCost:
    rows, n = _rows_and_length(x, dim)
    return OpCost(flops=rows * n * max(1, int(k).bit_length()))


@register(
    "aten.sort",
    formula="rows * n * ceil(log2 n) compares (a comparison sort of each row of n)",
)
def sort(x: Any, *args: Any, out: Any) -> OpCost:
    # sort(self, dim=-1, descending=False) and sort.stable(self, *, stable, dim, descending)
    dim = next((a for a in args if isinstance(a, int) and not isinstance(a, bool)), -1)
    rows, n = _rows_and_length(x, dim)
    return OpCost(flops=rows * n * max(0, (n - 1).bit_length()))


@register(
    "aten.histc",
    formula="4 per element: its bin (x - min) * bins / (max - min) (sub, mul, div) and one add "
    "to that bin's count",
)
def histc(x: Any, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=4 * numel(x))


register(
    "aten._is_all_true", "aten._is_any_true",
    formula="n - 1 logical ANDs (ORs) of a bool tensor into one bool, as all() and any()",
)(reduction(1, -1))


def _search_compares(boundaries: int) -> int:
    """Compares of a binary search among `boundaries` sorted values: ceil(log2(b + 1))."""
    return boundaries.bit_length()


@register(
    "aten.bucketize",
    formula="a binary search per value among the b boundaries: ceil(log2(b + 1)) compares",
)
def bucketize(x: Any, boundaries: Any, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=numel(out) * _search_compares(boundaries[-1]))


@register(
    "aten.searchsorted",
    formula="a binary search per value in its row of b sorted values: ceil(log2(b + 1)) "
    "compares",
)
def searchsorted(sorted_sequence: Any, x: Any, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=numel(out) * _search_compares(sorted_sequence[-1]))


@register(
    "aten.isin",
    formula="n * m compares: each of the n elements against each of the m test elements, "
    "as PyTorch's default (brute-force) kernel for small test sets does; + n for invert",
)
def isin(elements: Any, test: Any, *args: Any, out: Any) -> OpCost:
    invert = len(args) > 1 and args[1] is True
    tests = numel(test) if isinstance(test, tuple) else 1  # a Scalar test element is one
    return OpCost(flops=numel(out) * tests + (numel(out) if invert else 0))


@register(
    "aten.unique_consecutive",
    formula="n - 1 compares, each element with the one before it",
)
def unique_consecutive(x: Any, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=max(0, numel(x) - 1))


@register(
    "aten._unique2", "aten._unique",
    formula="sort the n elements (n * ceil(log2 n) compares), then n - 1 compares of "
    "neighbours",
)
def unique(x: Any, *_: Any, out: Any) -> OpCost:
    n = numel(x)
    return OpCost(flops=n * max(0, (n - 1).bit_length()) + max(0, n - 1))


@register(
    "aten.nonzero", "aten.nonzero_static",
    formula="n tests (!= 0), one per element; writing the indices found moves data",
)
def nonzero(x: Any, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=numel(x))


@register(
    "aten.multinomial",
    formula="per row of n probabilities: a running sum (n - 1 adds), then each of the k "
    "draws a binary search in it (ceil(log2(n + 1)) compares); drawing the random number "
    "itself is 0, as for every random op",
)
def multinomial(probs: Any, num_samples: int, *_: Any, out: Any) -> OpCost:
    rows, n = _rows_and_length(probs, -1)
    return OpCost(flops=rows * (max(0, n - 1) + num_samples * _search_compares(n)))


@register(
    "aten._euclidean_dist",
    formula="(.., P, M) to (.., R, M): per pair of rows M subtracts, M squares, M - 1 adds "
    "and a square root: 3M per output element",
)
def euclidean_dist(x1: Any, x2: Any, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=3 * x1[-1] * numel(out))
