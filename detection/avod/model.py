"""The AVOD-FPN network: two feature extractors, the RPN, and the second stage.

Shapes: one frame per call (batch 1, as the original). ``bev`` is (1, C, rows, cols) (see
:mod:`.bev`), ``image`` (1, 3, H, W) the resized, normalised image or ``None`` (BEV view only).
Anchors and proposals are (N, 6) anchors (:mod:`.encoding`). Crop-and-resize is
``torchvision.ops.roi_align`` (``aligned=True``, one sample per bin: the bilinear sampling of
TensorFlow's ``crop_and_resize``); proposal NMS is ``torchvision.ops.nms`` on the BEV rectangles.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import nms, roi_align

from detection.avod.encoding import anchors_to_bev_xyxy, anchors_to_image_boxes, apply_anchor_offsets
from detection.avod.settings import AvodSettings

#: Convolutions per encoder block (VGG-16 style, as ``bev_vgg_pyramid.py``).
BLOCK_CONVS: tuple[int, int, int, int] = (2, 2, 3, 3)

#: RPN size offsets are clamped to this before ``exp`` when proposals are decoded.
MAX_LOG_SCALE: float = 3.0


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FeatureExtractor(nn.Module):
    """VGG-like encoder (blocks of 2, 2, 3, 3 convolutions, 2x max-pool between them) and an FPN
    decoder: per level a stride-2 transposed convolution, concatenation with the encoder's map of
    that level, a 3x3 convolution; output at full resolution with ``out_channels`` channels. The
    input is zero-padded to a multiple of 8 and the output cropped back."""

    def __init__(self, in_channels: int, channels: tuple[int, int, int, int], out_channels: int) -> None:
        super().__init__()
        blocks, cin = [], in_channels
        for n, c in zip(BLOCK_CONVS, channels):
            blocks.append(nn.Sequential(*[_conv(cin if i == 0 else c, c) for i in range(n)]))
            cin = c
        self.blocks = nn.ModuleList(blocks)
        ups, fuses = [], []
        for level in (2, 1, 0):
            c = channels[level]
            ups.append(nn.Sequential(nn.ConvTranspose2d(cin, c, 3, stride=2, padding=1, output_padding=1,
                                                        bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)))
            cout = out_channels if level == 0 else c
            fuses.append(_conv(2 * c, cout))
            cin = cout
        self.ups = nn.ModuleList(ups)
        self.fuses = nn.ModuleList(fuses)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = F.pad(x, (0, -w % 8, 0, -h % 8))
        skips = []
        for i, block in enumerate(self.blocks):
            if i:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        for up, fuse, skip in zip(self.ups, self.fuses, reversed(skips[:3])):
            x = fuse(torch.cat([up(x), skip], dim=1))
        return x[..., :h, :w]


def _mlp(cin: int, widths: tuple[int, ...], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Linear(cin, w), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        cin = w
    return nn.Sequential(*layers)


@dataclass
class AvodOutput:
    """Network outputs of one frame.

    Attributes:
        rpn_logits: (N, 2) background / object logits per anchor.
        rpn_offsets: (N, 6) anchor offsets per anchor.
        proposals: (P, 6) proposals (decoded anchors after NMS; ground truth appended in training
            when the settings say so), no gradient.
        cls_logits: (P, 2) second-stage logits.
        box_4c_offsets: (P, 10) offsets of the proposals' box_4c.
        orientation: (P, 2) orientation vectors (unnormalised cos, sin).
    """

    rpn_logits: torch.Tensor
    rpn_offsets: torch.Tensor
    proposals: torch.Tensor
    cls_logits: torch.Tensor
    box_4c_offsets: torch.Tensor
    orientation: torch.Tensor


@dataclass(frozen=True)
class FrameGeometry:
    """What the network needs to place boxes in both views.

    Attributes:
        P2: (3, 4) projection of camera 2 (of the unflipped frame).
        image_wh: (W, H) of the original image.
        flipped: the inputs are mirrored (x -> -x, image flipped).
    """

    P2: torch.Tensor
    image_wh: tuple[float, float]
    flipped: bool = False


class AvodNet(nn.Module):
    """AVOD-FPN (see the module docstring and docs/avod.md)."""

    def __init__(self, settings: AvodSettings) -> None:
        super().__init__()
        s = settings
        self.settings = s
        d = s.decoder_channels
        self.bev_net = FeatureExtractor(s.num_slices + 1, s.channels, d)
        self.bev_bottleneck = nn.Sequential(nn.Conv2d(d, 1, 1, bias=False), nn.BatchNorm2d(1), nn.ReLU(inplace=True))
        if s.use_image:
            self.img_net = FeatureExtractor(3, s.channels, d)
            self.img_bottleneck = nn.Sequential(nn.Conv2d(d, 1, 1, bias=False), nn.BatchNorm2d(1),
                                                nn.ReLU(inplace=True))
        k = s.rpn_crop * s.rpn_crop
        self.rpn_cls = nn.Sequential(_mlp(k, (s.rpn_fc, s.rpn_fc), s.dropout), nn.Linear(s.rpn_fc, 2))
        self.rpn_reg = nn.Sequential(_mlp(k, (s.rpn_fc, s.rpn_fc), s.dropout), nn.Linear(s.rpn_fc, 6))
        self.fc = _mlp(d * s.roi_crop * s.roi_crop, s.fc_layers, s.dropout)
        self.cls_head = nn.Linear(s.fc_layers[-1], 2)
        self.box_head = nn.Linear(s.fc_layers[-1], 10)
        self.ang_head = nn.Linear(s.fc_layers[-1], 2)

    def bev_rois(self, anchors: torch.Tensor) -> torch.Tensor:
        """(N, 5) ``[0, col1, row1, col2, row2]`` BEV pixel boxes of anchors for roi_align."""
        s = self.settings
        x1, z1, x2, z2 = anchors_to_bev_xyxy(anchors).unbind(-1)
        return torch.stack([torch.zeros_like(x1), (x1 - s.x_range_m[0]) / s.cell_m, (s.z_range_m[1] - z2) / s.cell_m,
                            (x2 - s.x_range_m[0]) / s.cell_m, (s.z_range_m[1] - z1) / s.cell_m], dim=-1)

    def img_rois(self, anchors: torch.Tensor, geom: FrameGeometry) -> torch.Tensor:
        s = self.settings
        scale = (s.image_hw[1] / geom.image_wh[0], s.image_hw[0] / geom.image_wh[1])
        boxes = anchors_to_image_boxes(anchors, geom.P2, geom.image_wh, scale, flipped=geom.flipped)
        return torch.cat([torch.zeros_like(boxes[:, :1]), boxes], dim=1)

    def _fuse(self, crops: list[torch.Tensor], keep: tuple[bool, ...]) -> torch.Tensor:
        kept = [c for c, k in zip(crops, keep) if k]
        return torch.stack(kept).sum(dim=0) / len(kept)

    def forward(self, bev: torch.Tensor, image: torch.Tensor | None, anchors: torch.Tensor,
                geom: FrameGeometry, *, gt_anchors: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> AvodOutput:
        """Run both stages on one frame.

        Args:
            bev: (1, C, rows, cols) BEV maps.
            image: (1, 3, H, W) resized image, or ``None`` when the image view is off.
            anchors: (N, 6) non-empty anchors (float32).
            geom: camera geometry of the frame.
            gt_anchors: (M, 6) ground truth as anchors; appended to the proposals in training
                when ``add_gt_to_proposals`` is set.
            generator: draws the path-drop choice in training.
        """
        s = self.settings
        use_img = s.use_image and image is not None
        bev_feat = self.bev_net(bev)
        feats = [bev_feat]
        bottlenecks = [self.bev_bottleneck(bev_feat)]
        if use_img:
            img_feat = self.img_net(image)
            feats.append(img_feat)
            bottlenecks.append(self.img_bottleneck(img_feat))
        keep = (True,) * len(feats)
        if self.training and use_img:
            r = torch.rand(2, generator=generator).tolist()
            keep = (r[0] < s.path_drop_keep[0], r[1] < s.path_drop_keep[1])
            if not any(keep):
                keep = (True, True)

        def rois(boxes: torch.Tensor) -> list[torch.Tensor]:
            out = [self.bev_rois(boxes)]
            if use_img:
                out.append(self.img_rois(boxes, geom))
            return out

        anchor_rois = rois(anchors)
        crops = [roi_align(b, r, s.rpn_crop, spatial_scale=1.0, sampling_ratio=1, aligned=True)
                 for b, r in zip(bottlenecks, anchor_rois)]
        rpn_in = self._fuse(crops, keep).flatten(1)
        rpn_logits = self.rpn_cls(rpn_in)
        rpn_offsets = self.rpn_reg(rpn_in)

        with torch.no_grad():
            off = rpn_offsets.detach().clone()
            off[:, 3:] = off[:, 3:].clamp(-MAX_LOG_SCALE, MAX_LOG_SCALE)
            decoded = apply_anchor_offsets(anchors, off)
            score = torch.softmax(rpn_logits.detach(), dim=1)[:, 1]
            if s.pre_nms_top and len(score) > s.pre_nms_top:
                top = torch.topk(score, s.pre_nms_top).indices
                decoded, score = decoded[top], score[top]
            keep_idx = nms(anchors_to_bev_xyxy(decoded), score, s.rpn_nms_iou)
            limit = s.proposals_train if self.training else s.proposals_test
            proposals = decoded[keep_idx[:limit]]
            if self.training and s.add_gt_to_proposals and gt_anchors is not None and len(gt_anchors):
                proposals = torch.cat([proposals, gt_anchors.to(proposals.dtype)], dim=0)

        prop_rois = rois(proposals)
        crops = [roi_align(f, r, s.roi_crop, spatial_scale=1.0, sampling_ratio=1, aligned=True)
                 for f, r in zip(feats, prop_rois)]
        hidden = self.fc(self._fuse(crops, keep).flatten(1))
        return AvodOutput(rpn_logits, rpn_offsets, proposals, self.cls_head(hidden), self.box_head(hidden),
                          self.ang_head(hidden))
