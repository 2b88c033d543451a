"""3D box geometry in the KITTI rectified camera frame.

Layout: a box is ``loc_rect (3,)`` = **bottom centre** ``(x, y, z)`` (camera y points down, so the
top face is at ``y - h``), ``hwl (3,)`` = ``(h, w, l)`` in label order, and ``ry`` = rotation about
camera y. At ``ry = 0`` the length runs along rect x, the width along rect z.

Corner order (bottom face 0-3 at y, top face 4-7 at y - h), seen from above (BEV, x right, z up)::

        z
        ^      3 ---- 0         top: 7 ---- 4
        |      |  ->  |  (front = +x)    |      |
        |      2 ---- 1              6 ---- 5
        +-----> x

The front face is 0-1-5-4 (``+l/2`` along the heading).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_X = np.array([0.5, 0.5, -0.5, -0.5, 0.5, 0.5, -0.5, -0.5])
_Y = np.array([0.0, 0.0, 0.0, 0.0, -1.0, -1.0, -1.0, -1.0])
_Z = np.array([0.5, -0.5, -0.5, 0.5, 0.5, -0.5, -0.5, 0.5])


def box_corners_rect(loc_rect: np.ndarray, hwl: np.ndarray, ry: np.ndarray) -> np.ndarray:
    """Corners of (N,) boxes in the rect frame.

    Args:
        loc_rect: (N, 3) bottom centres.
        hwl: (N, 3) sizes (h, w, l) in metres.
        ry: (N,) rotations about camera y in radians.

    Returns:
        (N, 8, 3) corners in the order drawn in the module docstring.

    >>> box_corners_rect(np.zeros((1, 3)), np.array([[1.5, 1.6, 4.0]]), np.zeros(1))[0, 0]
    array([2. , 0. , 0.8])
    """
    loc = np.asarray(loc_rect, dtype=np.float64).reshape(-1, 3)
    size = np.asarray(hwl, dtype=np.float64).reshape(-1, 3)
    rot = np.asarray(ry, dtype=np.float64).reshape(-1)
    h, w, l = size[:, 0:1], size[:, 1:2], size[:, 2:3]
    x = l * _X
    y = h * _Y
    z = w * _Z
    c, s = np.cos(rot)[:, None], np.sin(rot)[:, None]
    # rotation about y: x' = c·x + s·z, z' = -s·x + c·z
    xr = c * x + s * z
    zr = -s * x + c * z
    return np.stack([xr + loc[:, 0:1], y + loc[:, 1:2], zr + loc[:, 2:3]], axis=-1)


def box_bev_corners(loc_rect: np.ndarray, hwl: np.ndarray, ry: np.ndarray) -> np.ndarray:
    """(N, 4, 2) bird's-eye-view footprints as rect ``(x, z)``, corners 0-3 of :func:`box_corners_rect`."""
    return box_corners_rect(loc_rect, hwl, ry)[:, :4, [0, 2]]


def box_center_rect(loc_rect: np.ndarray, hwl: np.ndarray) -> np.ndarray:
    """(N, 3) geometric centres: the bottom centre moved up by h/2 (``y - h/2``)."""
    loc = np.asarray(loc_rect, dtype=np.float64).reshape(-1, 3).copy()
    loc[:, 1] -= np.asarray(hwl, dtype=np.float64).reshape(-1, 3)[:, 0] / 2.0
    return loc


def points_in_box_mask(points_rect: np.ndarray, loc_rect: np.ndarray, hwl: np.ndarray,
                       ry: float) -> np.ndarray:
    """(N,) bool: which rect points lie inside one box (faces included).

    The points are moved into the box frame (translate to the bottom centre, rotate by -ry) and
    compared with ``|x| <= l/2``, ``-h <= y <= 0``, ``|z| <= w/2``.
    """
    p = np.asarray(points_rect, dtype=np.float64)[:, :3] - np.asarray(loc_rect, dtype=np.float64)
    h, w, l = (float(v) for v in np.asarray(hwl).reshape(3))
    c, s = np.cos(ry), np.sin(ry)
    # inverse rotation of box_corners_rect: x = c·x' - s·z', z = s·x' + c·z'
    xb = c * p[:, 0] - s * p[:, 2]
    zb = s * p[:, 0] + c * p[:, 2]
    return (np.abs(xb) <= l / 2) & (p[:, 1] <= 0) & (p[:, 1] >= -h) & (np.abs(zb) <= w / 2)


def alpha_from_ry(ry: np.ndarray | float, x: np.ndarray | float, z: np.ndarray | float) -> np.ndarray:
    """Observation angle ``alpha = ry - atan2(x, z)``, wrapped to [-π, π)."""
    a = np.asarray(ry, dtype=np.float64) - np.arctan2(x, z)
    return wrap_angle(a)


def wrap_angle(angle: np.ndarray | float) -> np.ndarray:
    """Wrap radians to [-π, π)."""
    return (np.asarray(angle, dtype=np.float64) + np.pi) % (2 * np.pi) - np.pi


@dataclass(frozen=True, eq=False)
class Boxes3D:
    """Many 3D boxes, one array per field (rect frame, bottom-centre convention).

    Attributes:
        loc_rect: (N, 3) bottom centres.
        hwl: (N, 3) sizes (h, w, l).
        ry: (N,) rotations about camera y.
        score: (N,) scores (NaN where none).
    """

    loc_rect: np.ndarray
    hwl: np.ndarray
    ry: np.ndarray
    score: np.ndarray

    def __post_init__(self) -> None:
        loc = np.asarray(self.loc_rect, dtype=np.float64).reshape(-1, 3)
        n = loc.shape[0]
        hwl = np.asarray(self.hwl, dtype=np.float64).reshape(-1, 3)
        ry = np.asarray(self.ry, dtype=np.float64).reshape(-1)
        score = np.asarray(self.score, dtype=np.float64).reshape(-1)
        for name, arr in (("hwl", hwl), ("ry", ry), ("score", score)):
            if arr.shape[0] != n:
                raise ValueError(f"Boxes3D.{name}: expected {n} rows, got {arr.shape[0]}")
        object.__setattr__(self, "loc_rect", loc)
        object.__setattr__(self, "hwl", hwl)
        object.__setattr__(self, "ry", ry)
        object.__setattr__(self, "score", score)

    @classmethod
    def empty(cls) -> "Boxes3D":
        return cls(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros(0))

    @classmethod
    def from_objects(cls, objects) -> "Boxes3D":
        """Boxes of a sequence of :class:`kitti.labels.Object3d`."""
        objs = list(objects)
        if not objs:
            return cls.empty()
        return cls(np.array([[o.x, o.y, o.z] for o in objs]), np.array([[o.h, o.w, o.l] for o in objs]),
                   np.array([o.ry for o in objs]),
                   np.array([np.nan if o.score is None else o.score for o in objs]))

    def __len__(self) -> int:
        return self.loc_rect.shape[0]

    def __getitem__(self, index) -> "Boxes3D":
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Boxes3D(self.loc_rect[index], self.hwl[index], self.ry[index], self.score[index])

    def corners_rect(self) -> np.ndarray:
        """(N, 8, 3) corners, see :func:`box_corners_rect`."""
        return box_corners_rect(self.loc_rect, self.hwl, self.ry)

    def bev_corners(self) -> np.ndarray:
        """(N, 4, 2) BEV footprints as rect (x, z)."""
        return box_bev_corners(self.loc_rect, self.hwl, self.ry)
