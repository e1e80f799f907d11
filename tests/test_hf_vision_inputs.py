"""Inputs of HF vision models: keypoint-matching pairs, image sets, detector prompts, a
text tower under a vision main input, and configs only a constructor builds."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from memflops.zoo.hf.config import make_config  # noqa: E402
from memflops.zoo.hf.inputs import (  # noqa: E402
    ASSUMED,
    BUILDERS,
    ConfigView,
    PixelLayout,
    input_names,
    splices_modalities,
)
from memflops.zoo.hf.inputs.vision_tasks import DETECTOR_CLASSES  # noqa: E402


def _config(model_type: str) -> object:
    return transformers.AutoConfig.for_model(model_type)


def test_keypoint_matcher_takes_image_pairs() -> None:
    view = ConfigView(_config("efficientloftr"))
    spec = BUILDERS["pixel_values"](view, 3, 8)
    # B = 3 pairs of 2 images, (C, H, W) = (3, 224, 224) (no image_size in the config)
    assert spec.shape == (3, 2, 3, 224, 224)


def test_plain_classifier_takes_single_images() -> None:
    spec = BUILDERS["pixel_values"](ConfigView(_config("vit")), 3, 8)
    assert spec.shape == (3, 3, 224, 224)


def test_image_sets_beside_an_image_attention_mask() -> None:
    config = _config("idefics")
    names = ("input_ids", "pixel_values", "image_attention_mask")
    layout = PixelLayout.of(names, config)
    assert layout == PixelLayout.SETS
    view = ConfigView(config, layout=layout)
    assert BUILDERS["pixel_values"](view, 2, 10).shape == (2, 1, 3, 224, 224)
    mask = BUILDERS["image_attention_mask"](view, 2, 10)
    assert mask.shape == (2, 10, 1) and mask.values == 1  # every token sees its image
    assert "1 image per sample" in ASSUMED["image_attention_mask"]


def test_detector_prompts_are_flattened_classes_and_tasks() -> None:
    view = ConfigView(_config("omdet-turbo"))
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


class _TextTower(torch.nn.Module):
    """A text model that inherits a vision class's `main_input_name`."""

    main_input_name = "pixel_values"

    def forward(
        self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        return input_ids


def test_text_tower_under_a_vision_main_input_takes_tokens() -> None:
    assert input_names(_TextTower(), _config("clip_text_model"), "base") == ("input_ids",)


def test_placeholder_under_an_attribute_alias_splices() -> None:
    # Molmo 2 names its placeholder `image_patch_id`, aliased to `image_token_id`
    assert splices_modalities(_config("molmo2"))
    assert not splices_modalities(_config("clip"))


@pytest.mark.parametrize("model_type", ["timm_wrapper", "gemma3n_vision"])
def test_timm_wrapper_config_without_num_classes_builds(model_type: str) -> None:
    config = make_config({"model_type": model_type}, "test")
    assert config.num_labels == 2  # the class's default, as AutoConfig.for_model


def test_kosmos2_image_tokens_follow_its_processor(tmp_path: object) -> None:
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


def test_merged_tiles_one_per_image_token() -> None:
    names = ("pixel_values", "image_grid_thw")
    config = _config("inkling2_vision")
    assert PixelLayout.of(names, config) == PixelLayout.TILES
    view = ConfigView(config, layout=PixelLayout.TILES)
    # 16 x 16 patches of 20 px, merged 2 x 2: 8 x 8 = 64 tiles of 40 x 40 px per image
    assert BUILDERS["pixel_values"](view, 2, 8).shape == (2 * 64, 40, 40, 3)
    grid = BUILDERS["image_grid_thw"](view, 2, 8)
    assert grid.values == [[1, 8, 8], [1, 8, 8]]  # counted in tiles, not patches


def test_token_kinds_beside_text_where_forward_takes_them() -> None:
    class Splicer(torch.nn.Module):
        main_input_name = "input_ids"

        def forward(self, input_ids: torch.Tensor,
                    mm_token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
            return input_ids

    names = input_names(Splicer(), _config("molmo2"), "decoder")
    assert names == ("input_ids", "mm_token_type_ids")
    kinds = BUILDERS["mm_token_type_ids"](ConfigView(_config("molmo2")), 2, 5)
    assert (kinds.shape, kinds.values) == ((2, 5), 0)  # all text


def test_only_image_set_models_get_a_token_to_image_mask(tmp_path: object) -> None:
    import json
    from pathlib import Path

    from memflops.frontends.targets import load_target

    path = Path(str(tmp_path)) / "flava.json"
    path.write_text(json.dumps({"model_type": "flava"}))
    inputs = load_target(f"hf:{path}").make_inputs
    assert inputs is not None
    made = inputs(2, 16)
    # FLAVA's own `image_attention_mask` masks patches: not fed; its images are plain
    assert "image_attention_mask" not in made
    assert made["pixel_values"].shape == (2, 3, 224, 224)
