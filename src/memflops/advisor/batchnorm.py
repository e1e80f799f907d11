"""Batch norm removed (training; the article's third method, "usually saves about 40%")
and batch norm folded into the convolution before it (inference, same function).

Folding: a BN after a conv computes gamma * (conv(x) - mean) / sqrt(var + eps) + beta,
which is a conv with weight W * s and bias (b - mean) * s + beta, s = gamma /
sqrt(var + eps) per output channel. A BN follows a conv when they are neighbours in an
`nn.Sequential`, or siblings named alike (`conv1`/`bn1`, `conv`/`bn`, as torchvision's
ResNet and timm's ConvNormAct name them) with the conv's out_channels equal to the BN's
num_features; the tests check the folded model's outputs against the original's.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from memflops.advisor.advice import ArticleClaim
from memflops.advisor.changes import Applied, NotApplicable, Step, change

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BN_NAME = re.compile(r"^(bn|norm|batch_norm)(.*)$")


@change(
    "bn-removed", "batch norm removed", kind="memory", preserves_function=False, architecture=True,
    group="batchnorm",
    article_claim=ArticleClaim("removing BN usually saves about 40% of GPU memory", "peak", 0.40),
)
def bn_removed(step: Step) -> Applied:
    if not step.train:
        raise NotApplicable("inference: fold BN into its conv instead (bn-folded), which "
                            "keeps the function")
    paths = [p for p, m in step.module.named_modules() if isinstance(m, BATCH_NORMS)]
    if not paths:
        raise NotApplicable("no BatchNorm1d/2d/3d module")
    for path in paths:
        step.module.set_submodule(path, nn.Identity())
    return Applied(step, tuple(paths), f"{len(paths)} BatchNorm modules replaced by Identity; "
                   "train with a lower learning rate or a normalisation-free recipe")


def conv_bn_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(conv path, BN path) of each BN that directly follows a conv (module docstring)."""
    pairs = []
    for parent_path, parent in model.named_modules():
        children = list(parent.named_children())
        prefix = f"{parent_path}." if parent_path else ""
        named = dict(children)
        for i, (name, child) in enumerate(children):
            if not isinstance(child, BATCH_NORMS):
                continue
            conv_name = _conv_before(parent, children, i, named, name)
            if conv_name is not None and _fits(named[conv_name], child):
                pairs.append((prefix + conv_name, prefix + name))
    return pairs


def _conv_before(parent: nn.Module, children: list[tuple[str, nn.Module]], i: int,
                 named: dict[str, nn.Module], name: str) -> str | None:
    if isinstance(parent, nn.Sequential):
        return children[i - 1][0] if i > 0 and isinstance(children[i - 1][1], CONVS) else None
    match = _BN_NAME.match(name)
    if match is None:
        return None
    conv_name = f"conv{match.group(2)}"
    return conv_name if isinstance(named.get(conv_name), CONVS) else None


def _fits(conv: nn.Module, bn: nn.Module) -> bool:
    return (isinstance(conv, CONVS) and isinstance(bn, BATCH_NORMS)
            and conv.out_channels == bn.num_features and bn.running_mean is not None
            and bn.running_var is not None)


@torch.no_grad()
def fold(conv: nn.Conv1d | nn.Conv2d | nn.Conv3d,
         bn: nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d) -> None:
    """Fold `bn`'s inference transform into `conv`'s weight and bias, in place."""
    assert bn.running_mean is not None and bn.running_var is not None
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    shape = (-1,) + (1,) * (conv.weight.dim() - 1)
    conv.weight.copy_(conv.weight * scale.reshape(shape).to(conv.weight.dtype))
    bias = shift if conv.bias is None else conv.bias * scale + shift
    conv.bias = nn.Parameter(bias.to(conv.weight.dtype), requires_grad=conv.weight.requires_grad)


@change(
    "bn-folded", "batch norm folded into the conv before it (inference)", kind="both",
    preserves_function=True, group="batchnorm",
)
def bn_folded(step: Step) -> Applied:
    if step.train:
        raise NotApplicable("training: BN normalises with batch statistics, which a conv "
                            "cannot hold; see bn-removed")
    pairs = conv_bn_pairs(step.module)
    if not pairs:
        raise NotApplicable("no BatchNorm directly after a convolution")
    for conv_path, bn_path in pairs:
        conv, bn = step.module.get_submodule(conv_path), step.module.get_submodule(bn_path)
        assert isinstance(conv, CONVS) and isinstance(bn, BATCH_NORMS)
        fold(conv, bn)
        step.module.set_submodule(bn_path, nn.Identity())
    return Applied(step, tuple(bn for _, bn in pairs),
                   f"{len(pairs)} BatchNorm modules folded into their convolutions")
