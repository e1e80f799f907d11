"""`hf:NAME` targets (zoo.hf.loader): shipped configs built offline on the meta device,
their parameters, inputs and FLOPs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import memflops
from memflops.capture.inputs import TensorSpec
from memflops.errors import SpecError
from memflops.frontends.targets import load_target
from memflops.params import count_params
from memflops.zoo.hf.config import shipped_names
from memflops.zoo.hf.inputs import HFInputs

pytest.importorskip("transformers")


def llama_params(vocab: int, d: int, layers: int, ff: int, kv: int) -> int:
    """Llama-style decoder: untied embedding and head, q/o d*d, k/v d*kv, gated MLP
    3*d*ff, two RMSNorms per layer and a final one."""
    return 2 * vocab * d + layers * (2 * d * d + 2 * d * kv + 3 * d * ff + 2 * d) + d


def ids(batch: int, seq: int, token: int) -> TensorSpec:
    """Token ids, every one the same ordinary token (hf_inputs.ordinary_token)."""
    return TensorSpec((batch, seq), torch.int64, values=token)


TINY_CLIP_TEXT = {"model_type": "clip_text_model", "hidden_size": 16, "intermediate_size": 32,
                  "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 40,
                  "max_position_embeddings": 8}


TINY_REFORMER = {"model_type": "reformer", "hidden_size": 16, "feed_forward_size": 32,
                 "num_attention_heads": 2, "attention_head_size": 8, "attn_layers": ["local"],
                 "axial_pos_shape": [4, 4], "axial_pos_embds_dim": [8, 8],
                 "max_position_embeddings": 16, "local_attn_chunk_length": 4, "vocab_size": 40}


# The count each model card or paper publishes (see each config's `_source`).
PUBLISHED = {
    "gpt2": 124_439_808,
    "gpt2-medium": 354_823_168,
    "gpt2-large": 774_030_080,
    "gpt2-xl": 1_557_611_200,
    "bert-base-uncased": 109_482_240,
    "bert-large-uncased": 335_141_888,
    "roberta-base": 124_645_632,
    "t5-base": 222_903_552,
    "llama-2-7b": 6_738_415_616,
    "llama-2-13b": 13_015_864_320,
    "llama-2-70b": 68_976_648_192,
    "llama-3.1-8b": 8_030_261_248,
    "llama-3.1-70b": 70_553_706_496,
    "llama-3.1-405b": 405_853_388_800,
    "mistral-7b": 7_241_732_096,
    "mixtral-8x7b": 46_702_792_704,
    "qwen2.5-7b": 7_615_616_512,
    "gemma-2-9b": 9_241_705_984,
    "phi-3-mini": 3_821_079_552,
    "vit-base": 86_567_656,
}


def test_shipped_names() -> None:
    assert shipped_names() == sorted(PUBLISHED)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_params_match_published(name: str, loaded: Any, unique_params: Any) -> None:
    module = loaded(name).module
    assert count_params(module).total == unique_params(module) == PUBLISHED[name]


def test_llama_2_counts_by_hand(loaded: Any) -> None:
    # 7b: 2*32000*4096 + 32*(2*4096^2 + 2*4096*4096 + 3*4096*11008 + 2*4096) + 4096
    #   = 262,144,000 + 32*202,383,360 + 4096 = 6,738,415,616
    assert llama_params(32000, 4096, 32, 11008, 4096) == 6_738_415_616
    # 70b (8 KV heads of 128: kv = 1024):
    #   2*32000*8192 + 80*(2*8192^2 + 2*8192*1024 + 3*8192*28672 + 2*8192) + 8192
    #   = 524,288,000 + 80*855,654,400 + 8192 = 68,976,648,192
    assert llama_params(32000, 8192, 80, 28672, 1024) == 68_976_648_192
    assert count_params(loaded("llama-2-7b").module).total == 6_738_415_616
    assert count_params(loaded("llama-2-70b").module).total == 68_976_648_192


def test_gpt2_and_bert_counts_by_hand(loaded: Any) -> None:
    # GPT-2 block: 2 LayerNorms 2*2*768 + c_attn 768*2304+2304 + c_proj 768*768+768
    #   + c_fc 768*3072+3072 + c_proj 3072*768+768 = 7,087,872
    block = 2 * 2 * 768 + (768 * 2304 + 2304) + (768 * 768 + 768)
    block += (768 * 3072 + 3072) + (3072 * 768 + 768)
    assert block == 7_087_872
    # wte 50257*768 + wpe 1024*768 + 12 blocks + ln_f 2*768; lm_head is wte (tied)
    assert 50257 * 768 + 1024 * 768 + 12 * block + 2 * 768 == 124_439_808
    assert count_params(loaded("gpt2").module).total == 124_439_808
    # BERT: embeddings (30522 + 512 + 2)*768 + LayerNorm 2*768; the same 7,087,872 per
    # layer (q, k, v, o, 2 LayerNorms, 768->3072->768); pooler 768*768 + 768
    bert = (30522 + 512 + 2) * 768 + 2 * 768 + 12 * block + 768 * 768 + 768
    assert bert == 109_482_240
    assert count_params(loaded("bert-base-uncased").module).total == 109_482_240


def test_inputs(loaded: Any, make: Any) -> None:
    mask = TensorSpec((2, 64), torch.int64)
    # ids hold the middle of the vocabulary: 50,257 // 2, 30,522 // 2, 32,128 // 2
    assert make("gpt2", 2, 64) == {"input_ids": ids(2, 64, 25_128)}
    assert loaded("gpt2").default_input == {"input_ids": ids(1, 128, 25_128)}
    assert make("bert-base-uncased", 2, 64) == {"input_ids": ids(2, 64, 15_261),
                                                "attention_mask": mask}
    assert make("t5-base", 2, 64) == {"input_ids": ids(2, 64, 16_064),
                                      "decoder_input_ids": ids(2, 64, 16_064)}
    # images ignore seq; pixel_values take the analysis dtype
    assert make("vit-base", 4, 999) == {"pixel_values": TensorSpec((4, 3, 224, 224), None)}
    assert loaded("vit-base").default_input == make("vit-base", 1, 1)
    with pytest.raises(SpecError, match="batch and seq must be >= 1"):
        make("gpt2", 0, 8)


def test_learned_positions_bound_seq(make: Any) -> None:
    make("gpt2", 1, 1024)
    with pytest.raises(SpecError, match="1025 is longer than its 1024 learned positions"):
        make("gpt2", 1, 1025)
    make("roberta-base", 1, 512)  # 514 positions, the first two below and at padding index 1
    with pytest.raises(SpecError, match="513"):
        make("roberta-base", 1, 513)
    make("llama-2-7b", 1, 100_000)  # rotary positions: no table


def test_gpt2_forward_macs(analyse_shipped: Any) -> None:
    report = analyse_shipped("gpt2", 1, 32)
    # linears per token: 12 * (768*2304 + 768*768 + 768*3072 + 3072*768) + head 768*50257
    #   = 12 * 7,077,888 + 38,597,376 = 123,532,032; 32 tokens: 3,953,025,024
    # attention: 12 layers * 2 * 12 heads * 32 * 32 * 64 = 18,874,368
    assert report.totals.costs.forward.macs == 3_953_025_024 + 18_874_368
    assert report.totals.params == 124_439_808


def test_llama_2_7b_forward_macs(analyse_shipped: Any, row: Any) -> None:
    report = analyse_shipped("llama-2-7b", 1, 32)
    rows = {row.path: row.forward.macs for row in report.modules}
    # per token, per layer: 4*4096^2 + 3*4096*11008 = 202,375,168; 32 tokens, 32 layers:
    #   207,232,172,032; attention: 32 layers * 2 * 32 heads * 32 * 32 * 128 = 268,435,456
    assert rows["model.layers"] == 207_232_172_032 + 268_435_456
    # head: 32 tokens * 4096 * 32000 = 4,194,304,000
    assert rows["lm_head"] == 4_194_304_000
    # (transformers 4.x computes the rotary angles with a 64 x 1 x 32 matmul: 2,048 more)
    assert report.totals.costs.forward.macs - rows["model.rotary_emb"] == 211_694_911_488


@pytest.mark.parametrize(
    "name", ["bert-base-uncased", "t5-base", "vit-base", "gemma-2-9b", "llama-3.1-8b"]
)
def test_families_analyse(name: str, analyse_shipped: Any) -> None:
    report = analyse_shipped(name, 1, 32)
    assert report.totals.params == PUBLISHED[name]
    assert report.totals.costs.forward.macs > 0


def test_gpt2_train(analyse_shipped: Any, row: Any) -> None:
    report = analyse_shipped("gpt2", 1, 16, mode="train")
    rows = {row.path: row for row in report.modules}
    mlp = rows["transformer.h.0.mlp"]
    # 16 tokens * (768*3072 + 3072*768) = 75,497,472; backward: input and weight grads, 2x
    assert mlp.forward.macs == 16 * 2 * 768 * 3072 == 75_497_472
    assert mlp.backward.macs == 2 * mlp.forward.macs


def test_local_encoder_default_input_fits_its_positions(tmp_path: Path, write: Any) -> None:
    tiny = {"model_type": "bert", "hidden_size": 16, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 32, "vocab_size": 40,
            "max_position_embeddings": 64}
    target = load_target(f"hf:{write(tmp_path, tiny)}")
    assert type(target.module).__name__ == "BertModel"
    # not 128: the table has 64 positions; ids hold token 40 // 2 = 20
    assert target.default_input == {"input_ids": ids(1, 64, 20),
                                     "attention_mask": TensorSpec((1, 64), torch.int64)}


def test_learned_text_positions_of_any_model(
    tmp_path: Path,
    make_of: Any,
    row: Any,
    unique_params: Any,
    write: Any,
) -> None:
    target = load_target(f"hf:{write(tmp_path, TINY_CLIP_TEXT)}")
    # not 128: the table has 8 positions
    assert target.default_input == {"input_ids": ids(1, 8, 20)}
    with pytest.raises(SpecError, match="seq 9 is longer than its 8 learned positions"):
        make_of(target, 1, 9)
    report = memflops.analyze(target.module, make_of(target, 2, 8), mode="train")
    assert report.uncounted_ops == ()
    assert report.totals.params == unique_params(target.module)
    q_proj = row(report, "encoder.layers.0.self_attn.q_proj")
    # Linear(16 -> 16, bias) on 2 * 8 tokens: MACs 16 * 16 * 16 = 4,096; exact 2 * MACs
    assert q_proj.forward.macs == 4_096
    assert q_proj.forward.flops == 8_192


def test_axial_positions_fix_the_training_seq(
    tmp_path: Path,
    make_of: Any,
    row: Any,
    unique_params: Any,
    write: Any,
) -> None:
    target = load_target(f"hf:{write(tmp_path, TINY_REFORMER)}")
    inputs = target.make_inputs
    # axial table (4, 4): a training step takes exactly 4 * 4 = 16 tokens, and no more fit
    assert isinstance(inputs, HFInputs) and inputs.train_seq == 16 and inputs.max_seq == 16
    report = memflops.analyze(target.module, make_of(target, 2, 16), mode="train")
    assert report.uncounted_ops == ()
    assert report.totals.params == unique_params(target.module)
    query = row(report, "encoder.layers.0.attention.self_attention.query")
    # Linear(16 -> 16, no bias) on 2 * 16 tokens: MACs 32 * 16 * 16 = 8,192
    # exact 8,192 * 2 - 32 * 16 outputs = 15,872
    assert query.forward.macs == 8_192
    assert query.forward.flops == 15_872
