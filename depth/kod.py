"""KITTI-Object-Depth (KOD): depth ground truth for the KITTI object training frames.

Two sources, as docs/paper.md §3:

* **depth completion** (the authors' choice): the KITTI depth-completion ground truth maps (11
  accumulated LiDAR scans, uint16 PNG depth·256, 0 = no data) found through the object devkit's
  raw mapping: ``train_rand.txt`` (one line of 7481 comma-separated 1-based indices) maps object
  frame i to line ``rand[i]`` of ``train_mapping.txt`` (``2011_09_26 2011_09_26_drive_0005_sync
  0000000109``); the map is
  ``DEPTH_ROOT/{train,val}/<drive>/proj_depth/groundtruth/image_02/<frame>.png``. Frames without
  a map are dropped (the authors kept 3,622 train / 3,696 val).
* **velodyne** (``from_velodyne=True``, always available): the frame's own scan projected into
  image_2, the nearest point winning per pixel.

The output is a KITTI-format root: ``OUT/training/depth_2/NNNNNN.png`` plus symlinks to the
source root's image_2, calib, label_2 and velodyne, and ``OUT/ImageSets/{train,val}.txt`` (the
3DOP split restricted to frames with ground truth).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from kitti import Calibration, KittiFormatError, KittiRoot, atomic_write_text, write_depth_png
from kitti.depth_io import read_depth_png

#: Nearest depth a projected point may have (points behind or on the camera are dropped).
MIN_POINT_DEPTH_M = 0.1


def velodyne_depth_map(points_velo: np.ndarray, calib: Calibration, image_hw: tuple[int, int]) -> np.ndarray:
    """Project a velodyne scan into image_2 as a sparse (H, W) float32 depth map in metres.

    Each point with depth > ``MIN_POINT_DEPTH_M`` lands in the pixel containing its projection
    (``floor(u), floor(v)``); when several land in one pixel the nearest wins; 0 = no point.
    """
    h, w = image_hw
    uv, depth = calib.velo_to_img(points_velo)
    keep = depth > MIN_POINT_DEPTH_M
    uv, depth = uv[keep], depth[keep]
    col, row = np.floor(uv[:, 0]).astype(np.int64), np.floor(uv[:, 1]).astype(np.int64)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    col, row, depth = col[inside], row[inside], depth[inside]
    out = np.full(h * w, np.inf, dtype=np.float64)
    np.minimum.at(out, row * w + col, depth)
    out[np.isinf(out)] = 0.0
    return out.reshape(h, w).astype(np.float32)


def read_devkit_mapping(mapping_path: Path, rand_path: Path) -> dict[str, tuple[str, str, str]]:
    """Object frame id -> (date, drive, raw frame) from the devkit's mapping files.

    Raises:
        KittiFormatError: a missing file, a malformed line or an index out of range.
    """
    try:
        map_lines = Path(mapping_path).read_text().splitlines()
        rand_text = Path(rand_path).read_text()
    except FileNotFoundError as e:
        raise KittiFormatError(e.filename, None, "devkit mapping file not found") from None
    entries = []
    for lineno, line in enumerate(map_lines, start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3:
            raise KittiFormatError(mapping_path, lineno, f"expected 'date drive frame', got {line[:60]!r}")
        entries.append((parts[0], parts[1], parts[2]))
    out = {}
    for i, token in enumerate(t for t in rand_text.replace("\n", ",").split(",") if t.strip()):
        try:
            idx = int(token)
        except ValueError:
            raise KittiFormatError(rand_path, 1, f"non-integer index {token.strip()!r} at position {i + 1}") from None
        if not 1 <= idx <= len(entries):
            raise KittiFormatError(rand_path, 1, f"index {idx} at position {i + 1} outside 1..{len(entries)}")
        out[f"{i:06d}"] = entries[idx - 1]
    return out


def completion_map_path(depth_root: Path, drive: str, raw_frame: str) -> Path | None:
    """The depth-completion ground-truth PNG of a raw frame, in ``train/`` or ``val/``, or None."""
    for part in ("train", "val"):
        p = Path(depth_root) / part / drive / "proj_depth" / "groundtruth" / "image_02" / f"{raw_frame}.png"
        if p.is_file():
            return p
    return None


@dataclass(frozen=True)
class KodSummary:
    """What ``build_kod`` produced."""

    out_root: Path
    source: str
    frames_with_gt: int
    frames_without_gt: int
    train: int
    val: int

    def line(self) -> str:
        return (f"KOD ({self.source}): {self.frames_with_gt} frames with ground truth, "
                f"{self.frames_without_gt} without; split {self.train} train / {self.val} val -> {self.out_root}")


def _link(src: Path, dst: Path) -> None:
    if dst.is_symlink() or dst.exists():
        if dst.is_symlink() and Path(os.readlink(dst)) == src:
            return
        raise KittiFormatError(dst, None, "exists and is not the expected link; choose an empty --out")
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(src, dst, target_is_directory=True)


def build_kod(kitti_root: Path, out_root: Path, *, depth_root: Path | None = None,
              mapping_dir: Path | None = None, from_velodyne: bool = False,
              frame_ids: Sequence[str] | None = None, splits: Sequence[str] = ("train", "val"),
              progress: Callable[[Sequence[str]], Sequence[str]] = lambda ids: ids) -> KodSummary:
    """Build the KOD dataset for a real KITTI object root.

    Args:
        kitti_root: KITTI object root (``training/{image_2,calib,label_2[,velodyne]}``).
        out_root: the new root (depth_2 written, other folders linked, ImageSets written).
        depth_root: the depth-completion ground truth (``{train,val}/<drive>/proj_depth/...``).
        mapping_dir: folder with ``train_mapping.txt`` and ``train_rand.txt`` (default:
            ``kitti_root/devkit/mapping`` then ``kitti_root/mapping``).
        from_velodyne: project each frame's own scan instead (no depth_root needed).
        frame_ids: the frames to consider (default: every frame of image_2).
        splits: split names (``ImageSets/<name>.txt`` of the source root, else the built-in
            3DOP split) written to ``out_root/ImageSets`` restricted to frames with ground truth.
        progress: wraps the frame list (e.g. ``tqdm``).
    """
    src = KittiRoot(Path(kitti_root))
    out = KittiRoot(Path(out_root))
    ids = tuple(frame_ids) if frame_ids is not None else src.frame_ids("image_2")
    kinds = ("image_2", "calib") + (("velodyne",) if from_velodyne else ())
    src.check(ids, kinds)
    mapping: dict[str, tuple[str, str, str]] = {}
    if not from_velodyne:
        if depth_root is None:
            raise ValueError("build_kod needs depth_root (KITTI depth completion) or from_velodyne=True")
        if mapping_dir is None:
            candidates = [src.root / "devkit" / "mapping", src.root / "mapping"]
            mapping_dir = next((c for c in candidates if (c / "train_mapping.txt").is_file()), candidates[0])
        mapping = read_devkit_mapping(Path(mapping_dir) / "train_mapping.txt", Path(mapping_dir) / "train_rand.txt")
    with_gt: list[str] = []
    for fid in progress(ids):
        hw = src.image_hw(fid)
        if from_velodyne:
            depth = velodyne_depth_map(src.velodyne(fid), src.calib(fid), hw)
        else:
            if fid not in mapping:
                continue
            _, drive, raw = mapping[fid]
            p = completion_map_path(Path(depth_root), drive, raw)
            if p is None:
                continue
            depth = read_depth_png(p)
            if depth.shape != hw:
                raise KittiFormatError(p, None, f"depth map is {depth.shape[1]}x{depth.shape[0]} but image_2/"
                                       f"{fid}.png is {hw[1]}x{hw[0]}")
        write_depth_png(out.path("depth_2", fid), depth)
        with_gt.append(fid)
    for kind in ("image_2", "calib", "label_2", "velodyne"):
        if src.has(kind):
            _link(src.folder(kind).resolve(), out.folder(kind))
    have = set(with_gt)
    counts = []
    for name in splits:
        try:
            split_ids = [f for f in src.split(name) if f in have]
        except KittiFormatError:
            split_ids = []
        atomic_write_text(out.root / "ImageSets" / f"{name}.txt", "".join(f"{f}\n" for f in split_ids))
        counts.append(len(split_ids))
    train_n = counts[0] if counts else 0
    val_n = counts[1] if len(counts) > 1 else 0
    return KodSummary(out.root, "velodyne" if from_velodyne else "depth completion", len(with_gt),
                      len(ids) - len(with_gt), train_n, val_n)
