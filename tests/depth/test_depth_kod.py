"""depth.kod: velodyne projection and the KOD build from depth-completion maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from depth.kod import build_kod, read_devkit_mapping, velodyne_depth_map
from kitti import KittiFormatError, KittiRoot, write_depth_png


def test_velodyne_depth_map_projects_points_nearest_wins(sample_root):
    root = KittiRoot(sample_root)
    calib, pts, hw = root.calib("000001"), root.velodyne("000001"), root.image_hw("000001")
    depth = velodyne_depth_map(pts, calib, hw)
    assert depth.shape == hw and depth.dtype == np.float32
    uv, d = calib.velo_to_img(pts)
    inside = (d > 0.1) & (uv[:, 0] >= 0) & (uv[:, 0] < hw[1]) & (uv[:, 1] >= 0) & (uv[:, 1] < hw[0])
    rows, cols = np.floor(uv[inside, 1]).astype(int), np.floor(uv[inside, 0]).astype(int)
    assert np.count_nonzero(depth) == len(set(zip(rows.tolist(), cols.tolist())))
    k = int(np.argmin(d[inside]))
    assert depth[rows[k], cols[k]] == pytest.approx(d[inside][k], abs=1e-4)
    # each pixel holds the nearest of the points that land on it
    order = np.lexsort((d[inside], rows * hw[1] + cols))
    first = np.unique(rows[order] * hw[1] + cols[order], return_index=True)[1]
    np.testing.assert_allclose(depth.ravel()[(rows * hw[1] + cols)[order][first]], d[inside][order][first], atol=1e-4)


def test_build_kod_from_velodyne_writes_depth_and_links(sample_root, tmp_path):
    ids = ("000001", "000002")
    summary = build_kod(sample_root, tmp_path / "kod", from_velodyne=True, frame_ids=ids)
    out = KittiRoot(tmp_path / "kod")
    assert summary.frames_with_gt == 2 and summary.frames_without_gt == 0
    assert out.depth("000002").shape == out.image_hw("000002")
    assert (out.folder("label_2") / "000001.txt").is_file()
    # the 3DOP split (train + val = every frame) restricted to the frames with ground truth (one of
    # the two may be empty here: read as files, since KittiRoot.split refuses an empty split)
    from kitti import read_split_file

    split = {n: read_split_file(out.root / "ImageSets" / f"{n}.txt") for n in ("train", "val")}
    assert sorted(split["train"] + split["val"]) == list(ids) and summary.train + summary.val == 2


def _completion_tree(tmp_path: Path, sample_root: Path) -> tuple[Path, Path]:
    mapping = tmp_path / "mapping"
    mapping.mkdir()
    (mapping / "train_mapping.txt").write_text(
        "2011_09_26 2011_09_26_drive_0001_sync 0000000005\n2011_09_26 2011_09_26_drive_0002_sync 0000000007\n")
    (mapping / "train_rand.txt").write_text("2,1,2\n")
    depth_root = tmp_path / "completion"
    hw = KittiRoot(sample_root).image_hw("000001")
    gt = np.zeros(hw, np.float32)
    gt[200, 300] = 12.5
    write_depth_png(depth_root / "val" / "2011_09_26_drive_0002_sync" / "proj_depth" / "groundtruth" / "image_02"
                    / "0000000007.png", gt)
    return mapping, depth_root


def test_build_kod_from_depth_completion_uses_devkit_mapping(sample_root, tmp_path):
    mapping, depth_root = _completion_tree(tmp_path, sample_root)
    assert read_devkit_mapping(mapping / "train_mapping.txt", mapping / "train_rand.txt")["000001"][2] == "0000000005"
    # frames 000000 and 000002 map to drive 0002 frame 7 (present); 000001 to drive 0001 (absent)
    summary = build_kod(sample_root, tmp_path / "kod", depth_root=depth_root, mapping_dir=mapping,
                        frame_ids=("000001", "000002"))
    assert summary.frames_with_gt == 1 and summary.frames_without_gt == 1
    assert KittiRoot(tmp_path / "kod").depth("000002")[200, 300] == 12.5


def test_read_devkit_mapping_names_bad_line_and_index(tmp_path):
    bad = tmp_path / "train_mapping.txt"
    bad.write_text("2011_09_26 drive\n")
    rand = tmp_path / "train_rand.txt"
    rand.write_text("1\n")
    with pytest.raises(KittiFormatError, match=r"train_mapping.txt:1: expected"):
        read_devkit_mapping(bad, rand)
    bad.write_text("a b c\n")
    rand.write_text("1,5\n")
    with pytest.raises(KittiFormatError, match=r"train_rand.txt:1: index 5"):
        read_devkit_mapping(bad, rand)


def test_build_kod_rejects_completion_map_of_another_size(sample_root, tmp_path):
    mapping, depth_root = _completion_tree(tmp_path, sample_root)
    p = next(depth_root.rglob("*.png"))
    write_depth_png(p, np.ones((10, 10), np.float32))
    with pytest.raises(KittiFormatError, match="0000000007.png.*10x10"):
        build_kod(sample_root, tmp_path / "kod", depth_root=depth_root, mapping_dir=mapping, frame_ids=("000002",))


def test_build_kod_finds_devkit_object_mapping_and_writes_both_splits(sample_root, tmp_path):
    """The README's layout (KITTI/devkit_object/mapping), the full split for detection and the
    depth-ground-truth split for depth training and Table 2."""
    import shutil

    mapping, depth_root = _completion_tree(tmp_path, sample_root)
    kitti = tmp_path / "kitti"
    shutil.copytree(sample_root / "training", kitti / "training")
    shutil.copytree(mapping, kitti / "devkit_object" / "mapping")
    (kitti / "devkit_object" / "mapping" / "train_rand.txt").write_text("1,1,2,2\n")
    (kitti / "ImageSets").mkdir()
    (kitti / "ImageSets" / "train.txt").write_text("000001\n000002\n")
    (kitti / "ImageSets" / "val.txt").write_text("000003\n")
    ids = ("000001", "000002", "000003")
    s = build_kod(kitti, tmp_path / "kod", depth_root=depth_root, frame_ids=ids)
    out = KittiRoot(tmp_path / "kod")
    # 000002 and 000003 have a completion map (drive 0002), 000001 has none (drive 0001)
    assert out.split("train") == ("000001", "000002") and out.split("val") == ("000003",)
    assert out.split("kod_train") == ("000002",) and out.split("kod_val") == ("000003",)
    assert (s.train, s.val, s.kod_train, s.kod_val) == (2, 1, 1, 1) and not s.cached
    # built again from the same sources: the existing root is kept
    again = build_kod(kitti, tmp_path / "kod", depth_root=depth_root, frame_ids=ids)
    assert again.cached and (again.kod_train, again.kod_val) == (1, 1)
    # from other sources into the same folder: refused
    with pytest.raises(KittiFormatError, match="not a KOD root built from these sources"):
        build_kod(kitti, tmp_path / "kod", from_velodyne=True, frame_ids=("000000",))


def test_build_kod_is_atomic(sample_root, tmp_path):
    """An error half-way leaves neither a root nor debris (it used to leave depth_2 PNGs and no
    ImageSets)."""
    mapping, depth_root = _completion_tree(tmp_path, sample_root)
    (mapping / "train_rand.txt").write_text("2,2,2,2,2,2,2\n")  # every frame -> the same map
    p = next(depth_root.rglob("*.png"))
    write_depth_png(p, np.ones(KittiRoot(sample_root).image_hw("000001"), np.float32))  # 375x1242
    # 000001..000005 are 1242x375 and get written; 000006 is 1238x374: the build fails there
    with pytest.raises(KittiFormatError, match="1242x375 but image_2/000006.png is 1238x374"):
        build_kod(sample_root, tmp_path / "kod", depth_root=depth_root, mapping_dir=mapping,
                  frame_ids=("000001", "000002", "000003", "000004", "000005", "000006"))
    assert not [q for q in tmp_path.iterdir() if q.name.startswith("kod")]
