"""Bird's-eye-view input maps of a cloud: height slices above the ground plane plus density.

Grid: columns along rect x from ``x_range_m[0]`` (left), rows along rect z from ``z_range_m[1]``
(far, row 0) to ``z_range_m[0]`` (near), ``cell_m`` metres per cell. A point at ``(x, z)`` has the
continuous pixel coordinates ``col = (x - x_min) / cell``, ``row = (z_max - z) / cell`` (cell
``(r, c)`` covers ``[c, c+1) x [r, r+1)``).

Channels (AVOD ``bev_slices.py``): for each of ``num_slices`` slices ``[lo, lo + t)`` of height
above the ground plane (``lo = slice_bottom_m + k·t``), the cell holds
``(max height of its points in the slice - lo) / t`` (0 when empty); the last channel is the
density of the points of all slices, ``min(1, log(N + 1) / log(density_log_base))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detection.avod.planes import height_above_plane
from detection.avod.settings import AvodSettings


@dataclass(frozen=True, eq=False)
class BevMaps:
    """One frame's BEV input.

    Attributes:
        maps: (num_slices + 1, rows, cols) float32: height slices, then density.
        counts: (rows, cols) int32 number of points per cell (all slices), for the anchor filter.
    """

    maps: np.ndarray
    counts: np.ndarray


def xz_to_pixel(x: np.ndarray, z: np.ndarray, settings: AvodSettings) -> tuple[np.ndarray, np.ndarray]:
    """Continuous BEV pixel coordinates ``(col, row)`` of rect ``(x, z)`` (see the module doc)."""
    col = (np.asarray(x, dtype=np.float64) - settings.x_range_m[0]) / settings.cell_m
    row = (settings.z_range_m[1] - np.asarray(z, dtype=np.float64)) / settings.cell_m
    return col, row


def bev_maps(points_rect: np.ndarray, plane: np.ndarray, settings: AvodSettings) -> BevMaps:
    """The BEV maps of a rect cloud above a ground plane.

    Args:
        points_rect: (N, >=3) points in the rect camera frame.
        plane: (4,) ground plane, unit normal pointing up (:mod:`.planes`).
        settings: grid and slices.

    Returns:
        :class:`BevMaps`.
    """
    p = np.asarray(points_rect, dtype=np.float64)
    rows, cols = settings.bev_shape
    t = settings.slice_height_m
    lo = settings.slice_bottom_m
    hi = lo + settings.num_slices * t
    height = height_above_plane(p, plane)
    col, row = xz_to_pixel(p[:, 0], p[:, 2], settings)
    c = np.floor(col).astype(np.int64)
    r = np.floor(row).astype(np.int64)
    keep = (c >= 0) & (c < cols) & (r >= 0) & (r < rows) & (height >= lo) & (height < hi)
    c, r, height = c[keep], r[keep], height[keep]
    k = np.minimum(((height - lo) // t).astype(np.int64), settings.num_slices - 1)
    flat = (k * rows + r) * cols + c
    top = np.full(settings.num_slices * rows * cols, -np.inf)
    np.maximum.at(top, flat, height)
    filled = np.isfinite(top)
    slice_lo = lo + t * (np.arange(top.size) // (rows * cols))
    out = np.zeros(top.size, dtype=np.float64)
    out[filled] = (top[filled] - slice_lo[filled]) / t
    counts = np.bincount(r * cols + c, minlength=rows * cols).reshape(rows, cols)
    density = np.minimum(1.0, np.log(counts + 1.0) / np.log(settings.density_log_base))
    maps = np.concatenate([out.reshape(settings.num_slices, rows, cols), density[None]], axis=0)
    return BevMaps(maps.astype(np.float32), counts.astype(np.int32))
