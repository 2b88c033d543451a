"""evaluate(): golden devkit cases, the line-by-line reference port, and the devkit's rules."""

from __future__ import annotations

import json
import math
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from kitti.labels import Difficulty, Object3d, parse_label_line
from kitti_eval import FrameLabels, IouThresholds, evaluate, evaluate_folders
from kitti_eval.metrics import average_precision
from kitti_eval.reference import eval_class_ref, ground_overlap_ref, image_overlap_ref

GOLDEN = Path(__file__).parents[1] / "data" / "golden_kitti_eval"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())


def test_golden_cases_present():
    assert {"tiny_5", "gt_as_det_400", "noisy_200", "empty_dets_50", "mixed_500", "edge_300"} <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_evaluate_folders_golden_case_matches_devkit(case):
    expected = json.loads((GOLDEN / case / "expected.json").read_text())
    got = json.loads(evaluate_folders(GOLDEN / case / "gt" / "label_2", GOLDEN / case / "det").to_json())
    assert got.keys() == expected.keys()
    for cls, metrics in expected.items():
        assert got[cls].keys() == metrics.keys(), cls
        for metric, recalls in metrics.items():
            assert got[cls][metric].keys() == recalls.keys()
            for recall, values in recalls.items():
                np.testing.assert_allclose(got[cls][metric][recall], values, rtol=0, atol=1e-9,
                                           err_msg=f"{case} {cls} {metric} {recall}")


def test_evaluate_folders_gt_as_det_gives_100_everywhere():
    res = evaluate_folders(GOLDEN / "gt_as_det_400" / "gt" / "label_2", GOLDEN / "gt_as_det_400" / "det")
    values = [v for ms in res.ap.values() for rs in ms.values() for vs in rs.values() for v in vs]
    assert len(values) == 3 * 4 * 2 * 3
    np.testing.assert_allclose(values, 100.0, atol=1e-9)


# --- random scenes against the pure-Python port of the devkit ----------------------------------

def _scene(rng: np.random.Generator, n_frames: int):
    kinds = ["Car", "car", "Van", "Pedestrian", "Person_sitting", "Cyclist", "Truck", "DontCare"]
    gt, det = [], []
    for _ in range(n_frames):
        g_frame, d_frame = [], []
        for _ in range(rng.integers(0, 9)):
            kind = kinds[rng.choice(len(kinds), p=[0.3, 0.05, 0.1, 0.2, 0.05, 0.15, 0.05, 0.1])]
            x1, y1 = rng.uniform(0, 600), rng.uniform(100, 200)
            height = float(rng.choice([25.0, 40.0, 39.99, 40.01, rng.uniform(10, 120)]))
            box = (round(x1, 2), round(y1, 2), round(x1 + rng.uniform(10, 100), 2), round(y1 + height, 2))
            h, w, l = (round(v, 2) for v in rng.uniform(0.5, 4.0, 3))
            loc = (round(rng.uniform(-3, 3), 2), round(rng.uniform(1, 2), 2), round(rng.uniform(5, 11), 2))
            ry = float(rng.choice([math.pi, -math.pi, round(rng.uniform(-3.14, 3.14), 2)]))
            trunc = float(rng.choice([0.0, 0.0, 0.15, 0.3, 0.5, round(rng.uniform(0, 1), 2)]))
            occ = int(rng.choice(4, p=[0.5, 0.25, 0.15, 0.1]))
            if kind == "DontCare":
                g = Object3d(kind, -1, -1, -10, *box, -1, -1, -1, -1000, -1000, -1000, -10)
            else:
                g = Object3d(kind, trunc, occ, round(rng.uniform(-3, 3), 2), *box, h, w, l, *loc, ry)
            g_frame.append(g)
            for _ in range(rng.integers(0, 3)):  # noisy copies (and duplicates)
                jit = rng.normal(0, [3, 3, 3, 3, 0.1, 0.1, 0.1, 0.2, 0.05, 0.2, 0.3])
                v = np.array([*box, h, w, l, *loc, ry]) + jit
                score = float(rng.choice([0.5, round(rng.uniform(0, 1), 4)]))  # ties
                d_kind = kind if rng.random() < 0.9 else kinds[rng.integers(0, 6)]
                d_frame.append(Object3d(d_kind, -1, -1, g.alpha + rng.normal(0, 0.3), *v[:4],
                                        abs(v[4]), abs(v[5]), abs(v[6]), *v[7:], score))
        for _ in range(rng.integers(0, 3)):  # false positives
            x1, y1 = rng.uniform(0, 600), rng.uniform(100, 200)
            d_frame.append(Object3d(kinds[rng.integers(0, 6)], -1, -1, 0.3, x1, y1, x1 + 50,
                                    y1 + rng.uniform(20, 60), 1.5, 1.6, 3.9, rng.uniform(-3, 3),
                                    1.6, rng.uniform(5, 11), 0.1, rng.uniform(0, 1)))
        gt.append(g_frame)
        det.append(d_frame)
    return gt, det


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_evaluate_matches_reference_port(seed):
    gt, det = _scene(np.random.default_rng(seed), 30)
    iou = IouThresholds(image=(0.5, 0.3, 0.3), bev=(0.3, 0.2, 0.2), box3d=(0.2, 0.1, 0.1))
    result = evaluate(gt, det, thresholds=iou)
    overlaps = {"2d": image_overlap_ref, "aos": image_overlap_ref, "bev": ground_overlap_ref,
                "3d": partial(ground_overlap_ref, three_d=True)}
    compared = 0
    for (cls, metric), curve in result.curves.items():
        for diff in Difficulty:
            prec, aos = eval_class_ref(cls, gt, det, overlaps[metric], iou.for_metric(metric, cls), diff)
            np.testing.assert_allclose(curve[diff], aos if metric == "aos" else prec,
                                       rtol=1e-12, atol=1e-12, err_msg=f"{cls} {metric} {diff}")
            compared += 1
    assert compared >= 3 * 4 * 3 - 12  # every class with detections, all metrics
    assert any(v > 0 for ms in result.ap.values() for rs in ms.values() for vs in rs.values() for v in vs)


# --- devkit rules ------------------------------------------------------------------------------

CAR_GT = "Car 0.00 0 0.10 100.00 100.00 300.00 200.00 1.50 1.60 4.00 1.00 1.60 20.00 0.10"


def _det(line: str = CAR_GT, score: float = 0.9, **changes) -> Object3d:
    return parse_label_line(f"{line} {score}").with_(**changes)


def test_evaluate_single_exact_copy_is_capped_by_few_ground_truth():
    g = parse_label_line(CAR_GT)
    res = evaluate([[g]], [[_det()]], classes=("Car",))
    # one valid GT -> one threshold -> only the first recall sample is non-zero
    assert res.ap["Car"]["3d"]["R11"] == pytest.approx((100 / 11,) * 3)
    assert res.ap["Car"]["3d"]["R40"] == (0.0, 0.0, 0.0)


def test_evaluate_class_without_detections_is_absent():
    res = evaluate([[parse_label_line(CAR_GT)]], [[_det(type="Pedestrian")]])
    assert list(res.ap) == ["Pedestrian"]
    assert evaluate([[parse_label_line(CAR_GT)]], [[]]).to_dict() == {}


def test_evaluate_alpha_minus_10_disables_aos():
    res = evaluate([[parse_label_line(CAR_GT)]], [[_det(alpha=-10.0)]])
    assert "aos" not in res.ap["Car"] and "2d" in res.ap["Car"]


def test_evaluate_detection_class_is_case_insensitive():
    g = parse_label_line(CAR_GT)
    assert (evaluate([[g]], [[_det(type="car")]]).to_dict()
            == evaluate([[g]], [[_det()]]).to_dict())


def test_evaluate_van_ground_truth_is_ignored_for_car():
    g = parse_label_line(CAR_GT.replace("Car", "Van"))
    res = evaluate([[g]], [[_det()]], classes=("Car",))
    # matched to an ignored GT: neither TP nor FP, and no valid GT at all -> 0 AP, no error
    assert res.ap["Car"]["2d"]["R11"] == (0.0, 0.0, 0.0)


def test_evaluate_gt_height_exactly_40_is_not_easy():
    g = parse_label_line(CAR_GT.replace("200.00 1.50", "140.00 1.50"))  # 40.00 px
    res = evaluate([[g]], [[_det(y2=140.0)]], classes=("Car",), metrics=("2d",))
    assert res.ap["Car"]["2d"]["R11"][0] == 0.0 and res.ap["Car"]["2d"]["R11"][1] > 0


def test_evaluate_recall_points_and_metrics_subset():
    res = evaluate([[parse_label_line(CAR_GT)]], [[_det()]], classes=("Car",), metrics=("bev",),
                   recall_points=(40,))
    assert res.to_dict() == {"Car": {"bev": {"R40": [0.0, 0.0, 0.0]}}}


def test_evaluate_rejects_mismatched_frames_and_unknown_settings():
    with pytest.raises(ValueError, match="frames"):
        evaluate([[], []], [[]])
    with pytest.raises(ValueError, match="same frames"):
        evaluate(FrameLabels.from_objects([[]], ["000001"]), FrameLabels.from_objects([[]], ["000002"]))
    with pytest.raises(ValueError, match="classes"):
        evaluate([[]], [[]], classes=("Truck",))
    with pytest.raises(ValueError, match="score"):
        evaluate([[]], [[parse_label_line(CAR_GT)]])


def test_average_precision_sampling():
    curve = np.linspace(1.0, 0.0, 41)
    assert average_precision(curve, 11) == pytest.approx(100 * curve[::4].mean())
    assert average_precision(curve, 40) == pytest.approx(100 * curve[1:].mean())


def test_reference_port_matches_devkit_on_tiny_case():
    """The pure-Python twin is itself checked against the devkit (so it can judge the kernels)."""
    from kitti.labels import read_label_file
    from kitti_eval.metrics import average_precision

    case = GOLDEN / "tiny_5"
    ids = [f"{i:06d}" for i in range(5)]
    gt = [read_label_file(case / "gt" / "label_2" / f"{i}.txt") for i in ids]
    det = [read_label_file(case / "det" / f"{i}.txt", require_score=True) for i in ids]
    expected = json.loads((case / "expected.json").read_text())
    overlaps = {"2d": image_overlap_ref, "bev": ground_overlap_ref,
                "3d": partial(ground_overlap_ref, three_d=True)}
    for cls in expected:
        for metric, overlap in overlaps.items():
            curves = [eval_class_ref(cls, gt, det, overlap, 0.7 if cls == "Car" else 0.5, d)
                      for d in Difficulty]
            for name, k in ((metric, 0), ("aos", 1)):
                if name == "aos" and metric != "2d":
                    continue
                for r in (11, 40):
                    got = [average_precision(np.array(c[k]), r) for c in curves]
                    np.testing.assert_allclose(got, expected[cls][name][f"R{r}"], atol=1e-9)
