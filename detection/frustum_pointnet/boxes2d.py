"""2D boxes that define frustums: ground truth, F-PointNet detection files, KITTI-format detection
folders, and a seeded **simulated** 2D detector built from the ground truth.

Sources (the ``boxes2d`` argument of inference):

* ``gt`` — the label's 2D boxes, unperturbed (F-PointNet's val mode); these carry no score, so the
  3D network's log-probability becomes the score.
* a **file** in F-PointNet's ``rgb_detection`` format, one detection per line::

      img_path typeid score x1 y1 x2 y2        typeid: 1 Pedestrian, 2 Car, 3 Cyclist

  (frame id = the image file's stem, e.g. ``.../image_2/000123.png``).
* a **folder** of KITTI-format 2D detections ``NNNNNN.txt``: label_2 lines with a 16th field, the
  score; only type, bbox and score are read (the 3D fields are usually ``-1``/``-1000``).
* ``simulated`` — no 2D detector exists for the embedded benchmark, so :func:`simulated_detections`
  derives detections from the ground truth: jittered boxes, misses that grow with distance,
  occlusion, truncation and small size, false positives, and scores. **Results that use it are not
  comparable with results from a real 2D detector** and every report says ``simulated``.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from kitti.classes import KITTI_TYPES
from kitti.errors import KittiFormatError
from kitti.fileio import read_text_file
from kitti.labels import Object3d

#: F-PointNet's ``rgb_detection`` class ids (``read_det_file``).
RGB_DETECTION_TYPE_IDS: Mapping[int, str] = {1: "Pedestrian", 2: "Car", 3: "Cyclist"}


@dataclass(frozen=True)
class Box2D:
    """One 2D box in image_2 pixels (x right, y down), with a class and an optional score.

    Attributes:
        type: class name.
        x1, y1, x2, y2: box corners in pixels (x1 <= x2, y1 <= y2).
        score: detector confidence, ``None`` for ground truth.
    """

    type: str
    x1: float
    y1: float
    x2: float
    y2: float
    score: float | None = None

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)

    @property
    def height_px(self) -> float:
        return self.y2 - self.y1


def gt_boxes(objects: Iterable[Object3d], classes: Sequence[str], *,
             min_height_px: float = 0.0) -> list[Box2D]:
    """The unperturbed ground-truth 2D boxes of ``classes`` at least ``min_height_px`` high."""
    return [Box2D(o.type, o.x1, o.y1, o.x2, o.y2, None) for o in objects
            if o.type in classes and o.height_px >= min_height_px]


def _check_box(vals: list[float], path: Path, lineno: int) -> None:
    if not all(math.isfinite(v) for v in vals):
        raise KittiFormatError(path, lineno, "non-finite number in a 2D detection")
    x1, y1, x2, y2 = vals[-4:]
    if x2 < x1 or y2 < y1:
        raise KittiFormatError(path, lineno, f"expected x1 <= x2 and y1 <= y2, got box "
                               f"({x1}, {y1}, {x2}, {y2})")


def _token_lines(path: Path, text: str, n_fields: int, layout: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, tokens) of every non-blank line, each checked to have ``n_fields`` fields."""
    for lineno, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) != n_fields:
            raise KittiFormatError(path, lineno, f"expected {n_fields} fields ({layout}), got {len(tokens)}")
        yield lineno, tokens


def read_rgb_detection_file(path: str | PathLike[str], known_frames: Iterable[str],
                            classes: Sequence[str]) -> dict[str, list[Box2D]]:
    """Read an F-PointNet ``rgb_detection`` text file.

    Args:
        path: the file.
        known_frames: every frame id of the dataset; a line naming another frame is an error.
        classes: classes to keep (lines of other known classes are skipped).

    Returns:
        frame id -> its detections of ``classes`` (frames without any are absent).

    Raises:
        KittiFormatError: missing file, wrong field count, non-numeric field, unknown type id,
            unknown frame, or an inverted box, naming the line.
    """
    path = Path(path)
    text = read_text_file(path, "2D detection file")
    known = set(known_frames)
    out: dict[str, list[Box2D]] = {}
    for lineno, tokens in _token_lines(path, text, 7, "img_path typeid score x1 y1 x2 y2"):
        frame = Path(tokens[0]).stem
        if frame not in known:
            raise KittiFormatError(path, lineno, f"unknown frame {frame!r} (from {tokens[0]!r})")
        try:
            type_id = int(tokens[1])
        except ValueError:
            raise KittiFormatError(path, lineno, f"type id is not an integer: {tokens[1]!r}") from None
        if type_id not in RGB_DETECTION_TYPE_IDS:
            raise KittiFormatError(path, lineno, f"unknown type id {type_id} (expected 1 Pedestrian, "
                                   "2 Car, 3 Cyclist)")
        try:
            vals = [float(t) for t in tokens[2:]]
        except ValueError:
            raise KittiFormatError(path, lineno, "score and box must be numbers") from None
        _check_box(vals, path, lineno)
        kind = RGB_DETECTION_TYPE_IDS[type_id]
        if kind in classes:
            out.setdefault(frame, []).append(Box2D(kind, *vals[1:], score=vals[0]))
    return out


def read_kitti_2d_folder(folder: str | PathLike[str], frame_ids: Iterable[str],
                         classes: Sequence[str]) -> dict[str, list[Box2D]]:
    """Read KITTI-format 2D detections (``folder/NNNNNN.txt``, 16 fields with score last).

    Only type, bbox (fields 5-8) and score (field 16) are read. Every requested frame must have a
    file (an empty file = no detection).

    Raises:
        KittiFormatError: a missing file, wrong field count, an unknown type, a bad number.
    """
    folder = Path(folder)
    out: dict[str, list[Box2D]] = {}
    for frame in frame_ids:
        path = folder / f"{frame}.txt"
        if not path.is_file():
            raise KittiFormatError(path, None, "2D detection file of this frame not found "
                                   "(write an empty file for a frame without detections)")
        text = read_text_file(path, "2D detection file")
        dets = []
        for lineno, tokens in _token_lines(path, text, 16, "a label_2 line plus score"):
            if tokens[0] not in KITTI_TYPES:
                raise KittiFormatError(path, lineno, f"unknown class {tokens[0]!r}")
            try:
                vals = [float(tokens[15])] + [float(t) for t in tokens[4:8]]
            except ValueError:
                raise KittiFormatError(path, lineno, "bbox and score must be numbers") from None
            _check_box(vals, path, lineno)
            if tokens[0] in classes:
                dets.append(Box2D(tokens[0], *vals[1:], score=vals[0]))
        out[frame] = dets
    return out


@dataclass(frozen=True)
class SimulatedDetector:
    """Parameters of the simulated 2D detector (a stand-in: no 2D detector exists here).

    A ground-truth object is missed with probability ``miss_base + miss_occlusion[occluded] +
    miss_distance · clip((z - miss_distance_from_m) / miss_distance_span_m, 0, 1) +
    miss_truncation · truncated + (miss_small if height < small_height_px)``, clipped to
    [0, ``miss_max``]. A detected object's box is jittered: centre by N(0, σ)·(w, h) and each size
    by ×exp(N(0, σ)), with ``σ = jitter_sigma · (1 + z / 40 m)``, then clipped to the image. Its
    score is ``sigmoid(score_logit_base - score_logit_per_miss · p_miss + N(0, score_noise))``.
    Each frame also gets Poisson(``false_positives_per_frame``) false positives per class: boxes
    of plausible size for the class, bottom edge in the lower half of the image, scored
    ``sigmoid(fp_logit + N(0, score_noise))``. Every draw comes from
    ``numpy.random.default_rng([seed, frame number])``, so a frame's detections do not depend on
    which other frames are processed.
    """

    miss_base: float = 0.03
    miss_occlusion: tuple[float, float, float, float] = (0.0, 0.10, 0.30, 0.30)
    miss_distance: float = 0.40
    miss_distance_from_m: float = 25.0
    miss_distance_span_m: float = 45.0
    miss_truncation: float = 0.30
    miss_small: float = 0.20
    small_height_px: float = 25.0
    miss_max: float = 0.95
    jitter_sigma: float = 0.03
    score_logit_base: float = 2.5
    score_logit_per_miss: float = 4.0
    score_noise: float = 0.75
    false_positives_per_frame: float = 0.4
    fp_logit: float = -1.0


_FP_SHAPE = {"Car": (1.2, 2.5), "Pedestrian": (0.3, 0.5), "Cyclist": (0.6, 1.1)}  # w/h ranges


def _frame_seed(frame_id: str) -> int:
    return int(frame_id) if frame_id.isdigit() else zlib.crc32(frame_id.encode())


def simulated_detections(frame_id: str, objects: Sequence[Object3d], image_hw: tuple[int, int],
                         classes: Sequence[str], *, seed: int = 0,
                         params: SimulatedDetector = SimulatedDetector()) -> list[Box2D]:
    """Simulated 2D detections of one frame, drawn from its ground truth (see
    :class:`SimulatedDetector`). Not a real detector: name it ``simulated`` in every report.

    Args:
        frame_id: the frame (its number seeds the draws together with ``seed``).
        objects: the frame's labels.
        image_hw: (H, W) of image_2.
        classes: classes to detect.
        seed: the run's seed.
        params: the simulator's parameters.
    """
    rng = np.random.default_rng([seed, _frame_seed(frame_id)])
    h_img, w_img = image_hw
    out = []
    for o in objects:
        if o.type not in classes:
            continue
        occ = params.miss_occlusion[min(max(o.occluded, 0), 3)]
        dist = min(max((o.z - params.miss_distance_from_m) / params.miss_distance_span_m, 0.0), 1.0)
        p_miss = (params.miss_base + occ + params.miss_distance * dist
                  + params.miss_truncation * max(o.truncated, 0.0)
                  + (params.miss_small if o.height_px < params.small_height_px else 0.0))
        p_miss = min(max(p_miss, 0.0), params.miss_max)
        u_miss, n = rng.random(), rng.standard_normal(5)  # always draw: stable streams
        if u_miss < p_miss:
            continue
        sigma = params.jitter_sigma * (1.0 + max(o.z, 0.0) / 40.0)
        w, h = o.x2 - o.x1, o.y2 - o.y1
        cx = (o.x1 + o.x2) / 2.0 + n[0] * sigma * w
        cy = (o.y1 + o.y2) / 2.0 + n[1] * sigma * h
        w2, h2 = w * math.exp(n[2] * sigma), h * math.exp(n[3] * sigma)
        x1, x2 = max(cx - w2 / 2, 0.0), min(cx + w2 / 2, w_img - 1.0)
        y1, y2 = max(cy - h2 / 2, 0.0), min(cy + h2 / 2, h_img - 1.0)
        if x2 - x1 < 1 or y2 - y1 < 1:
            continue
        logit = params.score_logit_base - params.score_logit_per_miss * p_miss + params.score_noise * n[4]
        out.append(Box2D(o.type, x1, y1, x2, y2, 1.0 / (1.0 + math.exp(-logit))))
    for kind in classes:
        for _ in range(rng.poisson(params.false_positives_per_frame)):
            lo, hi = _FP_SHAPE.get(kind, (0.5, 2.0))
            h = rng.uniform(20.0, 120.0)
            w = h * rng.uniform(lo, hi)
            bottom = rng.uniform(0.5 * h_img, 0.95 * h_img)
            left = rng.uniform(0.0, max(w_img - w, 1.0))
            logit = params.fp_logit + params.score_noise * rng.standard_normal()
            out.append(Box2D(kind, left, max(bottom - h, 0.0), min(left + w, w_img - 1.0), bottom,
                             1.0 / (1.0 + math.exp(-logit))))
    return out
