"""Point-cloud filters of the pseudo-LiDAR stage: pure functions returning boolean masks.

Masks keep the input order, so a filtered cloud stays in row-major pixel order.
All clouds are (N, >=3) arrays in the KITTI velodyne frame (x forward, y left, z up, metres).
"""

from __future__ import annotations

import numpy as np

from kitti import Calibration

#: Elevation of the first beam of the simulated HDL-64E (pseudo-LiDAR++ ``pto_ang_map``).
SPARSIFY_TOP_DEG = 2.0
#: Vertical spacing of 64 beams in degrees; n beams span the same 25.6° field.
SPARSIFY_BEAM_DEG_64 = 0.4
#: Half-width of the sparsifier's azimuth field in degrees (±45° around velodyne x).
SPARSIFY_HALF_AZIMUTH_DEG = 45.0


def height_mask(points_velo: np.ndarray, max_height_m: float) -> np.ndarray:
    """(N,) bool: the pseudo-LiDAR reference filter, velodyne ``z < max_height_m`` (strict) and
    ``x >= 0`` (in front of the sensor)."""
    p = np.asarray(points_velo, dtype=np.float64)
    return (p[:, 2] < max_height_m) & (p[:, 0] >= 0.0)


def project_to_pixels(points_velo: np.ndarray, calib: Calibration,
                      image_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The image_2 pixel each point falls in (nearest pixel centre).

    Pixel centres are at integer ``(u, v)`` (the convention of the back-projection), so pixel
    ``(row, col)`` covers ``u ∈ [col - 0.5, col + 0.5)``, ``v ∈ [row - 0.5, row + 0.5)``.

    Returns:
        in_image: (N,) bool, the point is in front of the camera (depth > 0) and its pixel is
            inside the ``(H, W)`` image.
        rows, cols: (N,) int64 pixel indices (meaningful where ``in_image``).
        depth_m: (N,) float64 depth, the third homogeneous coordinate of ``P2 · x_rect``.
    """
    H, W = int(image_hw[0]), int(image_hw[1])
    uv, depth = calib.velo_to_img(points_velo)
    with np.errstate(invalid="ignore"):
        cols = np.floor(uv[:, 0] + 0.5)
        rows = np.floor(uv[:, 1] + 0.5)
        in_image = (depth > 0) & (cols >= 0) & (cols < W) & (rows >= 0) & (rows < H)
    cols = np.where(in_image, cols, -1).astype(np.int64)
    rows = np.where(in_image, rows, -1).astype(np.int64)
    return in_image, rows, cols, depth


def frustum_mask(points_velo: np.ndarray, calib: Calibration, image_hw: tuple[int, int],
                 near_m: float = 2.0) -> np.ndarray:
    """(N,) bool: points inside the camera frustum, i.e. projecting inside image_2 (nearest
    pixel, see :func:`project_to_pixels`) and at least ``near_m`` ahead of the LiDAR
    (velodyne ``x >= near_m``; F-PointNet's ``get_lidar_in_image_fov`` with ``clip_distance``)."""
    in_image, _, _, _ = project_to_pixels(points_velo, calib, image_hw)
    return in_image & (np.asarray(points_velo, dtype=np.float64)[:, 0] >= near_m)


def sparsify_beams_mask(points_velo: np.ndarray, n_beams: int = 64, n_azimuth: int = 512) -> np.ndarray:
    """(N,) bool: a simulated ``n_beams`` LiDAR, at most one point (the nearest) per cell.

    The cells are those of pseudo-LiDAR++'s ``kitti_sparsify`` (``pto_ang_map``): elevation
    rows of ``0.4° · 64 / n_beams`` from +2° downwards, ``n_azimuth`` azimuth columns over ±45°
    around velodyne x. Two deliberate differences: points outside that field are dropped (the
    reference clamps them into the border cells), and the nearest point of a cell is kept (the
    reference keeps whichever it wrote last), as a real LiDAR's first return.
    """
    p = np.asarray(points_velo, dtype=np.float64)
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    rng = np.sqrt(x * x + y * y + z * z)
    dtheta = np.radians(SPARSIFY_BEAM_DEG_64 * 64.0 / n_beams)
    dphi = np.radians(2.0 * SPARSIFY_HALF_AZIMUTH_DEG / n_azimuth)
    with np.errstate(invalid="ignore", divide="ignore"):
        theta = np.radians(SPARSIFY_TOP_DEG) - np.arcsin(np.clip(z / rng, -1.0, 1.0))
        phi = np.radians(SPARSIFY_HALF_AZIMUTH_DEG) - np.arctan2(y, x)
        beam = np.floor(theta / dtheta)
        col = np.floor(phi / dphi)
        ok = (rng > 0) & (beam >= 0) & (beam < n_beams) & (col >= 0) & (col < n_azimuth)
    cell = np.where(ok, beam * n_azimuth + col, -1).astype(np.int64)
    idx = np.flatnonzero(ok)
    keep = np.zeros(p.shape[0], dtype=bool)
    if idx.size == 0:
        return keep
    order = idx[np.lexsort((rng[idx], cell[idx]))]
    first = np.ones(order.size, dtype=bool)
    first[1:] = cell[order[1:]] != cell[order[:-1]]
    keep[order[first]] = True
    return keep
