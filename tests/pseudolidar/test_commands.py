"""``foresee pseudolidar`` and ``foresee show`` (click commands, run in-process)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kitti import read_velodyne, write_depth_npz
from pipeline.cache import ArtifactCache
from pipeline.commands.pseudolidar_cmd import pseudolidar_command
from pipeline.commands.show_cmd import show_command


def _run(cmd, args):
    return CliRunner().invoke(cmd, [str(a) for a in args], catch_exceptions=False)


def test_pseudolidar_command_from_gt_depth_builds_then_says_cached(gt_root, tmp_path):
    args = ["--data", gt_root, "--from-gt-depth", "--workdir", tmp_path / "w", "--quiet", "--workers", "1"]
    first = _run(pseudolidar_command, args)
    assert first.exit_code == 0, first.output
    path = Path(first.output.split()[0])
    assert path.parent.name == "pseudolidar" and "9 frames" in first.output
    assert len(list((path / "velodyne").glob("*.bin"))) == 9
    second = _run(pseudolidar_command, args)
    assert second.output.strip() == f"{path} cached"
    other = _run(pseudolidar_command, args + ["--max-height", "0.5"])
    assert Path(other.output.split()[0]) != path


def test_pseudolidar_command_depth_artifact_ref(gt_root, sample_ids, sample_depths, tmp_path):
    cache = ArtifactCache(tmp_path / "w")

    def produce(out: Path):
        for f in sample_ids:
            write_depth_npz(out / "depth" / f"{f}.npz", sample_depths[f])

    art = cache.build("depth-infer", code_version="t", settings={"variant": "foresee"}, inputs=[], produce=produce)
    res = _run(pseudolidar_command, ["--data", gt_root, "--depth", art.ref, "--workdir", tmp_path / "w",
                                     "--quiet", "--stride", "2"])
    assert res.exit_code == 0, res.output
    out = ArtifactCache(tmp_path / "w").resolve(res.output.split()[0])
    assert out.manifest["inputs"][0] == art.ref and out.manifest["role"] == "foresee"
    assert out.manifest["settings"]["stride_px"] == 2
    # the same maps as a plain folder give the same clouds
    res2 = _run(pseudolidar_command, ["--data", gt_root, "--depth", art.path / "depth", "--workdir",
                                      tmp_path / "w", "--quiet", "--stride", "2"])
    out2 = Path(res2.output.split()[0])
    for f in sample_ids:
        assert (out.path / "velodyne" / f"{f}.bin").read_bytes() == (out2 / "velodyne" / f"{f}.bin").read_bytes()


@pytest.mark.parametrize("extra", [[], ["--from-gt-depth", "--depth", "x"]])
def test_pseudolidar_command_needs_exactly_one_source(gt_root, tmp_path, extra):
    res = CliRunner().invoke(pseudolidar_command, ["--data", str(gt_root), "--workdir", str(tmp_path)] + extra)
    assert res.exit_code == 2 and "exactly one of --depth" in res.output


def test_pseudolidar_command_unknown_ref_is_one_line_naming_it(gt_root, tmp_path):
    from kitti import KittiFormatError

    res = CliRunner().invoke(pseudolidar_command, ["--data", str(gt_root), "--depth", "depth-infer/zzz",
                                                   "--workdir", str(tmp_path)])
    assert isinstance(res.exception, KittiFormatError)  # `foresee` prints it as one line, exit 2
    assert str(res.exception) == (f"depth-infer/zzz: --depth: no such file or folder, and no artifact of "
                                  f"{tmp_path} matches it (stage/key or a key prefix)")


def test_show_command_writes_bev_front_and_ply(gt_root, tmp_path):
    res = _run(pseudolidar_command, ["--data", gt_root, "--from-gt-depth", "--workdir", tmp_path / "w",
                                     "--quiet", "--workers", "1"])
    ref = res.output.split()[0]
    out = tmp_path / "o"
    res = _run(show_command, [ref, "8", "--data", gt_root, "--with", "lidar", "--workdir", tmp_path / "w",
                              "--png", out / "bev.png", "--front", out / "front.png", "--ply", out / "c.ply",
                              "--range", "0,40,-20,20", "--dets", gt_root / "training" / "label_2"])
    assert res.exit_code == 0, res.output
    assert "frame 000008" in res.output and "oracle" in res.output and "LiDAR" in res.output
    import cv2

    bev = cv2.imread(str(out / "bev.png"))
    assert bev.shape == (400, 400, 3)
    assert cv2.imread(str(out / "front.png")).shape == (375, 1242, 3)
    n = len(read_velodyne(Path(ref) / "velodyne" / "000008.bin")) + len(read_velodyne(gt_root / "training" / "velodyne" / "000008.bin"))
    assert f"element vertex {n}".encode() in (out / "c.ply").read_bytes()[:300]


def test_show_command_open3d_without_display_exits_2_with_one_line(gt_root, tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    res = CliRunner().invoke(show_command, ["lidar", "1", "--data", str(gt_root), "--open3d",
                                            "--workdir", str(tmp_path)])
    assert res.exit_code == 2
    assert len(res.output.strip().splitlines()) == 1 and "no display" in res.output


def test_show_command_missing_frame_names_file(gt_root, tmp_path):
    from kitti import KittiFormatError

    with pytest.raises(KittiFormatError, match=r"velodyne/000042\.bin: velodyne file not found"):
        CliRunner().invoke(show_command, ["lidar", "42", "--data", str(gt_root), "--workdir", str(tmp_path),
                                          "--png", str(tmp_path / "x.png")], catch_exceptions=False)


def test_show_command_colours_must_match_clouds(gt_root, tmp_path):
    res = CliRunner().invoke(show_command, ["lidar", "1", "--data", str(gt_root), "--colors", "red,blue",
                                            "--workdir", str(tmp_path)])
    assert res.exit_code == 2 and "2 colours for 1 clouds" in res.output


def test_show_command_without_output_options_writes_frame_bev_png(gt_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = _run(show_command, ["lidar", "3", "--data", gt_root, "--workdir", tmp_path / "w"])
    assert res.exit_code == 0 and "wrote 000003_bev.png" in res.output
    assert (tmp_path / "000003_bev.png").stat().st_size > 1000


def test_foresee_pseudolidar_missing_depth_frame_is_one_line_exit_2(gt_root, depth_dir, sample_ids, tmp_path):
    import shutil
    import subprocess
    import sys

    d = tmp_path / "depth"
    shutil.copytree(depth_dir, d)
    (d / "000005.npz").unlink()
    proc = subprocess.run([sys.executable, "-m", "pipeline", "pseudolidar", "--data", str(gt_root), "--depth",
                           str(d), "--workdir", str(tmp_path / "w"), "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "000005.npz: frame 000005: depth map (.npz or .png) missing" in lines[0]
    assert not list((tmp_path / "w" / "pseudolidar").glob("*"))


def test_show_command_dets_from_artifact_folder_are_drawn(gt_root, tmp_path):
    import os

    import cv2

    from pseudolidar.viz import DET_BOX_RGB

    (tmp_path / "det").mkdir()
    os.symlink(gt_root / "training" / "label_2", tmp_path / "det" / "data")
    png = tmp_path / "b.png"
    res = _run(show_command, ["lidar", "8", "--data", gt_root, "--no-gt", "--dets", tmp_path / "det",
                              "--png", png, "--workdir", tmp_path / "w"])
    assert res.exit_code == 0, res.output
    rgb = cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2RGB)
    assert np.all(rgb == np.array(DET_BOX_RGB, np.uint8), axis=2).sum() > 200
