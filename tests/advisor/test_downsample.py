"""The first downsampling made twice as strong (smaller feature maps earlier)."""

from __future__ import annotations

import copy

import torch
import torchvision
from torch import nn

import memflops
from memflops.advisor.advise import measure
from memflops.advisor.changes import Step
from memflops.advisor.downsample import first_downsample_doubled, first_downsampling
from memflops.capture.inputs import normalize_inputs
from memflops.report.model import ModuleRow

from .nets import small_net

CHANGE = "first-downsample-doubled"


def _row(report: memflops.Report, path: str) -> ModuleRow:
    (row,) = (m for m in report.modules if m.path == path)
    return row


def test_resnet_stem_at_stride_four_is_the_stem_changed_by_hand() -> None:
    with torch.device("meta"):
        resnet = torchvision.models.resnet18()
    inputs = (2, 3, 64, 64)
    advice = memflops.advise(resnet, inputs, mode="train", only=[CHANGE])
    result = advice.change(CHANGE)
    by_hand = copy.deepcopy(resnet)
    by_hand.conv1.stride = (4, 4)
    assert result.modules == ("conv1",)
    assert result.measured == measure(memflops.analyze(by_hand, inputs, mode="train"))
    assert result.delta is not None and result.delta.params == 0
    # conv1 7x7, 3 -> 64 channels: 2 x 64 x (Hout x Wout) x 3 x 49 MACs; 64x64 input,
    # padding 3: stride 2 gives 32x32, stride 4 gives 16x16 (floor((64 + 6 - 7) / 4) + 1).
    before = advice.baseline.macs_forward
    after = result.measured.macs_forward
    assert before > 3.5 * after  # every map after the stem has a quarter of the points
    stem = 2 * 64 * 3 * 49
    assert _row(memflops.analyze(by_hand, inputs, mode="inference"), "conv1").forward.macs == (
        stem * 16 * 16)


def test_a_vgg_pool_grows_its_window_with_its_stride() -> None:
    with torch.device("meta"):
        vgg = torchvision.models.vgg11()
    assert first_downsampling(vgg) == ("features.2", vgg.features[2])
    inputs = (1, 3, 64, 64)
    advice = memflops.advise(vgg, inputs, mode="inference", only=[CHANGE])
    by_hand = copy.deepcopy(vgg)
    by_hand.features[2] = nn.MaxPool2d(4, 4)
    result = advice.change(CHANGE)
    assert result.measured == measure(memflops.analyze(by_hand, inputs, mode="inference"))
    # features.3, 64 -> 128 channels 3x3 on 16x16 instead of 32x32:
    # 128 x 64 x 9 x 16 x 16 = 18,874,368 MACs.
    report = memflops.analyze(by_hand, inputs, mode="inference")
    assert _row(report, "features.3").forward.macs == 128 * 64 * 9 * 16 * 16 == 18_874_368


def test_the_pool_changed_pools_every_input_once_on_real_tensors() -> None:
    pool = nn.MaxPool2d(2, 2)
    torch.manual_seed(0)
    x = torch.randn(1, 1, 8, 8)
    model = nn.Sequential(pool)
    step_model = copy.deepcopy(model)

    first_downsample_doubled(Step(step_model, normalize_inputs((1, 1, 8, 8)), {}))
    assert torch.equal(step_model(x), x.reshape(1, 1, 2, 4, 2, 4).amax(dim=(3, 5)))


def test_a_model_that_never_downsamples_is_not_applicable() -> None:
    advice = memflops.advise(small_net(), (2, 3, 16, 16), mode="train", only=[CHANGE])
    result = advice.change(CHANGE)
    assert result.measured is None
    assert "no Conv2d, MaxPool2d or AvgPool2d with a stride above 1" in (result.reason or "")
