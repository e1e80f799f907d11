"""Shared stand-ins of the tests, as fixtures: a transformer written with functional
ops, recurrent models, a language model with tied weights, and the article's layers.

Every size is small so a real CPU run takes milliseconds; the shapes that
the tests' hand counts need are module constants or attributes.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn


class FunctionalBlock(nn.Module):
    """Causal self-attention and an MLP written with functional ops only:
    F.linear, F.scaled_dot_product_attention, torch.einsum, torch.matmul, x + y."""

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Parameter(torch.randn(3 * dim, dim) / dim**0.5)
        self.proj_w = nn.Parameter(torch.randn(dim, dim) / dim**0.5)
        self.proj_b = nn.Parameter(torch.zeros(dim))
        self.up = nn.Parameter(torch.randn(hidden, dim) / dim**0.5)
        self.down = nn.Parameter(torch.randn(dim, hidden) / hidden**0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        qkv = F.linear(x, self.qkv).view(b, t, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, H, T, d/H)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + F.linear(a.transpose(1, 2).reshape(b, t, d), self.proj_w, self.proj_b)
        h = torch.einsum("btd,fd->btf", x, self.up).relu()  # (B, T, hidden)
        return x + torch.matmul(h, self.down.t())


class FunctionalTransformer(nn.Module):
    """Embedding -> `layers` FunctionalBlocks -> tied output head via torch.matmul."""

    def __init__(self, vocab: int = 50, dim: int = 32, heads: int = 4, hidden: int = 64,
                 layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.blocks = nn.ModuleList(FunctionalBlock(dim, heads, hidden) for _ in range(layers))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(input_ids)  # (B, T, dim)
        for block in self.blocks:
            x = block(x)
        return torch.matmul(x, self.embed.weight.t())  # (B, T, vocab)


class Recurrent(nn.Module):
    """A recurrent layer (its sequence output) followed by a linear head."""

    def __init__(self, rnn: nn.RNNBase, classes: int = 5) -> None:
        super().__init__()
        self.rnn = rnn
        directions = 2 if rnn.bidirectional else 1
        self.head = nn.Linear(directions * rnn.hidden_size, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0])


class TiedLM(nn.Module):
    """Embedding and LM head share one weight (vocab, dim)."""

    def __init__(self, vocab: int = 100, dim: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.embed(input_ids)))


def conv_bn_pool_fc(bias: bool) -> nn.Sequential:
    """The article's building blocks: (2, 3, 8, 8) -> conv 3x3 (3 -> 4, padding 1)
    -> batch norm -> max pool 2 -> flatten -> linear 64 -> 10."""
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=bias),
        nn.BatchNorm2d(4),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 10, bias=bias),
    )


@pytest.fixture
def functional_transformer() -> type[FunctionalTransformer]:
    return FunctionalTransformer


@pytest.fixture
def recurrent() -> type[Recurrent]:
    return Recurrent


@pytest.fixture
def tied_lm() -> type[TiedLM]:
    return TiedLM


@pytest.fixture(name="conv_bn_pool_fc")
def conv_bn_pool_fc_fixture() -> Callable[[bool], nn.Sequential]:
    return conv_bn_pool_fc
