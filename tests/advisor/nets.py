"""Small stand-ins with something for every change: a 5x5 conv followed by BN and a
not-in-place ReLU, two repeated residual blocks (conv1/bn1, conv2/bn2 siblings), a
VGG-style head (AdaptiveAvgPool2d to 2x2, then two Linear layers). Real CPU runs take
milliseconds."""

from __future__ import annotations

import torch
import torch.utils.checkpoint as torch_checkpoint
from torch import nn

WIDTH = 8
CLASSES = 10
HIDDEN = 16
POOL = 2


class Block(nn.Module):
    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + x)


class SmallNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, WIDTH, 5, padding=2), nn.BatchNorm2d(WIDTH),
                                  nn.ReLU())
        self.blocks = nn.Sequential(Block(), Block())
        self.avgpool = nn.AdaptiveAvgPool2d(POOL)
        self.classifier = nn.Sequential(nn.Linear(WIDTH * POOL * POOL, HIDDEN), nn.ReLU(),
                                        nn.Linear(HIDDEN, CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.blocks(self.stem(x)))
        return self.classifier(torch.flatten(x, 1))


def small_net(seed: int = 0) -> SmallNet:
    """A SmallNet with random weights and BN statistics that are not the identity."""
    torch.manual_seed(seed)
    net = SmallNet()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return net


class Checkpointed(nn.Module):
    """A block run under non-reentrant checkpointing, written by hand."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch_checkpoint.checkpoint(self.block, x, use_reentrant=False)  # type: ignore[no-any-return]
