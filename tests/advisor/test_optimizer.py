"""Optimizer changes: the fused Adam kernel makes the same update as the foreach one on
real tensors; each swap is the analysis of the step with that optimizer; and when no
named optimizer runs, the swaps say why they do not apply."""

from __future__ import annotations

import copy

import torch
from torch import nn

import memflops
from memflops.advisor.advise import measure
from memflops.memory.optimizers import NAMED

from .nets import small_net

INPUT = (2, 3, 16, 16)
SWAPS = ["sgd-momentum", "adam8bit", "adafactor", "fused-optimizer"]


def test_the_fused_adam_step_is_the_foreach_step() -> None:
    """Both optimizers get the same gradients at each step (computed once, on the foreach
    copy): a convolution bias before BatchNorm has a gradient of rounding noise, which a
    second backward through weights that differ in the last bit would change entirely."""
    net = small_net()
    fused = copy.deepcopy(net)
    x = torch.randn(INPUT)
    foreach_opt = NAMED["adam"](list(net.parameters()))
    fused_opt = NAMED["adam-fused"](list(fused.parameters()))
    for _ in range(3):
        foreach_opt.zero_grad()
        net(x).sum().backward()
        for p, q in zip(net.parameters(), fused.parameters(), strict=True):
            q.grad = None if p.grad is None else p.grad.clone()
        foreach_opt.step()
        fused_opt.step()
    for (name, p), q in zip(net.named_parameters(), fused.parameters(), strict=True):
        torch.testing.assert_close(q, p, msg=name)
    assert fused_opt.defaults["fused"] and foreach_opt.defaults["foreach"]


def test_each_swap_is_the_step_with_that_optimizer() -> None:
    net = small_net()
    advice = memflops.advise(net, INPUT, mode="train", only=SWAPS)
    for change, optimizer in (("sgd-momentum", "sgd-momentum"), ("adam8bit", "adam8bit"),
                              ("adafactor", "adafactor"), ("fused-optimizer", "adam-fused")):
        expected = measure(memflops.analyze(net, INPUT, mode="train", optimizer=optimizer))
        assert advice.change(change).measured == expected, change
    assert advice.change("fused-optimizer").preserves_function
    assert not advice.change("adam8bit").preserves_function


def test_without_a_named_optimizer_no_swap_applies() -> None:
    reasons = {
        "inference": "inference runs no optimizer",
        "none": "the step runs no optimizer",
    }
    infer = memflops.advise(small_net(), INPUT, mode="inference", only=SWAPS)
    assert {c.reason for c in infer.changes} == {reasons["inference"]}
    plain = memflops.advise(small_net(), INPUT, mode="train", optimizer="none", only=SWAPS)
    assert {c.reason for c in plain.changes} == {reasons["none"]}
    own = memflops.advise(small_net(), INPUT, mode="train",
                          optimizer=lambda ps: torch.optim.SGD(ps, lr=0.1), only=SWAPS)
    assert {c.reason for c in own.changes} == {
        "the optimizer is the user's own instance or factory"}
    sgd = memflops.advise(nn.Linear(4, 4), (2, 4), mode="train", optimizer="sgd",
                          only=["adam8bit", "fused-optimizer"])
    assert sgd.change("adam8bit").reason == "the step uses sgd, not Adam"
    assert sgd.change("fused-optimizer").reason == "sgd has no fused form here (adam and adamw do)"


def test_advice_under_a_parallel_layout_is_one_gpus() -> None:
    """With `parallel`, the baseline and each change are analysed as one rank of the
    layout: the baseline peak is `analyze`'s under the same layout."""
    net = small_net()
    advice = memflops.advise(net, INPUT, mode="train", parallel="ddp=2,zero=1",
                             only=["sgd-momentum"])
    report = memflops.analyze(net, INPUT, mode="train", parallel="ddp=2,zero=1")
    assert advice.baseline.peak == report.totals.memory.peak
    change = next(c for c in advice.changes if c.name == "sgd-momentum")
    swapped = memflops.analyze(net, INPUT, mode="train", optimizer="sgd-momentum",
                               parallel="ddp=2,zero=1")
    assert change.measured is not None and change.measured.peak == swapped.totals.memory.peak
