"""The self-contained 3D page (pseudolidar.html_view, ``foresee show --html``): what the page holds.

Read back from the HTML text itself (the figure JSON inside it), checked against values computed
here: point counts after cropping and the cap, box corners from kitti.box_corners_rect and the
calibration, no URL the page could load.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from kitti import KittiRoot, box_corners_rect
from pipeline.commands.show_cmd import show_command
from pseudolidar import html_view, viz
from pseudolidar.html_view import HtmlView, decode_array, figure_from_html

# the edges of a box by corner index (kitti.boxes order): bottom ring, top ring, the four uprights
CUBE_EDGES = {frozenset(e) for e in [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4),
                                     (0, 4), (1, 5), (2, 6), (3, 7)]}


def _car():
    from kitti.labels import parse_label_line

    return parse_label_line("Car 0 0 0 0 0 10 10 1.5 1.6 4.0 1.0 1.7 20.0 0.1")


def _traces(fig: dict, kind: str) -> list[dict]:
    return [t for t in fig["data"] if t["meta"]["kind"] == kind]


def _xyz(trace: dict) -> np.ndarray:
    return np.stack([decode_array(trace[a]) for a in "xyz"], axis=1)


def _rows(a: np.ndarray) -> set[tuple]:
    return {tuple(r) for r in np.asarray(a, dtype=np.float32).tolist()}


def test_page_holds_every_cloud_cropped_then_capped(sample_root):
    root = KittiRoot(sample_root)
    lidar = root.velodyne("000008")
    rng = np.random.default_rng(1)
    dense = rng.uniform([-10, -50, -4, 0], [90, 50, 4, 1], size=(7000, 4)).astype(np.float32)
    small = np.array([[10.0, 1.0, -1.0, 1.0], [200.0, 0.0, 0.0, 1.0]], dtype=np.float32)  # 2nd outside
    view = HtmlView(max_points=5000)
    page = html_view.build_page([viz.CloudLayer(lidar, (40, 120, 255), "LiDAR"),
                                 viz.CloudLayer(dense, (255, 225, 0), "foresee"),
                                 viz.CloudLayer(small, (240, 40, 40), "baseline")], view=view, title="t")
    fig = figure_from_html(page)
    clouds = _traces(fig, "cloud")
    assert [t["meta"]["layer"] for t in clouds] == ["LiDAR", "foresee", "baseline"]
    for trace, pts in zip(clouds, (lidar, dense, small)):
        r = view.ranges
        inside = pts[np.all((pts[:, :3] >= r[:, 0]) & (pts[:, :3] <= r[:, 1]), axis=1), :3]
        shown = _xyz(trace)
        assert shown.dtype == np.float32 and trace["x"]["dtype"] == "f4"  # typed array, not a JSON list
        assert len(shown) == min(5000, len(inside))
        assert trace["meta"] == {"layer": trace["meta"]["layer"], "kind": "cloud",
                                 "points_in_view": len(inside), "points_shown": len(shown)}
        assert _rows(shown) <= _rows(inside) and len(_rows(shown)) == len(shown)  # distinct input points
    assert len(inside) == 1
    # the cap is stated in the legend, the counts in the layer names
    assert "at most 5,000 per layer" in fig["layout"]["legend"]["title"]["text"]
    # the legend sits right of the scene, not on it: the scene ends at LEGEND_FREE_X of the width,
    # the legend is anchored at the right edge, and its caption lines are short enough to fit
    lay = fig["layout"]
    assert lay["scene"]["domain"]["x"] == [0.0, html_view.LEGEND_FREE_X] and html_view.LEGEND_FREE_X <= 0.8
    assert (lay["legend"]["x"], lay["legend"]["xanchor"]) == (1.0, "right")
    assert max(len(line) for line in lay["legend"]["title"]["text"].split("<br>")) <= 40
    n_lidar = clouds[0]["meta"]["points_in_view"]
    assert n_lidar > 5000 and clouds[0]["name"] == f"LiDAR: 5,000 of {n_lidar:,} pts"


def test_page_boxes_are_the_kitti_corners_in_the_velodyne_frame(sample_root):
    root = KittiRoot(sample_root)
    calib, labels = root.calib("000008"), root.labels("000008")
    objs = [o for o in labels if o.type != "DontCare"]
    dets = [o.with_(score=0.25 + 0.1 * i) for i, o in enumerate(objs[:3])]
    page = html_view.build_page([], [viz.box_layer(labels, viz.GT_BOX_RGB, "ground truth"),
                                     viz.box_layer(dets, viz.DET_BOX_RGB, "detections")], calib)
    fig = figure_from_html(page)
    boxes = _traces(fig, "boxes")
    assert [t["meta"] for t in boxes] == [{"layer": "ground truth", "kind": "boxes", "boxes": len(objs)},
                                          {"layer": "detections", "kind": "boxes", "boxes": 3}]
    for trace, records in zip(boxes, (objs, dets)):
        corners_rect = box_corners_rect(np.array([o.loc_rect for o in records]),
                                        np.array([o.hwl for o in records]), np.array([o.ry for o in records]))
        want = calib.rect_to_velo(corners_rect.reshape(-1, 3)).reshape(-1, 8, 3)
        xyz = _xyz(trace)
        assert np.isnan(xyz[2::3]).all()  # a gap after every segment
        segs = np.stack([xyz[0::3], xyz[1::3]], axis=1).reshape(len(records), 12, 2, 3)
        for k in range(len(records)):
            # each segment end is one of the box's 8 corners, and the 12 segments are its 12 edges
            d = np.linalg.norm(segs[k][:, :, None, :] - want[k][None, None], axis=-1)  # (12, 2, 8)
            assert d.min(axis=2).max() < 1e-9
            assert {frozenset(np.argmin(d[e], axis=1).tolist()) for e in range(12)} == CUBE_EDGES
        # scores and classes are on hover, one text per vertex
        text = trace["hovertext"]
        assert len(text) == len(xyz) and all(t is None for t in text[2::3])
        for k, o in enumerate(records):
            first = text[36 * k]
            assert first.startswith(f"{o.type} (") and all(t == first for t in text[36 * k:36 * k + 36] if t)
            if trace["meta"]["layer"] == "detections":
                assert f"<br>score {o.score:.3f}<br>" in first
            else:
                assert o.score is None and "score" not in first


def test_page_has_ego_car_grid_toggles_and_camera_presets():
    view = HtmlView(x_range_m=(0.0, 40.0), y_range_m=(-20.0, 20.0), grid_m=10.0)
    page = html_view.build_page([viz.CloudLayer(np.zeros((3, 4)), (1, 2, 3), "c")], view=view)
    fig = figure_from_html(page)
    layers = fig["layout"]["meta"]["layers"]
    assert layers == ["c", "ego car", "10 m grid"]
    ego = _xyz(_traces(fig, "ego")[0])
    assert np.nanmin(ego[:, 2]) == pytest.approx(-html_view.GROUND_BELOW_LIDAR_M)
    assert np.nanmin(ego[:, 0]) == pytest.approx(-2.7) and np.nanmax(ego[:, 1]) == pytest.approx(0.9)
    grid = _xyz(_traces(fig, "grid")[0])
    ends = grid[~np.isnan(grid[:, 0])]
    # lines at x = 0, 10, ..., 40 across y, and y = -20, ..., 20 across x, on the ground
    assert sorted({x for x, y, _ in ends.tolist() if y == -20.0 and x in (0, 10, 20, 30, 40)}) == [0, 10, 20, 30, 40]
    assert np.all(ends[:, 2] == -html_view.GROUND_BELOW_LIDAR_M) and len(ends) == 2 * (5 + 5)
    # one toggle button per layer, hiding exactly that layer's traces (args) and showing them again (args2)
    menus = fig["layout"]["updatemenus"]
    toggles = {m["buttons"][0]["label"]: m["buttons"][0] for m in menus[1:]}
    assert all(m["active"] == -1 for m in menus[1:])  # first click hides (args), the next shows (args2)
    assert list(toggles) == [f"toggle {n}" for n in layers]
    for name in layers:
        b = toggles[f"toggle {name}"]
        idx = [i for i, t in enumerate(fig["data"]) if t["meta"]["layer"] == name]
        assert b["method"] == "restyle" and b["args"] == [{"visible": False}, idx]
        assert b["args2"] == [{"visible": True}, idx]
    cams = fig["layout"]["meta"]["cameras"]
    assert [b["label"] for b in menus[0]["buttons"]] == ["BEV", "driver's view", "chase"]
    assert [b["args"][0]["scene.camera"] for b in menus[0]["buttons"]] == [cams[n] for n in html_view.CAMERAS]
    assert cams["bev"]["projection"]["type"] == "orthographic" and cams["bev"]["up"] == {"x": 1.0, "y": 0.0, "z": 0.0}
    assert fig["layout"]["scene"]["camera"] == cams["bev"]


def test_view_to_scene_maps_the_box_onto_its_aspect_ratio():
    view = HtmlView(x_range_m=(-5.0, 75.0), y_range_m=(-40.0, 40.0), z_range_m=(-3.0, 3.0))
    np.testing.assert_allclose(view.aspect, [1.8, 1.8, 1.8 * 6 / 80])
    assert view.to_scene((35.0, 0.0, 0.0)) == {"x": 0.0, "y": 0.0, "z": 0.0}
    c = view.to_scene((75.0, -40.0, 3.0))
    assert c == pytest.approx({"x": 0.9, "y": -0.9, "z": 0.9 * 6 / 80})


def test_page_loads_nothing_from_the_network(sample_root):
    root = KittiRoot(sample_root)
    page = html_view.build_page([viz.CloudLayer(root.velodyne("000008"), (1, 2, 3), "LiDAR")],
                                [viz.box_layer(root.labels("000008"), viz.GT_BOX_RGB, "gt")], root.calib("000008"))
    bundle = html_view.plotly_js()
    assert page.count(bundle) == 1  # the package's plotly.js, inlined once
    rest = page.replace(bundle, "")
    assert not re.search(r"(https?|wss?|ftp):", rest, re.I), "a URL outside plotly.js"
    assert not re.search(r"\b(src|href|srcset|action)\s*=|@import|url\(", rest, re.I)
    cfg = figure_from_html(page)["config"]  # plotly's own links are switched off
    assert cfg["displaylogo"] is False and cfg["showLink"] is False and cfg["showSendToCloud"] is False


def test_page_text_from_labels_stays_text():
    label = 'x "</script><img src=http://a.b/c>'
    page = html_view.build_page([viz.CloudLayer(np.ones((5, 3)), (1, 2, 3), label)], title="<b>t</b>")
    rest = page.replace(html_view.plotly_js(), "")
    assert rest.count("<script") == 3 and rest.count("</script>") == 3 and "<img" not in rest
    assert figure_from_html(page)["data"][0]["meta"]["layer"] == label
    assert "<title>&lt;b&gt;t&lt;/b&gt;</title>" in page


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 400), cap=st.integers(1, 300), seed=st.integers(0, 2**31))
def test_subsample_indices_are_distinct_sorted_and_capped(n, cap, seed):
    idx = html_view.subsample_indices(n, cap, seed)
    assert len(idx) == min(n, cap) and np.all(np.diff(idx) > 0)
    assert len(idx) == 0 or (idx[0] >= 0 and idx[-1] < n)
    np.testing.assert_array_equal(idx, html_view.subsample_indices(n, cap, seed))  # deterministic


def test_bad_view_and_boxes_without_calib_raise():
    with pytest.raises(ValueError, match="max_points"):
        HtmlView(max_points=0)
    with pytest.raises(ValueError, match="x_range_m"):
        HtmlView(x_range_m=(5.0, 5.0))
    with pytest.raises(ValueError, match="initial_camera"):
        HtmlView(initial_camera="top")
    with pytest.raises(ValueError, match=r"expected an \(N, >=3\) cloud"):
        html_view.build_page([viz.CloudLayer(np.zeros((4, 2)), (1, 2, 3))])
    with pytest.raises(ValueError, match="calib"):
        html_view.build_page([], [viz.BoxLayer(viz.objects_to_boxes([_car()]), (0, 0, 0))])
    fig = figure_from_html(html_view.build_page([], [viz.box_layer([], viz.GT_BOX_RGB, "gt")]))
    assert _traces(fig, "boxes")[0]["meta"]["boxes"] == 0  # an empty layer needs no calib


def test_show_command_html_writes_the_page_with_the_cap(gt_root, tmp_path):
    out = tmp_path / "p.html"
    res = CliRunner().invoke(show_command, ["lidar", "8", "--data", str(gt_root), "--html", str(out),
                                            "--max-points", "3000", "--range", "0,40,-20,20",
                                            "--workdir", str(tmp_path / "w")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert f"wrote {out}" in res.output
    fig = figure_from_html(out.read_text())
    pts = KittiRoot(gt_root).velodyne("000008")
    inside = ((pts[:, 0] >= 0) & (pts[:, 0] <= 40) & (pts[:, 1] >= -20) & (pts[:, 1] <= 20)
              & (pts[:, 2] >= -3) & (pts[:, 2] <= 3))
    (cloud,) = _traces(fig, "cloud")
    assert cloud["meta"]["points_in_view"] == int(inside.sum()) and len(_xyz(cloud)) == 3000
    assert [t["meta"]["layer"] for t in _traces(fig, "boxes")] == ["ground truth"]
    assert fig["layout"]["scene"]["xaxis"]["range"] == [0.0, 40.0]


def test_page_requests_keeps_the_page_s_requests_not_the_browser_s():
    from pseudolidar.html_browser import page_requests

    def start(url, nik, initiator):
        return {"type": 7, "params": {"url": url, "network_isolation_key": nik, "initiator": initiator}}

    netlog = {"constants": {"logEventTypes": {"URL_REQUEST_START_JOB": 7, "REQUEST_ALIVE": 3}},
              "events": [start("https://update.example/json", "null null", "not an origin"),  # component updater
                         start("http://example.invalid/a.png", "file:// [internally: file://] file://", "null"),
                         {"type": 3, "params": {"url": "https://x.example/", "initiator": "null"}},  # other event
                         start("https://example.org/b.json", "file:// file://", "null")]}
    assert page_requests(netlog) == ["http://example.invalid/a.png", "https://example.org/b.json"]


def test_process_tree_cpu_ticks_sees_child_processes():
    import os
    import subprocess
    import sys

    from pseudolidar.html_browser import process_tree_cpu_ticks

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        ticks = process_tree_cpu_ticks(os.getpid())
        assert os.getpid() in ticks and child.pid in ticks and all(t >= 0 for t in ticks.values())
        assert process_tree_cpu_ticks(child.pid).keys() == {child.pid}
    finally:
        child.kill()
        child.wait()
