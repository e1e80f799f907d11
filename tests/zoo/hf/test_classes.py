"""Which transformers class is built for a config, and how (zoo.hf.classes)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import pytest
import torch

import memflops
from memflops.frontends.targets import load_target

pytest.importorskip("transformers")


TRANSFORMERS_MAJOR = int(importlib.metadata.version("transformers").split(".")[0])


TINY_DEIT = {"model_type": "deit", "image_size": 32, "patch_size": 16, "hidden_size": 16,
             "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}


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
def test_class_attention_dtype(
    name: str,
    cls: str,
    attention: str,
    dtype: torch.dtype,
    loaded: Any,
) -> None:
    module: Any = loaded(name).module
    assert type(module).__name__ == cls
    if TRANSFORMERS_MAJOR >= 5 or attention == "eager":
        # 4.x: T5 has no SDPA there and encoders run eager (their SDPA path reads the mask)
        assert module.config._attn_implementation == attention
    assert module.config.use_cache is False
    assert {p.dtype for p in module.parameters()} == {dtype}
    assert all(p.device.type == "meta" for p in module.parameters())


@pytest.mark.parametrize(
    ("architectures", "cls"),
    [(None, "DeiTForImageClassification"),
     (["DeiTForImageClassificationWithTeacher"], "DeiTForImageClassificationWithTeacher")],
)
def test_mapping_tuple_gives_the_named_or_first_class(
    tmp_path: Path, architectures: list[str] | None, cls: str, make_of: Any, row: Any,
    unique_params: Any, write: Any,
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


def test_unexported_class_is_built_from_its_modeling_file() -> None:
    pytest.importorskip("transformers")
    from memflops.zoo.hf.classes import model_class
    from memflops.zoo.hf.config import make_config

    config = make_config({"model_type": "voxtral_realtime_text"}, "test")
    builder, cls = model_class(config)
    assert cls.__name__ == "VoxtralRealtimeTextModel"
    assert builder.from_config is not None
