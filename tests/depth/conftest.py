"""Depth-test fixtures (helpers live in depth_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from depth_fixtures import write_synthetic_root


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Run the depth tests on one torch thread (restored afterwards): on a shared 2-core machine
    the tiny networks' first steps took seconds with 2 OpenMP threads waiting for a free core."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def synthetic_root(tmp_path: Path) -> Path:
    """A small synthetic KITTI-format root (6 frames of 48x160, depth_2 ground truth)."""
    root = tmp_path / "synthetic"
    write_synthetic_root(root)
    return root
