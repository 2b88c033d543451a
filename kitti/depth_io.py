"""Depth-map IO.

* KITTI depth PNG: uint16, value = depth_m · 256, 0 = no data (KITTI depth completion format).
* foresee depth artifacts: float32 metres in ``.npz`` (key ``depth_m``), 0 = no data.
"""

from __future__ import annotations

import zipfile
from os import PathLike
from pathlib import Path

import cv2
import numpy as np

from kitti.errors import KittiFormatError
from kitti.fileio import atomic_write_bytes

MAX_PNG_DEPTH_M = 65535 / 256.0


def read_depth_png(path: str | PathLike[str]) -> np.ndarray:
    """Read a KITTI uint16 depth PNG as an (H, W) float32 depth map in metres (0 = no data)."""
    path = Path(path)
    if not path.is_file():
        raise KittiFormatError(path, None, "depth PNG not found")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise KittiFormatError(path, None, "not a readable PNG")
    if img.dtype != np.uint16 or img.ndim != 2:
        raise KittiFormatError(path, None, f"expected a single-channel uint16 PNG, got "
                               f"{img.dtype} with shape {img.shape}")
    return (img.astype(np.float32) / 256.0).astype(np.float32)


def encode_depth_png(depth_m: np.ndarray) -> bytes:
    """Encode an (H, W) depth map in metres as KITTI uint16 PNG bytes (rounded to 1/256 m)."""
    d = np.asarray(depth_m, dtype=np.float64)
    check_depth_map(d, name="depth_m")
    if d.max(initial=0.0) > MAX_PNG_DEPTH_M:
        raise ValueError(f"depth {d.max():.1f} m exceeds the uint16 PNG range ({MAX_PNG_DEPTH_M:.1f} m)")
    ok, buf = cv2.imencode(".png", np.round(d * 256.0).astype(np.uint16))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def write_depth_png(path: str | PathLike[str], depth_m: np.ndarray) -> None:
    """Write an (H, W) depth map as a KITTI uint16 PNG, atomically."""
    atomic_write_bytes(Path(path), encode_depth_png(depth_m))


def read_depth_npz(path: str | PathLike[str]) -> np.ndarray:
    """Read a foresee depth map (``.npz`` with key ``depth_m``) as (H, W) float32 metres."""
    path = Path(path)
    if not path.is_file():
        raise KittiFormatError(path, None, "depth map not found")
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):  # a bare .npy array (or junk that parses as one)
            raise ValueError("an .npy array, not an .npz archive")
        with z:
            d = z["depth_m"]
    except (KeyError, ValueError, OSError, EOFError, AttributeError, zipfile.BadZipFile) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise KittiFormatError(path, None, f"not a foresee depth .npz (key 'depth_m'): {first}") from None
    if d.dtype.kind not in "fiu":
        raise KittiFormatError(path, None, f"depth_m has dtype {d.dtype}, expected float32 metres")
    d = np.asarray(d, dtype=np.float32)
    check_depth_map(d, name=f"frame {path.stem}", path=path)
    return d


def write_depth_npz(path: str | PathLike[str], depth_m: np.ndarray, *, compress: bool = False) -> None:
    """Write an (H, W) float32 depth map in metres as ``.npz`` (key ``depth_m``), atomically."""
    import io

    d = np.asarray(depth_m, dtype=np.float32)
    check_depth_map(d, name="depth_m")
    buf = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buf, depth_m=d)
    atomic_write_bytes(Path(path), buf.getvalue())


def read_depth(path: str | PathLike[str]) -> np.ndarray:
    """Read a depth map by extension: ``.png`` (KITTI uint16) or ``.npz`` (foresee float32)."""
    p = Path(path)
    if p.suffix == ".png":
        return read_depth_png(p)
    if p.suffix == ".npz":
        return read_depth_npz(p)
    raise KittiFormatError(p, None, "unknown depth map format (expected .png or .npz)")


def check_depth_map(depth_m: np.ndarray, *, name: str = "depth map",
                    path: str | PathLike[str] | None = None,
                    image_hw: tuple[int, int] | None = None) -> None:
    """Raise :class:`KittiFormatError` for a non-2D, wrongly sized, NaN/inf or negative map.

    Zero means "no data" and is valid.
    """
    d = np.asarray(depth_m)
    if d.ndim != 2:
        raise KittiFormatError(path, None, f"{name}: expected an (H, W) map, got shape {d.shape}")
    if image_hw is not None and tuple(d.shape) != tuple(image_hw):
        raise KittiFormatError(path, None, f"{name}: shape {d.shape[0]}x{d.shape[1]} (HxW) differs "
                               f"from the image's {image_hw[0]}x{image_hw[1]}")
    if not np.all(np.isfinite(d)):
        n = int(np.count_nonzero(~np.isfinite(d)))
        raise KittiFormatError(path, None, f"{name}: {n} NaN/inf depth values")
    if np.any(d < 0):
        raise KittiFormatError(path, None, f"{name}: {int(np.count_nonzero(d < 0))} negative depth values")
