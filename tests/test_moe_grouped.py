"""Grouped-GEMM mixture of experts (transformers 5): the `_grouped_mm` rule, the fp32
gap in its meta kernel, and active parameters of experts left to run as they are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

import memflops
from memflops.capture.kernels.meta_gaps import output_for
from memflops.flops.registry import lookup
from memflops.frontends.targets import Loaded, load_target
from memflops.params import count_params

pytest.importorskip("transformers")
aten = torch.ops.aten


def rule_of(name: str) -> Any:
    rule = lookup(name)
    assert rule is not None, f"{name} has no rule"
    return rule.fn


def test_grouped_mm_rule() -> None:
    rule = rule_of("aten._grouped_mm")
    # (M=6, K=4) x (G=3, K=4, N=5) -> (6, 5): 6*5*4 = 120 MACs, 2*120 - 30 = 210 FLOPs
    cost = rule((6, 4), (3, 4, 5), (3,), out=(6, 5))
    assert (cost.macs, cost.flops) == (120, 210)
    # weight gradient: (K=4, M=6) x (M=6, N=5), M split in G=3 groups -> (3, 4, 5):
    # 4*6*5 = 120 MACs, 2*120 - 60 outputs = 180 FLOPs (each group sums its own rows)
    cost = rule((4, 6), (6, 5), (3,), out=(3, 4, 5))
    assert (cost.macs, cost.flops) == (120, 180)
    # batched (G=3, M=2, K=4) x (3, 4, 5) -> (3, 2, 5): 3*2*5*4 = 120 MACs
    assert rule((3, 2, 4), (3, 4, 5), None, out=(3, 2, 5)).macs == 120


@pytest.mark.parametrize(
    ("a", "b", "offs"),
    [((16, 8), (3, 8, 16), 3), ((8, 16), (16, 16), 3), ((3, 16, 8), (3, 8, 16), None),
     ((3, 16, 8), (8, 48), 3)],
)
def test_gap_output_matches_the_meta_kernel(a: tuple[int, ...], b: tuple[int, ...],
                                            offs: int | None) -> None:
    """fp32 outputs take the shape the meta kernel gives the same call in bf16."""

    def call(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        o = torch.empty(offs, dtype=torch.int32, device="meta") if offs else None
        return (torch.empty(a, dtype=dtype, device="meta"),
                torch.empty(b, dtype=dtype, device="meta"), o)

    expected = aten._grouped_mm.default(*call(torch.bfloat16))
    ours = output_for(aten._grouped_mm.default, call(torch.float32), {})
    assert ours.shape == expected.shape and ours.dtype == torch.float32
    assert output_for(aten._grouped_mm.default, call(torch.bfloat16), {}) is None


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


def test_native_experts_active_params(tmp_path: Path) -> None:
    loaded = _tiny(tmp_path)
    total = count_params(loaded.module).total
    assert total == sum(p.numel() for p in loaded.module.parameters())
    # one expert: gate and up (2W x H) and down (H x W) = 3 * 32 * 16 = 1,536
    assert loaded.active_params_per_token == total - (E - K) * 3 * H * W
    assert any("grouped-experts" in w and f"top-{K} of {E}" in w for w in loaded.warnings)


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_experts_forward_macs_are_the_active_path(tmp_path: Path, dtype: str) -> None:
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
