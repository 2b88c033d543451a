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
source root's image_2, calib, label_2 and velodyne; ``OUT/ImageSets/{train,val}.txt``, the full
3DOP split (what detection trains and is evaluated on, as in the paper: 3,712 / 3,769), and
``OUT/ImageSets/kod_{train,val}.txt``, the split restricted to frames with depth ground truth
(depth training and Table 2); ``OUT/kod.json`` records how it was built.

The build is atomic: everything is written into ``OUT.tmp-<pid>/`` and renamed to ``OUT`` at the
end, so an error leaves no half-built root. Building again into an existing ``OUT`` made with the
same sources returns its summary (``cached``); a different ``OUT`` content is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
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
    """What ``build_kod`` produced (``train`` / ``val``: frames of the full split; ``kod_train`` /
    ``kod_val``: those with depth ground truth)."""

    out_root: Path
    source: str
    frames_with_gt: int
    frames_without_gt: int
    train: int
    val: int
    kod_train: int = 0
    kod_val: int = 0
    cached: bool = False

    def line(self) -> str:
        return (f"KOD ({self.source}){' cached' if self.cached else ''}: {self.frames_with_gt} frames with "
                f"ground truth, {self.frames_without_gt} without; detection split {self.train} train / "
                f"{self.val} val, depth split {self.kod_train} / {self.kod_val} -> {self.out_root}")


def _link(src: Path, dst: Path) -> None:
    if dst.is_symlink() or dst.exists():
        raise KittiFormatError(dst, None, "exists; choose an empty --out")
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(src, dst, target_is_directory=True)


#: Where ``build_kod`` looks for the devkit's mapping files, relative to the KITTI root.
MAPPING_CANDIDATES = ("devkit_object/mapping", "devkit/mapping", "mapping")


def find_mapping_dir(kitti_root: Path) -> Path:
    """The first of :data:`MAPPING_CANDIDATES` under ``kitti_root`` holding ``train_mapping.txt``."""
    for rel in MAPPING_CANDIDATES:
        if (Path(kitti_root) / rel / "train_mapping.txt").is_file():
            return Path(kitti_root) / rel
    raise KittiFormatError(Path(kitti_root), None, "devkit mapping (train_mapping.txt, train_rand.txt) not found "
                           f"in {', '.join(MAPPING_CANDIDATES)}; pass --mapping-dir (make all MAPPING_DIR=...)")


def build_kod(kitti_root: Path, out_root: Path, *, depth_root: Path | None = None,
              mapping_dir: Path | None = None, from_velodyne: bool = False,
              frame_ids: Sequence[str] | None = None, splits: Sequence[str] = ("train", "val"),
              progress: Callable[[Sequence[str]], Sequence[str]] = lambda ids: ids) -> KodSummary:
    """Build the KOD dataset for a real KITTI object root (atomically; see the module docstring).

    Args:
        kitti_root: KITTI object root (``training/{image_2,calib,label_2[,velodyne]}``).
        out_root: the new root (depth_2 written, other folders linked, ImageSets written).
        depth_root: the depth-completion ground truth (``{train,val}/<drive>/proj_depth/...``).
        mapping_dir: folder with ``train_mapping.txt`` and ``train_rand.txt`` (default: the first
            of :data:`MAPPING_CANDIDATES` under ``kitti_root`` that has them).
        from_velodyne: project each frame's own scan instead (no depth_root needed).
        frame_ids: the frames to consider (default: every frame of image_2).
        splits: split names (``ImageSets/<name>.txt`` of the source root, else the built-in
            3DOP split): ``<name>.txt`` gets the split's frames, ``kod_<name>.txt`` those with
            ground truth.
        progress: wraps the frame list (e.g. ``tqdm``).
    """
    import json
    import shutil

    src = KittiRoot(Path(kitti_root))
    out_root = Path(out_root)
    if not from_velodyne and depth_root is None:
        raise ValueError("build_kod needs depth_root (KITTI depth completion) or from_velodyne=True")
    if not from_velodyne and mapping_dir is None:
        mapping_dir = find_mapping_dir(src.root)
    recipe = {"kitti_root": str(src.root.resolve()), "source": "velodyne" if from_velodyne else "depth completion",
              "depth_root": str(Path(depth_root).resolve()) if depth_root else None,
              "mapping_dir": str(Path(mapping_dir).resolve()) if mapping_dir else None,
              "frame_ids": list(frame_ids) if frame_ids is not None else None, "splits": list(splits)}
    done = _existing_build(out_root, recipe)
    if done is not None:
        return done
    tmp = out_root.with_name(f"{out_root.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        summary = _build(src, KittiRoot(tmp), recipe, depth_root, mapping_dir, from_velodyne, frame_ids,
                         splits, progress)
        atomic_write_text(tmp / "kod.json", json.dumps({"recipe": recipe, "summary": {
            k: v for k, v in summary.__dict__.items() if k not in ("out_root", "cached")}}, indent=1))
        if out_root.is_dir() and not any(out_root.iterdir()):
            out_root.rmdir()
        os.rename(tmp, out_root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return replace(summary, out_root=out_root)


def _existing_build(out_root: Path, recipe: dict) -> KodSummary | None:
    """The summary of a finished build of the same recipe at ``out_root``; None when there is none;
    an error when ``out_root`` holds something else."""
    import json

    if not out_root.exists() or (out_root.is_dir() and not any(out_root.iterdir())):
        return None
    try:
        made = json.loads((out_root / "kod.json").read_text())
    except (OSError, ValueError):
        made = None
    if not made or made.get("recipe") != recipe:
        raise KittiFormatError(out_root, None, "exists and is not a KOD root built from these sources; "
                               "choose an empty --out or remove it")
    return KodSummary(out_root=out_root, cached=True, **made["summary"])


def _build(src: KittiRoot, out: KittiRoot, recipe: dict, depth_root, mapping_dir, from_velodyne: bool,
           frame_ids, splits, progress) -> KodSummary:
    ids = tuple(frame_ids) if frame_ids is not None else src.frame_ids("image_2")
    kinds = ("image_2", "calib") + (("velodyne",) if from_velodyne else ())
    src.check(ids, kinds)
    mapping: dict[str, tuple[str, str, str]] = {}
    if not from_velodyne:
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
    have, present = set(with_gt), set(ids)
    counts = {}
    for name in splits:
        try:
            split_ids = [f for f in src.split(name) if f in present]
        except KittiFormatError:
            split_ids = []
        kod_ids = [f for f in split_ids if f in have]
        atomic_write_text(out.root / "ImageSets" / f"{name}.txt", "".join(f"{f}\n" for f in split_ids))
        atomic_write_text(out.root / "ImageSets" / f"kod_{name}.txt", "".join(f"{f}\n" for f in kod_ids))
        counts[name] = (len(split_ids), len(kod_ids))
    train = counts.get("train", (0, 0))
    val = counts.get("val", (0, 0))
    return KodSummary(out.root, recipe["source"], len(with_gt), len(ids) - len(with_gt), train[0], val[0],
                      train[1], val[1])
