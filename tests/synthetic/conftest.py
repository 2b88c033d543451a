"""A tiny render shared by the synthetic tests (3 frames at 0.5 scale, in this process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from synth import SynthSettings, render_dataset

#: 2 train + 1 val frames, half resolution, coarser LiDAR: fast but every code path runs.
TINY = SynthSettings(frames_train=2, frames_val=1, seed=7, image_scale=0.5, frames_per_drive=1,
                     lidar_azimuth_step_deg=0.18, min_box_height_px=8.0, min_visible_px=10)


@pytest.fixture(scope="session")
def tiny_settings() -> SynthSettings:
    return TINY


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> tuple[Path, dict]:
    """(root, summary) of the tiny render."""
    root = tmp_path_factory.mktemp("synth") / "root"
    summary = render_dataset(root, TINY, workers=1, progress=False)
    return root, summary


@pytest.fixture(scope="session")
def tiny_frames(tiny_settings):
    """[(scene, frame, labels, calib)] of the tiny render's frames, re-rendered in memory."""
    from synth.writer import frame_jobs, render_one

    return [render_one(tiny_settings, job) for job in frame_jobs(tiny_settings)]
