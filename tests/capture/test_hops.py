"""Higher-order ops: flex attention priced forward and backward, its block mask read when
it can be; the rest refused with their name.

The stand-in: a (2, 64, 16) input projected to q, k, v of (B=2, H=2, L=S=64, E=Ev=8).
Dense, every one of the 2*2*64*64 = 16,384 score entries:
  forward MACs  16,384 * (E + Ev)      = 16,384 * 16 = 262,144
  backward MACs 16,384 * (3E + 2Ev)    = 16,384 * 40 = 655,360 (5 products, scores recomputed)
With a causal block mask of 16 x 16 blocks, 4 x 4 blocks per (b, h): the kernel computes the
10 on or below the diagonal, each whole: 10 * 256 = 2,560 entries per (b, h), 10,240 in all:
  forward 10,240 * 16 = 163,840; backward 10,240 * 40 = 409,600.
A sliding window of 16 (0 <= q - kv < 16) keeps the diagonal block and the one before it:
1 + 2 + 2 + 2 = 7 blocks, 7 * 256 * 4 = 7,168 entries; forward 7,168 * 16 = 114,688.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

import memflops
from memflops import TensorSpec
from memflops.errors import AnalysisError
from memflops.report.model import Report

Mask = Callable[[Any, Any, Any, Any], Any]


def causal(b: Any, h: Any, q: Any, kv: Any) -> Any:
    return q >= kv


def window(b: Any, h: Any, q: Any, kv: Any) -> Any:
    return (q >= kv) & (q - kv < 16)


class Attention(nn.Module):
    """q, k, v from one projection, then flex attention (with `mask`) or SDPA."""

    def __init__(self, mask: Mask | None = None, *, sdpa: bool = False) -> None:
        super().__init__()
        self.qkv = nn.Linear(16, 48)
        self.mask, self.sdpa = mask, sdpa

    def forward(self, x: torch.Tensor, docs: torch.Tensor | None = None) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, 2, 8).permute(2, 0, 3, 1, 4)  # each (B, H, L, E)
        if self.sdpa:
            return F.scaled_dot_product_attention(q, k, v)
        mask = self.mask
        if docs is not None:  # a mask that reads a tensor of the model's: document ids
            def mask(b: Any, h: Any, q: Any, kv: Any) -> Any:
                return docs[b, q] == docs[b, kv]
        per_batch = b if docs is not None else None  # document ids differ per sequence
        block_mask = (None if mask is None else create_block_mask(
            mask, per_batch, None, t, t, device="cpu", BLOCK_SIZE=16))
        out: torch.Tensor = flex_attention(q, k, v, block_mask=block_mask)
        return out


def train(model: nn.Module, inputs: Any = (2, 64, 16), convention: str = "mac") -> Report:
    return memflops.analyze(model, inputs, mode="train", optimizer=None, convention=convention)


def attention_macs(report: Report) -> tuple[int, int]:
    """MACs of the attention op(s), forward and backward."""
    calls = [r for r in report.records if "attention" in r.op]
    assert calls and all(r.cost is not None for r in calls)
    forward = sum(r.cost.macs for r in calls if r.phase.value == "forward")  # type: ignore[union-attr]
    backward = sum(r.cost.macs for r in calls if r.phase.value == "backward")  # type: ignore[union-attr]
    return forward, backward


def test_flex_without_mask_counts_as_sdpa() -> None:
    flex, sdpa = train(Attention()), train(Attention(sdpa=True))
    assert attention_macs(flex) == attention_macs(sdpa) == (262_144, 655_360)
    assert [r.op for r in flex.records if "flex" in r.op] == [
        "higher_order.flex_attention", "higher_order.flex_attention_backward"]
    for convention in ("exact", "2mac"):
        for phase in ("forward", "backward"):
            assert flex.total(phase, convention) == sdpa.total(phase, convention)
    assert flex.uncounted_ops == () and flex.warnings == ()


@pytest.mark.parametrize(("mask", "entries"), [(causal, 10_240), (window, 7_168)])
def test_flex_counts_the_blocks_its_mask_keeps(mask: Mask, entries: int) -> None:
    report = train(Attention(mask))
    assert attention_macs(report) == (entries * 16, entries * 40)
    assert report.warnings == ()


def test_flex_with_a_mask_of_model_tensors_counts_dense_and_says_so() -> None:
    report = train(Attention(), [(2, 64, 16), "2x64:int64"])
    assert attention_macs(report) == (262_144, 655_360)
    assert any("2 flex_attention call(s) counted dense" in w for w in report.warnings)


def test_flex_with_a_mask_of_known_document_ids_counts_its_blocks() -> None:
    # documents of 20 and 44 tokens in each sequence: 16 x 16 blocks 0-1 hold document 0,
    # blocks 1-3 document 1, so the block mask keeps 4 + 9 - 1 (block (1, 1) in both) = 12
    # of the 16 blocks: 12 * 256 = 3,072 entries per sequence and head, 2 * 2 * 3,072 =
    # 12,288 in all; forward 12,288 * 16 = 196,608 MACs, backward 12,288 * 40 = 491,520
    docs = TensorSpec((2, 64), torch.int64, values=[[0] * 20 + [1] * 44] * 2)
    report = train(Attention(), [(2, 64, 16), docs])
    assert attention_macs(report) == (196_608, 491_520)
    assert not any("counted dense" in w for w in report.warnings)


def test_flex_outputs_are_in_the_memory() -> None:
    # the op writes its output (2, 2, 64, 8), and the log-sum-exp and row maxima of the
    # scores, (2, 2, 64) each, float32: (2,048 + 2 * 256) * 4 = 10,240 bytes
    report = train(Attention())
    (call,) = [r for r in report.records if r.op == "higher_order.flex_attention"]
    assert call.cost is not None and call.cost.bytes_written == (2_048 + 2 * 256) * 4


class Branch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = torch.cond(x.sum() > 0, self.lin, torch.neg, (x,))
        return out


def test_other_higher_order_ops_are_refused_by_name() -> None:
    with pytest.raises(AnalysisError) as info:
        memflops.analyze(Branch(), (2, 4))
    message = str(info.value)
    assert message.startswith("higher-order op higher_order.cond in module `<root>` cannot be "
                              "analysed: its control flow")
    assert "\n" not in message


def tiny_llama(attention: str) -> nn.Module:
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=128, max_position_embeddings=512)
    config._attn_implementation = attention
    with torch.device("meta"):
        model: nn.Module = transformers.LlamaForCausalLM(config)
    return model


def test_hugging_face_llama_with_flex_attention_beside_sdpa() -> None:
    reports = {a: train(tiny_llama(a), {"input_ids": (1, 256)})
               for a in ("sdpa", "flex_attention")}
    # per layer, B=1, H=4 query heads, L=S=256, E=Ev=16: SDPA 1*4*256*256*32 = 8,388,608
    # forward MACs; flex's causal mask (128 x 128 blocks) keeps 3 of the 2 x 2 blocks
    sdpa, flex = (attention_macs(reports[a]) for a in ("sdpa", "flex_attention"))
    assert sdpa == (2 * 8_388_608, 2 * 4 * 256 * 256 * 80)  # backward: 3E + 2Ev = 80
    assert flex == (sdpa[0] * 3 // 4, sdpa[1] * 3 // 4)
    rest = [reports[a].total("forward", "mac") - attention_macs(reports[a])[0]
            for a in ("sdpa", "flex_attention")]
    assert rest[0] == rest[1]  # everything else is the same model
    assert reports["flex_attention"].uncounted_ops == ()


def test_hugging_face_llama_generates_with_flex_attention() -> None:
    reports = {a: memflops.analyze(tiny_llama(a), None, mode="generate", prompt_len=256,
                                   new_tokens=2, batch=1, convention="mac")
               for a in ("sdpa", "flex_attention")}
    sdpa, flex = (reports[a].to_dict()["totals"]["flops"] for a in ("sdpa", "flex_attention"))
    # the prefill's attention as in training: flex computes 3 of the 4 blocks, so 2 layers *
    # 8,388,608 / 4 = 4,194,304 fewer MACs; a decode step's one query row meets every key
    assert sdpa["forward"] - flex["forward"] == 2 * 8_388_608 // 4
    assert sdpa["decode"] == flex["decode"]
    assert reports["flex_attention"].uncounted_ops == ()
