"""Small models for the memory tests, each built in a fraction of a second."""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import (
    CheckpointPolicy,
    checkpoint,
    checkpoint_sequential,
    create_selective_checkpoint_contexts,
)


def cnn(inplace: bool = True) -> nn.Module:
    """Conv-BN-ReLU twice, max pool, global average pool, linear head (input 3x32x32)."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(inplace=inplace),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(inplace=inplace),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


class Block(nn.Module):
    """A pre-norm transformer block: causal SDPA attention and a GELU MLP, with residuals."""

    def __init__(self, dim: int = 64, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.out = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        # (B, nh, T, hs)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.out(self.act(self.fc(self.ln2(x))))


class LSTMNet(nn.Module):
    """A two-layer batch-first LSTM with a linear head on every time step."""

    def __init__(self, features: int = 16, hidden: int = 64) -> None:
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out)


class FrozenShared(nn.Module):
    """A frozen submodule in the middle, and one linear layer called twice."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(32, 64)
        self.frozen = nn.Sequential(nn.Linear(64, 64), nn.LayerNorm(64))
        for p in self.frozen.parameters():
            p.requires_grad_(False)
        self.shared = nn.Linear(64, 64)
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.frozen(torch.relu(self.stem(x)))
        x = self.shared(F.gelu(self.shared(x)))
        return self.head(x)


class ResidualMLP(nn.Module):
    """x + W2 relu(W1 LayerNorm(x)): one block of `Checkpointed`."""

    def __init__(self, dim: int = 64, hidden: int = 256) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.up = nn.Linear(dim, hidden)
        self.down = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(torch.relu(self.up(self.norm(x))))


def _save_matmuls(ctx: Any, op: Any, *args: Any, **kwargs: Any) -> CheckpointPolicy:
    """A selective-checkpointing policy: keep matrix products, recompute the rest."""
    if op in (torch.ops.aten.mm.default, torch.ops.aten.addmm.default):
        return CheckpointPolicy.MUST_SAVE
    return CheckpointPolicy.PREFER_RECOMPUTE


CHECKPOINT_FORMS = ("non-reentrant", "reentrant", "sequential", "selective")


class Checkpointed(nn.Module):
    """Four residual blocks under activation checkpointing, in one of its forms:
    "non-reentrant", "reentrant" (the first block runs plainly: its input needs no
    gradient, which reentrant checkpointing requires), "sequential"
    (`checkpoint_sequential` in two segments) or "selective" (`_save_matmuls`)."""

    def __init__(self, form: str) -> None:
        super().__init__()
        self.form = form
        self.blocks = nn.Sequential(*(ResidualMLP() for _ in range(4)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.form == "sequential":
            out: torch.Tensor = checkpoint_sequential(self.blocks, 2, x, use_reentrant=False)
            return out
        for block in self.blocks:
            if self.form == "reentrant":
                x = checkpoint(block, x, use_reentrant=True) if x.requires_grad else block(x)
            elif self.form == "selective":
                context = partial(create_selective_checkpoint_contexts, _save_matmuls)
                x = checkpoint(block, x, use_reentrant=False, context_fn=context)
            elif self.form == "non-reentrant":
                x = checkpoint(block, x, use_reentrant=False)
            else:
                raise ValueError(f"unknown checkpointing form {self.form!r}")
        return x


class CheckpointedBlock(nn.Module):
    """`inner` run under non-reentrant activation checkpointing."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = checkpoint(self.inner, x, use_reentrant=False)
        return out
