"""A Megatron-style GPT layer under tensor parallel against Megatron's theoretical
activation memory (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large
Transformer Models", section 4.1 and 4.2.1, 16-bit activations):

    per layer, no parallelism:   34 s b h + 5 a s^2 b          bytes
    per layer, tensor parallel:  s b h (10 + 24 / t + 5 a s / (h t))  bytes

memflops' per-layer saved activations (the `layers.1` module row, captured under
`parallel="tp=t"` with DTensor's `parallelize_module`) equal the formula plus three
terms, each derived below: the dropout masks are kept in the activation dtype (2 bytes
per element; the paper counts 1), LayerNorm's mean and reciprocal standard deviation
(float32, per token, ignored by the paper), and the layer's first LayerNorm input, which
is the previous layer's output and so counted in the previous layer's row.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import memflops

S, B, H, A, LAYERS = 32, 2, 64, 4, 2
"""Sequence, batch, hidden, heads (as the paper names them)."""
PLAN = {
    "layers.*.attn.q": "colwise", "layers.*.attn.k": "colwise", "layers.*.attn.v": "colwise",
    "layers.*.attn.proj": "rowwise", "layers.*.mlp.fc1": "colwise",
    "layers.*.mlp.fc2": "rowwise",
}
"""Megatron's split: Q, K, V and the first MLP Linear column-wise, the rest row-wise."""


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q, self.k, self.v = nn.Linear(H, H), nn.Linear(H, H), nn.Linear(H, H)
        self.proj = nn.Linear(H, H)
        self.drop, self.resid = nn.Dropout(0.1), nn.Dropout(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        d = H // A  # head size; view(..., -1, d) leaves the local heads under tp
        q = self.q(x).view(b, s, -1, d).transpose(1, 2)  # (B, a, S, d)
        k = self.k(x).view(b, s, -1, d).transpose(1, 2)
        v = self.v(x).view(b, s, -1, d).transpose(1, 2)
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d))
        y = self.drop(torch.softmax(scores, dim=-1)) @ v
        return self.resid(self.proj(y.transpose(1, 2).reshape(b, s, -1)))


class FeedForward(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(H, 4 * H), nn.Linear(4 * H, H)
        self.drop = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(nn.functional.gelu(self.fc1(x))))


class Layer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(H), Attention()
        self.ln2, self.mlp = nn.LayerNorm(H), FeedForward()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([Layer() for _ in range(LAYERS)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


def megatron(t: int) -> int:
    """Korthikanti et al. 2022, bytes per layer (equation 2 at t = 1)."""
    sbh = S * B * H
    return (34 * sbh + 5 * A * S * S * B if t == 1
            else sbh * 10 + (24 * sbh + 5 * A * S * S * B) // t)


@pytest.mark.parametrize("t", [1, 2, 4])
def test_a_layer_under_tensor_parallel_is_megatrons_formula_plus_named_terms(t: int) -> None:
    report = memflops.analyze(
        GPT(), (B, S, H), mode="train", optimizer="sgd", dtype="bf16",
        parallel=None if t == 1 else f"tp={t}", tp_plan=None if t == 1 else PLAN,
    )
    layer = {row.path: row.activation_bytes for row in report.modules}["layers.1"]
    sbh = S * B * H  # 4,096
    # dropout masks at 2 bytes, not 1: the attention mask (a s^2 b / t more) and the two
    # residual-path masks (sbh each, replicated under tensor parallel)
    masks = A * S * S * B // t + 2 * sbh
    # two LayerNorms' mean and rstd, float32, per token: 2 * 2 * s b * 4 bytes = 1,024
    norm_stats = 16 * S * B
    # the first LayerNorm's input (2 s b h bytes) is the previous layer's output
    previous = 2 * sbh
    assert layer == megatron(t) + masks + norm_stats - previous
    # t = 1: 180,224 + 16,384 + 1,024 - 8,192 = 189,440 bytes
    assert (t != 1) or layer == 189_440
