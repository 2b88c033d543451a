"""Inference of the 2D detector: one KITTI result file per frame.

Each line is a label_2 line plus score, with the 3D fields the devkit expects of a 2D-only
detection (F-PointNet's ``rgb_detection`` files convert to the same)::

    Car -1 -1 -10 x1 y1 x2 y2 -1 -1 -1 -1000 -1000 -1000 -10 score

(truncation -1, occlusion -1, alpha -10, box in full-resolution image_2 pixels, h w l -1,
location -1000, rotation_y -10). An empty file is a frame without detections. The evaluator
(``kitti_eval``, metric ``2d``) and ``detection.frustum_pointnet.boxes2d.read_kitti_2d_folder``
read these folders.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torchvision.ops import batched_nms, box_iou
from tqdm import tqdm

from kitti.labels import Object3d, write_label_file
from kitti.layout import KittiRoot
from kitti.progress import tqdm_disable

from detect2d.data import check_image, scale_image
from detect2d.model import build_detector
from detect2d.settings import Detect2DSettings
from engine.checkpoint import load_weights_only
from engine.runtime import select_device


def detection_object(kind: str, box: Sequence[float], score: float) -> Object3d:
    """The KITTI result record of one 2D detection (3D fields -1 / -1000, alpha -10)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return Object3d(kind, -1.0, -1, -10.0, x1, y1, x2, y2, -1.0, -1.0, -1.0,
                    -1000.0, -1000.0, -1000.0, -10.0, float(score))


def load_model(path: Path, device: torch.device, *, encoder: torch.nn.Module | None = None
               ) -> tuple[torch.nn.Module, Detect2DSettings, tuple[int, int]]:
    """(model in eval mode, its settings, the reference image (H, W)) from a ``model.pt``.

    Read with :func:`engine.checkpoint.load_weights_only` (no code of the file runs).

    Raises:
        KittiFormatError: a missing file, or one that is not a 2D detector's ``model.pt``.
    """
    ck = load_weights_only(Path(path), map_location=device, what="a 2D detector model file")
    settings = Detect2DSettings.from_dict(ck["settings"])
    # the trained weights replace the encoder's, so never look for ImageNet weights here
    model = build_detector(settings.with_(encoder_weights="none"), encoder=encoder)
    model.load_state_dict(ck["state_dict"])
    model.to(device).eval()
    return model, settings, tuple(ck["reference_hw"])


def merge_detections(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, *,
                     nms_thresh: float, vote_iou: float, max_detections: int
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-class NMS (torchvision's ``batched_nms``) of candidate boxes, then box voting.

    Box voting (Gidaris & Komodakis 2015): each kept box becomes the score-weighted mean of the
    candidates of its class whose IoU with it is at least ``vote_iou`` (itself included); its
    score is unchanged. ``vote_iou`` 0 turns voting off (NMS only).

    Args:
        boxes: (N, 4) x1, y1, x2, y2; scores: (N,); labels: (N,) class indices.
        nms_thresh: IoU of the NMS; max_detections: at most this many kept, best first.

    Returns:
        (boxes, scores, labels) of the kept detections, by decreasing score.
    """
    keep = batched_nms(boxes, scores, labels, nms_thresh)[:max_detections]
    kept = boxes[keep]
    if vote_iou > 0.0 and len(keep):
        iou = torch.nan_to_num(box_iou(kept, boxes))                  # (K, N); degenerate boxes 0
        members = (iou >= vote_iou) & (labels[keep][:, None] == labels[None, :])
        members[torch.arange(len(keep)), keep] = True
        weights = members.to(boxes.dtype) * scores[None, :]
        kept = weights @ boxes / weights.sum(1, keepdim=True)
    return kept, scores[keep], labels[keep]


@torch.no_grad()
def detect_image(model: torch.nn.Module, image: np.ndarray, scales: float | Sequence[float],
                 device: torch.device, *, nms_thresh: float = 0.5, vote_iou: float = 0.0,
                 max_detections: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detections of one (H, W, 3) uint8 RGB image: (boxes (N, 4) in its full-resolution
    pixels, clipped to it, float64; scores (N,); labels (N,) indices into the classes).

    The model detects the image resized by each of ``scales``. With one scale and no voting its
    own NMS gives the detections. Otherwise its NMS is skipped (threshold 1: every candidate above
    the score threshold is kept) and the candidates of all scales, mapped back to full
    resolution, are merged by :func:`merge_detections`, so that voting averages every candidate
    box, not just the survivors of each scale's NMS."""
    h, w = image.shape[:2]
    scales = (scales,) if isinstance(scales, (int, float)) else tuple(scales)
    merge = len(scales) > 1 or vote_iou > 0.0
    saved = model.nms_thresh, model.detections_per_img
    if merge:
        model.nms_thresh, model.detections_per_img = 1.0, 10 ** 6
    parts = []
    try:
        for scale in scales:
            small = scale_image(image, scale)
            x = torch.from_numpy(np.ascontiguousarray(small)).permute(2, 0, 1).float().div_(255.0).to(device)
            out = model([x])[0]
            sy, sx = h / small.shape[0], w / small.shape[1]
            boxes = out["boxes"].double().cpu() * torch.tensor([sx, sy, sx, sy], dtype=torch.float64)
            parts.append((boxes, out["scores"].double().cpu(), out["labels"].cpu()))
    finally:
        model.nms_thresh, model.detections_per_img = saved
    boxes, scores, labels = (torch.cat(t) for t in zip(*parts))
    if merge:
        boxes, scores, labels = merge_detections(boxes, scores, labels, nms_thresh=nms_thresh,
                                                 vote_iou=vote_iou, max_detections=max_detections)
    boxes = boxes.numpy().copy()
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0.0, w - 1.0)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0.0, h - 1.0)
    return boxes, scores.numpy(), labels.numpy()


@dataclass(frozen=True)
class Detector2D:
    """A loaded 2D detector with the inference settings it runs with (:func:`open_detector`)."""

    model: torch.nn.Module
    settings: Detect2DSettings
    reference_hw: tuple[int, int]
    device: torch.device

    def check(self, root: KittiRoot, frame_id: str) -> None:
        """Refuse a frame whose image the model cannot take (:func:`detect2d.data.check_image`)."""
        check_image(root.path("image_2", frame_id), root.image_hw(frame_id), self.reference_hw,
                    self.settings.size_tolerance, root.calib(frame_id))

    def detect(self, image: np.ndarray) -> list[Object3d]:
        """The result records of one (H, W, 3) uint8 RGB image, as :func:`infer_detector` writes them."""
        s = self.settings
        boxes, scores, labels = detect_image(self.model, image, s.inference_scales, self.device,
                                             nms_thresh=s.nms_thresh, vote_iou=s.box_vote_iou,
                                             max_detections=s.detections_per_img)
        return [detection_object(s.classes[int(k)], b, p) for b, p, k in zip(boxes, scores, labels)]


def open_detector(model_path: Path, *, device: str = "auto", num_threads: int = 0,
                  score_thresh: float | None = None, encoder: torch.nn.Module | None = None,
                  options: dict | None = None) -> Detector2D:
    """A ``model.pt`` loaded for inference (arguments as :func:`infer_detector`'s)."""
    dev = select_device(device)
    if num_threads and dev.type == "cpu":
        torch.set_num_threads(num_threads)
    model, settings, reference_hw = load_model(Path(model_path), dev, encoder=encoder)
    settings = settings.with_(**(options or {}))
    if score_thresh is not None:
        settings = settings.with_(score_thresh=score_thresh)
    model.score_thresh, model.nms_thresh = settings.score_thresh, settings.nms_thresh
    model.detections_per_img, model.topk_candidates = settings.detections_per_img, settings.topk_candidates
    return Detector2D(model, settings, reference_hw, dev)


def infer_detector(data_root: Path, frame_ids: Sequence[str], model_path: Path, out_dir: Path, *,
                   device: str = "auto", num_threads: int = 0, score_thresh: float | None = None,
                   progress: bool = True, encoder: torch.nn.Module | None = None,
                   options: dict | None = None) -> dict:
    """Write ``out_dir/NNNNNN.txt`` (KITTI 2D results) for every frame.

    Args:
        data_root: KITTI-format root (image_2 and calib are read).
        frame_ids: frames to detect on.
        model_path: a ``model.pt`` of :func:`detect2d.train.train_detector`.
        out_dir: output folder (created).
        device: ``auto``, ``cpu`` or ``cuda``.
        num_threads: torch CPU threads (0 = leave torch's default).
        score_thresh: overrides the model's score threshold.
        progress: show a progress bar.
        encoder: an encoder module of the model's architecture (tests).
        options: inference fields replacing the model's (``Detect2DSettings.inference_options``:
            score and NMS thresholds, ``test_scale_factors``, ``box_vote_iou``); None keeps the model's.

    Returns:
        Summary: frames, detections per class, seconds, ``cpu_seconds``, frames/s (wall, model
        loading excluded).

    Raises:
        KittiFormatError: a missing image or calib, or an image refused by
        :func:`detect2d.data.check_image` (named).
    """
    root = KittiRoot(data_root)
    frame_ids = tuple(frame_ids)
    root.check(frame_ids, ("image_2", "calib"))
    det = open_detector(Path(model_path), device=device, num_threads=num_threads, score_thresh=score_thresh,
                        encoder=encoder, options=options)
    settings = det.settings
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in frame_ids:  # refuse a bad image before any work
        det.check(root, f)
    t0, cpu0 = time.time(), time.process_time()
    per_class = {c: 0 for c in settings.classes}
    for f in tqdm(frame_ids, desc="detect 2D", disable=tqdm_disable(progress), unit="frame"):
        objs = det.detect(root.image(f))
        for o in objs:
            per_class[o.type] += 1
        write_label_file(out_dir / f"{f}.txt", objs)
    seconds = time.time() - t0
    return {"frames": len(frame_ids), "detections": per_class, "seconds": round(seconds, 2),
            "cpu_seconds": round(time.process_time() - cpu0, 2),
            "frames_per_s": round(len(frame_ids) / max(seconds, 1e-9), 2),
            "classes": list(settings.classes), "architecture": settings.architecture,
            "encoder": settings.encoder, "image_scale": settings.image_scale,
            "test_scales": list(settings.inference_scales), "box_vote_iou": settings.box_vote_iou}
