"""The Frustum-PointNet v1 network (``models/frustum_pointnets_v1.py``) in PyTorch.

Input: (B, N, 4) frustum points ``[x, y, z, intensity]`` in the centre-view rect frame and a
(B, 3) class one-hot (Car, Pedestrian, Cyclist). Stages:

1. Instance-segmentation PointNet: shared MLP 4→64→64→64 (point features) →128→1024, max-pool,
   concat one-hot, tiled and concatenated with the point features (1091 channels), MLP
   512→256→128→128, dropout, →2 logits per point.
2. Masking and centring: points with ``logit1 > logit0``; their xyz centroid is subtracted (the
   intensity is dropped); ``num_object_points`` of them are gathered (random order, repeated
   cyclically when fewer). **Deviation:** when no point is predicted foreground, the original
   gathers point 0 and keeps the origin as centroid; here the whole frustum is used instead.
3. T-Net: MLP 3→128→128→256, max-pool, concat one-hot, FC 256→128→3 = Δ; ``stage1_center =
   centroid + Δ``.
4. Box-estimation PointNet on the points minus ``stage1_center``: MLP 3→128→128→256→512,
   max-pool, concat one-hot, FC 512→256→59 = 3 centre + 12 heading scores + 12 heading residuals
   + 8 size scores + 8×3 size residuals.

Every hidden width is multiplied by ``width`` (1.0 = the original). Layers are shared MLPs (1×1
convolutions, computed as ``nn.Linear`` on (B·N, C) rows, which is faster on CPU) and FCs, each with
batch norm and ReLU, Xavier-uniform initialised. The concat-then-conv of stage 1 is
computed as ``W_point·f_point + W_global·f_global`` (the same function, without tiling the global
feature over the points).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from detection.frustum_pointnet.codec import (MEAN_SIZE_ARRAY_LWH, NUM_HEADING_BIN,
                                              NUM_SIZE_TEMPLATE)

NUM_OUTPUTS: int = 3 + 2 * NUM_HEADING_BIN + 4 * NUM_SIZE_TEMPLATE  # 59


class FPointNetOutput(NamedTuple):
    """Outputs of :class:`FPointNetV1` (centre-view rect frame, metres, radians).

    Attributes:
        seg_logits: (B, N, 2) per-point background / object logits.
        stage1_center: (B, 3) mask centroid plus the T-Net's Δ.
        center: (B, 3) box centre (geometric), ``stage1_center`` plus the box net's residual.
        heading_scores: (B, 12) heading-bin logits.
        heading_residual_normalized: (B, 12) residuals / (π/12).
        heading_residual: (B, 12) residuals in radians.
        size_scores: (B, 8) size-template logits.
        size_residual_normalized: (B, 8, 3) residuals / template size.
        size_residual: (B, 8, 3) residuals (l, w, h) in metres.
        mask_count: (B,) number of points predicted as object.
    """

    seg_logits: torch.Tensor
    stage1_center: torch.Tensor
    center: torch.Tensor
    heading_scores: torch.Tensor
    heading_residual_normalized: torch.Tensor
    heading_residual: torch.Tensor
    size_scores: torch.Tensor
    size_residual_normalized: torch.Tensor
    size_residual: torch.Tensor
    mask_count: torch.Tensor


def _mlp(channels: list[int]) -> nn.Sequential:
    """Linear + BN + ReLU layers on (M, C) rows: FCs, or 1×1 convolutions when the rows are the
    points of a batch flattened to (B·N, C) (the same function as Conv1d on (B, C, N))."""
    layers: list[nn.Module] = []
    for cin, cout in zip(channels[:-1], channels[1:]):
        layers += [nn.Linear(cin, cout, bias=False), nn.BatchNorm1d(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def gather_object_points(xyz: torch.Tensor, mask: torch.Tensor, num: int,
                         generator: torch.Generator | None = None,
                         key_rows: tuple[int, int] | None = None) -> torch.Tensor:
    """Indices (B, num) of the masked points: a random order, repeated cyclically when fewer.

    Args:
        xyz: (B, N, 3) points (only the shape and device are used).
        mask: (B, N) bool object mask; a row without any point uses every point.
        num: points to gather.
        generator: torch generator for the random order (seeded by the caller).
        key_rows: ``(first, total)``: draw the random keys of a batch of ``total`` rows and use
            rows ``first .. first + B`` — a rank of a data-parallel step draws what one process
            running the whole global batch would (None: draw B rows).
    """
    b, n = mask.shape
    empty = ~mask.any(dim=1, keepdim=True)
    eff = mask | empty
    if key_rows is None:
        keys = torch.rand(b, n, generator=generator, device=xyz.device)
    else:
        first, total = key_rows
        keys = torch.rand(total, n, generator=generator, device=xyz.device)[first:first + b]
    keys = keys + eff.float()
    order = keys.argsort(dim=1, descending=True)
    count = eff.sum(dim=1, keepdim=True)
    pos = torch.arange(num, device=xyz.device)[None, :] % count
    return order.gather(1, pos)


class FPointNetV1(nn.Module):
    """Frustum-PointNet v1 (see the module docstring).

    Args:
        width: multiplier of every hidden channel count (1.0 = original sizes).
        num_object_points: points gathered for the T-Net and box net (512 in the original).
        dropout: dropout probability before the segmentation head's last layer (0.5).
        num_classes: length of the one-hot class vector (3).
    """

    def __init__(self, *, width: float = 1.0, num_object_points: int = 512, dropout: float = 0.5,
                 num_classes: int = 3) -> None:
        super().__init__()

        def c(n: int) -> int:
            return max(4, int(round(n * width)))

        self.num_object_points = num_object_points
        self.num_classes = num_classes
        self.seg_point = _mlp([4, c(64), c(64), c(64)])
        self.seg_global = _mlp([c(64), c(128), c(1024)])
        self.seg_fuse_point = nn.Linear(c(64), c(512), bias=False)
        self.seg_fuse_global = nn.Linear(c(1024) + num_classes, c(512), bias=False)
        self.seg_fuse_bn = nn.BatchNorm1d(c(512))
        self.seg_head = _mlp([c(512), c(256), c(128), c(128)])
        self.seg_dropout = nn.Dropout(dropout)
        self.seg_out = nn.Linear(c(128), 2)
        self.tnet_conv = _mlp([3, c(128), c(128), c(256)])
        self.tnet_fc = _mlp([c(256) + num_classes, c(256), c(128)])
        self.tnet_out = nn.Linear(c(128), 3)
        self.box_conv = _mlp([3, c(128), c(128), c(256), c(512)])
        self.box_fc = _mlp([c(512) + num_classes, c(512), c(256)])
        self.box_out = nn.Linear(c(256), NUM_OUTPUTS)
        self.register_buffer("mean_size_lwh", torch.tensor(MEAN_SIZE_ARRAY_LWH, dtype=torch.float32),
                             persistent=False)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def set_bn_momentum(self, momentum: float) -> None:
        """Set every batch norm's (PyTorch) momentum, ``1 - TF decay``."""
        for m in self.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):  # BatchNorm1d or SyncBatchNorm
                m.momentum = momentum

    def forward(self, points: torch.Tensor, onehot: torch.Tensor,
                generator: torch.Generator | None = None,
                key_rows: tuple[int, int] | None = None) -> FPointNetOutput:
        """Run the network.

        Args:
            points: (B, N, 4) centre-view frustum points ``[x, y, z, intensity]``.
            onehot: (B, 3) class one-hot.
            generator: seeds the random gather of object points (None = torch's global RNG).
            key_rows: this batch's rows in a larger global batch (see :func:`gather_object_points`).
        """
        b, n, _ = points.shape
        point_feat = self.seg_point(points.reshape(b * n, -1))  # (B·N, 64)
        global_feat = self.seg_global(point_feat).reshape(b, n, -1).amax(dim=1)
        global_feat = torch.cat([global_feat, onehot], dim=1)
        fused = (self.seg_fuse_point(point_feat).reshape(b, n, -1)
                 + self.seg_fuse_global(global_feat)[:, None, :]).reshape(b * n, -1)
        net = self.seg_head(torch.relu(self.seg_fuse_bn(fused)))
        seg_logits = self.seg_out(self.seg_dropout(net)).reshape(b, n, 2)

        xyz = points[:, :, :3]
        mask = seg_logits[:, :, 1] > seg_logits[:, :, 0]
        mask_count = mask.sum(dim=1)
        weights = torch.where(mask_count[:, None] > 0, mask.float(), torch.ones_like(mask, dtype=torch.float32))
        centroid = (xyz * weights[:, :, None]).sum(dim=1) / weights.sum(dim=1, keepdim=True)
        idx = gather_object_points(xyz, mask, self.num_object_points, generator, key_rows)
        obj = xyz.gather(1, idx[:, :, None].expand(-1, -1, 3)) - centroid[:, None, :]

        m = self.num_object_points
        t = self.tnet_conv(obj.reshape(b * m, 3)).reshape(b, m, -1).amax(dim=1)
        delta = self.tnet_out(self.tnet_fc(torch.cat([t, onehot], dim=1)))
        stage1_center = centroid + delta
        obj2 = obj - delta[:, None, :]

        g = self.box_conv(obj2.reshape(b * m, 3)).reshape(b, m, -1).amax(dim=1)
        out = self.box_out(self.box_fc(torch.cat([g, onehot], dim=1)))
        nh, ns = NUM_HEADING_BIN, NUM_SIZE_TEMPLATE
        center = out[:, :3] + stage1_center
        heading_scores = out[:, 3:3 + nh]
        hres_n = out[:, 3 + nh:3 + 2 * nh]
        size_scores = out[:, 3 + 2 * nh:3 + 2 * nh + ns]
        sres_n = out[:, 3 + 2 * nh + ns:].reshape(-1, ns, 3)
        return FPointNetOutput(seg_logits, stage1_center, center, heading_scores, hres_n,
                               hres_n * (math.pi / nh), size_scores, sres_n,
                               sres_n * self.mean_size_lwh[None], mask_count)
