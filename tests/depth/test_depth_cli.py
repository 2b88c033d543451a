"""``foresee depth …`` and ``foresee kod build`` end to end on tiny data (click's CliRunner)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kitti import KittiFormatError, KittiRoot, read_depth_npz
from pipeline.cli import _load_stage_commands, main


@pytest.fixture(scope="module")
def cli():
    _load_stage_commands()
    runner = CliRunner()

    def run(*args: str) -> str:
        res = runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        return res.output

    return run


def test_kod_build_from_velodyne_command(cli, sample_root, tmp_path):
    out = cli("kod", "build", "--kitti-root", sample_root, "--out", tmp_path / "kod", "--from-velodyne", "--quiet")
    assert "9 frames with ground truth" in out
    assert KittiRoot(tmp_path / "kod").depth("000004").any()


def test_depth_train_infer_eval_stats_commands(cli, synthetic_root, tmp_path):
    work = tmp_path / "work"
    common = ["--data", synthetic_root, "--workdir", work]
    train = ["depth", "train", *common, "--variant", "foresee", "--preset", "cpu-small", "--encoder", "test_resnet",
             "--encoder-weights", "none",
             "--max-steps", "1", "--batch-size", "2", "--quiet"]
    out = cli(*train)
    ckpt = re.search(r"(\S+/depth-train/[0-9a-f]+)", out).group(1)
    assert (Path(ckpt) / "checkpoint.pt").is_file() and "1 steps" in out
    assert "cached" in cli(*train)
    pred = re.search(r"(\S+/depth-infer/[0-9a-f]+)", cli("depth", "infer", *common, "--checkpoint", ckpt,
                                                          "--quiet")).group(1)
    gt = re.search(r"(\S+/depth-gt/[0-9a-f]+)", cli("depth", "infer", *common, "--from-gt")).group(1)
    assert len(list((Path(pred) / "depth").glob("*.npz"))) == len(KittiRoot(synthetic_root).split("val"))
    flipped = re.search(r"(\S+/depth-infer/[0-9a-f]+)", cli("depth", "infer", *common, "--checkpoint", ckpt,
                                                             "--flip", "--quiet")).group(1)
    assert flipped != pred  # its own key: a plain run's cache does not answer a --flip run
    one = sorted((Path(pred) / "depth").glob("*.npz"))[0].name
    assert not np.array_equal(read_depth_npz(Path(pred) / "depth" / one), read_depth_npz(Path(flipped) / "depth" / one))
    table = cli("depth", "eval", *common, "--depth", f"foresee={pred}", "--depth", f"oracle={gt}",
                "--csv", tmp_path / "t.csv")
    assert "| oracle (measured) | 0.000 / 0.000 |" in table and "(paper, KOD val)" in table
    assert "Per-object depth error" in table and re.search(r"\| oracle \| all \| \d+ \| (0\.000|–) \|", table)
    assert (tmp_path / "t.csv").read_text().startswith("method,averaging,region")
    stats = cli("depth", "stats", "--data", synthetic_root, "--png", tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 1000 and "| fg |" in stats


def test_depth_eval_command_names_missing_prediction(synthetic_root, tmp_path):
    _load_stage_commands()
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(main, ["depth", "eval", "--data", str(synthetic_root), "--depth",
                                    f"x={tmp_path / 'empty'}", "--workdir", str(tmp_path / "w")])
    assert isinstance(res.exception, KittiFormatError) and ".npz" in str(res.exception)


def test_depth_train_with_missing_encoder_weights_exits_2_with_one_line(synthetic_root, tmp_path, monkeypatch, capsys):
    from pipeline.cli import cli_entry

    missing = tmp_path / "resnext.pth"
    monkeypatch.setattr("sys.argv", ["foresee", "depth", "train", "--data", str(synthetic_root), "--workdir",
                                     str(tmp_path / "w"), "--encoder", "test_resnet", "--encoder-weights",
                                     str(missing), "--max-steps", "1", "--quiet"])
    with pytest.raises(SystemExit) as e:
        cli_entry()
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {missing}: encoder weights file for test_resnet not found"


def test_depth_infer_refuses_flip_with_from_gt(synthetic_root, tmp_path):
    _load_stage_commands()
    res = CliRunner().invoke(main, ["depth", "infer", "--data", str(synthetic_root), "--from-gt", "--flip",
                                    "--workdir", str(tmp_path / "w")])
    assert res.exit_code == 2 and "--flip applies to a network's inference" in res.output
