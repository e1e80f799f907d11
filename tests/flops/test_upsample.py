"""Upsampling and grid sampling rules: a weighted sum of t taps is 2t - 1 per output."""

from __future__ import annotations

from torch import nn

import memflops

from ._meta import aten, flops, meta


def test_nearest_is_free_and_bilinear_is_seven_per_output() -> None:
    # (1, 2, 4, 4) -> (1, 2, 8, 8): 128 output elements
    nearest = memflops.analyze(nn.Upsample(scale_factor=2), (1, 2, 4, 4))
    assert nearest.totals.costs.forward.flops == 0
    bilinear = memflops.analyze(nn.Upsample(scale_factor=2, mode="bilinear"), (1, 2, 4, 4))
    # 4 taps: 4 multiplies + 3 adds = 7 per output: 896
    assert bilinear.totals.costs.forward.flops == 7 * 128 == 896


def test_other_interpolations() -> None:
    x = meta(1, 2, 4, 4)
    assert flops(aten.upsample_bicubic2d.default, x, [8, 8], False) == 31 * 128  # 16 taps
    assert flops(aten.upsample_linear1d.default, meta(1, 2, 4), [8], False) == 3 * 16
    x3 = meta(1, 1, 2, 2, 2)
    assert flops(aten.upsample_trilinear3d.default, x3, [4, 4, 4], False) == 15 * 64


def test_upsample_backward_scatters_each_gradient() -> None:
    g = meta(1, 2, 8, 8)  # 128 gradients
    op = aten.upsample_bilinear2d_backward.default
    # each to 4 inputs: 4 multiplies + 4 adds = 8 per gradient
    assert flops(op, g, [8, 8], [1, 2, 4, 4], False) == 8 * 128
    op = aten.upsample_nearest2d_backward.default
    assert flops(op, g, [8, 8], [1, 2, 4, 4]) == 128


def test_grid_sampler() -> None:
    x, grid = meta(2, 3, 6, 6), meta(2, 4, 5, 2)
    points, outputs = 2 * 4 * 5, 2 * 3 * 4 * 5  # 40 sampling points, 120 output elements
    op = aten.grid_sampler_2d.default
    # bilinear: 14 per point + 7 per output = 560 + 840
    assert flops(op, x, grid, 0, 0, False) == 14 * points + 7 * outputs == 1400
    # nearest: 6 per point
    assert flops(op, x, grid, 1, 0, False) == 6 * points == 240
    # bicubic: 58 per point (unnormalise 4, floor 2, fractions 2, 2 x 25 coefficients)
    # + 35 per output (4 row interpolations and 1 column, 7 each)
    assert flops(op, x, grid, 2, 0, False) == (4 + 2 + 2 + 2 * 25) * points + 5 * 7 * outputs
    g = meta(2, 3, 4, 5)
    back = aten.grid_sampler_2d_backward.default
    # 14 per point again, grad_input 8 per output, grad_grid 18 per output + 2 per point
    expected = 14 * points + 8 * outputs + 18 * outputs + 2 * points
    assert flops(back, g, x, grid, 0, 0, False, [True, True]) == expected == 3760
    # bicubic: (58 + 16 tap weights) per point, grad_input 32 and grad_grid 66 per output,
    # + 42 per point for the grid gradient
    expected = 74 * points + 32 * outputs + 66 * outputs + 42 * points
    assert flops(back, g, x, grid, 2, 0, False, [True, True]) == expected


def test_antialiased_downscale_counts_each_window() -> None:
    # 1x1x4x8 -> 1x1x2x4 bilinear, anti-aliased: scale 2 in both dims, so the
    # support is 1 * 2 = 2 around centres 2 * (i + 0.5) = 1, 3, 5, 7 (width).
    # Width windows: [0, 3) 3 taps, [1, 5) 4, [3, 7) 4, [5, 8) 3 = 14 taps over
    # 4 outputs, for each of 1 * 1 * 4 input rows: 4 * (2 * 14 - 4) = 96.
    # Height 4 -> 2, centres 1 and 3: [0, 3) 3, [1, 4) 3 = 6 taps over 2
    # outputs, for each of 1 * 1 * 4 output columns: 4 * (2 * 6 - 2) = 40.
    x = meta(1, 1, 4, 8)
    assert flops(aten._upsample_bilinear2d_aa.default, x, [2, 4], False) == 96 + 40
    # backward: 2 per tap of every pass: 4 * 2 * 14 + 4 * 2 * 6 = 160
    g = meta(1, 1, 2, 4)
    assert flops(aten._upsample_bilinear2d_aa_backward.default, g, [2, 4], [1, 1, 4, 8],
                 False) == 160
