"""numba kernels of the pseudo-LiDAR stage (plain loops over arrays; Python prepares the inputs).

Each kernel has a float64 NumPy twin that the tests compare it with:
``backproject_kernel`` <-> :func:`pseudolidar.backproject.depth_to_points_velo_reference`.
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True)
def backproject_kernel(depth_m, K, c, stride, max_depth_m, max_height_m, min_x_m, out):  # pragma: no cover - compiled
    """Back-project a depth map into ``out`` and return how many rows were written.

    Args:
        depth_m: (H, W) float32/float64 depth (third homogeneous coordinate), 0 = no data.
        K: (3, 3) float64, c: (3,) float64: ``p_velo = K @ [u·d, v·d, d] + c`` (pixel (u, v)).
        stride: keep rows and columns ``0, stride, 2·stride, …``.
        max_depth_m: pixels with ``d > max_depth_m`` are skipped (``inf`` = no cut).
        max_height_m: points with velodyne ``z >= max_height_m`` are skipped.
        min_x_m: points with velodyne ``x < min_x_m`` are skipped.
        out: (H·W, 4) float32 output; rows ``[x, y, z, 1]`` in row-major pixel order.
    """
    H, W = depth_m.shape
    n = 0
    for v in range(0, H, stride):
        fv = float(v)
        for u in range(0, W, stride):
            d = float(depth_m[v, u])
            if d <= 0.0 or d > max_depth_m:
                continue
            a = float(u) * d
            b = fv * d
            x = K[0, 0] * a + K[0, 1] * b + K[0, 2] * d + c[0]
            if x < min_x_m:
                continue
            z = K[2, 0] * a + K[2, 1] * b + K[2, 2] * d + c[2]
            if z >= max_height_m:
                continue
            y = K[1, 0] * a + K[1, 1] * b + K[1, 2] * d + c[1]
            out[n, 0] = x
            out[n, 1] = y
            out[n, 2] = z
            out[n, 3] = 1.0
            n += 1
    return n
