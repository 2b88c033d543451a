"""Fixtures of the detect2d tests (helpers live in d2d_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from d2d_fixtures import write_root


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """The tiny root of d2d_fixtures.TINY_SCENES (4 frames, train = val = all)."""
    return write_root(tmp_path_factory.mktemp("d2d") / "root")
