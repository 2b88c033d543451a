"""Depth-test fixtures (helpers live in depth_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from depth_fixtures import write_synthetic_root


@pytest.fixture()
def synthetic_root(tmp_path: Path) -> Path:
    """A small synthetic KITTI-format root (6 frames of 48x160, depth_2 ground truth)."""
    root = tmp_path / "synthetic"
    write_synthetic_root(root)
    return root
