"""Parameter and buffer counts: unique tensors, trainable vs frozen, buffers apart."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torchvision
from torch import nn

import memflops
from memflops.report.model import Report


def analyze(model: nn.Module, inputs: object, **kwargs: object) -> Report:
    return memflops.analyze(model, inputs, optimizer=None, **kwargs)  # type: ignore[arg-type]


def unique_numel(model: nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


# Models whose builder with weights=None has the architecture torchvision's
# published `num_params` describes (no auxiliary heads).
ZOO = ["resnet18", "resnet50", "vgg16", "alexnet", "densenet121", "mobilenet_v2",
       "mobilenet_v3_small", "efficientnet_b0", "squeezenet1_0", "shufflenet_v2_x0_5",
       "regnet_y_400mf", "convnext_tiny", "swin_t", "vit_b_16", "mnasnet0_5"]


# regnet's builder reads sizes from a tensor (`.tolist()`), so it cannot run on meta.
REAL_BUILD = {"regnet_y_400mf"}


@pytest.mark.parametrize("name", ZOO)
def test_zoo_params(name: str) -> None:
    with torch.device("cpu" if name in REAL_BUILD else "meta"):
        model = torchvision.models.get_model(name, weights=None)
    published = torchvision.models.get_model_weights(name).DEFAULT.meta["num_params"]
    report = analyze(model, (1, 3, 224, 224))
    assert report.totals.params == unique_numel(model) == published
    assert report.totals.trainable_params == report.totals.params
    assert report.by_module()[""].params == report.totals.params


def test_tied_weights_counted_once(tied_lm: Any) -> None:
    # Embedding 100 x 16 shared with the head; LayerNorm 2 * 16:
    # 1,600 + 32 = 1,632, not 3,232.
    model = tied_lm(vocab=100, dim=16)
    report = analyze(model, {"input_ids": (2, 5)}, mode="train")
    assert report.totals.params == 1_632 == unique_numel(model)
    everywhere = model.named_parameters(remove_duplicate=False)
    assert sum(p.numel() for _, p in everywhere) == 3_232
    assert report.shared_params == (("head.weight", "embed.weight"),)
    assert any("head.weight" in w and "embed.weight" in w for w in report.warnings)
    assert report.to_dict()["shared_params"] == [{"name": "head.weight", "shares": "embed.weight"}]
    # Bytes of parameters and of their gradients count the tensor once: 1,632 * 4.
    assert report.totals.memory.params == 6_528


def test_trainable_and_frozen() -> None:
    # resnet18 with everything but the classifier frozen: fc is 512*1000 + 1000 = 513,000.
    with torch.device("meta"):
        model = torchvision.models.resnet18()
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("fc."))
    report = analyze(model, (2, 3, 64, 64), mode="train")
    assert report.totals.params == 11_689_512
    assert report.totals.trainable_params == 513_000
    assert report.to_dict()["totals"]["frozen_params"] == 11_689_512 - 513_000


def test_buffers_apart_from_params() -> None:
    # resnet18 has 20 BatchNorm2d layers over 64 + 4*64 + (4*128 + 128) + (4*256 + 256)
    # + (4*512 + 512) = 4,800 channels: running mean and var 2 * 4,800 = 9,600 floats
    # and 20 int64 num_batches_tracked: 9,620 buffer elements.
    with torch.device("meta"):
        model = torchvision.models.resnet18()
    assert sum(b.numel() for b in model.buffers()) == 9_620
    report = analyze(model, (1, 3, 64, 64))
    assert report.totals.buffers == 9_620
    assert report.totals.params == 11_689_512  # buffers are not parameters
    # Bytes: 9,600 * 4 + 20 * 8 = 38,560; in bfloat16 the floats halve: 19,200 + 160.
    assert report.totals.memory.buffers == 38_560
    assert analyze(model, (1, 3, 64, 64), dtype="bfloat16").totals.memory.buffers == 19_360
    assert report.to_dict()["totals"]["buffers"] == 9_620


class SwapsAttention(torch.nn.Module):
    """Swaps a submodule in while it runs, reusing the replaced module's layer (BigBird)."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = torch.nn.Sequential(torch.nn.Linear(4, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.attn = torch.nn.Sequential(self.attn[0], torch.nn.Dropout(0.1))
        out: torch.Tensor = self.attn(x)
        return out


def test_module_swapped_in_during_the_step() -> None:
    report = memflops.analyze(SwapsAttention(), (2, 4))
    rows = report.by_module()
    assert rows["attn.1"].params == 0  # the Dropout the model made as it ran
    assert rows["attn.0"].params == rows[""].params == 20  # 4 * 4 + 4, counted once
