"""numba kernels against their float64 twins (kitti_eval.reference, shapely for polygons)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kitti.labels import Object3d
from kitti_eval import _kernels as K
from kitti_eval.reference import (get_thresholds_ref, ground_overlap_ref, image_overlap_ref)

pytest.importorskip("shapely")

HYP = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

coord = st.floats(-5.0, 5.0, allow_nan=False).map(lambda v: round(v, 2))
size = st.floats(0.0, 4.0, allow_nan=False).map(lambda v: round(v, 2))
yaw = st.one_of(st.sampled_from([math.pi, -math.pi, 0.0, math.pi / 2, -math.pi / 2]),
                st.floats(-math.pi, math.pi, allow_nan=False))


def _obj(x: float, y: float, z: float, h: float, w: float, l: float, ry: float,  # noqa: E741
         box: tuple[float, float, float, float] = (0, 0, 1, 1)) -> Object3d:
    return Object3d("Car", 0.0, 0, 0.0, *box, h, w, l, x, y, z, ry)


boxes3d = st.builds(_obj, coord, coord, coord, size, size, size, yaw)


def _pair_overlaps(d: Object3d, g: Object3d) -> np.ndarray:
    out = np.empty(4)
    K.ground_overlap(np.array([d.x, d.y, d.z, d.h, d.w, d.l, d.ry]),
                     np.array([g.x, g.y, g.z, g.h, g.w, g.l, g.ry]),
                     np.empty((4, 2)), np.empty((4, 2)), np.empty((16, 2)), np.empty((16, 2)), out)
    return out


def _ref_overlaps(d: Object3d, g: Object3d) -> np.ndarray:
    return np.array([ground_overlap_ref(d, g), ground_overlap_ref(d, g, 0),
                     ground_overlap_ref(d, g, three_d=True), ground_overlap_ref(d, g, 0, True)])


@HYP
@given(boxes3d, boxes3d)
def test_ground_overlap_matches_shapely_random(d, g):
    np.testing.assert_allclose(_pair_overlaps(d, g), _ref_overlaps(d, g), rtol=1e-9, atol=1e-9)


@HYP
@given(boxes3d)
def test_ground_overlap_identical_is_one(b):
    got = _pair_overlaps(b, b)
    if b.w > 0 and b.l > 0:
        # 1 up to the rounding of the clipped polygon's area: hypothesis found 1 + 1.3e-12 for a
        # 0.01 x 0.06 m box (its area 6e-4 m² next to coordinates of metres); rtol as above
        np.testing.assert_allclose(got[:2], 1.0, rtol=1e-9)
        if b.h > 0:
            np.testing.assert_allclose(got[2:], 1.0, rtol=1e-9)
    else:
        assert (got == 0).all()


@HYP
@given(boxes3d, st.floats(0.1, 0.9))
def test_ground_overlap_nested_is_area_ratio(b, k):
    if min(b.h, b.w, b.l) <= 0.01:
        return
    inner = b.with_(w=b.w * k, l=b.l * k)
    got = _pair_overlaps(inner, b)
    np.testing.assert_allclose(got[0], k * k, rtol=1e-9)
    np.testing.assert_allclose(got[1], 1.0, rtol=1e-9)  # inner lies inside: inter / area_inner
    np.testing.assert_allclose(got[2], k * k, rtol=1e-9)


@HYP
@given(boxes3d)
def test_ground_overlap_touching_is_zero(b):
    if min(b.w, b.l) <= 0:
        return
    # neighbour shifted by exactly one length along the heading: shares an edge, no area
    c, s = math.cos(b.ry), math.sin(b.ry)
    other = b.with_(x=b.x + c * b.l, z=b.z - s * b.l)
    assert _pair_overlaps(other, b)[0] == pytest.approx(0.0, abs=1e-9)


@HYP
@given(boxes3d)
def test_ground_overlap_yaw_plus_minus_pi_same_box(b):
    np.testing.assert_allclose(_pair_overlaps(b.with_(ry=math.pi), b.with_(ry=-math.pi)),
                               _pair_overlaps(b.with_(ry=math.pi), b.with_(ry=math.pi)), atol=1e-12)


def test_ground_overlap_degenerate_zero_width_is_zero():
    a = _obj(0, 1.5, 10, 1.5, 0.0, 4.0, 0.3)
    b = _obj(0, 1.5, 10, 1.5, 1.6, 4.0, 0.3)
    assert (_pair_overlaps(a, b) == 0).all()
    assert (_pair_overlaps(b, a) == 0).all()


def test_ground_overlap_3d_uses_bottom_centre_heights():
    a = _obj(0, 2.0, 10, 1.0, 1.0, 1.0, 0.0)  # spans y in [1, 2]
    b = _obj(0, 1.5, 10, 1.0, 1.0, 1.0, 0.0)  # spans y in [0.5, 1.5]
    got = _pair_overlaps(a, b)
    assert got[0] == pytest.approx(1.0)
    assert got[2] == pytest.approx(0.5 / 1.5)


box2d = st.tuples(st.floats(0, 500), st.floats(0, 300), st.floats(0, 200), st.floats(0, 200)).map(
    lambda t: (round(t[0], 2), round(t[1], 2), round(t[0] + t[2], 2), round(t[1] + t[3], 2)))


@HYP
@given(box2d, box2d, st.sampled_from([-1, 0]))
def test_image_overlap_matches_reference(a, b, criterion):
    oa, ob = _obj(0, 0, 0, 1, 1, 1, 0, a), _obj(0, 0, 0, 1, 1, 1, 0, b)
    got = K.image_overlap(np.array(a), np.array(b), criterion)
    assert got == image_overlap_ref(oa, ob, criterion)


def test_image_overlap_touching_and_identical():
    a = np.array([10.0, 10.0, 50.0, 40.0])
    assert K.image_overlap(a, a, -1) == 1.0
    assert K.image_overlap(a, a + np.array([40.0, 0, 40.0, 0]), -1) == 0.0


def test_overlap_frames_match_pairwise_kernels():
    rng = np.random.default_rng(3)
    gt_off, det_off = np.array([0, 3, 3, 7]), np.array([0, 2, 5, 5])
    gt3, det3 = rng.uniform(0.5, 3, (7, 7)), rng.uniform(0.5, 3, (5, 7))
    gt2 = np.sort(rng.uniform(0, 100, (7, 4)).reshape(7, 2, 2), axis=1).transpose(0, 2, 1).reshape(7, 4)
    det2 = np.sort(rng.uniform(0, 100, (5, 4)).reshape(5, 2, 2), axis=1).transpose(0, 2, 1).reshape(5, 4)
    pair_off = K.pair_offsets(gt_off, det_off)
    assert pair_off.tolist() == [0, 6, 6, 6]
    iou, frac = np.zeros(6), np.zeros(6)
    K.image_overlap_frames(det2, gt2, det_off, gt_off, pair_off, iou, frac)
    ground_iou, ground_frac = np.zeros((2, 6)), np.zeros((2, 6))
    K.ground_overlap_frames(det3, gt3, det_off, gt_off, pair_off, ground_iou, ground_frac)
    for j in range(2):
        for i in range(3):
            assert iou[j * 3 + i] == K.image_overlap(det2[j], gt2[i], -1)
            assert frac[j * 3 + i] == K.image_overlap(det2[j], gt2[i], 0)
            out = np.empty(4)
            K.ground_overlap(det3[j], gt3[i], np.empty((4, 2)), np.empty((4, 2)),
                             np.empty((16, 2)), np.empty((16, 2)), out)
            assert out.tolist() == [ground_iou[0, j * 3 + i], ground_frac[0, j * 3 + i],
                                    ground_iou[1, j * 3 + i], ground_frac[1, j * 3 + i]]


@HYP
@given(st.lists(st.floats(0, 1).map(lambda v: round(v, 4)), max_size=60), st.integers(1, 80))
def test_get_thresholds_matches_reference(scores, n_extra):
    n_gt = len(scores) + n_extra - 1 if scores else n_extra
    got = K.get_thresholds(np.array(scores, dtype=np.float64), max(n_gt, 1), 41)
    assert got.tolist() == get_thresholds_ref(list(scores), max(n_gt, 1))
