"""Selective checkpointing op by op under a budget (`advisor.selective`): the knapsack's
items are each block's ops with their output bytes and FLOPs, and the fit it finds is
an analysis of the model checkpointed so by hand."""

from __future__ import annotations

import copy

import torch
import torch.utils.checkpoint as torch_checkpoint
import torchvision
from torch import nn

import memflops
from memflops.advisor.advise import measure
from memflops.advisor.selective import op_items


class FeedForward(nn.Module):
    def __init__(self, d: int = 64, h: int = 256) -> None:
        super().__init__()
        self.up, self.act, self.down = nn.Linear(d, h), nn.GELU(), nn.Linear(h, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(self.act(self.up(x)))  # type: ignore[no-any-return]


def test_items_are_each_blocks_ops_with_their_output_bytes_and_flops() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(*(FeedForward() for _ in range(4)))
    report = memflops.analyze(net, (128, 64), mode="train", optimizer="sgd")
    items = op_items(report, ["0", "1", "2", "3"])
    found = {items.blocks[i.name][0]: (i.weight, i.value, i.count) for i in items.items}
    # per block, batch 128, fp32: the two linears' addmm write 128 x 256 x 4 = 131,072 B
    # and 128 x 64 x 4 = 32,768 B, and cost 2 x 128 x 64 x 256 = 4,194,304 FLOPs each
    # (bias: 2 x MACs); GELU writes 131,072 B for 5 FLOPs an element (163,840); the
    # residual add writes 32,768 B, one FLOP an element (8,192). Four identical blocks:
    # each item has four copies.
    assert found == {"aten.addmm": (131_072 + 32_768, 2 * 4_194_304, 4),
                     "aten.gelu": (131_072, 163_840, 4),
                     "aten.add": (32_768, 8_192, 4)}
    assert items.blocks[next(i.name for i in items.items if i.name.startswith("aten.gelu"))][
        1] == ("0", "1", "2", "3")


def keep_by_hand(kept: frozenset[str]) -> object:
    def policy(ctx: object, op: torch._ops.OpOverload, *args: object,
               **kwargs: object) -> torch_checkpoint.CheckpointPolicy:
        if str(op.overloadpacket) in kept:
            return torch_checkpoint.CheckpointPolicy.MUST_SAVE
        return torch_checkpoint.CheckpointPolicy.PREFER_RECOMPUTE

    return policy


class Selective(nn.Module):
    """A block under selective checkpointing, keeping the outputs of `kept`, by hand."""

    def __init__(self, block: nn.Module, kept: frozenset[str]) -> None:
        super().__init__()
        self.block, self.kept = block, kept

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def context() -> object:
            return torch_checkpoint.create_selective_checkpoint_contexts(
                keep_by_hand(self.kept))

        return torch_checkpoint.checkpoint(  # type: ignore[no-any-return]
            self.block, x, use_reentrant=False, context_fn=context)


def test_a_budget_between_whole_and_no_checkpointing_keeps_some_ops() -> None:
    # ResNet-18, batch 32, Adam: every block checkpointed whole peaks at 668,131,880 B
    # and recomputes 108.8 GFLOPs; a budget of 720,000,000 B leaves room to keep the
    # costliest outputs (the late stages' convolutions, small and expensive)
    net = torchvision.models.resnet18()
    shape = (32, 3, 224, 224)
    budget = 720_000_000
    advice = memflops.advise(net, shape, mode="train", optimizer="adam", budget=budget,
                             only=["checkpoint-blocks"])
    fit = advice.fit
    assert fit is not None and fit.fits and fit.measured is not None and fit.kept_ops
    kept: dict[str, set[str]] = {}
    for entry in fit.kept_ops:
        block, op = entry.split(":")
        kept.setdefault(block, set()).add(op)
    by_hand = copy.deepcopy(net)
    for layer in ("layer1", "layer2", "layer3", "layer4"):
        stage = by_hand.get_submodule(layer)
        for i in range(len(stage)):
            stage[i] = Selective(stage[i], frozenset(kept.get(f"{layer}.{i}", ())))
    assert fit.measured == measure(memflops.analyze(by_hand, shape, mode="train",
                                                    optimizer="adam"))
    assert fit.measured.peak <= budget
    whole = advice.change("checkpoint-blocks").measured
    assert whole is not None and fit.measured.flops_recompute < whole.flops_recompute
    assert "checkpointed selectively, keeping the outputs of aten.convolution" in fit.note
