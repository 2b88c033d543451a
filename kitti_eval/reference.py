"""Plain float64 twins of the numba kernels, written for reading, not speed (tests only).

* :func:`image_overlap_ref`, :func:`ground_overlap_ref`: one pair of boxes, geometry from
  :mod:`kitti.boxes` and polygon clipping by shapely (the ``test`` extra);
* :func:`eval_class_ref`: a line-by-line port of the devkit's ``cleanData``,
  ``computeStatistics``, ``getThresholds`` and ``eval_class`` over lists of
  :class:`kitti.Object3d`, one frame at a time, every threshold recomputed.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from kitti.boxes import box_bev_corners
from kitti.labels import MIN_HEIGHT_PX, MAX_OCCLUSION, MAX_TRUNCATION, Difficulty, Object3d

NO_DETECTION = -10000000.0
N_SAMPLE_PTS = 41
_NEIGHBOUR = {"car": "van", "pedestrian": "person_sitting"}


def image_overlap_ref(a: Object3d, b: Object3d, criterion: int = -1) -> float:
    """2D IoU (criterion -1) or intersection / area(a) (0) of two labels' pixel boxes."""
    w = min(a.x2, b.x2) - max(a.x1, b.x1)
    h = min(a.y2, b.y2) - max(a.y1, b.y1)
    if w <= 0 or h <= 0:
        return 0.0
    area_a = (a.x2 - a.x1) * (a.y2 - a.y1)
    area_b = (b.x2 - b.x1) * (b.y2 - b.y1)
    return w * h / area_a if criterion == 0 else w * h / (area_a + area_b - w * h)


def footprint(o: Object3d):
    """shapely polygon of the box's bird's-eye footprint in rect (x, z)."""
    from shapely.geometry import Polygon

    corners = box_bev_corners(np.array([o.loc_rect]), np.array([o.hwl]), np.array([o.ry]))[0]
    return Polygon(corners)


def ground_overlap_ref(d: Object3d, g: Object3d, criterion: int = -1,
                       three_d: bool = False) -> float:
    """BEV (or 3D with ``three_d``) IoU (criterion -1) or intersection / size of ``d`` (0).

    3D intersection = footprint intersection x overlap of ``[y - h, y]`` (bottom-centre boxes).
    Boxes with a non-positive footprint side intersect nothing.
    """
    if min(d.w, d.l, g.w, g.l) <= 0:
        return 0.0
    pd, pg = footprint(d), footprint(g)
    inter = pd.intersection(pg).area
    if not three_d:
        return inter / pd.area if criterion == 0 else inter / (pd.area + pg.area - inter)
    inter *= max(0.0, min(d.y, g.y) - max(d.y - d.h, g.y - g.h))
    vol_d, vol_g = d.h * d.w * d.l, g.h * g.w * g.l
    if criterion == 0:
        return inter / vol_d if vol_d > 0 else 0.0
    return inter / (vol_d + vol_g - inter) if vol_d + vol_g - inter > 0 else 0.0


Overlap = Callable[[Object3d, Object3d, int], float]


def clean_data_ref(cls: str, gt: Sequence[Object3d], det: Sequence[Object3d], diff: Difficulty):
    """The devkit's ``cleanData`` for one frame: (ignored_gt, dontcare, ignored_det, n_gt)."""
    d, cls = int(diff), cls.lower()
    ignored_gt, dc, ignored_det, n_gt = [], [], [], 0
    for g in gt:
        t = g.type.lower()
        valid = 1 if t == cls else 0 if _NEIGHBOUR.get(cls) == t else -1
        ignore = (g.occluded > MAX_OCCLUSION[d] or g.truncated > MAX_TRUNCATION[d]
                  or g.y2 - g.y1 <= MIN_HEIGHT_PX[d])
        if valid == 1 and not ignore:
            ignored_gt.append(0)
            n_gt += 1
        else:
            ignored_gt.append(1 if valid == 0 or (ignore and valid == 1) else -1)
    dc = [g for g in gt if g.type.lower() == "dontcare"]
    for o in det:
        height = int(abs(o.y1 - o.y2))
        ignored_det.append(1 if height < MIN_HEIGHT_PX[d] else 0 if o.type.lower() == cls else -1)
    return ignored_gt, dc, ignored_det, n_gt


def compute_statistics_ref(gt, det, dc, ignored_gt, ignored_det, compute_fp: bool,
                           overlap: Overlap, min_overlap: float, thresh: float = 0.0):
    """The devkit's ``computeStatistics``: (tp, fp, fn, tp_scores, similarity)."""
    assigned = [False] * len(det)
    below = [compute_fp and o.score < thresh for o in det]
    tp = fp = fn = 0
    scores, delta = [], []
    for i, g in enumerate(gt):
        if ignored_gt[i] == -1:
            continue
        det_idx, valid, max_ov, assigned_ignored = -1, NO_DETECTION, 0.0, False
        for j, o in enumerate(det):
            if ignored_det[j] == -1 or assigned[j] or below[j]:
                continue
            ov = overlap(o, g, -1)
            if not compute_fp and ov > min_overlap and o.score > valid:
                det_idx, valid = j, o.score
            elif (compute_fp and ov > min_overlap and (ov > max_ov or assigned_ignored)
                  and ignored_det[j] == 0):
                max_ov, det_idx, valid, assigned_ignored = ov, j, 1.0, False
            elif (compute_fp and ov > min_overlap and valid == NO_DETECTION
                  and ignored_det[j] == 1):
                det_idx, valid, assigned_ignored = j, 1.0, True
        if valid == NO_DETECTION and ignored_gt[i] == 0:
            fn += 1
        elif valid != NO_DETECTION and (ignored_gt[i] == 1 or ignored_det[det_idx] == 1):
            assigned[det_idx] = True
        elif valid != NO_DETECTION:
            tp += 1
            scores.append(det[det_idx].score)
            delta.append(g.alpha - det[det_idx].alpha)
            assigned[det_idx] = True
    similarity = 0.0
    if compute_fp:
        fp = sum(1 for j in range(len(det))
                 if not (assigned[j] or ignored_det[j] in (-1, 1) or below[j]))
        for c in dc:
            for j, o in enumerate(det):
                if assigned[j] or ignored_det[j] in (-1, 1) or below[j]:
                    continue
                if overlap(o, c, 0) > min_overlap:
                    assigned[j] = True
                    fp -= 1
        similarity = sum((1.0 + math.cos(x)) / 2.0 for x in delta) if tp or fp else -1.0
    return tp, fp, fn, scores, similarity


def get_thresholds_ref(v: list[float], n_gt: int) -> list[float]:
    """The devkit's ``getThresholds``."""
    v = sorted(v, reverse=True)
    t, current = [], 0.0
    for i in range(len(v)):
        l_recall = (i + 1) / n_gt
        r_recall = (i + 2) / n_gt if i < len(v) - 1 else l_recall
        if (r_recall - current) < (current - l_recall) and i < len(v) - 1:
            continue
        t.append(v[i])
        current += 1.0 / (N_SAMPLE_PTS - 1.0)
    return t


def eval_class_ref(cls: str, gt: Sequence[Sequence[Object3d]], det: Sequence[Sequence[Object3d]],
                   overlap: Overlap, min_overlap: float, diff: Difficulty):
    """The devkit's ``eval_class``: (41,) interpolated precision and orientation similarity."""
    cleaned = [clean_data_ref(cls, g, d, diff) for g, d in zip(gt, det)]
    n_gt = sum(c[3] for c in cleaned)
    v = []
    for g, d, (ig, dc, idet, _) in zip(gt, det, cleaned):
        v += compute_statistics_ref(g, d, dc, ig, idet, False, overlap, min_overlap)[3]
    thresholds = get_thresholds_ref(v, n_gt)[:N_SAMPLE_PTS]
    tp, fp, sim = [0] * len(thresholds), [0] * len(thresholds), [0.0] * len(thresholds)
    for g, d, (ig, dc, idet, _) in zip(gt, det, cleaned):
        for k, t in enumerate(thresholds):
            s = compute_statistics_ref(g, d, dc, ig, idet, True, overlap, min_overlap, t)
            tp[k] += s[0]
            fp[k] += s[1]
            if s[4] != -1:
                sim[k] += s[4]
    precision, aos = [0.0] * N_SAMPLE_PTS, [0.0] * N_SAMPLE_PTS
    for k in range(len(thresholds)):
        n = tp[k] + fp[k]
        precision[k] = tp[k] / n if n else math.nan
        aos[k] = sim[k] / n if n else math.nan
    for k in range(len(thresholds)):
        precision[k] = _cpp_max(precision[k:])
        aos[k] = _cpp_max(aos[k:])
    return precision, aos


def _cpp_max(values: list[float]) -> float:
    best = values[0]
    for v in values[1:]:
        if best < v:
            best = v
    return best
