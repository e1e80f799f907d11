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
from memflops.advisor.checkpoint import checkpoint_block, repeated_blocks
from memflops.capture.inputs import normalize_inputs

from .nets import Block, Checkpointed, small_net

INPUT = (2, 3, 16, 16)


def test_repeated_blocks_are_composite_children_of_one_class() -> None:
    assert repeated_blocks(small_net()) == ["blocks.0", "blocks.1"]
    with torch.device("meta"):
        resnet = torchvision.models.resnet50()
    # 3 + 4 + 6 + 3 bottlenecks; a Sequential of leaf layers (VGG's features) has none.
    assert len(repeated_blocks(resnet)) == 16
    assert repeated_blocks(resnet)[:2] == ["layer1.0", "layer1.1"]
    assert repeated_blocks(nn.Sequential(nn.Conv2d(3, 3, 3), nn.ReLU(), nn.Conv2d(3, 3, 3))) == []


@pytest.mark.parametrize("name", ["checkpoint-blocks", "checkpoint-selective"])
def test_checkpointing_keeps_outputs_and_gradients(name: str) -> None:
    net = small_net()
    step = Step(net, normalize_inputs(INPUT), {"mode": "train"})
    changed = applied_step(CHANGES[name], step).step.module
    x = torch.randn(INPUT)
    out, out_changed = net(x), changed(x)
    torch.testing.assert_close(out_changed, out)
    out.sum().backward()
    out_changed.sum().backward()
    for (name, p), q in zip(net.named_parameters(), changed.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, msg=name)
    assert "forward" not in vars(net.blocks[0])  # the original is not checkpointed


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


def tiny_llama() -> nn.Module:
    """A 2-layer Hugging Face Llama (hidden 32, 4 heads, 2 key/value heads), without cache."""
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=100, use_cache=False,
    )
    model: nn.Module = transformers.LlamaForCausalLM(config)
    return model


def test_a_hugging_face_model_checkpoints_itself_non_reentrant() -> None:
    model = tiny_llama()
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


def test_a_budget_checkpoints_only_as_many_blocks_as_it_needs() -> None:
    net = nn.Sequential(*(Block() for _ in range(4)))
    inputs = (8, 8, 32, 32)

    def checkpointing(k: int) -> nn.Module:
        by_hand = copy.deepcopy(net)
        for i in range(k):
            by_hand[i] = Checkpointed(by_hand[i])
        return by_hand

    def peak(k: int) -> int:
        return memflops.analyze(checkpointing(k), inputs, mode="train", optimizer="sgd") \
            .totals.memory.peak

    budget = peak(2)
    assert peak(4) < budget < peak(0)
    advice = memflops.advise(net, inputs, mode="train", optimizer="sgd", budget=budget,
                             only=["checkpoint-blocks"])
    fit = advice.fit
    assert fit is not None and fit.fits and fit.changes == ("checkpoint-blocks",)
    k = len(fit.checkpointed)
    assert 1 <= k <= 2 and fit.checkpointed == tuple(str(i) for i in range(k))
    assert fit.measured == measure(memflops.analyze(checkpointing(k), inputs, mode="train",
                                                    optimizer="sgd"))
    assert peak(k - 1) > budget  # one block fewer would not fit


def test_one_hugging_face_layer_checkpointed_by_the_block_wrapper() -> None:
    """The budget's partial checkpointing wraps single layers itself, keyword arguments
    (position embeddings, masks) included: same logits and gradients, and one region."""
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=100, use_cache=False,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    changed = copy.deepcopy(model)
    checkpoint_block(changed.model.layers[0])
    x = torch.randint(0, 100, (2, 16))
    out, out_changed = model(x).logits, changed(x).logits
    torch.testing.assert_close(out_changed, out)
    out.sum().backward()
    out_changed.sum().backward()
    for (name, p), q in zip(model.named_parameters(), changed.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, msg=name)
    report = memflops.analyze(changed, {"input_ids": (2, 16)}, mode="train")
    assert report.checkpointing is not None
    assert report.checkpointing.modules == ("model.layers.0",)


aten = torch.ops.aten
KEPT_BY_HAND = {aten.mm, aten.addmm, aten.bmm, aten.baddbmm, aten.convolution,
                aten._scaled_dot_product_flash_attention,
                aten._scaled_dot_product_efficient_attention}


def keep_by_hand(ctx: object, op: torch._ops.OpOverload, *args: object,
                 **kwargs: object) -> torch_checkpoint.CheckpointPolicy:
    kept = op.overloadpacket in KEPT_BY_HAND
    return (torch_checkpoint.CheckpointPolicy.MUST_SAVE if kept
            else torch_checkpoint.CheckpointPolicy.PREFER_RECOMPUTE)


class SelectivelyCheckpointed(nn.Module):
    """A block under selective checkpointing written by hand: convolutions and matmuls kept."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def context() -> object:
            return torch_checkpoint.create_selective_checkpoint_contexts(keep_by_hand)

        return torch_checkpoint.checkpoint(  # type: ignore[no-any-return]
            self.block, x, use_reentrant=False, context_fn=context)


def test_selective_checkpointing_is_a_model_checkpointed_so_by_hand() -> None:
    net = small_net()
    advice = memflops.advise(net, INPUT, mode="train",
                             only=["checkpoint-blocks", "checkpoint-selective"])
    by_hand = copy.deepcopy(net)
    by_hand.blocks = nn.Sequential(*(SelectivelyCheckpointed(b) for b in by_hand.blocks))
    selective, whole = advice.change("checkpoint-selective"), advice.change("checkpoint-blocks")
    assert selective.measured == measure(memflops.analyze(by_hand, INPUT, mode="train"))
    assert selective.modules == ("blocks.0", "blocks.1")
    # it keeps what checkpointing whole blocks drops (the convolutions' outputs), so it
    # saves fewer activations, and recomputes only the cheap ops (BN, ReLU, adds)
    assert selective.measured is not None and whole.measured is not None
    assert whole.measured.activations < selective.measured.activations < advice.baseline.activations
    assert 0 < selective.measured.flops_recompute < whole.measured.flops_recompute


def test_selective_checkpointing_of_a_hugging_face_model_uses_its_own_switch() -> None:
    model = tiny_llama()
    inputs = {"input_ids": (2, 16)}
    advice = memflops.advise(model, inputs, mode="train", only=["checkpoint-selective"])
    by_hand = copy.deepcopy(model)
    by_hand.gradient_checkpointing_enable(gradient_checkpointing_kwargs={
        "use_reentrant": False,
        "context_fn": lambda: torch_checkpoint.create_selective_checkpoint_contexts(
            keep_by_hand)})
    result = advice.change("checkpoint-selective")
    assert result.modules == ("model.layers.0", "model.layers.1")
    assert result.measured == measure(memflops.analyze(by_hand, inputs, mode="train"))
    base = memflops.analyze(model, inputs, mode="train")
    assert result.measured is not None
    assert result.measured.activations < base.totals.memory.activations
