"""Inputs of audio and speech models (zoo.hf.inputs.audio): waveforms, spectrograms,
codebooks, hops and bin layouts."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from memflops.capture.inputs import TensorSpec
from memflops.zoo.hf.inputs import (
    ASSUMED,
    BUILDERS,
    ConfigView,
    HFInputs,
    hop,
    input_names,
    reads_bins_first,
    spectrogram,
)
from memflops.zoo.hf.inputs.audio import FRAMES_PER_TOKEN, mel_bins, spectrogram_bins

pytest.importorskip("transformers")


INT = torch.int64


TINY_WHISPER = {
    "model_type": "whisper", "d_model": 32, "encoder_layers": 1, "decoder_layers": 1,
    "encoder_attention_heads": 2, "decoder_attention_heads": 2, "encoder_ffn_dim": 64,
    "decoder_ffn_dim": 64, "num_mel_bins": 8, "max_source_positions": 16,
    "max_target_positions": 32, "vocab_size": 50, "pad_token_id": 0, "bos_token_id": 1,
    "eos_token_id": 2, "decoder_start_token_id": 1, "begin_suppress_tokens": None,
}


TINY_MOONSHINE = {
    "model_type": "moonshine", "hidden_size": 32, "intermediate_size": 64,
    "encoder_num_hidden_layers": 1, "decoder_num_hidden_layers": 1,
    "encoder_num_attention_heads": 2, "decoder_num_attention_heads": 2,
    "encoder_num_key_value_heads": 2, "decoder_num_key_value_heads": 2, "vocab_size": 50,
}


TINY_WAV2VEC2 = {
    "model_type": "wav2vec2", "hidden_size": 32, "num_hidden_layers": 1,
    "num_attention_heads": 2, "intermediate_size": 64, "conv_dim": [8, 8],
    "conv_stride": [5, 2], "conv_kernel": [10, 3], "num_feat_extract_layers": 2,
    "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 2,
}


TINY_GLMASR = {
    "model_type": "glmasr_encoder", "hidden_size": 16, "intermediate_size": 32,
    "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2,
    "num_mel_bins": 8, "max_position_embeddings": 64,
}


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


def test_whisper_takes_its_fixed_mel_window(
    tmp_path: Path,
    analyse: Any,
    load: Any,
    row: Any,
    specs: Any,
) -> None:
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


def test_moonshine_waveform(tmp_path: Path, analyse: Any, load: Any, row: Any, specs: Any) -> None:
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


def test_wav2vec2_hop_and_random_skips(tmp_path: Path, load: Any, specs: Any) -> None:
    target = load(tmp_path, TINY_WAV2VEC2)
    # hop = product of conv_stride = 5 * 2 = 10 samples a frame
    assert specs(target, 2, 8) == {"input_values": TensorSpec((2, 80))}
    config = target.module.config
    assert config.apply_spec_augment is False and config.layerdrop == 0.0
    assert any("apply_spec_augment=True" in w and "layerdrop=0.1" in w for w in target.warnings)
    assert sum(p.numel() for p in target.module.parameters()) > 0


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


def test_glmasr_encoder_reads_bins_first(
    tmp_path: Path,
    analyse: Any,
    load: Any,
    row: Any,
    specs: Any,
) -> None:
    target = load(tmp_path, TINY_GLMASR)
    assert specs(target, 2, 12) == {"input_features": TensorSpec((2, 8, 12))}
    report = analyse(target, 2, 12, mode="train")
    conv1 = row(report, "conv1")
    # Conv1d(8 -> 16, k=3, pad 1, bias) over 12 frames: 2 * 16 * 12 = 384 outputs
    # MACs 384 * 8 * 3 = 9,216; with the bias, exact = 2 * MACs = 18,432
    assert conv1.forward.macs == 9_216
    assert conv1.forward.flops == 18_432


def test_hop_reads_derived_samples_per_token() -> None:
    view = ConfigView(_PatchConfig())
    assert hop(view) == 160  # 8 * 5 * 4, before conv_stride and the 320 default
    assert view.find("samples_per_token") is None  # properties only where asked for
    assert view.find("broken", derived=True) is None  # a property that cannot compute


def test_audio_tokenizer_decoder_reads_latents(
    tmp_path: Path,
    analyse: Any,
    load: Any,
    row: Any,
    specs: Any,
) -> None:
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


def test_stacked_spectrogram_frames(
    tmp_path: Path,
    analyse: Any,
    load: Any,
    row: Any,
    specs: Any,
) -> None:
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


class Speech(nn.Module):
    main_input_name = "input_ids"

    def forward(self, input_ids: torch.Tensor, attention_mask: Any = None,
                spectrogram_labels: Any = None, duration_labels: Any = None,
                pitch_labels: Any = None, energy_labels: Any = None) -> torch.Tensor:
        raise NotImplementedError


def test_kyutai_tokens_carry_a_text_token_and_one_per_codebook(config_stub: Any) -> None:
    view = ConfigView(config_stub(vocab_size=4001, codebook_vocab_size=2049, num_codebooks=2,
                             pad_token_id=3, audio_pad_token_id=69569))
    spec = BUILDERS["input_ids"](view, 2, 3)
    # text: 4001 // 2 = 2000; each codebook: 2049 // 2 = 1024
    assert spec.shape == (2, 3, 3) and spec.dtype == INT
    assert spec.values == [[[2000, 1024, 1024]] * 3] * 2


def test_moshi_style_codebooks_leave_the_text_tokens_flat(config_stub: Any) -> None:
    view = ConfigView(config_stub(vocab_size=32000, num_codebooks=8))  # no codebook_vocab_size
    spec = BUILDERS["input_ids"](view, 2, 3)
    assert spec.shape == (2, 3) and spec.values == 16000


def test_a_speech_step_gets_targets_laid_out_by_the_durations(config_stub: Any, specs: Any) -> None:
    config = config_stub(vocab_size=78, num_mel_bins=80)
    names = input_names(Speech(), config, "decoder")
    assert names == ("input_ids", "spectrogram_labels", "duration_labels", "pitch_labels",
                     "energy_labels")
    specs = HFInputs("fs2", names, config)(2, 5)
    assert specs["duration_labels"].shape == (2, 5)
    assert specs["duration_labels"].values == FRAMES_PER_TOKEN == 7
    # 5 tokens of 7 frames: 35 frames of 80 bins, none padding (-100)
    assert specs["spectrogram_labels"].shape == (2, 35, 80)
    assert specs["spectrogram_labels"].values == 0.0
    assert specs["pitch_labels"].shape == specs["energy_labels"].shape == (2, 5, 1)
    assert str(FRAMES_PER_TOKEN) in ASSUMED["duration_labels"]


def test_feature_extractor_sizes_come_from_the_table_not_the_config(config_stub: Any) -> None:
    gemma = config_stub.typed("gemma4_audio")
    assert spectrogram_bins(ConfigView(gemma)) == 128 and "num_mel_bins" not in vars(gemma)
    encoder = config_stub.typed("granite_speech5_encoder", num_mel_bins=80)
    assert mel_bins(ConfigView(encoder)) == 4 * 80  # deltas doubled, frames in pairs
    ctc = config_stub.typed("granite_speech5_ctc", encoder_config=encoder)
    assert mel_bins(ConfigView(ctc)) == 320
    assert mel_bins(ConfigView(config_stub(num_mel_bins=80, num_stacked_frames=7))) == 560


def test_clap_reads_one_crop_without_fusion_and_four_with_it(config_stub: Any) -> None:
    audio = config_stub(num_mel_bins=64, enable_fusion=False)
    view = ConfigView(config_stub(audio_config=audio))
    # (B, 1 crop, frames, 64 mel bins)
    assert BUILDERS["input_features"](view, 2, 50) == TensorSpec((2, 1, 50, 64))
    fused = ConfigView(config_stub(audio_config=config_stub(num_mel_bins=64, enable_fusion=True)))
    assert BUILDERS["input_features"](fused, 2, 50) == TensorSpec((2, 4, 50, 64))


def test_chunked_encoder_takes_whole_chunks_bins_first(config_stub: Any) -> None:
    view = ConfigView(config_stub(num_mel_bins=128, n_window=50), bins_first=True)
    # chunks of 2 * 50 = 100 frames: 64 -> 100, 150 -> 200
    assert BUILDERS["input_features"](view, 2, 64) == TensorSpec((2, 128, 100))
    assert BUILDERS["input_features_mask"](view, 2, 150) == TensorSpec((2, 200), INT)
    plain = ConfigView(config_stub(num_mel_bins=128))
    assert BUILDERS["input_features"](plain, 2, 64) == TensorSpec((2, 64, 128))


def test_codebook_decoder_takes_channels_per_step(config_stub: Any) -> None:
    decoder = config_stub(num_channels=9, vocab_size=1028, pad_token_id=1025)
    encoder = config_stub(vocab_size=256)
    view = ConfigView(config_stub(decoder_config=decoder, encoder_config=encoder))
    # 9 codebooks a step; ordinary token 1028 // 2 = 514 of the decoder's vocabulary
    assert BUILDERS["decoder_input_ids"](view, 2, 16) == TensorSpec((2, 16, 9), INT, values=514)
    text = ConfigView(config_stub(vocab_size=50))
    assert BUILDERS["decoder_input_ids"](text, 2, 4) == TensorSpec((2, 4), INT, values=25)
