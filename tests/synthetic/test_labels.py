"""Self-checks of the render: LiDAR inside the labelled boxes, depth_2 agrees with the velodyne,
labelled objects are visible in their 2D boxes, truncation and occlusion are measured."""

from __future__ import annotations

import numpy as np
import pytest

from kitti import KittiRoot, points_in_box_mask
from kitti.boxes import alpha_from_ry, box_corners_rect
from synth.labels import projected_box_truncation
from synth.writer import template_calibration


def test_labels_from_render_match_written_files(tiny_root, tiny_frames):
    root, _ = tiny_root
    kr = KittiRoot(root)
    for fid, (_, _, labels, _) in zip(kr.frame_ids(), tiny_frames):
        assert [o.label.to_line() for o in labels] == [o.to_line() for o in kr.labels(fid)]


def test_velodyne_points_inside_labelled_boxes(tiny_frames):
    n_checked = 0
    for scene, frame, labels, calib in tiny_frames:
        pts_rect = calib.velo_to_rect(frame.points_velo)
        for o in labels:
            lab = o.label
            if lab.type == "DontCare":
                continue
            mine = frame.point_instance == o.instance
            if not mine.any():
                continue
            inside = points_in_box_mask(pts_rect[mine], np.array(lab.loc_rect), np.array(lab.hwl), lab.ry)
            assert inside.all(), f"{lab.type}: {np.count_nonzero(~inside)} of {mine.sum()} points outside"
            # and the box holds no points of other objects
            others = (frame.point_instance != o.instance) & (frame.point_instance >= 0)
            assert not points_in_box_mask(pts_rect[others], np.array(lab.loc_rect), np.array(lab.hwl), lab.ry).any()
            n_checked += 1
    assert n_checked >= 3


def test_depth_map_agrees_with_projected_velodyne(tiny_root):
    root, _ = tiny_root
    kr = KittiRoot(root)
    for fid in kr.frame_ids():
        calib, depth, pts = kr.calib(fid), kr.depth(fid), kr.velodyne(fid)
        h, w = depth.shape
        uv, d = calib.velo_to_img(pts)
        u, v = np.round(uv[:, 0]).astype(int), np.round(uv[:, 1]).astype(int)
        ok = (d > 1.0) & (u >= 1) & (u < w - 1) & (v >= 1) & (v < h - 1)
        u, v, d = u[ok], v[ok], d[ok]
        # local depth variation in the 3x3 neighbourhood bounds the sub-pixel offset's effect
        win = np.stack([depth[v + dv, u + du] for dv in (-1, 0, 1) for du in (-1, 0, 1)])
        smooth = (win.min(axis=0) > 0) & (win.max(axis=0) - win.min(axis=0) < 0.1 * d)
        err = np.abs(depth[v, u] - d)[smooth]
        bound = (win.max(axis=0) - win.min(axis=0))[smooth] / 2 + 1 / 256 + 1e-4
        assert smooth.sum() > 500
        # the LiDAR sits 0.27 m behind the camera: a few returns are hidden from the camera
        assert np.mean(err <= bound) > 0.97
        assert np.median(err) < 0.05


def test_depth_map_backprojects_onto_objects(tiny_frames):
    for scene, frame, labels, calib in tiny_frames:
        for o in labels:
            lab = o.label
            if lab.type == "DontCare":
                continue
            vv, uu = np.nonzero(frame.instance == o.instance)
            # the PNG keeps depth to 1/256 m
            d = np.round(frame.depth_m[vv, uu] * 256) / 256
            p = calib.img_to_rect(np.column_stack([uu, vv]).astype(float), d)
            hwl = np.array(lab.hwl) + 0.01
            loc = np.array(lab.loc_rect) + np.array([0, 0.005, 0])
            assert points_in_box_mask(p, loc, hwl, lab.ry).mean() > 0.999


def test_labelled_objects_visible_in_their_2d_box(tiny_frames):
    for scene, frame, labels, calib in tiny_frames:
        for o in labels:
            lab = o.label
            rows, cols = np.nonzero(frame.instance == o.instance)
            assert rows.size == o.visible_px > 0
            assert (cols.min(), rows.min(), cols.max(), rows.max()) == (lab.x1, lab.y1, lab.x2, lab.y2)
            if lab.type != "DontCare":
                assert lab.alpha == pytest.approx(float(alpha_from_ry(lab.ry, lab.x, lab.z)), abs=0.006)
                assert lab.occluded in (0, 1, 2) and 0.0 <= lab.truncated <= 1.0


def test_labels_dontcare_for_small_boxes(tiny_frames, tiny_settings):
    for scene, frame, labels, calib in tiny_frames:
        for o in labels:
            lab = o.label
            small = lab.y2 - lab.y1 < tiny_settings.min_box_height_px
            far = scene.objects[o.instance].loc_rect[2] > tiny_settings.max_label_depth_m
            assert (lab.type == "DontCare") == (small or far)


def test_projected_box_truncation_inside_half_and_behind():
    calib = template_calibration()
    hwl = np.array([[1.5, 1.6, 4.0]])
    centre = box_corners_rect(np.array([[0.0, 1.65, 20.0]]), hwl, np.array([0.0]))[0]
    t, ext = projected_box_truncation(centre, calib, (375, 1242))
    assert t == 0.0 and 0 < ext[0] < ext[2] < 1242
    # move the box so that its projection's right half leaves the image
    x_edge = (1241.5 - calib.cu) * 20.0 / calib.fu
    half = box_corners_rect(np.array([[x_edge, 1.65, 20.0]]), hwl, np.array([np.pi / 2]))[0]
    t, _ = projected_box_truncation(half, calib, (375, 1242))
    assert 0.4 < t < 0.6
    behind = box_corners_rect(np.array([[0.0, 1.65, -10.0]]), hwl, np.array([0.0]))[0]
    assert projected_box_truncation(behind, calib, (375, 1242))[0] == 1.0


def test_labels_occlusion_levels_follow_visible_fraction(tiny_frames):
    from synth.labels import OCCLUSION_VISIBLE_FRACTION as thr

    seen = set()
    for _, _, labels, _ in tiny_frames:
        for o in labels:
            if o.label.type == "DontCare":
                continue
            expect = 0 if o.visible_fraction >= thr[0] else (1 if o.visible_fraction >= thr[1] else 2)
            assert o.label.occluded == expect and 0 < o.visible_fraction <= 1
            seen.add(expect)
    assert 0 in seen


def _two_car_scene(far_x: float):
    """A car 10 m ahead and another straight behind it at 20 m (lateral offset ``far_x``)."""
    from synth.meshes import car_model
    from synth.scene import RoadFrame, _SceneAssembler, sample_drive_style

    rng = np.random.default_rng(0)
    style = sample_drive_style(rng)
    asm = _SceneAssembler()
    for x, z in ((0.0, 10.0), (far_x, 20.0)):
        hwl = (1.5, 1.6, 4.0)
        asm.try_object("Car", np.array([x, 1.65, z]), hwl, -np.pi / 2, car_model(rng, np.ones(3) * 0.5, hwl, 0), False)
    road = RoadFrame(np.zeros(3), np.array([1.0, 0, 0]), np.array([0, 0, 1.0]), 3.5, 3.5, 2, 1, 0.12, (3.0, 6.0))
    return asm.build(style.lighting, road, 1.65, 0.12, np.eye(3))


@pytest.mark.parametrize("far_x, expect_far", [(0.0, -1), (1.2, 2), (1.9, 1), (8.0, 0)])
def test_labels_from_render_occlusion_of_car_behind_car(far_x, expect_far):
    from synth.labels import labels_from_render
    from synth.render import render_frame

    calib = template_calibration(0.5)
    scene = _two_car_scene(far_x)
    frame = render_frame(scene, calib, (188, 621), np.random.default_rng(0), noise=0.0, seed=0,
                         azimuth_step_deg=1.0, max_range_m=120.0)
    labels = {o.instance: o for o in labels_from_render(scene, frame, calib, min_visible_px=5,
                                                          min_box_height_px=5, max_label_depth_m=80)}
    assert labels[0].label.occluded == 0 and labels[0].visible_fraction == 1.0
    # straight behind: only a sliver of roof shows, too low to label (DontCare, occluded -1)
    assert labels[1].label.occluded == expect_far
