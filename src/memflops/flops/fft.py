"""Fast Fourier transforms (`torch.fft.*`, FNet's token mixing).

An FFT's exact operation count depends on the algorithm an implementation
picks for each length (pocketFFT on CPU, cuFFT on GPU), so these rules use
the standard count of a radix-2 Cooley-Tukey transform: a complex transform
of N points costs 5 * N * log2(N) real FLOPs (N/2 * log2 N butterflies of
one complex multiply, 6 FLOPs, and two complex adds, 4 FLOPs), with
log2(N) rounded up for lengths that are not powers of two. A transform over
several dims is a 1-d transform along each of them. A real-input (r2c) or
real-output (c2r) transform along a dim costs half its complex count.
Normalisation ("ortho", "forward"/"backward" scaling) adds one multiply per
output element. FFTs have no multiply-accumulates of a matrix product, so
they count no MACs (FlopCounterMode counts them as 0 too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memflops.flops.registry import OpCost, numel, register


def _log2(n: int) -> int:
    """log2(n) rounded up: the radix-2 stages of a transform of n points."""
    return max(0, (n - 1).bit_length())


def _complex_passes(shape: Sequence[int], dims: Sequence[int]) -> int:
    """FLOPs of complex 1-d transforms along each of `dims` of a tensor of `shape`."""
    return sum(5 * numel(shape) * _log2(shape[d]) for d in dims)


def _scaling(normalization: int, out: Any) -> int:
    return numel(out) if normalization else 0


@register("aten._fft_c2c", formula="5 * N * ceil(log2 n) per transformed dim of length n "
          "(N elements); + N if normalised")
def fft_c2c(x: Any, dims: Sequence[int], normalization: int, forward: bool, *,
            out: Any) -> OpCost:
    return OpCost(flops=_complex_passes(x, dims) + _scaling(normalization, out))


@register("aten._fft_r2c", formula="real input: (5 * N_in * ceil(log2 n)) // 2 along the last "
          "dim, then complex passes along the others on the onesided output; + N_out if "
          "normalised")
def fft_r2c(x: Any, dims: Sequence[int], normalization: int, onesided: bool, *,
            out: Any) -> OpCost:
    last, rest = dims[-1], dims[:-1]
    real = 5 * numel(x) * _log2(x[last]) // 2
    return OpCost(flops=real + _complex_passes(out, rest) + _scaling(normalization, out))


@register("aten._fft_c2r", formula="complex passes along all but the last dim on the input, "
          "then (5 * N_out * ceil(log2 n)) // 2 for the real output's last dim; + N_out if "
          "normalised")
def fft_c2r(x: Any, dims: Sequence[int], normalization: int, last_dim_size: int, *,
            out: Any) -> OpCost:
    rest = dims[:-1]  # the last dim is the real output's, of last_dim_size points
    real = 5 * numel(out) * _log2(last_dim_size) // 2
    return OpCost(flops=_complex_passes(x, rest) + real + _scaling(normalization, out))
