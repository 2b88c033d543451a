"""Filling a sparse depth map (0 = empty) by linear interpolation between valid pixels.

Used by the example pictures of docs/pseudolidar.md (:mod:`pseudolidar.examples`) to stand in for a
predicted dense map when only a LiDAR scan is at hand.
"""

from __future__ import annotations

import numpy as np


def _fill_lines(depth_m: np.ndarray, max_gap_px: int) -> np.ndarray:
    """Linear interpolation along each row between valid pixels at most ``max_gap_px`` apart."""
    out = depth_m.copy()
    for r in range(depth_m.shape[0]):
        cols = np.flatnonzero(depth_m[r] > 0)
        if cols.size < 2:
            continue
        gaps = np.diff(cols)
        for k in np.flatnonzero((gaps > 1) & (gaps <= max_gap_px)):
            c0, c1 = cols[k], cols[k + 1]
            out[r, c0 + 1:c1] = np.interp(np.arange(c0 + 1, c1), [c0, c1], depth_m[r, [c0, c1]])
    return out


def fill_depth(depth_m: np.ndarray, max_gap_rows_px: int = 30, max_gap_cols_px: int = 12) -> np.ndarray:
    """Fill empty pixels (0) of a sparse depth map by linear interpolation between valid pixels,
    first along columns (between LiDAR rows, at most ``max_gap_rows_px`` apart), then along rows
    (at most ``max_gap_cols_px`` apart); float32, 0 = still empty. Valid pixels keep their value."""
    d = np.asarray(depth_m, dtype=np.float32)
    return _fill_lines(_fill_lines(d.T, max_gap_rows_px).T, max_gap_cols_px)
