"""Frozen settings of the 2D detector stage, with the presets ``cpu-small`` and ``paper``.

``cpu-small`` trains on a few hundred frames in minutes on 2 CPU cores: FCOS, images at half width
and height, a pretrained EfficientNet-Lite0 encoder, a 64-channel FPN, 2 convs per head branch,
600 steps of 4 windows of 320 columns (whole images at inference). ``paper`` is sized for a GPU:
FCOS at full resolution, a 256-channel FPN, torchvision's 4-conv heads, 20k steps of 8 images.
The measurements behind the ``cpu-small`` choices are in ``docs/detect2d.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from kitti.settings_record import SettingsRecord

#: Detector architectures (torchvision.models.detection).
ARCHITECTURES: tuple[str, ...] = ("retinanet", "fcos")


@dataclass(frozen=True)
class Detect2DSettings(SettingsRecord):
    """Everything that decides a trained 2D detector or its detections.

    Attributes:
        classes: classes detected, in output-label order (label i <-> ``classes[i]``).
        ignore_classes: label types whose boxes are regions that are neither positive nor negative
            (``DontCare``, and the devkit's neighbour classes ``Van`` / ``Person_sitting``, which
            the evaluator neither rewards nor punishes): an anchor (RetinaNet) or point (FCOS)
            whose centre lies inside one and that is not assigned to an object gets no
            classification loss. Other KITTI types (Truck, Tram, Misc) are background.
        architecture: ``retinanet`` or ``fcos`` (torchvision's models, losses, box coders and NMS).
        encoder: the timm name of the pretrained image encoder (``backbones`` package).
        encoder_weights: ``auto`` (the registry's ImageNet weights), ``none`` (random init), or a
            path to a state dict.
        feature_levels: encoder feature indices fed to the FPN (timm ``out_indices``; index i has
            stride 2**(i+1)).
        extra_levels: extra FPN levels computed from the last one by stride-2 convs (P6, P7).
        fpn_channels: FPN and head channels.
        head_convs: conv layers of each head branch (FCOS only; torchvision's RetinaNet head has 4).
        anchor_base_px: RetinaNet's anchor size (px, in the scaled image) of the first FPN level,
            doubled per level. FCOS ignores it: its point size is each level's stride
            (torchvision's rule: a level takes objects of 4-8x that size).
        anchor_scales: sizes per octave of each level's anchors (RetinaNet: 1, 2^(1/3), 2^(2/3)).
        aspect_ratios: anchor height / width (RetinaNet).
        image_scale: images are resized by this factor (both axes) for training and inference;
            boxes are written at full resolution.
        size_tolerance: an image may differ from the reference size (the first training image)
            by at most this fraction in each axis (KITTI drives differ by ~1.5 %); larger
            differences are refused with the image's name.
        batch_size: images per optimiser step.
        max_steps: optimiser steps.
        learning_rate: peak AdamW learning rate (linear warm-up, then cosine to 0).
        warmup_steps: steps of linear warm-up.
        weight_decay: AdamW weight decay.
        hflip: mirror training images with p = 0.5.
        train_crop_width: > 0: each training image is cut to a random window of this many columns
            (scaled pixels; full height) after the flip, boxes clipped to it (dropped when less
            than half is left); 0 trains on whole images.
        freeze_encoder_bn: keep the encoder's batch-norm statistics fixed (small batches).
        freeze_encoder_stride: the encoder's leading layers whose output stride is at most this
            keep their ImageNet weights (no gradient; ``backbones.freeze_early_layers``): 0 none,
            2 the stem, 4 the stem and the stride-4 blocks (Detectron2's ``FREEZE_AT=2``).
        score_thresh: detections below this score are dropped before NMS.
        nms_thresh: IoU of torchvision's per-class NMS.
        detections_per_img: at most this many detections per image (after NMS).
        topk_candidates: candidates per level before NMS.
        test_scale_factors: inference detects the image at ``image_scale`` times each of these
            (``(1.0,)``: the training scale only). With several, the candidates of every scale
            (the model's own NMS skipped), mapped back to full resolution, are merged by one NMS
            and box voting (``detect2d.infer.detect_image``).
        box_vote_iou: box voting (0 = off): every box kept by the final NMS is replaced by the
            score-weighted mean of the same class's candidate boxes that overlap it by at least
            this IoU (its score is kept). ``detect2d.infer.merge_detections``.
        min_train_height_px: ground-truth boxes lower than this (full-resolution pixels) are
            ignored regions instead of positives.
        checkpoint_every_steps: a resumable checkpoint is written every so many steps.
        seed: seeds initialisation, shuffling and augmentation.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        num_threads: torch CPU threads (0 = torch's default).
    """

    classes: tuple[str, ...] = ("Car", "Pedestrian", "Cyclist")
    ignore_classes: tuple[str, ...] = ("DontCare", "Van", "Person_sitting")
    architecture: str = "fcos"
    encoder: str = "tf_efficientnet_lite0"
    encoder_weights: str = "auto"
    feature_levels: tuple[int, ...] = (2, 3, 4)
    extra_levels: int = 2
    fpn_channels: int = 256
    head_convs: int = 4
    anchor_base_px: float = 32.0
    anchor_scales: tuple[float, ...] = (1.0, 2 ** (1 / 3), 2 ** (2 / 3))
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    image_scale: float = 1.0
    size_tolerance: float = 0.05
    batch_size: int = 8
    max_steps: int = 20_000
    learning_rate: float = 1e-3
    warmup_steps: int = 500
    weight_decay: float = 1e-4
    hflip: bool = True
    train_crop_width: int = 0
    freeze_encoder_bn: bool = False
    freeze_encoder_stride: int = 0
    score_thresh: float = 0.05
    nms_thresh: float = 0.5
    detections_per_img: int = 100
    topk_candidates: int = 1000
    test_scale_factors: tuple[float, ...] = (1.0,)
    box_vote_iou: float = 0.0
    min_train_height_px: float = 0.0
    checkpoint_every_steps: int = 500
    seed: int = 0
    device: str = "auto"
    num_threads: int = 0

    def __post_init__(self) -> None:
        for name in ("classes", "ignore_classes", "feature_levels", "anchor_scales", "aspect_ratios",
                     "test_scale_factors"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not self.classes or len(set(self.classes)) != len(self.classes):
            raise ValueError(f"Detect2DSettings.classes: expected distinct class names, got {self.classes}")
        if set(self.classes) & set(self.ignore_classes):
            raise ValueError("Detect2DSettings: a class cannot be both detected and ignored")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"Detect2DSettings.architecture: expected one of {ARCHITECTURES}, "
                             f"got {self.architecture!r}")
        if not self.feature_levels or list(self.feature_levels) != sorted(set(self.feature_levels)):
            raise ValueError(f"Detect2DSettings.feature_levels: expected increasing indices, "
                             f"got {self.feature_levels}")
        for name in ("fpn_channels", "head_convs", "batch_size", "max_steps", "detections_per_img",
                     "topk_candidates", "checkpoint_every_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"Detect2DSettings.{name}: expected >= 1, got {getattr(self, name)}")
        if self.train_crop_width < 0:
            raise ValueError(f"Detect2DSettings.train_crop_width: expected >= 0, got {self.train_crop_width}")
        if self.freeze_encoder_stride < 0:
            raise ValueError(f"Detect2DSettings.freeze_encoder_stride: expected >= 0, got {self.freeze_encoder_stride}")
        if self.extra_levels not in (0, 1, 2):
            raise ValueError(f"Detect2DSettings.extra_levels: expected 0, 1 or 2, got {self.extra_levels}")
        if not 0.0 < self.image_scale <= 4.0:
            raise ValueError(f"Detect2DSettings.image_scale: expected (0, 4], got {self.image_scale}")
        if not self.test_scale_factors or any(not 0.0 < t <= 4.0 for t in self.test_scale_factors):
            raise ValueError(f"Detect2DSettings.test_scale_factors: expected factors in (0, 4], "
                             f"got {self.test_scale_factors}")
        if not 0.0 <= self.box_vote_iou <= 1.0:
            raise ValueError(f"Detect2DSettings.box_vote_iou: expected [0, 1], got {self.box_vote_iou}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"Detect2DSettings.device: expected auto, cpu or cuda, got {self.device!r}")

    @property
    def num_levels(self) -> int:
        return len(self.feature_levels) + self.extra_levels

    @property
    def inference_scales(self) -> tuple[float, ...]:
        """The image scales detected at inference: ``image_scale`` times ``test_scale_factors``."""
        return tuple(self.image_scale * t for t in self.test_scale_factors)

    def inference_options(self) -> dict:
        """The fields that change detections but not training (the ``detect2d-infer`` key)."""
        return {name: getattr(self, name) for name in INFERENCE_FIELDS}

    def training_key(self) -> "Detect2DSettings":
        """These settings with the inference-only fields and the thread count at their defaults:
        what decides a trained model (the ``detect2d-train`` key)."""
        defaults = Detect2DSettings()
        return self.with_(num_threads=0, **{name: getattr(defaults, name) for name in INFERENCE_FIELDS})


#: Fields used only at inference (post-processing): changing them never retrains.
INFERENCE_FIELDS: tuple[str, ...] = ("score_thresh", "nms_thresh", "detections_per_img", "topk_candidates",
                                     "test_scale_factors", "box_vote_iou")



PRESETS: tuple[str, ...] = ("paper", "cpu-small")


def preset(name: str) -> Detect2DSettings:
    """The named settings preset.

    Args:
        name: ``paper`` (GPU-sized: full resolution, 256-channel FPN, 20k steps of batch 8) or
            ``cpu-small`` (half resolution, 64-channel FPN, 600 steps of 320-column windows:
            minutes on 2 CPU cores).

    >>> preset("cpu-small").image_scale
    0.5
    """
    if name == "paper":
        return Detect2DSettings()
    if name == "cpu-small":
        return Detect2DSettings(
            architecture="fcos", head_convs=2, feature_levels=(1, 2, 3, 4), freeze_encoder_stride=4,
            fpn_channels=64, image_scale=0.5, anchor_base_px=8.0, batch_size=4, max_steps=600,
            train_crop_width=320,
            learning_rate=1e-3, warmup_steps=50, freeze_encoder_bn=True,
            checkpoint_every_steps=50, num_threads=2,
        )
    raise ValueError(f"unknown preset {name!r} (expected one of {', '.join(PRESETS)})")
