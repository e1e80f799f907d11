"""Builders of time-series inputs: the past window, the forecast window, their features."""

from __future__ import annotations

import torch

from memflops.capture.inputs import TensorSpec
from memflops.zoo.hf.inputs.registry import DEFAULT_FRAMES, ConfigView, builds


def past_length(view: ConfigView) -> int:
    """`context_length` plus the largest lag (lags read further back)."""
    lags = view.find("lags_sequence")
    longest = max((int(v) for v in lags), default=0) if isinstance(lags, (list, tuple)) else 0
    return view.size("context_length", default=DEFAULT_FRAMES) + longest


def _series(view: ConfigView, batch: int, steps: int) -> tuple[int, ...]:
    channels = view.size("num_input_channels", "input_size", default=1)
    if view.find("num_input_channels") is not None or channels > 1:
        return batch, steps, channels
    return batch, steps


@builds("past_values", "past_observed_mask")
def past_values(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, past length[, channels])."""
    return TensorSpec(_series(view, batch, past_length(view)))


@builds("future_values")
def future_values(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, prediction_length[, channels])."""
    return TensorSpec(_series(view, batch, view.size("prediction_length", default=1)))


@builds("past_time_features")
def past_time_features(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, past length, num_time_features)."""
    return TensorSpec((batch, past_length(view), view.size("num_time_features", default=1)))


@builds("future_time_features")
def future_time_features(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, prediction_length, num_time_features)."""
    steps = view.size("prediction_length", default=1)
    return TensorSpec((batch, steps, view.size("num_time_features", default=1)))


@builds("static_categorical_features")
def static_categorical(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, num_static_categorical_features) category indices."""
    count = view.size("num_static_categorical_features", default=0)
    return TensorSpec((batch, count), torch.int64)


@builds("static_real_features")
def static_real(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, num_static_real_features)."""
    return TensorSpec((batch, view.size("num_static_real_features", default=0)))


@builds("past_values_padding")
def past_padding(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, past length) 0/1 padding flags (TimesFM)."""
    return TensorSpec((batch, past_length(view)), torch.int64)


@builds("freq")
def frequency(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, 1) frequency class of each series (TimesFM)."""
    return TensorSpec((batch, 1), torch.int64)


SIZED_BY = {
    "static_categorical_features": "num_static_categorical_features",
    "static_real_features": "num_static_real_features",
}
"""Optional inputs fed only where the config gives them a nonzero size."""
