"""depth.metrics: the paper's pooled fg / bg / global metrics and the tables."""

from __future__ import annotations

import numpy as np
import pytest

from depth.metrics import DepthEvalResult, evaluate_depth_dir, evaluate_depth_maps, format_table2, results_csv
from depth_fixtures import object_scene
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


# ---------------------------------------------------------------------------- per-object errors
def test_object_pixel_mask_is_the_objects_visible_surface():
    from depth.metrics import object_pixel_mask

    calib, gt, (car_a, ped_b, *_), expected_a = object_scene()
    np.testing.assert_array_equal(object_pixel_mask(gt, car_a, calib), expected_a)
    ped = object_pixel_mask(gt, ped_b, calib)
    assert ped.sum() == 7 * 3 and ped[59:66, 78:81].all()


def test_object_depth_errors_are_medians_binned_by_distance():
    from depth.metrics import ObjectDepthErrors, object_depth_errors

    calib, gt, labels, expected_a = object_scene()
    pred = gt.copy()
    pred[expected_a] *= 1.2                          # car A 20 % too far ...
    rows, cols = np.nonzero(expected_a)
    pred[rows[::3], cols[::3]] = 80.0                # ... with a third of its pixels wild: the median holds
    pred[59:66, 78:81] -= 2.0                        # pedestrian 2 m too near
    res = object_depth_errors([pred], [gt], [labels], [calib], ["000000"])
    assert res.types == ("Car", "Pedestrian") and res.pixels.tolist() == [int(expected_a.sum()), 21]
    np.testing.assert_allclose(res.error_m, [7.2 * 0.2, -2.0], rtol=1e-5)
    np.testing.assert_allclose(res.rel_error, [0.2, 2.0 / 24.6], rtol=1e-5)
    table = {r["bin_m"]: r for r in res.by_distance()}
    assert table["0-10"]["objects"] == 1 and table["0-10"]["mean_rel"] == pytest.approx(0.2, rel=1e-5)
    assert table["20-30"]["objects"] == 1 and table["20-30"]["mean_signed_m"] == pytest.approx(-2.0, rel=1e-5)
    assert table["10-20"]["objects"] == 0 and np.isnan(table["10-20"]["mean_rel"])
    assert table["all"]["objects"] == 2 and table["all"]["median_abs_m"] == pytest.approx((1.44 + 2.0) / 2, rel=1e-5)
    back = ObjectDepthErrors.from_json(res.to_json())
    np.testing.assert_array_equal(back.pred_median_m, res.pred_median_m)
    assert back.frame_ids == res.frame_ids and back.types == res.types


# ---------------------------------------------------------------------------- per-object diagnosis
def test_object_diagnosis_shares_worked_out_by_hand():
    """Car A (540 pixels at 7.2 m, its 2D box's border at 60 m behind it, an occluder at 3 m in front):
    270 dominant bins at 64.8 m (within 10 % of the 60 m background), 135 at 7.85 m (within 10 % of
    7.2 m), 81 at 30 m (farther, neither) and 54 at 6 m (nearer than 6.48 m); the pedestrian (21
    pixels at 24.6 m): 7 true, 14 at 40 m (farther, 20 m from its 60 m background)."""
    from depth.metrics import ObjectDiagnosis, object_diagnosis

    calib, gt, labels, expected_a = object_scene()
    mode = gt.copy()
    rows, cols = np.nonzero(expected_a)
    for lo, hi, depth_m in ((0, 270, 64.8), (270, 405, 7.2 * 1.09), (405, 486, 30.0), (486, 540, 6.0)):
        mode[rows[lo:hi], cols[lo:hi]] = depth_m
    mode[59:61, 78:81], mode[61:66, 78:81] = 24.6, 40.0          # 6 + 1 true pixels, 14 farther
    mode[61, 78] = 24.6
    res = object_diagnosis([mode], [gt], [labels], [calib], ["000000"])
    assert res.types == ("Car", "Pedestrian") and res.pixels.tolist() == [540, 21]
    np.testing.assert_allclose(res.background_m, [60.0, 60.0])
    np.testing.assert_allclose(res.shares, [[135 / 540, 0.5, 81 / 540, 54 / 540], [1 / 3, 0.0, 2 / 3, 0.0]])
    table = {r["bin_m"]: r for r in res.by_distance()}
    assert table["0-10"]["objects"] == 1 and table["0-10"]["share_background"] == pytest.approx(0.5)
    assert table["0-10"]["background_majority"] == 1 and table["20-30"]["background_majority"] == 0
    assert table["all"]["share_true"] == pytest.approx((0.25 + 1 / 3) / 2)
    assert table["all"]["with_background"] == 2 and np.isnan(table["10-20"]["share_true"])
    back = ObjectDiagnosis.from_json(res.to_json())
    np.testing.assert_array_equal(back.shares, res.shares)
    assert back.frame_ids == res.frame_ids and np.array_equal(back.background_m, res.background_m)


def test_background_depth_is_what_lies_behind_and_the_categories_order():
    from depth.metrics import classify_object_pixels, object_background_depth, object_pixel_mask

    calib, gt, (car_a, *_), expected_a = object_scene()
    assert object_background_depth(gt, car_a, expected_a) == pytest.approx(60.0)
    near = gt.copy()
    box = (slice(57, 78), slice(97, 143))                # car A's 2D box, x2 = 142, y2 = 77 inclusive
    near[box] = np.where(expected_a[box], gt[box], 7.5)   # 7.5 m: not more than 10 % behind 7.2 m
    near[60:66, 100:110] = 3.0
    assert np.isnan(object_background_depth(near, car_a, object_pixel_mask(near, car_a, calib)))
    gt_m = np.array([10.0, 10.0, 10.0, 10.0, 10.0, 10.0])
    mode = np.array([11.0, 8.9, 20.0, 21.5, 30.0, 12.0])
    np.testing.assert_array_equal(classify_object_pixels(mode, gt_m, 20.0), [0, 3, 1, 1, 2, 2])
    np.testing.assert_array_equal(classify_object_pixels(mode, gt_m, float("nan")), [0, 3, 2, 2, 2, 2])
    np.testing.assert_array_equal(classify_object_pixels(np.array([10.5]), np.array([10.0]), 10.8), [0])


def test_evaluate_depth_dir_object_surface_region_and_diagnosis(tmp_path):
    """A one-frame root of the object scene: the surface region pools exactly the objects' pixels."""
    import cv2

    from depth.metrics import evaluate_depth_dir
    from kitti import write_depth_png, write_label_file
    from kitti.fileio import atomic_write_bytes, atomic_write_text

    calib, gt, labels, expected_a = object_scene()
    root = tmp_path / "r"
    atomic_write_bytes(root / "training" / "image_2" / "000000.png",
                       cv2.imencode(".png", np.zeros((*gt.shape, 3), np.uint8))[1].tobytes())
    write_depth_png(root / "training" / "depth_2" / "000000.png", gt)
    atomic_write_text(root / "training" / "calib" / "000000.txt", calib.to_text())
    write_label_file(root / "training" / "label_2" / "000000.txt", labels)
    gt_q = KittiRoot(root).depth("000000")
    surface = expected_a.copy()
    surface[59:66, 78:81] = surface[60:62, 160:163] = True
    pred = gt_q * np.where(surface, 1.5, 1.0).astype(np.float32)       # objects 50 % too far, the rest exact
    pred[5, 0] = gt_q[5, 0] * 3.0                                      # background pixel: not an object
    write_depth_npz(tmp_path / "d" / "000000.npz", pred)
    write_depth_npz(tmp_path / "m" / "000000.npz", gt_q)               # every dominant bin exact
    res = evaluate_depth_dir(root, ["000000"], tmp_path / "d", dominant_dir=tmp_path / "m")
    assert res.surface["pixels"] == 540 + 21 + 6 and res.surface["absrel"] == pytest.approx(0.5, rel=1e-6)
    np.testing.assert_allclose(res.diagnosis.shares, [[1, 0, 0, 0], [1, 0, 0, 0]])
    assert DepthEvalResult.from_json(res.to_json()) == res
    assert evaluate_depth_dir(root, ["000000"], tmp_path / "d").diagnosis is None
