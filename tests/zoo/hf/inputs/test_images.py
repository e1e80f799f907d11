"""Inputs of image and video models (zoo.hf.inputs.images): frames, patch grids, image
sizes, windows and tiles."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from memflops.capture.inputs import TensorSpec
from memflops.zoo.hf.inputs import (
    BUILDERS,
    ConfigView,
    PixelLayout,
    image_shape,
    merge_sizes,
    patch_grid,
    patch_positions,
    pixels,
)

pytest.importorskip("transformers")


INT = torch.int64


TINY_VIDEOMAE = {
    "model_type": "videomae", "image_size": 32, "patch_size": 16, "num_frames": 4,
    "tubelet_size": 2, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
    "intermediate_size": 64,
}


TINY_QWEN25_VISION = {
    "model_type": "qwen2_5_vl_vision", "depth": 1, "hidden_size": 32, "intermediate_size": 64,
    "num_heads": 2, "out_hidden_size": 48, "patch_size": 14, "temporal_patch_size": 2,
    "spatial_merge_size": 2, "window_size": 112, "fullatt_block_indexes": [0],
}


def test_videomae_frames(tmp_path: Path, analyse: Any, load: Any, row: Any, specs: Any) -> None:
    target = load(tmp_path, TINY_VIDEOMAE)
    # (B, num_frames, C, H, W); seq is not used
    assert specs(target, 2, 999) == {"pixel_values": TensorSpec((2, 4, 3, 32, 32))}
    report = analyse(target, 2, 1, mode="train")
    patches = row(report, "embeddings.patch_embeddings.projection")
    # Conv3d(3 -> 32, k=(2, 16, 16), stride = k, bias) -> (2, 32, 2, 2, 2): 512 outputs
    # MACs 512 * 3 * 2 * 16 * 16 = 786,432; with the bias exact = 2 * MACs = 1,572,864
    assert patches.forward.macs == 786_432
    assert patches.forward.flops == 1_572_864


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


def test_vision_tower_takes_patches_and_their_grid(
    tmp_path: Path,
    analyse: Any,
    load: Any,
    row: Any,
    specs: Any,
) -> None:
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


def test_siglip2_patch_rows_with_their_shapes(
    tmp_path: Path,
    analyse: Any,
    load: Any,
    row: Any,
    specs: Any,
) -> None:
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


def test_kimi_tower_reads_each_patch_as_an_image(
    tmp_path: Path,
    analyse: Any,
    load: Any,
    row: Any,
    specs: Any,
) -> None:
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


transformers = pytest.importorskip("transformers")


class _Windowed:
    """A config with a windowed ViT's sizes (RF-DETR base: patch 14, 4 x 4 windows)."""

    def __init__(self, **sizes: object) -> None:
        vars(self).update(sizes)


def test_windowed_vit_image_rounds_up_to_whole_windows() -> None:
    from memflops.zoo.hf.inputs.images import windowed_warning

    view = ConfigView(_Windowed(image_size=518, patch_size=14, num_windows=4))
    # 518 / 14 = 37 patches a side, which 4 windows do not divide: ceil(518 / 56) * 56 = 560
    assert BUILDERS["pixel_values"](view, 2, 8).shape == (2, 3, 560, 560)
    assert "560 px" in (windowed_warning(view) or "")
    # LW-DETR names the side `num_windows_side` (num_windows = 16 in all): 1024 = 16 * 64
    lw = ConfigView(_Windowed(image_size=1024, patch_size=16, num_windows=16, num_windows_side=4))
    assert BUILDERS["pixel_values"](lw, 1, 8).shape == (1, 3, 1024, 1024)
    assert windowed_warning(lw) is None
    # no windows: the size as the config gives it
    assert BUILDERS["pixel_values"](ConfigView(_Windowed(image_size=518)), 1, 8).shape == (
        1, 3, 518, 518)


def test_merged_tiles_one_per_image_token(auto_config: Any) -> None:
    names = ("pixel_values", "image_grid_thw")
    config = auto_config("inkling2_vision")
    assert PixelLayout.of(names, config) == PixelLayout.TILES
    view = ConfigView(config, layout=PixelLayout.TILES)
    # 16 x 16 patches of 20 px, merged 2 x 2: 8 x 8 = 64 tiles of 40 x 40 px per image
    assert BUILDERS["pixel_values"](view, 2, 8).shape == (2 * 64, 40, 40, 3)
    grid = BUILDERS["image_grid_thw"](view, 2, 8)
    assert grid.values == [[1, 8, 8], [1, 8, 8]]  # counted in tiles, not patches
