"""Batch norm removed (training) and folded into its conv (inference): the folded model
computes what the original does, on real tensors, and each reported number is an
independent analysis of the same model rewritten by hand."""

from __future__ import annotations

import copy

import torch
from torch import nn

import memflops
from memflops.advisor.advise import measure
from memflops.advisor.batchnorm import conv_bn_pairs

from .nets import WIDTH, small_net

INPUT = (2, 3, 16, 16)
BN_PATHS = ("stem.1", "blocks.0.bn1", "blocks.0.bn2", "blocks.1.bn1", "blocks.1.bn2")


def test_pairs_are_sequential_neighbours_and_siblings_named_alike() -> None:
    assert conv_bn_pairs(small_net()) == [
        ("stem.0", "stem.1"),
        ("blocks.0.conv1", "blocks.0.bn1"), ("blocks.0.conv2", "blocks.0.bn2"),
        ("blocks.1.conv1", "blocks.1.bn1"), ("blocks.1.conv2", "blocks.1.bn2"),
    ]


def _folded_by_advise(net: nn.Module) -> tuple[memflops.Advice, nn.Module]:
    from memflops.advisor.advise import applied_step
    from memflops.advisor.changes import CHANGES, Step
    from memflops.capture.inputs import normalize_inputs

    advice = memflops.advise(net, INPUT, mode="inference", only=["bn-folded"])
    step = Step(net, normalize_inputs(INPUT), {"mode": "inference"})
    return advice, applied_step(CHANGES["bn-folded"], step).step.module


def test_folding_keeps_the_function_and_leaves_the_model_alone() -> None:
    net = small_net().eval()
    before = copy.deepcopy(net.state_dict())
    _, folded = _folded_by_advise(net)
    x = torch.randn(INPUT)
    with torch.no_grad():
        torch.testing.assert_close(folded.eval()(x), net(x), rtol=1e-5, atol=1e-5)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 5


def test_folded_numbers_are_those_of_a_model_folded_by_hand() -> None:
    net = small_net().eval()
    advice, _ = _folded_by_advise(net)
    by_hand = copy.deepcopy(net)
    for path in BN_PATHS:
        by_hand.set_submodule(path, nn.Identity())
    for path in ("blocks.0.conv1", "blocks.0.conv2", "blocks.1.conv1", "blocks.1.conv2"):
        conv = by_hand.get_submodule(path)
        assert isinstance(conv, nn.Conv2d)
        conv.bias = nn.Parameter(torch.zeros(WIDTH))
    result = advice.change("bn-folded")
    assert result.measured == measure(memflops.analyze(by_hand, INPUT, mode="inference"))
    # 5 BNs lose gamma and beta (5 * 2 * 8 = 80); 4 bias-free convs gain a bias (4 * 8 = 32).
    assert result.delta is not None and result.delta.params == -80 + 32
    assert result.modules == BN_PATHS and result.preserves_function


def test_removing_bn_is_measured_on_a_model_without_bn() -> None:
    net = small_net()
    advice = memflops.advise(net, INPUT, mode="train", only=["bn-removed"])
    by_hand = copy.deepcopy(net)
    for path in BN_PATHS:
        by_hand.set_submodule(path, nn.Identity())
    result = advice.change("bn-removed")
    assert result.measured == measure(memflops.analyze(by_hand, INPUT, mode="train"))
    assert not result.preserves_function
    assert result.article_claim is not None and result.article_claim.saved == 0.40
    assert result.delta is not None and result.delta.params == -80  # 5 * (8 gamma + 8 beta)


def test_each_is_not_applicable_in_the_other_mode() -> None:
    train = memflops.advise(small_net(), INPUT, mode="train", only=["bn-folded"])
    assert not train.change("bn-folded").applies
    assert "batch statistics" in train.change("bn-folded").reason
    infer = memflops.advise(small_net(), INPUT, mode="inference", only=["bn-removed"])
    assert "bn-folded" in infer.change("bn-removed").reason
    plain = memflops.advise(nn.Sequential(nn.Conv2d(3, 4, 3)), INPUT, mode="inference",
                            only=["bn-folded"])
    assert plain.change("bn-folded").reason == "no BatchNorm directly after a convolution"
