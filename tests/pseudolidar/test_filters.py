"""Filters: height (pseudo-LiDAR), camera frustum, simulated 64-beam sparsification."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kitti import KittiRoot
from pseudolidar import frustum_mask, height_mask, project_to_pixels, sparsify_beams_mask


def test_height_mask_is_strict_and_drops_points_behind():
    pts = np.array([[5.0, 0, 1.0], [5.0, 0, 0.999], [0.0, 0, 0.0], [-1e-9, 0, 0.0], [5.0, 0, -3.0]])
    assert height_mask(pts, 1.0).tolist() == [False, True, True, False, True]


def test_project_to_pixels_rounds_to_the_nearest_pixel_centre(sample_root):
    calib = KittiRoot(sample_root).calib("000001")
    uv = np.array([[0.0, 0.0], [-0.49, 10.2], [-0.51, 10.0], [1241.49, 374.49], [1241.5, 10.0]])
    pts = calib.img_to_velo(uv, np.full(len(uv), 20.0))
    inside, rows, cols, depth = project_to_pixels(pts, calib, (375, 1242))
    assert inside.tolist() == [True, True, False, True, False]
    assert cols[inside].tolist() == [0, 0, 1241] and rows[inside].tolist() == [0, 10, 374]
    np.testing.assert_allclose(depth, 20.0)


def test_frustum_mask_matches_fpointnet_fov_rule_on_a_real_scan(sample_root):
    root = KittiRoot(sample_root)
    calib, velo, (H, W) = root.calib("000004"), root.velodyne("000004"), root.image_hw("000004")
    mask = frustum_mask(velo, calib, (H, W), near_m=2.0)
    uv, d = calib.velo_to_img(velo)
    # F-PointNet get_lidar_in_image_fov, with the nearest-pixel (half-pixel shifted) image bounds
    expect = ((uv[:, 0] >= -0.5) & (uv[:, 0] < W - 0.5) & (uv[:, 1] >= -0.5) & (uv[:, 1] < H - 0.5)
              & (velo[:, 0] >= 2.0) & (d > 0))
    np.testing.assert_array_equal(mask, expect)
    assert 0.1 < mask.mean() < 0.4  # README: 28-35 % of the x > 0 points


def _cells(points: np.ndarray, n_beams: int, n_az: int) -> np.ndarray:
    x, y, z = points[:, 0].astype(np.float64), points[:, 1].astype(np.float64), points[:, 2].astype(np.float64)
    r = np.sqrt(x * x + y * y + z * z)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _cells_of(x, y, z, r, n_beams, n_az)


def _cells_of(x, y, z, r, n_beams, n_az):
    beam = np.floor((np.radians(2.0) - np.arcsin(z / r)) / np.radians(0.4 * 64 / n_beams))
    col = np.floor((np.radians(45.0) - np.arctan2(y, x)) / np.radians(90.0 / n_az))
    ok = (beam >= 0) & (beam < n_beams) & (col >= 0) & (col < n_az)
    return np.where(ok, beam * n_az + col, -1)  # -1: outside the simulated LiDAR's field


def test_sparsify_beams_mask_keeps_the_nearest_point_of_each_cell(sample_root):
    velo = KittiRoot(sample_root).velodyne("000002")
    keep = sparsify_beams_mask(velo, 64, 512)
    cells = _cells(velo, 64, 512)
    assert np.all(cells[keep] >= 0) and len(np.unique(cells[keep])) == keep.sum()  # one per cell
    rng = np.linalg.norm(velo[:, :3].astype(np.float64), axis=1)
    for c in np.unique(cells[keep])[::97]:
        in_cell = cells == c
        assert rng[keep & in_cell][0] == rng[in_cell].min()
    # a real 64-beam scan is already about one point per cell in front of the car
    front = (velo[:, 0] > 5) & (np.abs(np.arctan2(velo[:, 1], velo[:, 0])) < np.radians(40))
    assert keep[front].mean() > 0.5


@settings(max_examples=40, deadline=None)
@given(points=arrays(np.float64, st.tuples(st.integers(0, 300), st.just(3)),
                     elements=st.floats(-50, 50)),
       n_beams=st.sampled_from([1, 16, 64]), n_az=st.sampled_from([1, 32, 512]))
def test_sparsify_beams_mask_at_most_one_point_per_cell(points, n_beams, n_az):
    keep = sparsify_beams_mask(points, n_beams, n_az)
    assert keep.shape == (len(points),)
    cells = _cells(points, n_beams, n_az)[keep]
    assert len(np.unique(cells)) == len(cells)
    azimuth = np.arctan2(points[keep, 1], points[keep, 0])
    assert np.all(points[keep, 0] > 0) and np.all(np.abs(azimuth) <= np.radians(45) + 1e-12)
