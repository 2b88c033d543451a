"""Frozen settings of the AVOD stage, with the presets ``paper`` and ``cpu-small``.

``paper`` is ``pyramid_cars_with_aug_example`` of kujason/avod as the pseudo-LiDAR paper ran it
(Car; 0.1 m BEV cells over x [-40, 40], z [0, 70]; 5 height slices + density; both views; VGG
[2x32, 2x64, 3x128, 3x256] + FPN decoder to 32 channels; RPN 3x3 crops, 2x256, NMS 0.8, 1024 /
300 proposals; second stage 7x7 crops, 3x2048 FC; Adam 1e-4 x0.8 every 30k steps, 120k steps,
flip + PCA jitter). ``cpu-small`` trains Car on the embedded benchmark in about 20 minutes on 2
loaded CPU cores; its choices (a smaller area that still holds every car the moderate and hard
difficulties count, 0.25 m cells, channels /4, BEV view only, 256-unit FC layers, fewer proposals,
a pre-NMS top-k, one torch thread, 2000 steps) are the measured ones of docs/avod.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from kitti.settings_record import SettingsRecord


@dataclass(frozen=True)
class AvodSettings(SettingsRecord):
    """Everything that decides a trained AVOD network or its results.

    Attributes:
        class_name: the one class trained and detected (AVOD's car config: ``Car``).
        x_range_m, z_range_m: BEV area in rect x and z (metres); points outside are dropped.
        cell_m: BEV cell size (metres).
        slice_bottom_m: height above the ground plane of the lowest slice's bottom (m).
        slice_height_m: thickness of each height slice (m).
        num_slices: height slices (the BEV has ``num_slices + 1`` channels with density).
        density_log_base: density channel = ``min(1, log(N + 1) / log(base))``.
        image_hw: the resized image (H, W) of the image view.
        use_image: run the image view (``False``: BEV only, the smoke configuration).
        channels: encoder widths of the four VGG blocks (2, 2, 3, 3 convolutions).
        decoder_channels: output channels of the FPN decoder (full resolution).
        anchor_stride_m: anchor spacing in x and z on the ground plane.
        anchor_sizes: clusters per class from k-means on the train labels (the sizes are fitted).
        anchor_min_points: anchors whose BEV footprint holds fewer points are dropped.
        rpn_crop: crop-and-resize size of the RPN (3 -> 3x3).
        rpn_fc: width of the two RPN layers.
        rpn_pos_iou, rpn_neg_iou: RPN targets: BEV IoU >= pos is positive, < neg negative.
        rpn_batch: anchors sampled per frame for the RPN loss (at most half positive).
        rpn_nms_iou: BEV NMS threshold of the proposals.
        pre_nms_top: only the best-scoring anchors enter the proposal NMS (0 = all, the
            original; the CPU NMS is quadratic in its input).
        proposals_train, proposals_test: proposals kept after NMS.
        roi_crop: second-stage crop size (7 -> 7x7).
        fc_layers: widths of the second stage's fully connected layers.
        dropout: dropout of the RPN and second-stage layers.
        path_drop_keep: (BEV, image) keep probabilities of path drop in training.
        roi_pos_iou, roi_neg_iou: second-stage targets (BEV IoU of proposal and ground truth).
        roi_batch: proposals sampled per frame for the second-stage loss (at most half positive).
        add_gt_to_proposals: in training, add the ground-truth boxes to the proposals (gives the
            second stage positives before the RPN has learnt; not in the original).
        final_nms_iou: BEV NMS threshold of the final boxes.
        max_detections: at most this many boxes per frame.
        min_score: boxes scoring below are not written.
        label_smoothing: of the classification losses.
        reg_weight: weight of the box regression losses (RPN offsets, 4-corner offsets).
        ang_weight: weight of the orientation-vector loss.
        learning_rate, lr_decay_rate, lr_decay_steps: Adam, staircase exponential decay.
        weight_decay: L2 on the weights (AVOD: 5e-4 on convolutions, 5e-3 on FC; one value here).
        steps: optimiser steps (one frame each: batch 1).
        flip: mirror a frame (x -> -x) with p = 0.5 in training.
        pca_jitter: AlexNet-style colour jitter of the image with p = 0.5 in training.
        checkpoint_every: steps between resumable checkpoints.
        ransac_seed_offset: the RANSAC random state is ``seed + offset`` (fits are reproducible).
        fov_min_x_velo_m: points must lie this far in front of the sensor (velodyne x).
        seed: seeds every random draw.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        num_threads: torch CPU threads (0 = torch's default).
    """

    class_name: str = "Car"
    x_range_m: tuple[float, float] = (-40.0, 40.0)
    z_range_m: tuple[float, float] = (0.0, 70.0)
    cell_m: float = 0.1
    slice_bottom_m: float = -0.2
    slice_height_m: float = 0.5
    num_slices: int = 5
    density_log_base: float = 16.0
    image_hw: tuple[int, int] = (360, 1200)
    use_image: bool = True
    channels: tuple[int, int, int, int] = (32, 64, 128, 256)
    decoder_channels: int = 32
    anchor_stride_m: float = 0.5
    anchor_sizes: int = 2
    anchor_min_points: int = 1
    rpn_crop: int = 3
    rpn_fc: int = 256
    rpn_pos_iou: float = 0.5
    rpn_neg_iou: float = 0.3
    rpn_batch: int = 512
    rpn_nms_iou: float = 0.8
    pre_nms_top: int = 0
    proposals_train: int = 1024
    proposals_test: int = 300
    roi_crop: int = 7
    fc_layers: tuple[int, ...] = (2048, 2048, 2048)
    dropout: float = 0.5
    path_drop_keep: tuple[float, float] = (0.9, 0.9)
    roi_pos_iou: float = 0.65
    roi_neg_iou: float = 0.55
    roi_batch: int = 1024
    add_gt_to_proposals: bool = False
    final_nms_iou: float = 0.01
    max_detections: int = 100
    min_score: float = 0.1
    label_smoothing: float = 0.001
    reg_weight: float = 5.0
    ang_weight: float = 1.0
    learning_rate: float = 1e-4
    lr_decay_rate: float = 0.8
    lr_decay_steps: int = 30_000
    weight_decay: float = 5e-4
    steps: int = 120_000
    flip: bool = True
    pca_jitter: bool = True
    checkpoint_every: int = 1000
    ransac_seed_offset: int = 0
    fov_min_x_velo_m: float = 2.0
    seed: int = 0
    device: str = "auto"
    num_threads: int = 0

    def __post_init__(self) -> None:
        for name in ("x_range_m", "z_range_m", "image_hw", "channels", "fc_layers", "path_drop_keep"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("x_range_m", "z_range_m"):
            lo, hi = getattr(self, name)
            if not hi > lo:
                raise ValueError(f"AvodSettings.{name}: expected (lo, hi) with hi > lo, got {(lo, hi)}")
        positive_int = ("num_slices", "decoder_channels", "anchor_sizes", "rpn_crop", "rpn_fc",
                        "rpn_batch", "proposals_train", "proposals_test", "roi_crop", "roi_batch",
                        "max_detections", "steps", "checkpoint_every", "lr_decay_steps")
        for name in positive_int:
            if getattr(self, name) < 1:
                raise ValueError(f"AvodSettings.{name}: expected >= 1, got {getattr(self, name)}")
        for name in ("cell_m", "slice_height_m", "anchor_stride_m", "learning_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"AvodSettings.{name}: expected > 0, got {getattr(self, name)}")
        if len(self.channels) != 4 or min(self.channels) < 1:
            raise ValueError(f"AvodSettings.channels: expected 4 positive widths, got {self.channels}")
        if len(self.image_hw) != 2 or min(self.image_hw) < 8:
            raise ValueError(f"AvodSettings.image_hw: expected (H, W) >= 8, got {self.image_hw}")
        if not self.fc_layers or min(self.fc_layers) < 1:
            raise ValueError(f"AvodSettings.fc_layers: expected positive widths, got {self.fc_layers}")
        if not (0 <= self.rpn_neg_iou <= self.rpn_pos_iou <= 1 and 0 <= self.roi_neg_iou <= self.roi_pos_iou <= 1):
            raise ValueError("AvodSettings: expected 0 <= neg_iou <= pos_iou <= 1 for the RPN and the second stage")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"AvodSettings.device: expected auto, cpu or cuda, got {self.device!r}")

    @property
    def bev_shape(self) -> tuple[int, int]:
        """(rows, cols) of the BEV grid: rows along z (far first), columns along x."""
        rows = int(round((self.z_range_m[1] - self.z_range_m[0]) / self.cell_m))
        cols = int(round((self.x_range_m[1] - self.x_range_m[0]) / self.cell_m))
        return rows, cols



PRESETS: tuple[str, ...] = ("paper", "cpu-small")


def preset(name: str) -> AvodSettings:
    """The named settings preset.

    Args:
        name: ``paper`` (AVOD-FPN as the pseudo-LiDAR paper ran it) or ``cpu-small``.

    >>> preset("cpu-small").bev_shape
    (208, 256)
    """
    if name == "paper":
        return AvodSettings()
    if name == "cpu-small":
        return AvodSettings(
            x_range_m=(-32.0, 32.0), z_range_m=(0.0, 52.0), cell_m=0.25, use_image=False,
            channels=(8, 16, 32, 64), decoder_channels=16, rpn_fc=64, pre_nms_top=2000,
            proposals_train=256, proposals_test=100, fc_layers=(256, 256, 256), roi_batch=256,
            add_gt_to_proposals=True, learning_rate=1e-3, lr_decay_steps=400, steps=2000,
            pca_jitter=False, checkpoint_every=250, num_threads=1,
        )
    raise ValueError(f"unknown preset {name!r} (expected one of {', '.join(PRESETS)})")
