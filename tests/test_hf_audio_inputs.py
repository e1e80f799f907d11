"""Inputs of audio, speech and sub-model HF types: CLAP's crops, chunked spectrograms,
codebook decoders, other models' embeddings; unexported classes; meta builds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from hf_stub import Config
from memflops.capture.inputs import TensorSpec
from memflops.frontends.meta_init import small_constants_on_cpu
from memflops.zoo.hf.inputs import BUILDERS, ConfigView
from memflops.zoo.hf.moe import EqualShareMoe

INT = torch.int64


def test_clap_reads_one_crop_without_fusion_and_four_with_it() -> None:
    audio = Config(num_mel_bins=64, enable_fusion=False)
    view = ConfigView(Config(audio_config=audio))
    # (B, 1 crop, frames, 64 mel bins)
    assert BUILDERS["input_features"](view, 2, 50) == TensorSpec((2, 1, 50, 64))
    fused = ConfigView(Config(audio_config=Config(num_mel_bins=64, enable_fusion=True)))
    assert BUILDERS["input_features"](fused, 2, 50) == TensorSpec((2, 4, 50, 64))


def test_chunked_encoder_takes_whole_chunks_bins_first() -> None:
    view = ConfigView(Config(num_mel_bins=128, n_window=50), bins_first=True)
    # chunks of 2 * 50 = 100 frames: 64 -> 100, 150 -> 200
    assert BUILDERS["input_features"](view, 2, 64) == TensorSpec((2, 128, 100))
    assert BUILDERS["input_features_mask"](view, 2, 150) == TensorSpec((2, 200), INT)
    plain = ConfigView(Config(num_mel_bins=128))
    assert BUILDERS["input_features"](plain, 2, 64) == TensorSpec((2, 64, 128))


def test_codebook_decoder_takes_channels_per_step() -> None:
    decoder = Config(num_channels=9, vocab_size=1028, pad_token_id=1025)
    view = ConfigView(Config(decoder_config=decoder, encoder_config=Config(vocab_size=256)))
    # 9 codebooks a step; ordinary token 1028 // 2 = 514 of the decoder's vocabulary
    assert BUILDERS["decoder_input_ids"](view, 2, 16) == TensorSpec((2, 16, 9), INT, values=514)
    text = ConfigView(Config(vocab_size=50))
    assert BUILDERS["decoder_input_ids"](text, 2, 4) == TensorSpec((2, 4), INT, values=25)


def test_embedding_inputs_take_the_sizes_of_the_model_they_come_from() -> None:
    drafter = ConfigView(Config(hidden_size=64, block_size=16, target_layer_ids=[1, 5, 9]))
    assert BUILDERS["noise_embeds"](drafter, 2, 32) == TensorSpec((2, 16, 64))
    # 3 target layers of 64 concatenated: 3 * 64 = 192
    assert BUILDERS["context_hidden_states"](drafter, 2, 32) == TensorSpec((2, 32, 192))
    assert BUILDERS["inputs_embeds"](drafter, 2, 32) == TensorSpec((2, 32, 64))
    assert BUILDERS["t_cond"](drafter, 2, 32) == TensorSpec((1, 64))


def test_unexported_class_is_built_from_its_modeling_file() -> None:
    pytest.importorskip("transformers")
    from memflops.zoo.hf.classes import model_class
    from memflops.zoo.hf.config import make_config

    config = make_config({"model_type": "voxtral_realtime_text"}, "test")
    builder, cls = model_class(config)
    assert cls.__name__ == "VoxtralRealtimeTextModel"
    assert builder.from_config is not None


def test_meta_tensor_moved_to_a_cpu_constant_stays_on_meta() -> None:
    with torch.device("meta"), small_constants_on_cpu():
        scalar = torch.tensor(0.0)  # a small constant: kept on the CPU
        table = torch.zeros(3, 4).to(device=scalar.device, dtype=torch.float64)
    assert scalar.device.type == "cpu"
    assert table.is_meta and table.dtype == torch.float64 and table.shape == (3, 4)


class Router(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(4, 8))

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits = x @ self.weight.T + bias  # (T, 4)
        weights, indices = torch.topk(logits.softmax(-1), 2, dim=-1)
        return logits, weights, indices


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.top_k = 2
        self.gate = Router()
        self.experts = nn.ModuleList(nn.Linear(8, 8, bias=False) for _ in range(4))
        self.register_buffer("bias", torch.zeros(4))


def test_shape_only_moe_hands_its_router_the_blocks_buffers() -> None:
    moe = EqualShareMoe(Block())
    assert moe.gate_buffers == ("bias",)
    out = moe(torch.ones(1, 6, 8))
    assert out.shape == (1, 6, 8)


def test_an_input_the_model_makes_itself_is_not_passed_on(tmp_path: Path) -> None:
    # Voxtral Realtime computes the `t_cond` its text model takes; the text model alone
    # takes it through **kwargs and is fed it
    import json

    from memflops.frontends.targets import load_target

    for model_type, fed in (("voxtral_realtime", False), ("voxtral_realtime_text", True)):
        path = tmp_path / f"{model_type}.json"
        path.write_text(json.dumps({"model_type": model_type}))
        inputs = load_target(f"hf:{path}").make_inputs
        assert inputs is not None
        assert ("t_cond" in inputs(1, 8)) is fed, model_type
