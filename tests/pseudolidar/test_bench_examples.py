"""The bench and example-picture helpers run (tiny sizes) and produce sane figures."""

from __future__ import annotations

import numpy as np
import pytest

from kitti import KittiRoot
from pseudolidar import depth_to_points_velo, points_velo_to_depth
from pseudolidar.bench import _FALLBACK_CALIB, HW, analytic_depth, bench_backprojection, bench_stage
from pseudolidar.examples import example_pictures
from pseudolidar.fill import fill_depth


def test_analytic_depth_is_a_dense_valid_road_scene():
    d = analytic_depth(_FALLBACK_CALIB, HW, seed=3)
    assert d.shape == HW and d.dtype == np.float32 and np.isfinite(d).all() and (d >= 0).all()
    assert np.mean(d > 0) > 0.5
    pts = depth_to_points_velo(d, _FALLBACK_CALIB)
    # the road lies 1.65 m below the camera, which is 8 cm below the LiDAR
    road = pts[(pts[:, 0] > 5) & (pts[:, 0] < 20) & (np.abs(pts[:, 1]) < 1)]
    assert abs(np.median(road[:, 2]) + 1.73) < 0.05


def test_bench_backprojection_and_stage_report_figures(tmp_path):
    maps = [analytic_depth(_FALLBACK_CALIB, HW, s) for s in range(2)]
    r = bench_backprojection(maps[0], _FALLBACK_CALIB, reps=2)
    assert r["fps"] > 0 and r["points"] == len(depth_to_points_velo(maps[0], _FALLBACK_CALIB))
    text = _FALLBACK_CALIB.to_text()
    s = bench_stage(maps, [text, text], frames=5, workers=1, chunk=2, tmp=tmp_path)
    assert s["seconds"] > 0 and s["cpu_seconds"] > 0 and s["gigabytes_written"] > 0
    expect = np.mean([len(depth_to_points_velo(maps[i % 2], _FALLBACK_CALIB)) for i in range(5)])
    assert s["points_per_frame"] == expect
    assert not (tmp_path / "out").exists()


def test_fill_depth_interpolates_between_lidar_rows(sample_root):
    root = KittiRoot(sample_root)
    sparse = points_velo_to_depth(root.velodyne("000003"), root.calib("000003"), root.image_hw("000003"))
    dense = fill_depth(sparse)
    valid = sparse > 0
    np.testing.assert_array_equal(dense[valid], sparse[valid])
    assert (dense > 0).sum() > 5 * valid.sum()
    # a filled pixel lies between the depths of the valid pixels that bound its column gap
    col = dense[:, 600]
    rows = np.flatnonzero(sparse[:, 600] > 0)
    r0, r1 = next((a, b) for a, b in zip(rows[:-1], rows[1:]) if 2 < b - a <= 30)
    lo, hi = sorted((sparse[r0, 600], sparse[r1, 600]))
    assert np.all((col[r0:r1 + 1] >= lo - 1e-5) & (col[r0:r1 + 1] <= hi + 1e-5))
    assert np.isfinite(dense).all() and (dense >= 0).all()


@pytest.mark.slow
def test_example_pictures_writes_three_pngs(sample_root, tmp_path):
    import cv2

    paths = example_pictures(sample_root, "000001", tmp_path)
    assert [p.name for p in paths] == ["pl_bev_000001.png", "pl_front_lidar_000001.png", "pl_front_pseudo_000001.png"]
    assert cv2.imread(str(paths[1])).shape == (375, 1242, 3)
