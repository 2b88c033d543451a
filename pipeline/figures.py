"""Inspection pictures for a run: Fig. 6-style BEV cloud comparisons and Fig. 7-style boxes.

* ``fig6_<frame>.png``: bird's-eye view of the oracle (blue), baseline (red) and ForeSeE (yellow)
  pseudo-LiDAR clouds of one val frame, with ground-truth boxes (green) — paper Fig. 6.
* ``fig7_<frame>.png``: image_2 with ground-truth 3D boxes (green) and the Car detections from
  baseline (red) and ForeSeE (yellow) pseudo-LiDAR, projected with P2 — paper Fig. 7.
* ``view3d_<frame>.html``: the same frame as one self-contained 3D page
  (:mod:`pseudolidar.html_view`): the LiDAR scan (grey) and the three clouds in the Fig. 6 colours,
  ground-truth boxes and each cloud's detections as wireframes (scores on hover), layer toggles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np

from kitti import KittiRoot, box_corners_rect, read_label_file, read_velodyne
from kitti.fileio import atomic_write_bytes, atomic_write_text
from pipeline.cache import Artifact
from pseudolidar.viz import COLORS, DET_BOX_RGB, GT_BOX_RGB, colors_for_roles

_ROLES = ("oracle", "baseline", "foresee")
#: RGB colours per cloud, the viewer's role colours (paper Fig. 6: ground truth blue, baseline red,
#: ForeSeE yellow); the LiDAR scan, drawn beside the oracle, is gray.
CLOUD_RGB = {**dict(zip(_ROLES, colors_for_roles(_ROLES))), "lidar": COLORS["gray"]}
GT_RGB = GT_BOX_RGB
#: Detections of each cloud in the 3D page (ForeSeE's magenta, as in fig6).
DET_RGB = {"foresee": DET_BOX_RGB, "baseline": COLORS["orange"], "oracle": COLORS["cyan"],
           "lidar": COLORS["white"]}
# box edges by corner index (kitti.boxes order: 0-3 bottom, 4-7 top)
_EDGES = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7)]


def draw_boxes_on_image(image_rgb: np.ndarray, calib, objects: Sequence, rgb: tuple[int, int, int],
                        thickness: int = 2) -> np.ndarray:
    """Project each object's 3D box with P2 and draw its 12 edges (objects behind the camera skipped)."""
    img = image_rgb.copy()
    for o in objects:
        if o.type == "DontCare" or o.z < 0.5:
            continue
        corners = box_corners_rect(np.array([o.loc_rect]), np.array([o.hwl]), np.array([o.ry]))[0]
        uv, depth = calib.rect_to_img(corners)
        if np.any(depth < 0.1):
            continue
        pts = np.round(uv).astype(np.int32)
        for a, b in _EDGES:
            cv2.line(img, tuple(map(int, pts[a])), tuple(map(int, pts[b])), rgb, thickness, cv2.LINE_AA)
        # mark the front face
        cv2.line(img, tuple(map(int, pts[0])), tuple(map(int, pts[5])), rgb, 1, cv2.LINE_AA)
        cv2.line(img, tuple(map(int, pts[1])), tuple(map(int, pts[4])), rgb, 1, cv2.LINE_AA)
    return img


def _png(path: Path, rgb: np.ndarray) -> Path:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"{path}: PNG encoding failed")
    atomic_write_bytes(path, buf.tobytes())
    return path


def pick_frames(root: KittiRoot, val: Sequence[str], n: int = 3) -> list[str]:
    """The val frames with the most cars within 40 m (deterministic)."""
    scored = []
    for f in val[:200]:
        cars = [o for o in root.labels(f) if o.type == "Car" and o.z < 40]
        scored.append((-len(cars), f))
    return [f for _, f in sorted(scored)[:n]]


def write_frame_page(path: Path, root: KittiRoot, frame: str, clouds: Sequence[tuple],
                     arts: Mapping[str, Artifact], detectors: Sequence[str]) -> Path:
    """``view3d_<frame>.html``: the LiDAR scan (when the root has one) and ``clouds``
    (``(points_velo, rgb, name)``), ground truth and the detections of every
    ``detect-infer/<detector>/<cloud>`` artifact (coloured by cloud), as one self-contained page."""
    from pseudolidar.html_view import build_page
    from pseudolidar.viz import CloudLayer, box_layer

    layers = [CloudLayer(p, rgb, name) for p, rgb, name in clouds]
    if root.path("velodyne", frame).is_file():
        layers.insert(0, CloudLayer(root.velodyne(frame), CLOUD_RGB["lidar"], "lidar"))
    boxes = [box_layer(root.labels(frame), GT_RGB, "ground truth")]
    for detector in detectors:
        for cloud, rgb in DET_RGB.items():
            art = arts.get(f"detect-infer/{detector}/{cloud}")
            if art is not None:
                boxes.append(box_layer(read_label_file(art.path / "data" / f"{frame}.txt"), rgb,
                                       f"{detector} on {cloud}"))
    atomic_write_text(path, build_page(layers, boxes, root.calib(frame), title=f"frame {frame}"))
    return path


def figures_markdown(paths: Sequence[Path]) -> str:
    """One markdown line per frame linking its pictures and 3D page (by file name, same folder)."""
    frames: dict[str, list[Path]] = {}
    for p in paths:
        frames.setdefault(p.stem.rpartition("_")[2], []).append(p)
    lines = [f"- frame {f}: " + ", ".join(f"[{p.name}]({p.name})" for p in ps) for f, ps in frames.items()]
    return "Figures (Fig. 6 BEV, Fig. 7 boxes on image_2, 3D page to open in a browser):\n\n" + "\n".join(lines) + "\n"


def make_figures(cfg, arts: Mapping[str, Artifact], out: Path, n_frames: int = 3) -> list[Path]:
    """Write Fig. 6/7-style PNGs and a 3D page for a few val frames of a finished run; returns their paths."""
    from pseudolidar.viz import render_bev

    root = KittiRoot(cfg.data_root)
    val = root.split(cfg.val_split)
    detector = cfg.detectors[0]  # the figures show the first detector's boxes
    written = []
    for frame in pick_frames(root, val, n_frames):
        calib = root.calib(frame)
        gt = root.labels(frame)
        clouds = []
        for cloud in ("oracle", "baseline", "foresee"):
            art = arts.get(f"pseudolidar/{cloud}")
            if art is not None:
                clouds.append((read_velodyne(art.path / "velodyne" / f"{frame}.bin"), CLOUD_RGB[cloud], cloud))
        if clouds:
            dets = []
            art = arts.get(f"detect-infer/{detector}/foresee")
            if art is not None:
                dets = read_label_file(art.path / "data" / f"{frame}.txt")
            bev = render_bev(clouds, calib, gt_objects=gt, det_objects=dets)
            written.append(_png(out / f"fig6_{frame}.png", bev))
        img = draw_boxes_on_image(root.image(frame), calib, gt, GT_RGB, 2)
        for cloud in ("baseline", "foresee"):  # paper Fig. 7 compares these two
            art = arts.get(f"detect-infer/{detector}/{cloud}")
            if art is None:
                continue
            dets = [d for d in read_label_file(art.path / "data" / f"{frame}.txt") if d.type == "Car"]
            img = draw_boxes_on_image(img, calib, dets, CLOUD_RGB[cloud], 1)
        written.append(_png(out / f"fig7_{frame}.png", img))
        written.append(write_frame_page(out / f"view3d_{frame}.html", root, frame, clouds, arts, cfg.detectors))
    return written
