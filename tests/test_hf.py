"""`hf:NAME` targets: shipped configs built offline on the meta device.

Every shipped model's parameter count is checked against the count its model
card or paper publishes; the must-show ones are derived by hand below.
Forward MACs of GPT-2, Llama-2-7B and Mixtral are derived by hand too:
`2 * B * H * S * S * head_dim` for the attention (QK^T and AV; the rule
counts the full S x S square), `tokens * in * out` for every linear.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
from pathlib import Path
from typing import Any, Literal

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
pytest.importorskip("transformers")

import torch
from torch.utils.flop_counter import FlopCounterMode

import memflops
from memflops.capture.inputs import TensorSpec
from memflops.errors import SpecError, TargetNotFoundError
from memflops.frontends.targets import Loaded, load_target
from memflops.params import count_params
from memflops.zoo.hf.config import shipped_names
from memflops.zoo.hf.inputs import HFInputs
from memflops.zoo.hf.moe import EqualShareMoe, is_sparse_moe, shares

TRANSFORMERS_MAJOR = int(importlib.metadata.version("transformers").split(".")[0])


@functools.cache
def loaded(name: str) -> Loaded:
    """Each shipped model is built once per test session."""
    return load_target(f"hf:{name}")


def unique_params(module: torch.nn.Module) -> int:
    return sum({id(p): p.numel() for p in module.parameters()}.values())


def llama_params(vocab: int, d: int, layers: int, ff: int, kv: int) -> int:
    """Llama-style decoder: untied embedding and head, q/o d*d, k/v d*kv, gated MLP
    3*d*ff, two RMSNorms per layer and a final one."""
    return 2 * vocab * d + layers * (2 * d * d + 2 * d * kv + 3 * d * ff + 2 * d) + d


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
def test_params_match_published(name: str) -> None:
    module = loaded(name).module
    assert count_params(module).total == unique_params(module) == PUBLISHED[name]


def test_llama_2_counts_by_hand() -> None:
    # 7b: 2*32000*4096 + 32*(2*4096^2 + 2*4096*4096 + 3*4096*11008 + 2*4096) + 4096
    #   = 262,144,000 + 32*202,383,360 + 4096 = 6,738,415,616
    assert llama_params(32000, 4096, 32, 11008, 4096) == 6_738_415_616
    # 70b (8 KV heads of 128: kv = 1024):
    #   2*32000*8192 + 80*(2*8192^2 + 2*8192*1024 + 3*8192*28672 + 2*8192) + 8192
    #   = 524,288,000 + 80*855,654,400 + 8192 = 68,976,648,192
    assert llama_params(32000, 8192, 80, 28672, 1024) == 68_976_648_192
    assert count_params(loaded("llama-2-7b").module).total == 6_738_415_616
    assert count_params(loaded("llama-2-70b").module).total == 68_976_648_192


def test_gpt2_and_bert_counts_by_hand() -> None:
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


def test_mixtral_total_and_active() -> None:
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


@pytest.mark.parametrize(
    ("name", "cls", "attention", "dtype"),
    [
        ("gpt2", "GPT2LMHeadModel", "sdpa", torch.float32),
        ("bert-base-uncased", "BertModel", "sdpa", torch.float32),
        ("t5-base", "T5ForConditionalGeneration", "sdpa", torch.float32),
        ("vit-base", "ViTForImageClassification", "sdpa", torch.float32),
        ("llama-2-7b", "LlamaForCausalLM", "sdpa", torch.float16),
        ("llama-3.1-8b", "LlamaForCausalLM", "sdpa", torch.bfloat16),
        ("gemma-2-9b", "Gemma2ForCausalLM", "eager", torch.float32),  # soft-capping
    ],
)
def test_class_attention_dtype(name: str, cls: str, attention: str, dtype: torch.dtype) -> None:
    module: Any = loaded(name).module
    assert type(module).__name__ == cls
    if TRANSFORMERS_MAJOR >= 5 or attention == "eager":
        # 4.x: T5 has no SDPA there and encoders run eager (their SDPA path reads the mask)
        assert module.config._attn_implementation == attention
    assert module.config.use_cache is False
    assert {p.dtype for p in module.parameters()} == {dtype}
    assert all(p.device.type == "meta" for p in module.parameters())


def test_names_are_case_insensitive_and_take_repo_ids() -> None:
    assert load_target("hf:GPT2").name == "gpt2"
    assert load_target("hf:openai-community/gpt2").name == "gpt2"
    assert load_target("hf:Meta-Llama/Llama-2-7b-hf").name == "llama-2-7b"


def test_unknown_name_suggests() -> None:
    with pytest.raises(TargetNotFoundError, match="did you mean llama-2-7b") as info:
        load_target("hf:lama-2-7b")
    assert info.value.exit_code == 2


def make(name: str, batch: int, seq: int) -> dict[str, TensorSpec]:
    make_inputs = loaded(name).make_inputs
    assert make_inputs is not None
    specs: dict[str, TensorSpec] = make_inputs(batch, seq)
    return specs


def ids(batch: int, seq: int, token: int) -> TensorSpec:
    """Token ids, every one the same ordinary token (hf_inputs.ordinary_token)."""
    return TensorSpec((batch, seq), torch.int64, values=token)


def test_inputs() -> None:
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


def test_learned_positions_bound_seq() -> None:
    make("gpt2", 1, 1024)
    with pytest.raises(SpecError, match="1025 is longer than its 1024 learned positions"):
        make("gpt2", 1, 1025)
    make("roberta-base", 1, 512)  # 514 positions, the first two below and at padding index 1
    with pytest.raises(SpecError, match="513"):
        make("roberta-base", 1, 513)
    make("llama-2-7b", 1, 100_000)  # rotary positions: no table


def analyse(
    name: str, batch: int, seq: int, mode: Literal["inference", "train"] = "inference"
) -> memflops.Report:
    return memflops.analyze(loaded(name).module, make(name, batch, seq), mode=mode)


def test_gpt2_forward_macs() -> None:
    report = analyse("gpt2", 1, 32)
    # linears per token: 12 * (768*2304 + 768*768 + 768*3072 + 3072*768) + head 768*50257
    #   = 12 * 7,077,888 + 38,597,376 = 123,532,032; 32 tokens: 3,953,025,024
    # attention: 12 layers * 2 * 12 heads * 32 * 32 * 64 = 18,874,368
    assert report.totals.costs.forward.macs == 3_953_025_024 + 18_874_368
    assert report.totals.params == 124_439_808


def test_llama_2_7b_forward_macs() -> None:
    report = analyse("llama-2-7b", 1, 32)
    rows = {row.path: row.forward.macs for row in report.modules}
    # per token, per layer: 4*4096^2 + 3*4096*11008 = 202,375,168; 32 tokens, 32 layers:
    #   207,232,172,032; attention: 32 layers * 2 * 32 heads * 32 * 32 * 128 = 268,435,456
    assert rows["model.layers"] == 207_232_172_032 + 268_435_456
    # head: 32 tokens * 4096 * 32000 = 4,194,304,000
    assert rows["lm_head"] == 4_194_304_000
    # (transformers 4.x computes the rotary angles with a 64 x 1 x 32 matmul: 2,048 more)
    assert report.totals.costs.forward.macs - rows["model.rotary_emb"] == 211_694_911_488


def test_mixtral_forward_macs_are_the_active_path() -> None:
    report = analyse("mixtral-8x7b", 1, 32)
    # dense linears per token: 32 * (2*4096^2 + 2*4096*1024 + router 4096*8) + head 4096*32000
    #   = 32 * 41,975,808 + 131,072,000 = 1,474,297,856; 32 tokens: 47,177,531,392
    # experts: 32 tokens * top-2 = 64 pairs * 3*4096*14336 per layer, 32 layers
    #   = 64 * 176,160,768 * 32 = 360,777,252,864
    # attention: 32 layers * 2 * 32 heads * 32 * 32 * 128 = 268,435,456
    expected = 47_177_531_392 + 360_777_252_864 + 268_435_456
    assert report.totals.costs.forward.macs == expected == 408_223_219_712
    assert report.totals.params == 46_702_792_704


@pytest.mark.parametrize(
    "name", ["bert-base-uncased", "t5-base", "vit-base", "gemma-2-9b", "llama-3.1-8b"]
)
def test_families_analyse(name: str) -> None:
    report = analyse(name, 1, 32)
    assert report.totals.params == PUBLISHED[name]
    assert report.totals.costs.forward.macs > 0


def test_gpt2_train() -> None:
    report = analyse("gpt2", 1, 16, mode="train")
    rows = {row.path: row for row in report.modules}
    mlp = rows["transformer.h.0.mlp"]
    # 16 tokens * (768*3072 + 3072*768) = 75,497,472; backward: input and weight grads, 2x
    assert mlp.forward.macs == 16 * 2 * 768 * 3072 == 75_497_472
    assert mlp.backward.macs == 2 * mlp.forward.macs


# --- local configs and the shape-only mixture of experts -------------------------------

TINY_MIXTRAL: dict[str, Any] = {
    "model_type": "mixtral", "hidden_size": 32, "intermediate_size": 64,
    "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2,
    "vocab_size": 50, "num_local_experts": 4, "num_experts_per_tok": 2,
    "tie_word_embeddings": False,
}


def write(tmp_path: Path, config: dict[str, Any], name: str = "config.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return str(path)


def test_local_config_tiny_mixtral_train(tmp_path: Path) -> None:
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


def test_shares() -> None:
    assert shares(70, 8) == [9] * 6 + [8] * 2  # 70 = 8*8 + 6
    assert shares(6, 8) == [1] * 6 + [0] * 2
    assert sum(shares(123, 7)) == 123


def test_local_encoder_default_input_fits_its_positions(tmp_path: Path) -> None:
    tiny = {"model_type": "bert", "hidden_size": 16, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 32, "vocab_size": 40,
            "max_position_embeddings": 64}
    target = load_target(f"hf:{write(tmp_path, tiny)}")
    assert type(target.module).__name__ == "BertModel"
    # not 128: the table has 64 positions; ids hold token 40 // 2 = 20
    assert target.default_input == {"input_ids": ids(1, 64, 20),
                                     "attention_mask": TensorSpec((1, 64), torch.int64)}


def test_local_config_errors(tmp_path: Path) -> None:
    with pytest.raises(TargetNotFoundError, match="no such file"):
        load_target(f"hf:{tmp_path / 'missing.json'}")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(SpecError, match="not valid JSON"):
        load_target(f"hf:{bad}")
    with pytest.raises(SpecError, match="model_type 'nonesuch' is unknown"):
        load_target(f"hf:{write(tmp_path, {'model_type': 'nonesuch'})}")


def row(report: memflops.Report, path: str) -> Any:
    return next(r for r in report.modules if r.path == path)


TINY_DEIT = {"model_type": "deit", "image_size": 32, "patch_size": 16, "hidden_size": 16,
             "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}


@pytest.mark.parametrize(
    ("architectures", "cls"),
    [(None, "DeiTForImageClassification"),
     (["DeiTForImageClassificationWithTeacher"], "DeiTForImageClassificationWithTeacher")],
)
def test_mapping_tuple_gives_the_named_or_first_class(
    tmp_path: Path, architectures: list[str] | None, cls: str
) -> None:
    target = load_target(f"hf:{write(tmp_path, {**TINY_DEIT, 'architectures': architectures})}")
    assert type(target.module).__name__ == cls
    report = memflops.analyze(target.module, make_of(target, 2, 1))
    assert report.totals.params == unique_params(target.module)
    patches = row(report, "deit.embeddings.patch_embeddings.projection")
    # Conv2d(3 -> 16, k=16, stride 16, bias) on 32x32: 2 * 16 * 2 * 2 = 128 outputs
    # MACs 128 * 3 * 16 * 16 = 98,304; with the bias, exact = 2 * MACs = 196,608
    assert patches.forward.macs == 98_304
    assert patches.forward.flops == 196_608


def make_of(target: Loaded, batch: int, seq: int) -> dict[str, TensorSpec]:
    assert target.make_inputs is not None
    specs: dict[str, TensorSpec] = target.make_inputs(batch, seq)
    return specs


TINY_CLIP_TEXT = {"model_type": "clip_text_model", "hidden_size": 16, "intermediate_size": 32,
                  "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 40,
                  "max_position_embeddings": 8}


def test_learned_text_positions_of_any_model(tmp_path: Path) -> None:
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


TINY_REFORMER = {"model_type": "reformer", "hidden_size": 16, "feed_forward_size": 32,
                 "num_attention_heads": 2, "attention_head_size": 8, "attn_layers": ["local"],
                 "axial_pos_shape": [4, 4], "axial_pos_embds_dim": [8, 8],
                 "max_position_embeddings": 16, "local_attn_chunk_length": 4, "vocab_size": 40}


def test_axial_positions_fix_the_training_seq(tmp_path: Path) -> None:
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


def test_language_adapters_run_the_first_language(tmp_path: Path) -> None:
    tiny = {"model_type": "xmod", "hidden_size": 16, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 32, "vocab_size": 40,
            "languages": ["de_DE", "en_XX"]}
    target = load_target(f"hf:{write(tmp_path, tiny)}")
    assert target.module.config.default_language == "de_DE"


TINY_GLM4V_TEXT = {
    "model_type": "glm4v_text", "hidden_size": 32, "intermediate_size": 64,
    "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2,
    "vocab_size": 50,
    # heads of 16, half of them rotating: 8 dims, 4 frequencies = 1 + 1 + 2
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2]},
}


def test_published_rotary_fraction_filled(tmp_path: Path) -> None:
    target = load_target(f"hf:{write(tmp_path, TINY_GLM4V_TEXT)}")
    # left unset, GLM-4.1V's published 0.5: without it, 8 frequencies would not split 1, 1, 2
    assert target.module.config.rope_parameters["partial_rotary_factor"] == 0.5
    # embed 50*32 = 1,600; q, k, v 3*(32*32 + 32) = 3,168; o 32*32 = 1,024;
    # gate_up 128*32 = 4,096; down 32*64 = 2,048; 5 norms 5*32 = 160: 12,096
    assert count_params(target.module).total == 12_096
    assert target.make_inputs is not None
    report = memflops.analyze(target.module, target.make_inputs(1, 4))
    assert report.uncounted_ops == ()
    q_proj = next(r for r in report.modules if r.path == "layers.0.self_attn.q_proj")
    # Linear(32 -> 32, bias) over 4 tokens: MACs 4 * 32 * 32 = 4,096; with the bias 2 * MACs
    assert q_proj.forward.macs == 4_096
    assert q_proj.forward.flops == 8_192


def test_published_fills_keep_given_values_and_reach_sub_configs() -> None:
    from memflops.zoo.hf.config import make_config

    # DeepSeek-V2-Lite's routing: 6 experts of 1 group
    config = make_config({"model_type": "deepseek_v2"}, "test")
    assert (config.num_experts_per_tok, config.n_group, config.topk_group) == (6, 1, 1)
    given = make_config({"model_type": "deepseek_v2", "num_experts_per_tok": 2}, "test")
    assert given.num_experts_per_tok == 2
    # a sub-config is matched by its class's type, though `from_dict` hands it the outer one
    outer = make_config({"model_type": "hunyuan_vl"}, "test")
    assert outer.text_config.rope_parameters["mrope_section"] == [16, 16, 16, 16]
