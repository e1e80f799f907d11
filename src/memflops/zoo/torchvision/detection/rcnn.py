"""Faster, Mask and Keypoint R-CNN with fixed counts (torchvision's `GeneralizedRCNN`).

What each replaced step keeps, per image:

- RPN: the `pre_nms_top_n` best anchors of each level, as torchvision does,
  then the first `post_nms_top_n` of them with no small-box, score or NMS
  filter. Its loss: `batch_size_per_image` sampled anchors,
  `positive_fraction` of them positive.
- RoI heads, training: `box_batch_size_per_image` proposals,
  `box_positive_fraction` of them positive; the mask and keypoint heads run
  on those positives, and every keypoint is visible.
- RoI heads, inference: `detections_per_img` detections with no score,
  small-box or NMS filter; keypoints are read off their heatmaps at heatmap
  resolution (torchvision first resizes each heatmap to its box).
- Multi-scale RoIAlign: the RoIs are split evenly over the pyramid levels
  (each RoI costs the same at any level); the level mapper still runs.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from memflops.zoo.even_split import shares
from memflops.zoo.torchvision.detection.select import (
    Targets,
    bind,
    first,
    postprocess,
    sample_counts,
    spans,
)


def rcnn_forward(self: Any, images: list[Tensor], targets: Targets | None) -> Any:
    """`GeneralizedRCNN.forward` without its data-dependent check for degenerate boxes."""
    originals = [tuple(image.shape[-2:]) for image in images]
    image_list, targets = self.transform(images, targets)
    features = self.backbone(image_list.tensors)
    if isinstance(features, Tensor):
        features = OrderedDict([("0", features)])
    proposals, rpn_losses = self.rpn(image_list, features, targets)
    detections, head_losses = self.roi_heads(features, proposals, image_list.image_sizes, targets)
    if self.training:
        return {**head_losses, **rpn_losses}
    return postprocess(detections, image_list.image_sizes, originals)


# --- region proposal network ---------------------------------------------------------


def rpn_filter_proposals(
    self: Any, proposals: Tensor, objectness: Tensor, image_shapes: list[Any],
    num_anchors_per_level: list[int],
) -> tuple[list[Tensor], list[Tensor]]:
    """The first `post_nms_top_n` of the per-level top anchors, clipped to the image."""
    from torchvision.ops import boxes as box_ops

    num_images = proposals.shape[0]
    objectness = objectness.detach().reshape(num_images, -1)
    top_n = self._get_top_n_idx(objectness, num_anchors_per_level)  # (N, candidates)
    rows = torch.arange(num_images)[:, None]
    scores = torch.sigmoid(objectness[rows, top_n])
    proposals = proposals[rows, top_n]
    keep = first(min(self.post_nms_top_n(), top_n.shape[1]), scores)
    boxes = [
        box_ops.clip_boxes_to_image(b, shape)[keep]
        for b, shape in zip(proposals, image_shapes, strict=True)
    ]
    return boxes, [s[keep] for s in scores]


def rpn_loss(
    self: Any, objectness: Tensor, deltas: Tensor, labels: list[Tensor],
    regression_targets: list[Tensor],
) -> tuple[Tensor, Tensor]:
    """The RPN loss over `batch_size_per_image` anchors per image, positives first."""
    sampler = self.fg_bg_sampler
    sizes = [int(lab.shape[0]) for lab in labels]
    counts = [sample_counts(n, sampler.batch_size_per_image, sampler.positive_fraction)
              for n in sizes]
    positives = spans(sizes, [0] * len(sizes), [p for p, _ in counts])
    negatives = spans(sizes, [p for p, _ in counts], [n for _, n in counts])
    sampled = torch.cat([positives, negatives])
    targets = torch.cat(regression_targets)
    box_loss = F.smooth_l1_loss(
        deltas[positives], targets[positives], beta=1 / 9, reduction="sum"
    ) / sampled.numel()
    objectness_loss = F.binary_cross_entropy_with_logits(
        objectness.flatten()[sampled], torch.cat(labels)[sampled]
    )
    return objectness_loss, box_loss


# --- multi-scale RoIAlign ----------------------------------------------------------------


def pool_forward(
    self: Any, x: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[Any]
) -> Tensor:
    """`MultiScaleRoIAlign.forward` with the RoIs split evenly over the levels."""
    from torchvision.ops import roi_align
    from torchvision.ops.poolers import _convert_to_roi_format, _filter_input, _setup_scales

    features = _filter_input(x, self.featmap_names)
    scales, mapper = _setup_scales(
        features, image_shapes, self.canonical_scale, self.canonical_level
    )
    rois = _convert_to_roi_format(boxes)
    if len(features) == 1:
        single: Tensor = roi_align(
            features[0], rois, self.output_size, scales[0], self.sampling_ratio
        )
        return single
    mapper(boxes)  # each RoI's level, as torchvision computes it; the split ignores it
    result = torch.zeros(
        (rois.shape[0], features[0].shape[1], *self.output_size), dtype=features[0].dtype
    )
    start = 0
    counts = shares(rois.shape[0], len(features))
    for feature, scale, count in zip(features, scales, counts, strict=True):
        index = torch.arange(start, start + count)
        start += count
        pooled = roi_align(feature, rois[index], self.output_size, scale, self.sampling_ratio)
        result[index] = pooled.to(result.dtype)
    return result


# --- RoI heads ---------------------------------------------------------------------------


def roi_heads_forward(
    self: Any, features: dict[str, Tensor], proposals: list[Tensor], image_shapes: list[Any],
    targets: Targets | None = None,
) -> tuple[Targets, dict[str, Tensor]]:
    """`RoIHeads.forward` with fixed counts (see the module docstring)."""
    from torchvision.models.detection import roi_heads

    training = self.training and targets is not None
    if training:
        assert targets is not None
        proposals, matched, labels, regression, positives = _training_samples(
            self, proposals, targets
        )
    box_features = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
    class_logits, box_regression = self.box_predictor(box_features)
    results: Targets = []
    losses: dict[str, Tensor] = {}
    if training:
        losses["loss_classifier"], losses["loss_box_reg"] = _box_loss(
            class_logits, box_regression, labels, regression, positives
        )
        keeps = [first(n, p) for n, p in zip(positives, proposals, strict=True)]
        rois = [p[k] for p, k in zip(proposals, keeps, strict=True)]
        matched = [m[k] for m, k in zip(matched, keeps, strict=True)]
    else:
        results = _detections(self, class_logits, box_regression, proposals, image_shapes)
        rois = [r["boxes"] for r in results]
    if self.has_mask():
        mask_features = self.mask_head(self.mask_roi_pool(features, rois, image_shapes))
        mask_logits = self.mask_predictor(mask_features)
        if training:
            assert targets is not None
            losses["loss_mask"] = roi_heads.maskrcnn_loss(
                mask_logits, rois, [t["masks"] for t in targets],
                [t["labels"] for t in targets], matched,
            )
        else:
            masks = roi_heads.maskrcnn_inference(mask_logits, [r["labels"] for r in results])
            for mask, result in zip(masks, results, strict=True):
                result["masks"] = mask
    if self.has_keypoint():
        keypoint_features = self.keypoint_head(self.keypoint_roi_pool(features, rois, image_shapes))
        keypoint_logits = self.keypoint_predictor(keypoint_features)
        if training:
            assert targets is not None
            losses["loss_keypoint"] = _keypoint_loss(
                keypoint_logits, rois, [t["keypoints"] for t in targets], matched
            )
        else:
            per_image = keypoint_logits.split([int(r.shape[0]) for r in rois])
            for maps, boxes, result in zip(per_image, rois, results, strict=True):
                result["keypoints"], result["keypoints_scores"] = _keypoints(maps, boxes)
    return results, losses


def _training_samples(
    self: Any, proposals: list[Tensor], targets: Targets
) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor], list[int]]:
    """`select_training_samples` keeping `batch_size_per_image` proposals per image,
    positives first; also returns how many of each image's are positive."""
    dtype = proposals[0].dtype
    gt_boxes = [t["boxes"].to(dtype) for t in targets]
    proposals = self.add_gt_proposals(proposals, gt_boxes)
    matched, labels = self.assign_targets_to_proposals(
        proposals, gt_boxes, [t["labels"] for t in targets]
    )
    sampler = self.fg_bg_sampler
    positives, matched_boxes = [], []
    for i, image_proposals in enumerate(proposals):
        pos, neg = sample_counts(
            int(image_proposals.shape[0]), sampler.batch_size_per_image, sampler.positive_fraction
        )
        keep = first(pos + neg, image_proposals)
        proposals[i] = image_proposals[keep]
        labels[i], matched[i] = labels[i][keep], matched[i][keep]
        matched_boxes.append(gt_boxes[i][matched[i]])
        positives.append(pos)
    regression = self.box_coder.encode(matched_boxes, proposals)
    return proposals, matched, labels, regression, positives


def _box_loss(
    class_logits: Tensor, box_regression: Tensor, labels: list[Tensor],
    regression: list[Tensor], positives: list[int],
) -> tuple[Tensor, Tensor]:
    """`fastrcnn_loss`: classification over all sampled proposals, box regression over
    the positives."""
    all_labels = torch.cat(labels)
    classification = F.cross_entropy(class_logits, all_labels)
    sizes = [int(lab.shape[0]) for lab in labels]
    pos = spans(sizes, [0] * len(sizes), positives)
    n = class_logits.shape[0]
    per_class = box_regression.reshape(n, box_regression.size(-1) // 4, 4)
    box = F.smooth_l1_loss(
        per_class[pos, all_labels[pos]], torch.cat(regression)[pos], beta=1 / 9, reduction="sum"
    )
    return classification, box / all_labels.numel()


def _detections(
    self: Any, class_logits: Tensor, box_regression: Tensor, proposals: list[Tensor],
    image_shapes: list[Any],
) -> Targets:
    """`postprocess_detections` keeping the first `detections_per_img` (box, class) pairs."""
    from torchvision.ops import boxes as box_ops

    num_classes = class_logits.shape[-1]
    sizes = [int(p.shape[0]) for p in proposals]
    boxes_all = self.box_coder.decode(box_regression, proposals).split(sizes)
    scores_all = torch.split(F.softmax(class_logits, -1), sizes)
    results: Targets = []
    for boxes, scores, shape in zip(boxes_all, scores_all, image_shapes, strict=True):
        boxes = box_ops.clip_boxes_to_image(boxes, shape)
        labels = torch.arange(num_classes).view(1, -1).expand_as(scores)
        boxes = boxes[:, 1:].reshape(-1, 4)  # background dropped, one row per (box, class)
        scores, labels = scores[:, 1:].reshape(-1), labels[:, 1:].reshape(-1)
        keep = first(min(self.detections_per_img, int(scores.shape[0])), scores)
        results.append({"boxes": boxes[keep], "labels": labels[keep], "scores": scores[keep]})
    return results


def _keypoint_loss(
    logits: Tensor, rois: list[Tensor], gt_keypoints: list[Tensor], matched: list[Tensor]
) -> Tensor:
    """`keypointrcnn_loss` with every keypoint visible: cross-entropy over all of them."""
    from torchvision.models.detection.roi_heads import keypoints_to_heatmap

    n, k, h, w = logits.shape
    heatmaps = [
        keypoints_to_heatmap(kp[m], r, h)[0].view(-1)
        for kp, r, m in zip(gt_keypoints, rois, matched, strict=True)
    ]
    valid = first(n * k, logits)
    return F.cross_entropy(logits.view(n * k, h * w)[valid], torch.cat(heatmaps)[valid])


def _keypoints(maps: Tensor, boxes: Tensor) -> tuple[Tensor, Tensor]:
    """`heatmaps_to_keypoints` at heatmap resolution: (R, K, 3) keypoints, (R, K) scores."""
    r, k, h, w = maps.shape
    widths = (boxes[:, 2] - boxes[:, 0]).clamp(min=1)
    heights = (boxes[:, 3] - boxes[:, 1]).clamp(min=1)
    flat = maps.reshape(r, k, h * w)
    best = flat.argmax(dim=2)  # (R, K)
    x_int = best % w
    y_int = torch.div(best - x_int, w, rounding_mode="floor")
    x = (x_int.float() + 0.5) * (widths / w)[:, None] + boxes[:, 0:1]
    y = (y_int.float() + 0.5) * (heights / h)[:, None] + boxes[:, 1:2]
    keypoints = torch.stack([x, y, torch.ones_like(x)], dim=2)
    return keypoints, flat.gather(2, best[..., None])[..., 0]


# --- putting it together -----------------------------------------------------------------


def make_rcnn_shape_only(model: nn.Module) -> str:
    """Bind the fixed-count steps to `model`; return what they keep, in words."""
    from torchvision.ops import MultiScaleRoIAlign

    rpn: Any = model.get_submodule("rpn")
    heads: Any = model.get_submodule("roi_heads")
    bind(rpn, "filter_proposals", rpn_filter_proposals)
    bind(rpn, "compute_loss", rpn_loss)
    bind(heads, "forward", roi_heads_forward)
    for module in model.modules():
        if isinstance(module, MultiScaleRoIAlign):
            bind(module, "forward", pool_forward)
    sampler = heads.fg_bg_sampler
    pos, _ = sample_counts(sampler.batch_size_per_image, sampler.batch_size_per_image,
                           sampler.positive_fraction)
    extra = [name for name, has in (("mask", heads.has_mask()),
                                     ("keypoint", heads.has_keypoint())) if has]
    plural = len(extra) > 1
    on_positives = (
        f" (the {' and '.join(extra)} head{'s' if plural else ''} run{'' if plural else 's'} "
        "on those)" if extra else ""
    )
    post = rpn._post_nms_top_n
    return (
        f"the RPN keeps {post['training']} (training) or {post['testing']} (inference) "
        "proposals per image with no NMS, score or small-box filter; training samples "
        f"{sampler.batch_size_per_image} of them per image, {pos} positive{on_positives}; "
        f"inference keeps {heads.detections_per_img} detections per image"
        + (", each mask pasted over the whole image" if heads.has_mask() else "")
        + (", keypoints read at heatmap resolution" if heads.has_keypoint() else "")
    )
