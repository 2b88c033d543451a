"""Pictures (BEV, front view), PLY export and the open3d viewer's no-display path."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kitti import Boxes3D, KittiRoot
from pseudolidar import viz


def test_render_bev_draws_each_point_at_its_metres_position():
    view = viz.BevView(x_range_m=(0.0, 40.0), y_range_m=(-20.0, 20.0), px_per_m=5.0)
    pts = np.array([[30.05, 10.05, 0.0, 1.0]])  # 10 m left, 30 m ahead
    img = viz.render_bev([viz.CloudLayer(pts, (255, 0, 0), "a")], view=view)
    assert img.shape == (200, 200, 3) and img.dtype == np.uint8
    # row = (40 - 30.05)·5 = 49.75 -> 49; col = (20 - 10.05)·5 = 49.75 -> 49
    assert img[49, 49].tolist() == [255, 0, 0]
    empty = viz.render_bev([viz.CloudLayer(np.zeros((0, 4)), (255, 0, 0))], view=view)
    assert empty[49, 49].tolist() != [255, 0, 0]


def test_render_bev_later_clouds_cover_earlier_ones_and_accept_tuples():
    view = viz.BevView(x_range_m=(0.0, 20.0), y_range_m=(-10.0, 10.0), px_per_m=10.0)
    pts = np.array([[10.05, 0.05, 0.0]])
    img = viz.render_bev([(pts, (0, 0, 255), "gt"), (pts, (255, 255, 0))], view=view)
    assert img[99, 99].tolist() == [255, 255, 0]


def test_render_bev_draws_grid_ego_and_ground_truth_boxes(sample_root):
    root = KittiRoot(sample_root)
    calib, labels = root.calib("000008"), root.labels("000008")
    view = viz.BevView()
    img = viz.render_bev([], calib, gt_objects=labels, view=view)
    gt = np.all(img == np.array(viz.GT_BOX_RGB, np.uint8), axis=2)
    assert gt.sum() > 200
    # every GT car footprint centre (velodyne) is surrounded by green box edges
    boxes = viz.objects_to_boxes(labels)
    centres = viz.box_corners_velo(boxes, calib)[:, :4, :2].mean(axis=1)
    for c, r in np.round(view.to_pixels(centres)).astype(int):
        window = gt[max(r - 30, 0):r + 30, max(c - 30, 0):c + 30]
        assert window.any()
    # ego arrow (white) at the LiDAR: x = 0 is 75 m below the top at 10 px/m
    assert np.all(img[735:750, 400] == 255, axis=-1).any()


def test_render_bev_writes_detection_scores(sample_root):
    root = KittiRoot(sample_root)
    calib, labels = root.calib("000008"), root.labels("000008")
    dets = [o.with_(score=0.9) for o in labels if o.type == "Car"]
    with_scores = viz.render_bev([], calib, det_objects=dets)
    det = np.all(with_scores == np.array(viz.DET_BOX_RGB, np.uint8), axis=2)
    assert det.sum() > 200


def test_render_bev_boxes_without_calib_raise():
    boxes = Boxes3D(np.array([[0.0, 1.6, 10.0]]), np.array([[1.5, 1.6, 4.0]]), np.zeros(1), np.full(1, np.nan))
    with pytest.raises(ValueError, match="calib"):
        viz.render_bev([], boxes=[viz.BoxLayer(boxes, (0, 255, 0))])


def test_render_front_colours_points_by_depth(sample_root):
    root = KittiRoot(sample_root)
    calib, image = root.calib("000001"), root.image("000001")
    uv = np.array([[300.0, 300.0], [900.0, 300.0]])
    pts = calib.img_to_velo(uv, np.array([5.0, 60.0]))
    img = viz.render_front(image, pts, calib, point_size_px=1, max_depth_m=80.0)
    assert img.shape == image.shape and img.dtype == np.uint8
    near, far = img[300, 300].astype(int), img[300, 900].astype(int)
    assert near[0] > near[2] and far[2] > far[0]  # near red, far blue
    np.testing.assert_array_equal(viz.depth_colors(np.array([5.0, 60.0]), 80.0), [near, far])


def test_render_front_bad_image_raises(sample_root):
    calib = KittiRoot(sample_root).calib("000001")
    with pytest.raises(ValueError, match=r"expected an \(H, W, 3\) image"):
        viz.render_front(np.zeros((10, 10)), np.zeros((0, 4)), calib)


def test_write_ply_round_trips_through_open3d(tmp_path, sample_root):
    import open3d as o3d

    velo = KittiRoot(sample_root).velodyne("000000")[:5000]
    layers = [viz.CloudLayer(velo[:3000], (255, 0, 0)), viz.CloudLayer(velo[3000:], (0, 0, 255))]
    assert viz.write_ply(tmp_path / "c.ply", layers) == 5000
    pcd = o3d.io.read_point_cloud(str(tmp_path / "c.ply"))
    np.testing.assert_allclose(np.asarray(pcd.points), velo[:, :3], rtol=0, atol=0)
    colors = np.asarray(pcd.colors)
    np.testing.assert_allclose(colors[:3000], [[1, 0, 0]] * 3000)
    np.testing.assert_allclose(colors[3000:], [[0, 0, 1]] * 2000)


def test_open3d_view_without_display_raises_no_display_error(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert not viz.has_display()
    with pytest.raises(viz.NoDisplayError, match="no display"):
        viz.open3d_view([viz.CloudLayer(np.zeros((3, 4)), (255, 0, 0))])


def test_colors_for_roles_follow_fig6_and_stay_distinct():
    c = viz.colors_for_roles(["foresee", "baseline", "oracle", "x", "lidar"])
    assert c[:3] == [viz.COLORS["yellow"], viz.COLORS["red"], viz.COLORS["blue"]]
    assert len(set(c)) == 5
    assert viz.colors_for_roles(["x", "foresee"]) == [viz.COLORS["cyan"], viz.COLORS["yellow"]]


@pytest.mark.parametrize("text", ["1,2,3", "0,10,5,-5", "a,b,c,d"])
def test_parse_range_bad_text_raises(text):
    with pytest.raises(ValueError, match="range"):
        viz.parse_range(text)


def test_color_rgb_names_and_hex():
    assert viz.color_rgb("#ff0080") == (255, 0, 128) and viz.color_rgb("red") == viz.COLORS["red"]
    with pytest.raises(ValueError, match="unknown colour"):
        viz.color_rgb("chartreuse")


def test_open3d_view_with_display_builds_clouds_and_box_line_sets(monkeypatch, sample_root):
    import open3d as o3d

    root = KittiRoot(sample_root)
    calib, velo = root.calib("000008"), root.velodyne("000008")
    boxes = viz.objects_to_boxes(root.labels("000008"))
    shown = {}
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(o3d.visualization, "draw_geometries",
                        lambda geoms, window_name="": shown.update(geoms=geoms, title=window_name))
    viz.open3d_view([viz.CloudLayer(velo, (255, 0, 0))], [viz.BoxLayer(boxes, (0, 255, 0))], calib=calib, title="t")
    geoms = shown["geoms"]
    assert shown["title"] == "t" and len(geoms) == 1 + len(boxes) + 1
    np.testing.assert_allclose(np.asarray(geoms[0].points), velo[:, :3], atol=1e-6)
    np.testing.assert_allclose(np.asarray(geoms[1].points), viz.box_corners_velo(boxes, calib)[0])
    assert len(geoms[1].lines) == 12


@settings(max_examples=30, deadline=None)
@given(points=arrays(np.float32, st.tuples(st.integers(0, 50), st.sampled_from([3, 4])),
                     elements=st.floats(-100, 100, width=32)),
       color=st.tuples(*[st.integers(0, 255)] * 3))
def test_encode_ply_round_trips_binary_records(points, color):
    n = len(points)
    colors = np.tile(np.array(color, np.uint8), (n, 1))
    data = viz.encode_ply(points, colors)
    header, _, body = data.partition(b"end_header\n")
    assert f"element vertex {n}".encode() in header
    rec = np.frombuffer(body, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4"),
                                     ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    assert len(rec) == n
    np.testing.assert_array_equal(np.stack([rec["x"], rec["y"], rec["z"]], 1), points[:, :3])
    np.testing.assert_array_equal(rec["intensity"], points[:, 3] if points.shape[1] == 4 else np.ones(n))
    np.testing.assert_array_equal(np.stack([rec["red"], rec["green"], rec["blue"]], 1), colors)
