"""SAM 2 Video's session step (`memflops.zoo.hf.video_session`) on a tiny config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import memflops
from memflops.errors import AnalysisError
from memflops.frontends.targets import Loaded, load_target
from memflops.zoo.hf.video_session import SessionInputs

pytest.importorskip("transformers")

TINY: dict[str, Any] = {
    "model_type": "sam2_video",
    "image_size": 128,
    "num_maskmem": 3,
    "max_object_pointers_in_encoder": 4,
    "memory_attention_hidden_size": 128,
    "memory_attention_num_layers": 1,
    "memory_attention_feed_forward_hidden_size": 64,
    "memory_attention_rope_feat_sizes": [8, 8],
    "memory_encoder_hidden_size": 128,
    "memory_encoder_output_channels": 64,  # its cross-attention reads 64 (fixed)
    "mask_downsampler_embed_dim": 128,
    "memory_fuser_embed_dim": 128,
    "memory_fuser_intermediate_dim": 64,
    "memory_fuser_num_layers": 1,
    "vision_config": {
        "model_type": "sam2_vision_model",
        "backbone_channel_list": [128, 64, 32, 16],
        "backbone_feature_sizes": [[32, 32], [16, 16], [8, 8]],
        "fpn_hidden_size": 128,
        "backbone_config": {
            "model_type": "sam2_hiera_det_model",
            "hidden_size": 16,
            "image_size": [128, 128],
            "blocks_per_stage": [1, 1, 1, 1],
            "embed_dim_per_stage": [16, 32, 64, 128],
            "num_attention_heads_per_stage": [1, 1, 1, 1],
            "window_size_per_stage": [4, 4, 4, 2],
            "global_attention_blocks": [],
            "window_positional_embedding_background_size": [2, 2],
        },
    },
    "prompt_encoder_config": {"hidden_size": 128, "image_size": 128, "patch_size": 16},
    "mask_decoder_config": {
        "hidden_size": 128, "mlp_dim": 64, "num_attention_heads": 2, "iou_head_hidden_dim": 128,
    },
}
"""SAM 2 Video with small widths (features 128, memories 64: each pointer is split in two
memory tokens); 128 x 128 frames, an 8 x 8 top feature map."""


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    path: Path = tmp_path_factory.mktemp("sam2_video") / "config.json"
    path.write_text(json.dumps(TINY))
    return load_target(f"hf:{path}")


def test_inputs_are_one_frame_and_the_memory_bank(loaded: Loaded) -> None:
    session = loaded.make_inputs
    assert isinstance(session, SessionInputs)
    # frame 0 prompted, frames 1-3 tracked: max(num_maskmem 3, pointers 4) = 4 is analysed
    assert session.frame_idx == 4
    inputs = session(2, 64)
    assert inputs["frame"].shape == (1, 3, 128, 128)
    # one memory of one object: 8 * 8 positions of 64 channels, stored as the model does
    assert inputs["memory_features"].shape == (3, 2, 64, 1, 64)
    assert inputs["object_pointers"].shape == (4, 2, 1, 128)
    assert any("streamed frame 4" in w for w in loaded.warnings)


def test_steady_state_step(loaded: Loaded) -> None:
    module = loaded.module
    report = memflops.analyze(module, loaded.make_inputs(2, 64), mode="inference")
    assert report.totals.params == sum(p.numel() for p in module.parameters())
    assert report.uncounted_ops == ()
    rows = {row.path: row for row in report.modules}
    # the 4 pointers read (frame 0's and frames 1-3's) get a temporal encoding: Linear
    # 128 -> 64 with bias on (4, 128), per object: 2 objects * 4 * 64 * 2 * 128 = 131072
    layer = rows["temporal_positional_encoding_projection_layer"]
    assert layer.calls == 2
    assert layer.forward.flops == 131072
    assert layer.forward.macs == 65536  # 2 * 4 * 64 * 128
    # memory attention reads a full bank: 3 memories of 8 * 8 positions and 4 pointers split
    # in 2 tokens = 200 tokens; its key projection 64 -> 128 with bias, per object:
    # 2 objects * 200 * 128 * 2 * 64 = 6553600
    assert rows["memory_attention.layers.0.cross_attn_image.k_proj"].forward.flops == 6553600
    # the memory encoder writes frame 4's memory of both objects at once: its last 1x1
    # conv 128 -> 64 with bias on 2 x 8 x 8: 2 * 64 * 64 * 2 * 128 = 2097152
    assert rows["memory_encoder.projection"].forward.flops == 2097152


def test_training_step_is_refused(loaded: Loaded) -> None:
    with pytest.raises(AnalysisError, match="inference only"):
        memflops.analyze(loaded.module, loaded.make_inputs(1, 64), mode="train")
