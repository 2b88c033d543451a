"""Frozen settings of the Frustum-PointNet v1 stage, with the presets ``paper`` and ``cpu-small``.

``paper`` is the released configuration (``scripts/command_train_v1.sh`` of charlesq34/frustum-
pointnets): Car, Pedestrian and Cyclist, 1024 points, batch 32, 201 epochs, Adam 1e-3 halved every
800k samples, batch-norm momentum 0.5 halved every 800k samples (floor 0.01), ×5 jittered ground-
truth 2D boxes per object and epoch. ``cpu-small`` is the same code scaled to train on ~300 frames
in about 2-3 minutes on 2 CPU cores: **Car only**, 256 points, channel widths halved, batch 32,
640 optimiser steps (20 480 samples) whatever the number of frustums.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kitti.classes import MEAN_SIZE_LWH
from kitti.settings_record import SettingsRecord

#: The classes the network's one-hot vector encodes, in F-PointNet's order (``g_type2onehotclass``).
ONEHOT_CLASSES: tuple[str, ...] = ("Car", "Pedestrian", "Cyclist")


@dataclass(frozen=True)
class FPointNetSettings(SettingsRecord):
    """Everything that decides a trained F-PointNet or its results.

    Attributes:
        classes: object classes to train and detect (subset of ``ONEHOT_CLASSES``).
        num_points: points drawn (with replacement) from each frustum, the network input.
        num_object_points: points gathered from the predicted mask for the box network.
        width: multiplier of every hidden channel count (1.0 = the original layer sizes).
        dropout: dropout probability before the last layer of the segmentation head (0.5; the
            v1 box head has none).
        batch_size: frustums per optimiser step.
        epochs: passes over the (augmented) training frustums (an upper bound when
            ``max_steps`` is set).
        max_steps: stop after this many optimiser steps (0 = no limit). Bounds the training time
            whatever the number of frustums; the schedule below counts samples either way.
        learning_rate: initial Adam learning rate.
        lr_decay_rate: factor applied every ``lr_decay_samples`` training samples (staircase).
        lr_decay_samples: samples between learning-rate decays (0 = constant learning rate).
        bn_momentum_init: PyTorch batch-norm momentum at the start (TF decay 0.5 -> momentum 0.5).
        bn_decay_rate: factor applied to the momentum every ``bn_decay_samples`` samples.
        bn_decay_samples: samples between momentum decays (0 = constant momentum).
        bn_momentum_min: momentum floor (TF's decay clip at 0.99).
        augment_x: jittered copies of each training object per epoch (original augmentX).
        box2d_shift_ratio: ground-truth 2D-box jitter: centre ±r·(w, h), sizes ×U(1-r, 1+r).
        random_flip: mirror frustums (x -> -x, heading -> π - heading) with p = 0.5 in training.
        random_shift: the original depth shift augmentation (see :func:`frustum.shift_frustum`).
        min_box_height_px: 2D boxes lower than this are not used for training (original: 25).
        min_points_detection: frustums of 2D detections with fewer points are skipped (5).
        fov_min_x_velo_m: points must lie this far in front of the sensor (velodyne x, 2.0 m).
        cache_points: at most this many points are kept per stored training frustum (a uniform
            random subsample; pseudo-LiDAR frustums are ~10x denser than LiDAR).
        box_loss_weight: weight of all box terms against the segmentation loss (1.0).
        corner_loss_weight: weight of the corner loss inside the box terms (10.0).
        checkpoint_every_epochs: a resumable checkpoint is written every so many epochs.
        holdout_fraction: share of the training frames held out to measure segmentation accuracy
            and box IoU after training (0 = measure on the training frames, labelled so). The
            ``paper`` preset holds nothing out, as the original trains on all of train; the
            ``cpu-small`` preset holds out 10 % to report a held-out accuracy.
        seed: seeds every random draw (jitter, sampling, init, shuffling).
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        num_threads: torch CPU threads (0 = leave torch's default).
    """

    classes: tuple[str, ...] = ONEHOT_CLASSES
    num_points: int = 1024
    num_object_points: int = 512
    width: float = 1.0
    dropout: float = 0.5
    batch_size: int = 32
    epochs: int = 201
    max_steps: int = 0
    learning_rate: float = 1e-3
    lr_decay_rate: float = 0.5
    lr_decay_samples: int = 800_000
    bn_momentum_init: float = 0.5
    bn_decay_rate: float = 0.5
    bn_decay_samples: int = 800_000
    bn_momentum_min: float = 0.01
    augment_x: int = 5
    box2d_shift_ratio: float = 0.1
    random_flip: bool = True
    random_shift: bool = True
    min_box_height_px: float = 25.0
    min_points_detection: int = 5
    fov_min_x_velo_m: float = 2.0
    cache_points: int = 4096
    box_loss_weight: float = 1.0
    corner_loss_weight: float = 10.0
    checkpoint_every_epochs: int = 10
    holdout_fraction: float = 0.0
    seed: int = 0
    device: str = "auto"
    num_threads: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        bad = [c for c in self.classes if c not in ONEHOT_CLASSES]
        if bad or not self.classes:
            raise ValueError(f"FPointNetSettings.classes: expected a non-empty subset of "
                             f"{ONEHOT_CLASSES}, got {self.classes}")
        for c in self.classes:
            if c not in MEAN_SIZE_LWH:  # pragma: no cover - kitti.classes holds all three
                raise ValueError(f"no mean size for class {c!r}")
        positive = ("num_points", "num_object_points", "batch_size", "augment_x", "cache_points",
                    "checkpoint_every_epochs")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"FPointNetSettings.{name}: expected >= 1, got {getattr(self, name)}")
        if self.max_steps < 0:
            raise ValueError(f"FPointNetSettings.max_steps: expected >= 0, got {self.max_steps}")
        if self.epochs < 0:
            raise ValueError(f"FPointNetSettings.epochs: expected >= 0, got {self.epochs}")
        if self.width <= 0:
            raise ValueError(f"FPointNetSettings.width: expected > 0, got {self.width}")
        if not 0.0 <= self.holdout_fraction < 1.0:
            raise ValueError(f"FPointNetSettings.holdout_fraction: expected [0, 1), got "
                             f"{self.holdout_fraction}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"FPointNetSettings.device: expected auto, cpu or cuda, got {self.device!r}")

    def inference_key(self) -> dict[str, Any]:
        """The fields inference reads (:data:`INFERENCE_FIELDS`; the network's shape and weights
        come from the model file, an input of its own): what a detect-infer cache key records,
        so that training-only fields (epochs, learning rate, ...) do not split its cache."""
        return {name: getattr(self, name) for name in INFERENCE_FIELDS}



#: The settings :func:`detection.frustum_pointnet.infer.infer_fpointnet` reads.
INFERENCE_FIELDS = ("classes", "num_points", "min_points_detection", "min_box_height_px", "fov_min_x_velo_m",
                    "seed", "device")

PRESETS: tuple[str, ...] = ("paper", "cpu-small")


def preset(name: str) -> FPointNetSettings:
    """The named settings preset.

    Args:
        name: ``paper`` (the released v1 configuration) or ``cpu-small`` (Car only, scaled to train
            on ~300 frames in ~3 minutes on 2 CPU cores).

    >>> preset("cpu-small").classes
    ('Car',)
    """
    if name == "paper":
        return FPointNetSettings()
    if name == "cpu-small":
        return FPointNetSettings(
            classes=("Car",), num_points=256, num_object_points=128, width=0.5, batch_size=32,
            epochs=200, max_steps=640, learning_rate=2e-3, lr_decay_rate=0.5, lr_decay_samples=8_000,
            bn_momentum_init=0.5, bn_decay_rate=0.5, bn_decay_samples=8_000, augment_x=1,
            cache_points=1024, checkpoint_every_epochs=4, holdout_fraction=0.1, num_threads=2,
        )
    raise ValueError(f"unknown preset {name!r} (expected one of {', '.join(PRESETS)})")
