"""torchvision detection models made shape-only (memflops.zoo.torchvision.detection).

Counts are checked against numbers fixed by each model's configuration:
every data-dependent selection keeps its maximum count.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import pytest
import torch

import memflops
from memflops.flops.registry import lookup
from memflops.frontends.targets import Loaded, load_target
from memflops.report.model import Report
from memflops.zoo.torchvision.detection import CONVENTION, family_of, make_shape_only

torchvision = pytest.importorskip("torchvision")

SMALL = "fasterrcnn_mobilenet_v3_large_320_fpn"
"""min_size 320; RPN keeps 150 proposals at inference (2000 in training); RoI heads sample
512 per image; TwoMLPHead fc6 is 256*7*7 -> 1024."""
FC6_IN, FC6_OUT = 256 * 7 * 7, 1024


def load(name: str) -> Loaded:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_target(f"torchvision:{name}")


def analyze(loaded: Loaded, shape: tuple[int, ...], mode: str) -> Report:
    report = memflops.analyze(loaded.module, shape, mode=mode)  # type: ignore[arg-type]
    assert report.uncounted_ops == ()
    return report


@pytest.fixture(scope="module")
def small() -> Loaded:
    return load(SMALL)


def test_loader_makes_a_batch_fed_model_at_the_transform_size(small: Loaded) -> None:
    assert small.default_input == (1, 3, 320, 320)  # the transform's min_size
    assert any(CONVENTION in w for w in small.warnings)
    assert any("shorter side is 320" in w for w in small.warnings)
    assert load("ssd300_vgg16").default_input == (1, 3, 300, 300)  # fixed_size


def test_params_are_those_of_the_torchvision_model(small: Loaded) -> None:
    with torch.device("meta"):
        plain = torchvision.models.get_model(SMALL, weights=None, weights_backbone=None)
    report = memflops.analyze(small.module, (1, 3, 320, 320))
    assert report.totals.params == sum(p.numel() for p in plain.parameters())


def test_inference_counts(small: Loaded) -> None:
    report = analyze(small, (1, 3, 320, 320), "inference")
    rows = report.by_module()
    # the RPN keeps post_nms_top_n = 150 proposals: 150 * 12544 * 1024 = 1_926_758_400 MACs
    assert rows["roi_heads.box_head.fc6"].forward.macs == 150 * FC6_IN * FC6_OUT == 1_926_758_400
    assert rows["roi_heads.box_roi_pool"].output_shape == ((150, 256, 7, 7),)
    # backbone + FPN cost exactly what they cost alone on the resized image
    alone = memflops.analyze(small.module.get_submodule("backbone"), (1, 3, 320, 320))
    assert rows["backbone"].forward == alone.totals.costs.forward
    assert not any(CONVENTION in w for w in report.warnings)  # a live module: no frontend
    named = memflops.analyze(f"torchvision:{SMALL}")
    assert any(CONVENTION in w for w in named.warnings)
    assert named.total("forward") == report.total("forward")


def test_transform_resizes_any_input_to_min_size(small: Loaded) -> None:
    at_224 = analyze(small, (1, 3, 224, 224), "inference").by_module()["backbone"]
    at_320 = analyze(small, (1, 3, 320, 320), "inference").by_module()["backbone"]
    assert at_224.output_shape == at_320.output_shape == (
        (1, 256, 10, 10), (1, 256, 10, 10), (1, 256, 5, 5)  # 320 / 32, and its max-pool
    )
    assert at_224.forward == at_320.forward


def test_train_counts(small: Loaded) -> None:
    report = analyze(small, (2, 3, 320, 320), "train")
    rows = report.by_module()
    # 2 images x box_batch_size_per_image 512: 2 * 512 * 12544 * 1024 = 13_153_337_344 MACs
    assert rows["roi_heads.box_head.fc6"].forward.macs == 2 * 512 * FC6_IN * FC6_OUT
    assert rows["roi_heads.box_head.fc6"].forward.macs == 13_153_337_344
    assert rows["roi_heads.box_roi_pool"].output_shape == ((1024, 256, 7, 7),)
    assert report.totals.costs.backward.flops > report.totals.costs.forward.flops
    # repeatable: nothing the first analysis did lingers in the model
    assert analyze(small, (2, 3, 320, 320), "train").totals == report.totals


@pytest.mark.parametrize(
    ("name", "head"), [("maskrcnn_resnet50_fpn", "mask"), ("keypointrcnn_resnet50_fpn", "keypoint")]
)
def test_mask_and_keypoint_heads_run_on_the_positives(name: str, head: str) -> None:
    loaded = load(name)
    rows = analyze(loaded, (2, 3, 64, 64), "train").by_module()
    # positive_fraction 0.25 of 512 per image: 2 * 128 = 256 RoIs
    assert rows[f"roi_heads.{head}_roi_pool"].output_shape == ((256, 256, 14, 14),)
    rows = analyze(loaded, (1, 3, 64, 64), "inference").by_module()
    assert rows[f"roi_heads.{head}_roi_pool"].output_shape == ((100, 256, 14, 14),)


def test_dense_detectors_keep_their_candidate_counts() -> None:
    ssd = load("ssdlite320_mobilenet_v3_large")
    report = analyze(ssd, (1, 3, 320, 320), "inference")
    # per class (1..90 of 91) the topk_candidates (300) best: one topk each
    assert report.by_operator()["aten.topk"].count == 90
    report = analyze(ssd, (2, 3, 320, 320), "train")
    assert "aten.topk" not in report.by_operator()
    assert report.by_operator()["aten.sort"].count == 2  # hard-negative mining still sorts
    retina = load("retinanet_resnet50_fpn_v2")
    report = analyze(retina, (1, 3, 64, 64), "inference")
    assert report.by_operator()["aten.topk"].count == 5  # one per pyramid level
    # train: RetinaNet v2's GIoU box loss runs shape-only over all anchors
    analyze(retina, (1, 3, 64, 64), "train")


def test_torchvision_is_left_unchanged(small: Loaded) -> None:
    from torchvision.models.detection.roi_heads import RoIHeads

    assert "forward" in vars(small.module)  # bound on the instance...
    with torch.device("meta"):
        plain = torchvision.models.get_model(SMALL, weights=None, weights_backbone=None)
    assert "forward" not in vars(plain)  # ...never on the class
    assert plain.roi_heads.forward.__func__ is RoIHeads.forward
    assert family_of(plain) == "rcnn" and family_of(torch.nn.Linear(2, 2)) is None
    assert make_shape_only(torch.nn.Linear(2, 2)) is None


def test_shape_only_model_runs_on_real_tensors() -> None:
    """The fixed-count steps are ordinary PyTorch: a real CPU run gives their shapes."""
    model = torchvision.models.get_model(
        "ssdlite320_mobilenet_v3_large", weights=None, weights_backbone=None
    )
    assert make_shape_only(model) is not None
    images = torch.rand(2, 3, 320, 320)
    model.eval()
    with torch.no_grad():
        detections = model(images)
    assert [d["boxes"].shape for d in detections] == [(300, 4), (300, 4)]  # detections_per_img
    model.train()
    losses: Any = model(images)
    assert set(losses) == {"bbox_regression", "classification"}
    assert all(math.isfinite(float(v.detach())) for v in losses.values())


def test_roi_align_rule() -> None:
    rule = lookup("torchvision.roi_align")
    assert rule is not None
    # 10 RoIs on (1, 256, 50, 50), 7x7 bins, sampling_ratio 2: S = 4
    # 10*256*49 outputs * (8*4 + 1) + 10*49*4 points * 14 = 4_139_520 + 27_440 = 4_166_960
    cost = rule.fn((1, 256, 50, 50), (10, 5), 0.25, 7, 7, 2, False, out=(10, 256, 7, 7))
    assert (cost.macs, cost.flops) == (0, 4_166_960)
    # adaptive (sampling_ratio -1) on a (1, 1, 100, 90) mask, 28x28 bins: the largest RoI
    # takes ceil(100/28) * ceil(90/28) = 4 * 4 = 16 samples per bin:
    # 3*784 * (8*16 + 1) + 3*784*16 * 14 = 303_408 + 526_848 = 830_256
    cost = rule.fn((1, 1, 100, 90), (3, 5), 1.0, 28, 28, -1, False, out=(3, 1, 28, 28))
    assert cost.flops == 830_256
    backward = lookup("torchvision._roi_align_backward")
    assert backward is not None
    # 10*256*49 gradient elements * 26 * 4 = 13_045_760
    cost = backward.fn((10, 256, 7, 7), (10, 5), 0.25, 7, 7, 1, 256, 50, 50, 2, False,
                       out=(1, 256, 50, 50))
    assert cost.flops == 13_045_760
