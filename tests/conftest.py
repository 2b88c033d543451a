"""Shared fixtures: the nine real KITTI frames (tests/data/kitti_sample, CC BY-NC-SA 3.0)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# open3d / numba / torch each spin up thread pools; two cores are all CI has.
os.environ.setdefault("OMP_NUM_THREADS", "2")

# Hypothesis's 200 ms deadline per example fails a test whose first example pays a numba or torch
# compile, or whose machine is busy: a flaky failure that says nothing about the code. No deadline.
settings.register_profile("foresee", deadline=None)
settings.load_profile("foresee")

DATA = Path(__file__).parent / "data"
SAMPLE_ROOT = DATA / "kitti_sample"


@pytest.fixture(scope="session")
def sample_root() -> Path:
    """KITTI root of the nine real frames (training/{image_2,calib,label_2,velodyne})."""
    return SAMPLE_ROOT


@pytest.fixture
def sample_subset(sample_root, tmp_path):
    """``make(frames)``: a KITTI root under tmp_path linking those sample frames, ``ImageSets/val.txt`` = them."""

    def make(frames: list[str]) -> Path:
        tmp = tmp_path / "root"
        for kind in ("calib", "image_2", "label_2", "velodyne"):
            (tmp / "training" / kind).mkdir(parents=True)
            for p in (sample_root / "training" / kind).iterdir():
                if p.stem in frames:
                    os.symlink(p.resolve(), tmp / "training" / kind / p.name)
        (tmp / "ImageSets").mkdir()
        (tmp / "ImageSets" / "val.txt").write_text("\n".join(frames) + "\n")
        return tmp

    return make


@pytest.fixture(scope="session")
def sample_ids() -> tuple[str, ...]:
    return tuple(f"{i:06d}" for i in range(9))


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # pragma: no cover - torch missing
        has_cuda = False
    if not has_cuda:
        skip = pytest.mark.skip(reason="needs CUDA")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture()
def restore_torch_threads():
    """Stages set torch's thread count from their settings; give the next test its own back."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
