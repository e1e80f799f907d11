"""HF inputs, round 2: codebook steps, a text-to-speech step's targets,
selecting by a known mask, single-sample models and feature extractors' sizes."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

import memflops
from hf_stub import Config
from memflops.errors import SpecError
from memflops.zoo.hf.inputs import ASSUMED, BUILDERS, ConfigView, HFInputs, input_names
from memflops.zoo.hf.inputs.audio import FRAMES_PER_TOKEN, mel_bins, spectrogram_bins

INT = torch.int64


def typed(model_type: str, **fields: Any) -> Config:
    """A config of a class whose `model_type` is `model_type`."""
    cls = type(f"Config_{model_type}", (Config,), {"model_type": model_type})
    config: Config = cls(**fields)
    return config


# --- tokens that carry audio codebooks ----------------------------------------------------


def test_kyutai_tokens_carry_a_text_token_and_one_per_codebook() -> None:
    view = ConfigView(Config(vocab_size=4001, codebook_vocab_size=2049, num_codebooks=2,
                             pad_token_id=3, audio_pad_token_id=69569))
    spec = BUILDERS["input_ids"](view, 2, 3)
    # text: 4001 // 2 = 2000; each codebook: 2049 // 2 = 1024
    assert spec.shape == (2, 3, 3) and spec.dtype == INT
    assert spec.values == [[[2000, 1024, 1024]] * 3] * 2


def test_moshi_style_codebooks_leave_the_text_tokens_flat() -> None:
    view = ConfigView(Config(vocab_size=32000, num_codebooks=8))  # no codebook_vocab_size
    spec = BUILDERS["input_ids"](view, 2, 3)
    assert spec.shape == (2, 3) and spec.values == 16000


# --- FastSpeech 2's training targets ------------------------------------------------------


class Speech(nn.Module):
    main_input_name = "input_ids"

    def forward(self, input_ids: torch.Tensor, attention_mask: Any = None,
                spectrogram_labels: Any = None, duration_labels: Any = None,
                pitch_labels: Any = None, energy_labels: Any = None) -> torch.Tensor:
        raise NotImplementedError


def test_a_speech_step_gets_targets_laid_out_by_the_durations() -> None:
    config = Config(vocab_size=78, num_mel_bins=80)
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


def test_select_by_a_known_broadcast_mask_has_its_true_size() -> None:
    class Select(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            mask = torch.ones(4, 1, dtype=torch.bool)
            mask[0] = False  # known: 3 of 4 rows
            picked = x.masked_select(mask)  # broadcast to (4, 3): 3 * 3 = 9 entries
            return picked * picked

    report = memflops.analyze(Select(), (4, 3), mode="inference")
    assert not report.uncounted_ops
    assert report.totals.costs.forward.flops == 9  # the square of 9 entries; the select: 0


# --- models that run one sample ------------------------------------------------------------


def test_tvp_refuses_a_batch_of_more_than_one() -> None:
    inputs = HFInputs("tvp", ("input_ids",), typed("tvp", vocab_size=10))
    assert inputs.max_batch == 1
    assert inputs(1, 4)["input_ids"].shape == (1, 4)
    with pytest.raises(SpecError, match="add_2d_positional_embeddings"):
        inputs(2, 4)
    assert HFInputs("bert", ("input_ids",), typed("bert", vocab_size=10)).max_batch is None


# --- feature extractors' sizes -------------------------------------------------------------


def test_feature_extractor_sizes_come_from_the_table_not_the_config() -> None:
    gemma = typed("gemma4_audio")
    assert spectrogram_bins(ConfigView(gemma)) == 128 and "num_mel_bins" not in vars(gemma)
    encoder = typed("granite_speech5_encoder", num_mel_bins=80)
    assert mel_bins(ConfigView(encoder)) == 4 * 80  # deltas doubled, frames in pairs
    ctc = typed("granite_speech5_ctc", encoder_config=encoder)
    assert mel_bins(ConfigView(ctc)) == 320
    assert mel_bins(ConfigView(Config(num_mel_bins=80, num_stacked_frames=7))) == 560
