"""Inputs of non-text transformers models (`memflops.zoo.hf.inputs`).

Each model is a real transformers class built from a tiny local config (sizes
overridden so the test is fast). Parameters are checked against
`sum(p.numel())`; each analysis must leave no op uncounted, and the first
convolution of each model is derived by hand: exact FLOPs of a conv are
`outputs * (2 * Cin * K - 1)` without a bias, `outputs * 2 * Cin * K` with one
(K = the kernel's size, `outputs` = B * Cout * output positions).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
pytest.importorskip("transformers")

import torch

import memflops
from memflops.capture.inputs import TensorSpec
from memflops.frontends.targets import Loaded, load_target
from memflops.zoo.hf.inputs import (
    ConfigView,
    PixelLayout,
    axial_positions,
    hop,
    image_shape,
    learned_positions,
    merge_sizes,
    ordinary_token,
    patch_grid,
    patch_positions,
    pixels,
    reads_bins_first,
    spectrogram,
    splices_modalities,
)

INT = torch.int64


def load(tmp_path: Path, config: dict[str, Any]) -> Loaded:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return load_target(f"hf:{path}")


def specs(target: Loaded, batch: int, seq: int) -> dict[str, TensorSpec]:
    assert target.make_inputs is not None
    made: dict[str, TensorSpec] = target.make_inputs(batch, seq)
    return made


def analyse(target: Loaded, batch: int, seq: int, mode: str = "inference") -> memflops.Report:
    report = memflops.analyze(target.module, specs(target, batch, seq), mode=mode)  # type: ignore[arg-type]
    assert report.uncounted_ops == ()
    assert report.totals.params == sum(p.numel() for p in target.module.parameters())
    return report


def row(report: memflops.Report, path: str) -> Any:
    return next(r for r in report.modules if r.path == path)


TINY_WHISPER = {
    "model_type": "whisper", "d_model": 32, "encoder_layers": 1, "decoder_layers": 1,
    "encoder_attention_heads": 2, "decoder_attention_heads": 2, "encoder_ffn_dim": 64,
    "decoder_ffn_dim": 64, "num_mel_bins": 8, "max_source_positions": 16,
    "max_target_positions": 32, "vocab_size": 50, "pad_token_id": 0, "bos_token_id": 1,
    "eos_token_id": 2, "decoder_start_token_id": 1, "begin_suppress_tokens": None,
}


def test_whisper_takes_its_fixed_mel_window(tmp_path: Path) -> None:
    target = load(tmp_path, TINY_WHISPER)
    # no seq2seq LM class for whisper: the speech seq2seq mapping gives it
    assert type(target.module).__name__ == "WhisperForConditionalGeneration"
    # (B, mel bins, 2 * max_source_positions) whatever seq is; the decoder reads seq tokens
    assert specs(target, 2, 16) == {
        "input_features": TensorSpec((2, 8, 32)),
        "decoder_input_ids": TensorSpec((2, 16), INT, values=25),  # token 50 // 2
    }
    report = analyse(target, 2, 16, mode="train")
    conv1 = row(report, "model.encoder.conv1")
    # Conv1d(8 -> 32, k=3, pad 1, bias) over 32 frames: 2 * 32 * 32 = 2,048 outputs
    # MACs 2,048 * 8 * 3 = 49,152; with the bias, exact = 2 * MACs = 98,304
    assert conv1.forward.macs == 49_152
    assert conv1.forward.flops == 98_304


TINY_MOONSHINE = {
    "model_type": "moonshine", "hidden_size": 32, "intermediate_size": 64,
    "encoder_num_hidden_layers": 1, "decoder_num_hidden_layers": 1,
    "encoder_num_attention_heads": 2, "decoder_num_attention_heads": 2,
    "encoder_num_key_value_heads": 2, "decoder_num_key_value_heads": 2, "vocab_size": 50,
}


def test_moonshine_waveform(tmp_path: Path) -> None:
    target = load(tmp_path, TINY_MOONSHINE)
    # no conv_stride, hop_length or ratios in its config: frames of 320 samples
    assert specs(target, 2, 4) == {
        "input_values": TensorSpec((2, 4 * 320)),
        "decoder_input_ids": TensorSpec((2, 4), INT, values=25),  # token 50 // 2
    }
    report = analyse(target, 2, 4)
    conv1 = row(report, "model.encoder.conv1")
    # Conv1d(1 -> 32, k=127, stride 64, no bias) over 1,280 samples:
    #   (1280 - 127) // 64 + 1 = 19 positions; outputs 2 * 32 * 19 = 1,216
    #   exact = 1,216 * (2 * 127 - 1) = 307,648; MACs 1,216 * 127 = 154,432
    assert conv1.forward.flops == 307_648
    assert conv1.forward.macs == 154_432


TINY_WAV2VEC2 = {
    "model_type": "wav2vec2", "hidden_size": 32, "num_hidden_layers": 1,
    "num_attention_heads": 2, "intermediate_size": 64, "conv_dim": [8, 8],
    "conv_stride": [5, 2], "conv_kernel": [10, 3], "num_feat_extract_layers": 2,
    "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 2,
}


def test_wav2vec2_hop_and_random_skips(tmp_path: Path) -> None:
    target = load(tmp_path, TINY_WAV2VEC2)
    # hop = product of conv_stride = 5 * 2 = 10 samples a frame
    assert specs(target, 2, 8) == {"input_values": TensorSpec((2, 80))}
    config = target.module.config
    assert config.apply_spec_augment is False and config.layerdrop == 0.0
    assert any("apply_spec_augment=True" in w and "layerdrop=0.1" in w for w in target.warnings)
    assert sum(p.numel() for p in target.module.parameters()) > 0


TINY_VIDEOMAE = {
    "model_type": "videomae", "image_size": 32, "patch_size": 16, "num_frames": 4,
    "tubelet_size": 2, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
    "intermediate_size": 64,
}


def test_videomae_frames(tmp_path: Path) -> None:
    target = load(tmp_path, TINY_VIDEOMAE)
    # (B, num_frames, C, H, W); seq is not used
    assert specs(target, 2, 999) == {"pixel_values": TensorSpec((2, 4, 3, 32, 32))}
    report = analyse(target, 2, 1, mode="train")
    patches = row(report, "embeddings.patch_embeddings.projection")
    # Conv3d(3 -> 32, k=(2, 16, 16), stride = k, bias) -> (2, 32, 2, 2, 2): 512 outputs
    # MACs 512 * 3 * 2 * 16 * 16 = 786,432; with the bias exact = 2 * MACs = 1,572,864
    assert patches.forward.macs == 786_432
    assert patches.forward.flops == 1_572_864


TINY_BLIP = {
    "model_type": "blip",
    "text_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                    "num_attention_heads": 2, "vocab_size": 50, "encoder_hidden_size": 32},
    "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                      "num_attention_heads": 2, "image_size": 32, "patch_size": 16},
    "projection_dim": 16,
}


def test_dual_encoder_takes_text_and_image(tmp_path: Path) -> None:
    target = load(tmp_path, TINY_BLIP)
    assert type(target.module).__name__ == "BlipModel"
    assert specs(target, 2, 8) == {
        "input_ids": TensorSpec((2, 8), INT, values=25),  # token 50 // 2
        "pixel_values": TensorSpec((2, 3, 32, 32)),  # the vision config's size
    }
    report = analyse(target, 2, 8, mode="train")
    patches = row(report, "vision_model.embeddings.patch_embedding")
    # Conv2d(3 -> 32, k=16, stride 16, bias) -> (2, 32, 2, 2): 256 outputs
    # MACs 256 * 3 * 16 * 16 = 196,608; with the bias exact = 2 * MACs = 393,216
    assert patches.forward.macs == 196_608
    assert patches.forward.flops == 393_216


def test_placeholder_tokens_mean_text_alone() -> None:
    assert splices_modalities(SimpleNamespace(image_token_id=5))
    assert not splices_modalities(SimpleNamespace(projection_dim=16))


TINY_PATCHTST = {
    "model_type": "patchtst", "context_length": 16, "num_input_channels": 3,
    "patch_length": 4, "patch_stride": 4, "num_hidden_layers": 1, "d_model": 16,
    "num_attention_heads": 2, "ffn_dim": 32, "prediction_length": 8,
}


def test_patchtst_window(tmp_path: Path) -> None:
    target = load(tmp_path, TINY_PATCHTST)
    # (B, context_length, channels); the future values cover prediction_length
    assert specs(target, 2, 999) == {
        "past_values": TensorSpec((2, 16, 3)),
        "past_observed_mask": TensorSpec((2, 16, 3)),
        "future_values": TensorSpec((2, 8, 3)),
    }
    report = analyse(target, 2, 1, mode="train")
    # 4 patches of 4 steps per channel -> Linear(4 -> 16, bias): 2 * 3 * 4 = 24 rows
    # exact = 24 * 16 * 2 * 4 = 3,072
    assert row(report, "encoder.embedder.input_embedding").forward.flops == 3_072


TINY_TIME_SERIES = {
    "model_type": "time_series_transformer", "d_model": 16, "encoder_layers": 1,
    "decoder_layers": 1, "encoder_attention_heads": 2, "decoder_attention_heads": 2,
    "encoder_ffn_dim": 32, "decoder_ffn_dim": 32, "lags_sequence": [1, 2, 3],
    "num_time_features": 2, "context_length": 10,
}


def test_time_series_gets_a_horizon_and_its_features(tmp_path: Path) -> None:
    target = load(tmp_path, TINY_TIME_SERIES)
    # no model class for a seq2seq LM: the base model; no prediction_length: 24
    assert type(target.module).__name__ == "TimeSeriesTransformerModel"
    assert target.module.config.prediction_length == 24
    # past: context_length 10 + largest lag 3 = 13 steps
    assert specs(target, 2, 5) == {
        "past_values": TensorSpec((2, 13)),
        "past_time_features": TensorSpec((2, 13, 2)),
        "past_observed_mask": TensorSpec((2, 13)),
        "future_values": TensorSpec((2, 24)),
        "future_time_features": TensorSpec((2, 24, 2)),
    }
    analyse(target, 2, 5, mode="train")


def test_spectrogram_layouts() -> None:
    speech = ConfigView(SimpleNamespace(input_feat_per_channel=80, input_channels=2))
    assert spectrogram(speech, 2, 50) == TensorSpec((2, 50, 160))  # (B, frames, bins)
    whisper = ConfigView(SimpleNamespace(num_mel_bins=128, max_source_positions=1500))
    assert spectrogram(whisper, 2, 50) == TensorSpec((2, 128, 3000))


def test_hop() -> None:
    assert hop(ConfigView(SimpleNamespace(conv_stride=[5, 2, 2, 2, 2, 2, 2]))) == 320
    assert hop(ConfigView(SimpleNamespace(hop_length=512))) == 512
    assert hop(ConfigView(SimpleNamespace(upsampling_ratios=[8, 5, 4, 2]))) == 320
    assert hop(ConfigView(SimpleNamespace())) == 320


def test_missing_head_dim_is_derived(tmp_path: Path) -> None:
    tiny = {"model_type": "ministral", "hidden_size": 32, "intermediate_size": 64,
            "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 1,
            "vocab_size": 50, "head_dim": None}
    target = load(tmp_path, tiny)
    assert target.module.config.head_dim == 32 // 4
    analyse(target, 1, 8)


def test_first_conv_over_bins_reads_bins_first() -> None:
    view = ConfigView(SimpleNamespace(num_mel_bins=8))
    whisper_like = torch.nn.Sequential(torch.nn.Conv1d(8, 16, 3), torch.nn.Linear(16, 16))
    linear_first = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Conv1d(16, 16, 3))
    assert reads_bins_first(whisper_like, view)
    assert not reads_bins_first(linear_first, view)
    assert not reads_bins_first(torch.nn.Sequential(torch.nn.Conv1d(4, 16, 3)), view)
    # Speech2Text has a conv stem over its bins but transposes (B, frames, bins) itself
    speech = ConfigView(SimpleNamespace(input_feat_per_channel=8, input_channels=1))
    assert not reads_bins_first(whisper_like, speech)
    # frames: seq, or seq * audio_length_per_tok (one text token per 8 frames)
    streaming = ConfigView(SimpleNamespace(num_mel_bins=8, audio_length_per_tok=8), True)
    assert spectrogram(streaming, 2, 5) == TensorSpec((2, 8, 5 * 8))
    assert spectrogram(ConfigView(view.config, True), 2, 5) == TensorSpec((2, 8, 5))
    assert spectrogram(view, 2, 5) == TensorSpec((2, 5, 8))


TINY_GLMASR = {
    "model_type": "glmasr_encoder", "hidden_size": 16, "intermediate_size": 32,
    "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2,
    "num_mel_bins": 8, "max_position_embeddings": 64,
}


def test_glmasr_encoder_reads_bins_first(tmp_path: Path) -> None:
    target = load(tmp_path, TINY_GLMASR)
    assert specs(target, 2, 12) == {"input_features": TensorSpec((2, 8, 12))}
    report = analyse(target, 2, 12, mode="train")
    conv1 = row(report, "conv1")
    # Conv1d(8 -> 16, k=3, pad 1, bias) over 12 frames: 2 * 16 * 12 = 384 outputs
    # MACs 384 * 8 * 3 = 9,216; with the bias, exact = 2 * MACs = 18,432
    assert conv1.forward.macs == 9_216
    assert conv1.forward.flops == 18_432


class _PatchConfig:
    """A config whose waveform step is a property (Muse Spark's `samples_per_token`)."""

    def __init__(self) -> None:
        self.patch_sizes = [8, 5, 4]

    @property
    def samples_per_token(self) -> int:
        return 8 * 5 * 4

    @property
    def broken(self) -> int:
        raise TypeError("cannot derive")


def test_hop_reads_derived_samples_per_token() -> None:
    view = ConfigView(_PatchConfig())
    assert hop(view) == 160  # 8 * 5 * 4, before conv_stride and the 320 default
    assert view.find("samples_per_token") is None  # properties only where asked for
    assert view.find("broken", derived=True) is None  # a property that cannot compute


def test_image_sizes_beyond_image_size() -> None:
    # TVP pads every frame to max_img_size
    assert image_shape(ConfigView(SimpleNamespace(max_img_size=448))) == (3, 448, 448)
    # Depth Pro: the smallest scale, 0.25, must still cover a 384 patch: 384 / 0.25 = 1536
    depth = SimpleNamespace(scaled_images_ratios=(0.25, 0.5, 1), patch_size=384, image_size=384)
    assert image_shape(ConfigView(depth)) == (3, 1536, 1536)
    assert image_shape(ConfigView(SimpleNamespace())) == (3, 224, 224)


def test_timm_backbone_input_size() -> None:
    pytest.importorskip("timm")
    backbone = SimpleNamespace(model_type="timm_wrapper", architecture="resnet50", to_dict=dict)
    video = SimpleNamespace(vision_config=backbone, to_dict=dict)
    # timm's pretrained_cfg input_size of resnet50: (3, 224, 224); of ..._336: (3, 336, 336)
    assert image_shape(ConfigView(SimpleNamespace(video_config=video))) == (3, 224, 224)
    backbone.architecture = "vit_pe_core_large_patch14_336"
    assert image_shape(ConfigView(SimpleNamespace(video_config=video))) == (3, 336, 336)
    backbone.architecture = "no_such_timm_model"
    assert image_shape(ConfigView(SimpleNamespace(video_config=video))) == (3, 224, 224)


class _Positions(torch.nn.Embedding):
    offset = 2  # BART's table has 2 rows before position 0


def test_learned_positions_from_tables() -> None:
    config = SimpleNamespace(max_position_embeddings=16, text=SimpleNamespace(
        n_positions=10, to_dict=dict))
    model = torch.nn.Module()
    model.position_embeddings = torch.nn.Embedding(16, 4, padding_idx=1)  # RoBERTa style
    model.wte = torch.nn.Embedding(10, 4)  # a token table of the same size: not positions
    # 16 rows, positions start after padding index 1: 16 - 2 = 14
    assert learned_positions(model, config) == 14
    model.wpe = torch.nn.Embedding(10, 4)  # GPT-2's table, sized by the sub-config
    assert learned_positions(model, config) == 10
    model.embed_positions = _Positions(10 + 2, 4)  # 12 rows, 2 of them offset
    assert learned_positions(model, config) == 10
    other = torch.nn.Module()
    other.pos_embed = torch.nn.Embedding(50, 4)  # a vision grid: no config names 50
    assert learned_positions(other, config) is None


def test_axial_positions() -> None:
    assert axial_positions(SimpleNamespace(axial_pos_embds=True, axial_pos_shape=(4, 8))) == 32
    assert axial_positions(SimpleNamespace(axial_pos_embds=False, axial_pos_shape=(4, 8))) is None


TINY_QWEN25_VISION = {
    "model_type": "qwen2_5_vl_vision", "depth": 1, "hidden_size": 32, "intermediate_size": 64,
    "num_heads": 2, "out_hidden_size": 48, "patch_size": 14, "temporal_patch_size": 2,
    "spatial_merge_size": 2, "window_size": 112, "fullatt_block_indexes": [0],
}


def test_vision_tower_takes_patches_and_their_grid(tmp_path: Path) -> None:
    """The grid's values set how many patches each image has: they are given, and the
    tower's value-dependent steps (cu_seqlens, window indices) run on them."""
    target = load(tmp_path, TINY_QWEN25_VISION)
    made = specs(target, 2, 999)
    # 2 images of 1 x 16 x 16 patches, each patch 3 channels x 2 frames x 14 x 14 = 1,176
    assert made == {
        "hidden_states": TensorSpec((512, 1176)),
        "grid_thw": TensorSpec((2, 3), INT, values=[[1, 16, 16], [1, 16, 16]]),
    }
    report = analyse(target, 2, 1, mode="train")
    # the patch embedding is a Conv3d over each patch, without bias: 512 * 32 * 1,176 MACs
    assert row(report, "patch_embed").forward.macs == 512 * 32 * 1176 == 19_267_584
    # the merger maps each group of 2 x 2 patches (4 * 32 = 128 values) to 48: its second
    # linear layer sees 128 groups: 128 * 128 * 48 MACs
    assert row(report, "merger.mlp.2").forward.macs == 128 * 128 * 48


def test_ordinary_token_avoids_special_ids() -> None:
    config = SimpleNamespace(vocab_size=10, pad_token_id=5, image_token_id=4, eos_token_id=[3])
    # the middle, 5, is padding and 4 an image placeholder: 3 is eos, so 2
    assert ordinary_token(ConfigView(config)) == 2


def test_siglip2_patch_rows_with_their_shapes(tmp_path: Path) -> None:
    target = load(tmp_path, {
        "model_type": "siglip2_vision_model", "hidden_size": 16, "intermediate_size": 32,
        "num_hidden_layers": 1, "num_attention_heads": 2, "patch_size": 2, "num_patches": 16,
    })
    made = specs(target, 2, 4)
    # 16 patches: a 4 x 4 grid per image; a row is 3 * 2 * 2 = 12 values
    assert made["pixel_values"] == TensorSpec((2, 16, 12))
    assert made["spatial_shapes"] == TensorSpec((2, 2), INT, values=[[4, 4], [4, 4]])
    assert made["pixel_attention_mask"] == TensorSpec((2, 16), INT, values=1)
    report = analyse(target, 2, 4)
    patches = row(report, "embeddings.patch_embedding")
    # Linear(12 -> 16, bias) over 2 * 16 = 32 rows: MACs 32 * 12 * 16 = 6,144; exact 2 * MACs
    assert patches.forward.macs == 6_144
    assert patches.forward.flops == 12_288


def test_kimi_tower_reads_each_patch_as_an_image(tmp_path: Path) -> None:
    target = load(tmp_path, {
        "model_type": "kimi_k25_vision", "hidden_size": 16, "intermediate_size": 32,
        "num_hidden_layers": 1, "num_attention_heads": 2, "patch_size": 2, "image_size": 8,
    })
    made = specs(target, 2, 4)
    # 8 / 2 = 4 patches a side (a multiple of the 2 x 2 merge): 2 * 16 = 32 patches of 3x2x2
    assert made["pixel_values"] == TensorSpec((32, 3, 2, 2))
    assert made["grid_thw"] == TensorSpec((2, 3), INT, values=[[1, 4, 4]] * 2)
    report = analyse(target, 2, 4)
    proj = row(report, "patch_embed.proj")
    # Conv2d(3 -> 16, k=2, stride 2, bias): 32 * 16 outputs, MACs 512 * 3 * 4 = 6,144
    assert proj.forward.macs == 6_144
    assert proj.forward.flops == 12_288


def test_audio_tokenizer_decoder_reads_latents(tmp_path: Path) -> None:
    target = load(tmp_path, {
        "model_type": "vibevoice_acoustic_tokenizer_decoder", "hidden_size": 8,
        "num_filters": 4, "downsampling_ratios": [2, 2], "depths": [1, 1, 1], "kernel_size": 3,
    })
    # its `hidden_states` are (B, hidden_size, frames) latents, not a vision patch list
    assert specs(target, 2, 4) == {"hidden_states": TensorSpec((2, 8, 4))}
    report = analyse(target, 2, 4)
    stem = row(report, "stem.conv.conv")
    # Conv1d(8 -> 4 * 2**2 = 16, k=3, causal, bias) over 4 frames: 2 * 16 * 4 = 128 outputs
    # MACs 128 * 8 * 3 = 3,072; exact 2 * MACs
    assert stem.forward.macs == 3_072
    assert stem.forward.flops == 6_144


def test_decision_transformer_gets_its_trajectory(tmp_path: Path) -> None:
    target = load(tmp_path, {
        "model_type": "decision_transformer", "state_dim": 3, "act_dim": 2, "hidden_size": 16,
        "n_layer": 1, "n_head": 2, "max_ep_len": 10, "n_positions": 16,
    })
    made = specs(target, 2, 4)
    assert made["states"] == TensorSpec((2, 4, 3))
    assert made["actions"] == TensorSpec((2, 4, 2))
    assert made["returns_to_go"] == TensorSpec((2, 4, 1))
    assert made["timesteps"] == TensorSpec((2, 4), INT, values=0)
    report = analyse(target, 2, 4)
    state = row(report, "embed_state")
    # Linear(3 -> 16, bias) over 2 * 4 = 8 steps: MACs 8 * 3 * 16 = 384; exact 2 * MACs
    assert state.forward.macs == 384
    assert state.forward.flops == 768


def test_stacked_spectrogram_frames(tmp_path: Path) -> None:
    target = load(tmp_path, {
        "model_type": "granite_speech5_encoder", "num_mel_bins": 4, "hidden_size": 16,
        "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
        "head_dim": 8, "context_size": 4,
    })
    # its first layer reads 4 bins * 4 stacked frames = 16 values a row
    assert specs(target, 2, 4)["input_features"] == TensorSpec((2, 4, 16))
    report = analyse(target, 2, 4)
    first = row(report, "input_linear")
    # Linear(16 -> 16, bias) over 8 rows: MACs 8 * 16 * 16 = 2,048; exact 2 * MACs
    assert first.forward.macs == 2_048
    assert first.forward.flops == 4_096


def test_patch_positions_tile_the_pooling_grid() -> None:
    view = ConfigView(SimpleNamespace(patch_size=2, image_size=8, pooling_kernel_size=3),
                      layout=PixelLayout.ROWS)
    # 8 / 2 = 4 patches a side, rounded up to a multiple of the 3 x 3 pooling: 6
    assert patch_grid(view) == (1, 6, 6)
    positions = patch_positions(view, 1, 0)
    assert positions.shape == (1, 36, 2)
    assert isinstance(positions.values, list)
    assert positions.values[0][:7] == [[0, 0], [1, 0], [2, 0], [3, 0], [4, 0], [5, 0], [0, 1]]
    assert pixels(view, 1, 0) == TensorSpec((1, 36, 12))  # 3 * 2 * 2 values a patch
    assert merge_sizes(view, 2, 0) == TensorSpec((2,), INT, values=[3, 3])


def test_video_only_placeholders_mean_frames() -> None:
    # InstructBLIP Video names a video placeholder and no image one: (B, T, C, H, W)
    video = ConfigView(SimpleNamespace(video_token_index=5, image_size=8))
    assert pixels(video, 2, 0) == TensorSpec((2, 16, 3, 8, 8))
    both = ConfigView(SimpleNamespace(video_token_index=5, image_token_index=6, image_size=8))
    assert pixels(both, 2, 0) == TensorSpec((2, 3, 8, 8))
