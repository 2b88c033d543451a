"""Camera rays, LiDAR layout, mesh fitting and placement."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kitti.boxes import box_corners_rect, points_in_box_mask
from synth.meshes import (car_model, cyclist_model, fit_to_box, pedestrian_model, place_in_rect,
                                    truck_model, van_model)
from synth.render import HDL64_ELEVATION_DEG, camera_rays, lidar_directions_velo
from synth.settings import SynthSettings, preset
from synth.writer import template_calibration


@settings(max_examples=12, deadline=None)
@given(s=st.floats(0.5, 200.0), scale=st.sampled_from([1.0, 0.5, 0.3]))
def test_camera_rays_parameter_is_rect_to_img_depth(s, scale):
    calib = template_calibration(scale)
    h, w = SynthSettings(image_scale=scale).image_hw
    centre, dirs = camera_rays(calib, (h, w))
    rows = np.array([0, h // 2, h - 1])
    cols = np.array([0, w // 3, w - 1])
    p = centre + s * dirs[rows, cols]
    uv, depth = calib.rect_to_img(p)
    np.testing.assert_allclose(uv, np.column_stack([cols, rows]), atol=1e-7)
    np.testing.assert_allclose(depth, s, rtol=1e-12)


def test_lidar_directions_velo_hdl64_layout():
    d = lidar_directions_velo(0.09)
    assert d.shape == (64 * 4000, 3)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0)
    el = np.rad2deg(np.arcsin(d[:, 2]))
    assert el.max() == pytest.approx(2.0) and el.min() == pytest.approx(-24.8)
    assert len(HDL64_ELEVATION_DEG) == 64


_MODELS = {
    "Car": lambda rng, hwl: car_model(rng, np.ones(3) * 0.5, hwl, 1),
    "Van": lambda rng, hwl: van_model(rng, np.ones(3) * 0.5, hwl),
    "Truck": lambda rng, hwl: truck_model(rng, np.ones(3) * 0.5, np.ones(3) * 0.3, hwl),
    "Pedestrian": pedestrian_model,
    "Cyclist": lambda rng, hwl: cyclist_model(rng, np.ones(3) * 0.5, hwl),
}


@settings(max_examples=20, deadline=None)
@given(kind=st.sampled_from(sorted(_MODELS)), h=st.floats(1.2, 4.0), w=st.floats(0.4, 2.9),
       l=st.floats(0.4, 16.0), ry=st.floats(-np.pi, np.pi), x=st.floats(-20, 20), z=st.floats(1, 80))
def test_fit_to_box_and_place_in_rect_stay_in_label_box(kind, h, w, l, ry, x, z):
    rng = np.random.default_rng(0)
    hwl = (h, w, l)
    v, *_ = _MODELS[kind](rng, hwl).arrays()
    fitted = fit_to_box(v, hwl)
    lo, hi = fitted.min(axis=0), fitted.max(axis=0)
    np.testing.assert_allclose(hi - lo, np.array([l, h, w]) - 0.004, atol=1e-9)
    loc = np.array([x, 1.65, z])
    placed = place_in_rect(fitted, loc, ry)
    assert points_in_box_mask(placed, loc, np.array(hwl), ry).all()
    # place_in_rect turns box-frame corners into box_corners_rect's corners
    corners_box = np.array([[l / 2, 0, w / 2], [l / 2, 0, -w / 2], [-l / 2, 0, -w / 2], [-l / 2, 0, w / 2]])
    np.testing.assert_allclose(place_in_rect(corners_box, loc, ry),
                               box_corners_rect(loc[None], np.array([hwl]), np.array([ry]))[0, :4], atol=1e-9)


def test_preset_unknown_name_raises_and_sizes():
    with pytest.raises(ValueError, match="unknown synth preset"):
        preset("huge")
    assert preset("cpu-small").frames_train + preset("cpu-small").frames_val == 400
    assert SynthSettings().image_hw == (375, 1242)
    with pytest.raises(ValueError):
        SynthSettings(frames_train=-1)


def test_class_size_stats_means_agree_with_kitti_classes():
    from kitti.classes import MEAN_SIZE_LWH
    from synth.scene import CLASS_SIZE_STATS

    for kind, (mean_hwl, std, lo, hi) in CLASS_SIZE_STATS.items():
        l, w, h = MEAN_SIZE_LWH[kind]
        np.testing.assert_allclose(mean_hwl, (h, w, l), atol=0.03)
        assert all(a < m < b for a, m, b in zip(lo, mean_hwl, hi)) and min(std) > 0
