"""Training frames of the 2D detector: label_2 boxes sorted into positives, ignore regions and
background (once, for every frame), images read from disk and scaled when a batch needs them
(:class:`TrainImages`), and the input checks.

Label sorting (per ``label_2`` line):

* type in ``settings.classes`` and at least ``min_train_height_px`` high: a positive box;
* type in ``settings.ignore_classes`` (``DontCare``, ``Van``, ``Person_sitting``), or a class box
  lower than ``min_train_height_px``: an **ignore region** (see :mod:`detect2d.model`);
* another KITTI type (``Truck``, ``Tram``, ``Misc``): background, nothing to learn;
* a type KITTI does not have: **skipped and counted** (``unknown_types`` in the summary).

Image checks: every image must have the reference size (the first training image's, or the one
the model was trained on) within ``size_tolerance`` in each axis — real KITTI drives differ by
~1.5 % — and the calibration's principal point must lie inside it; otherwise a
:class:`~kitti.errors.KittiFormatError` names the image.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from tqdm import tqdm

from kitti.classes import KITTI_TYPES
from kitti.errors import KittiFormatError
from kitti.labels import Object3d
from kitti.layout import KittiRoot
from kitti.progress import tqdm_disable

from detect2d.settings import Detect2DSettings


@dataclass(frozen=True)
class TrainFrame:
    """One training image at the training scale.

    Attributes:
        frame_id: the frame.
        image: (h, w, 3) uint8 RGB, scaled by ``image_scale``.
        boxes: (N, 4) float32 positive boxes ``x1, y1, x2, y2`` in scaled pixels.
        labels: (N,) int64 indices into ``settings.classes``.
        ignore_boxes: (K, 4) float32 ignore regions in scaled pixels.
    """

    frame_id: str
    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    ignore_boxes: np.ndarray


def check_image(path: Path, image_hw: tuple[int, int], reference_hw: tuple[int, int],
                tolerance: float, calib=None) -> None:
    """Refuse an image whose size is off the reference by more than ``tolerance`` per axis, or
    whose calibration's principal point lies outside it.

    Raises:
        KittiFormatError: naming the image.
    """
    (h, w), (rh, rw) = image_hw, reference_hw
    if abs(h - rh) > tolerance * rh or abs(w - rw) > tolerance * rw:
        raise KittiFormatError(path, None, f"image is {w}x{h} (WxH), the dataset's images are "
                               f"{rw}x{rh} (tolerance {tolerance:.0%}): refused")
    if calib is not None and not (0.0 < calib.cu < w and 0.0 < calib.cv < h):
        raise KittiFormatError(path, None, f"the calibration's principal point ({calib.cu:.1f}, "
                               f"{calib.cv:.1f}) lies outside this {w}x{h} image: image and "
                               "calibration do not belong together")


def scaled_size(image_hw: tuple[int, int], scale: float) -> tuple[int, int]:
    """(h, w) of an image resized by ``scale`` (rounded, at least 1 px)."""
    return max(int(round(image_hw[0] * scale)), 1), max(int(round(image_hw[1] * scale)), 1)


def scale_image(image: np.ndarray, scale: float) -> np.ndarray:
    """Resize an (H, W, 3) image by ``scale`` (area interpolation when shrinking)."""
    if scale == 1.0:
        return image
    h, w = scaled_size(image.shape[:2], scale)
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(image, (w, h), interpolation=interp)


def sort_labels(objects: Sequence[Object3d], settings: Detect2DSettings,
                counts: Counter | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes (N, 4), labels (N,), ignore_boxes (K, 4)) in full-resolution pixels, float64.

    ``counts`` (when given) is increased per outcome: ``positive``, ``ignored``,
    ``background``, ``unknown_types`` and ``degenerate`` (zero-area boxes, skipped).
    """
    counts = counts if counts is not None else Counter()
    boxes, labels, ignore = [], [], []
    for o in objects:
        box = (o.x1, o.y1, o.x2, o.y2)
        if o.type not in KITTI_TYPES:
            counts["unknown_types"] += 1
            continue
        if o.type in settings.classes and o.x2 - o.x1 > 0 and o.y2 - o.y1 > 0:
            if o.height_px >= settings.min_train_height_px:
                boxes.append(box)
                labels.append(settings.classes.index(o.type))
                counts["positive"] += 1
            else:
                ignore.append(box)
                counts["ignored"] += 1
        elif o.type in settings.classes:
            counts["degenerate"] += 1
        elif o.type in settings.ignore_classes:
            ignore.append(box)
            counts["ignored"] += 1
        else:
            counts["background"] += 1
    return (np.array(boxes, dtype=np.float64).reshape(-1, 4), np.array(labels, dtype=np.int64),
            np.array(ignore, dtype=np.float64).reshape(-1, 4))


@dataclass(frozen=True)
class TrainLabels:
    """One training frame's boxes at the training scale (its image is read when a batch needs it).

    Attributes: as :class:`TrainFrame`, without the image.
    """

    frame_id: str
    boxes: np.ndarray
    labels: np.ndarray
    ignore_boxes: np.ndarray


def read_train_labels(root: KittiRoot, frame_ids: Sequence[str], settings: Detect2DSettings, *,
                      progress: bool = True) -> tuple[list[TrainLabels], tuple[int, int], Counter]:
    """Check every training image (its size from the file header, the calibration's principal
    point) and sort its labels; no image is decoded.

    Returns:
        (labels per frame, reference (H, W) of the full-resolution images, label counts of
        :func:`sort_labels` plus ``frames_without_positives``).

    Raises:
        KittiFormatError: a missing or malformed file, or an image refused by :func:`check_image`.
    """
    frame_ids = tuple(frame_ids)
    if not frame_ids:
        raise KittiFormatError(root.folder("image_2"), None, "no training frame in the split")
    root.check(frame_ids, ("image_2", "label_2", "calib"))
    reference_hw = root.image_hw(frame_ids[0])
    counts: Counter = Counter()
    out = []
    s = settings.image_scale
    for f in tqdm(frame_ids, desc="check train frames", disable=tqdm_disable(progress), unit="frame"):
        check_image(root.path("image_2", f), root.image_hw(f), reference_hw, settings.size_tolerance, root.calib(f))
        boxes, labels, ignore = sort_labels(root.labels(f), settings, counts)
        if len(boxes) == 0:
            counts["frames_without_positives"] += 1
        out.append(TrainLabels(f, (boxes * s).astype(np.float32), labels, (ignore * s).astype(np.float32)))
    return out, reference_hw, counts


class TrainImages:
    """A map-style dataset (``torch.utils.data``): index -> :class:`TrainFrame`, the image read
    from disk and scaled by ``scale`` (DataLoader workers read in parallel; nothing is kept)."""

    def __init__(self, root: KittiRoot, labels: Sequence[TrainLabels], scale: float):
        self.root, self.labels, self.scale = root, list(labels), scale

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> TrainFrame:
        lab = self.labels[i]
        image = scale_image(self.root.image(lab.frame_id), self.scale)
        return TrainFrame(lab.frame_id, image, lab.boxes, lab.labels, lab.ignore_boxes)
