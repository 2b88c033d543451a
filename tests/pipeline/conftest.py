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


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """A tiny render of the embedded benchmark (6 train + 3 val frames at half size, scene seed 3),
    rendered once per session; tests read it and copy it before changing anything."""
    from synth import render_dataset
    from synth.settings import SynthSettings

    root = tmp_path_factory.mktemp("synth") / "tiny"
    render_dataset(root, SynthSettings(frames_train=6, frames_val=3, image_scale=0.5, seed=3),
                   workers=1, progress=False)
    return root
