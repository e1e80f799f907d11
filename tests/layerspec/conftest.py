"""Fixtures of the layer-list tests: torchvision's VGG-16, the module the article's spec
stands for."""

from __future__ import annotations

import pytest
import torch
from torch import nn


@pytest.fixture(scope="session")
def torchvision_vgg16() -> nn.Module:
    torchvision = pytest.importorskip("torchvision")
    with torch.device("meta"):
        model: nn.Module = torchvision.models.vgg16()
    # torchvision's AdaptiveAvgPool2d(7) is the identity at 224x224 and not in the paper.
    model.avgpool = nn.Identity()
    return model
