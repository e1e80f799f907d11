"""A transformer encoder layer that takes jagged nested tensors (`torch.nested`,
layout `torch.jagged`), as PyTorch's nested-tensor tutorial builds one: sequences of
different lengths packed without padding.

    memflops analyze examples/jagged_transformer.py:model --input "[128,512,300,80]x512" \\
        --mode train --dtype bf16

analyses four sequences of 128, 512, 300 and 80 tokens of width 512, each at its own
length; `--input 4x512x512` is the same layer on the batch padded to 512.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class EncoderLayer(nn.Module):
    """Pre-norm self-attention and MLP blocks; dense or jagged (batch, seq, width) inputs."""

    def __init__(self, width: int = 512, heads: int = 8, hidden: int = 2048) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (t.unflatten(-1, [self.heads, -1]).transpose(1, 2)
                   for t in self.qkv(self.norm1(x)).chunk(3, dim=-1))
        attended = F.scaled_dot_product_attention(q, k, v)
        x = x + self.proj(attended.transpose(1, 2).flatten(-2))
        out: torch.Tensor = x + self.fc2(F.gelu(self.fc1(self.norm2(x))))
        return out


def model() -> nn.Module:
    return EncoderLayer()
