"""Activation checkpointing of each repeated block: which blocks, the same outputs and
gradients on real tensors, and the numbers of a model checkpointed by hand."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.utils.checkpoint as torch_checkpoint
import torchvision
from torch import nn

import memflops
from memflops.advisor.advise import applied_step, measure
from memflops.advisor.changes import CHANGES, Step
from memflops.advisor.checkpoint import repeated_blocks
from memflops.capture.inputs import normalize_inputs

from .nets import small_net

INPUT = (2, 3, 16, 16)


def test_repeated_blocks_are_composite_children_of_one_class() -> None:
    assert repeated_blocks(small_net()) == ["blocks.0", "blocks.1"]
    with torch.device("meta"):
        resnet = torchvision.models.resnet50()
    # 3 + 4 + 6 + 3 bottlenecks; a Sequential of leaf layers (VGG's features) has none.
    assert len(repeated_blocks(resnet)) == 16
    assert repeated_blocks(resnet)[:2] == ["layer1.0", "layer1.1"]
    assert repeated_blocks(nn.Sequential(nn.Conv2d(3, 3, 3), nn.ReLU(), nn.Conv2d(3, 3, 3))) == []


def test_checkpointing_keeps_outputs_and_gradients() -> None:
    net = small_net()
    step = Step(net, normalize_inputs(INPUT), {"mode": "train"})
    changed = applied_step(CHANGES["checkpoint-blocks"], step).step.module
    x = torch.randn(INPUT)
    out, out_changed = net(x), changed(x)
    torch.testing.assert_close(out_changed, out)
    out.sum().backward()
    out_changed.sum().backward()
    for (name, p), q in zip(net.named_parameters(), changed.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, msg=name)
    assert "forward" not in vars(net.blocks[0])  # the original is not checkpointed


class Checkpointed(nn.Module):
    """A block run under non-reentrant checkpointing, written by hand."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch_checkpoint.checkpoint(self.block, x, use_reentrant=False)  # type: ignore[no-any-return]


def test_numbers_are_those_of_a_model_checkpointed_by_hand() -> None:
    net = small_net()
    advice = memflops.advise(net, INPUT, mode="train", only=["checkpoint-blocks"])
    by_hand = copy.deepcopy(net)
    by_hand.blocks = nn.Sequential(*(Checkpointed(b) for b in by_hand.blocks))
    result = advice.change("checkpoint-blocks")
    assert result.measured == measure(memflops.analyze(by_hand, INPUT, mode="train"))
    assert result.measured is not None and result.measured.flops_recompute > 0
    assert result.delta is not None and result.delta.activations < 0
    assert result.modules == ("blocks.0", "blocks.1")


def test_a_hugging_face_model_checkpoints_itself_non_reentrant() -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=100, use_cache=False,
    )
    model = transformers.LlamaForCausalLM(config)
    advice = memflops.advise(model, {"input_ids": (2, 16)}, mode="train",
                             only=["checkpoint-blocks"])
    by_hand = copy.deepcopy(model)
    by_hand.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    result = advice.change("checkpoint-blocks")
    assert result.modules == ("model.layers.0", "model.layers.1")
    assert not any(getattr(m, "gradient_checkpointing", False) for m in model.modules())
    assert result.measured == measure(
        memflops.analyze(by_hand, {"input_ids": (2, 16)}, mode="train"))
    assert result.measured is not None and result.measured.flops_recompute > 0


def test_inference_is_not_applicable() -> None:
    advice = memflops.advise(small_net(), INPUT, mode="inference", only=["checkpoint-blocks"])
    reason = advice.change("checkpoint-blocks").reason
    assert reason == "inference keeps no activations for backward"
