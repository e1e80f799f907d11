"""Convolution, forward and backward (1d/2d/3d, transposed, groups, any stride,
padding and dilation).

A convolution is a contraction: each output element is a dot product of
`Cin/groups * prod(K)` inputs and weights, so with `contraction` the article's
rule `B*H*W*Cout*(2*Cin*K^2 - 1)` (no bias) or `B*H*W*Cout*2*Cin*K^2` (bias)
falls out. Zero padding is multiplied like any input, as the article and
FlopCounterMode count it.
"""

from __future__ import annotations

from typing import Any

from memflops.flops.registry import OpCost, Shape, contraction, numel, register


def conv_macs(x: Shape, weight: Shape, out: Shape, transposed: bool) -> int:
    """Multiply-accumulates of one convolution.

    Direct: every output element takes `weight[1] * prod(K)` products
    (weight is `(Cout, Cin/groups, *K)`). Transposed: every *input* element
    is scattered over `weight[1] * prod(K)` outputs (weight is
    `(Cin, Cout/groups, *K)`).
    """
    per_element = weight[1] * numel(weight[2:])
    return numel(x if transposed else out) * per_element


def is_depthwise(x: Shape, weight: Shape, transposed: bool, groups: int) -> bool:
    """One input channel per group, as PyTorch's `ConvParams::is_depthwise`
    (aten/src/ATen/native/Convolution.cpp) decides it when it picks its own
    depthwise kernels: not transposed, 2-D or 3-D, groups == Cin > 1 and Cout a
    multiple of Cin."""
    return (not transposed and len(x) in (4, 5) and groups > 1 and x[1] == groups
            and weight[0] % x[1] == 0)


def _depthwise(cost: OpCost, depthwise: bool) -> OpCost:
    """`cost` with its MACs marked depthwise when the convolution is."""
    return cost + OpCost(depthwise_macs=cost.macs) if depthwise else cost


@register(
    "aten.convolution",
    "aten._convolution",
    formula="MACs = out.numel * Cin/groups * prod(K)"
    " (transposed: in.numel * Cout/groups * prod(K));"
    " FLOPs = 2*MACs - out.numel, or 2*MACs with bias",
)
def convolution(
    x: Shape, weight: Shape, bias: Shape | None, stride: Any, padding: Any, dilation: Any,
    transposed: bool, output_padding: Any = None, groups: int = 1, *_: Any, out: Shape,
) -> OpCost:
    cost = contraction(conv_macs(x, weight, out, transposed), numel(out), bias=bias is not None)
    return _depthwise(cost, is_depthwise(x, weight, transposed, groups))


@register(
    "aten.convolution_backward",
    formula="grad_input: MACs = forward MACs, FLOPs = 2*MACs - in.numel; grad_weight: MACs ="
    " forward MACs, FLOPs = 2*MACs - weight.numel; grad_bias: FLOPs = grad_out.numel - Cout",
)
def convolution_backward(
    grad_out: Shape, x: Shape, weight: Shape, bias_sizes: Any, stride: Any, padding: Any,
    dilation: Any, transposed: bool, output_padding: Any, groups: int,
    output_mask: list[bool], *, out: Any,
) -> OpCost:
    # The gradient of either operand repeats every product of the forward
    # once: grad_input[i] = sum_j grad_out[j] * w, grad_weight[k] = sum_j
    # grad_out[j] * x, each over exactly the pairs the forward multiplied.
    macs = conv_macs(x, weight, grad_out, transposed)
    cost = OpCost()
    if output_mask[0]:
        cost += contraction(macs, numel(x))
    if output_mask[1]:
        cost += contraction(macs, numel(weight))
    if output_mask[2]:
        channels = grad_out[1]
        cost += OpCost(flops=numel(grad_out) - channels)
    # Both gradients of a depthwise convolution are depthwise too: each
    # channel's products involve that channel alone.
    return _depthwise(cost, is_depthwise(x, weight, transposed, groups))
