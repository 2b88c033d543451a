"""AVOD geometry: ground planes, BEV maps, anchors, box encodings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings as hsettings, strategies as st

from kitti.boxes import box_bev_corners
from kitti.errors import KittiFormatError
from kitti.labels import Object3d
from detection.avod.anchors import cluster_sizes, footprint_point_counts, grid_anchors, non_empty_anchors
from detection.avod.bev import bev_maps
from detection.avod.encoding import (anchor_offsets, anchors_to_bev_xyxy, apply_anchor_offsets,
                                     box_4c_to_boxes, boxes_to_4c, boxes_to_anchors, orientation_vector)
from detection.avod.planes import (FALLBACK_PLANE, fit_ground_plane, height_above_plane, read_plane_file,
                                   write_plane_file)
from detection.avod.settings import AvodSettings, preset


def _plane(tx: float, tz: float, d: float) -> np.ndarray:
    """A road tilted by small angles (radians) about z and x, ``d`` metres below the camera."""
    n = np.array([math.sin(tx), -1.0, math.sin(tz)])
    n /= np.linalg.norm(n)
    return np.array([*n, d])


planes = st.builds(_plane, st.floats(-0.08, 0.08), st.floats(-0.08, 0.08), st.floats(1.4, 1.9))


@st.composite
def boxes(draw):
    w = draw(st.floats(0.4, 2.5))
    l = w + draw(st.floats(0.1, 10.0))  # decoding takes the longer side as the length
    return [draw(st.floats(-40, 40)), draw(st.floats(0.5, 2.5)), draw(st.floats(1, 70)),
            draw(st.floats(0.5, 4.0)), w, l, draw(st.floats(-math.pi, math.pi - 1e-9))]


def _wrap(a):
    return (a + math.pi) % (2 * math.pi) - math.pi


@given(boxes(), planes)
def test_box_4c_round_trip(box, plane):
    b = torch.tensor([box], dtype=torch.float64)
    p = torch.tensor(plane, dtype=torch.float64)
    back = box_4c_to_boxes(boxes_to_4c(b, p), p, orientation_vector(b[:, 6]))[0].numpy()
    np.testing.assert_allclose(back[:6], box[:6], atol=1e-7)
    assert abs(_wrap(back[6] - box[6])) < 1e-7


@given(boxes(), planes)
def test_box_4c_corners_are_the_footprint_and_heights_above_the_plane(box, plane):
    b = torch.tensor([box], dtype=torch.float64)
    c4 = boxes_to_4c(b, torch.tensor(plane, dtype=torch.float64))[0].numpy()
    x, y, z, h, w, l, ry = box
    ref = box_bev_corners(np.array([[x, y, z]]), np.array([[h, w, l]]), np.array([ry]))[0]
    got = np.stack([c4[0:4], c4[4:8]], axis=1)
    # the same four corners, maybe in another cyclic order
    d = np.linalg.norm(got[:, None, :] - ref[None, :, :], axis=2)
    assert np.all(d.min(axis=1) < 1e-7) and np.all(d.min(axis=0) < 1e-7)
    h_bottom = height_above_plane(np.array([[x, y, z]]), plane)[0]
    h_top = height_above_plane(np.array([[x, y - h, z]]), plane)[0]
    np.testing.assert_allclose(c4[8:], [h_bottom, h_top], atol=1e-9)


def test_box_4c_corner_order_of_an_axis_aligned_box():
    b = torch.tensor([[1.0, 1.6, 10.0, 1.5, 2.0, 4.0, 0.0]], dtype=torch.float64)
    c4 = boxes_to_4c(b, torch.tensor(FALLBACK_PLANE, dtype=torch.float64))[0].numpy()
    np.testing.assert_allclose(c4[:4], [3.0, 3.0, -1.0, -1.0])
    np.testing.assert_allclose(c4[4:8], [11.0, 9.0, 9.0, 11.0])
    np.testing.assert_allclose(c4[8:], [0.05, 1.55])


anchor_vals = st.lists(st.floats(-30, 30), min_size=3, max_size=3).flatmap(
    lambda c: st.lists(st.floats(0.3, 12.0), min_size=3, max_size=3).map(lambda s: c + s))


@given(anchor_vals, anchor_vals)
def test_anchor_offsets_round_trip(a, t):
    a_t = torch.tensor([a], dtype=torch.float64)
    t_t = torch.tensor([t], dtype=torch.float64)
    np.testing.assert_allclose(apply_anchor_offsets(a_t, anchor_offsets(a_t, t_t)).numpy(), [t], atol=1e-9)


def test_boxes_to_anchors_picks_the_nearest_axis():
    b = torch.tensor([[0.0, 1.0, 5.0, 1.5, 1.6, 3.9, 0.3],
                      [0.0, 1.0, 5.0, 1.5, 1.6, 3.9, math.pi / 2 - 0.2],
                      [0.0, 1.0, 5.0, 1.5, 1.6, 3.9, -math.pi + 0.1]], dtype=torch.float64)
    a = boxes_to_anchors(b).numpy()
    np.testing.assert_allclose(a[:, 3:], [[3.9, 1.5, 1.6], [1.6, 1.5, 3.9], [3.9, 1.5, 1.6]])
    np.testing.assert_allclose(anchors_to_bev_xyxy(torch.tensor(a[:1])).numpy(),
                               [[-1.95, 4.2, 1.95, 5.8]])


def test_fit_ground_plane_recovers_a_known_plane():
    rng = np.random.default_rng(0)
    true = _plane(0.03, -0.02, 1.7)
    x = rng.uniform(-15, 15, 4000)
    z = rng.uniform(1, 40, 4000)
    y = (-true[0] * x - true[2] * z - true[3]) / true[1] + rng.normal(0, 0.01, 4000)
    road = np.stack([x, y, z], axis=1)
    # clutter inside the recipe's y band that is not road (a kerb-like step), and objects above
    clutter = np.stack([rng.uniform(-15, -10, 500), rng.uniform(1.51, 1.6, 500), rng.uniform(1, 40, 500)], axis=1)
    cars = np.stack([rng.uniform(-5, 5, 2000), rng.uniform(0, 1.4, 2000), rng.uniform(5, 30, 2000)], axis=1)
    plane = fit_ground_plane(np.concatenate([road, clutter, cars]), seed=0)
    keep = (road[:, 1] > 1.5) & (road[:, 1] < 1.86)
    assert keep.sum() > 500
    np.testing.assert_allclose(plane, true, atol=5e-3)
    assert np.linalg.norm(plane[:3]) == pytest.approx(1.0)


def test_fit_ground_plane_falls_back_without_road_points():
    pts = np.array([[0.0, 0.0, 10.0], [1.0, 0.5, 12.0]])
    np.testing.assert_array_equal(fit_ground_plane(pts), FALLBACK_PLANE)


@given(planes)
def test_plane_file_round_trip(tmp_path_factory, plane):
    path = tmp_path_factory.mktemp("planes") / "000001.txt"
    write_plane_file(path, plane)
    assert path.read_text().splitlines()[:3] == ["# Plane", "Width 4", "Height 1"]
    np.testing.assert_allclose(read_plane_file(path), plane, rtol=1e-6, atol=1e-6)


def test_read_plane_file_flips_a_downward_normal(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("# Plane\nWidth 4\nHeight 1\n0 2 0 -3.3\n")
    np.testing.assert_allclose(read_plane_file(p), [0, -1, 0, 1.65])


@pytest.mark.parametrize("text, line", [("# Plane\nWidth 4\nHeight 1\n0 0 0 1\n", 4),
                                        ("# Plane\nWidth 4\nHeight 1\n1 2 3\n", None)])
def test_read_plane_file_rejects_bad_files(tmp_path, text, line):
    p = tmp_path / "bad.txt"
    p.write_text(text)
    with pytest.raises(KittiFormatError) as e:
        read_plane_file(p)
    assert str(p) in str(e.value) and (line is None or f":{line}:" in str(e.value))


SMALL = AvodSettings(x_range_m=(-4.0, 4.0), z_range_m=(0.0, 6.0), cell_m=0.5, num_slices=3)


def test_bev_maps_match_a_brute_force_loop():
    rng = np.random.default_rng(1)
    plane = _plane(0.02, 0.01, 1.6)
    pts = np.stack([rng.uniform(-5, 5, 3000), rng.uniform(-0.5, 2.0, 3000), rng.uniform(-1, 7, 3000)], axis=1)
    got = bev_maps(pts, plane, SMALL)
    rows, cols = SMALL.bev_shape
    ref = np.zeros((4, rows, cols))
    count = np.zeros((rows, cols))
    for p in pts:
        hgt = float(np.dot(plane[:3], p) + plane[3])
        c = int(math.floor((p[0] + 4.0) / 0.5))
        r = int(math.floor((6.0 - p[2]) / 0.5))
        if not (0 <= c < cols and 0 <= r < rows) or not (-0.2 <= hgt < 1.3):
            continue
        k = min(int((hgt + 0.2) // 0.5), 2)
        ref[k, r, c] = max(ref[k, r, c], (hgt - (-0.2 + 0.5 * k)) / 0.5)
        count[r, c] += 1
    ref[3] = np.minimum(1.0, np.log(count + 1) / np.log(16))
    np.testing.assert_allclose(got.maps, ref, atol=1e-6)
    np.testing.assert_array_equal(got.counts, count)


@hsettings(max_examples=30)
@given(st.lists(st.tuples(st.floats(-6, 6), st.floats(-2, 8), st.floats(0.3, 5), st.floats(0.3, 5)),
                min_size=1, max_size=5))
def test_footprint_point_counts_match_brute_force(spec):
    rng = np.random.default_rng(2)
    counts = rng.integers(0, 3, size=SMALL.bev_shape)
    anchors = np.array([[x, 1.6, z, dx, 1.5, dz] for x, z, dx, dz in spec])
    got = footprint_point_counts(anchors, counts, SMALL)
    for a, n in zip(anchors, got):
        ref = 0
        for r in range(counts.shape[0]):
            for c in range(counts.shape[1]):
                cx0, cx1 = -4.0 + 0.5 * c, -4.0 + 0.5 * (c + 1)
                cz1, cz0 = 6.0 - 0.5 * r, 6.0 - 0.5 * (r + 1)
                if cx1 > a[0] - a[3] / 2 and cx0 < a[0] + a[3] / 2 and cz1 > a[2] - a[5] / 2 and cz0 < a[2] + a[5] / 2:
                    ref += counts[r, c]
        assert n == ref


def test_grid_anchors_lie_on_the_plane_and_empty_ones_drop():
    plane = _plane(0.02, -0.01, 1.65)
    sizes = np.array([[3.9, 1.6, 1.5]])
    a = grid_anchors(sizes, plane, SMALL)
    assert a.shape == (16 * 12 * 2, 6)
    np.testing.assert_allclose(height_above_plane(a[:, :3], plane), 0.0, atol=1e-12)
    np.testing.assert_allclose(a[0], [-3.75, a[0, 1], 0.25, 3.9, 1.5, 1.6])
    np.testing.assert_allclose(a[1, 3:], [1.6, 1.5, 3.9])
    counts = np.zeros(SMALL.bev_shape, dtype=np.int32)
    counts[0, 0] = 1  # x in [-4, -3.5), z in [5.5, 6)
    kept = non_empty_anchors(a, counts, SMALL)
    assert len(kept) > 0
    assert np.all(kept[:, 0] - kept[:, 3] / 2 < -3.5) and np.all(kept[:, 2] + kept[:, 5] / 2 > 5.5)


def test_cluster_sizes_finds_two_size_groups():
    rng = np.random.default_rng(3)
    objs = []
    for centre in ((3.6, 1.6, 1.5), (4.6, 1.9, 1.7)):
        for _ in range(40):
            l, w, h = np.array(centre) + rng.normal(0, 0.03, 3)
            objs.append(Object3d("Car", 0.0, 0, 0.0, 0, 0, 10, 10, h, w, l, 0.0, 1.6, 10.0, 0.0))
    objs.append(Object3d("Pedestrian", 0.0, 0, 0.0, 0, 0, 10, 10, 1.7, 0.6, 0.8, 0.0, 1.6, 10.0, 0.0))
    got = cluster_sizes(objs, "Car", 2, seed=0)
    np.testing.assert_allclose(got, [[3.6, 1.6, 1.5], [4.6, 1.9, 1.7]], atol=0.03)
    with pytest.raises(ValueError, match="Pedestrian"):
        cluster_sizes(objs, "Pedestrian", 2)


def test_presets():
    assert preset("paper").bev_shape == (700, 800)
    assert preset("paper").fc_layers == (2048, 2048, 2048)
    with pytest.raises(ValueError):
        preset("nope")
    with pytest.raises(ValueError, match="channels"):
        AvodSettings(channels=(1, 2, 3))


def test_anchors_to_image_boxes_by_hand_plain_and_mirrored():
    """P2 = [[120, 0, 200, 0], [0, 120, 100, 0], [0, 0, 1, 0]], image 400 x 200, scaled by (0.5, 0.25).
    Anchor (x 2, y 1.5 bottom, z 10, dx 2, dy 1.5, dz 4): corners x {1, 3}, y {0, 1.5}, z {8, 12};
    u = 120·x/z + 200 spans [120/12 + 200, 360/8 + 200] = [210, 245], v = 120·y/z + 100 spans
    [100, 122.5]. In a mirrored frame (image flipped left-right) the same object sits at x = -2 and
    its box is the mirror of that one: u in [400 - 245, 400 - 210] = [155, 190]."""
    from detection.avod.encoding import anchors_to_image_boxes

    P2 = torch.tensor([[120.0, 0.0, 200.0, 0.0], [0.0, 120.0, 100.0, 0.0], [0.0, 0.0, 1.0, 0.0]], dtype=torch.float64)
    plain = anchors_to_image_boxes(torch.tensor([[2.0, 1.5, 10.0, 2.0, 1.5, 4.0]], dtype=torch.float64), P2,
                                   (400.0, 200.0), (0.5, 0.25))
    assert plain.tolist() == [[105.0, 25.0, 122.5, 30.625]]
    mirrored = anchors_to_image_boxes(torch.tensor([[-2.0, 1.5, 10.0, 2.0, 1.5, 4.0]], dtype=torch.float64), P2,
                                      (400.0, 200.0), (0.5, 0.25), flipped=True)
    assert mirrored.tolist() == [[77.5, 25.0, 95.0, 30.625]]
