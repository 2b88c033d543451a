"""EvalResult conversions and the `foresee eval` command."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from kitti_eval import evaluate_folders
from kitti_eval.report import format_table
from pipeline.commands.eval_cmd import eval_command

GOLDEN = Path(__file__).parents[1] / "data" / "golden_kitti_eval"
TINY = GOLDEN / "tiny_5"


@pytest.fixture(scope="module")
def tiny():
    return evaluate_folders(TINY / "gt" / "label_2", TINY / "det")


def test_to_json_has_golden_schema(tiny):
    got = json.loads(tiny.to_json())
    expected = json.loads((TINY / "expected.json").read_text())
    assert got.keys() == expected.keys()
    assert all(got[c][m].keys() == expected[c][m].keys() for c in expected for m in expected[c])
    assert all(len(v) == 3 for c in got for m in got[c] for v in got[c][m].values())


def test_to_dataframe_one_row_per_class_metric_recall(tiny):
    df = tiny.to_dataframe()
    assert list(df.columns) == ["class", "metric", "recall", "easy", "moderate", "hard"]
    assert len(df) == 3 * 4 * 2
    row = df[(df["class"] == "Car") & (df.metric == "bev") & (df.recall == "R40")].iloc[0]
    assert (row.easy, row.moderate, row.hard) == tiny.ap["Car"]["bev"]["R40"]


def test_to_markdown_lists_every_class_and_metric(tiny):
    md = tiny.to_markdown()
    lines = md.strip().splitlines()
    assert lines[0].startswith("| class | metric | R40 easy")
    assert len(lines) == 2 + 3 * 4
    assert f"| Car | bev | {tiny.ap['Car']['bev']['R40'][0]:.2f} |" in md


def test_format_table_mentions_thresholds(tiny):
    text = format_table(tiny.ap, tiny.iou, tiny.n_frames)
    assert "Car (IoU 2d 0.70, bev 0.70, 3d 0.70)" in text and "5 frames" in text


def test_eval_command_writes_json_equal_to_devkit(tmp_path):
    out = tmp_path / "ap.json"
    csv = tmp_path / "ap.csv"
    res = CliRunner().invoke(eval_command, ["--gt", str(TINY / "gt" / "label_2"), "--det",
                                            str(TINY / "det"), "--json", str(out), "--csv", str(csv)])
    assert res.exit_code == 0, res.output
    assert "Car (IoU" in res.output and res.stdout.strip().splitlines()[-1].startswith("evaluated 5 frames")
    got, expected = json.loads(out.read_text()), json.loads((TINY / "expected.json").read_text())
    for c in expected:
        for m in expected[c]:
            for r in expected[c][m]:
                assert got[c][m][r] == pytest.approx(expected[c][m][r], abs=1e-9)
    assert len(pd.read_csv(csv)) == 24


def test_eval_command_kitti_root_split_and_options(tmp_path):
    root = tmp_path / "kitti"
    (root / "training").mkdir(parents=True)
    (root / "training" / "label_2").symlink_to(TINY / "gt" / "label_2")
    (root / "ImageSets").mkdir()
    (root / "ImageSets" / "mini.txt").write_text("000000\n000002\n")
    res = CliRunner().invoke(eval_command, ["--gt", str(root), "--split", "mini", "--det",
                                            str(TINY / "det"), "--classes", "Car", "--metrics",
                                            "bev,3d", "--loose", "--quiet"])
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("evaluated 2 frames: Car bev R40 mod")


def test_eval_command_missing_result_file_fails_unless_missing_as_empty(tmp_path):
    det = tmp_path / "det"
    det.mkdir()
    (det / "000000.txt").write_text((TINY / "det" / "000000.txt").read_text())
    split = tmp_path / "split.txt"
    split.write_text("000000\n000001\n")
    args = ["--gt", str(TINY / "gt" / "label_2"), "--split", str(split), "--det", str(det), "--quiet"]
    res = CliRunner().invoke(eval_command, args)
    assert res.exit_code != 0 and "000001" in str(res.exception)
    res = CliRunner().invoke(eval_command, args + ["--missing-as-empty"])
    assert res.exit_code == 0, res.output


def test_eval_command_rejects_unknown_class():
    res = CliRunner().invoke(eval_command, ["--gt", str(TINY / "gt" / "label_2"), "--det",
                                            str(TINY / "det"), "--classes", "Car,Tram"])
    assert res.exit_code == 2 and "classes" in res.output
