"""AVOD's losses: mini-batch sampling by BEV IoU, softmax cross-entropy, smooth-L1 regression.

Both stages match their boxes (anchors, proposals) to the ground truth by the IoU of the axis-aligned
BEV rectangles (``torchvision.ops.box_iou``; the ground truth taken as the anchor of its nearest
axis alignment). A box is positive at IoU >= ``pos``, negative below ``neg``, ignored between;
``batch`` boxes are drawn, at most half of them positive (``BalancedPositiveNegativeSampler``).
Classification: cross-entropy with label smoothing, averaged over the drawn boxes. Regression:
smooth-L1 summed over the values and averaged over the drawn positives, times its weight:
RPN anchor offsets (x ``reg_weight``); second stage box_4c offsets (x ``reg_weight``) and
orientation vectors (x ``ang_weight``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torchvision.ops import box_iou

from detection.avod.encoding import (anchor_offsets, anchors_to_bev_xyxy, anchors_to_boxes, boxes_to_4c,
                                     boxes_to_anchors, orientation_vector)
from detection.avod.model import AvodOutput
from detection.avod.settings import AvodSettings


class AvodLoss(NamedTuple):
    """Loss terms of one frame (scalars) and the counts of drawn positives."""

    total: torch.Tensor
    rpn_cls: torch.Tensor
    rpn_reg: torch.Tensor
    cls: torch.Tensor
    box: torch.Tensor
    ang: torch.Tensor
    rpn_positives: int
    positives: int


def sample_minibatch(iou_max: torch.Tensor, pos: float, neg: float, batch: int,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of drawn positives and negatives (at most ``batch // 2`` positives, the rest
    negatives; random without replacement).

    Args:
        iou_max: (N,) best IoU of each box with any ground truth (0 when there is none).
    """
    pos_idx = torch.nonzero(iou_max >= pos).flatten()
    neg_idx = torch.nonzero(iou_max < neg).flatten()
    n_pos = min(len(pos_idx), batch // 2)
    pos_idx = pos_idx[torch.randperm(len(pos_idx), generator=generator)[:n_pos]]
    n_neg = min(len(neg_idx), batch - n_pos)
    neg_idx = neg_idx[torch.randperm(len(neg_idx), generator=generator)[:n_neg]]
    return pos_idx, neg_idx


def _match(boxes_anchor: torch.Tensor, gt_anchor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if len(gt_anchor) == 0:
        return torch.zeros(len(boxes_anchor), dtype=boxes_anchor.dtype), torch.zeros(len(boxes_anchor), dtype=torch.long)
    iou = box_iou(anchors_to_bev_xyxy(boxes_anchor), anchors_to_bev_xyxy(gt_anchor))
    return iou.max(dim=1)


def _cls_loss(logits: torch.Tensor, pos_idx: torch.Tensor, neg_idx: torch.Tensor, smoothing: float) -> torch.Tensor:
    idx = torch.cat([pos_idx, neg_idx])
    if len(idx) == 0:
        return logits.sum() * 0.0
    labels = torch.cat([torch.ones_like(pos_idx), torch.zeros_like(neg_idx)])
    return F.cross_entropy(logits[idx], labels, label_smoothing=smoothing)


def _reg_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if len(pred) == 0:
        return pred.sum() * 0.0
    return F.smooth_l1_loss(pred, target, reduction="none", beta=1.0).sum(dim=1).mean()


def avod_loss(out: AvodOutput, anchors: torch.Tensor, gt_boxes: torch.Tensor, plane: torch.Tensor,
              settings: AvodSettings, generator: torch.Generator | None = None) -> AvodLoss:
    """All loss terms of one frame.

    Args:
        out: the network's outputs for ``anchors``.
        anchors: (N, 6) the anchors fed to the network.
        gt_boxes: (M, 7) ground-truth boxes ``[x, y, z, h, w, l, ry]`` of the trained class.
        plane: (4,) the frame's ground plane.
        settings: thresholds, batch sizes, weights.
        generator: draws the mini-batches.
    """
    s = settings
    gt_boxes = gt_boxes.to(anchors.dtype)
    gt_anchor = boxes_to_anchors(gt_boxes)
    iou, arg = _match(anchors, gt_anchor)
    pos, neg = sample_minibatch(iou, s.rpn_pos_iou, s.rpn_neg_iou, s.rpn_batch, generator)
    rpn_cls = _cls_loss(out.rpn_logits, pos, neg, s.label_smoothing)
    rpn_reg = _reg_loss(out.rpn_offsets[pos], anchor_offsets(anchors[pos], gt_anchor[arg[pos]])) if len(gt_anchor) \
        else out.rpn_offsets.sum() * 0.0

    props = out.proposals.to(anchors.dtype)
    iou2, arg2 = _match(props, gt_anchor)
    pos2, neg2 = sample_minibatch(iou2, s.roi_pos_iou, s.roi_neg_iou, s.roi_batch, generator)
    cls = _cls_loss(out.cls_logits, pos2, neg2, s.label_smoothing)
    if len(gt_anchor) and len(pos2):
        matched = gt_boxes[arg2[pos2]]
        target_4c = boxes_to_4c(matched, plane) - boxes_to_4c(anchors_to_boxes(props[pos2]), plane)
        box = _reg_loss(out.box_4c_offsets[pos2], target_4c)
        ang = _reg_loss(out.orientation[pos2], orientation_vector(matched[:, 6]))
    else:
        box = out.box_4c_offsets.sum() * 0.0
        ang = out.orientation.sum() * 0.0
    total = rpn_cls + s.reg_weight * rpn_reg + cls + s.reg_weight * box + s.ang_weight * ang
    return AvodLoss(total, rpn_cls, rpn_reg, cls, box, ang, int(len(pos)), int(len(pos2)))
