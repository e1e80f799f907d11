"""The fully connected head replaced by global average pooling and one classifier (the
article's fourth method: VGG's three FC layers hold most of its parameters).

A VGG-style head is an `AdaptiveAvgPool2d` to h x w > 1 x 1 followed by an
`nn.Sequential` of two or more `Linear` layers whose first takes C * h * w features
(the pooled map flattened). It becomes `AdaptiveAvgPool2d(1)` and one `Linear(C,
classes)`: VGG-16's 25088 -> 4096 -> 4096 -> 1000 head (123,642,856 parameters) becomes
512 -> 1000 (513,000).
"""

from __future__ import annotations

from itertools import pairwise

from torch import nn

from memflops.advisor.advice import ArticleClaim
from memflops.advisor.changes import Applied, NotApplicable, Step, change


def fc_head(model: nn.Module) -> tuple[str, str, int] | None:
    """(pool path, classifier path, pooled channels C) of a VGG-style head, or None."""
    for parent_path, parent in model.named_modules():
        prefix = f"{parent_path}." if parent_path else ""
        children = list(parent.named_children())
        for (pool_name, pool), (head_name, head) in pairwise(children):
            channels = _pooled_channels(pool, head)
            if channels is not None:
                return prefix + pool_name, prefix + head_name, channels
    return None


def _pooled_channels(pool: nn.Module, head: nn.Module) -> int | None:
    if not isinstance(pool, nn.AdaptiveAvgPool2d) or not isinstance(head, nn.Sequential):
        return None
    size = pool.output_size
    h, w = (size, size) if isinstance(size, int) or size is None else size
    linears = [m for m in head if isinstance(m, nn.Linear)]
    if h is None or w is None or h * w == 1 or len(linears) < 2:
        return None
    features = linears[0].in_features
    return features // (h * w) if features % (h * w) == 0 else None


@change(
    "gap-head", "FC head -> global average pooling + one classifier", kind="both",
    preserves_function=False, architecture=True,
    article_claim=ArticleClaim("fewer FC layers: global average pooling instead of VGG's "
                               "three FC layers", "peak", None),
)
def gap_head(step: Step) -> Applied:
    found = fc_head(step.module)
    if found is None:
        raise NotApplicable("no AdaptiveAvgPool2d to h x w > 1 followed by a Sequential of "
                            "two or more Linear layers (a VGG-style head)")
    pool_path, head_path, channels = found
    head = step.module.get_submodule(head_path)
    linears = [m for m in head.children() if isinstance(m, nn.Linear)]
    last = linears[-1]
    weight = last.weight
    classifier = nn.Linear(channels, last.out_features, bias=last.bias is not None,
                           device=weight.device, dtype=weight.dtype)
    step.module.set_submodule(pool_path, nn.AdaptiveAvgPool2d(1))
    step.module.set_submodule(head_path, nn.Sequential(classifier))
    return Applied(step, (pool_path, head_path),
                   f"{len(linears)} Linear layers -> Linear({channels}, {last.out_features})")
