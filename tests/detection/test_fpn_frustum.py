"""Frustum extraction, rotation to the centre view and training samples."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings as hsettings, strategies as st

from detection.frustum_pointnet.codec import class_to_angle, class_to_size
from detection.frustum_pointnet.frustum import (FRUSTUM_AXIS_DEPTH_M, frame_cloud, frustum_rotation, in_box2d_mask,
                                                jitter_box2d, object_frustums, rotate_about_y,
                                                training_sample)
from detection.frustum_pointnet.settings import preset
from kitti.boxes import box_corners_rect
from kitti.layout import KittiRoot

ang = st.floats(min_value=-np.pi, max_value=np.pi)


@given(ang, st.lists(st.floats(min_value=-50, max_value=50), min_size=3, max_size=3))
def test_rotate_about_y_round_trip(rot, xyz):
    p = np.array([xyz + [0.5]])
    back = rotate_about_y(rotate_about_y(p, rot), -rot)
    np.testing.assert_allclose(back, p, atol=1e-9)
    assert rotate_about_y(p, rot)[0, 3] == 0.5  # intensity untouched


@hsettings(deadline=None)
@given(ang, ang, st.floats(min_value=-10, max_value=10), st.floats(min_value=2, max_value=60))
def test_rotate_about_y_box_heading_is_ry_minus_rot(ry, rot, x, z):
    loc, hwl = np.array([[x, 1.5, z]]), np.array([[1.5, 1.6, 3.9]])
    corners = box_corners_rect(loc, hwl, np.array([ry]))[0]
    rotated = rotate_about_y(corners, rot)
    loc_rot = rotate_about_y(loc, rot)
    expected = box_corners_rect(loc_rot, hwl, np.array([ry - rot]))[0]
    np.testing.assert_allclose(rotated, expected, atol=1e-9)


def test_frustum_rotation_turns_box_centre_ray_onto_z(sample_root):
    calib = KittiRoot(sample_root).calib("000001")
    for box in [(100, 150, 200, 250), (900, 170, 1100, 300), (600, 160, 640, 200)]:
        rot = frustum_rotation(box, calib)
        ray = calib.img_to_rect(np.array([[(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]]), np.array([FRUSTUM_AXIS_DEPTH_M]))
        r = rotate_about_y(ray, rot)[0]
        assert abs(r[0]) < 1e-6 and r[2] > 0


def test_frame_cloud_keeps_points_in_image_and_in_front(sample_root):
    root = KittiRoot(sample_root)
    velo = root.velodyne("000002")
    cloud = frame_cloud(velo, root.calib("000002"), root.image_hw("000002"), min_x_velo_m=2.0)
    h, w = root.image_hw("000002")
    assert 0 < len(cloud) < len(velo)
    assert cloud.uv_img[:, 0].min() >= 0 and cloud.uv_img[:, 0].max() < w
    assert cloud.uv_img[:, 1].min() >= 0 and cloud.uv_img[:, 1].max() < h
    back = root.calib("000002").rect_to_velo(cloud.points_rect.astype(np.float64))
    assert back[:, 0].min() > 2.0 - 1e-3


def test_in_box2d_mask_is_half_open():
    uv = np.array([[10.0, 10.0], [20.0, 10.0], [10.0, 20.0], [19.99, 19.99]])
    np.testing.assert_array_equal(in_box2d_mask(uv, (10, 10, 20, 20)), [True, False, False, True])


def test_jitter_box2d_stays_within_ratio():
    rng = np.random.default_rng(0)
    for _ in range(200):
        x1, y1, x2, y2 = jitter_box2d((100, 100, 200, 150), rng, 0.1)
        assert 0.9 * 100 - 1e-9 <= x2 - x1 <= 1.1 * 100 + 1e-9
        assert abs((x1 + x2) / 2 - 150) <= 10 + 1e-9


def test_training_sample_targets_decode_to_the_label_box(sample_root):
    root = KittiRoot(sample_root)
    s = preset("cpu-small").with_(classes=("Car", "Pedestrian", "Cyclist"))
    rng = np.random.default_rng(0)
    found = 0
    for f in ("000001", "000002", "000003"):
        calib = root.calib(f)
        cloud = frame_cloud(root.velodyne(f), calib, root.image_hw(f))
        for fr in object_frustums(f, cloud, calib, root.labels(f), s, rng):
            found += 1
            assert fr.seg.any() and len(fr.points_rect) <= s.cache_points
            smp = training_sample(fr, s, rng, augment=False)
            assert smp.points.shape == (s.num_points, 4) and smp.points.dtype == np.float32
            heading = class_to_angle(smp.heading_class, smp.heading_residual)
            ry = (heading + smp.rot + np.pi) % (2 * np.pi) - np.pi
            assert abs(((ry - fr.ry) + np.pi) % (2 * np.pi) - np.pi) < 1e-6
            np.testing.assert_allclose(class_to_size(smp.size_class, smp.size_residual), fr.size_lwh, atol=1e-5)
            centre = rotate_about_y(smp.center[None].astype(np.float64), -smp.rot)[0]
            np.testing.assert_allclose(centre, fr.center_rect, atol=1e-4)
            # seg labels are the points inside the 3D box, in the rotated frame too
            assert smp.seg.sum() > 0
    assert found >= 3
