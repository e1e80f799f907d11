"""Detector prompts (zoo.hf.inputs.vision_tasks)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from memflops.zoo.hf.inputs import (
    ASSUMED,
    BUILDERS,
    ConfigView,
)
from memflops.zoo.hf.inputs.vision_tasks import DETECTOR_CLASSES

transformers = pytest.importorskip("transformers")


def test_detector_prompts_are_flattened_classes_and_tasks(auto_config: Any) -> None:
    view = ConfigView(auto_config("omdet-turbo"))
    ids = BUILDERS["classes_input_ids"](view, 2, 8)
    # 2 images * 80 classes = 160 class prompts of CLIP's 77 tokens
    assert ids.shape == (160, 77) and ids.dtype == torch.int64
    assert isinstance(ids.values, int) and ids.values > 0  # an ordinary token
    assert BUILDERS["classes_attention_mask"](view, 2, 8).values == 1
    assert BUILDERS["tasks_input_ids"](view, 2, 8).shape == (2, 77)
    assert BUILDERS["tasks_attention_mask"](view, 2, 8).values == 1
    structure = BUILDERS["classes_structure"](view, 2, 8)
    assert structure.shape == (2,) and structure.values == [DETECTOR_CLASSES] * 2
    assert "80 class names per image" in ASSUMED["classes_structure"]
