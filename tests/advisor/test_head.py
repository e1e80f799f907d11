"""The FC head replaced by global average pooling and one classifier."""

from __future__ import annotations

import copy

import torch
import torchvision
from torch import nn

import memflops
from memflops.advisor.advise import measure
from memflops.advisor.head import fc_head
from memflops.params import count_params

from .nets import CLASSES, WIDTH, small_net


def test_vgg16_head_becomes_one_classifier_of_513000_parameters() -> None:
    with torch.device("meta"):
        vgg = torchvision.models.vgg16()
    assert fc_head(vgg) == ("avgpool", "classifier", 512)
    advice = memflops.advise(vgg, (1, 3, 224, 224), mode="inference", only=["gap-head"])
    result = advice.change("gap-head")
    # VGG-16's 13 convs: sum of Cout * (Cin * 9 + 1) over (3,64),(64,64),(64,128),(128,128),
    # (128,256),(256,256)x2,(256,512),(512,512)x5 = 14,714,688 parameters; the head
    # 25088*4096+4096 + 4096*4096+4096 + 4096*1000+1000 = 123,642,856 becomes
    # 512*1000 + 1000 = 513,000: 14,714,688 + 513,000 = 15,227,688.
    assert advice.baseline.params == 14_714_688 + 123_642_856 == 138_357_544
    assert result.measured is not None and result.measured.params == 15_227_688
    assert result.modules == ("avgpool", "classifier")


def test_numbers_are_those_of_the_head_rewritten_by_hand() -> None:
    net = small_net()
    advice = memflops.advise(net, (2, 3, 16, 16), mode="train", only=["gap-head"])
    by_hand = copy.deepcopy(net)
    by_hand.avgpool = nn.AdaptiveAvgPool2d(1)
    torch.manual_seed(1)
    by_hand.classifier = nn.Sequential(nn.Linear(WIDTH, CLASSES))
    result = advice.change("gap-head")
    assert result.measured == measure(memflops.analyze(by_hand, (2, 3, 16, 16), mode="train"))
    # The head 32*16+16 + 16*10+10 = 698 becomes 8*10+10 = 90.
    assert result.delta is not None and result.delta.params == 90 - 698
    assert count_params(net, None).total - 698 + 90 == result.measured.params


def test_a_model_with_a_global_pool_already_is_not_applicable() -> None:
    with torch.device("meta"):
        resnet = torchvision.models.resnet18()
    assert fc_head(resnet) is None
