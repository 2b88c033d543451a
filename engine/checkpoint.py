"""Checkpoints: written atomically (temp file + rename), always read onto the CPU.

Weights and optimiser states go back onto their parameters' device in ``load_state_dict``; random
states must stay CPU byte tensors (:mod:`engine.rng`), so nothing is ever read to a GPU here.
A training checkpoint (it holds NumPy random states) is read with the full unpickler: it is the
run's own file. A trained model file that may come from elsewhere is read with
:func:`load_weights_only` (no code of the file runs).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Mapping

import torch

from kitti.errors import KittiFormatError
from kitti.fileio import atomic_write_bytes


def save_checkpoint(path: Path, payload: Mapping[str, Any]) -> None:
    """``torch.save`` of ``payload`` to ``path`` through a temp file and a rename."""
    buf = io.BytesIO()
    torch.save(dict(payload), buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_checkpoint(path: Path) -> dict:
    """A checkpoint read onto the CPU (``map_location="cpu"``)."""
    return torch.load(Path(path), map_location="cpu", weights_only=False)


def load_weights_only(path: Path, *, map_location: Any = "cpu", what: str = "a model file") -> Any:
    """A torch file read with torch's restricted unpickler (``weights_only=True``): tensors and
    plain Python values (dicts, lists, tuples, strings, numbers) only, so no code of the file runs.

    Raises:
        KittiFormatError: naming the file: missing, or not readable that way (a pickle of any
            other object is refused, its code never run); ``what`` names what was expected
            (``"an F-PointNet model file"``).
    """
    path = Path(path)
    if not path.is_file():
        raise KittiFormatError(path, None, "model file not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling problem is a bad file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "Weights only load failed" in first:
            first = "it holds objects other than tensors and plain values; nothing in it was run"
        raise KittiFormatError(path, None, f"not {what}, refused ({first})") from None
