"""The article's convolution rewrites: the output shape of every module is kept, the
multiply-adds follow the arithmetic, and the numbers are those of a model rewritten by
hand."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import memflops
from memflops.advisor.advise import measure
from memflops.advisor.convs import (
    depthwise_separable,
    five_as_two_threes,
    one_by_n_then_n_by_one,
)

from .nets import small_net

INPUT = (2, 3, 16, 16)
REWRITES = ("conv-5x5-as-3x3", "conv-nxn-as-1xn-nx1", "conv-depthwise-separable")


@pytest.mark.parametrize("rewrite", [five_as_two_threes, one_by_n_then_n_by_one,
                                     depthwise_separable])
@pytest.mark.parametrize(("kernel", "stride", "padding", "size"), [
    (5, 1, 2, 11), (5, 1, 0, 12), (5, 1, 1, 9), (5, 1, (2, 1), 10), (3, 2, 1, 15),
    (7, 2, 3, 17), (3, 1, 0, 8),
])
def test_each_rewrite_keeps_the_output_shape(rewrite, kernel, stride, padding, size) -> None:  # type: ignore[no-untyped-def]
    conv = nn.Conv2d(6, 6, kernel, stride=stride, padding=padding)
    new = rewrite(conv)
    if new is None:  # not eligible: 5x5 only at stride 1, and so on
        return
    x = torch.randn(1, 6, size, size + 3)
    assert new(x).shape == conv(x).shape


def test_eligibility() -> None:
    assert five_as_two_threes(nn.Conv2d(4, 4, 5, stride=2)) is None
    assert five_as_two_threes(nn.Conv2d(4, 4, 3)) is None
    assert one_by_n_then_n_by_one(nn.Conv2d(4, 4, 3, groups=2)) is None
    # 64 -> 128 at 3x3 through 64 channels: 3 * 64 * (64 + 128) = 36,864 multiply-adds per
    # output point instead of 9 * 64 * 128 = 73,728.
    first, second = one_by_n_then_n_by_one(nn.Conv2d(64, 128, 3)) or (None, None)
    assert isinstance(first, nn.Conv2d) and isinstance(second, nn.Conv2d)
    assert first.weight.numel() + second.weight.numel() == 3 * 64 * 64 + 3 * 64 * 128
    # Depthwise-separable to one channel: 9 * 4 + 4 * 1 = 40 >= 9 * 4 * 1 = 36, kept as is.
    assert depthwise_separable(nn.Conv2d(4, 1, 3)) is None
    assert depthwise_separable(nn.Conv2d(4, 4, 1)) is None
    assert depthwise_separable(nn.Conv2d(4, 4, 3, padding="same")) is None


def test_5x5_as_two_3x3_costs_18_of_25_multiply_adds() -> None:
    c, h, w, b = 16, 12, 12, 2
    net = nn.Sequential(nn.Conv2d(c, c, 5, padding=2, bias=False))
    advice = memflops.advise(net, (b, c, h, w), mode="inference", only=["conv-5x5-as-3x3"])
    result = advice.change("conv-5x5-as-3x3")
    # Per output point: 25 * C * C before; 9 * C * C + 9 * C * C = 18 * C * C after (the
    # padding 2 split 1 + 1 keeps every intermediate map h x w).
    assert advice.baseline.macs_forward == b * h * w * 25 * c * c
    assert result.measured is not None
    assert result.measured.macs_forward == b * h * w * 18 * c * c
    assert result.module_changes[0].path == "0"
    assert result.module_changes[0].macs_forward_after * 25 == \
        result.module_changes[0].macs_forward_before * 18


def test_1xn_nx1_and_depthwise_follow_the_arithmetic() -> None:
    c, h, w, b, n = 8, 10, 10, 2, 3
    net = nn.Sequential(nn.Conv2d(c, c, n, padding=1, bias=False))
    advice = memflops.advise(net, (b, c, h, w), mode="inference",
                             only=["conv-nxn-as-1xn-nx1", "conv-depthwise-separable"])
    separable = advice.change("conv-nxn-as-1xn-nx1").measured
    depthwise = advice.change("conv-depthwise-separable").measured
    assert separable is not None and depthwise is not None
    assert separable.macs_forward == b * h * w * (n * c * c + n * c * c)  # 2n C^2, not n^2 C^2
    assert depthwise.macs_forward == b * h * w * (n * n * c + c * c)  # k^2 C + C^2


def test_every_module_keeps_its_output_shape_and_numbers_match_a_hand_rewrite() -> None:
    net = small_net()
    advice = memflops.advise(net, INPUT, mode="train", only=list(REWRITES))
    rows = memflops.analyze(net, INPUT, mode="train").by_module()
    for name in REWRITES:
        result = advice.change(name)
        assert result.measured is not None, result.reason
        assert result.modules
        by_hand = copy.deepcopy(net)
        for path in result.modules:
            conv = by_hand.get_submodule(path)
            assert isinstance(conv, nn.Conv2d)
            rewrite = {"conv-5x5-as-3x3": five_as_two_threes,
                       "conv-nxn-as-1xn-nx1": one_by_n_then_n_by_one,
                       "conv-depthwise-separable": depthwise_separable}[name]
            by_hand.set_submodule(path, rewrite(conv))
        report = memflops.analyze(by_hand, INPUT, mode="train")
        assert result.measured == measure(report), name
        changed_rows = report.by_module()
        for path, row in rows.items():
            if path in changed_rows:
                assert changed_rows[path].output_shape == row.output_shape, (name, path)
    assert advice.change("conv-5x5-as-3x3").modules == ("stem.0",)
