"""kitti.validate: every problem of a root found in one pass, from headers and sizes only."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from kitti import KittiFormatError, KittiRoot
from kitti.depth_io import write_depth_png
from kitti.validate import SHOWN, DataProblems, check_clouds, check_contents, png_header, raise_if_any

IDS = tuple(f"{i:06d}" for i in range(6))
KINDS = ("image_2", "calib", "label_2", "velodyne", "depth_2")


@pytest.fixture()
def root(sample_root, tmp_path) -> KittiRoot:
    """Six sample frames (labels, calib, images, velodyne) plus depth_2 maps of the image size."""
    dst = tmp_path / "root"
    for kind in ("image_2", "calib", "label_2", "velodyne"):
        (dst / "training" / kind).mkdir(parents=True)
        for f in IDS:
            src = KittiRoot(sample_root).path(kind, f)
            (dst / "training" / kind / src.name).symlink_to(src) if kind in ("image_2", "velodyne") \
                else shutil.copy(src, dst / "training" / kind / src.name)
    r = KittiRoot(dst)
    for f in IDS:
        h, w = r.image_hw(f)
        write_depth_png(r.path("depth_2", f), np.full((h, w), 10.0, np.float32))
    return r


def _replace(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


def test_clean_root_has_no_problem(root):
    assert check_contents(root, IDS, KINDS) == []
    assert root.missing(IDS, KINDS) == []


def test_every_problem_is_found_in_one_pass(root):
    lab = root.path("label_2", "000001")
    lines = lab.read_text().splitlines()
    lines.insert(1, "Car 0.00 0 1.0 10 20 30")  # line 2: 7 fields
    lab.write_text("\n".join(lines) + "\n")
    calib = root.path("calib", "000002")
    calib.write_text(calib.read_text().replace("P2:", "P2: 1.0", 1))  # 13 numbers
    _replace(root.path("velodyne", "000003"), b"\0" * 20)  # 20 bytes: not a multiple of 16
    _replace(root.path("image_2", "000004"), b"GIF89a" + b"\0" * 30)
    h, w = root.image_hw("000005")
    write_depth_png(root.path("depth_2", "000005"), np.ones((h - 1, w), np.float32))
    problems = check_contents(root, IDS, KINDS)
    got = sorted((p.path.name, p.path.parent.name, p.lineno) for p in problems)
    assert got == [("000001.txt", "label_2", 2), ("000002.txt", "calib", 3), ("000003.bin", "velodyne", None),
                   ("000004.png", "image_2", None), ("000005.png", "depth_2", None)]
    by_kind = {p.path.parent.name: str(p) for p in problems}
    assert "expected 15 or 16 fields" in by_kind["label_2"]
    assert "expected 12 numbers after 'P2:', got 13" in by_kind["calib"]
    assert "size 20 bytes is not a multiple of 16" in by_kind["velodyne"]
    assert "not a PNG" in by_kind["image_2"]
    assert f"depth map is {w}x{h - 1} but its image_2 is {w}x{h}" in by_kind["depth_2"]


def test_depth_must_be_16_bit_grey(root, tmp_path):
    import cv2

    path = root.path("depth_2", "000000")
    h, w = root.image_hw("000000")
    path.unlink()
    cv2.imwrite(str(path), np.zeros((h, w), np.uint8))
    (p,) = check_contents(root, ("000000",), ("image_2", "depth_2"))
    assert "bit depth 8, colour type 0" in str(p)


def test_png_header_matches_decoded_size(root):
    import cv2

    for f in IDS[:2]:
        h, w, bits, colour = png_header(root.path("image_2", f))
        img = cv2.imread(str(root.path("image_2", f)), cv2.IMREAD_UNCHANGED)
        assert (h, w, bits) == (img.shape[0], img.shape[1], 8) and colour == 2


def test_missing_files_one_problem_per_kind(root):
    root.path("calib", "000001").unlink()
    root.path("calib", "000002").unlink()
    shutil.rmtree(root.folder("depth_2"))
    problems = root.missing(IDS, KINDS)
    assert [str(p).split(": ", 1)[1] for p in problems] == [
        "2 frame(s) of the split missing in calib/: 000001, 000002",
        f"missing folder 'depth_2' in KITTI root {root.root}"]


def test_clouds_folder(root, tmp_path):
    folder = root.folder("velodyne")
    assert check_clouds(folder, IDS) == []
    _replace(folder / "000002.bin", b"\0" * 33)
    problems = check_clouds(folder, IDS + ("000123",))
    assert [p.path.name for p in problems] == ["000123.bin", "000002.bin"]


def test_report_shows_first_n_then_a_count(tmp_path):
    problems = [KittiFormatError(tmp_path / f"{i:06d}.txt", 1, "bad") for i in range(SHOWN + 7)]
    with pytest.raises(DataProblems) as e:
        raise_if_any(tmp_path, problems)
    lines = str(e.value).splitlines()
    assert lines[0] == f"{tmp_path}: {SHOWN + 7} problems in the data this command reads:"
    assert len(lines) == 1 + SHOWN + 1 and lines[-1] == "  ... and 7 more"
    assert lines[1] == f"  {tmp_path / '000000.txt'}:1: bad"
    with pytest.raises(DataProblems) as one:  # one problem: the usual one line
        raise_if_any(tmp_path, problems[:1])
    assert str(one.value) == f"{tmp_path / '000000.txt'}:1: bad"
    raise_if_any(tmp_path, [])  # nothing to report
