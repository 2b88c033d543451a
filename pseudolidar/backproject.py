"""Depth maps <-> KITTI velodyne clouds (docs/paper.md §5).

Every pixel ``(u, v)`` (u = column, v = row, pixel centres at integers) with depth ``d > 0``
becomes the rect point of :meth:`kitti.Calibration.img_to_rect` — the exact inverse of
``rect_to_img`` under the full P2, with ``d`` the third homogeneous coordinate; for
``P2[2, 3] = 0`` this is the pseudo-LiDAR formula ``z = d``, ``x = (u - cu)·d/fu + bx``,
``y = (v - cv)·d/fv + by`` — then moved to the velodyne frame (x forward, y left, z up).
Reflectance is 1. The pseudo-LiDAR height filter keeps velodyne ``z < max_height_m`` (strict)
and ``x >= 0``.

The fast path is one numba loop (:mod:`pseudolidar._kernels`) over a single affine map
``p_velo = K · [u·d, v·d, d] + c`` folded from P2, R0_rect and Tr_velo_to_cam in float64;
:func:`depth_to_points_velo_reference` is its float64 NumPy twin built on ``Calibration``.
"""

from __future__ import annotations

import numpy as np

from kitti import Calibration, KittiFormatError, check_depth_map
from pseudolidar.filters import height_mask, project_to_pixels, sparsify_beams_mask


def backprojection_affine(calib: Calibration) -> tuple[np.ndarray, np.ndarray]:
    """The affine map image -> velodyne of :meth:`Calibration.img_to_velo`, as ``(K, c)``.

    ``p_velo = K @ [u·d, v·d, d] + c`` for pixel ``(u, v)`` with depth ``d`` (float64).
    """
    P = calib.P2
    # img_to_rect: z = d - P23, x = (u·d - P02·z - P03)/P00, y = (v·d - P12·z - P13)/P11
    A = np.array([[1.0 / P[0, 0], 0.0, -P[0, 2] / P[0, 0]],
                  [0.0, 1.0 / P[1, 1], -P[1, 2] / P[1, 1]],
                  [0.0, 0.0, 1.0]])
    b = np.array([(P[0, 2] * P[2, 3] - P[0, 3]) / P[0, 0],
                  (P[1, 2] * P[2, 3] - P[1, 3]) / P[1, 1],
                  -P[2, 3]])
    M = calib.rect_to_velo_matrix
    R, t = M[:3, :3], M[:3, 3]
    return np.ascontiguousarray(R @ A), np.ascontiguousarray(R @ b + t)


def _checked_depth(depth_m: np.ndarray) -> np.ndarray:
    d = np.asarray(depth_m)
    if d.dtype.kind not in "fiu":
        raise KittiFormatError(None, None, f"depth_m: expected a numeric (H, W) map, got dtype {d.dtype}")
    check_depth_map(d, name="depth_m")
    if d.dtype not in (np.float32, np.float64):
        d = d.astype(np.float64)
    return np.ascontiguousarray(d)


def _check_options(max_height_m: float, stride_px: int, sparsify_beams: int | None,
                   sparsify_azimuth_bins: int) -> None:
    if np.isnan(max_height_m):
        raise ValueError("max_height_m: expected a number or inf, got NaN")
    if int(stride_px) != stride_px or stride_px < 1:
        raise ValueError(f"stride_px: expected an integer >= 1, got {stride_px}")
    if sparsify_beams is not None and sparsify_beams < 1:
        raise ValueError(f"sparsify_beams: expected >= 1 or None, got {sparsify_beams}")
    if sparsify_azimuth_bins < 1:
        raise ValueError(f"sparsify_azimuth_bins: expected >= 1, got {sparsify_azimuth_bins}")


def depth_to_points_velo(depth_m: np.ndarray, calib: Calibration, max_height_m: float = 1.0, *,
                         max_depth_m: float | None = None, stride_px: int = 1,
                         sparsify_beams: int | None = None, sparsify_azimuth_bins: int = 512,
                         frustum_only: bool = False, frustum_near_m: float = 2.0) -> np.ndarray:
    """Back-project a depth map into a pseudo-LiDAR cloud in the velodyne frame.

    Args:
        depth_m: (H, W) depth in metres (third homogeneous coordinate of ``P2 · x_rect``, which
            is the usual depth map), 0 = no data. Computed in float64 whatever its dtype.
        calib: the frame's calibration (P2 with its bx, by offsets, R0_rect, Tr_velo_to_cam).
        max_height_m: keep velodyne ``z < max_height_m`` (strict) and ``x >= 0``; ``inf``
            keeps every height (``x >= 0`` still holds).
        max_depth_m: skip pixels with ``depth > max_depth_m`` (``None``: no cut, the paper).
        stride_px: use rows and columns ``0, s, 2s, …`` only (pixel subsampling).
        sparsify_beams: keep at most one point per cell of a simulated ``n``-beam LiDAR
            (:func:`pseudolidar.filters.sparsify_beams_mask`); ``None`` = dense.
        sparsify_azimuth_bins: azimuth cells of the simulated LiDAR.
        frustum_only: also require velodyne ``x >= frustum_near_m`` (back-projected pixels are
            inside the image already; see :func:`pseudolidar.filters.frustum_mask`).
        frustum_near_m: near plane of the frustum, metres along velodyne x.

    Returns:
        (N, 4) float32 ``[x, y, z, 1]`` in the velodyne frame, pixels in row-major order.

    Raises:
        KittiFormatError: ``depth_m`` not 2-D, not numeric, NaN/inf or negative.

    >>> from kitti import Calibration
    >>> calib = Calibration(P2=[[512.0, 0, 128, 0], [0, 512.0, 128, 0], [0, 0, 1, 0]],
    ...     R0_rect=np.eye(3), Tr_velo_to_cam=[[0, -1.0, 0, 0], [0, 0, -1.0, 0], [1.0, 0, 0, 0]])
    >>> depth = np.zeros((256, 512), np.float32); depth[96, 256] = 8.0; depth[64, 256] = 8.0
    >>> depth_to_points_velo(depth, calib)  # the pixel of row 64 is 1 m above the LiDAR: removed
    array([[ 8. , -2. ,  0.5,  1. ]], dtype=float32)
    """
    from pseudolidar._kernels import backproject_kernel

    d = _checked_depth(depth_m)
    _check_options(max_height_m, stride_px, sparsify_beams, sparsify_azimuth_bins)
    K, c = backprojection_affine(calib)
    min_x = max(0.0, float(frustum_near_m)) if frustum_only else 0.0
    max_d = np.inf if max_depth_m is None else float(max_depth_m)
    out = np.empty((d.size, 4), dtype=np.float32)
    n = backproject_kernel(d, K, c, int(stride_px), max_d, float(max_height_m), min_x, out)
    points = out[:n].copy()
    if sparsify_beams is not None:
        points = points[sparsify_beams_mask(points, int(sparsify_beams), int(sparsify_azimuth_bins))]
    return points


def depth_to_points_velo_reference(depth_m: np.ndarray, calib: Calibration, max_height_m: float = 1.0, *,
                                   max_depth_m: float | None = None, stride_px: int = 1,
                                   sparsify_beams: int | None = None, sparsify_azimuth_bins: int = 512,
                                   frustum_only: bool = False, frustum_near_m: float = 2.0) -> np.ndarray:
    """Float64 NumPy twin of :func:`depth_to_points_velo` (same arguments; returns float64).

    Written straight from :meth:`Calibration.img_to_velo` and the filters of
    :mod:`pseudolidar.filters`, for tests and as readable documentation of the fast path.
    """
    d = np.asarray(_checked_depth(depth_m), dtype=np.float64)
    _check_options(max_height_m, stride_px, sparsify_beams, sparsify_azimuth_bins)
    rows, cols = np.meshgrid(np.arange(0, d.shape[0], stride_px), np.arange(0, d.shape[1], stride_px),
                             indexing="ij")
    depth = d[rows, cols].reshape(-1)
    uv = np.stack([cols.reshape(-1), rows.reshape(-1)], axis=1).astype(np.float64)
    valid = depth > 0
    if max_depth_m is not None:
        valid &= depth <= max_depth_m
    xyz = calib.img_to_velo(uv[valid], depth[valid])
    keep = height_mask(xyz, max_height_m)
    if frustum_only:
        keep &= xyz[:, 0] >= frustum_near_m
    points = np.concatenate([xyz[keep], np.ones((int(keep.sum()), 1))], axis=1)
    if sparsify_beams is not None:
        points = points[sparsify_beams_mask(points, sparsify_beams, sparsify_azimuth_bins)]
    return points


def points_velo_to_depth(points_velo: np.ndarray, calib: Calibration,
                         image_hw: tuple[int, int]) -> np.ndarray:
    """Render a velodyne cloud into a sparse image_2 depth map; the nearest point wins a pixel.

    Each point goes to the pixel whose centre is nearest to its projection (see
    :func:`pseudolidar.filters.project_to_pixels`). Back-projecting the map with
    :func:`depth_to_points_velo` returns every winning point to within half a pixel's
    footprint at its depth (``0.5·d/fu`` across, ``0.5·d/fv`` vertically).

    Args:
        points_velo: (N, >=3) points in the velodyne frame (extra columns ignored).
        calib: the frame's calibration.
        image_hw: (H, W) of image_2.

    Returns:
        (H, W) float32 depth in metres (third homogeneous coordinate), 0 where no point falls.

    Raises:
        KittiFormatError: ``points_velo`` is not (N, >=3) or holds NaN/inf.
    """
    p = np.asarray(points_velo)
    if p.ndim != 2 or p.shape[1] < 3 or p.dtype.kind not in "fiu":
        raise KittiFormatError(None, None, f"points_velo: expected a numeric (N, >=3) array, got "
                               f"shape {p.shape} dtype {p.dtype}")
    if not np.all(np.isfinite(p[:, :3])):
        raise KittiFormatError(None, None, "points_velo: NaN/inf coordinates")
    H, W = int(image_hw[0]), int(image_hw[1])
    in_image, rows, cols, depth = project_to_pixels(p[:, :3], calib, (H, W))
    flat = rows[in_image] * W + cols[in_image]
    dep = depth[in_image]
    order = np.lexsort((dep, flat))
    flat, dep = flat[order], dep[order]
    first = np.ones(flat.size, dtype=bool)
    first[1:] = flat[1:] != flat[:-1]
    out = np.zeros(H * W, dtype=np.float32)
    out[flat[first]] = dep[first]
    return out.reshape(H, W)
