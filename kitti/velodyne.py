"""KITTI velodyne scans: ``.bin`` files of float32 ``(x, y, z, reflectance)``, velodyne frame."""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np

from kitti.errors import KittiFormatError
from kitti.fileio import atomic_write_bytes


def read_velodyne(path: str | PathLike[str]) -> np.ndarray:
    """Read a velodyne ``.bin`` into an (N, 4) float32 array ``[x, y, z, r]``.

    Raises:
        KittiFormatError: missing file, a size that is not a multiple of 16 bytes, or a NaN/inf
            value (never a silently wrong point).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KittiFormatError(path, None, "velodyne file not found") from None
    if len(data) % 16:
        raise KittiFormatError(path, None, f"size {len(data)} bytes is not a multiple of 16 "
                               "(float32 x, y, z, reflectance)")
    points = np.frombuffer(data, dtype="<f4").reshape(-1, 4).copy()
    finite = np.isfinite(points).all(axis=1)
    if not finite.all():
        first = int(np.argmin(finite))
        raise KittiFormatError(path, None, f"{int(np.count_nonzero(~finite))} point(s) with NaN/inf "
                               f"values (first: point {first} at byte {16 * first})")
    return points


def write_velodyne(path: str | PathLike[str], points_velo: np.ndarray) -> None:
    """Write (N, 4) points as KITTI velodyne float32 little-endian, atomically."""
    p = np.asarray(points_velo)
    if p.ndim != 2 or p.shape[1] != 4:
        raise ValueError(f"write_velodyne: expected (N, 4) points, got shape {p.shape}")
    atomic_write_bytes(Path(path), np.ascontiguousarray(p, dtype="<f4").tobytes())
