"""Fixtures of the depth tests: tiny settings (timm's 0.4 M-parameter ``test_resnet`` encoder) and a
small synthetic KITTI-format root whose images encode depth, so that a model can learn it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from depth.settings import DepthSettings, preset
from kitti import Calibration, Object3d, write_depth_png, write_label_file
from kitti.fileio import atomic_write_bytes, atomic_write_text

TINY_HW = (48, 160)


def tiny_settings(variant: str = "foresee", **overrides) -> DepthSettings:
    """cpu-small shrunk to a test-sized network and crop."""
    base = dict(encoder="test_resnet", encoder_weights="none", neck_channels=16, lateral_channels=(8, 8, 8, 8),
                decoder_channels=(16, 8, 8, 8, 8), crop_hw=(32, 64), resize_factor=1.0,
                scales=(1.0,), batch_size=2, epochs=100, max_steps=3, lr=2e-3, seed=0)
    base.update(overrides)
    return preset("cpu-small", variant, **base)


def _calib() -> Calibration:
    h, w = TINY_HW
    P2 = np.array([[100.0, 0, w / 2, 0], [0, 100.0, h / 2, 0], [0, 0, 1, 0]])
    Tr = np.array([[0.0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0]])
    return Calibration(P2=P2, R0_rect=np.eye(3), Tr_velo_to_cam=Tr)


def _label(x1: float, y1: float, x2: float, y2: float, kind: str = "Car") -> Object3d:
    return Object3d(type=kind, truncated=0.0, occluded=0, alpha=0.0, x1=x1, y1=y1, x2=x2, y2=y2,
                    h=1.5, w=1.6, l=3.9, x=0.0, y=1.6, z=10.0, ry=0.0)


def write_synthetic_root(root: Path, n_frames: int = 6, seed: int = 0) -> tuple[str, ...]:
    """A KITTI-format root of ``n_frames`` 48x160 frames: a road whose depth falls with the row, one
    car box at constant depth; the image's grey level encodes log depth."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = TINY_HW
    ids = tuple(f"{i:06d}" for i in range(n_frames))
    calib_text = _calib().to_text()
    for fid in ids:
        rows = np.arange(h, dtype=np.float64)[:, None]
        depth = np.broadcast_to(60.0 / (1.0 + rows / 4.0) + 2.0, (h, w)).copy()
        x1, y1 = int(rng.integers(10, 100)), int(rng.integers(8, 24))
        x2, y2 = x1 + int(rng.integers(30, 50)), y1 + int(rng.integers(12, 20))
        depth[y1:y2 + 1, x1:x2 + 1] = float(rng.uniform(5.0, 30.0))
        depth[:4] = 0.0                                      # no ground truth at the top
        grey = np.where(depth > 0, 255 * np.log10(np.maximum(depth, 1.0)) / np.log10(80.0), 0)
        image = np.repeat(grey[:, :, None], 3, axis=2).astype(np.uint8)
        ok, png = cv2.imencode(".png", image)
        atomic_write_bytes(root / "training" / "image_2" / f"{fid}.png", png.tobytes())
        write_depth_png(root / "training" / "depth_2" / f"{fid}.png", depth)
        atomic_write_text(root / "training" / "calib" / f"{fid}.txt", calib_text)
        write_label_file(root / "training" / "label_2" / f"{fid}.txt", [_label(x1, y1, x2, y2)])
    half = max(1, n_frames // 2)
    atomic_write_text(root / "ImageSets" / "train.txt", "".join(f"{f}\n" for f in ids[:half]))
    atomic_write_text(root / "ImageSets" / "val.txt", "".join(f"{f}\n" for f in ids[half:]))
    return ids
