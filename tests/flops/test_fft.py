"""FFT rules against a counted radix-2 Cooley-Tukey transform."""

from __future__ import annotations

import torch

from ._meta import aten, cost, meta


def radix2_flops(n: int) -> int:
    """Real FLOPs of a recursive radix-2 FFT of n points (n a power of two), counted."""
    if n == 1:
        return 0
    # two half transforms, then n/2 butterflies: a complex multiply by the twiddle
    # (4 multiplies + 2 adds) and a complex add and subtract (2 + 2)
    return 2 * radix2_flops(n // 2) + (n // 2) * (6 + 4)


def test_radix2_count_is_five_n_log_n() -> None:
    assert [radix2_flops(n) for n in (2, 8, 64)] == [5 * 2 * 1, 5 * 8 * 3, 5 * 64 * 6]


def test_complex_fft_along_one_and_two_dims() -> None:
    x = meta(4, 8, dtype=torch.complex64)
    # 4 transforms of 8 points
    assert cost(aten._fft_c2c.default, x, [1], 0, True).flops == 4 * radix2_flops(8) == 480
    # fft2: 4 transforms of 8 points, then 8 of 4 points: 480 + 8 * 40 = 800
    assert cost(aten._fft_c2c.default, x, [0, 1], 0, True).flops == (
        4 * radix2_flops(8) + 8 * radix2_flops(4)
    ) == 800
    # "ortho" scales each of the 32 outputs once
    assert cost(aten._fft_c2c.default, x, [1], 1, True).flops == 480 + 32
    assert cost(aten._fft_c2c.default, x, [1], 0, True).macs == 0


def test_real_transforms_cost_half() -> None:
    x = meta(4, 8)
    # rfft: half of 4 complex transforms of 8 points = 240
    assert cost(aten._fft_r2c.default, x, [1], 0, True).flops == 4 * radix2_flops(8) // 2
    spectrum = meta(4, 5, dtype=torch.complex64)
    assert cost(aten._fft_c2r.default, spectrum, [1], 0, 8).flops == 240
