"""The Frustum-PointNet v1 loss (``model_util.get_loss``) with the corner loss.

``L = seg_CE + w_box · (center + heading_CE + size_CE + 20 · heading_res + 20 · size_res
+ stage1_center + w_corner · corner)`` with ``huber(x, δ) = mean(0.5·min(|x|, δ)² + δ·(|x| − min))``:
centre ``huber(‖Δc‖, 2)``, stage-1 centre ``huber(‖Δc₁‖, 1)``, heading residual (normalised, of
the ground-truth bin) ``huber(·, 1)``, size residual ``huber(‖normalised Δ‖, 1)`` (of the ground-
truth template), corner ``huber(min(‖P − G‖, ‖P − G_flip‖), 1)`` per corner, where P are the
corners of the predicted centre with the ground-truth bin / template and their predicted residuals
and G_flip is the ground-truth box turned by π.

**Deviation:** the original's ``get_box3d_corners`` adds the size residual twice (template +
2·residual; frustum-pointnets #43, #49, #112, fixed by PR #53). Here the predicted size is
template + residual, the same size inference outputs.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from detection.frustum_pointnet.codec import HEADING_BIN_WIDTH, NUM_HEADING_BIN
from detection.frustum_pointnet.model import FPointNetOutput


class FPointNetTargets(NamedTuple):
    """Training targets in the centre-view frame.

    Attributes:
        seg: (B, N) int64, 1 = point inside the 3D box.
        center: (B, 3) geometric box centre, metres.
        heading_class: (B,) int64 heading bin.
        heading_residual: (B,) residual in radians.
        size_class: (B,) int64 size template.
        size_residual: (B, 3) residual (l, w, h) metres.
    """

    seg: torch.Tensor
    center: torch.Tensor
    heading_class: torch.Tensor
    heading_residual: torch.Tensor
    size_class: torch.Tensor
    size_residual: torch.Tensor


class LossTerms(NamedTuple):
    """The total loss and its (unweighted) terms."""

    total: torch.Tensor
    seg: torch.Tensor
    center: torch.Tensor
    stage1_center: torch.Tensor
    heading_class: torch.Tensor
    heading_residual: torch.Tensor
    size_class: torch.Tensor
    size_residual: torch.Tensor
    corner: torch.Tensor


def huber(x: torch.Tensor, delta: float) -> torch.Tensor:
    """``mean(0.5·min(|x|, δ)² + δ·(|x| − min(|x|, δ)))`` (the original ``huber_loss``)."""
    a = x.abs()
    q = a.clamp(max=delta)
    return (0.5 * q ** 2 + delta * (a - q)).mean()


def box_corners(center: torch.Tensor, heading: torch.Tensor, size_lwh: torch.Tensor) -> torch.Tensor:
    """(B, 8, 3) corners of boxes given by their geometric centre, heading and (l, w, h).

    Corner order and rotation as :func:`kitti.boxes.box_corners_rect` (0-3 at ``+h/2``, the
    bottom since camera y points down; 4-7 at ``-h/2``).
    """
    l, w, h = size_lwh[:, 0:1], size_lwh[:, 1:2], size_lwh[:, 2:3]
    sx = center.new_tensor([0.5, 0.5, -0.5, -0.5, 0.5, 0.5, -0.5, -0.5])
    sy = center.new_tensor([0.5, 0.5, 0.5, 0.5, -0.5, -0.5, -0.5, -0.5])
    sz = center.new_tensor([0.5, -0.5, -0.5, 0.5, 0.5, -0.5, -0.5, 0.5])
    x, y, z = l * sx, h * sy, w * sz
    c, s = torch.cos(heading)[:, None], torch.sin(heading)[:, None]
    return torch.stack([c * x + s * z, y, -s * x + c * z], dim=-1) + center[:, None, :]


def fpointnet_loss(out: FPointNetOutput, tgt: FPointNetTargets, mean_size_lwh: torch.Tensor, *,
                   box_loss_weight: float = 1.0, corner_loss_weight: float = 10.0) -> LossTerms:
    """The full v1 loss (see the module docstring).

    Args:
        out: the network's outputs.
        tgt: the targets.
        mean_size_lwh: (8, 3) size templates (l, w, h).
        box_loss_weight: weight of the box terms (1.0).
        corner_loss_weight: weight of the corner term inside the box terms (10.0).
    """
    b = tgt.center.shape[0]
    rows = torch.arange(b, device=tgt.center.device)
    seg = F.cross_entropy(out.seg_logits.reshape(-1, 2), tgt.seg.reshape(-1))
    center = huber(torch.linalg.vector_norm(out.center - tgt.center, dim=1), 2.0)
    stage1 = huber(torch.linalg.vector_norm(out.stage1_center - tgt.center, dim=1), 1.0)
    hcls = F.cross_entropy(out.heading_scores, tgt.heading_class)
    hres_pred_n = out.heading_residual_normalized[rows, tgt.heading_class]
    hres = huber(hres_pred_n - tgt.heading_residual / (math.pi / NUM_HEADING_BIN), 1.0)
    scls = F.cross_entropy(out.size_scores, tgt.size_class)
    template = mean_size_lwh[tgt.size_class]
    sres_pred_n = out.size_residual_normalized[rows, tgt.size_class]
    sres = huber(torch.linalg.vector_norm(sres_pred_n - tgt.size_residual / template, dim=1), 1.0)

    bin_center = tgt.heading_class.to(out.center.dtype) * HEADING_BIN_WIDTH
    heading_pred = bin_center + out.heading_residual[rows, tgt.heading_class]
    size_pred = template + out.size_residual[rows, tgt.size_class]
    heading_gt = bin_center + tgt.heading_residual
    size_gt = template + tgt.size_residual
    corners_pred = box_corners(out.center, heading_pred, size_pred)
    corners_gt = box_corners(tgt.center, heading_gt, size_gt)
    corners_flip = box_corners(tgt.center, heading_gt + math.pi, size_gt)
    dist = torch.minimum(torch.linalg.vector_norm(corners_pred - corners_gt, dim=-1),
                         torch.linalg.vector_norm(corners_pred - corners_flip, dim=-1))
    corner = huber(dist, 1.0)
    total = seg + box_loss_weight * (center + hcls + scls + 20.0 * hres + 20.0 * sres + stage1
                                     + corner_loss_weight * corner)
    return LossTerms(total, seg, center, stage1, hcls, hres, scls, sres, corner)
