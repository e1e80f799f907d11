"""Every formula of the reference article, reproduced exactly (`exact` convention).

conv params Cout*(Cin*K^2 + 1); conv FLOPs B*H*W*Cout*(2*Cin*K^2 - 1) without
bias, B*H*W*Cout*2*Cin*K^2 with; BatchNorm params 2C, FLOPs 5*B*H*W*C with
batch statistics (2 per element with running statistics); pooling
B*H*W*C*K^2; FC params Fin*Fout (+ Fout), FLOPs B*(2*Fin - 1)*Fout without
bias, B*2*Fin*Fout with; and the article's worked example, VGG-16.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torchvision
from torch import nn

import memflops
from memflops.report.model import Report


def analyze(model: nn.Module, shape: tuple[int, ...], mode: str = "inference") -> Report:
    return memflops.analyze(model, shape, mode=mode, optimizer=None)


def forward_flops(report: Report, path: str) -> int:
    return report.by_module()[path].forward.flops


@pytest.mark.parametrize("bias", [True, False])
def test_conv(bias: bool) -> None:
    # Conv 5x5, 3 -> 8 channels, stride 2, padding 2, on (2, 3, 16, 16): output 8 x 8.
    # Params: 8 * (3 * 25 + 1) = 608 with bias; 8 * 3 * 25 = 600 without.
    # FLOPs: B*H*W*Cout = 2*8*8*8 = 1,024 outputs; with bias 1,024 * 2*3*25 = 153,600;
    # without 1,024 * (2*3*25 - 1) = 152,576.
    conv = nn.Conv2d(3, 8, 5, stride=2, padding=2, bias=bias)
    report = analyze(conv, (2, 3, 16, 16))
    assert report.totals.params == (608 if bias else 600)
    assert report.total("forward") == (153_600 if bias else 152_576)
    assert report.total("forward", "mac") == 1_024 * 75


@pytest.mark.parametrize("bias", [True, False])
def test_fully_connected(bias: bool) -> None:
    # FC 64 -> 10 on a batch of 2. Params 64*10 (+ 10) = 650 / 640.
    # FLOPs with bias: 2 * 2*64 * 10 = 2,560; without: 2 * (2*64 - 1) * 10 = 2,540.
    fc = nn.Linear(64, 10, bias=bias)
    report = analyze(fc, (2, 64))
    assert report.totals.params == (650 if bias else 640)
    assert report.total("forward") == (2_560 if bias else 2_540)


def test_batch_norm_train_five_per_element() -> None:
    # BatchNorm2d(4) on (2, 4, 8, 8): params 2 * 4 = 8 (gamma, beta);
    # batch statistics: 5 * B*H*W*C = 5 * 2*8*8*4 = 2,560 (mean 1 add; variance 1 add +
    # 1 mul; normalise 1 sub + 1 div; gamma/beta not counted, as in the article).
    report = analyze(nn.BatchNorm2d(4), (2, 4, 8, 8), mode="train")
    assert report.totals.params == 8
    assert report.by_operator("forward")["aten.native_batch_norm"].cost.flops == 2_560
    # The module's num_batches_tracked += 1 is an int64 add, not a floating-point operation:
    # 5*B*H*W*C only, no +1 for the counter (was 2,560 + 1).
    assert report.by_operator("forward")["aten.add_"].cost.flops == 0
    assert forward_flops(report, "") == 2_560


def test_batch_norm_eval_two_per_element() -> None:
    # Running statistics: subtract and divide, 2 * 2*8*8*4 = 1,024.
    report = analyze(nn.BatchNorm2d(4), (2, 4, 8, 8))
    assert report.total("forward") == 1_024


@pytest.mark.parametrize("pool", [nn.MaxPool2d(2), nn.AvgPool2d(2), nn.MaxPool2d(3, 2, 1)],
                         ids=["max2", "avg2", "max3_stride2"])
def test_pooling(pool: nn.Module) -> None:
    # B*H*W*C*K^2 on (2, 4, 8, 8): window 2 -> output 4x4: 2*4*4*4 * 4 = 512;
    # window 3, stride 2, padding 1 -> output 4x4: 2*4*4*4 * 9 = 1,152.
    report = analyze(pool, (2, 4, 8, 8))
    k = pool.kernel_size if isinstance(pool.kernel_size, int) else pool.kernel_size[0]
    assert report.total("forward") == 2 * 4 * 4 * 4 * k * k
    assert report.total("forward") == {2: 512, 3: 1_152}[k]


@pytest.mark.parametrize("bias", [True, False])
def test_building_blocks_together(bias: bool, conv_bn_pool_fc: Any) -> None:
    # (2, 3, 8, 8) -> conv 3x3 3->4 pad 1 -> BN -> max pool 2 -> FC 64 -> 10, train mode.
    # conv: 2*8*8*4 = 512 outputs * (2*27 [-1]) = 27,648 / 27,136
    # BN: 5 * 512 = 2,560 (no +1 for the int64 num_batches_tracked); pool: 2*4*4*4 * 4 = 512
    # FC: 2 * 2*64 * 10 = 2,560 / 2 * 127 * 10 = 2,540
    report = analyze(conv_bn_pool_fc(bias), (2, 3, 8, 8), mode="train")
    assert forward_flops(report, "0") == (27_648 if bias else 27_136)
    assert forward_flops(report, "1") == 2_560  # was 2,561 with the counter's add
    assert forward_flops(report, "2") == 512
    assert forward_flops(report, "4") == (2_560 if bias else 2_540)
    assert report.total("forward") == sum(forward_flops(report, p) for p in "01234")
    # Params: conv 4*(27 + 1) = 112 / 108; BN 2*4 = 8; FC 64*10 + 10 = 650 / 640.
    assert report.totals.params == (112 + 8 + 650 if bias else 108 + 8 + 640)


def test_conv_bn_relu_train_is_the_articles_formulas_exactly() -> None:
    """No +1 per BatchNorm call: its num_batches_tracked += 1 is an int64 add, not a FLOP."""
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
    )
    b, h, w = 2, 16, 16
    report = analyze(model, (b, 3, h, w), mode="train")
    # conv B*H*W*Cout*(2*Cin*K^2 - 1): 2*16*16*8 * (2*3*9 - 1) = 4,096 * 53 = 217,088
    #                                   2*16*16*16 * (2*8*9 - 1) = 8,192 * 143 = 1,171,456
    # BN 5*B*H*W*C: 5 * 4,096 = 20,480 and 5 * 8,192 = 40,960
    # ReLU one compare per element, B*H*W*C: 4,096 and 8,192
    expected = {"0": 217_088, "1": 20_480, "2": 4_096, "3": 1_171_456, "4": 40_960, "5": 8_192}
    assert {p: forward_flops(report, p) for p in expected} == expected
    assert expected["0"] == b * h * w * 8 * (2 * 3 * 3**2 - 1)
    assert expected["1"] == 5 * b * h * w * 8
    # 217,088 + 20,480 + 4,096 + 1,171,456 + 40,960 + 8,192 = 1,462,272 (was 1,462,274:
    # one "FLOP" per BatchNorm call for its counter)
    assert report.total("forward") == sum(expected.values()) == 1_462_272
    # MACs: the convolutions only, 4,096 * 27 + 8,192 * 72 = 700,416
    assert report.total("forward", "mac") == 700_416
    assert report.total("forward", "2mac") == 2 * 700_416
    assert report.by_operator("forward")["aten.add_"].count == 2  # the two counters, at 0
    assert report.by_operator("forward")["aten.add_"].cost.flops == 0
    assert report.uncounted_ops == ()


# --- the worked example: VGG-16 at 1 x 3 x 224 x 224 ---------------------------------


@pytest.fixture(scope="module")
def vgg16() -> tuple[nn.Module, Report]:
    with torch.device("meta"):
        model = torchvision.models.vgg16()
    return model, analyze(model, (1, 3, 224, 224))


def test_vgg16_params(vgg16: tuple[nn.Module, Report]) -> None:
    _, report = vgg16
    # conv 14,714,688 + FC (25088*4096 + 4096) + (4096*4096 + 4096) + (4096*1000 + 1000)
    # = 14,714,688 + 102,764,544 + 16,781,312 + 4,097,000 = 138,357,544
    assert report.totals.params == 138_357_544


def test_vgg16_macs(vgg16: tuple[nn.Module, Report]) -> None:
    model, report = vgg16
    rows = report.by_module()
    matmul_like = [p for p, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(matmul_like) == 13 + 3
    # conv 15,346,630,656 + FC 102,760,448 + 16,777,216 + 4,096,000 = 15,470,264,320
    assert sum(rows[p].forward.macs for p in matmul_like) == 15_470_264_320
    assert report.total("forward", "mac") == 15_470_264_320
    # The article's point: FC layers hold most parameters, conv layers do most FLOPs.
    fc_params = sum(rows[p].params for p in matmul_like if p.startswith("classifier"))
    assert fc_params == 123_642_856 > report.totals.params // 2
    conv_macs = sum(rows[p].forward.macs for p in matmul_like if p.startswith("features"))
    assert conv_macs == 15_346_630_656


def test_vgg16_every_layer_follows_the_article(vgg16: tuple[nn.Module, Report]) -> None:
    model, report = vgg16
    rows = report.by_module()
    checked = 0
    for path, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            b, c_out, h, w = rows[path].output_shape[0]
            k2 = math.prod(module.kernel_size)
            article = b * h * w * c_out * 2 * module.in_channels * k2  # biased: no -1
            assert module.bias is not None and c_out == module.out_channels
            assert module.weight.numel() + c_out == c_out * (module.in_channels * k2 + 1)
        elif isinstance(module, nn.Linear):
            b = rows[path].output_shape[0][0]
            article = b * 2 * module.in_features * module.out_features
            assert rows[path].params == module.in_features * module.out_features + \
                module.out_features
        else:
            continue
        assert rows[path].forward.flops == article, path
        checked += 1
    assert checked == 16
