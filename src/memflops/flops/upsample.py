"""Upsampling and grid sampling, forward and backward.

Nearest-neighbour upsampling copies: 0 FLOPs. An interpolating mode forms
each output element as a weighted sum of `t` neighbouring inputs, counted
like a dot product: t multiplies and t - 1 adds, 2t - 1 FLOPs per output
element, with t = 2 (linear), 4 (bilinear), 8 (trilinear), 16 (bicubic).
The interpolation weights of an upsample depend only on the row or column
index (O(H + W) work, not counted). A backward scatters each output
gradient into a zeroed input gradient: nearest 1 add per output element,
interpolating t multiplies and t adds (2t).

Grid sampling (`F.grid_sample`) computes its weights per sampling point
(N * Hout * Wout of them), so these are counted too. Bilinear, per point:
unnormalise the two coordinates (mul, add each: 4), floor them (2), the
1-d weights w1 = x - x0 and w0 = 1 - w1 per axis (4), the four corner
weights (4 multiplies): 14; per output element (each channel) 7.
Nearest, per point: unnormalise 4, round 2; 0 per output element. Bicubic,
per point: unnormalise 4, floor 2, the fractions 2, and per axis the four
cubic-convolution coefficients of Keys' kernel (3 distances, two 5-FLOP and
two 6-FLOP polynomials: 25): 58; per output element 35, as the kernel
interpolates four rows of four taps and then the column (5 x (4 multiplies +
3 adds)).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memflops.flops.registry import OpCost, RuleFn, numel, register, register_zero

# grid_sampler interpolation modes
BILINEAR, NEAREST, BICUBIC = 0, 1, 2

register_zero(
    "aten.upsample_nearest1d", "aten.upsample_nearest2d", "aten.upsample_nearest3d",
    "aten._upsample_nearest_exact1d", "aten._upsample_nearest_exact2d",
    "aten._upsample_nearest_exact3d",
    reason="nearest neighbour: each output copies one input",
)


@register(
    "aten.upsample_nearest1d_backward", "aten.upsample_nearest2d_backward",
    "aten.upsample_nearest3d_backward", "aten._upsample_nearest_exact1d_backward",
    "aten._upsample_nearest_exact2d_backward", "aten._upsample_nearest_exact3d_backward",
    formula="grad_out.numel adds (each gradient added into its source)",
)
def nearest_backward(grad: Any, *_: Any, out: Any) -> OpCost:
    return OpCost(flops=numel(grad))


def _interpolate(taps: int) -> RuleFn:
    def rule(x: Any, *_: Any, out: Any) -> OpCost:
        return OpCost(flops=(2 * taps - 1) * numel(out))

    rule.__name__ = rule.__qualname__ = f"interpolate_{taps}_taps"
    return rule


def _interpolate_backward(taps: int) -> RuleFn:
    def rule(grad: Any, *_: Any, out: Any) -> OpCost:
        return OpCost(flops=2 * taps * numel(grad))

    rule.__name__ = rule.__qualname__ = f"interpolate_{taps}_taps_backward"
    return rule


for _name, _taps in (
    ("upsample_linear1d", 2), ("upsample_bilinear2d", 4), ("upsample_trilinear3d", 8),
    ("upsample_bicubic2d", 16),
):
    register(
        f"aten.{_name}",
        formula=f"{2 * _taps - 1} per output element (a weighted sum of {_taps} inputs:"
        f" {_taps} multiplies, {_taps - 1} add{'s' if _taps > 2 else ''})",
    )(_interpolate(_taps))
    register(
        f"aten.{_name}_backward",
        formula=f"{2 * _taps} per output gradient ({_taps} multiplies and {_taps} adds"
        " scattering it to its inputs)",
    )(_interpolate_backward(_taps))


# --- grid sampling -------------------------------------------------------------


def _points(grid: Sequence[int]) -> int:
    """Sampling points: N * Hout * Wout (the grid without its last, coordinate, dim)."""
    return numel(grid[:-1])


BICUBIC_POINT, BICUBIC_ELEMENT = 58, 35


@register(
    "aten.grid_sampler_2d",
    formula="bilinear: 14 per sampling point (unnormalise 4, floor 2, 1-d weights 4, corner"
    " weights 4) + 7 per output element; nearest: 6 per point (unnormalise 4, round 2);"
    " bicubic: 58 per point + 35 per output element",
)
def grid_sampler_2d(x: Any, grid: Any, mode: int, *_: Any, out: Any) -> OpCost:
    if mode == NEAREST:
        return OpCost(flops=6 * _points(grid))
    if mode == BICUBIC:
        return OpCost(flops=BICUBIC_POINT * _points(grid) + BICUBIC_ELEMENT * numel(out))
    return OpCost(flops=14 * _points(grid) + 7 * numel(out))


@register(
    "aten.grid_sampler_2d_backward",
    formula="bilinear: the forward's 14 per point again, grad_input 8 per output element"
    " (4 multiplies, 4 adds), grad_grid 18 per output element (per axis: 4 multiplies and"
    " 3 adds for d(sample)/d(coordinate), 1 multiply by grad, 1 add over channels) + 2 per"
    " point (chain rule through the unnormalisation); nearest: 6 per point, grad_input 1"
    " add per output element, grad_grid 0; bicubic: the forward's 58 per point + 16 tap"
    " weights, grad_input 32 per output element (16 multiplies, 16 adds), grad_grid 66 per"
    " output element (per axis 16 multiplies and 15 adds, 1 multiply by grad, 1 add over"
    " channels) + 40 per point (the kernel's derivative coefficients, 20 per axis) + 2",
)
def grid_sampler_2d_backward(grad: Any, x: Any, grid: Any, mode: int, padding: Any,
                             align_corners: Any, mask: Sequence[bool], *_: Any,
                             out: Any) -> OpCost:
    grad_input, grad_grid = (bool(m) for m in mask)
    points, elements = _points(grid), numel(grad)
    if mode == NEAREST:
        return OpCost(flops=6 * points + (elements if grad_input else 0))
    if mode == BICUBIC:
        flops = (BICUBIC_POINT + 16) * points
        flops += 32 * elements if grad_input else 0
        flops += 66 * elements + 42 * points if grad_grid else 0
        return OpCost(flops=flops)
    flops = 14 * points
    if grad_input:
        flops += 8 * elements
    if grad_grid:
        flops += 18 * elements + 2 * points
    return OpCost(flops=flops)


def _aa_window_sizes(size_in: int, size_out: int, interp_size: int) -> list[int]:
    """Taps of each output of one anti-aliased pass along a dim (PyTorch's CPU scheme).

    Downscaling by `scale = in / out` widens the filter's support to
    `interp_size / 2 * scale`; output i is centred at `scale * (i + 0.5)`
    and reads the inputs within the support, clipped to the edges.
    """
    scale = size_in / size_out
    support = interp_size / 2 * scale if scale >= 1 else interp_size / 2
    sizes = []
    for i in range(size_out):
        center = scale * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), size_in)
        sizes.append(max(hi - lo, 1))
    return sizes


def _antialiased(interp_size: int) -> RuleFn:
    def rule(x: Any, *_: Any, out: Any) -> OpCost:
        # each output of a pass: a dot product of its taps, 2t - 1
        passes = _with_counts(x, out, interp_size)
        return OpCost(flops=sum(rows * (2 * taps - outputs) for taps, rows, outputs in passes))

    rule.__name__ = rule.__qualname__ = f"antialiased_{interp_size}"
    return rule


def _antialiased_backward(interp_size: int) -> RuleFn:
    def rule(grad: Any, output_size: Any, input_size: Any, *_: Any, out: Any) -> OpCost:
        # each output gradient scattered into its taps: a multiply and an add per tap
        passes = _with_counts(list(input_size), list(grad), interp_size)
        return OpCost(flops=sum(rows * 2 * taps for taps, rows, _ in passes))

    rule.__name__ = rule.__qualname__ = f"antialiased_{interp_size}_backward"
    return rule


def _with_counts(
    x: Sequence[int], out: Sequence[int], interp_size: int
) -> list[tuple[int, int, int]]:
    """(taps summed over outputs, rows, outputs per row) of each separable pass.

    The width pass runs first over (N, C, H_in, W_out), then the height pass
    over (N, C, H_out, W_out); a dim whose size does not change is skipped.
    """
    result = []
    n, c, h_in, w_in = x
    h_out, w_out = out[2], out[3]
    if w_in != w_out:
        result.append((sum(_aa_window_sizes(w_in, w_out, interp_size)), n * c * h_in, w_out))
    if h_in != h_out:
        result.append((sum(_aa_window_sizes(h_in, h_out, interp_size)), n * c * w_out, h_out))
    return result


register(
    "aten._upsample_bilinear2d_aa",
    formula="anti-aliased, separable: per pass and output, 2t - 1 for its t taps (t = the "
    "inputs within support max(1, in/out) of its centre)",
)(_antialiased(2))
register(
    "aten._upsample_bicubic2d_aa",
    formula="anti-aliased, separable: per pass and output, 2t - 1 for its t taps (t = the "
    "inputs within support 2 * max(1, in/out) of its centre)",
)(_antialiased(4))
_AA_BACKWARD = (
    "per pass and output gradient, 2 per tap (a multiply and an add into the input gradient)"
)
register("aten._upsample_bilinear2d_aa_backward", formula=_AA_BACKWARD)(_antialiased_backward(2))
register("aten._upsample_bicubic2d_aa_backward", formula=_AA_BACKWARD)(_antialiased_backward(4))
