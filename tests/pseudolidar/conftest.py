"""Fixtures of the pseudo-LiDAR tests: KITTI roots built from the nine real frames.

Depth maps are the frames' own velodyne scans rendered into image_2 (nearest point per pixel),
so every test input is real KITTI geometry (tests/data/kitti_sample, CC BY-NC-SA 3.0).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from kitti import KittiRoot, write_depth_npz, write_depth_png
from pseudolidar import points_velo_to_depth


@pytest.fixture(scope="session")
def sample_depths(sample_root: Path, sample_ids: tuple[str, ...]) -> dict[str, np.ndarray]:
    """frame id -> (H, W) float32 depth rendered from the frame's velodyne scan."""
    root = KittiRoot(sample_root)
    return {f: points_velo_to_depth(root.velodyne(f), root.calib(f), root.image_hw(f)) for f in sample_ids}


def make_root(dst: Path, sample_root: Path, frame_ids, depths: dict[str, np.ndarray] | None = None) -> Path:
    """A KITTI root at ``dst`` linking the sample's files, with depth_2 PNGs and ImageSets/val."""
    for kind in ("calib", "image_2", "label_2", "velodyne"):
        (dst / "training" / kind).mkdir(parents=True, exist_ok=True)
        for p in sorted((sample_root / "training" / kind).iterdir()):
            if p.stem in frame_ids:
                os.symlink(p.resolve(), dst / "training" / kind / p.name)
    if depths is not None:
        for f in frame_ids:
            write_depth_png(dst / "training" / "depth_2" / f"{f}.png", depths[f])
    (dst / "ImageSets").mkdir(parents=True, exist_ok=True)
    (dst / "ImageSets" / "val.txt").write_text("\n".join(frame_ids) + "\n")
    return dst


@pytest.fixture(scope="session")
def make_kitti_root():
    """The :func:`make_root` helper, for tests that need a root of their own."""
    return make_root


@pytest.fixture(scope="session")
def gt_root(tmp_path_factory, sample_root, sample_ids, sample_depths) -> Path:
    """The nine frames with depth_2 (from their scans) and ImageSets/val.txt listing them."""
    return make_root(tmp_path_factory.mktemp("gt_root"), sample_root, sample_ids, sample_depths)


@pytest.fixture(scope="session")
def depth_dir(tmp_path_factory, sample_ids, sample_depths) -> Path:
    """A plain folder of NNNNNN.npz depth maps (float32 depth_m) for the nine frames."""
    d = tmp_path_factory.mktemp("depth")
    for f in sample_ids:
        write_depth_npz(d / f"{f}.npz", sample_depths[f])
    return d
