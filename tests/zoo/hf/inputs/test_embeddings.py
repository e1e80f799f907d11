"""Inputs that are another model's embeddings (zoo.hf.inputs.embeddings)."""

from __future__ import annotations

from typing import Any

from memflops.capture.inputs import TensorSpec
from memflops.zoo.hf.inputs import BUILDERS, ConfigView


def test_embedding_inputs_take_the_sizes_of_the_model_they_come_from(config_stub: Any) -> None:
    drafter = ConfigView(config_stub(hidden_size=64, block_size=16, target_layer_ids=[1, 5, 9]))
    assert BUILDERS["noise_embeds"](drafter, 2, 32) == TensorSpec((2, 16, 64))
    # 3 target layers of 64 concatenated: 3 * 64 = 192
    assert BUILDERS["context_hidden_states"](drafter, 2, 32) == TensorSpec((2, 32, 192))
    assert BUILDERS["inputs_embeds"](drafter, 2, 32) == TensorSpec((2, 32, 64))
    assert BUILDERS["t_cond"](drafter, 2, 32) == TensorSpec((1, 64))
