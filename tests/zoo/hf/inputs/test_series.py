"""Inputs of time-series and trajectory models (zoo.hf.inputs.series)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from memflops.capture.inputs import TensorSpec

pytest.importorskip("transformers")


INT = torch.int64


TINY_PATCHTST = {
    "model_type": "patchtst", "context_length": 16, "num_input_channels": 3,
    "patch_length": 4, "patch_stride": 4, "num_hidden_layers": 1, "d_model": 16,
    "num_attention_heads": 2, "ffn_dim": 32, "prediction_length": 8,
}


TINY_TIME_SERIES = {
    "model_type": "time_series_transformer", "d_model": 16, "encoder_layers": 1,
    "decoder_layers": 1, "encoder_attention_heads": 2, "decoder_attention_heads": 2,
    "encoder_ffn_dim": 32, "decoder_ffn_dim": 32, "lags_sequence": [1, 2, 3],
    "num_time_features": 2, "context_length": 10,
}


def test_patchtst_window(tmp_path: Path, analyse: Any, load: Any, row: Any, specs: Any) -> None:
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


def test_time_series_gets_a_horizon_and_its_features(
    tmp_path: Path,
    analyse: Any,
    load: Any,
    specs: Any,
) -> None:
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


def test_decision_transformer_gets_its_trajectory(
    tmp_path: Path,
    analyse: Any,
    load: Any,
    row: Any,
    specs: Any,
) -> None:
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
