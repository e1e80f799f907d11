"""`attention=` (`--attention`): a Hugging Face target built with SDPA, eager attention or
flex attention, and refused where memflops does not build the model.

The stand-in: a Llama of 2 layers, hidden 64, 4 query heads and 2 key/value heads of 16,
MLP 128, vocabulary 128, trained on 1 x 256 tokens (`convention="mac"`).
  linear layers per token: q, o 64*64; k, v 64*32; MLP 3*64*128; head 64*128
    = 2 * (4,096 + 2,048 + 2,048 + 4,096 + 24,576) + 8,192 = 81,920; x 256 = 20,971,520
  attention per layer, forward: 4 heads * 256 * 256 * (16 + 16) = 8,388,608
  backward: linear layers twice (input and weight gradients) = 41,943,040, and attention
    SDPA (fused, the scores recomputed: 5 products, 3E + 2Ev = 80) 4 * 256^2 * 80 = 20,971,520
    eager (4 products, 4E = 64)                                   4 * 256^2 * 64 = 16,777,216
  flex attention with the causal mask in 128 x 128 blocks computes 3 of the 2 x 2 blocks:
    3/4 of SDPA's attention, forward and backward.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import memflops
from memflops.errors import UsageError
from memflops.report.model import Report

pytest.importorskip("transformers")

TINY_LLAMA = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
              "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
              "vocab_size": 128, "max_position_embeddings": 512}

LINEAR = 20_971_520
ATTENTION = 2 * 8_388_608


def train(path: Path, attention: str) -> Report:
    report: Report = memflops.analyze(f"hf:{path}", mode="train", batch=1, seq=256,
                                      attention=attention, convention="mac")
    return report


@pytest.fixture
def llama(tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(TINY_LLAMA))
    return path


@pytest.mark.parametrize(
    ("attention", "forward", "backward", "op"),
    [
        ("sdpa", LINEAR + ATTENTION, 2 * LINEAR + 2 * 20_971_520,
         "aten._scaled_dot_product_flash_attention_for_cpu"),
        ("eager", LINEAR + ATTENTION, 2 * LINEAR + 2 * 16_777_216, "aten.bmm"),
        ("flex_attention", LINEAR + ATTENTION * 3 // 4, 2 * LINEAR + 2 * 20_971_520 * 3 // 4,
         "higher_order.flex_attention"),
    ],
)
def test_each_implementation_costs_what_its_kernels_compute(
        llama: Path, attention: str, forward: int, backward: int, op: str) -> None:
    report = train(llama, attention)
    assert report.model == f"hf:{llama} (attention {attention})"
    assert (report.total("forward", "mac"), report.total("backward", "mac")) == (forward,
                                                                                 backward)
    assert op in {r.op for r in report.records}
    assert report.uncounted_ops == ()


def test_eager_attention_keeps_its_probabilities(llama: Path) -> None:
    # eager attention saves the softmax's float32 probabilities for backward, 4 heads of
    # 256 x 256 per layer: 2 * 4 * 256 * 256 * 4 B = 2 MiB more than the fused kernel keeps
    sdpa, eager = (train(llama, a).totals.memory.activations for a in ("sdpa", "eager"))
    assert eager - sdpa >= 2 * 4 * 256 * 256 * 4


def test_an_implementation_the_model_has_not_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "gpt2", "n_embd": 16, "n_layer": 1,
                                "n_head": 2, "vocab_size": 40, "n_positions": 32}))
    with pytest.raises(UsageError, match=r"^attention: GPT2LMHeadModel cannot be built with "
                                         r"'flex_attention': "):
        memflops.analyze(f"hf:{path}", attention="flex_attention")


def test_refused_where_memflops_does_not_build_the_model(llama: Path) -> None:
    factory = Path(__file__).parents[2] / "fixtures" / "tiny_model.py"
    for model in ("torchvision:resnet18", f"{factory}:tiny"):
        with pytest.raises(UsageError, match=r"^attention: it chooses how memflops builds a "
                                             r"Hugging Face model \(hf: targets\); "):
            memflops.analyze(model, (1, 3, 8, 8), attention="eager")
    with pytest.raises(UsageError, match=r"a module you pass keeps the attention you built"):
        memflops.analyze(torch.nn.Linear(4, 4), (1, 4), attention="eager")
    with pytest.raises(UsageError, match=r"^unknown attention 'flash'; expected one of: "
                                         r"sdpa, eager, flex_attention$"):
        memflops.analyze(f"hf:{llama}", attention="flash")

