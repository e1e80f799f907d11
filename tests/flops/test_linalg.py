"""Linear-algebra and other rules (triangular solves, histc, polar, all-true), checked by hand."""

from __future__ import annotations

import torch

from memflops.flops.registry import Shape

from ._meta import aten, cost, meta, rule_of


def substitution_ops(n: int, rhs: int, unitriangular: bool) -> tuple[int, int, int]:
    """(multiplies, subtracts, divides) a forward substitution L x = b really performs."""
    muls = subs = divs = 0
    for _ in range(rhs):
        for i in range(n):
            for _j in range(i):  # x_i -= L[i, j] * x_j
                muls += 1
                subs += 1
            if not unitriangular:  # x_i /= L[i, i]
                divs += 1
    return muls, subs, divs


def test_solve_triangular_matches_substitution() -> None:
    a, b = meta(2, 5, 5), meta(2, 5, 3)  # a batch of 2 systems, 3 right-hand sides each
    muls, subs, divs = substitution_ops(5, 2 * 3, unitriangular=False)
    got = cost(aten.linalg_solve_triangular.default, a, b, upper=False)
    assert got.macs == muls == 2 * 3 * 10  # n(n-1)/2 = 10 per right-hand side
    assert got.flops == muls + subs + divs == 2 * 3 * 25  # n^2 per right-hand side
    unit = cost(aten.linalg_solve_triangular.default, a, b, upper=False, unitriangular=True)
    assert unit.flops == sum(substitution_ops(5, 6, unitriangular=True)) == 6 * 20


def test_solve_triangular_right_side() -> None:
    """X A = B: each of B's rows is one system of n."""
    a, b = meta(4, 4), meta(7, 4)
    got = cost(aten.linalg_solve_triangular.default, a, b, upper=True, left=False)
    assert got.flops == sum(substitution_ops(4, 7, unitriangular=False)) == 7 * 16


def test_histc() -> None:
    x = meta(3, 10)
    # 30 elements x (sub, mul, div to find the bin + one add to its count) = 120
    assert cost(aten.histc.default, x, 8, 0, 7).flops == 120


def test_is_all_true_and_polar() -> None:
    flags = meta(3, 10, dtype=torch.bool)
    # the rule: 30 bools ANDed into one, 29 operations ...
    assert rule_of("aten._is_all_true")(Shape((3, 10)), out=Shape(())).flops == 29
    assert rule_of("aten._is_any_true")(Shape((3, 10)), out=Shape(())).flops == 29
    # ... but a call on bools only does no floating-point operation: 0 FLOPs (was 29)
    assert cost(aten._is_all_true.default, flags).flops == 0
    assert cost(aten._is_any_true.default, flags).flops == 0
    # 3 x 10 complex numbers, each abs * cos(angle) and abs * sin(angle): 4 FLOPs = 120
    assert cost(aten.polar.default, meta(3, 10), meta(3, 10)).flops == 120


def test_weight_norm_counted_per_row() -> None:
    v, g = meta(8, 3, 5), meta(8, 1, 1)  # 8 rows of 15
    rows, per_row = 8, 15
    # per row: 15 squares + 14 adds + 1 root (the norm), 1 divide (g / norm), 15 multiplies
    forward = rows * (per_row + (per_row - 1) + 1 + 1 + per_row)
    assert cost(aten._weight_norm_interface.default, v, g, 0).flops == forward == 368
    w, norms = aten._weight_norm_interface.default(v, g, 0)
    # per row: grad_w * v 15, sum 14, / norm 1, g / norm 1, grad_g / norm 1, then
    # v * (grad_g / norm) 15, grad_w - that 15, times g / norm 15
    backward = rows * (15 + 14 + 1 + 1 + 1 + 15 + 15 + 15)
    got = cost(aten._weight_norm_interface_backward.default, w, v, g, norms, 0)
    assert got.flops == backward == 616


def test_bucketize_and_searchsorted_are_binary_searches() -> None:
    # 7 boundaries: 8 buckets, found in ceil(log2 8) = 3 compares; 20 values: 60
    assert cost(aten.bucketize.Tensor, meta(4, 5), meta(7)).flops == 60
    # rows of 7 sorted values, 5 values searched per row, 3 rows: 15 * 3 = 45
    assert cost(aten.searchsorted.Tensor, meta(3, 7), meta(3, 5)).flops == 45


def test_cummax_and_isin() -> None:
    x = meta(3, 8)
    # 3 slices of 8 along dim 1: 7 compares each = 21
    assert cost(aten.cummax.default, x, 1).flops == 21
    assert cost(aten.cummin.default, x, 1).flops == 21
    values = meta(2, 5)
    # 10 floats x 4 test values = 40 compares; one value: 10
    assert cost(aten.isin.Tensor_Tensor, values, meta(4)).flops == 40
    assert cost(aten.isin.Tensor_Scalar, values, 3.0).flops == 10
    # the same on int64 ids: integer compares, 0 FLOPs (were 40 and 10)
    ids = meta(2, 5, dtype=torch.int64)
    assert cost(aten.isin.Tensor_Tensor, ids, meta(4, dtype=torch.int64)).flops == 0
    assert cost(aten.isin.Tensor_Scalar, ids, 3).flops == 0


def test_unique() -> None:
    # no meta kernel (the output size is data): the rules are called on shapes
    out = ((10,), (16,), (10,))
    assert rule_of("aten.unique_consecutive")((16,), out=out).flops == 15  # each vs previous
    # sort: 16 * log2 16 = 64 compares, then 15 neighbour compares
    assert rule_of("aten._unique2")((16,), out=out).flops == 64 + 15


def test_embedding_bag_backward() -> None:
    rule = rule_of("aten._embedding_bag_backward")
    # 6 indices in bags, rows of 4: 24 adds (sum); mean adds 24 divides
    args = ((2, 4), (6,), (2,), (6,), (2,), (2,), 10, False)
    assert rule(*args, 0, False, None, out=(10, 4)).flops == 24
    assert rule(*args, 1, False, None, out=(10, 4)).flops == 48
    assert rule(*args, 0, False, (6,), out=(10, 4)).flops == 48  # per-sample weights


def test_nonzero_and_multinomial() -> None:
    # one test per element of 3 x 10
    assert rule_of("aten.nonzero")((3, 10), out=(7, 2)).flops == 30
    # 2 rows of 7 probabilities: 6 adds each, then 4 draws of 3 compares (log2 8): 2 * 18
    assert rule_of("aten.multinomial")((2, 7), 4, out=(2, 4)).flops == 2 * (6 + 4 * 3)


def test_euclidean_dist() -> None:
    # 5 x 7 pairs of 4-vectors: (4 subtracts + 4 squares + 3 adds + 1 root) each = 12
    assert cost(aten._euclidean_dist.default, meta(5, 4), meta(7, 4)).flops == 35 * 12
