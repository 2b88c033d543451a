"""Calibration parsing and frame transforms (kitti/calib.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kitti import Calibration, KittiFormatError, KittiRoot


@pytest.fixture(scope="module")
def calib(sample_root) -> Calibration:
    return Calibration.from_file(sample_root / "training" / "calib" / "000001.txt")


def test_from_file_parses_all_keys(calib):
    assert calib.P2.shape == (3, 4) and calib.R0_rect.shape == (3, 3)
    assert calib.Tr_velo_to_cam.shape == (3, 4) and calib.Tr_imu_to_velo.shape == (3, 4)
    assert calib.P2.dtype == np.float64
    assert calib.fu == pytest.approx(721.5377) and calib.cu == pytest.approx(609.5593)
    assert not calib.P2.flags.writeable


def test_from_text_order_independent(calib):
    lines = calib.to_text().splitlines()
    shuffled = Calibration.from_text("\n".join(reversed(lines)))
    np.testing.assert_array_equal(shuffled.P2, calib.P2)
    np.testing.assert_array_equal(shuffled.Tr_velo_to_cam, calib.Tr_velo_to_cam)


def test_to_text_round_trip_is_exact(calib):
    again = Calibration.from_text(calib.to_text())
    for key in ("P0", "P1", "P2", "P3", "R0_rect", "Tr_velo_to_cam", "Tr_imu_to_velo"):
        np.testing.assert_array_equal(getattr(again, key), getattr(calib, key))


def _bad(tmp_path, text):
    p = tmp_path / "000123.txt"
    p.write_text(text)
    return p


def test_from_file_short_line_names_file_and_line(tmp_path, calib):
    lines = calib.to_text().splitlines()
    lines[2] = "P2: " + " ".join(lines[2].split()[1:12])  # 11 numbers
    p = _bad(tmp_path, "\n".join(lines))
    with pytest.raises(KittiFormatError, match=r"000123\.txt:3: expected 12 numbers after 'P2:', got 11"):
        Calibration.from_file(p)


def test_from_file_non_numeric_value(tmp_path, calib):
    lines = calib.to_text().splitlines()
    lines[4] = lines[4].replace(lines[4].split()[3], "abc", 1)
    with pytest.raises(KittiFormatError, match=r":5: non-numeric value 'abc'"):
        Calibration.from_file(_bad(tmp_path, "\n".join(lines)))


def test_from_file_missing_key(tmp_path, calib):
    text = "\n".join(line for line in calib.to_text().splitlines() if not line.startswith("R0_rect"))
    with pytest.raises(KittiFormatError, match="missing calibration keys: R0_rect"):
        Calibration.from_file(_bad(tmp_path, text))


def test_from_file_missing_file(tmp_path):
    with pytest.raises(KittiFormatError, match="not found"):
        Calibration.from_file(tmp_path / "nope.txt")


def test_from_file_line_without_colon(tmp_path):
    with pytest.raises(KittiFormatError, match=r":1: expected 'KEY: numbers'"):
        Calibration.from_file(_bad(tmp_path, "P2 1 2 3\n"))


points = arrays(np.float64, st.tuples(st.integers(1, 20), st.just(3)),
                elements=st.floats(-80, 80, allow_nan=False))


@given(points)
@settings(max_examples=50, deadline=None)
def test_velo_rect_round_trip(calib, pts):
    back = calib.rect_to_velo(calib.velo_to_rect(pts))
    np.testing.assert_allclose(back, pts, atol=1e-9)


@given(st.floats(0, 1241), st.floats(0, 374), st.floats(0.5, 120))
@settings(max_examples=100, deadline=None)
def test_img_rect_round_trip_is_exact(calib, u, v, d):
    rect = calib.img_to_rect(np.array([[u, v]]), np.array([d]))
    uv, depth = calib.rect_to_img(rect)
    np.testing.assert_allclose(uv[0], [u, v], atol=1e-8)
    assert depth[0] == pytest.approx(d, abs=1e-9)


def test_img_to_rect_matches_pseudo_lidar_formula_when_p2_t3_is_zero(calib):
    P2 = np.array(calib.P2)
    P2[2, 3] = 0.0
    c = Calibration(P2=P2, R0_rect=calib.R0_rect, Tr_velo_to_cam=calib.Tr_velo_to_cam)
    uv = np.array([[100.0, 50.0], [1000.0, 300.0]])
    d = np.array([5.0, 40.0])
    x = (uv[:, 0] - c.cu) * d / c.fu + c.bx
    y = (uv[:, 1] - c.cv) * d / c.fv + c.by
    np.testing.assert_allclose(c.img_to_rect(uv, d), np.stack([x, y, d], 1), atol=1e-12)


def test_velodyne_points_land_in_image(sample_root, sample_ids):
    root = KittiRoot(sample_root)
    for f in sample_ids:
        c, pts, (h, w) = root.calib(f), root.velodyne(f), root.image_hw(f)
        front = pts[pts[:, 0] > 5]
        uv, depth = c.velo_to_img(front)
        inside = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
        # the camera sees roughly a 90° wedge of the forward half of the scan
        assert 0.25 < inside.mean() < 0.8, f
        assert np.all(depth > 0)
        # velodyne x is the forward distance, close to the camera depth
        np.testing.assert_allclose(depth, front[:, 0], rtol=0.02, atol=0.5)


def test_bad_shape_rejected(calib):
    with pytest.raises(ValueError, match=r"expected an \(N, 3\) array"):
        calib.velo_to_rect(np.zeros(3))
