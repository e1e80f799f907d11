"""Activations made in-place: the same outputs and gradients on real tensors, and the
numbers of an independent analysis of the model made in-place by hand."""

from __future__ import annotations

import copy

import torch
from torch import nn

import memflops
from memflops.advisor.advise import applied_step, measure
from memflops.advisor.changes import CHANGES, Step
from memflops.capture.inputs import normalize_inputs

from .nets import small_net

INPUT = (2, 3, 16, 16)
RELUS = ("stem.2", "blocks.0.relu", "blocks.1.relu", "classifier.1")


def test_in_place_keeps_outputs_and_gradients() -> None:
    net = small_net()
    step = Step(net, normalize_inputs(INPUT), {"mode": "train"})
    applied = applied_step(CHANGES["inplace-activations"], step)
    changed = applied.step.module
    assert applied.modules == RELUS
    assert not any(getattr(m, "inplace", False) for m in net.modules())  # the original is kept
    x = torch.randn(INPUT)
    out, out_changed = net(x), changed(x)
    torch.testing.assert_close(out_changed, out)
    out.sum().backward()
    out_changed.sum().backward()
    for (name, p), q in zip(net.named_parameters(), changed.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, msg=name)


def test_numbers_are_those_of_a_model_made_in_place_by_hand() -> None:
    net = small_net()
    advice = memflops.advise(net, INPUT, mode="train", only=["inplace-activations"])
    by_hand = copy.deepcopy(net)
    for path in RELUS:
        by_hand.set_submodule(path, nn.ReLU(inplace=True))
    result = advice.change("inplace-activations")
    assert result.measured == measure(memflops.analyze(by_hand, INPUT, mode="train"))


def test_in_inference_the_input_of_an_activation_is_not_kept_beside_its_output() -> None:
    # Linear(64, 64) -> ReLU -> Linear(64, 1) on batch 128. Before: the peak is at the ReLU,
    # params + x + h + relu(h), with h = 128 * 64 * 4 = 32,768 B. In-place, the ReLU writes
    # over h, and the peak moves to the last linear: params + x + h + y, y = 128 * 1 * 4 =
    # 512 B. Saved: 32,768 - 512 = 32,256 B.
    net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
    advice = memflops.advise(net, (128, 64), mode="inference", only=["inplace-activations"])
    result = advice.change("inplace-activations")
    assert result.delta is not None and result.delta.peak == -(128 * 64 * 4 - 128 * 1 * 4)


def test_a_model_already_in_place_is_not_applicable() -> None:
    net = nn.Sequential(nn.Linear(4, 4), nn.ReLU(inplace=True))
    advice = memflops.advise(net, (2, 4), mode="train", only=["inplace-activations"])
    assert advice.change("inplace-activations").reason == (
        "every one of the 1 activations with an inplace option is in-place already")
