"""torchvision detection models made shape-only for analysis.

A detector selects by value: it drops small or low-scoring boxes, runs
non-maximum suppression, matches anchors to ground truth and samples
positives and negatives at random. On fake tensors there are no values, so
`make_shape_only` binds fixed-count versions of those steps to the model
instance (its classes, and torchvision, are left alone), under one
convention: **every data-dependent selection keeps its maximum count**,
a number fixed by the model's configuration (`post_nms_top_n`,
`box_batch_size_per_image` and `positive_fraction`, `detections_per_img`,
`topk_candidates`). Every other op runs as torchvision runs it, so FLOPs and
memory are those of the real computation at those counts. What each family
keeps is listed in `rcnn` (Faster/Mask/Keypoint R-CNN) and `dense`
(RetinaNet, FCOS, SSD); shared by all:

- training picks the largest of the transform's `min_size` (torchvision
  picks one at random);
- a matcher's low-quality step gives each ground-truth box its one best
  anchor (torchvision takes every anchor tied for best);
- inference pastes each mask as if its box covered the whole image.

The model then takes one batch tensor `(B, 3, H, W)` instead of a list of
images; in training it makes one ground-truth object per image (a box, a
label, and a mask or keypoints for the heads that need them). The model's
transform resizes every image before the backbone (shorter side to
`min_size`, or to a fixed size for SSD); `DetectionInfo.image_size` is an
input that size already.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from memflops.zoo.torchvision.detection.dense import dense_forward, make_dense_shape_only
from memflops.zoo.torchvision.detection.rcnn import make_rcnn_shape_only, rcnn_forward
from memflops.zoo.torchvision.detection.select import (
    Targets,
    bind,
    largest_size,
    synthetic_targets,
    tie_free_low_quality,
)

CONVENTION = "every data-dependent selection keeps its maximum count"


@dataclass(frozen=True)
class DetectionInfo:
    """What `make_shape_only` changed and assumed."""

    family: str
    """rcnn, retinanet, fcos or ssd."""
    image_size: tuple[int, int]
    """(H, W) of an image the model's transform does not resize."""
    warnings: tuple[str, ...]


def family_of(model: nn.Module) -> str | None:
    """The detector family of a torchvision detection model, None for anything else."""
    try:
        import torchvision  # noqa: F401
    except ImportError:
        return None
    from torchvision.models.detection.fcos import FCOS
    from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
    from torchvision.models.detection.retinanet import RetinaNet
    from torchvision.models.detection.ssd import SSD

    for cls, family in (
        (GeneralizedRCNN, "rcnn"), (RetinaNet, "retinanet"), (FCOS, "fcos"), (SSD, "ssd")
    ):
        if isinstance(model, cls):
            return family
    return None


def make_shape_only(model: nn.Module) -> DetectionInfo | None:
    """Make a torchvision detector shape-only and batch-fed (see the module docstring);
    None if `model` is not one."""
    from torchvision.models.detection._utils import Matcher

    family = family_of(model)
    if family is None:
        return None
    detector: Any = model
    transform = detector.transform
    bind(transform, "torch_choice", largest_size)
    for module in model.modules():
        for value in vars(module).values():
            if isinstance(value, Matcher) and value.allow_low_quality_matches:
                bind(value, "set_low_quality_matches_", tie_free_low_quality)
    if family == "rcnn":
        kept, run = make_rcnn_shape_only(model), rcnn_forward
        heads = detector.roi_heads
        masks = heads.has_mask()
        keypoints = heads.keypoint_predictor.out_channels if heads.has_keypoint() else 0
    else:
        kept, run = make_dense_shape_only(model), dense_forward
        masks, keypoints = False, 0
    bind(model, "forward", _batched(run, masks, keypoints))
    size, resize = _resize(transform)
    return DetectionInfo(family, size, (f"detection: {CONVENTION}: {kept}", resize))


def _batched(
    run: Callable[[Any, list[Tensor], Targets | None], Any], masks: bool, keypoints: int
) -> Callable[[Any, Tensor], Any]:
    def forward(self: Any, images: Tensor) -> Any:
        """`images` (B, 3, H, W) as a list of B images, with one synthetic target each
        in training."""
        listed = list(images.unbind(0))
        targets = synthetic_targets(listed, masks, keypoints) if self.training else None
        return run(self, listed, targets)

    return forward


def _resize(transform: Any) -> tuple[tuple[int, int], str]:
    """(H, W) the transform keeps as it is, and a sentence saying what it does."""
    if transform.fixed_size is not None:
        width, height = transform.fixed_size
        return (height, width), (
            f"detection: the model's transform resizes every image to {height}x{width} "
            "(H x W) before the backbone"
        )
    side = max(transform.min_size)
    return (side, side), (
        f"detection: the model's transform resizes every image so its shorter side is "
        f"{side} (its longer side at most {transform.max_size}) and pads it to a multiple "
        f"of {transform.size_divisible} before the backbone"
    )
