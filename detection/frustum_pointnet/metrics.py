"""3D and bird's-eye-view IoU of KITTI boxes (float64 NumPy), for training summaries.

The official AP comes from ``kitti_eval``; these IoUs measure box estimates one frustum at a time
(``provider.compute_box3d_iou``'s role). Boxes use the label convention: ``loc_rect`` bottom centre,
``hwl`` (h, w, l), ``ry`` about camera y (camera y down).
"""

from __future__ import annotations

import numpy as np

from kitti.boxes import box_bev_corners


def _polygon_area(poly: np.ndarray) -> float:
    if poly.shape[0] < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _ccw(poly: np.ndarray) -> np.ndarray:
    x, y = poly[:, 0], poly[:, 1]
    signed = np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))
    return poly if signed > 0 else poly[::-1]


def convex_intersection_area(a: np.ndarray, b: np.ndarray) -> float:
    """Area of the intersection of two convex polygons (K, 2) (Sutherland–Hodgman clipping)."""
    subject = [tuple(p) for p in _ccw(np.asarray(a, dtype=np.float64))]
    clip = _ccw(np.asarray(b, dtype=np.float64))
    for i in range(clip.shape[0]):
        if not subject:
            return 0.0
        c1, c2 = clip[i], clip[(i + 1) % clip.shape[0]]
        edge = c2 - c1

        def inside(p: tuple[float, float]) -> bool:
            return edge[0] * (p[1] - c1[1]) - edge[1] * (p[0] - c1[0]) >= 0.0

        def cross_point(p: tuple[float, float], q: tuple[float, float]) -> tuple[float, float]:
            d = (q[0] - p[0], q[1] - p[1])
            den = edge[0] * d[1] - edge[1] * d[0]
            t = (edge[1] * (p[0] - c1[0]) - edge[0] * (p[1] - c1[1])) / den if den != 0 else 0.0
            return (p[0] + t * d[0], p[1] + t * d[1])

        out = []
        for j in range(len(subject)):
            cur, prev = subject[j], subject[j - 1]
            if inside(cur):
                if not inside(prev):
                    out.append(cross_point(prev, cur))
                out.append(cur)
            elif inside(prev):
                out.append(cross_point(prev, cur))
        subject = out
    return _polygon_area(np.array(subject)) if len(subject) >= 3 else 0.0


def box_iou_3d(loc_a: np.ndarray, hwl_a: np.ndarray, ry_a: float, loc_b: np.ndarray,
               hwl_b: np.ndarray, ry_b: float) -> tuple[float, float]:
    """(3D IoU, BEV IoU) of two boxes in the label convention.

    >>> box_iou_3d(np.zeros(3), np.array([1.5, 1.6, 4.0]), 0.0, np.zeros(3), np.array([1.5, 1.6, 4.0]), 0.0)
    (1.0, 1.0)
    """
    bev_a = box_bev_corners(np.asarray(loc_a)[None], np.asarray(hwl_a)[None], np.array([ry_a]))[0]
    bev_b = box_bev_corners(np.asarray(loc_b)[None], np.asarray(hwl_b)[None], np.array([ry_b]))[0]
    inter = convex_intersection_area(bev_a, bev_b)
    area_a = float(hwl_a[1] * hwl_a[2])
    area_b = float(hwl_b[1] * hwl_b[2])
    # y down: box a spans [y - h, y]
    top = max(loc_a[1] - hwl_a[0], loc_b[1] - hwl_b[0])
    bottom = min(loc_a[1], loc_b[1])
    inter_3d = inter * max(0.0, bottom - top)
    vol_a = area_a * float(hwl_a[0])
    vol_b = area_b * float(hwl_b[0])
    union_bev = area_a + area_b - inter
    union_3d = vol_a + vol_b - inter_3d
    iou_bev = inter / union_bev if union_bev > 0 else 0.0
    iou_3d = inter_3d / union_3d if union_3d > 0 else 0.0
    return float(min(max(iou_3d, 0.0), 1.0)), float(min(max(iou_bev, 0.0), 1.0))
