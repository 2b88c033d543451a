"""`make all` as documented: the mapping under devkit_object/mapping or MAPPING_DIR, detection on
the full 3DOP split, depth ground truth only where depth training and Table 2 read it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from kitti import KittiFormatError, KittiRoot, write_depth_png
from pipeline.stages import RunConfig, build_chain

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tests" / "data" / "kitti_sample"


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_all_passes_mapping_dir_and_both_splits():
    out = subprocess.run(["make", "-n", "all", "KITTI=/k", "DEPTH_ROOT=/d", "MAPPING_DIR=/m"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    kod = next(line for line in out.replace("\\\n", " ").splitlines() if "kod build" in line)
    run = next(line for line in out.replace("\\\n", " ").splitlines() if "foresee run" in line)
    assert "--depth-root /d" in kod and "--mapping-dir /m" in kod
    assert "--train-split train --val-split val" in run
    assert "--depth-train-split kod_train --depth-val-split kod_val" in run


def _kod_like(tmp_path: Path) -> Path:
    """Sample frames 1-8: detection split train 1-5 / val 6-8; depth ground truth for 2, 3, 7 only."""
    root = tmp_path / "kod"
    shutil.copytree(SAMPLE / "training", root / "training")
    sets = {"train": "12345", "val": "678", "kod_train": "23", "kod_val": "7"}
    (root / "ImageSets").mkdir()
    for name, digits in sets.items():
        (root / "ImageSets" / f"{name}.txt").write_text("".join(f"00000{d}\n" for d in digits))
    kr = KittiRoot(root)
    for f in ("000002", "000003", "000007"):
        write_depth_png(kr.path("depth_2", f), np.full(kr.image_hw(f), 10.0, np.float32))
    return root


def test_detection_on_the_full_split_depth_only_where_there_is_ground_truth(tmp_path):
    root = _kod_like(tmp_path)
    cfg = RunConfig(data_root=root, clouds=("lidar", "foresee"), depth_train_split="kod_train",
                    depth_val_split="kod_val")
    specs = {s.name: s for s in build_chain(cfg)}
    kr = KittiRoot(root)
    data = {name: next(i for i in s.inputs if i.startswith("data:")) for name, s in specs.items()}
    assert data["depth-train/foresee"] == "data:" + kr.fingerprint(("000002", "000003"),
                                                                  ("image_2", "calib", "label_2", "depth_2"))
    assert data["depth-eval/foresee"] == "data:" + kr.fingerprint(("000007",), ("label_2", "depth_2"))
    assert data["detect-train/fpointnet/foresee"] == "data:" + kr.fingerprint(
        tuple(f"00000{d}" for d in "12345"), ("calib", "label_2", "image_2"))
    assert data["detect-infer/fpointnet/lidar"].startswith("data:") and data["eval/fpointnet/lidar"] == (
        "data:" + kr.fingerprint(("000006", "000007", "000008"), ("label_2",)))
    # without the depth splits, depth training would need depth_2 of every train frame
    with pytest.raises(KittiFormatError, match="depth_2"):
        build_chain(RunConfig(data_root=root, clouds=("lidar", "foresee")))
