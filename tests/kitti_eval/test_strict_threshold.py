"""The devkit matches a detection only with overlap **strictly above** the threshold
(``evaluate_object.cpp``: ``overlap > min_overlap``), for ground truth and for DontCare regions.

Each case sits exactly on a threshold, with axis-aligned 2D boxes whose IoU is an exact quotient
(14000 / 20000 is the double nearest 0.7, the same double as the threshold; 5000 / 10000 is 0.5).
Expected AP by hand, the devkit's way: with one ground truth and one detection that matches, there
is one score threshold, so the 41-point precision curve is 1 at its first point and 0 after it:
AP_R11 = 1/11 (points 0, 4, ..., 40) = 9.0909 %, AP_R40 = 0 (points 1..40). A detection that
does not match gives no threshold at all: AP 0.
"""

from __future__ import annotations

import pytest

from kitti.labels import parse_label_line
from kitti_eval import evaluate

ONE_TP_R11 = 100.0 / 11.0


def _obj(kind: str, box: tuple[float, float, float, float], score: float | None = None):
    x1, y1, x2, y2 = box
    line = f"{kind} 0.00 0 0.0 {x1} {y1} {x2} {y2} 1.5 1.6 4.0 1.0 1.6 20.0 0.0"
    return parse_label_line(line + ("" if score is None else f" {score}"))


def _ap2d(gt, det, cls: str) -> dict:
    return evaluate([gt], [det], classes=(cls,), metrics=("2d",)).ap[cls]["2d"]


@pytest.mark.parametrize("cls,threshold,det_box,above_box", [
    # Car at 0.7: ground truth 200 x 100 px; 140 x 100 px inside it: IoU 14000 / 20000 = 0.7
    ("Car", 0.7, (100.0, 100.0, 240.0, 200.0), (100.0, 100.0, 241.0, 200.0)),
    # Pedestrian at 0.5: 100 x 50 px inside a 100 x 100 px box: IoU 0.5
    ("Pedestrian", 0.5, (100.0, 100.0, 200.0, 150.0), (100.0, 100.0, 200.0, 151.0)),
])
def test_a_detection_exactly_on_the_iou_threshold_does_not_match(cls, threshold, det_box, above_box):
    gt_box = (100.0, 100.0, 300.0, 200.0) if cls == "Car" else (100.0, 100.0, 200.0, 200.0)
    gt = [_obj(cls, gt_box)]
    w = min(gt_box[2], det_box[2]) - max(gt_box[0], det_box[0])
    h = min(gt_box[3], det_box[3]) - max(gt_box[1], det_box[1])
    area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
    assert w * h / (area(gt_box) + area(det_box) - w * h) == threshold  # exactly on it
    on = _ap2d(gt, [_obj(cls, det_box, 0.9)], cls)
    assert on["R11"] == (0.0, 0.0, 0.0) and on["R40"] == (0.0, 0.0, 0.0)
    above = _ap2d(gt, [_obj(cls, above_box, 0.9)], cls)  # one pixel wider: IoU just above
    assert above["R11"] == pytest.approx((ONE_TP_R11,) * 3, abs=1e-9)
    assert above["R40"] == (0.0, 0.0, 0.0)


def test_a_false_positive_covered_exactly_at_the_threshold_by_dontcare_still_counts():
    """Frame: one Car (matched exactly by a detection of score 0.9) and a DontCare region; a second
    detection (score 0.95, no overlap with the car) lies 70 % inside the DontCare region
    (intersection / its own area = 7000 / 10000 = 0.7, the Car threshold). Strictly above only
    is it swallowed; exactly at 0.7 it stays a false positive: at the one score threshold (0.9)
    precision = 1 TP / (1 TP + 1 FP) = 1/2, so AP_R11 = (1/2) / 11. Just above (71 %): 1/11."""
    car = (100.0, 100.0, 300.0, 200.0)
    gt = [_obj("Car", car), _obj("DontCare", (400.0, 100.0, 500.0, 200.0))]
    tp = _obj("Car", car, 0.9)
    on = _ap2d(gt, [tp, _obj("Car", (430.0, 100.0, 530.0, 200.0), 0.95)], "Car")
    assert on["R11"] == pytest.approx((ONE_TP_R11 / 2,) * 3, abs=1e-9)
    inside = _ap2d(gt, [tp, _obj("Car", (429.0, 100.0, 529.0, 200.0), 0.95)], "Car")
    assert inside["R11"] == pytest.approx((ONE_TP_R11,) * 3, abs=1e-9)
