"""The report's pictures: Car PR curves from kitti_eval's curves; BEV score labels that overlap
nothing; Fig. 6/7 draw only detections above the stated score."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
from hypothesis import given, settings, strategies as st

from kitti import KittiRoot, write_label_file, write_velodyne
from pipeline.figures import FIG_MIN_SCORE, make_figures, write_pr_curves
from pseudolidar.viz import place_label


def _csv(path: Path) -> dict[tuple[str, str, str, str], np.ndarray]:
    """(iou, detector/cloud, metric, difficulty) -> the 41 precisions."""
    rows: dict[tuple[str, str, str, str], list[float]] = {}
    for line in path.read_text().splitlines()[1:]:
        iou, detector, cloud, metric, diff, _, prec = line.split(",")
        rows.setdefault((iou, f"{detector}/{cloud}", metric, diff), []).append(float(prec))
    return {k: np.array(v) for k, v in rows.items()}


def _label_root(tmp: Path, n: int) -> Path:
    """A root with label_2 only: frame i holds one easy Car (50 px tall, unoccluded) at z = 10 + i % 30."""
    (tmp / "training" / "label_2").mkdir(parents=True)
    frames = [f"{i:06d}" for i in range(n)]
    for i, f in enumerate(frames):
        (tmp / "training" / "label_2" / f"{f}.txt").write_text(
            f"Car 0.00 0 0.0 100 100 200 150 1.5 1.6 4.0 {i % 7 - 3.0} 1.6 {10.0 + i % 30} 0.0\n")
    (tmp / "ImageSets").mkdir()
    (tmp / "ImageSets" / "val.txt").write_text("\n".join(frames) + "\n")
    return tmp


def test_pr_curves_of_perfect_and_half_detections(tmp_path):
    n = 80
    root = _label_root(tmp_path / "root", n)
    arts = {}
    for cloud, step in (("lidar", 1), ("oracle", 2)):
        for i in range(n):
            gt = (root / "training" / "label_2" / f"{i:06d}.txt").read_text().strip()
            # the ground truth itself as detection, distinct scores: every frame (lidar), every second (oracle)
            det = f"{gt} {1.0 - i / 1000:.3f}\n" if i % step == 0 else ""
            (tmp_path / cloud / "data").mkdir(parents=True, exist_ok=True)
            (tmp_path / cloud / "data" / f"{i:06d}.txt").write_text(det)
        arts[f"detect-infer/fpointnet/{cloud}"] = SimpleNamespace(path=tmp_path / cloud)
    out = tmp_path / "report"
    out.mkdir()
    cfg = SimpleNamespace(data_root=root, val_split="val", detectors=("fpointnet",), clouds=("lidar", "oracle"))
    written = write_pr_curves(cfg, arts, out)
    assert [p.name for p in written] == ["pr_car.png", "pr_car_iou05.png", "pr_car.csv"]
    assert all(p.stat().st_size > 10_000 for p in written[:2])
    curves = _csv(out / "pr_car.csv")
    recall = np.linspace(0, 1, 41)
    for iou in ("0.7", "0.5"):
        for metric in ("bev", "3d"):
            for diff in ("easy", "moderate", "hard"):
                # every car found, no false positive: precision 1 at every recall
                assert np.all(curves[(iou, "fpointnet/lidar", metric, diff)] == 1.0)
                # half the cars found, all correct: precision 1 up to recall 0.5, then 0 (the devkit
                # samples its score thresholds at recall steps of 1/40: the edge within one step)
                half = curves[(iou, "fpointnet/oracle", metric, diff)]
                assert np.all(half[recall <= 0.5 - 1 / 40] == 1.0) and np.all(half[recall > 0.5 + 1 / 40] == 0.0)


def test_pr_curves_without_rows_write_nothing(sample_subset, tmp_path):
    root = sample_subset(["000008"])
    cfg = SimpleNamespace(data_root=root, val_split="val", detectors=("fpointnet",), clouds=("lidar",))
    assert write_pr_curves(cfg, {}, tmp_path) == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 380), st.integers(0, 380), st.integers(4, 40), st.integers(4, 40)),
                min_size=1, max_size=30))
def test_placed_labels_overlap_nothing(boxes):
    taken = [(0, 0, 120, 60)]
    placed = []
    for x, y, w, h in boxes:
        outline = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], float)
        before = list(taken)
        org = place_label("0.87", outline, taken, (400, 400))
        if org is None:
            assert taken == before
            continue
        rect = taken[-1]
        assert len(taken) == len(before) + 1
        assert 0 <= rect[0] and 0 <= rect[1] and rect[2] <= 400 and rect[3] <= 400
        for a, b, c, d in before:
            assert rect[2] <= a or rect[0] >= c or rect[3] <= b or rect[1] >= d
        placed.append(rect)
    if boxes[0][0] > 200 and boxes[0][1] > 200:
        assert placed  # a first box far from the legend always gets its label


def test_figures_leave_out_low_scores(sample_subset, tmp_path):
    frame = "000008"
    root = sample_subset([frame])
    kr = KittiRoot(root)
    cars = [o for o in kr.labels(frame) if o.type == "Car"]
    arts = {}
    for cloud in ("oracle", "baseline", "foresee"):
        write_velodyne(tmp_path / "pl" / cloud / "velodyne" / f"{frame}.bin", kr.velodyne(frame))
        arts[f"pseudolidar/{cloud}"] = SimpleNamespace(path=tmp_path / "pl" / cloud)
    out = {}
    for name, score in (("low", FIG_MIN_SCORE - 0.01), ("none", None)):
        for cloud in ("oracle", "baseline", "foresee"):
            dets = [o.with_(score=score if score is not None else 0.9, x=o.x + 3.0) for o in cars]
            write_label_file(tmp_path / name / cloud / "data" / f"{frame}.txt", dets if score is not None else [])
            arts[f"detect-infer/fpointnet/{cloud}"] = SimpleNamespace(path=tmp_path / name / cloud)
        (tmp_path / name / "r").mkdir()
        make_figures(SimpleNamespace(data_root=root, val_split="val", detectors=("fpointnet",)), arts,
                     tmp_path / name / "r", n_frames=1)
        out[name] = {p: (tmp_path / name / "r" / p).read_bytes() for p in (f"fig6_{frame}.png", f"fig7_{frame}.png")}
    # detections just below the stated score draw exactly what no detections draw
    assert out["low"] == out["none"]
