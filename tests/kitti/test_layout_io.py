"""KittiRoot, splits, velodyne and depth IO."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kitti import (KittiFormatError, KittiRoot, builtin_split, read_depth, read_velodyne,
                   write_depth_npz, write_depth_png, write_velodyne)
from kitti.depth_io import check_depth_map


def test_builtin_3dop_split_sizes():
    train, val = builtin_split("train"), builtin_split("val")
    assert len(train) == 3712 and len(val) == 3769
    assert not set(train) & set(val)
    assert len(builtin_split("test")) == 7518


def test_kitti_root_reads_everything(sample_root, sample_ids):
    root = KittiRoot(sample_root)
    assert root.frame_ids() == sample_ids
    root.check(sample_ids, ("image_2", "calib", "label_2", "velodyne"))
    assert root.image_hw("000000") == (370, 1224)
    assert root.image("000006").shape == (374, 1238, 3)
    assert root.velodyne("000001").shape == (120268, 4)
    fp = root.fingerprint(sample_ids, ("calib", "label_2"))
    assert fp == root.fingerprint(sample_ids, ("calib", "label_2")) and len(fp) == 16


def test_kitti_root_check_names_missing_frame(sample_root):
    with pytest.raises(KittiFormatError, match=r"velodyne/999999\.bin: 1 frame\(s\) of the split missing"):
        KittiRoot(sample_root).check(["000000", "999999"], ("velodyne",))
    with pytest.raises(KittiFormatError, match="missing folder 'depth_2'"):
        KittiRoot(sample_root).check(["000000"], ("depth_2",))


def test_split_file_bad_line(tmp_path):
    (tmp_path / "ImageSets").mkdir()
    (tmp_path / "ImageSets" / "val.txt").write_text("000001\nabc\n")
    with pytest.raises(KittiFormatError, match=r"val\.txt:2: expected a numeric frame id"):
        KittiRoot(tmp_path).split("val")


@given(arrays(np.float32, st.tuples(st.integers(0, 50), st.just(4)),
              elements=st.floats(-100, 100, width=32)))
@settings(max_examples=30, deadline=None)
def test_velodyne_round_trip(tmp_path_factory, pts):
    p = tmp_path_factory.mktemp("v") / "000000.bin"
    write_velodyne(p, pts)
    np.testing.assert_array_equal(read_velodyne(p), pts)


def test_velodyne_bad_size(tmp_path):
    p = tmp_path / "000001.bin"
    p.write_bytes(b"\0" * 20)
    with pytest.raises(KittiFormatError, match=r"000001\.bin: size 20 bytes is not a multiple of 16"):
        read_velodyne(p)


@given(arrays(np.float32, (7, 9), elements=st.floats(0, 200, width=32)))
@settings(max_examples=30, deadline=None)
def test_depth_png_round_trip_within_quantisation(tmp_path_factory, depth):
    p = tmp_path_factory.mktemp("d") / "000000.png"
    write_depth_png(p, depth)
    back = read_depth(p)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, depth, atol=0.5 / 256 + 1e-4)


def test_depth_npz_round_trip_exact(tmp_path):
    d = np.random.default_rng(0).uniform(0, 80, (5, 6)).astype(np.float32)
    write_depth_npz(tmp_path / "a.npz", d)
    np.testing.assert_array_equal(read_depth(tmp_path / "a.npz"), d)


@pytest.mark.parametrize("bad, match", [
    (np.array([[1.0, np.nan]]), "1 NaN/inf"),
    (np.array([[1.0, -2.0]]), "1 negative"),
    (np.zeros(3), r"expected an \(H, W\) map"),
])
def test_check_depth_map_rejects_bad_maps(bad, match):
    with pytest.raises(KittiFormatError, match=match):
        check_depth_map(bad, path="depth/000001.npz")


def test_check_depth_map_size_mismatch():
    with pytest.raises(KittiFormatError, match=r"000001\.npz: depth map: shape 3x4 \(HxW\) differs from the image's 375x1242"):
        check_depth_map(np.zeros((3, 4)), path="depth/000001.npz", image_hw=(375, 1242))


def test_atomic_write_uses_the_umask_mode(tmp_path):
    import os
    import stat

    from kitti.fileio import atomic_write_text

    atomic_write_text(tmp_path / "a.txt", "x")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # no temp file left
