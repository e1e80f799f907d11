"""Benchmark models written in plain PyTorch.

`Decoder` is a Llama-2-style decoder-only transformer: RMSNorm before each
block, rotary position embeddings, grouped-query attention through
`F.scaled_dot_product_attention(is_causal=True)`, a SwiGLU MLP and an untied
LM head. `LLAMA2_70B` has the shapes of Llama-2-70B, and `build_decoder`
constructs it on the meta device, so building costs no memory.

Rotary tables are computed in `forward` from the sequence length alone
(`torch.arange`), never from stored values, so the model runs unchanged on
meta or fake tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class DecoderConfig:
    n_layers: int = 80
    hidden: int = 8192
    n_heads: int = 64  # query heads; head size = hidden // n_heads = 128
    n_kv_heads: int = 8  # key/value heads; each serves n_heads // n_kv_heads = 8 query heads
    ffn_hidden: int = 28672  # SwiGLU inner width (gate, up: hidden -> ffn_hidden)
    vocab_size: int = 32000
    rope_theta: float = 10000.0  # base of the rotary frequencies
    norm_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.hidden // self.n_heads


LLAMA2_70B = DecoderConfig()

# Llama-2-70B (HF LlamaForCausalLM, untied embeddings), parameter count:
#   attention per layer: q, o 8192 * 8192 each; k, v 8192 * 1024 each
#     = 2 * 67_108_864 + 2 * 8_388_608                    =   150_994_944
#   MLP per layer: gate, up, down 8192 * 28672 each
#     = 3 * 234_881_024                                   =   704_643_072
#   two RMSNorm weights per layer: 2 * 8192               =        16_384
#   one layer                                             =   855_654_400
#   80 layers                                             = 68_452_352_000
#   embedding + LM head: 2 * 32000 * 8192                 =    524_288_000
#   final norm                                            =         8_192
#   total                                                 = 68_976_648_192
LLAMA2_70B_PARAMS = 68_976_648_192


def expected_params(cfg: DecoderConfig) -> int:
    """The parameter count of `Decoder(cfg)`, from the config alone."""
    kv = cfg.n_kv_heads * cfg.head_dim
    attention = 2 * cfg.hidden * cfg.hidden + 2 * cfg.hidden * kv
    mlp = 3 * cfg.hidden * cfg.ffn_hidden
    layer = attention + mlp + 2 * cfg.hidden
    return cfg.n_layers * layer + 2 * cfg.vocab_size * cfg.hidden + cfg.hidden


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x^2) + eps) * weight, computed in fp32."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def rotary_tables(
    seq_len: int, head_dim: int, theta: float, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables, each (T, hs), from the sequence length only."""
    exponents = torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim
    inv_freq = 1.0 / (theta**exponents)  # (hs/2,)
    positions = torch.arange(seq_len, device=device, dtype=torch.float32)  # (T,)
    angles = torch.outer(positions, inv_freq)  # (T, hs/2)
    angles = torch.cat((angles, angles), dim=-1)  # (T, hs)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (B, h, T, hs) rotated by position; cos, sin (T, hs) broadcast over B and h."""
    return x * cos + rotate_half(x) * sin


class Attention(nn.Module):
    """Grouped-query causal self-attention, no biases."""

    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.q_proj = nn.Linear(cfg.hidden, cfg.n_heads * cfg.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.hidden, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.hidden, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.o_proj = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.hidden, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        nh, nkv, hs = self.n_heads, self.n_kv_heads, self.head_dim
        q = self.q_proj(x).view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = self.k_proj(x).view(B, T, nkv, hs).transpose(1, 2)  # (B, nkv, T, hs)
        v = self.v_proj(x).view(B, T, nkv, hs).transpose(1, 2)  # (B, nkv, T, hs)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        # each group of nh // nkv query heads shares one key/value head; y: (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        out: torch.Tensor = self.o_proj(y.transpose(1, 2).reshape(B, T, nh * hs))
        return out  # (B, T, C)


class SwiGLU(nn.Module):
    """down(silu(gate(x)) * up(x)), no biases."""

    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden, cfg.ffn_hidden, bias=False)
        self.up_proj = nn.Linear(cfg.hidden, cfg.ffn_hidden, bias=False)
        self.down_proj = nn.Linear(cfg.ffn_hidden, cfg.hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))
        return out


class Block(nn.Module):
    """Pre-norm residual block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        self.input_norm = RMSNorm(cfg.hidden, cfg.norm_eps)
        self.attn = Attention(cfg)
        self.post_attn_norm = RMSNorm(cfg.hidden, cfg.norm_eps)
        self.mlp = SwiGLU(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.input_norm(x), cos, sin)
        out: torch.Tensor = x + self.mlp(self.post_attn_norm(x))
        return out


class Decoder(nn.Module):
    """input_ids (B, T) int64 -> logits (B, T, vocab)."""

    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.hidden)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.hidden, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.hidden, cfg.vocab_size, bias=False)  # untied

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(input_ids)  # (B, T, C)
        cos, sin = rotary_tables(
            input_ids.shape[1], self.cfg.head_dim, self.cfg.rope_theta, x.device, x.dtype
        )
        for layer in self.layers:
            x = layer(x, cos, sin)
        logits: torch.Tensor = self.lm_head(self.norm(x))  # (B, T, vocab)
        return logits


def build_decoder(cfg: DecoderConfig = LLAMA2_70B) -> Decoder:
    """`Decoder(cfg)` on the meta device: shapes only, no weight allocated."""
    with torch.device("meta"):
        return Decoder(cfg)
