"""Hugging Face models' own tensor-parallel plans (`memflops.zoo.hf.tp_plan`), run by
`analyze(parallel="tp=N")`."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

import memflops
from memflops.errors import UsageError
from memflops.zoo.hf.tp_plan import plan

HIDDEN, FFN, LAYERS, HEADS, KV_HEADS, VOCAB = 64, 128, 2, 4, 2, 256


def tiny_llama(heads: int = HEADS, kv_heads: int = KV_HEADS) -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(
        hidden_size=HIDDEN, intermediate_size=FFN, num_hidden_layers=LAYERS,
        num_attention_heads=heads, num_key_value_heads=kv_heads, vocab_size=VOCAB,
    ))


def test_the_plan_splits_attention_mlp_embedding_and_head() -> None:
    found = plan(tiny_llama(), 2)
    assert found is not None
    assert found["model.layers.*.self_attn.q_proj"] == "colwise"
    assert found["model.layers.*.self_attn.o_proj"] == "rowwise"
    assert found["model.layers.*.mlp.down_proj"] == "rowwise"
    assert found["model.embed_tokens"] == "embedding_rowwise"
    assert found["lm_head"] == "colwise_gather_output"


def test_tp_2_holds_half_of_every_split_weight() -> None:
    report = memflops.analyze(tiny_llama(), {"input_ids": "2x16:int64"}, mode="train",
                              optimizer="adamw", parallel="tp=2")
    # per rank: embedding and LM head 256/2 x 64 each; per layer q 32x64, k and v 16x64
    # (2 KV heads of 16 split over 2), o 64x32, gate/up 64x64, down 64x64, two norms of
    # 64 whole; the final norm 64 whole:
    # 2*8192 + 2 * (2048 + 1024 + 1024 + 2048 + 3*4096 + 128) + 64 = 53,568 elements
    assert report.totals.memory.params == 4 * 53_568
    assert report.totals.memory.optimizer == 2 * 4 * 53_568
    assert report.parallel is not None
    ops = {c.op for c in report.parallel.collectives}
    assert ops == {"all_reduce", "all_gather"}  # row-wise sums; the LM head's gathered logits


def test_heads_that_do_not_divide_are_refused_by_name() -> None:
    with pytest.raises(UsageError, match="num_key_value_heads = 2, which 4 ranks cannot"):
        memflops.analyze(tiny_llama(heads=4, kv_heads=2), {"input_ids": "2x16:int64"},
                         mode="train", parallel="tp=4")
