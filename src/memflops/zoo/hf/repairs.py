"""Default configs transformers builds in a state its own model cannot run, and the repair.

A few config classes of transformers 5 declare a default that their `__init__` then
loses, so `AutoModel.from_config` builds the model but its forward fails even on real
tensors (a channel count the next layer does not take). Each repair here restores what
the class itself declares, only where the config is in that broken state, and returns a
sentence for the report's warnings. A config given with its own values (a hub
config.json) is left as it is.

One function per config `model_type` in `REPAIRS`; a sub-config is repaired where it sits
(EdgeTAM's vision tower in `edgetam` and alone as `edgetam_vision_model`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from memflops.zoo.hf.config import sub_configs

Repair = Callable[[Any], "str | None"]
REPAIRS: dict[str, Repair] = {}
"""Config `model_type` -> repair of that config; returns a warning, or None if sound."""


def repairs(model_type: str) -> Callable[[Repair], Repair]:
    def register(fn: Repair) -> Repair:
        REPAIRS[model_type] = fn
        return fn

    return register


@repairs("edgetam_vision_model")
def edgetam_backbone(config: Any) -> str | None:
    """EdgeTamVisionConfig declares its timm backbone as `"archirecture": "repvit_m1"`
    (misspelt), so the wrapper keeps its own default, resnet50, whose 1024 channels the
    neck (`backbone_channel_list` 384, 192, 96, 48: RepViT-M1's) does not take."""
    backbone: Any = getattr(config, "backbone_config", None)
    misspelt = vars(backbone).get("archirecture") if backbone is not None else None
    if not isinstance(misspelt, str) or backbone.architecture == misspelt:
        return None
    backbone.architecture = misspelt
    return (
        f"config repaired: EdgeTAM's default vision backbone names its timm model under a "
        f"misspelt key ('archirecture': {misspelt!r}), which transformers ignores; "
        f"{misspelt} is built, the backbone its neck's channels are sized for"
    )


@repairs("uvdoc")
def uvdoc_bridges(config: Any) -> str | None:
    """UVDoc concatenates every bridge stage's map (its `bridge_connector` takes
    `len(stage_configs)` maps of 128 channels), but the default backbone config returns
    only the last stage."""
    backbone = getattr(config, "backbone_config", None)
    if backbone is None:
        return None
    stages = [f"stage{i}" for i in range(1, len(backbone.stage_configs) + 1)]
    if list(backbone.out_features) == stages or list(backbone.out_features) != stages[-1:]:
        return None
    backbone.out_features = stages  # sets `out_indices` too
    return (
        f"config repaired: UVDoc's default backbone returns only {stages[-1]}, but its model "
        f"concatenates every bridge stage; {stages[0]}..{stages[-1]} are returned"
    )


LW_DETR_SCALES = [1.0]
"""Projector scales of LW-DETR small, the checkpoint LwDetrConfig's docstring names
(AnnaZhang/lwdetr_small_60e_coco): its authors' scripts (Atten4Vis/LW-DETR,
`demo/lwdetr_small_coco_infer.sh`) pass `--projector_scale P4`, the ViT's own 1/16 map,
which is scale 1.0 (P3 would be 2.0, P5 0.5), beside the backbone the config declares
(10 layers, windows at 0 1 3 6 7 9, features from 2 4 5 9)."""


@repairs("lw_detr")
def lw_detr_projector(config: Any) -> str | None:
    """LwDetrConfig declares `projector_scale_factors = ()`: no feature level, so the
    model concatenates an empty list of maps (`torch.cat` fails on real tensors too)."""
    if len(getattr(config, "projector_scale_factors", None) or ()) != 0:
        return None
    config.projector_scale_factors = list(LW_DETR_SCALES)
    # what LwDetrConfig.__post_init__ derives from the scales
    config.projector_in_channels = [config.d_model] * len(LW_DETR_SCALES)
    config.num_feature_levels = len(LW_DETR_SCALES)
    return (
        "config repaired: LW-DETR's default config has no projector scale (no feature "
        f"level to decode); {LW_DETR_SCALES} is used, LW-DETR small's (projector P4, as "
        "its authors train the checkpoint the config class names)"
    )


def repair_defaults(config: Any) -> tuple[str, ...]:
    """Repairs `config` and the configs it holds, in place; the warnings of what changed."""
    done = []
    for part in sub_configs(config):
        repair = REPAIRS.get(str(getattr(type(part), "model_type", "")))
        warning = repair(part) if repair else None
        if warning:
            done.append(warning)
    return tuple(done)
