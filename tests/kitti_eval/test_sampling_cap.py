"""The devkit's recall sampling caps AP when a difficulty has 40 or fewer objects: perfect
detections score exactly the cap, and ``foresee eval`` says so in one line per class."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from kitti import KittiRoot
from kitti_eval import evaluate_folders
from kitti_eval.metrics import sampling_cap
from pipeline.commands.eval_cmd import eval_command

FRAMES = ("000000", "000002", "000008")  # Car: 1 easy, 5 moderate, 5 hard valid objects


def _cap_by_hand(n: int, recall_points: int) -> float:
    """Perfect detections of n <= 40 objects: precision 1 at samples 0 .. n-1 of the 41."""
    if n == 0:
        return 0.0
    if n >= 41:
        return 100.0
    if recall_points == 40:
        return 100.0 * (n - 1) / 40
    return 100.0 * math.ceil(n / 4) / 11


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 10, 11, 39, 40, 41, 42, 57, 200, 3000])
def test_sampling_cap_matches_the_hand_formula(n):
    for r in (40, 11):
        assert sampling_cap(n, r) == pytest.approx(_cap_by_hand(n, r), abs=1e-12)


def _perfect(sample_root: Path, folder: Path, *, two_d_only: bool = False) -> Path:
    """Every non-DontCare ground-truth object of FRAMES as a detection with score 1."""
    folder.mkdir()
    for f in FRAMES:
        lines = []
        for line in KittiRoot(sample_root).path("label_2", f).read_text().splitlines():
            t = line.split()
            if t and t[0] != "DontCare":
                if two_d_only:
                    t[8:15] = ["-1", "-1", "-1", "-1000", "-1000", "-1000", "-10"]
                lines.append(" ".join(t) + " 1.0")
        (folder / f"{f}.txt").write_text("\n".join(lines) + "\n")
    return folder


def test_ground_truth_as_detections_scores_the_cap(sample_root, tmp_path):
    det = _perfect(sample_root, tmp_path / "det")
    res = evaluate_folders(KittiRoot(sample_root).folder("label_2"), det, FRAMES)
    assert res.n_gt["Car"] == (1, 5, 5)
    assert res.ap["Car"]["3d"]["R40"] == pytest.approx((0.0, 10.0, 10.0))
    for cname, counts in res.n_gt.items():
        for metric in ("2d", "bev", "3d", "aos"):
            for r in (40, 11):
                expected = tuple(_cap_by_hand(n, r) for n in counts)
                assert res.ap[cname][metric][f"R{r}"] == pytest.approx(expected), (cname, metric, r)
    notes = res.sampling_notes()
    assert notes[0] == ("note: Car has 1 / 5 / 5 ground-truth objects (easy / moderate / hard); with 40 "
                        "or fewer, the devkit's recall sampling caps AP even for perfect detections, here at "
                        "R40 0.00 / 10.00 / 10.00, R11 9.09 / 18.18 / 18.18")


def test_eval_quiet_prints_the_2d_ap_and_the_note(sample_root, tmp_path):
    det = _perfect(sample_root, tmp_path / "det", two_d_only=True)
    res = CliRunner().invoke(eval_command, ["--gt", str(sample_root), "--det", str(det), "--quiet"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0] == "evaluated 3 frames: Car 2d R40 mod 10.00, Car aos R40 mod 10.00"
    assert sum(line.startswith("note: Car has 1 / 5 / 5") for line in lines) == 1
