"""RetinaNet, FCOS and SSD with fixed counts: one-stage detectors over dense anchors.

Training: every anchor is foreground (the most there can be), so every
loss term runs over all anchors; SSD's hard-negative mining still sorts
the losses but finds no background to add. Inference: the
`topk_candidates` best (anchor, class) scores of each level (RetinaNet,
FCOS) or each class (SSD), then the first `detections_per_img` of them with
no score or NMS filter.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from memflops.zoo.torchvision.detection.select import Targets, bind, first, postprocess


def dense_forward(self: Any, images: list[Tensor], targets: Targets | None) -> Any:
    """`RetinaNet/FCOS/SSD.forward` without the data-dependent degenerate-box check."""
    from torchvision.models.detection.fcos import FCOS
    from torchvision.models.detection.ssd import SSD
    from torchvision.ops import boxes as box_ops

    originals = [tuple(image.shape[-2:]) for image in images]
    image_list, targets = self.transform(images, targets)
    features = self.backbone(image_list.tensors)
    if isinstance(features, Tensor):
        features = OrderedDict([("0", features)])
    features = list(features.values())
    head_outputs = self.head(features)
    anchors = self.anchor_generator(image_list, features)
    sizes = [f.size(2) * f.size(3) for f in features]
    if self.training:
        assert targets is not None
        if isinstance(self, FCOS):
            return self.compute_loss(targets, head_outputs, anchors, sizes)
        if isinstance(self, SSD):
            matched = [
                self.proposal_matcher(box_ops.box_iou(t["boxes"], a))
                for t, a in zip(targets, anchors, strict=True)
            ]
            return ssd_loss(self, targets, head_outputs, anchors, matched)
        return self.compute_loss(targets, head_outputs, anchors)
    if isinstance(self, SSD):
        detections = ssd_detections(self, head_outputs, anchors, image_list.image_sizes)
    else:
        per_location = head_outputs["cls_logits"].size(1) // sum(sizes)
        split = [hw * per_location for hw in sizes]
        levels = {k: list(v.split(split, dim=1)) for k, v in head_outputs.items()}
        level_anchors = [list(a.split(split)) for a in anchors]
        detections = level_detections(self, levels, level_anchors, image_list.image_sizes)
    return postprocess(detections, image_list.image_sizes, originals)


def _mean(values: list[Tensor]) -> Tensor:
    total = values[0]
    for v in values[1:]:
        total = total + v
    return total / len(values)


def retinanet_loss(
    self: Any, targets: Targets, head_outputs: dict[str, Tensor], anchors: list[Tensor],
    matched: list[Tensor],
) -> dict[str, Tensor]:
    """`RetinaNetHead.compute_loss` with every anchor foreground."""
    from torchvision.models.detection._utils import _box_loss
    from torchvision.ops import sigmoid_focal_loss

    regression_head = self.regression_head
    classification, regression = [], []
    for target, logits, deltas, image_anchors, image_matched in zip(
        targets, head_outputs["cls_logits"], head_outputs["bbox_regression"], anchors, matched,
        strict=True,
    ):
        everything = first(int(image_anchors.shape[0]), image_anchors)
        count = everything.numel()
        fg_matched = image_matched[everything]
        classes = torch.zeros_like(logits)
        classes[everything, target["labels"][fg_matched]] = 1.0
        classification.append(
            sigmoid_focal_loss(logits[everything], classes[everything], reduction="sum") / count
        )
        matched_boxes = target["boxes"][fg_matched]
        if regression_head._loss_type == "giou":
            decoded = regression_head.box_coder.decode_single(
                deltas[everything], image_anchors[everything]
            )
            box_loss = giou_loss(decoded, matched_boxes)
        else:
            box_loss = _box_loss(
                regression_head._loss_type, regression_head.box_coder,
                image_anchors[everything], matched_boxes, deltas[everything],
            )
        regression.append(box_loss / count)
    return {"classification": _mean(classification), "bbox_regression": _mean(regression)}


def fcos_loss(
    self: Any, targets: Targets, head_outputs: dict[str, Tensor], anchors: list[Tensor],
    matched: list[Tensor],
) -> dict[str, Tensor]:
    """`FCOSHead.compute_loss` with every anchor foreground."""
    from torchvision.ops import sigmoid_focal_loss

    cls_logits = head_outputs["cls_logits"]  # (N, HWA, C)
    gt_classes, gt_boxes = [], []
    for target, image_matched in zip(targets, matched, strict=True):
        index = image_matched.clip(min=0)
        classes = target["labels"][index]
        classes[image_matched < 0] = -1  # background
        gt_classes.append(classes)
        gt_boxes.append(target["boxes"][index])
    all_classes, all_boxes, all_anchors = (
        torch.stack(gt_classes), torch.stack(gt_boxes), torch.stack(anchors)
    )
    everything = first(all_classes.numel(), all_classes)
    count = everything.numel()
    classes_target = torch.zeros_like(cls_logits)
    classes_target.view(count, -1)[everything, all_classes.flatten()[everything]] = 1.0
    loss_cls = sigmoid_focal_loss(cls_logits, classes_target, reduction="sum")
    predicted = self.box_coder.decode(head_outputs["bbox_regression"], all_anchors)
    loss_box = giou_loss(predicted.flatten(0, 1)[everything], all_boxes.flatten(0, 1)[everything])
    distances = self.box_coder.encode(all_anchors, all_boxes)
    left_right, top_bottom = distances[:, :, [0, 2]], distances[:, :, [1, 3]]
    centerness = torch.sqrt(
        (left_right.min(dim=-1)[0] / left_right.max(dim=-1)[0])
        * (top_bottom.min(dim=-1)[0] / top_bottom.max(dim=-1)[0])
    )
    predicted_centerness = head_outputs["bbox_ctrness"].squeeze(dim=2)
    loss_ctr = F.binary_cross_entropy_with_logits(
        predicted_centerness.flatten()[everything], centerness.flatten()[everything],
        reduction="sum",
    )
    return {
        "classification": loss_cls / count,
        "bbox_regression": loss_box / count,
        "bbox_ctrness": loss_ctr / count,
    }


def giou_loss(boxes: Tensor, targets: Tensor, eps: float = 1e-7) -> Tensor:
    """`generalized_box_iou_loss(reduction="sum")` with every pair of boxes overlapping
    (torchvision computes the intersection only where they do)."""
    x1, y1, x2, y2 = boxes.unbind(dim=-1)
    x1g, y1g, x2g, y2g = targets.unbind(dim=-1)
    intersection = (torch.min(x2, x2g) - torch.max(x1, x1g)) * (
        torch.min(y2, y2g) - torch.max(y1, y1g)
    )
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - intersection
    iou = intersection / (union + eps)
    enclosing = (torch.max(x2, x2g) - torch.min(x1, x1g)) * (
        torch.max(y2, y2g) - torch.min(y1, y1g)
    )
    return (1 - (iou - (enclosing - union) / (enclosing + eps))).sum()


def ssd_loss(
    self: Any, targets: Targets, head_outputs: dict[str, Tensor], anchors: list[Tensor],
    matched: list[Tensor],
) -> dict[str, Tensor]:
    """`SSD.compute_loss` with every anchor foreground; the hard-negative mining runs and
    finds no background."""
    cls_logits = head_outputs["cls_logits"]
    box_losses, class_targets = [], []
    count = 0
    for target, deltas, logits, image_anchors, image_matched in zip(
        targets, head_outputs["bbox_regression"], cls_logits, anchors, matched, strict=True
    ):
        everything = first(int(image_anchors.shape[0]), image_anchors)
        fg_matched = image_matched[everything]
        count += everything.numel()
        encoded = self.box_coder.encode_single(
            target["boxes"][fg_matched], image_anchors[everything]
        )
        box_losses.append(F.smooth_l1_loss(deltas[everything], encoded, reduction="sum"))
        classes = torch.zeros((logits.size(0),), dtype=target["labels"].dtype)
        classes[everything] = target["labels"][fg_matched]
        class_targets.append(classes)
    box_loss, all_classes = torch.stack(box_losses), torch.stack(class_targets)
    num_classes = cls_logits.size(-1)
    cls_loss = F.cross_entropy(
        cls_logits.view(-1, num_classes), all_classes.view(-1), reduction="none"
    ).view(all_classes.size())
    foreground = all_classes > 0
    negatives_allowed = self.neg_to_pos_ratio * foreground.sum(1, keepdim=True)
    negative_loss = cls_loss.clone()
    negative_loss[foreground] = -float("inf")
    _, order = negative_loss.sort(1, descending=True)
    _ = order.sort(1)[1] < negatives_allowed  # the background it would pick: none here
    every_loss = first(cls_loss.numel(), cls_loss)
    return {
        "bbox_regression": box_loss.sum() / count,
        "classification": cls_loss.flatten()[every_loss].sum() / count,
    }


def level_detections(
    self: Any, head_outputs: dict[str, list[Tensor]], anchors: list[list[Tensor]],
    image_shapes: list[Any],
) -> Targets:
    """RetinaNet's and FCOS's `postprocess_detections`: per level the `topk_candidates`
    best scores, then the first `detections_per_img`."""
    from torchvision.models.detection.fcos import FCOS
    from torchvision.ops import boxes as box_ops

    fcos = isinstance(self, FCOS)
    detections: Targets = []
    for index, shape in enumerate(image_shapes):
        boxes, scores, labels = [], [], []
        for level, level_anchors in enumerate(anchors[index]):
            logits = head_outputs["cls_logits"][level][index]
            deltas = head_outputs["bbox_regression"][level][index]
            num_classes = logits.shape[-1]
            if fcos:
                centerness = head_outputs["bbox_ctrness"][level][index]
                level_scores = torch.sqrt(torch.sigmoid(logits) * torch.sigmoid(centerness))
            else:
                level_scores = torch.sigmoid(logits)
            flat = level_scores.flatten()
            top, idxs = flat.topk(min(self.topk_candidates, flat.numel()))
            anchor_idxs = torch.div(idxs, num_classes, rounding_mode="floor")
            coder = self.box_coder
            decode = coder.decode if fcos else coder.decode_single
            level_boxes = decode(deltas[anchor_idxs], level_anchors[anchor_idxs])
            boxes.append(box_ops.clip_boxes_to_image(level_boxes, shape))
            scores.append(top)
            labels.append(idxs % num_classes)
        detections.append(_first_detections(self, boxes, scores, labels))
    return detections


def ssd_detections(
    self: Any, head_outputs: dict[str, Tensor], anchors: list[Tensor], image_shapes: list[Any]
) -> Targets:
    """SSD's `postprocess_detections`: per class the `topk_candidates` best anchors, then
    the first `detections_per_img`."""
    from torchvision.ops import boxes as box_ops

    all_scores = F.softmax(head_outputs["cls_logits"], dim=-1)
    num_classes = all_scores.size(-1)
    detections: Targets = []
    for deltas, scores, image_anchors, shape in zip(
        head_outputs["bbox_regression"], all_scores, anchors, image_shapes, strict=True
    ):
        decoded = box_ops.clip_boxes_to_image(
            self.box_coder.decode_single(deltas, image_anchors), shape
        )
        boxes, kept, labels = [], [], []
        for label in range(1, num_classes):
            score = scores[:, label]
            top, idxs = score.topk(min(self.topk_candidates, score.numel()))
            boxes.append(decoded[idxs])
            kept.append(top)
            labels.append(torch.full_like(top, fill_value=label, dtype=torch.int64))
        detections.append(_first_detections(self, boxes, kept, labels))
    return detections


def _first_detections(
    self: Any, boxes: list[Tensor], scores: list[Tensor], labels: list[Tensor]
) -> dict[str, Tensor]:
    all_boxes, all_scores, all_labels = torch.cat(boxes), torch.cat(scores), torch.cat(labels)
    keep = first(min(self.detections_per_img, int(all_scores.shape[0])), all_scores)
    return {"boxes": all_boxes[keep], "scores": all_scores[keep], "labels": all_labels[keep]}


def make_dense_shape_only(model: Any) -> str:
    """Bind the fixed-count steps to `model`; return what they keep, in words."""
    from torchvision.models.detection.fcos import FCOS
    from torchvision.models.detection.ssd import SSD

    if isinstance(model, FCOS):
        bind(model.head, "compute_loss", fcos_loss)
    elif not isinstance(model, SSD):
        bind(model.head, "compute_loss", retinanet_loss)
    per = "class" if isinstance(model, SSD) else "level"
    mining = " (no hard negatives to mine)" if isinstance(model, SSD) else ""
    return (
        f"training treats every anchor as foreground{mining}; inference keeps the "
        f"{model.topk_candidates} best candidates per {per} and {model.detections_per_img} "
        "detections per image with no score or NMS filter"
    )
