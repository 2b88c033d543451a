"""Back-projection (depth -> velodyne) and its inverse (velodyne -> sparse depth)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kitti import Calibration, KittiFormatError, KittiRoot
from pseudolidar import (PseudoLidarSettings, depth_to_points_velo, depth_to_points_velo_reference,
                         points_velo_to_depth, sparsify_beams_mask)


def _close(fast: np.ndarray, ref: np.ndarray) -> None:
    assert fast.dtype == np.float32 and fast.shape == ref.shape
    np.testing.assert_allclose(fast.astype(np.float64), ref, rtol=2e-7, atol=2e-6)


def _dyadic_calib(P23: float = 0.0) -> Calibration:
    """fu = fv = 512, cu = cv = 128 and an axis-permutation Tr: every step is exact in float64."""
    return Calibration(P2=[[512.0, 0, 128, 0], [0, 512.0, 128, 0], [0, 0, 1, P23]], R0_rect=np.eye(3),
                       Tr_velo_to_cam=[[0, -1.0, 0, 0], [0, 0, -1.0, 0], [1.0, 0, 0, 0]])


# ------------------------------------------------------------------ kernel vs float64 reference
@pytest.mark.parametrize("options", [
    {}, {"max_height_m": np.inf}, {"max_depth_m": 30.0}, {"stride_px": 3},
    {"sparsify_beams": 64}, {"sparsify_beams": 16, "sparsify_azimuth_bins": 128},
    {"frustum_only": True}, {"frustum_only": True, "frustum_near_m": 10.0},
])
def test_depth_to_points_velo_matches_reference_on_real_frames(sample_root, sample_ids, sample_depths, options):
    root = KittiRoot(sample_root)
    for f in sample_ids:
        fast = depth_to_points_velo(sample_depths[f], root.calib(f), **options)
        ref = depth_to_points_velo_reference(sample_depths[f], root.calib(f), **options)
        assert len(ref) > 1000
        _close(fast, ref)


@settings(max_examples=40, deadline=None)
@given(depth=arrays(np.float32, st.tuples(st.integers(1, 40), st.integers(1, 60)),
                    elements=st.one_of(st.just(0.0), st.floats(0.5, 120.0, width=32))),
       frame=st.sampled_from(["000000", "000001", "000006"]),
       max_height=st.sampled_from([1.0, 0.0, -1.0, np.inf]),
       stride=st.integers(1, 4), beams=st.sampled_from([None, 64, 8]),
       max_depth=st.sampled_from([None, 20.0]), frustum=st.booleans())
def test_depth_to_points_velo_kernel_equals_float64_reference(sample_root, depth, frame, max_height,
                                                             stride, beams, max_depth, frustum):
    calib = KittiRoot(sample_root).calib(frame)
    # a small map placed at the image's centre rows/cols would need an offset; scale pixels instead
    opts = dict(max_depth_m=max_depth, stride_px=stride, sparsify_beams=beams, frustum_only=frustum)
    _close(depth_to_points_velo(depth, calib, max_height, **opts),
           depth_to_points_velo_reference(depth, calib, max_height, **opts))


def test_depth_to_points_velo_float64_input_same_as_float32(sample_root, sample_depths):
    calib = KittiRoot(sample_root).calib("000002")
    d32 = sample_depths["000002"]
    np.testing.assert_array_equal(depth_to_points_velo(d32, calib), depth_to_points_velo(d32.astype(np.float64), calib))


# ------------------------------------------------------------------ the formula and conventions
def test_depth_to_points_velo_is_pseudolidar_formula_when_P23_is_zero(sample_root):
    real = KittiRoot(sample_root).calib("000001")
    P2 = real.P2.copy()
    P2[2, 3] = 0.0
    calib = Calibration(P2=P2, R0_rect=real.R0_rect, Tr_velo_to_cam=real.Tr_velo_to_cam)
    rng = np.random.default_rng(5)
    depth = rng.uniform(1.0, 70.0, (375, 1242)).astype(np.float32)
    depth[rng.random(depth.shape) < 0.3] = 0.0
    pts = depth_to_points_velo(depth, calib, np.inf)
    v, u = np.nonzero(depth)
    d = depth[v, u].astype(np.float64)
    rect = np.stack([(u - calib.cu) * d / calib.fu + calib.bx, (v - calib.cv) * d / calib.fv + calib.by, d], 1)
    velo = calib.rect_to_velo(rect)
    keep = velo[:, 0] >= 0
    _close(pts, np.concatenate([velo[keep], np.ones((int(keep.sum()), 1))], axis=1))


def test_depth_to_points_velo_rows_are_row_major_pixels_with_reflectance_one():
    calib = _dyadic_calib()
    depth = np.zeros((256, 256), np.float32)
    depth[200, 10] = 4.0
    depth[130, 250] = 8.0
    depth[130, 20] = 2.0
    pts = depth_to_points_velo(depth, calib, np.inf)
    # velo x = rect z = d; velo y = -rect x = -(u - 128)·d/512
    np.testing.assert_array_equal(pts[:, 0], [2.0, 8.0, 4.0])
    np.testing.assert_array_equal(pts[:, 1], [-(20 - 128) * 2 / 512, -(250 - 128) * 8 / 512, -(10 - 128) * 4 / 512])
    np.testing.assert_array_equal(pts[:, 3], [1.0, 1.0, 1.0])


def test_depth_to_points_velo_height_filter_is_strict():
    calib = _dyadic_calib()
    depth = np.zeros((256, 256), np.float32)
    depth[64, 128] = 8.0  # rect y = (64 - 128)·8/512 = -1 -> velodyne z = +1.0 exactly
    depth[66, 128] = 8.0  # velodyne z = 0.96875
    assert depth_to_points_velo(depth, calib, np.inf)[:, 2].tolist() == [1.0, 0.96875]
    assert depth_to_points_velo(depth, calib, 1.0)[:, 2].tolist() == [0.96875]
    assert depth_to_points_velo(depth, calib, 1.0 + 1e-9)[:, 2].tolist() == [1.0, 0.96875]


def test_depth_to_points_velo_drops_points_behind_the_lidar():
    # camera 1 m ahead of the LiDAR looking backwards: rect z = d -> velodyne x = 1 - d
    calib = Calibration(P2=[[512.0, 0, 128, 0], [0, 512.0, 128, 0], [0, 0, 1, 0]], R0_rect=np.eye(3),
                        Tr_velo_to_cam=[[0, 1.0, 0, 0], [0, 0, -1.0, 0], [-1.0, 0, 0, 1.0]])
    depth = np.zeros((256, 256), np.float32)
    depth[128, 128], depth[128, 129], depth[128, 130] = 0.5, 1.0, 2.0
    assert depth_to_points_velo(depth, calib, np.inf)[:, 0].tolist() == [0.5, 0.0]


def test_depth_to_points_velo_zero_depth_is_no_data(sample_root):
    calib = KittiRoot(sample_root).calib("000001")
    out = depth_to_points_velo(np.zeros((375, 1242), np.float32), calib)
    assert out.shape == (0, 4) and out.dtype == np.float32


def test_depth_to_points_velo_max_depth_keeps_depth_up_to_the_limit():
    calib = _dyadic_calib()
    depth = np.zeros((256, 256), np.float32)
    depth[200, 128], depth[201, 128], depth[202, 128] = 10.0, 20.0, 20.5
    assert depth_to_points_velo(depth, calib, np.inf, max_depth_m=20.0)[:, 0].tolist() == [10.0, 20.0]


def test_depth_to_points_velo_stride_uses_every_nth_row_and_column():
    calib = _dyadic_calib()
    depth = np.full((9, 10), 5.0, np.float32)
    pts = depth_to_points_velo(depth, calib, np.inf, stride_px=3)
    assert len(pts) == 3 * 4
    u = 128 - pts[:, 1] * 512 / 5  # velodyne y = -(u - 128)·d/512
    np.testing.assert_allclose(u[:4], [0, 3, 6, 9])


def test_depth_to_points_velo_sparsify_keeps_a_subset_one_point_per_cell(sample_root, sample_depths):
    calib = KittiRoot(sample_root).calib("000001")
    dense = depth_to_points_velo(sample_depths["000001"], calib)
    sparse = depth_to_points_velo(sample_depths["000001"], calib, sparsify_beams=16, sparsify_azimuth_bins=64)
    assert 0 < len(sparse) <= 16 * 64
    dense_rows = {tuple(r) for r in dense.tolist()}
    assert all(tuple(r) in dense_rows for r in sparse.tolist())
    assert sparsify_beams_mask(sparse, 16, 64).all()


def test_depth_to_points_velo_frustum_only_applies_the_near_plane(sample_root, sample_depths):
    calib = KittiRoot(sample_root).calib("000003")
    all_pts = depth_to_points_velo(sample_depths["000003"], calib)
    near = depth_to_points_velo(sample_depths["000003"], calib, frustum_only=True, frustum_near_m=8.0)
    assert near[:, 0].min() >= 8.0
    assert len(near) == int(np.count_nonzero(all_pts[:, 0] >= 8.0))


def test_depth_to_points_velo_options_are_the_settings_fields():
    params = set(inspect.signature(depth_to_points_velo).parameters)
    assert set(PseudoLidarSettings().backprojection_options()) <= params


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("bad, message", [
    (np.full((4, 5), np.nan, np.float32), "20 NaN/inf depth values"),
    (np.array([[1.0, np.inf]]), "1 NaN/inf depth values"),
    (np.array([[1.0, -0.5, -2.0]]), "2 negative depth values"),
    (np.zeros((2, 3, 1)), r"expected an \(H, W\) map, got shape \(2, 3, 1\)"),
    (np.zeros(7), r"expected an \(H, W\) map, got shape \(7,\)"),
    (np.array([["a", "b"]]), "expected a numeric"),
])
def test_depth_to_points_velo_bad_depth_raises_kitti_format_error(sample_root, bad, message):
    calib = KittiRoot(sample_root).calib("000001")
    with pytest.raises(KittiFormatError, match=message):
        depth_to_points_velo(bad, calib)


@pytest.mark.parametrize("options, message", [
    ({"stride_px": 0}, "stride_px"), ({"max_height_m": np.nan}, "max_height_m"),
    ({"sparsify_beams": 0}, "sparsify_beams"), ({"sparsify_azimuth_bins": 0}, "sparsify_azimuth_bins"),
])
def test_depth_to_points_velo_bad_option_raises_value_error(sample_root, options, message):
    calib = KittiRoot(sample_root).calib("000001")
    with pytest.raises(ValueError, match=message):
        depth_to_points_velo(np.ones((3, 3), np.float32), calib, **options)
    with pytest.raises(ValueError, match=message):
        depth_to_points_velo_reference(np.ones((3, 3), np.float32), calib, **options)


# ------------------------------------------------------------------ velodyne -> depth -> velodyne
def test_points_velo_to_depth_round_trip_returns_points_within_half_a_pixel(sample_root, sample_ids):
    """All nine real frames (three image sizes): every in-image point comes back to within the
    footprint of half a pixel at its depth; occluded points lose their pixel to a nearer one."""
    root = KittiRoot(sample_root)
    sizes = set()
    for f in sample_ids:
        calib, hw, velo = root.calib(f), root.image_hw(f), root.velodyne(f)
        sizes.add(hw)
        depth = points_velo_to_depth(velo, calib, hw)
        assert depth.shape == hw and depth.dtype == np.float32
        uv, d = calib.velo_to_img(velo)
        col, row = np.floor(uv[:, 0] + 0.5), np.floor(uv[:, 1] + 0.5)
        inside = (d > 0) & (col >= 0) & (col < hw[1]) & (row >= 0) & (row < hw[0])
        assert inside.sum() > 10000
        col, row, d, p = col[inside].astype(int), row[inside].astype(int), d[inside], velo[inside, :3]
        pixel_depth = depth[row, col].astype(np.float64)
        # nearest wins: no point is nearer than its pixel's depth (float32 storage tolerance)
        assert np.all(pixel_depth <= d * (1 + 1e-6))
        winner = np.abs(pixel_depth - d) <= d * 1e-6
        back = calib.img_to_velo(np.stack([col, row], 1)[winner], pixel_depth[winner])
        err_rect = calib.velo_to_rect(back) - calib.velo_to_rect(p[winner])
        half_u, half_v = 0.5 * d[winner] / calib.fu, 0.5 * d[winner] / calib.fv
        tol = 1e-6 * d[winner] + 1e-7
        assert np.all(np.abs(err_rect[:, 0]) <= half_u + tol)
        assert np.all(np.abs(err_rect[:, 1]) <= half_v + tol)
        assert np.all(np.abs(err_rect[:, 2]) <= tol)
        # and the map back-projects to exactly one point per occupied pixel
        assert len(depth_to_points_velo(depth, calib, np.inf)) == int(np.count_nonzero(depth))
    assert sizes == {(370, 1224), (375, 1242), (374, 1238)}


@settings(max_examples=60, deadline=None)
@given(u=st.integers(0, 1241), v=st.integers(0, 374), d=st.floats(0.5, 100.0, width=32),
       frame=st.sampled_from(["000000", "000001", "000006"]))
def test_points_velo_to_depth_inverts_depth_to_points_velo_for_one_pixel(sample_root, u, v, d, frame):
    root = KittiRoot(sample_root)
    calib, hw = root.calib(frame), root.image_hw(frame)
    u, v = min(u, hw[1] - 1), min(v, hw[0] - 1)
    depth = np.zeros(hw, np.float32)
    depth[v, u] = d
    pts = depth_to_points_velo(depth, calib, np.inf)
    if len(pts) == 0:  # behind the LiDAR (x < 0): nothing to invert
        assert calib.img_to_velo(np.array([[u, v]], float), np.array([d]))[0, 0] < 0
        return
    back = points_velo_to_depth(pts, calib, hw)
    assert np.count_nonzero(back) == 1 and back[v, u] == pytest.approx(d, rel=1e-6)


def test_points_velo_to_depth_nearest_point_wins(sample_root):
    calib = KittiRoot(sample_root).calib("000001")
    ray = calib.img_to_velo(np.array([[600.0, 200.0]] * 3), np.array([30.0, 12.0, 50.0]))
    depth = points_velo_to_depth(ray, calib, (375, 1242))
    assert np.count_nonzero(depth) == 1 and depth[200, 600] == pytest.approx(12.0, rel=1e-6)


def test_points_velo_to_depth_empty_cloud_gives_empty_map(sample_root):
    depth = points_velo_to_depth(np.zeros((0, 4), np.float32), KittiRoot(sample_root).calib("000001"), (375, 1242))
    assert depth.shape == (375, 1242) and not depth.any()


def test_points_velo_to_depth_ignores_points_behind_and_outside(sample_root):
    calib = KittiRoot(sample_root).calib("000001")
    pts = np.array([[-10.0, 0, 0, 1], [10.0, 30.0, 0, 1], [10.0, 0, -40.0, 1]])
    assert not points_velo_to_depth(pts, calib, (375, 1242)).any()


@pytest.mark.parametrize("bad, message", [
    (np.zeros((5, 2)), r"expected a numeric \(N, >=3\) array, got shape \(5, 2\)"),
    (np.zeros(4), r"got shape \(4,\)"),
    (np.array([[1.0, np.nan, 0.0, 1.0]]), "NaN/inf coordinates"),
])
def test_points_velo_to_depth_bad_points_raise_kitti_format_error(sample_root, bad, message):
    with pytest.raises(KittiFormatError, match=message):
        points_velo_to_depth(bad, KittiRoot(sample_root).calib("000001"), (375, 1242))
