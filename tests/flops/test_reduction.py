"""Reduction rules: n inputs into m outputs."""

from __future__ import annotations

import torch

from ._meta import aten, flops, meta

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
