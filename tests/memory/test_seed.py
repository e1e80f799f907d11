"""The article's memory formula on its worked example, VGG-16, computed by hand.

    train:     params x 4 bytes x {SGD 2, momentum 3, Adam 4} + 2 x feature maps x 4 bytes
    inference: params x 4 bytes + feature maps x 4 bytes

where the feature maps are every layer's output, B * C * H * W values each.
"""

from __future__ import annotations

import pytest
import torch

import memflops

torchvision = pytest.importorskip("torchvision")

# VGG-16's convolutions (3x3, padding 1, bias): (C_in, C_out, H = W of the output)
CONVS = [
    (3, 64, 224), (64, 64, 224),
    (64, 128, 112), (128, 128, 112),
    (128, 256, 56), (256, 256, 56), (256, 256, 56),
    (256, 512, 28), (512, 512, 28), (512, 512, 28),
    (512, 512, 14), (512, 512, 14), (512, 512, 14),
]  # fmt: skip
# The five 2x2 max pools halve the size after each block: (C, H = W)
POOLS = [(64, 112), (128, 56), (256, 28), (512, 14), (512, 7)]
# classifier: Linear(512*7*7 -> 4096), Linear(4096 -> 4096), Linear(4096 -> 1000)
FCS = [(512 * 7 * 7, 4096), (4096, 4096), (4096, 1000)]


def vgg16_params() -> int:
    # conv: C_out * (C_in * 3 * 3 + 1) = 14_714_688 in all
    # fc:   25_088 * 4096 + 4096 = 102_764_544; 4096 * 4096 + 4096 = 16_781_312;
    #       4096 * 1000 + 1000 = 4_097_000
    convs = sum(cout * (cin * 9 + 1) for cin, cout, _ in CONVS)
    fcs = sum(fin * fout + fout for fin, fout in FCS)
    assert (convs, fcs) == (14_714_688, 123_642_856)
    return convs + fcs


def vgg16_feature_map_values(batch: int, train: bool) -> int:
    """Values in every layer's new output map, per the article (B * C * H * W)."""
    # features: 13 conv outputs; each conv is followed by ReLU(inplace=True),
    # whose output is the conv's map overwritten, so no new map (article: in-place
    # ReLU saves that memory); 5 max pool outputs.
    #   conv: 2 * 64*224*224 + 2 * 128*112*112 + 3 * 256*56*56 + 3 * 512*28*28
    #         + 3 * 512*14*14 = 6_422_528 + 3_211_264 + 2_408_448 + 1_204_224
    #         + 301_056 = 13_547_520
    #   pool: 64*112*112 + 128*56*56 + 256*28*28 + 512*14*14 + 512*7*7
    #         = 802_816 + 401_408 + 200_704 + 100_352 + 25_088 = 1_530_368
    convs = sum(cout * hw * hw for _, cout, hw in CONVS)
    pools = sum(c * hw * hw for c, hw in POOLS)
    assert (convs, pools) == (13_547_520, 1_530_368)
    # avgpool: AdaptiveAvgPool2d((7, 7)) on a 7x7 map still writes a new map: 512*7*7 = 25_088
    # (the flatten after it is torch.flatten in VGG.forward: a view, no module, no map)
    avgpool = 512 * 7 * 7
    # classifier: Linear 4096, ReLU(inplace) none, Dropout, Linear 4096, ReLU none,
    # Dropout, Linear 1000. A Dropout writes a new map (4096) in train mode only:
    # in eval it returns its input tensor itself, no new map.
    dropouts = 2 * 4096 if train else 0
    classifier = 4096 + 4096 + 1000 + dropouts
    # train: 13_547_520 + 1_530_368 + 25_088 + 17_384 = 15_120_360; eval: 15_112_168
    return batch * (convs + pools + avgpool + classifier)


PARAMS = 138_357_544
MAPS = 15_120_360  # batch 1, train
EVAL_MAPS = 15_112_168  # batch 1, eval: the two dropouts make no map


def test_hand_computed_terms() -> None:
    assert vgg16_params() == PARAMS
    assert vgg16_feature_map_values(1, train=True) == MAPS
    assert vgg16_feature_map_values(1, train=False) == EVAL_MAPS


@pytest.mark.parametrize(
    ("optimizer", "multiplier"), [("sgd", 2), ("sgd-momentum", 3), ("adam", 4)]
)
def test_vgg16_train_seed_estimate_is_the_article_formula(optimizer: str, multiplier: int) -> None:
    with torch.device("meta"):
        model = torchvision.models.vgg16()
    report = memflops.analyze(model, (1, 3, 224, 224), mode="train", optimizer=optimizer)
    assert report.totals.params == PARAMS
    assert report.memory_detail is not None
    assert report.memory_detail.feature_maps == 4 * MAPS == 60_481_440
    # Adam: 138_357_544 * 4 * 4 + 2 * 15_120_360 * 4 = 2_213_720_704 + 120_962_880
    #     = 2_334_683_584 bytes
    expected = PARAMS * 4 * multiplier + 2 * MAPS * 4
    if optimizer == "adam":
        assert expected == 2_334_683_584
    assert report.totals.memory.seed_estimate == expected


def test_vgg16_inference_seed_estimate_counts_each_term_once() -> None:
    with torch.device("meta"):
        model = torchvision.models.vgg16()
    report = memflops.analyze(model, (2, 3, 224, 224))
    assert report.memory_detail is not None
    assert report.memory_detail.feature_maps == 2 * EVAL_MAPS * 4 == 120_897_344
    # batch 2: 138_357_544 * 4 + 2 * 15_112_168 * 4 = 553_430_176 + 120_897_344 = 674_327_520
    assert report.totals.memory.seed_estimate == PARAMS * 4 + 2 * EVAL_MAPS * 4 == 674_327_520
