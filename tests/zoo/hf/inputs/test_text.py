"""Text inputs (zoo.hf.inputs.text): token ids."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from memflops.zoo.hf.inputs import (
    ConfigView,
    ordinary_token,
)

pytest.importorskip("transformers")


def test_ordinary_token_avoids_special_ids() -> None:
    config = SimpleNamespace(vocab_size=10, pad_token_id=5, image_token_id=4, eos_token_id=[3])
    # the middle, 5, is padding and 4 an image placeholder: 3 is eos, so 2
    assert ordinary_token(ConfigView(config)) == 2
