"""Default configs transformers cannot run, repaired (`zoo/hf/repairs.py`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")

import memflops
from memflops.frontends.targets import load_target
from memflops.zoo.hf.config import make_config
from memflops.zoo.hf.repairs import repair_defaults


def test_uvdoc_returns_every_bridge_stage(tmp_path: Path, loaded: Any, row: Any) -> None:
    path = tmp_path / "uvdoc.json"
    path.write_text(json.dumps({"model_type": "uvdoc"}))
    loaded = load_target(f"hf:{path}")
    assert any("config repaired: UVDoc" in w for w in loaded.warnings)
    report = memflops.analyze(loaded.module, loaded.make_inputs(1, 1), mode="inference")
    assert report.totals.params == sum(p.numel() for p in loaded.module.parameters())
    row = next(r for r in report.modules if r.path == "head.bridge_connector")
    # 1x1 conv 768 -> 128 (6 bridge stages of 128) on a 14x14 map, no bias:
    # MACs 768 * 128 * 14 * 14 = 19,267,584
    assert row.forward.macs == 19_267_584
    # exact: 2 * MACs - outputs (no bias) + eval BatchNorm 2 per element + ReLU 1 per element
    # 38,535,168 - 25,088 + 50,176 + 25,088 = 38,585,344
    assert row.forward.flops == 38_585_344


def test_edgetam_backbone_is_the_declared_one() -> None:
    config = make_config({"model_type": "edgetam"}, "test")
    assert config.vision_config.backbone_config.architecture == "resnet50"  # transformers' slip
    warnings = repair_defaults(config.vision_config)
    assert config.vision_config.backbone_config.architecture == "repvit_m1"
    assert len(warnings) == 1 and "archirecture" in warnings[0]
    assert repair_defaults(config.vision_config) == ()  # sound now: nothing to repair


def test_given_values_are_left_alone() -> None:
    config = make_config(
        {"model_type": "uvdoc", "backbone_config": {
            "model_type": "uvdoc_backbone", "out_features": ["stage5", "stage6"],
        }},
        "test",
    )
    assert repair_defaults(config) == ()
    assert list(config.backbone_config.out_features) == ["stage5", "stage6"]


def test_lw_detr_gets_a_feature_level() -> None:
    from memflops.zoo.hf.repairs import LW_DETR_SCALES

    config = make_config({"model_type": "lw_detr"}, "test")
    warnings = repair_defaults(config)
    assert len(warnings) == 1 and "LW-DETR" in warnings[0]
    assert list(config.projector_scale_factors) == LW_DETR_SCALES == [1.0]
    # what LwDetrConfig derives from one scale: one level of d_model (256) channels
    assert (config.num_feature_levels, config.projector_in_channels) == (1, [256])
    assert repair_defaults(config) == ()  # sound now
    given = make_config({"model_type": "lw_detr", "projector_scale_factors": [2.0, 0.5]}, "t")
    assert repair_defaults(given) == () and list(given.projector_scale_factors) == [2.0, 0.5]
