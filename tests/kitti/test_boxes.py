"""Box geometry (kitti/boxes.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kitti import Boxes3D, KittiRoot, box_corners_rect, points_in_box_mask
from kitti.boxes import alpha_from_ry, box_bev_corners, wrap_angle


def test_corners_bottom_centre_convention():
    c = box_corners_rect(np.array([[1.0, 2.0, 10.0]]), np.array([[1.5, 1.6, 4.0]]), np.zeros(1))[0]
    np.testing.assert_allclose(c[:4, 1], 2.0)  # bottom face at y
    np.testing.assert_allclose(c[4:, 1], 0.5)  # top face at y - h (camera y points down)
    np.testing.assert_allclose(c.mean(0), [1.0, 2.0 - 0.75, 10.0])
    np.testing.assert_allclose(c[0], [3.0, 2.0, 10.8])  # front-left: +l/2 along x at ry = 0


@given(st.floats(-np.pi, np.pi), st.floats(0.5, 3), st.floats(0.5, 3), st.floats(1, 12))
@settings(max_examples=50, deadline=None)
def test_corners_keep_size_under_rotation(ry, h, w, l):
    c = box_corners_rect(np.zeros((1, 3)), np.array([[h, w, l]]), np.array([ry]))[0]
    assert np.linalg.norm(c[0] - c[3]) == pytest.approx(l)
    assert np.linalg.norm(c[0] - c[1]) == pytest.approx(w)
    assert np.linalg.norm(c[0] - c[4]) == pytest.approx(h)


@given(st.floats(-np.pi, np.pi), st.floats(-20, 20), st.floats(2, 60))
@settings(max_examples=50, deadline=None)
def test_points_in_box_mask_contains_own_centre_and_not_far_points(ry, x, z):
    loc, hwl = np.array([x, 1.6, z]), np.array([1.5, 1.6, 4.0])
    inside = np.array([[x, 1.6 - 0.75, z]])
    corners = box_corners_rect(loc[None], hwl[None], np.array([ry]))[0]
    shrunk = corners * 0.999 + corners.mean(0) * 0.001
    assert points_in_box_mask(inside, loc, hwl, ry).all()
    assert points_in_box_mask(shrunk, loc, hwl, ry).all()
    assert not points_in_box_mask(np.array([[x + 5, 1.0, z + 5]]), loc, hwl, ry).any()


def test_lidar_points_in_3d_box_project_into_2d_box(sample_root, sample_ids):
    """Most in-image LiDAR points inside each labelled object's 3D box project inside its 2D box."""
    root = KittiRoot(sample_root)
    n_in = n_total = 0
    for f in sample_ids:
        calib, pts = root.calib(f), root.velodyne(f)
        h, w = root.image_hw(f)
        rect = calib.velo_to_rect(pts)
        uv, depth = calib.rect_to_img(rect)
        in_image = (depth > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
        rect, uv = rect[in_image], uv[in_image]
        for o in root.labels(f):
            if o.type == "DontCare":
                continue
            m = points_in_box_mask(rect, o.loc_rect, o.hwl, o.ry)
            ok = ((uv[m, 0] >= o.x1 - 2) & (uv[m, 0] <= o.x2 + 2)
                  & (uv[m, 1] >= o.y1 - 2) & (uv[m, 1] <= o.y2 + 2))
            n_in += int(ok.sum())
            n_total += int(m.sum())
    assert n_total > 5000
    assert n_in / n_total > 0.995


def test_alpha_from_ry_matches_labels(sample_root, sample_ids):
    root = KittiRoot(sample_root)
    for f in sample_ids:
        for o in root.labels(f):
            if o.type != "DontCare":
                assert abs(wrap_angle(alpha_from_ry(o.ry, o.x, o.z) - o.alpha)) < 0.05  # rounding; KITTI alpha uses camera 0


def test_boxes3d_shapes_and_indexing():
    empty = Boxes3D.empty()
    assert len(empty) == 0 and empty.corners_rect().shape == (0, 8, 3)
    b = Boxes3D(np.zeros((3, 3)), np.ones((3, 3)), np.zeros(3), np.array([0.1, 0.9, 0.5]))
    assert len(b[b.score > 0.3]) == 2 and len(b[1]) == 1
    assert box_bev_corners(b.loc_rect, b.hwl, b.ry).shape == (3, 4, 2)
    with pytest.raises(ValueError, match="expected 3 rows"):
        Boxes3D(np.zeros((3, 3)), np.ones((2, 3)), np.zeros(3), np.zeros(3))
