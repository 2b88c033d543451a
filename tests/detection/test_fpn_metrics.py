"""3D / BEV IoU against shapely."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st
from shapely.geometry import Polygon

from detection.frustum_pointnet.metrics import box_iou_3d, convex_intersection_area
from kitti.boxes import box_bev_corners

coord = st.floats(min_value=-3.0, max_value=3.0)
dim = st.floats(min_value=0.3, max_value=5.0)
ang = st.floats(min_value=-np.pi, max_value=np.pi)


@settings(max_examples=60, deadline=None)
@given(coord, coord, coord, dim, dim, dim, ang, coord, coord, coord, dim, dim, dim, ang)
def test_box_iou_3d_matches_shapely(x1, y1, z1, h1, w1, l1, r1, x2, y2, z2, h2, w2, l2, r2):
    la, ha = np.array([x1, y1, z1]), np.array([h1, w1, l1])
    lb, hb = np.array([x2, y2, z2]), np.array([h2, w2, l2])
    iou3d, ioubev = box_iou_3d(la, ha, r1, lb, hb, r2)
    pa = Polygon(box_bev_corners(la[None], ha[None], np.array([r1]))[0])
    pb = Polygon(box_bev_corners(lb[None], hb[None], np.array([r2]))[0])
    inter = pa.intersection(pb).area
    assert abs(ioubev - inter / (pa.area + pb.area - inter)) < 1e-6
    dy = max(0.0, min(y1, y2) - max(y1 - h1, y2 - h2))
    v = inter * dy
    assert abs(iou3d - v / (pa.area * h1 + pb.area * h2 - v)) < 1e-6


def test_convex_intersection_area_disjoint_is_zero():
    a = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)
    assert convex_intersection_area(a, a + 5) == 0.0
    assert abs(convex_intersection_area(a, a + 0.5) - 0.25) < 1e-12
