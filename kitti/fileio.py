"""Atomic file writing: every artifact is written to a temporary path and renamed into place."""

from __future__ import annotations

import os
import tempfile
from os import PathLike
from pathlib import Path

from kitti.errors import KittiFormatError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give files the usual mode
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Text version of :func:`atomic_write_bytes` (UTF-8, ``\\n`` line ends)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def read_text_file(path: str | PathLike[str], what: str) -> str:
    """The text of a small input file, or a :class:`KittiFormatError` naming it.

    Args:
        path: the file.
        what: how the error calls it, e.g. ``"label file"`` -> ``label file not found``.
    """
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        raise KittiFormatError(path, None, f"{what} not found") from None
    except UnicodeDecodeError:
        raise KittiFormatError(path, None, f"{what} is not text") from None
