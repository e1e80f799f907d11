"""Reduction rules: n inputs into m outputs."""

from __future__ import annotations

import torch

from memflops.flops.registry import Shape

from ._meta import aten, cost, flops, meta, rule_of

# (4, 6, 5): n = 120 inputs; reducing dim 1 leaves m = 20 outputs
SHAPE = (4, 6, 5)
n, m = 120, 20


def test_sum_mean_max() -> None:
    x = meta(*SHAPE)
    assert flops(aten.sum.dim_IntList, x, [1]) == n - m == 100
    assert flops(aten.sum.default, x) == n - 1 == 119
    assert flops(aten.mean.dim, x, [1]) == n == 120  # 100 adds + 20 divides
    assert flops(aten.amax.default, x, [1]) == n - m
    assert flops(aten.max.dim, x, 1) == n - m  # values and indices from one pass
    assert flops(aten.argmax.default, x, 1) == n - m
    assert flops(aten.prod.dim_int, x, 1) == n - m
    # max.other is elementwise: one compare per output element
    assert flops(aten.max.other, x, x) == n


def test_var_std() -> None:
    x = meta(*SHAPE)
    # mean n, subs n, squares n, adds n - m, divides m = 4n = 480
    assert flops(aten.var.correction, x, [1]) == 4 * n == 480
    assert flops(aten.var_mean.correction, x, [1]) == 4 * n
    assert flops(aten.std.correction, x, [1]) == 4 * n + m == 500  # + m square roots


def test_norms() -> None:
    x = meta(*SHAPE)
    # ord 2: n squares + (n - m) adds + m roots = 2n = 240
    assert flops(aten.linalg_vector_norm.default, x, 2, [1]) == 2 * n == 240
    # ord 1: n abs + (n - m) adds = 2n - m = 220
    assert flops(aten.linalg_vector_norm.default, x, 1, [1]) == 2 * n - m == 220
    # ord inf: n abs + (n - m) compares
    assert flops(aten.linalg_vector_norm.default, x, float("inf"), [1]) == 220
    # ord 3: n abs + n powers + (n - m) adds + m roots = 3n = 360
    assert flops(aten.linalg_vector_norm.default, x, 3, [1]) == 3 * n == 360


def test_scans_and_logsumexp() -> None:
    x = meta(*SHAPE)
    # cumsum along dim 1 (L = 6): 20 slices of 5 adds = 100
    assert flops(aten.cumsum.default, x, 1) == 20 * 5 == 100
    # logsumexp: max n - m, subs n, exps n, sum n - m, log m, add m = 4n
    assert flops(aten.logsumexp.default, x, [1]) == 4 * n == 480


def test_losses() -> None:
    x, t = meta(8, 10), meta(8, dtype=torch.long)
    # mse: (x - t)^2 2n + mean n = 3 * 80 = 240
    assert flops(aten.mse_loss.default, x, x) == 3 * 80 == 240
    # nll with mean: 8 negations + 8 (7 adds + 1 divide) = 16
    assert flops(aten.nll_loss_forward.default, x, t, None, 1, -100) == 16


def test_topk_and_sort() -> None:
    x = meta(6, 8)  # 6 rows of n = 8
    # k = 2: each of the 8 values is placed among the kept 2 by ceil(log2(3)) = 2 compares
    assert flops(aten.topk.default, x, 2) == 6 * 8 * 2 == 96
    # k = 1 keeps one value: 1 compare each
    assert flops(aten.topk.default, x, 1) == 6 * 8 * 1 == 48
    # a comparison sort of 8 values: 8 * ceil(log2 8) = 24 compares per row
    assert flops(aten.sort.default, x) == 6 * 24 == 144
    # along dim 0 the rows are the 8 columns of 6: 6 * ceil(log2 6) = 18 each
    assert flops(aten.sort.stable, x, stable=True, dim=0) == 8 * 18 == 144


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


def test_nonzero_and_multinomial() -> None:
    # one test per element of 3 x 10
    assert rule_of("aten.nonzero")((3, 10), out=(7, 2)).flops == 30
    # 2 rows of 7 probabilities: 6 adds each, then 4 draws of 3 compares (log2 8): 2 * 18
    assert rule_of("aten.multinomial")((2, 7), 4, out=(2, 4)).flops == 2 * (6 + 4 * 3)


def test_euclidean_dist() -> None:
    # 5 x 7 pairs of 4-vectors: (4 subtracts + 4 squares + 3 adds + 1 root) each = 12
    assert cost(aten._euclidean_dist.default, meta(5, 4), meta(7, 4)).flops == 35 * 12
