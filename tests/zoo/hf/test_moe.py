"""Sparse-MoE blocks `EqualShareMoe` can stand in for, and those left to run as they are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import memflops
from memflops.frontends.targets import Loaded, load_target
from memflops.params import count_params
from memflops.zoo.hf.moe import (
    EqualShareMoe,
    is_sparse_moe,
    make_shape_only,
    representable,
    returns_tuple,
)


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


pytest.importorskip("transformers")


TINY_MIXTRAL: dict[str, Any] = {
    "model_type": "mixtral", "hidden_size": 32, "intermediate_size": 64,
    "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2,
    "vocab_size": 50, "num_local_experts": 4, "num_experts_per_tok": 2,
    "tie_word_embeddings": False,
}


def test_mixtral_total_and_active(loaded: Any) -> None:
    # per expert: w1, w3 (4096->14336) and w2 (14336->4096): 3*4096*14336 = 176,160,768
    expert = 3 * 4096 * 14336
    # per layer: q, o 4096^2; k, v 4096*1024; router 8*4096; 8 experts; 2 RMSNorms
    layer = 2 * 4096**2 + 2 * 4096 * 1024 + 8 * 4096 + 8 * expert + 2 * 4096
    total = 2 * 32000 * 4096 + 32 * layer + 4096
    assert total == 46_702_792_704
    # a token runs through 2 of the 8 experts:
    # 46,702,792,704 - (8 - 2) * 176,160,768 * 32 = 12,879,925,248
    active = total - (8 - 2) * expert * 32
    assert active == 12_879_925_248
    mixtral = loaded("mixtral-8x7b")
    assert count_params(mixtral.module).total == total
    assert mixtral.active_params_per_token == active
    assert any("balanced routing" in w for w in mixtral.warnings)
    assert loaded("mistral-7b").active_params_per_token is None


def test_mixtral_forward_macs_are_the_active_path(analyse_shipped: Any) -> None:
    report = analyse_shipped("mixtral-8x7b", 1, 32)
    # dense linears per token: 32 * (2*4096^2 + 2*4096*1024 + router 4096*8) + head 4096*32000
    #   = 32 * 41,975,808 + 131,072,000 = 1,474,297,856; 32 tokens: 47,177,531,392
    # experts: 32 tokens * top-2 = 64 pairs * 3*4096*14336 per layer, 32 layers
    #   = 64 * 176,160,768 * 32 = 360,777,252,864
    # attention: 32 layers * 2 * 32 heads * 32 * 32 * 128 = 268,435,456
    expected = 47_177_531_392 + 360_777_252_864 + 268_435_456
    assert report.totals.costs.forward.macs == expected == 408_223_219_712
    assert report.totals.params == 46_702_792_704


def test_local_config_tiny_mixtral_train(tmp_path: Path, row: Any, write: Any) -> None:
    target = load_target(f"hf:{write(tmp_path, TINY_MIXTRAL)}")
    # per expert 3*32*64 = 6,144; per layer: q, o 32*32; k, v 32*16; router 4*32;
    # 4 experts; 2 norms: 2,048 + 1,024 + 128 + 24,576 + 64 = 27,840
    # total: embed + head 2*50*32 + 2 layers + final norm 32 = 3,200 + 55,680 + 32 = 58,912
    assert count_params(target.module).total == 58_912
    # active: 58,912 - (4 - 2) * 6,144 * 2 = 34,336
    assert target.active_params_per_token == 34_336
    assert target.make_inputs is not None
    report = memflops.analyze(target.module, target.make_inputs(2, 5), mode="train")
    # layer 0's block (`mlp` in transformers 5, `block_sparse_moe` in 4.x)
    mlp = next(row for row in report.modules if row.type == "EqualShareMoe")
    assert mlp.path.startswith("model.layers.0.")
    # 10 tokens: router 10*32*4 = 1,280; 20 pairs * 6,144 = 122,880
    assert mlp.forward.macs == 1_280 + 122_880
    assert mlp.backward.macs == 2 * mlp.forward.macs


def test_moe_total_matches_real_routing() -> None:
    """Balanced routing changes no total: the real block on real tensors, routed by its
    random router, does the same matmul work (FlopCounterMode) as the shape-only one.
    The real block runs transformers' per-expert loop ("eager"): FlopCounterMode has no
    rule for the grouped matmul transformers 5 uses by default."""
    import transformers

    torch.manual_seed(0)
    config = transformers.MixtralConfig(**TINY_MIXTRAL)
    if hasattr(config, "_experts_implementation"):
        config._experts_implementation = "eager"
    layer = transformers.MixtralForCausalLM(config).model.layers[0]
    block = next(m for m in layer.modules() if is_sparse_moe(m))
    x = torch.randn(1, 7, 32)
    with FlopCounterMode(display=False) as fcm, torch.no_grad():
        block(x)
    shaped = EqualShareMoe(block)
    report = memflops.analyze(shaped, (1, 7, 32), convention="2mac")
    # 2 * (router 7*32*4 + 14 pairs * 6,144) = 2 * (896 + 86,016) = 173,824
    assert fcm.get_total_flops() == 173_824
    assert report.totals.costs.forward.macs * 2 == 173_824
    out = shaped(x)  # transformers 4.x blocks also return the router logits
    assert (out[0] if isinstance(out, tuple) else out).shape == x.shape


class BufferRouter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(4, 8))

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits = x @ self.weight.T + bias  # (T, 4)
        weights, indices = torch.topk(logits.softmax(-1), 2, dim=-1)
        return logits, weights, indices


class BufferBlock(nn.Module):
    """A router that takes a buffer of its block (a routing bias) beside the tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.top_k = 2
        self.gate = BufferRouter()
        self.experts = nn.ModuleList(nn.Linear(8, 8, bias=False) for _ in range(4))
        self.register_buffer("bias", torch.zeros(4))


def test_shape_only_moe_hands_its_router_the_blocks_buffers() -> None:
    moe = EqualShareMoe(BufferBlock())
    assert moe.gate_buffers == ("bias",)
    out = moe(torch.ones(1, 6, 8))
    assert out.shape == (1, 6, 8)


H, W, E, K = 32, 16, 4, 2  # hidden, expert width, experts, experts per token


TINY_QWEN3_MOE = {
    "model_type": "qwen3_moe", "num_hidden_layers": 1, "hidden_size": H,
    "intermediate_size": 64, "moe_intermediate_size": W, "num_experts": E,
    "num_experts_per_tok": K, "num_attention_heads": 4, "num_key_value_heads": 2,
    "head_dim": 8, "vocab_size": 100,
}


def _tiny(tmp_path: Path) -> Loaded:
    path = tmp_path / "qwen3_moe.json"
    path.write_text(json.dumps(TINY_QWEN3_MOE))
    return load_target(f"hf:{path}")


def test_native_experts_active_params(tmp_path: Path, loaded: Any) -> None:
    loaded = _tiny(tmp_path)
    total = count_params(loaded.module).total
    assert total == sum(p.numel() for p in loaded.module.parameters())
    # one expert: gate and up (2W x H) and down (H x W) = 3 * 32 * 16 = 1,536
    assert loaded.active_params_per_token == total - (E - K) * 3 * H * W
    assert any("grouped-experts" in w and f"top-{K} of {E}" in w for w in loaded.warnings)


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_experts_forward_macs_are_the_active_path(tmp_path: Path, dtype: str, loaded: Any) -> None:
    """Whatever the router picks, the experts run each token through K experts."""
    loaded = _tiny(tmp_path)
    batch, seq = 2, 8
    report = memflops.analyze(loaded.module, loaded.make_inputs(batch, seq), mode="train",
                              dtype=dtype)
    assert report.uncounted_ops == ()
    experts = report.by_module()["model.layers.0.mlp.experts"]
    # 16 tokens x 2 experts = 32 pairs, each 3 * H * W = 1,536 MACs: 49,152
    assert experts.forward.macs == batch * seq * K * 3 * H * W == 49_152
    # backward: input and weight gradients of both grouped GEMMs, twice the forward
    assert experts.backward.macs == 2 * 49_152


def test_generate_runs_grouped_experts(tmp_path: Path) -> None:
    """The prefill that fills the KV cache runs outside the recorder, with the same gap rule."""
    path = tmp_path / "qwen3_moe.json"
    path.write_text(json.dumps(TINY_QWEN3_MOE))
    report = memflops.analyze(f"hf:{path}", mode="generate", prompt_len=16, new_tokens=4)
    assert report.uncounted_ops == ()
    assert report.totals.active_params == count_params(_tiny(tmp_path).module).total - 2 * 3 * H * W
