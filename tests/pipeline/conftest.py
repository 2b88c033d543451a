"""Fixtures of the pipeline tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "kitti_sample"


@pytest.fixture()
def root(tmp_path) -> Path:
    """The 9 real KITTI sample frames (no depth_2): 6 train, 3 val (a module may define its own)."""
    r = tmp_path / "kitti"
    shutil.copytree(SAMPLE / "training", r / "training")
    (r / "ImageSets").mkdir()
    (r / "ImageSets" / "train.txt").write_text("".join(f"{i:06d}\n" for i in range(6)))
    (r / "ImageSets" / "val.txt").write_text("".join(f"{i:06d}\n" for i in range(6, 9)))
    return r
