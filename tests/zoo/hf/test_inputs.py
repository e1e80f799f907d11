"""Which inputs a transformers model takes (zoo.hf.inputs): names, layouts, placeholders,
learned position limits."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from memflops.capture.inputs import TensorSpec
from memflops.errors import SpecError
from memflops.frontends.targets import load_target
from memflops.zoo.hf.inputs import (
    ASSUMED,
    BUILDERS,
    ConfigView,
    HFInputs,
    PixelLayout,
    axial_positions,
    input_names,
    learned_positions,
    pixels,
    splices_modalities,
)

pytest.importorskip("transformers")


INT = torch.int64


TINY_BLIP = {
    "model_type": "blip",
    "text_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                    "num_attention_heads": 2, "vocab_size": 50, "encoder_hidden_size": 32},
    "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                      "num_attention_heads": 2, "image_size": 32, "patch_size": 16},
    "projection_dim": 16,
}


class _Positions(torch.nn.Embedding):
    offset = 2  # BART's table has 2 rows before position 0


def test_dual_encoder_takes_text_and_image(
    tmp_path: Path,
    analyse: Any,
    load: Any,
    row: Any,
    specs: Any,
) -> None:
    target = load(tmp_path, TINY_BLIP)
    assert type(target.module).__name__ == "BlipModel"
    assert specs(target, 2, 8) == {
        "input_ids": TensorSpec((2, 8), INT, values=25),  # token 50 // 2
        "pixel_values": TensorSpec((2, 3, 32, 32)),  # the vision config's size
    }
    report = analyse(target, 2, 8, mode="train")
    patches = row(report, "vision_model.embeddings.patch_embedding")
    # Conv2d(3 -> 32, k=16, stride 16, bias) -> (2, 32, 2, 2): 256 outputs
    # MACs 256 * 3 * 16 * 16 = 196,608; with the bias exact = 2 * MACs = 393,216
    assert patches.forward.macs == 196_608
    assert patches.forward.flops == 393_216


def test_placeholder_tokens_mean_text_alone() -> None:
    assert splices_modalities(SimpleNamespace(image_token_id=5))
    assert not splices_modalities(SimpleNamespace(projection_dim=16))


def test_learned_positions_from_tables() -> None:
    config = SimpleNamespace(max_position_embeddings=16, text=SimpleNamespace(
        n_positions=10, to_dict=dict))
    model = torch.nn.Module()
    model.position_embeddings = torch.nn.Embedding(16, 4, padding_idx=1)  # RoBERTa style
    model.wte = torch.nn.Embedding(10, 4)  # a token table of the same size: not positions
    # 16 rows, positions start after padding index 1: 16 - 2 = 14
    assert learned_positions(model, config) == 14
    model.wpe = torch.nn.Embedding(10, 4)  # GPT-2's table, sized by the sub-config
    assert learned_positions(model, config) == 10
    model.embed_positions = _Positions(10 + 2, 4)  # 12 rows, 2 of them offset
    assert learned_positions(model, config) == 10
    other = torch.nn.Module()
    other.pos_embed = torch.nn.Embedding(50, 4)  # a vision grid: no config names 50
    assert learned_positions(other, config) is None


def test_axial_positions() -> None:
    assert axial_positions(SimpleNamespace(axial_pos_embds=True, axial_pos_shape=(4, 8))) == 32
    assert axial_positions(SimpleNamespace(axial_pos_embds=False, axial_pos_shape=(4, 8))) is None


def test_video_only_placeholders_mean_frames() -> None:
    # InstructBLIP Video names a video placeholder and no image one: (B, T, C, H, W)
    video = ConfigView(SimpleNamespace(video_token_index=5, image_size=8))
    assert pixels(video, 2, 0) == TensorSpec((2, 16, 3, 8, 8))
    both = ConfigView(SimpleNamespace(video_token_index=5, image_token_index=6, image_size=8))
    assert pixels(both, 2, 0) == TensorSpec((2, 3, 8, 8))


def test_tvp_refuses_a_batch_of_more_than_one(config_stub: Any) -> None:
    inputs = HFInputs("tvp", ("input_ids",), config_stub.typed("tvp", vocab_size=10))
    assert inputs.max_batch == 1
    assert inputs(1, 4)["input_ids"].shape == (1, 4)
    with pytest.raises(SpecError, match="add_2d_positional_embeddings"):
        inputs(2, 4)
    bert = config_stub.typed("bert", vocab_size=10)
    assert HFInputs("bert", ("input_ids",), bert).max_batch is None


def test_an_input_the_model_makes_itself_is_not_passed_on(tmp_path: Path) -> None:
    # Voxtral Realtime computes the `t_cond` its text model takes; the text model alone
    # takes it through **kwargs and is fed it


    for model_type, fed in (("voxtral_realtime", False), ("voxtral_realtime_text", True)):
        path = tmp_path / f"{model_type}.json"
        path.write_text(json.dumps({"model_type": model_type}))
        inputs = load_target(f"hf:{path}").make_inputs
        assert inputs is not None
        assert ("t_cond" in inputs(1, 8)) is fed, model_type


class _TextTower(torch.nn.Module):
    """A text model that inherits a vision class's `main_input_name`."""

    main_input_name = "pixel_values"

    def forward(
        self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        return input_ids


def test_keypoint_matcher_takes_image_pairs(auto_config: Any) -> None:
    view = ConfigView(auto_config("efficientloftr"))
    spec = BUILDERS["pixel_values"](view, 3, 8)
    # B = 3 pairs of 2 images, (C, H, W) = (3, 224, 224) (no image_size in the config)
    assert spec.shape == (3, 2, 3, 224, 224)


def test_plain_classifier_takes_single_images(auto_config: Any) -> None:
    spec = BUILDERS["pixel_values"](ConfigView(auto_config("vit")), 3, 8)
    assert spec.shape == (3, 3, 224, 224)


def test_image_sets_beside_an_image_attention_mask(auto_config: Any) -> None:
    config = auto_config("idefics")
    names = ("input_ids", "pixel_values", "image_attention_mask")
    layout = PixelLayout.of(names, config)
    assert layout == PixelLayout.SETS
    view = ConfigView(config, layout=layout)
    assert BUILDERS["pixel_values"](view, 2, 10).shape == (2, 1, 3, 224, 224)
    mask = BUILDERS["image_attention_mask"](view, 2, 10)
    assert mask.shape == (2, 10, 1) and mask.values == 1  # every token sees its image
    assert "1 image per sample" in ASSUMED["image_attention_mask"]


def test_text_tower_under_a_vision_main_input_takes_tokens(auto_config: Any) -> None:
    assert input_names(_TextTower(), auto_config("clip_text_model"), "base") == ("input_ids",)


def test_placeholder_under_an_attribute_alias_splices(auto_config: Any) -> None:
    # Molmo 2 names its placeholder `image_patch_id`, aliased to `image_token_id`
    assert splices_modalities(auto_config("molmo2"))
    assert not splices_modalities(auto_config("clip"))


def test_token_kinds_beside_text_where_forward_takes_them(auto_config: Any) -> None:
    class Splicer(torch.nn.Module):
        main_input_name = "input_ids"

        def forward(self, input_ids: torch.Tensor,
                    mm_token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
            return input_ids

    names = input_names(Splicer(), auto_config("molmo2"), "decoder")
    assert names == ("input_ids", "mm_token_type_ids")
    kinds = BUILDERS["mm_token_type_ids"](ConfigView(auto_config("molmo2")), 2, 5)
    assert (kinds.shape, kinds.values) == ((2, 5), 0)  # all text


def test_only_image_set_models_get_a_token_to_image_mask(tmp_path: object) -> None:
    from pathlib import Path


    path = Path(str(tmp_path)) / "flava.json"
    path.write_text(json.dumps({"model_type": "flava"}))
    inputs = load_target(f"hf:{path}").make_inputs
    assert inputs is not None
    made = inputs(2, 16)
    # FLAVA's own `image_attention_mask` masks patches: not fed; its images are plain
    assert "image_attention_mask" not in made
    assert made["pixel_values"].shape == (2, 3, 224, 224)
