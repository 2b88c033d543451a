"""The 2D detector: torchvision's RetinaNet or FCOS on an FPN over a pretrained timm encoder.

Everything that torchvision has is torchvision's: the FPN (``torchvision.ops.FeaturePyramidNetwork``
with ``LastLevelP6P7``), anchors (``AnchorGenerator``), matchers, box coders, heads, losses (focal,
L1 / GIoU, centre-ness) and per-class NMS (``batched_nms`` in ``postprocess_detections``). This
module adds only

* :class:`EncoderFPN`: a timm ``features_only`` encoder feeding the FPN (optionally with frozen
  batch-norm statistics);
* **ignore regions** (``DontCare`` and the ``ignore_classes``): a training target may carry
  ``ignore_boxes`` (K, 4); an anchor (RetinaNet) or point (FCOS) whose centre lies inside one and
  that is not assigned to an object gets no classification loss. RetinaNet marks those anchors
  ``Matcher.BETWEEN_THRESHOLDS``, which torchvision's loss already skips; for FCOS, whose loss has
  no ignore state, their class logits are replaced by a constant -30 without gradient, so their
  focal loss is ~1e-26 and teaches nothing;
* a transform that does not resize: images arrive already scaled by ``image_scale``
  (:mod:`detect2d.data`), so the boxes of a target and of a detection are in that image's pixels.

Box convention: ``(x1, y1, x2, y2)`` image pixels, x right, y down; labels are 0-based indices
into ``settings.classes``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn
from torchvision.models.detection import FCOS, RetinaNet
from torchvision.models.detection._utils import Matcher
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.fcos import FCOSHead
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import FeaturePyramidNetwork, box_iou
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

import backbones
from detect2d.settings import Detect2DSettings

#: Logit given to ignored FCOS points (sigmoid focal loss with target 0: ~1e-26, no gradient).
IGNORED_LOGIT = -30.0


def create_encoder(name: str, weights: str, out_indices: tuple[int, ...]) -> nn.Module:
    """A timm ``features_only`` encoder with its ImageNet weights (``backbones``; never downloads)."""
    return backbones.create_encoder(name, weights=weights, features_only=True, out_indices=out_indices)


class EncoderFPN(nn.Module):
    """A timm encoder followed by torchvision's FPN; ``out_channels`` as torchvision expects.

    Args:
        encoder: a timm ``features_only`` model (``feature_info.channels()`` per output).
        out_channels: FPN channels.
        extra_levels: 0, 1 (max-pool P6) or 2 (P6, P7 by stride-2 convs, RetinaNet's).
        freeze_bn: keep the encoder's batch-norm layers in eval mode (running statistics fixed;
            their affine parameters still train).
    """

    def __init__(self, encoder: nn.Module, out_channels: int, extra_levels: int, freeze_bn: bool) -> None:
        super().__init__()
        self.encoder = encoder
        channels = list(encoder.feature_info.channels())
        extra = {0: None, 1: LastLevelMaxPool(), 2: LastLevelP6P7(out_channels, out_channels)}[extra_levels]
        self.fpn = FeaturePyramidNetwork(channels, out_channels, extra_blocks=extra)
        self.out_channels = out_channels
        self.freeze_bn = freeze_bn

    def train(self, mode: bool = True) -> "EncoderFPN":
        super().train(mode)
        if self.freeze_bn:
            for m in self.encoder.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def forward(self, x: Tensor) -> "OrderedDict[str, Tensor]":
        feats = self.encoder(x)
        return self.fpn(OrderedDict((str(i), f) for i, f in enumerate(feats)))


class _NoResizeTransform(GeneralizedRCNNTransform):
    """torchvision's normalise-and-batch transform without its resize (images come scaled)."""

    def resize(self, image: Tensor, target: dict[str, Tensor] | None = None):
        return image, target


def _centres_inside(anchors: Tensor, boxes: Tensor) -> Tensor:
    """(A,) bool: the anchor's centre lies inside at least one of ``boxes`` (K, 4)."""
    if boxes.numel() == 0:
        return torch.zeros(anchors.shape[0], dtype=torch.bool, device=anchors.device)
    c = (anchors[:, :2] + anchors[:, 2:]) / 2
    inside = ((c[:, None, 0] >= boxes[None, :, 0]) & (c[:, None, 0] <= boxes[None, :, 2])
              & (c[:, None, 1] >= boxes[None, :, 1]) & (c[:, None, 1] <= boxes[None, :, 3]))
    return inside.any(dim=1)


class IgnoreRegionRetinaNet(RetinaNet):
    """torchvision's RetinaNet whose unmatched anchors inside ``ignore_boxes`` are ignored."""

    def compute_loss(self, targets, head_outputs, anchors):
        matched_idxs = []
        for anchors_per_image, t in zip(anchors, targets):
            if t["boxes"].numel() == 0:
                m = torch.full((anchors_per_image.size(0),), Matcher.BELOW_LOW_THRESHOLD,
                               dtype=torch.int64, device=anchors_per_image.device)
            else:
                m = self.proposal_matcher(box_iou(t["boxes"], anchors_per_image))
            ignore = t.get("ignore_boxes")
            if ignore is not None:
                drop = (m == Matcher.BELOW_LOW_THRESHOLD) & _centres_inside(anchors_per_image, ignore)
                m = torch.where(drop, torch.full_like(m, Matcher.BETWEEN_THRESHOLDS), m)
            matched_idxs.append(m)
        return self.head.compute_loss(targets, head_outputs, anchors, matched_idxs)


class IgnoreRegionFCOS(FCOS):
    """torchvision's FCOS whose points inside ``ignore_boxes`` (and in no object box) get no
    classification loss."""

    def compute_loss(self, targets, head_outputs, anchors, num_anchors_per_level):
        masks = []
        for anchors_per_image, t in zip(anchors, targets):
            ignore = t.get("ignore_boxes")
            if ignore is None:
                masks.append(torch.zeros(anchors_per_image.shape[0], dtype=torch.bool,
                                          device=anchors_per_image.device))
            else:
                masks.append(_centres_inside(anchors_per_image, ignore)
                             & ~_centres_inside(anchors_per_image, t["boxes"]))
        mask = torch.stack(masks)[:, :, None]
        if bool(mask.any()):
            logits = head_outputs["cls_logits"]
            head_outputs = dict(head_outputs)
            head_outputs["cls_logits"] = torch.where(mask, logits.new_tensor(IGNORED_LOGIT), logits)
        return super().compute_loss(targets, head_outputs, anchors, num_anchors_per_level)


def level_strides(settings: Detect2DSettings) -> tuple[int, ...]:
    """Stride (px of the scaled image) of every FPN level, finest first."""
    strides = [2 ** (i + 1) for i in settings.feature_levels]
    strides += [strides[-1] * 2 ** (k + 1) for k in range(settings.extra_levels)]
    return tuple(strides)


def build_detector(settings: Detect2DSettings, *, encoder: nn.Module | None = None) -> nn.Module:
    """The detector of ``settings`` (encoder weights as ``settings.encoder_weights`` says).

    Args:
        settings: the stage settings.
        encoder: an encoder to use instead of creating one (tests, weight loading).

    Returns:
        An :class:`IgnoreRegionRetinaNet` or :class:`IgnoreRegionFCOS`; in eval mode it maps a
        list of (3, H, W) float images in [0, 1] to ``[{"boxes", "scores", "labels"}]``.
    """
    if encoder is None:
        encoder = create_encoder(settings.encoder, settings.encoder_weights, settings.feature_levels)
    backbones.freeze_early_layers(encoder, settings.freeze_encoder_stride)
    backbone = EncoderFPN(encoder, settings.fpn_channels, settings.extra_levels, settings.freeze_encoder_bn)
    mean, std = backbones.normalisation(settings.encoder)
    n_cls = len(settings.classes)
    n_lv = settings.num_levels
    common = dict(score_thresh=settings.score_thresh, nms_thresh=settings.nms_thresh,
                  detections_per_img=settings.detections_per_img, topk_candidates=settings.topk_candidates)
    if settings.architecture == "retinanet":
        sizes = tuple(tuple(settings.anchor_base_px * 2 ** i * s for s in settings.anchor_scales)
                      for i in range(n_lv))
        anchors = AnchorGenerator(sizes, (settings.aspect_ratios,) * n_lv)
        head = RetinaNetHead(backbone.out_channels, anchors.num_anchors_per_location()[0], n_cls)
        model = IgnoreRegionRetinaNet(backbone, n_cls, anchor_generator=anchors, head=head, **common)
    else:
        # FCOS: one point per location, its "anchor" size the level's stride (torchvision's rule:
        # a level takes objects whose largest side-distance lies in [4, 8] x that size)
        anchors = AnchorGenerator(tuple((float(s),) for s in level_strides(settings)), ((1.0,),) * n_lv)
        head = FCOSHead(backbone.out_channels, 1, n_cls, num_convs=settings.head_convs)
        model = IgnoreRegionFCOS(backbone, n_cls, anchor_generator=anchors, head=head, **common)
    model.transform = _NoResizeTransform(1, 1, list(mean), list(std), size_divisible=32)
    return model
