"""Fine-tuning the head only: the numbers of the model frozen by hand, and the model
passed in keeps training every parameter."""

from __future__ import annotations

import copy

import memflops
from memflops.advisor.advise import measure
from memflops.advisor.freeze import head_of

from .nets import small_net

INPUT = (2, 3, 16, 16)


def test_the_head_is_the_last_module_with_parameters() -> None:
    assert head_of(small_net()) == "classifier.2"


def test_numbers_are_those_of_the_model_frozen_by_hand() -> None:
    net = small_net()
    advice = memflops.advise(net, INPUT, mode="train", only=["freeze-all-but-head"])
    by_hand = copy.deepcopy(net)
    for name, p in by_hand.named_parameters():
        p.requires_grad_(name.startswith("classifier.2."))
    result = advice.change("freeze-all-but-head")
    assert result.measured == measure(memflops.analyze(by_hand, INPUT, mode="train"))
    assert result.modules == ("classifier.2",)
    assert result.delta is not None and result.delta.peak < 0  # no grads, no Adam state
    assert all(p.requires_grad for p in net.parameters())
    report = memflops.analyze(by_hand, INPUT, mode="train")
    assert report.totals.trainable_params == 16 * 10 + 10  # Linear(16, 10)


def test_inference_is_not_applicable() -> None:
    advice = memflops.advise(small_net(), INPUT, mode="inference", only=["freeze-all-but-head"])
    assert advice.change("freeze-all-but-head").reason == "inference trains nothing"
