"""Pooling rules: the article's B*H*W*C*K^2 for max and average pooling, exact adaptive
windows, and the backward scatters."""

from __future__ import annotations

from torch import nn

import memflops
from memflops.flops.pool import adaptive_window_sum, window

from ._meta import aten, flops, meta


def forward_flops(module: nn.Module, shape: tuple[int, ...]) -> int:
    return memflops.analyze(module, shape).totals.costs.forward.flops


def test_max_pool_is_output_elements_times_window() -> None:
    # (2, 3, 8, 8) -> (2, 3, 4, 4): B*H*W*C*K^2 = 2 * 4 * 4 * 3 * 4 = 384
    assert forward_flops(nn.MaxPool2d(2), (2, 3, 8, 8)) == 2 * 4 * 4 * 3 * 2**2 == 384


def test_avg_pool_is_output_elements_times_window() -> None:
    # (1, 4, 9, 9), k=3, s=2, p=1 -> (1, 4, 5, 5): 1 * 5 * 5 * 4 * 9 = 900
    pool = nn.AvgPool2d(3, stride=2, padding=1)
    assert forward_flops(pool, (1, 4, 9, 9)) == 1 * 5 * 5 * 4 * 3**2 == 900


def test_pool_1d_and_3d_windows() -> None:
    # max_pool1d dispatches the 2d op with a (1, k) kernel: (2, 3, 10) -> (2, 3, 5), window 2
    assert forward_flops(nn.MaxPool1d(2), (2, 3, 10)) == 2 * 3 * 5 * 2 == 60
    # (1, 2, 4, 4, 4) -> (1, 2, 2, 2, 2), window 2^3: 16 * 8 = 128
    assert forward_flops(nn.MaxPool3d(2), (1, 2, 4, 4, 4)) == 16 * 8 == 128
    assert forward_flops(nn.AvgPool3d(2), (1, 2, 4, 4, 4)) == 128


def test_window_sizes() -> None:
    assert window([3, 3], 2) == 9
    assert window([3], 2) == 9  # a one-element kernel is square
    assert window(2, 3) == 8  # plain shapes (the layer-spec frontend) may pass an int
    assert window([1, 4], 2) == 4


def test_adaptive_window_sums() -> None:
    # In=7, Out=3: windows [0,3) [2,5) [4,7): 3 + 3 + 3 = 9
    assert adaptive_window_sum(7, 3) == 9
    # In=5, Out=3: windows [0,2) [1,4) [3,5): 2 + 3 + 2 = 7
    assert adaptive_window_sum(5, 3) == 7
    # In=Out: windows of 1
    assert adaptive_window_sum(6, 6) == 6


def test_adaptive_pools_sum_exact_windows() -> None:
    # (2, 4, 5, 7) -> (3, 3): per (b, c) plane 7 * 9 = 63 window elements; 2 * 4 * 63 = 504
    assert forward_flops(nn.AdaptiveAvgPool2d(3), (2, 4, 5, 7)) == 2 * 4 * 7 * 9 == 504
    assert forward_flops(nn.AdaptiveMaxPool2d(3), (2, 4, 5, 7)) == 504


def test_pool_backward_ops() -> None:
    x, g = meta(2, 3, 8, 8), meta(2, 3, 4, 4)
    idx = meta(2, 3, 4, 4)
    # max: one scatter-add per output gradient: 2 * 3 * 4 * 4 = 96
    op = aten.max_pool2d_with_indices_backward.default
    assert flops(op, g, x, [2, 2], [2, 2], [0, 0], [1, 1], False, idx.long()) == 96
    # avg: a divide and K^2 = 4 adds per output gradient: 96 * 5 = 480
    op = aten.avg_pool2d_backward.default
    assert flops(op, g, x, [2, 2], [2, 2], [0, 0], False, True, None) == 480
    # adaptive avg 5x7 -> 3x3: window sum 2*3*63 = 378 adds + 2*3*9 = 54 divides = 432
    x, g = meta(2, 3, 5, 7), meta(2, 3, 3, 3)
    assert flops(aten._adaptive_avg_pool2d_backward.default, g, x) == 378 + 54 == 432


def test_train_step_of_a_max_pool() -> None:
    # the input needs a gradient through a conv first; the pool's backward is 1 per output
    model = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False), nn.MaxPool2d(2))
    report = memflops.analyze(model, (1, 1, 4, 4), mode="train")
    pool = next(row for row in report.modules if row.path == "1")
    assert pool.forward.flops == 1 * 2 * 2 * 2 * 4 == 32
    assert pool.backward.flops == 1 * 2 * 2 * 2 == 8
