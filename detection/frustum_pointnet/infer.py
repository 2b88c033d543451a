"""Inference: 2D boxes -> frustums -> F-PointNet v1 -> one KITTI result file per frame.

Reproduce (the cpu-small measurement; see docs/detection.md)::

    foresee detect infer --data data/embedded --points ARTIFACT --model ARTIFACT --split val \\
        --boxes2d simulated --preset cpu-small

Scores follow ``train/test.py``: with 2D detections (a file, a folder, ``simulated``) the score is
the 2D detector's; with ground-truth boxes (``gt``) it is ``log(mean object-mask probability) +
log(max heading probability) + log(max size probability)``. No 3D NMS (as the original).
Frustums without a point are skipped and counted; 2D boxes lower than ``min_box_height_px`` and
detections whose frustum holds fewer than ``min_points_detection`` points are skipped and counted
too (``prepare_data``'s rules for RGB detections).
"""

from __future__ import annotations

import io
import time
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from kitti.boxes import alpha_from_ry, wrap_angle
from kitti.calib import Calibration
from kitti.classes import MEAN_SIZE_LWH
from kitti.errors import KittiFormatError
from kitti.fileio import atomic_write_bytes
from kitti.labels import Object3d, write_label_file
from kitti.layout import KittiRoot
from kitti.progress import tqdm_disable
from kitti.velodyne import read_velodyne
from detection.runtime import numpy_blas_one_thread, select_device
from engine.checkpoint import load_weights_only
from detection.frustum_pointnet import CODE_VERSION
from detection.frustum_pointnet.boxes2d import (Box2D, gt_boxes, read_kitti_2d_folder,
                                                read_rgb_detection_file, simulated_detections)
from detection.frustum_pointnet.codec import MEAN_SIZE_ARRAY_LWH, class_to_angle
from detection.frustum_pointnet.frustum import (FrameCloud, detection_input, frame_cloud,
                                                in_box2d_mask, onehot, rotate_about_y)
from detection.frustum_pointnet.model import FPointNetOutput, FPointNetV1
from detection.frustum_pointnet.settings import FPointNetSettings


#: Decoded box dimensions are clamped to at least this share of their size template.
MIN_SIZE_FRACTION: float = 0.1


@dataclass(frozen=True)
class BoxEstimate:
    """One 3D box in the label convention (rect frame, bottom centre, (h, w, l), ry)."""

    loc_rect: np.ndarray
    hwl: np.ndarray
    ry: float
    logprob: float


def build_model(settings: FPointNetSettings) -> FPointNetV1:
    """An untrained network sized by ``settings``."""
    return FPointNetV1(width=settings.width, num_object_points=settings.num_object_points,
                       dropout=settings.dropout)


def save_model(path: Path, model: FPointNetV1, settings: FPointNetSettings, extra: dict | None = None) -> None:
    """Write weights plus settings to ``path`` atomically (torch.save into memory, then rename)."""
    buf = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "settings": asdict(settings),
                "code_version": CODE_VERSION, **(extra or {})}, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_model(path: str | PathLike[str], device: torch.device) -> tuple[FPointNetV1, FPointNetSettings]:
    """Load a ``model.pt`` written by :func:`save_model`: (network in eval mode, its settings),
    read with :func:`engine.checkpoint.load_weights_only` (no code of the file runs).

    Raises:
        KittiFormatError: a missing or unreadable file, or one holding other objects (refused).
    """
    path = Path(path)
    blob = load_weights_only(path, map_location=device, what="an F-PointNet model file")
    try:
        trained = FPointNetSettings.from_dict(blob["settings"])
    except (KeyError, ValueError, TypeError) as e:
        raise KittiFormatError(path, None, f"not an F-PointNet model file ({e})") from None
    model = build_model(trained).to(device)
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return model, trained


def decode(out: FPointNetOutput, rots: np.ndarray) -> list[BoxEstimate]:
    """Network outputs -> boxes in the label convention (``from_prediction_to_label_format``).

    Argmax heading bin plus its residual, wrapped to (-π, π], plus the frustum rotation; argmax
    size template plus its residual, each dimension at least ``MIN_SIZE_FRACTION`` of the template
    (the original could write negative sizes, which no KITTI reader accepts); the centre rotated
    back to rect and moved down by h/2.
    The log-probability is ``log(mean mask prob) + log(max heading p) + log(max size p)``, the
    mask mean taken over the points predicted as object (over all points when there is none,
    where the original divides by zero).
    """
    seg_prob = torch.softmax(out.seg_logits, dim=2)[:, :, 1]
    mask = (out.seg_logits[:, :, 1] > out.seg_logits[:, :, 0]).float()
    n_mask = mask.sum(dim=1)
    mask_mean = torch.where(n_mask > 0, (seg_prob * mask).sum(dim=1) / n_mask.clamp(min=1),
                            seg_prob.mean(dim=1))
    hprob, hcls = torch.softmax(out.heading_scores, dim=1).max(dim=1)
    sprob, scls = torch.softmax(out.size_scores, dim=1).max(dim=1)
    rows = torch.arange(hcls.shape[0], device=hcls.device)
    hres = out.heading_residual[rows, hcls].double().cpu().numpy()
    sres = out.size_residual[rows, scls].double().cpu().numpy()
    logprob = (torch.log(mask_mean.clamp(min=1e-12)) + torch.log(hprob) + torch.log(sprob)).double().cpu().numpy()
    centers = out.center.double().cpu().numpy()
    hcls_np, scls_np = hcls.cpu().numpy(), scls.cpu().numpy()
    boxes = []
    for i in range(centers.shape[0]):
        heading = float(class_to_angle(hcls_np[i], hres[i]))
        ry = float(wrap_angle(heading + rots[i]))
        template = MEAN_SIZE_ARRAY_LWH[scls_np[i]]
        l, w, h = np.maximum(template + sres[i], MIN_SIZE_FRACTION * template).tolist()
        c = rotate_about_y(centers[i:i + 1], -float(rots[i]))[0]
        boxes.append(BoxEstimate(np.array([c[0], c[1] + h / 2.0, c[2]]), np.array([h, w, l]), ry,
                                 float(logprob[i])))
    return boxes


def trivial_box(points_rect: np.ndarray, type_name: str) -> BoxEstimate:
    """The trivial baseline: the class's mean size at the median of the points, heading 0.

    The median is the geometric centre, so the bottom centre is ``median_y + h/2``.
    """
    l, w, h = MEAN_SIZE_LWH[type_name]
    med = np.median(np.asarray(points_rect, dtype=np.float64)[:, :3], axis=0)
    return BoxEstimate(np.array([med[0], med[1] + h / 2.0, med[2]]), np.array([h, w, l]), 0.0, 0.0)


def result_object(det: Box2D, box: BoxEstimate, score: float) -> Object3d:
    """A KITTI result line for one estimate (truncated/occluded -1, alpha from ry and position)."""
    x, y, z = (float(v) for v in box.loc_rect)
    h, w, l = (float(v) for v in box.hwl)
    alpha = float(alpha_from_ry(box.ry, x, z))
    return Object3d(det.type, -1.0, -1, alpha, det.x1, det.y1, det.x2, det.y2, h, w, l, x, y, z,
                    float(box.ry), float(score))


def boxes2d_source_name(boxes2d: str | PathLike[str]) -> str:
    """How reports name a 2D-box source: ``gt``, ``simulated (from ground truth, seeded)``, a path."""
    if str(boxes2d) == "simulated":
        return "simulated (from ground truth, seeded; not a real 2D detector)"
    return str(boxes2d)


def load_2d_boxes(root: KittiRoot, frame_ids: Sequence[str], boxes2d: str | PathLike[str],
                  settings: FPointNetSettings) -> Callable[[str], list[Box2D]]:
    """A function frame id -> its 2D boxes for the chosen source (see :mod:`.boxes2d`).

    Raises:
        KittiFormatError: a bad file or folder, or a source that is neither ``gt``,
            ``simulated``, a file nor a folder.
    """
    classes = settings.classes
    if str(boxes2d) == "gt":
        return lambda f: gt_boxes(root.labels(f), classes, min_height_px=settings.min_box_height_px)
    if str(boxes2d) == "simulated":
        return lambda f: simulated_detections(f, root.labels(f), root.image_hw(f), classes,
                                              seed=settings.seed)
    path = Path(boxes2d)
    if path.is_dir():
        table = read_kitti_2d_folder(path, frame_ids, classes)
        return lambda f: table.get(f, [])
    if path.is_file():
        table = read_rgb_detection_file(path, root.frame_ids("image_2"), classes)
        return lambda f: table.get(f, [])
    raise KittiFormatError(path, None, "2D boxes: expected 'gt', 'simulated', an rgb_detection "
                           "file or a folder of KITTI-format 2D detections")


def read_frame_cloud(root: KittiRoot, points_dir: Path, frame_id: str, calib: Calibration,
                     settings: FPointNetSettings) -> FrameCloud:
    """The image-FOV cloud of one frame from ``points_dir/NNNNNN.bin`` (velodyne format)."""
    return frame_cloud(read_velodyne(Path(points_dir) / f"{frame_id}.bin"), calib,
                       root.image_hw(frame_id), min_x_velo_m=settings.fov_min_x_velo_m)


def _run(data_root: Path, points_dir: Path, frame_ids: Sequence[str], settings: FPointNetSettings,
         out_dir: Path, boxes2d: str | PathLike[str], progress: bool,
         estimate: Callable[[FrameCloud, Calibration, list[Box2D], np.random.Generator],
                            tuple[list[BoxEstimate], list[int], int, int]],
         use_logprob: bool) -> dict:
    root = KittiRoot(data_root)
    frame_ids = tuple(frame_ids)
    root.check(frame_ids, ("calib", "image_2"))
    missing = [f for f in frame_ids if not (Path(points_dir) / f"{f}.bin").is_file()]
    if missing:
        raise KittiFormatError(Path(points_dir) / f"{missing[0]}.bin", None,
                               f"{len(missing)} cloud(s) of the frames missing")
    source = load_2d_boxes(root, frame_ids, boxes2d, settings)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0, cpu0 = time.time(), time.process_time()
    n_det = n_boxes = n_empty = n_few = n_small = 0
    for frame in tqdm(frame_ids, desc="detect infer", disable=tqdm_disable(progress), unit="frame"):
        dets = source(frame)
        n_det += len(dets)
        kept_dets = [d for d in dets if d.height_px >= settings.min_box_height_px]
        n_small += len(dets) - len(kept_dets)
        dets = kept_dets
        calib = root.calib(frame)
        cloud = read_frame_cloud(root, points_dir, frame, calib, settings)
        rng = np.random.default_rng([settings.seed, int(frame) if frame.isdigit() else 0])
        boxes, kept, empty, few = estimate(cloud, calib, dets, rng)
        n_empty += empty
        n_few += few
        objs = []
        for k, box in zip(kept, boxes):
            det = dets[k]
            score = box.logprob if (use_logprob and det.score is None) else (
                det.score if det.score is not None else 1.0)
            if np.all(np.isfinite(box.loc_rect)) and np.all(np.isfinite(box.hwl)) and np.isfinite(box.ry):
                objs.append(result_object(det, box, score))
        n_boxes += len(objs)
        write_label_file(out_dir / f"{frame}.txt", objs)
    seconds = time.time() - t0
    return {"frames": len(frame_ids), "detections_2d": n_det, "boxes_3d": n_boxes,
            "skipped_no_points": n_empty, "skipped_few_points": n_few, "skipped_small": n_small,
            "boxes2d": boxes2d_source_name(boxes2d), "seconds": round(seconds, 3),
            "cpu_seconds": round(time.process_time() - cpu0, 3),
            "frames_per_s": round(len(frame_ids) / seconds, 2) if seconds > 0 else None}


@numpy_blas_one_thread
def infer_fpointnet(data_root: Path, points_dir: Path, frame_ids: Sequence[str], model_path: Path,
                    settings: FPointNetSettings, out_dir: Path, *, boxes2d: str | Path = "simulated",
                    progress: bool = True) -> dict:
    """Detect 3D boxes in every frame and write ``out_dir/NNNNNN.txt`` (KITTI results, one per
    frame, an empty file when nothing is found).

    Args:
        data_root: KITTI root (calib, image_2; label_2 for ``gt`` and ``simulated`` boxes).
        points_dir: folder of velodyne-format clouds ``NNNNNN.bin`` (LiDAR or pseudo-LiDAR).
        frame_ids: frames to process.
        model_path: a ``model.pt`` from :func:`detection.frustum_pointnet.train.train_fpointnet`.
        settings: inference settings (classes, num_points, seed, device, min_points_detection);
            the network's shape comes from the model file.
        out_dir: result folder.
        boxes2d: ``simulated``, ``gt``, an rgb_detection file, or a KITTI 2D detection folder.
        progress: show a progress bar.

    Returns:
        Summary: frames, detections_2d, boxes_3d, skipped_no_points, skipped_few_points,
        skipped_small (2D box < ``min_box_height_px``), boxes2d (source name), seconds,
        cpu_seconds, frames_per_s, device, score (which score the results carry).
    """
    device = select_device(settings.device)
    if settings.num_threads and device.type == "cpu":
        torch.set_num_threads(settings.num_threads)
    model, trained = load_model(model_path, device)
    classes = tuple(c for c in settings.classes if c in trained.classes)
    if not classes:
        raise ValueError(f"the model was trained on {trained.classes}, none of {settings.classes}")
    settings = settings.with_(classes=classes)
    gen = torch.Generator(device=device).manual_seed(settings.seed)

    def estimate(cloud: FrameCloud, calib: Calibration, dets: list[Box2D], rng: np.random.Generator):
        # the network's random gather is seeded per frame (from the frame's seed sequence, without
        # drawing from ``rng``): a frame's boxes do not depend on the frames before it, so shards
        # of the frames (``--shard i/n``) write the same files as one run
        gen.manual_seed(int(rng.bit_generator.seed_seq.generate_state(1, np.uint64)[0] >> np.uint64(1)))
        inputs, rots, kept, empty, few = [], [], [], 0, 0
        for k, det in enumerate(dets):
            got = detection_input(cloud, det.box, calib, settings.num_points, rng)
            if got is None:
                empty += 1
                continue
            pts, rot, n = got
            if det.score is not None and n < settings.min_points_detection:
                few += 1
                continue
            inputs.append(pts)
            rots.append(rot)
            kept.append(k)
        if not inputs:
            return [], [], empty, few
        pts = torch.from_numpy(np.stack(inputs)).to(device)
        oh = torch.from_numpy(np.stack([onehot(dets[k].type) for k in kept])).to(device)
        with torch.no_grad():
            out = model(pts, oh, generator=gen)
        return decode(out, np.array(rots)), kept, empty, few

    summary = _run(Path(data_root), Path(points_dir), frame_ids, settings, Path(out_dir), boxes2d,
                   progress, estimate, use_logprob=True)
    summary["device"] = str(device)
    summary["score"] = "2D detector score" if str(boxes2d) != "gt" else "3D log-probability"
    return summary


@numpy_blas_one_thread
def infer_trivial_baseline(data_root: Path, points_dir: Path, frame_ids: Sequence[str],
                           settings: FPointNetSettings, out_dir: Path, *,
                           boxes2d: str | Path = "simulated", progress: bool = True) -> dict:
    """The trivial baseline on the same frustums: for each 2D box, a box of the class's mean size
    at the median of the frustum's points, heading 0; score = the 2D score (1.0 for ``gt``).

    Same arguments and summary as :func:`infer_fpointnet` (without a model).
    """

    def estimate(cloud: FrameCloud, calib: Calibration, dets: list[Box2D], rng: np.random.Generator):
        boxes, kept, empty, few = [], [], 0, 0
        for k, det in enumerate(dets):
            m = in_box2d_mask(cloud.uv_img, det.box)
            n = int(m.sum())
            if n == 0:
                empty += 1
                continue
            if det.score is not None and n < settings.min_points_detection:
                few += 1
                continue
            boxes.append(trivial_box(cloud.points_rect[m], det.type))
            kept.append(k)
        return boxes, kept, empty, few

    return _run(Path(data_root), Path(points_dir), frame_ids, settings, Path(out_dir), boxes2d,
                progress, estimate, use_logprob=False)
