"""Fixed-count stand-ins for the data-dependent steps every detector family shares.

A selection that keeps `n` rows is replaced by indexing with `0..n-1`: the
same ops on the same shapes, whichever rows the data would have picked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import MethodType
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

Targets = list[dict[str, Tensor]]


def bind(obj: Any, name: str, fn: Callable[..., Any]) -> None:
    """Make `fn` the method `name` of this one instance (its class is left alone)."""
    setattr(obj, name, MethodType(fn, obj))


def first(n: int, like: Tensor) -> Tensor:
    """Indices `0..n-1`: the rows a selection that keeps `n` rows takes."""
    return torch.arange(n, device=like.device)


def spans(sizes: Sequence[int], starts: Sequence[int], counts: Sequence[int]) -> Tensor:
    """Positions, in the concatenation of blocks of `sizes` rows, of rows
    `starts[i] .. starts[i] + counts[i] - 1` of each block `i`."""
    pieces, offset = [], 0
    for size, start, count in zip(sizes, starts, counts, strict=True):
        pieces.append(torch.arange(offset + start, offset + start + count))
        offset += size
    return torch.cat(pieces)


def sample_counts(total: int, batch_size: int, positive_fraction: float) -> tuple[int, int]:
    """(positives, negatives) a balanced sampler keeps at most from `total` candidates."""
    positives = min(int(batch_size * positive_fraction), total)
    return positives, min(batch_size - positives, total - positives)


def largest_size(self: Any, sizes: list[int]) -> int:
    """`GeneralizedRCNNTransform.torch_choice`: the largest training size, not a random one."""
    return max(sizes)


def tie_free_low_quality(self: Any, matches: Tensor, all_matches: Tensor, quality: Tensor) -> None:
    """`Matcher.set_low_quality_matches_`: each ground-truth box also matches its one best
    anchor (torchvision takes every anchor tied for best, a count only the data knows)."""
    _, best = quality.max(dim=1)  # (G,)
    matches[best] = all_matches[best]


def synthetic_targets(images: Sequence[Tensor], masks: bool, keypoints: int) -> Targets:
    """One ground-truth object per image: a box over the whole image and a label, with a
    mask and `keypoints` keypoints when the model has those heads."""
    targets = []
    for image in images:
        height, width = image.shape[-2:]
        target = {
            "boxes": torch.tensor([[0.0, 0.0, float(width), float(height)]], device=image.device),
            "labels": torch.ones(1, dtype=torch.int64, device=image.device),
        }
        if masks:
            target["masks"] = torch.zeros(
                1, *image.shape[-2:], dtype=torch.uint8, device=image.device
            )
        if keypoints:
            target["keypoints"] = torch.zeros(1, keypoints, 3, device=image.device)
        targets.append(target)
    return targets


def paste_masks(masks: Tensor, boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """`paste_masks_in_image` for boxes covering the whole image: each (1, M, M) mask,
    padded by one pixel, is resized to the image (torchvision resizes it to its box, a size
    only the data knows, and copies it into an empty image)."""
    from torchvision.models.detection.roi_heads import expand_boxes, expand_masks

    padded, scale = expand_masks(masks, padding=1)
    expand_boxes(boxes, scale).to(dtype=torch.int64)
    return F.interpolate(padded, size=size, mode="bilinear", align_corners=False)


def postprocess(results: Targets, image_shapes: Sequence[Any], originals: Sequence[Any]) -> Targets:
    """`GeneralizedRCNNTransform.postprocess` with `paste_masks`: boxes, masks and
    keypoints back to each image's original size."""
    from torchvision.models.detection.transform import resize_boxes, resize_keypoints

    for result, shape, original in zip(results, image_shapes, originals, strict=True):
        result["boxes"] = resize_boxes(result["boxes"], shape, original)
        if "masks" in result:
            result["masks"] = paste_masks(result["masks"], result["boxes"], tuple(original))
        if "keypoints" in result:
            result["keypoints"] = resize_keypoints(result["keypoints"], shape, original)
    return results
