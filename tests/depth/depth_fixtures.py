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


def object_scene():
    """A 120x240 frame, f = 100 px, two objects seen face-on (ry = 0: the box's -z face at z − w/2),
    each a pixel rectangle of constant ground-truth depth on that face, inside a 2D box 3 px larger
    whose border shows the background (60 m); an occluder (3 m) covers part of the first object,
    a DontCare and a 6-pixel Car are left out."""
    from kitti import Calibration, Object3d

    h, w, f = 120, 240, 100.0
    calib = Calibration(P2=np.array([[f, 0, w / 2, 0], [0, f, h / 2, 0], [0, 0, 1, 0]]), R0_rect=np.eye(3),
                        Tr_velo_to_cam=np.array([[0.0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0]]))
    gt = np.full((h, w), 60.0, np.float32)
    gt[:5] = 0.0                                        # no ground truth at the top

    def obj(kind, x, z, hh, ww, ll, rect):
        r0, r1, c0, c1 = rect                           # the object's pixels: rows r0:r1, cols c0:c1
        return Object3d(type=kind, truncated=0.0, occluded=0, alpha=0.0, x1=c0 - 3, y1=r0 - 3, x2=c1 + 2,
                        y2=r1 + 2, h=hh, w=ww, l=ll, x=x, y=1.5, z=z, ry=0.0)

    # pixel (u, v) at depth d lands at x = (u − 120)·d/100, y = (v − 60)·d/100
    car_a = obj("Car", 0.0, 8.0, 2.0, 1.6, 4.0, (60, 75, 100, 140))     # y ∈ [0, 1.01], x ∈ [−1.44, 1.37]
    gt[60:75, 100:140] = 8.0 - 0.8
    gt[60:66, 100:110] = 3.0                                             # occluder in front: not car A
    ped_b = obj("Pedestrian", -10.0, 25.0, 1.8, 0.8, 0.8, (59, 66, 78, 81))  # face at 24.6 m: y ∈ [−0.25, 1.23]
    gt[59:66, 78:81] = 25.0 - 0.4                                        # x ∈ [−10.33, −9.84]
    tiny = obj("Car", 12.0, 30.0, 1.5, 1.6, 4.0, (60, 62, 160, 163))    # 6 pixels: too small
    gt[60:62, 160:163] = 30.0 - 0.8
    dontcare = Object3d(type="DontCare", truncated=-1, occluded=-1, alpha=-10, x1=0, y1=0, x2=50, y2=50,
                        h=-1, w=-1, l=-1, x=-1000, y=-1000, z=-1000, ry=-10)
    expected_a = np.zeros((h, w), bool)
    expected_a[60:75, 100:140] = True
    expected_a[60:66, 100:110] = False
    return calib, gt, [car_a, ped_b, tiny, dontcare], expected_a
