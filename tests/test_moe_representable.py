"""Sparse-MoE blocks `EqualShareMoe` can stand in for, and those left to run as they are."""

from __future__ import annotations

import torch
from torch import nn

from memflops.zoo.hf.moe import EqualShareMoe, make_shape_only, representable, returns_tuple


class Router(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(4, 8))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = x @ self.weight.t()
        weights, index = logits.softmax(-1).topk(2, dim=-1)
        return logits, weights, index


class Block(nn.Module):
    """A router module and 4 experts; returns the hidden states alone (Mixtral, 5.x)."""

    def __init__(self) -> None:
        super().__init__()
        self.top_k = 2
        self.gate = Router()
        self.experts = nn.ModuleList(nn.Linear(8, 8) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def helper() -> tuple[int, int]:
            return 1, 2  # a nested function's tuple is not the block's

        helper()
        return x


class FlatBlock(Block):
    """Returns its output flattened beside the router logits (Ernie 4.5 VL's experts)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        logits, _, _ = self.gate(x)
        return x.flatten(), logits.flatten()  # type: ignore[return-value]


def test_returns_tuple_reads_the_blocks_own_returns() -> None:
    assert not returns_tuple(Block())
    assert returns_tuple(FlatBlock())
    assert representable(Block()) and not representable(FlatBlock())


def test_only_representable_blocks_are_wrapped() -> None:
    model = nn.Sequential(Block(), FlatBlock())
    info = make_shape_only(model)
    assert info is not None and info.blocks == 1
    assert isinstance(model[0], EqualShareMoe)
    assert isinstance(model[1], FlatBlock)  # runs as it is
    # 2 blocks x (4 experts x (64 + 8) + 32 router) = 640; the wrapped one drops
    # (4 - 2) x 72 = 144 inactive expert parameters
    assert (info.total_params, info.active_params) == (640, 496)
