"""RoIAlign (torchvision), forward and backward.

`roi_align` pools each region of interest into a `PH x PW` grid of bins;
each bin averages `S` bilinear samples, `S = sampling_ratio^2`. With
`sampling_ratio <= 0` the number of samples adapts to each RoI's size,
which only the data knows; it is counted for the largest RoI, one covering
the whole feature map: `S = ceil(H / PH) * ceil(W / PW)`.

Forward, as torchvision's kernel computes it: the bilinear weights of a
sample point are shared by all channels and cost 14 (unnormalise the two
coordinates 4, floor them 2, the 1-d weights 4, the four corner weights 4,
as for grid sampling); each output element then costs 8 per sample (four
multiplies, three adds, one add into the sum) and one divide: 8S + 1.

Backward recomputes the weights for every gradient element and scatters
into the zeroed input gradient: per gradient element and sample, weights
14, four scaled gradients (multiply by the weight, divide by S: 8) and four
adds: 26S.
"""

from __future__ import annotations

from typing import Any

from memflops.flops.registry import OpCost, numel, register

WEIGHTS_PER_POINT = 14
FORWARD_PER_SAMPLE = 8
BACKWARD_PER_SAMPLE = 26


def samples(sampling_ratio: int, pooled: tuple[int, int], feature: tuple[int, int]) -> int:
    """Bilinear samples per bin: `sampling_ratio^2`, or the most an adaptive grid can take."""
    if sampling_ratio > 0:
        return sampling_ratio * sampling_ratio
    (ph, pw), (h, w) = pooled, feature
    return -(-h // ph) * -(-w // pw)


@register(
    "torchvision.roi_align",
    formula="(8S + 1) per output element + 14 per sample point (K * PH * PW * S), "
    "S = sampling_ratio^2 (adaptive: ceil(H / PH) * ceil(W / PW))",
)
def roi_align(
    x: Any, rois: Any, scale: float, ph: int, pw: int, ratio: int, aligned: bool, *, out: Any
) -> OpCost:
    s = samples(ratio, (ph, pw), (x[-2], x[-1]))
    points = rois[0] * ph * pw * s
    return OpCost(flops=numel(out) * (FORWARD_PER_SAMPLE * s + 1) + points * WEIGHTS_PER_POINT)


@register(
    "torchvision._roi_align_backward",
    formula="26S per gradient element, S as in the forward",
)
def roi_align_backward(
    grad: Any, rois: Any, scale: float, ph: int, pw: int, batch: int, channels: int,
    height: int, width: int, ratio: int, aligned: bool, *, out: Any,
) -> OpCost:
    s = samples(ratio, (ph, pw), (height, width))
    return OpCost(flops=numel(grad) * BACKWARD_PER_SAMPLE * s)
