"""Inspection pictures for a run: Fig. 6-style BEV cloud comparisons and Fig. 7-style boxes.

* ``fig6_<frame>.png``: bird's-eye view of one val frame, one panel per pseudo-LiDAR cloud side by
  side — oracle (blue), baseline (red), ForeSeE (yellow), and ForeSeE-obj (violet) when the run
  has that opt-in cloud — each with the ground-truth boxes (green)
  and that cloud's own Car detections (magenta) of score at least :data:`FIG_MIN_SCORE`, score
  labels placed so that none overlaps another — paper Fig. 6.
* ``fig7_<frame>.png``: image_2 with ground-truth 3D boxes (green) and the Car detections
  (score >= :data:`FIG_MIN_SCORE`) from baseline (red) and ForeSeE (yellow) pseudo-LiDAR (and
  ForeSeE-obj, violet, when the run has it), projected with P2 — paper Fig. 7.
* ``pr_car.png``, ``pr_car_iou05.png``, ``pr_car.csv``: Car precision over recall of every
  Table-4 row, BEV and 3D (:func:`write_pr_curves`).
* ``view3d_<frame>.html``: the same frame as one self-contained 3D page
  (:mod:`pseudolidar.html_view`): the LiDAR scan (grey) and the pseudo-LiDAR clouds in the Fig. 6 colours,
  ground-truth boxes and each cloud's detections as wireframes (scores on hover), layer toggles.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np

from kitti import KittiRoot, box_corners_rect, read_label_file, read_velodyne
from kitti.fileio import atomic_write_bytes, atomic_write_text
from pipeline.cache import Artifact
from pseudolidar.viz import COLORS, DET_BOX_RGB, GT_BOX_RGB, colors_for_roles

#: the pseudo-LiDAR clouds of the pictures, in panel order (those the run has).
_ROLES = ("oracle", "baseline", "foresee", "foresee-obj")
#: the clouds whose detections Fig. 7 draws (the paper compares baseline and ForeSeE).
_FIG7_ROLES = ("baseline", "foresee", "foresee-obj")
#: RGB colours per cloud, the viewer's role colours (paper Fig. 6: ground truth blue, baseline red,
#: ForeSeE yellow; ForeSeE-obj violet); the LiDAR scan, drawn beside the oracle, is gray.
CLOUD_RGB = {**dict(zip(_ROLES, colors_for_roles(_ROLES))), "lidar": COLORS["gray"]}
GT_RGB = GT_BOX_RGB
#: Detections of each cloud in the 3D page (ForeSeE's magenta, as in fig6).
DET_RGB = {"foresee": DET_BOX_RGB, "baseline": COLORS["orange"], "oracle": COLORS["cyan"],
           "lidar": COLORS["white"], "foresee-obj": COLORS["pink"]}
#: the Fig. 6/7 pictures draw only detections of at least this score (F-PointNet: the 2D box's
#: score; the report's AP counts every detection).
FIG_MIN_SCORE = 0.5
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


def _confident_cars(art: Artifact | None, frame: str, min_score: float) -> list:
    if art is None:
        return []
    return [d for d in read_label_file(art.path / "data" / f"{frame}.txt")
            if d.type == "Car" and d.score is not None and d.score >= min_score]


def _caption(img: np.ndarray, lines: Sequence[tuple[str, tuple[int, int, int]]]) -> np.ndarray:
    """``img`` with a black strip on top holding one coloured text line per entry."""
    strip = np.zeros((8 + 20 * len(lines), img.shape[1], 3), np.uint8)
    for k, (text, rgb) in enumerate(lines):
        cv2.putText(strip, text, (8, 20 + 20 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.5, rgb, 1, cv2.LINE_AA)
    return np.vstack([strip, img])


def fig6_panels(clouds: Sequence[tuple], calib, gt: Sequence, dets: Mapping[str, Sequence], detector: str,
                min_score: float = FIG_MIN_SCORE) -> np.ndarray:
    """One BEV panel per cloud (``(points_velo, rgb, name)``), side by side: the cloud, the ground
    truth and that cloud's detections (``dets[name]``, already filtered by score)."""
    from pseudolidar.viz import BevView, box_layer, render_bev

    view = BevView(x_range_m=(-2.0, 72.0), y_range_m=(-30.0, 30.0), px_per_m=7.0)  # the render reaches 70 m
    panels = []
    for points, rgb, name in clouds:
        det_layer = box_layer(dets.get(name, ()), DET_BOX_RGB, f"{detector} Car, score >= {min_score:g}")
        panel = render_bev([(points, rgb, f"{name} pseudo-LiDAR")], calib, gt_objects=gt,
                           boxes=[det_layer], view=view)
        panels += [panel, np.full((panel.shape[0], 4, 3), 90, np.uint8)]
    return np.hstack(panels[:-1])


def make_figures(cfg, arts: Mapping[str, Artifact], out: Path, n_frames: int = 3,
                 min_score: float = FIG_MIN_SCORE) -> list[Path]:
    """Write Fig. 6/7-style PNGs and a 3D page for a few val frames of a finished run; returns their
    paths. The PNGs draw detections of score >= ``min_score`` only."""
    root = KittiRoot(cfg.data_root)
    val = root.split(cfg.val_split)
    detector = cfg.detectors[0]  # the figures show the first detector's boxes
    written = []
    for frame in pick_frames(root, val, n_frames):
        calib = root.calib(frame)
        gt = root.labels(frame)
        clouds = []
        for cloud in _ROLES:
            art = arts.get(f"pseudolidar/{cloud}")
            if art is not None:
                clouds.append((read_velodyne(art.path / "velodyne" / f"{frame}.bin"), CLOUD_RGB[cloud], cloud))
        if clouds:
            dets = {c: _confident_cars(arts.get(f"detect-infer/{detector}/{c}"), frame, min_score)
                    for _, _, c in clouds}
            written.append(_png(out / f"fig6_{frame}.png", fig6_panels(clouds, calib, gt, dets, detector, min_score)))
        img = draw_boxes_on_image(root.image(frame), calib, gt, GT_RGB, 2)
        caption = [(f"frame {frame}: ground truth", GT_RGB)]
        for cloud in _FIG7_ROLES:
            art = arts.get(f"detect-infer/{detector}/{cloud}")
            if art is None:
                continue
            img = draw_boxes_on_image(img, calib, _confident_cars(art, frame, min_score), CLOUD_RGB[cloud], 1)
            caption.append((f"{detector} Car on {cloud} pseudo-LiDAR, score >= {min_score:g}", CLOUD_RGB[cloud]))
        written.append(_png(out / f"fig7_{frame}.png", _caption(img, caption)))
        written.append(write_frame_page(out / f"view3d_{frame}.html", root, frame, clouds, arts, cfg.detectors))
    return written


# ---------------------------------------------------------------------------- PR curves
#: the report's PR-curve pictures: (IoU set, file stem).
PR_FILES = (("0.7", "pr_car"), ("0.5", "pr_car_iou05"))


def car_pr_curves(cfg, arts: Mapping[str, Artifact]) -> dict[str, dict[tuple[str, str], dict[str, np.ndarray]]]:
    """Car precision over recall of every Table-4 row: IoU set -> (detector, cloud) -> metric -> (3, 41).

    Rows are the ``detect-infer/<detector>/<cloud>`` artifacts of the run, evaluated on the val
    split like their eval stage (``kitti_eval``'s ``EvalResult.curves``: interpolated precision at
    recall 0, 1/40, …, 1; rows easy / moderate / hard), BEV and 3D, at IoU 0.7 and 0.5.
    """
    from kitti_eval import IouThresholds, evaluate_folders

    root = KittiRoot(cfg.data_root)
    val = root.split(cfg.val_split)
    out: dict[str, dict[tuple[str, str], dict[str, np.ndarray]]] = {}
    for iou, thresholds in (("0.7", IouThresholds()), ("0.5", IouThresholds.loose())):
        rows = out.setdefault(iou, {})
        for detector in cfg.detectors:
            for cloud in cfg.clouds:
                art = arts.get(f"detect-infer/{detector}/{cloud}")
                if art is None:
                    continue
                res = evaluate_folders(root.folder("label_2"), art.path / "data", frame_ids=val,
                                       classes=("Car",), metrics=("bev", "3d"), thresholds=thresholds)
                rows[(detector, cloud)] = {m: np.asarray(res.curves[("Car", m)]) for m in ("bev", "3d") if ("Car", m) in res.curves}
    return out


def write_pr_curves(cfg, arts: Mapping[str, Artifact], out: Path) -> list[Path]:
    """``pr_car.png`` / ``pr_car_iou05.png`` (BEV and 3D panels, one line per row, moderate solid,
    easy dotted) and ``pr_car.csv`` (every point) in ``out``; returns their paths ([] without rows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pipeline.report import CLOUD_LABELS
    from pipeline.stages import DETECTORS

    curves = car_pr_curves(cfg, arts)
    if not any(curves.values()):
        return []
    recall = np.linspace(0.0, 1.0, 41)
    written, lines = [], ["iou,detector,cloud,metric,difficulty,recall,precision"]
    for iou, stem in PR_FILES:
        rows = curves.get(iou, {})
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True)
        for ax, metric in zip(axes, ("bev", "3d")):
            for k, ((detector, cloud), by_metric) in enumerate(rows.items()):
                if metric not in by_metric:
                    continue
                label = f"{DETECTORS[detector].label}, {CLOUD_LABELS.get(cloud, cloud).replace(' (ours)', '')}"
                prec = by_metric[metric]
                colour = f"C{k}"
                ap = 100.0 * float(prec[1, 1:].mean())  # R40: the 40 recall points after 0
                ax.plot(recall, prec[1], color=colour, lw=2, label=f"{label} (AP_R40 mod. {ap:.1f})")
                ax.plot(recall, prec[0], color=colour, lw=1, ls=":")
                for d, name in enumerate(("easy", "moderate", "hard")):
                    lines += [f"{iou},{detector},{cloud},{metric},{name},{r:.3f},{p:.6f}" for r, p in zip(recall, prec[d])]
            ax.set(title=f"Car AP_{metric.upper()} @ IoU {iou}", xlabel="recall", xlim=(0, 1), ylim=(0, 1.02))
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("precision")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False,
                   title="moderate solid, easy dotted", title_fontsize=8)
        fig.tight_layout(rect=(0, 0.06 + 0.045 * ((len(labels) + 1) // 2), 1, 1))
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        written.append(out / f"{stem}.png")
        atomic_write_bytes(written[-1], buf.getvalue())
    csv = out / "pr_car.csv"
    atomic_write_text(csv, "\n".join(lines) + "\n")
    return written + [csv]


def pr_curves_markdown(paths: Sequence[Path]) -> str:
    """The report's lines linking the PR-curve files."""
    links = ", ".join(f"[{p.name}]({p.name})" for p in paths)
    return f"Car precision / recall of every row (BEV and 3D; IoU 0.7 and 0.5; every point in the CSV): {links}\n"
