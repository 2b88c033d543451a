"""Checkpoints: written atomically (temp file + rename), always read onto the CPU.

Weights and optimiser states go back onto their parameters' device in ``load_state_dict``; random
states must stay CPU byte tensors (:mod:`engine.rng`), so nothing is ever read to a GPU here.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Mapping

import torch

from kitti.fileio import atomic_write_bytes


def save_checkpoint(path: Path, payload: Mapping[str, Any]) -> None:
    """``torch.save`` of ``payload`` to ``path`` through a temp file and a rename."""
    buf = io.BytesIO()
    torch.save(dict(payload), buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_checkpoint(path: Path) -> dict:
    """A checkpoint read onto the CPU (``map_location="cpu"``)."""
    return torch.load(Path(path), map_location="cpu", weights_only=False)
