"""Convolution rules: MACs of direct, grouped and depthwise convolutions, forward and
backward, and which of them are depthwise (one input channel per group)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import memflops

from ._meta import aten, cost, meta


def conv(x: torch.Tensor, w: torch.Tensor, groups: int, transposed: bool = False) -> object:
    return cost(aten.convolution.default, x, w, None, [1, 1], [1, 1], [1, 1], transposed,
                [0, 0], groups)


def test_a_depthwise_convolution_marks_all_its_macs_depthwise() -> None:
    # (2, 32, 8, 8) * (32, 1, 3, 3), groups 32: out (2, 32, 8, 8), each output 1 * 9
    # products: 2 * 32 * 64 * 9 = 36,864 MACs, all of them depthwise
    c = conv(meta(2, 32, 8, 8), meta(32, 1, 3, 3), groups=32)
    assert c.macs == c.depthwise_macs == 2 * 32 * 64 * 9 == 36_864
    # a channel multiplier of 2 (Cout = 2 Cin) is still depthwise for PyTorch:
    # out (2, 64, 8, 8) x 9 = 73,728
    c = conv(meta(2, 32, 8, 8), meta(64, 1, 3, 3), groups=32)
    assert c.macs == c.depthwise_macs == 73_728


@pytest.mark.parametrize(("cin", "cout", "groups"), [(32, 32, 1), (32, 32, 8), (32, 32, 16)])
def test_dense_and_grouped_convolutions_are_not_depthwise(cin: int, cout: int,
                                                          groups: int) -> None:
    # groups 8 and 16 leave 4 and 2 input channels per group: a reduction a matrix unit tiles
    c = conv(meta(2, cin, 8, 8), meta(cout, cin // groups, 3, 3), groups=groups)
    assert c.macs == 2 * cout * 64 * (cin // groups) * 9
    assert c.depthwise_macs == 0


def test_a_transposed_depthwise_convolution_is_not_depthwise_as_pytorch_decides() -> None:
    # ConvParams::is_depthwise requires !transposed; weight (Cin, Cout/groups, k, k)
    c = conv(meta(2, 32, 8, 8), meta(32, 1, 3, 3), groups=32, transposed=True)
    assert c.macs == 2 * 32 * 64 * 9 and c.depthwise_macs == 0


def test_a_depthwise_backward_marks_both_gradients() -> None:
    x, w, g = meta(2, 32, 8, 8), meta(32, 1, 3, 3), meta(2, 32, 8, 8)
    c = cost(aten.convolution_backward.default, g, x, w, [32], [1, 1], [1, 1], [1, 1], False,
             [0, 0], 32, [True, True, True])
    # grad_input and grad_weight each repeat the forward's 36,864 products
    assert c.macs == c.depthwise_macs == 2 * 36_864


def test_a_depthwise_step_keeps_its_counts() -> None:
    # the marking moves no MAC. MobileNet-style block on (2, 16, 10, 10):
    # depthwise 3x3: 2 * 16 * 100 * 9 = 28,800 MACs; pointwise 16 -> 32: 2 * 32 * 100 * 16 =
    # 102,400. Forward 2mac = 2 * 131,200 = 262,400, as FlopCounterMode counts it.
    net = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.Conv2d(16, 32, 1))
    with FlopCounterMode(display=False) as counter:
        net(torch.randn(2, 16, 10, 10))
    report = memflops.analyze(net, (2, 16, 10, 10), mode="train", optimizer="sgd")
    forward, backward = report.totals.costs.forward, report.totals.costs.backward
    assert 2 * forward.macs == counter.get_total_flops() == 262_400
    assert forward.depthwise_macs == 28_800
    # backward: the pointwise conv's two gradients (2 * 102,400) and the depthwise conv's
    # weight gradient (28,800; its input needs no gradient). FlopCounterMode counts the
    # depthwise backward as 921,600 = 16 x (2 x 28,800): its backward formula drops groups.
    assert backward.macs == 2 * 102_400 + 28_800
    assert backward.depthwise_macs == 28_800
