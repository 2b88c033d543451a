"""Helpers of the detect2d tests: a tiny KITTI-format root of drawn boxes and a tiny encoder, so
detect2d trains in seconds.

Frames are 128x384 images of a smooth grey background with filled rectangles: "cars" (dark blue,
wide, a light window band) and "pedestrians" (red, tall). Their label_2 lines are exact, easy
(height > 40 px, not occluded or truncated). The calibration is a plain pinhole whose principal
point is the image centre.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

H, W = 128, 384
CALIB = ("P0: {p}\nP1: {p}\nP2: {p}\nP3: {p}\nR0_rect: 1 0 0 0 1 0 0 0 1\n"
         "Tr_velo_to_cam: 0 -1 0 0 0 0 -1 0 1 0 0 0\nTr_imu_to_velo: 1 0 0 0 0 1 0 0 0 0 1 0\n")


def calib_text(w: int = W, h: int = H) -> str:
    return CALIB.format(p=f"300 0 {w / 2} 0 0 300 {h / 2} 0 0 0 1 0")


def label_line(kind: str, box, score: float | None = None) -> str:
    x1, y1, x2, y2 = box
    line = f"{kind} 0.00 0 0.00 {x1:.2f} {y1:.2f} {x2:.2f} {y2:.2f} 1.50 1.60 3.90 0.00 1.50 20.00 0.00"
    return line if score is None else f"{line} {score:.4f}"


def draw_frame(rng: np.random.Generator, objects: list[tuple[str, tuple[int, int, int, int]]],
               h: int = H, w: int = W) -> np.ndarray:
    """RGB uint8 image: smooth noise background, the objects drawn as filled rectangles."""
    base = cv2.resize(rng.uniform(90, 150, (h // 16, w // 16, 3)).astype(np.float32), (w, h))
    img = np.clip(base + rng.normal(0, 4, (h, w, 3)), 0, 255).astype(np.uint8)
    for kind, (x1, y1, x2, y2) in objects:
        if kind == "Car":
            img[y1:y2, x1:x2] = (30, 40, 160)
            img[y1 + (y2 - y1) // 5:y1 + (y2 - y1) // 2, x1 + 4:x2 - 4] = (200, 220, 240)
        elif kind == "Pedestrian":
            img[y1:y2, x1:x2] = (190, 30, 30)
        else:  # anything else: a green blob
            img[y1:y2, x1:x2] = (40, 170, 60)
    return img


#: frame id -> objects (type, box x1 y1 x2 y2); every box is "easy".
TINY_SCENES: dict[str, list[tuple[str, tuple[int, int, int, int]]]] = {
    "000000": [("Car", (40, 50, 120, 100)), ("Pedestrian", (250, 40, 268, 96))],
    "000001": [("Car", (200, 60, 296, 112)), ("Car", (20, 40, 90, 86))],
    "000002": [("Pedestrian", (60, 30, 80, 90)), ("Car", (150, 56, 240, 110))],
    "000003": [("Car", (280, 44, 360, 100)), ("Pedestrian", (120, 50, 138, 104))],
}


def write_root(root: Path, scenes=TINY_SCENES, *, extra_lines: dict[str, list[str]] | None = None,
               sizes: dict[str, tuple[int, int]] | None = None) -> Path:
    """Write a KITTI-format root (image_2, label_2, calib, ImageSets/train|val = every frame)."""
    rng = np.random.default_rng(0)
    for kind in ("image_2", "label_2", "calib"):
        (root / "training" / kind).mkdir(parents=True, exist_ok=True)
    for f, objs in scenes.items():
        h, w = (sizes or {}).get(f, (H, W))
        img = draw_frame(rng, objs, h, w)
        cv2.imwrite(str(root / "training" / "image_2" / f"{f}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        lines = [label_line(k, b) for k, b in objs] + list((extra_lines or {}).get(f, []))
        (root / "training" / "label_2" / f"{f}.txt").write_text("".join(x + "\n" for x in lines))
        (root / "training" / "calib" / f"{f}.txt").write_text(calib_text(w, h))
    (root / "ImageSets").mkdir(exist_ok=True)
    ids = "".join(f + "\n" for f in scenes)
    (root / "ImageSets" / "train.txt").write_text(ids)
    (root / "ImageSets" / "val.txt").write_text(ids)
    return root


class _FeatureInfo:
    def __init__(self, channels: list[int]) -> None:
        self._channels = channels

    def channels(self) -> list[int]:
        return list(self._channels)


class TinyEncoder(nn.Module):
    """Three feature maps at strides 8, 16, 32 (like timm ``out_indices=(2, 3, 4)``)."""

    def __init__(self) -> None:
        super().__init__()

        def block(cin: int, cout: int, stride: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.ReLU())

        self.stem = nn.Sequential(block(3, 16, 2), block(16, 16, 2), block(16, 24, 2))
        self.s16 = block(24, 32, 2)
        self.s32 = block(32, 48, 2)
        self.feature_info = _FeatureInfo([24, 32, 48])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        a = self.stem(x)
        b = self.s16(a)
        return [a, b, self.s32(b)]


def tiny_settings(**changes):
    """cpu-small scaled down to the tiny root: full scale, no P6/P7, a few steps."""
    from detect2d.settings import preset

    base = dict(architecture="retinanet", image_scale=1.0, extra_levels=0, anchor_base_px=32.0, fpn_channels=32,
                batch_size=2, max_steps=6, warmup_steps=2, checkpoint_every_steps=3,
                encoder_weights="none", num_threads=1, device="cpu", classes=("Car", "Pedestrian"),
                freeze_encoder_bn=False, feature_levels=(2, 3, 4), freeze_encoder_stride=0,
                test_scale_factors=(1.0,), box_vote_iou=0.0)
    base.update(changes)
    return preset("cpu-small").with_(**base)
