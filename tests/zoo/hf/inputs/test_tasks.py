"""Task inputs (zoo.hf.inputs.tasks): image tokens laid out as the processor does."""

from __future__ import annotations

from typing import Any

import pytest


def test_kosmos2_image_tokens_follow_its_processor(tmp_path: object, row: Any) -> None:
    import json
    from pathlib import Path

    from memflops.errors import SpecError
    from memflops.frontends.targets import load_target

    path = Path(str(tmp_path)) / "kosmos-2.json"
    path.write_text(json.dumps({"model_type": "kosmos-2"}))
    inputs = load_target(f"hf:{path}").make_inputs
    assert inputs is not None
    # <s> <image> + latent_query_num 64 image tokens + </image> = 67 tokens at least
    with pytest.raises(SpecError, match="seq 66 is shorter than the 67 tokens"):
        inputs(1, 66)
    mask = inputs(2, 70)["image_embeds_position_mask"]
    assert mask.shape == (2, 70)
    row = [0, 0] + [1] * 64 + [0] * 4
    assert mask.values == [row, row]
