"""depth.metrics: the paper's pooled fg / bg / global metrics and the tables."""

from __future__ import annotations

import numpy as np
import pytest

from depth.metrics import DepthEvalResult, evaluate_depth_dir, evaluate_depth_maps, format_table2, results_csv
from kitti import KittiFormatError, KittiRoot, write_depth_npz


def test_evaluate_depth_maps_perfect_prediction():
    gt = np.array([[2.0, 0.0], [5.0, 40.0]], np.float32)
    res = evaluate_depth_maps([gt], [gt], [np.array([[True, True], [False, False]])])
    g = res.pooled["global"]
    assert g["absrel"] == 0 and g["silog"] == 0 and g["d1"] == 1.0
    assert res.pixels == {"fg": 1, "bg": 2, "global": 3}


def test_evaluate_depth_maps_constant_scale_has_zero_silog():
    rng = np.random.default_rng(0)
    gt = rng.uniform(2, 60, (8, 8)).astype(np.float32)
    res = evaluate_depth_maps([gt * 1.1], [gt], [np.zeros((8, 8), bool)])
    b = res.pooled["bg"]
    assert b["absrel"] == pytest.approx(0.1, rel=1e-5) and b["sqrel"] == pytest.approx(0.01, rel=1e-4)
    assert b["log10"] == pytest.approx(np.log10(1.1), rel=1e-5) and b["silog"] == pytest.approx(0, abs=1e-6)
    assert np.isnan(res.pooled["fg"]["absrel"])


def test_evaluate_depth_maps_pools_pixels_not_images():
    big, small = np.full((10, 10), 10.0, np.float32), np.full((1, 1), 10.0, np.float32)
    no_fg = [np.zeros((10, 10), bool), np.zeros((1, 1), bool)]
    res = evaluate_depth_maps([big * 1.2, small * 2.0], [big, small], no_fg)
    assert res.pooled["global"]["absrel"] == pytest.approx((100 * 0.2 + 1.0) / 101)
    assert res.per_image["global"]["absrel"] == pytest.approx((0.2 + 1.0) / 2)
    assert res.pooled["global"]["d1"] == pytest.approx(100 / 101)


def test_evaluate_depth_dir_fg_from_eval_boxes_and_shape_check(synthetic_root, tmp_path):
    root = KittiRoot(synthetic_root)
    ids = root.split("val")
    for fid in ids:
        write_depth_npz(tmp_path / f"{fid}.npz", root.depth(fid))
    res = evaluate_depth_dir(synthetic_root, ids, tmp_path)
    assert res.pooled["fg"]["absrel"] == 0 and res.pixels["fg"] > 0 and res.frames == len(ids)
    assert DepthEvalResult.from_json(res.to_json()) == res
    write_depth_npz(tmp_path / f"{ids[0]}.npz", np.ones((4, 4), np.float32))
    with pytest.raises(KittiFormatError, match=rf"{ids[0]}.npz.*4x4"):
        evaluate_depth_dir(synthetic_root, ids, tmp_path)


def test_format_table2_lists_measured_and_paper_rows():
    gt = np.full((2, 2), 10.0, np.float32)
    res = evaluate_depth_maps([gt * 1.5], [gt], [np.eye(2, dtype=bool)])
    md = format_table2({"mine": res})
    assert "| mine (measured) | 0.500 / 0.000 |" in md
    assert "0.118 / 0.205" in md and "0.129 / 0.216" in md
    assert results_csv({"mine": res}).count("\n") == 7
