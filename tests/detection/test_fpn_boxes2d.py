"""2D box sources: F-PointNet detection files, KITTI folders, the simulated detector."""

from __future__ import annotations

import numpy as np
import pytest

from detection.frustum_pointnet.boxes2d import (SimulatedDetector, gt_boxes, read_kitti_2d_folder,
                                                read_rgb_detection_file, simulated_detections)
from kitti.errors import KittiFormatError
from kitti.labels import Object3d

KNOWN = ("000001", "000002")


def test_read_rgb_detection_file_parses_types_and_scores(tmp_path):
    p = tmp_path / "rgb_detection_val.txt"
    p.write_text("dataset/KITTI/object/training/image_2/000001.png 2 0.98 10 20 110 80\n"
                 "dataset/KITTI/object/training/image_2/000001.png 1 0.5 300 100 320 160\n"
                 "\n"
                 "dataset/KITTI/object/training/image_2/000002.png 3 0.1 1 2 3 4\n")
    got = read_rgb_detection_file(p, KNOWN, ("Car", "Cyclist"))
    assert [b.type for b in got["000001"]] == ["Car"]
    assert got["000001"][0].box == (10.0, 20.0, 110.0, 80.0) and got["000001"][0].score == 0.98
    assert got["000002"][0].type == "Cyclist"


@pytest.mark.parametrize("line, match", [
    ("a/000001.png 2 0.9 1 2 3", "expected 7 fields"),
    ("a/000001.png 7 0.9 1 2 3 4", "unknown type id 7"),
    ("a/000001.png Car 0.9 1 2 3 4", "not an integer"),
    ("a/000009.png 2 0.9 1 2 3 4", "unknown frame '000009'"),
    ("a/000001.png 2 high 1 2 3 4", "must be numbers"),
    ("a/000001.png 2 0.9 10 2 3 4", "x1 <= x2"),
    ("a/000001.png 2 nan 1 2 3 4", "non-finite"),
])
def test_read_rgb_detection_file_malformed_line_names_the_line(tmp_path, line, match):
    p = tmp_path / "det.txt"
    p.write_text("a/000001.png 2 0.9 1 2 3 4\n" + line + "\n")
    with pytest.raises(KittiFormatError, match=match) as e:
        read_rgb_detection_file(p, KNOWN, ("Car",))
    assert e.value.lineno == 2 and str(e.value).startswith(f"{p}:2:")


def test_read_kitti_2d_folder_reads_box_and_score(tmp_path):
    (tmp_path / "000001.txt").write_text(
        "Car -1 -1 -10 10.00 20.00 110.00 80.00 -1 -1 -1 -1000 -1000 -1000 -10 0.87\n"
        "Pedestrian -1 -1 -10 1 2 3 4 -1 -1 -1 -1000 -1000 -1000 -10 0.5\n")
    (tmp_path / "000002.txt").write_text("")
    got = read_kitti_2d_folder(tmp_path, KNOWN, ("Car",))
    assert got["000002"] == [] and len(got["000001"]) == 1
    assert got["000001"][0].score == 0.87 and got["000001"][0].box == (10.0, 20.0, 110.0, 80.0)


@pytest.mark.parametrize("line, match", [
    ("Spaceship -1 -1 -10 1 2 3 4 -1 -1 -1 -1000 -1000 -1000 -10 0.5", "unknown class 'Spaceship'"),
    ("Car -1 -1 -10 1 2 3 4 -1 -1 -1 -1000 -1000 -1000 -10", "expected 16 fields"),
    ("Car -1 -1 -10 1 2 x 4 -1 -1 -1 -1000 -1000 -1000 -10 0.5", "must be numbers"),
])
def test_read_kitti_2d_folder_malformed_line_names_the_line(tmp_path, line, match):
    (tmp_path / "000001.txt").write_text(line + "\n")
    with pytest.raises(KittiFormatError, match=match) as e:
        read_kitti_2d_folder(tmp_path, ("000001",), ("Car",))
    assert e.value.lineno == 1


def test_read_kitti_2d_folder_missing_frame_file_raises(tmp_path):
    with pytest.raises(KittiFormatError, match="not found"):
        read_kitti_2d_folder(tmp_path, ("000001",), ("Car",))


def _car(z: float, occluded: int = 0, height: float = 60.0) -> Object3d:
    return Object3d("Car", 0.0, occluded, 0.0, 500.0, 150.0, 600.0, 150.0 + height, 1.5, 1.6, 3.9,
                    0.0, 1.6, z, 0.0)


def test_simulated_detections_are_seeded_per_frame():
    objs = [_car(10.0), _car(30.0, 1)]
    a = simulated_detections("000005", objs, (375, 1242), ("Car",), seed=3)
    b = simulated_detections("000005", objs, (375, 1242), ("Car",), seed=3)
    c = simulated_detections("000006", objs, (375, 1242), ("Car",), seed=3)
    assert a == b and a != c
    assert all(0.0 < d.score < 1.0 for d in a)


def test_simulated_detections_miss_more_far_and_occluded_objects():
    params = SimulatedDetector(false_positives_per_frame=0.0)

    def recall(obj: Object3d) -> float:
        hits = sum(len(simulated_detections(f"{i:06d}", [obj], (375, 1242), ("Car",), params=params))
                   for i in range(400))
        return hits / 400

    near, far, occluded = recall(_car(8.0)), recall(_car(70.0)), recall(_car(8.0, 2))
    assert near > 0.9 and far < near - 0.25 and occluded < near - 0.15


def test_simulated_detections_false_positives_have_low_scores():
    params = SimulatedDetector(false_positives_per_frame=2.0)
    dets = [d for i in range(100) for d in simulated_detections(f"{i:06d}", [], (375, 1242), ("Car",), params=params)]
    assert 100 < len(dets) < 300
    assert np.mean([d.score for d in dets]) < 0.5


def test_gt_boxes_filters_classes_and_height():
    objs = [_car(10.0, height=60), _car(10.0, height=20),
            Object3d("DontCare", -1, -1, -10, 1, 2, 3, 4, -1, -1, -1, -1000, -1000, -1000, -10)]
    got = gt_boxes(objs, ("Car",), min_height_px=25)
    assert len(got) == 1 and got[0].score is None
