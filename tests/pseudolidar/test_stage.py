"""The stage: depth folders -> velodyne folders, with checks before and during the work."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from kitti import KittiFormatError, KittiRoot, read_velodyne, write_depth_npz, write_depth_png
from pseudolidar import PseudoLidarSettings, depth_to_points_velo
from pseudolidar.stage import depth_folder_fingerprint, run_from_gt_depth, run_pseudolidar


def test_run_pseudolidar_writes_one_bin_per_frame_equal_to_the_library(gt_root, depth_dir, sample_ids,
                                                                       sample_depths, tmp_path):
    settings = PseudoLidarSettings()
    summary = run_pseudolidar(depth_dir, gt_root, sample_ids, tmp_path / "velodyne", settings,
                              workers=2, progress=False)
    root = KittiRoot(gt_root)
    counts = []
    for f in sample_ids:
        got = read_velodyne(tmp_path / "velodyne" / f"{f}.bin")
        np.testing.assert_array_equal(got, depth_to_points_velo(sample_depths[f], root.calib(f)))
        counts.append(len(got))
    assert sorted(p.name for p in (tmp_path / "velodyne").iterdir()) == [f"{f}.bin" for f in sample_ids]
    assert summary["frames"] == 9 and summary["points_total"] == sum(counts)
    assert summary["points_per_frame_mean"] == pytest.approx(np.mean(counts))
    assert summary["seconds"] > 0


def test_run_pseudolidar_one_worker_equals_two(gt_root, depth_dir, sample_ids, tmp_path):
    s = PseudoLidarSettings(stride_px=2, sparsify_beams=64)
    run_pseudolidar(depth_dir, gt_root, sample_ids[:4], tmp_path / "a", s, workers=1, progress=False)
    run_pseudolidar(depth_dir, gt_root, sample_ids[:4], tmp_path / "b", s, workers=2, progress=False)
    for f in sample_ids[:4]:
        assert (tmp_path / "a" / f"{f}.bin").read_bytes() == (tmp_path / "b" / f"{f}.bin").read_bytes()


def test_run_pseudolidar_reads_png_depth(gt_root, sample_ids, sample_depths, tmp_path):
    d = tmp_path / "png"
    for f in sample_ids[:2]:
        write_depth_png(d / f"{f}.png", sample_depths[f])
    summary = run_pseudolidar(d, gt_root, sample_ids[:2], tmp_path / "out", PseudoLidarSettings(),
                              workers=1, progress=False)
    assert summary["frames"] == 2 and summary["points_total"] > 0


def test_run_from_gt_depth_equals_run_pseudolidar_on_depth_2(gt_root, sample_ids, tmp_path):
    s = PseudoLidarSettings()
    run_from_gt_depth(gt_root, sample_ids[:3], tmp_path / "gt", s, workers=1, progress=False)
    run_pseudolidar(KittiRoot(gt_root).folder("depth_2"), gt_root, sample_ids[:3], tmp_path / "dir", s,
                    workers=1, progress=False)
    for f in sample_ids[:3]:
        assert (tmp_path / "gt" / f"{f}.bin").read_bytes() == (tmp_path / "dir" / f"{f}.bin").read_bytes()


# ------------------------------------------------------------------ bad input
def _copy_depths(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_run_pseudolidar_missing_depth_frame_names_frame_and_file_before_work(gt_root, depth_dir, sample_ids, tmp_path):
    d = _copy_depths(depth_dir, tmp_path / "depth")
    (d / "000004.npz").unlink()
    out = tmp_path / "out"
    with pytest.raises(KittiFormatError, match=r"depth/000004\.npz: frame 000004: depth map \(\.npz or \.png\) missing"):
        run_pseudolidar(d, gt_root, sample_ids, out, PseudoLidarSettings(), workers=1, progress=False)
    assert not out.exists()


def test_run_pseudolidar_missing_calib_names_frame_and_file(depth_dir, sample_root, sample_ids, tmp_path,
                                                          make_kitti_root):
    root = make_kitti_root(tmp_path / "root", sample_root, sample_ids)
    (root / "training" / "calib" / "000002.txt").unlink()
    with pytest.raises(KittiFormatError, match=r"calib/000002\.txt: frame 000002: calibration missing"):
        run_pseudolidar(depth_dir, root, sample_ids, tmp_path / "out", PseudoLidarSettings(), workers=1,
                        progress=False)


def test_run_pseudolidar_missing_depth_folder(gt_root, sample_ids, tmp_path):
    with pytest.raises(KittiFormatError, match="nope: depth folder not found"):
        run_pseudolidar(tmp_path / "nope", gt_root, sample_ids, tmp_path / "out", PseudoLidarSettings())


def test_run_from_gt_depth_missing_folder(sample_root, sample_ids, tmp_path):
    with pytest.raises(KittiFormatError, match=r"depth_2: missing folder 'depth_2'"):
        run_from_gt_depth(sample_root, sample_ids, tmp_path / "out", PseudoLidarSettings())


@pytest.mark.parametrize("workers", [1, 2])
def test_run_pseudolidar_wrong_shape_names_frame_and_file(gt_root, depth_dir, sample_ids, tmp_path, workers):
    d = _copy_depths(depth_dir, tmp_path / "depth")
    write_depth_npz(d / "000006.npz", np.ones((375, 1242), np.float32))  # 000006 is 374 x 1238
    with pytest.raises(KittiFormatError, match=r"depth/000006\.npz: frame 000006: shape 375x1242 \(HxW\) "
                                               r"differs from the image's 374x1238"):
        run_pseudolidar(d, gt_root, sample_ids, tmp_path / "out", PseudoLidarSettings(), workers=workers,
                        progress=False)


@pytest.mark.parametrize("value, message", [(np.nan, "NaN/inf"), (np.inf, "NaN/inf"), (-1.0, "negative")])
def test_run_pseudolidar_bad_values_name_frame_and_file(gt_root, depth_dir, sample_ids, sample_depths,
                                                         tmp_path, value, message):
    d = _copy_depths(depth_dir, tmp_path / "depth")
    bad = sample_depths["000003"].copy()
    bad[100, 100] = value
    np.savez(d / "000003.npz", depth_m=bad)  # written raw: write_depth_npz refuses bad maps
    with pytest.raises(KittiFormatError, match=rf"depth/000003\.npz: frame 000003: 1 {message}"):
        run_pseudolidar(d, gt_root, sample_ids, tmp_path / "out", PseudoLidarSettings(), workers=2,
                        progress=False)


def test_run_pseudolidar_not_an_npz_names_file(gt_root, depth_dir, sample_ids, tmp_path):
    d = _copy_depths(depth_dir, tmp_path / "depth")
    (d / "000001.npz").write_bytes(b"not a zip")
    with pytest.raises(KittiFormatError, match=r"depth/000001\.npz: not a foresee depth \.npz"):
        run_pseudolidar(d, gt_root, sample_ids[:3], tmp_path / "out", PseudoLidarSettings(), workers=1,
                        progress=False)


def test_depth_folder_fingerprint_changes_with_content(depth_dir, sample_ids, tmp_path):
    d = _copy_depths(depth_dir, tmp_path / "depth")
    before = depth_folder_fingerprint(d, sample_ids)
    assert depth_folder_fingerprint(d, sample_ids) == before
    write_depth_npz(d / "000000.npz", np.ones((370, 1224), np.float32), compress=True)
    assert depth_folder_fingerprint(d, sample_ids) != before


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("terminal", [True, False])
def test_run_pseudolidar_progress_bar_on_stderr(gt_root, depth_dir, sample_ids, tmp_path, capsys, monkeypatch,
                                                workers, terminal):
    """A bar on a terminal; none when stderr is a file or a pipe (a log gets no \\r updates)."""
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    run_pseudolidar(depth_dir, gt_root, sample_ids[:3], tmp_path / "out", PseudoLidarSettings(stride_px=4),
                    workers=workers, progress=True)
    err = capsys.readouterr().err
    if terminal:
        assert "pseudo-LiDAR" in err and "3/3" in err
    else:
        assert err == ""
