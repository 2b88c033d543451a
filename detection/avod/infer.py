"""AVOD inference: one KITTI result file per frame (empty when nothing is found).

Reproduce (cpu-small; see docs/avod.md)::

    foresee detect infer --detector avod --data data/embedded --points ARTIFACT --model ARTIFACT

Per frame: the second stage's boxes (proposal box_4c + predicted offsets, heading resolved by the
orientation vector) with score = softmax probability of the class, BEV NMS (``final_nms_iou`` on
the boxes' axis-aligned BEV rectangles, as the original), at most ``max_detections`` boxes scoring
>= ``min_score``. Result lines carry the 2D box of the projected corners (clipped to the image),
``alpha = ry - atan2(x, z)``, truncation and occlusion -1.
"""

from __future__ import annotations

import io
import time
from dataclasses import asdict
from os import PathLike
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torchvision.ops import nms
from tqdm import tqdm

from kitti.boxes import alpha_from_ry, box_corners_rect
from kitti.calib import Calibration
from kitti.errors import KittiFormatError
from kitti.fileio import atomic_write_bytes
from kitti.labels import Object3d, write_label_file
from kitti.layout import KittiRoot
from kitti.progress import tqdm_disable
from detection.avod import CODE_VERSION
from detection.avod.data import FrameInputs, load_frame, planes_dir_for
from detection.avod.encoding import anchors_to_bev_xyxy, anchors_to_boxes, box_4c_to_boxes, boxes_to_4c, boxes_to_anchors
from detection.avod.model import AvodNet, AvodOutput, FrameGeometry
from detection.avod.planes import write_plane_file
from detection.avod.settings import AvodSettings
from detection.runtime import check_frame_inputs, numpy_blas_one_thread, setup_device
from engine.checkpoint import load_weights_only


def save_model(path: Path, model: AvodNet, settings: AvodSettings, sizes_lwh: np.ndarray) -> None:
    """Write weights, settings and anchor sizes to ``path`` atomically."""
    buf = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "settings": asdict(settings),
                "anchor_sizes_lwh": np.asarray(sizes_lwh, dtype=np.float64).tolist(),
                "code_version": CODE_VERSION}, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_model(path: str | PathLike[str], device: torch.device) -> tuple[AvodNet, AvodSettings, np.ndarray]:
    """Load a ``model.pt`` of :func:`save_model`: (network in eval mode, its settings, anchor sizes),
    read with :func:`engine.checkpoint.load_weights_only` (no code of the file runs).

    Raises:
        KittiFormatError: a missing or unreadable file, or one holding other objects (refused).
    """
    path = Path(path)
    blob = load_weights_only(path, map_location=device, what="an AVOD model file")
    try:
        trained = AvodSettings.from_dict(blob["settings"])
        sizes = np.array(blob["anchor_sizes_lwh"], dtype=np.float64)
        model = AvodNet(trained).to(device)
        model.load_state_dict(blob["state_dict"])
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise KittiFormatError(path, None, f"not an AVOD model file ({e})") from None
    model.eval()
    return model, trained, sizes


def frame_tensors(inputs: FrameInputs, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None,
                                                                       torch.Tensor, FrameGeometry]:
    """(bev (1, C, rows, cols), image (1, 3, H, W) or None, anchors (N, 6) float32, geometry)."""
    bev = torch.from_numpy(inputs.bev)[None].to(device)
    image = None if inputs.image is None else torch.from_numpy(inputs.image)[None].to(device)
    anchors = torch.from_numpy(inputs.anchors).float().to(device)
    geom = FrameGeometry(torch.from_numpy(inputs.P2).float().to(device), (float(inputs.image_wh[0]),
                                                                          float(inputs.image_wh[1])), inputs.flipped)
    return bev, image, anchors, geom


def decode_detections(out: AvodOutput, plane: np.ndarray, settings: AvodSettings) -> tuple[np.ndarray, np.ndarray]:
    """Second-stage outputs -> (boxes (K, 7) float64 ``[x, y, z, h, w, l, ry]``, scores (K,)) after
    the score threshold, BEV NMS and the ``max_detections`` limit, best first."""
    props = out.proposals.double()
    p = torch.as_tensor(plane, dtype=torch.float64, device=props.device)
    scores = torch.softmax(out.cls_logits.double(), dim=1)[:, 1]
    boxes = box_4c_to_boxes(boxes_to_4c(anchors_to_boxes(props), p) + out.box_4c_offsets.double(), p,
                            out.orientation.double())
    ok = (scores >= settings.min_score) & torch.isfinite(boxes).all(dim=1) & (boxes[:, 3:6] > 0).all(dim=1)
    boxes, scores = boxes[ok], scores[ok]
    keep = nms(anchors_to_bev_xyxy(boxes_to_anchors(boxes)), scores, settings.final_nms_iou)[:settings.max_detections]
    return boxes[keep].cpu().numpy(), scores[keep].cpu().numpy()


def result_objects(boxes: np.ndarray, scores: np.ndarray, calib: Calibration, image_hw: tuple[int, int],
                   class_name: str) -> list[Object3d]:
    """KITTI result lines: 2D box of the projected corners clipped to the image, real alpha."""
    objs = []
    if len(boxes) == 0:
        return objs
    corners = box_corners_rect(boxes[:, 0:3], boxes[:, 3:6], boxes[:, 6])
    h_img, w_img = image_hw
    for box, score, c in zip(boxes, scores, corners):
        uv, _ = calib.rect_to_img(c)
        u1, u2 = np.clip([uv[:, 0].min(), uv[:, 0].max()], 0, w_img - 1)
        v1, v2 = np.clip([uv[:, 1].min(), uv[:, 1].max()], 0, h_img - 1)
        x, y, z, h, w, l, ry = (float(v) for v in box)
        objs.append(Object3d(class_name, -1.0, -1, float(alpha_from_ry(ry, x, z)), float(u1), float(v1),
                             float(u2), float(v2), h, w, l, x, y, z, ry, float(score)))
    return objs


@numpy_blas_one_thread
def infer_avod(data_root: Path, points_dir: Path, frame_ids: Sequence[str], model_path: Path,
               settings: AvodSettings, out_dir: Path, *, planes_out: Path | None = None,
               progress: bool = True) -> dict:
    """Detect boxes in every frame and write ``out_dir/NNNNNN.txt`` (one per frame).

    Args:
        data_root: KITTI root (calib, image_2).
        points_dir: folder of velodyne-format clouds ``NNNNNN.bin``.
        frame_ids: frames to process.
        model_path: a ``model.pt`` of :func:`detection.avod.train.train_avod`.
        settings: runtime settings (device, num_threads); everything else comes from the model.
        out_dir: result folder.
        planes_out: write each frame's ground plane there (``planes/`` format) when given.
        progress: show a progress bar.

    Returns:
        Summary: frames, boxes, frames_without_boxes, anchors_mean, seconds, cpu_seconds,
        frames_per_s, device.
    """
    root = KittiRoot(data_root)
    frame_ids = tuple(frame_ids)
    check_frame_inputs(root, frame_ids, points_dir, ("calib", "image_2"))
    device = setup_device(settings.device, settings.num_threads)
    model, trained, sizes = load_model(model_path, device)
    planes_dir = planes_dir_for(Path(points_dir))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0, cpu0 = time.time(), time.process_time()
    n_boxes = n_empty = n_anchors = 0
    for frame in tqdm(frame_ids, desc="avod infer", disable=tqdm_disable(progress), unit="frame"):
        inputs = load_frame(root, Path(points_dir), frame, trained, sizes, planes_dir=planes_dir, with_labels=False)
        if planes_out is not None:
            write_plane_file(Path(planes_out) / f"{frame}.txt", inputs.plane)
        n_anchors += len(inputs.anchors)
        objs: list[Object3d] = []
        if len(inputs.anchors):
            bev, image, anchors, geom = frame_tensors(inputs, device)
            with torch.no_grad():
                out = model(bev, image, anchors, geom)
            boxes, scores = decode_detections(out, inputs.plane, trained)
            objs = result_objects(boxes, scores, root.calib(frame), root.image_hw(frame), trained.class_name)
        n_boxes += len(objs)
        n_empty += not objs
        write_label_file(out_dir / f"{frame}.txt", objs)
    seconds = time.time() - t0
    return {"frames": len(frame_ids), "boxes": n_boxes, "frames_without_boxes": n_empty,
            "anchors_mean": round(n_anchors / max(len(frame_ids), 1), 1), "seconds": round(seconds, 3),
            "cpu_seconds": round(time.process_time() - cpu0, 3),
            "frames_per_s": round(len(frame_ids) / seconds, 2) if seconds > 0 else None, "device": str(device)}
