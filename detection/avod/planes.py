"""Ground planes: the RANSAC fit of the pseudo-LiDAR recipe, and KITTI ``planes/`` files.

A plane is ``(a, b, c, d)`` with ``a·x + b·y + c·z + d = 0`` in the rect camera frame, its normal
``(a, b, c)`` of unit length and pointing **up** (``b < 0``, camera y points down). The height of a
rect point above the plane is then ``a·x + b·y + c·z + d`` (positive above the road). KITTI's
fallback plane is ``(0, -1, 0, 1.65)``: a flat road 1.65 m below the camera.

The fit (``kitti_process_RANSAC.py`` of the pseudo-LiDAR repository): keep the points with
``1.5 < y < 1.86``, ``0 < z < 40`` and ``|x| < 15`` (strict), fit ``y = α·x + β·z + h`` with
scikit-learn's ``RANSACRegressor`` (its defaults; seeded), and return
``(α, -1, β, h) / ‖(α, -1, β)‖``. The original divides only the normal and keeps ``h`` as is; the
two differ by ``h·(1 - 1/‖n‖)`` (millimetres on a road tilted by a few degrees), and the normalised
form makes the height above the plane a true distance. Too few road points (< ``MIN_FIT_POINTS``)
give the fallback plane.

File format (KITTI / AVOD ``planes/NNNNNN.txt``)::

    # Plane
    Width 4
    Height 1
    a b c d
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np

from kitti.errors import KittiFormatError
from kitti.fileio import atomic_write_text, read_text_file

#: KITTI's default ground plane (a flat road 1.65 m below camera 2).
FALLBACK_PLANE: tuple[float, float, float, float] = (0.0, -1.0, 0.0, 1.65)

#: Fewer road points than this and the fit returns :data:`FALLBACK_PLANE`.
MIN_FIT_POINTS: int = 10


def road_points_mask(points_rect: np.ndarray) -> np.ndarray:
    """(N,) bool: the pseudo-LiDAR recipe's candidate road points (strict bounds, rect frame)."""
    p = np.asarray(points_rect, dtype=np.float64)
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    return (y > 1.5) & (y < 1.86) & (z > 0) & (z < 40) & (x > -15) & (x < 15)


def fit_ground_plane(points_rect: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """RANSAC ground plane of a cloud (see the module docstring).

    Args:
        points_rect: (N, >=3) points in the rect camera frame.
        seed: RANSAC's random state.

    Returns:
        (4,) float64 plane ``(a, b, c, d)``, unit normal pointing up.
    """
    from sklearn.linear_model import RANSACRegressor

    p = np.asarray(points_rect, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 3:
        raise ValueError(f"fit_ground_plane: expected (N, >=3) points, got shape {p.shape}")
    road = p[road_points_mask(p)]
    if road.shape[0] < MIN_FIT_POINTS:
        return np.array(FALLBACK_PLANE, dtype=np.float64)
    reg = RANSACRegressor(random_state=seed)
    try:
        reg.fit(road[:, [0, 2]], road[:, 1])
    except ValueError:  # RANSAC found no consensus set
        return np.array(FALLBACK_PLANE, dtype=np.float64)
    alpha, beta = (float(v) for v in reg.estimator_.coef_)
    h = float(reg.estimator_.intercept_)
    plane = np.array([alpha, -1.0, beta, h])
    return plane / np.linalg.norm(plane[:3])


def height_above_plane(points_rect: np.ndarray, plane: np.ndarray) -> np.ndarray:
    """(N,) signed heights (m) of rect points above a plane with a unit upward normal."""
    p = np.asarray(points_rect, dtype=np.float64)
    a, b, c, d = (float(v) for v in plane)
    return a * p[:, 0] + b * p[:, 1] + c * p[:, 2] + d


def plane_y_at(plane: np.ndarray, x: np.ndarray, z: np.ndarray, height_m: np.ndarray | float = 0.0) -> np.ndarray:
    """Rect y of the points at (x, z) lying ``height_m`` above the plane: ``y = (h - a·x - c·z - d) / b``."""
    a, b, c, d = (float(v) for v in plane)
    return (np.asarray(height_m, dtype=np.float64) - a * np.asarray(x, dtype=np.float64)
            - c * np.asarray(z, dtype=np.float64) - d) / b


def format_plane(plane: np.ndarray) -> str:
    """The text of a KITTI ``planes/`` file (``%e`` numbers, as the pseudo-LiDAR script)."""
    a, b, c, d = (float(v) for v in plane)
    return f"# Plane\nWidth 4\nHeight 1\n{a:e} {b:e} {c:e} {d:e}\n"


def write_plane_file(path: str | PathLike[str], plane: np.ndarray) -> None:
    """Write a plane as a KITTI ``planes/`` file, atomically."""
    atomic_write_text(Path(path), format_plane(plane))


def read_plane_file(path: str | PathLike[str]) -> np.ndarray:
    """Read a KITTI ``planes/`` file: (4,) float64 ``(a, b, c, d)``, normalised, normal up.

    The plane is the first line of four numbers after the header; a plane whose normal points
    down (``b > 0``) is flipped (all four signs), one with a zero normal is an error.

    Raises:
        KittiFormatError: missing file, no line of four numbers, or a zero normal.
    """
    text = read_text_file(path, "plane file")
    for lineno, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if len(tokens) != 4 or line.lstrip().startswith("#"):
            continue
        try:
            plane = np.array([float(t) for t in tokens], dtype=np.float64)
        except ValueError:
            continue
        norm = np.linalg.norm(plane[:3])
        if not np.all(np.isfinite(plane)) or norm == 0:
            raise KittiFormatError(path, lineno, f"plane {line.strip()!r} has no finite non-zero normal")
        plane = plane / norm
        return -plane if plane[1] > 0 else plane
    raise KittiFormatError(path, None, "no line of four numbers (a b c d) in the plane file")
