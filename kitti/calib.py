"""KITTI calibration: the matrices of one ``calib/NNNNNN.txt`` and the transforms between frames.

Frames (the convention every stage uses)::

    velodyne (velo):  x forward, y left,  z up      origin at the LiDAR, ~1.73 m above the road
    camera reference: x right,   y down,  z forward origin at camera 0
    rectified (rect): the reference frame rotated by R0_rect; all KITTI boxes live here
    image (img):      u to the right (column), v down (row), pixels of image_2

    y_img2 ~ P2 · R0_rect · Tr_velo_to_cam · x_velo      (homogeneous coordinates)

All transforms are pure, batched over the first axis and computed in float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from kitti.errors import KittiFormatError
from kitti.fileio import read_text_file

# key -> number of values; the aliases are spellings found in KITTI tracking / raw files.
_SIZES = {"P0": 12, "P1": 12, "P2": 12, "P3": 12, "R0_rect": 9, "Tr_velo_to_cam": 12,
          "Tr_imu_to_velo": 12}
_ALIASES = {"R_rect": "R0_rect", "Tr_velo_cam": "Tr_velo_to_cam", "Tr_imu_velo": "Tr_imu_to_velo"}
_REQUIRED = ("P2", "R0_rect", "Tr_velo_to_cam")


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def _as_points(points: np.ndarray, dim: int, name: str) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < dim:
        raise ValueError(f"{name}: expected an (N, {dim}) array, got shape {p.shape}")
    return p[:, :dim]


@dataclass(frozen=True, eq=False)
class Calibration:
    """The matrices of one KITTI object calibration file (float64, read-only arrays).

    Attributes:
        P2: (3, 4) projection of the rectified frame into image_2 (left colour camera).
        R0_rect: (3, 3) rectifying rotation, camera reference -> rect.
        Tr_velo_to_cam: (3, 4) rigid transform velodyne -> camera reference.
        P0, P1, P3: (3, 4) the other cameras' projections (identity-like when absent).
        Tr_imu_to_velo: (3, 4) IMU -> velodyne, or ``None`` when the file has none.
    """

    P2: np.ndarray
    R0_rect: np.ndarray
    Tr_velo_to_cam: np.ndarray
    P0: np.ndarray | None = None
    P1: np.ndarray | None = None
    P3: np.ndarray | None = None
    Tr_imu_to_velo: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name, shape in (("P2", (3, 4)), ("R0_rect", (3, 3)), ("Tr_velo_to_cam", (3, 4)),
                            ("P0", (3, 4)), ("P1", (3, 4)), ("P3", (3, 4)),
                            ("Tr_imu_to_velo", (3, 4))):
            value = getattr(self, name)
            if value is None:
                continue
            arr = _readonly(value)
            if arr.shape != shape:
                raise ValueError(f"Calibration.{name}: expected shape {shape}, got {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"Calibration.{name}: non-finite values")
            object.__setattr__(self, name, arr)

    # ------------------------------------------------------------------ parsing
    @classmethod
    def from_file(cls, path: str | PathLike[str]) -> "Calibration":
        """Parse a KITTI object ``calib/NNNNNN.txt`` by key (line order does not matter).

        Raises:
            KittiFormatError: missing file, unknown layout, wrong count, non-numeric value or a
                missing required key (P2, R0_rect, Tr_velo_to_cam), naming file and line.
        """
        path = Path(path)
        return cls.from_text(read_text_file(path, "calibration file"), path=path)

    @classmethod
    def from_text(cls, text: str, *, path: str | PathLike[str] | None = None) -> "Calibration":
        """Parse the text of a calib file; ``path`` is used in error messages only."""
        values: dict[str, np.ndarray] = {}
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            key, sep, rest = line.partition(":")
            key = key.strip()
            if not sep:
                raise KittiFormatError(path, lineno, f"expected 'KEY: numbers', got {line[:40]!r}")
            key = _ALIASES.get(key, key)
            if key not in _SIZES:
                continue  # other keys (e.g. calib_time in raw files) are not ours
            tokens = rest.split()
            if len(tokens) != _SIZES[key]:
                raise KittiFormatError(
                    path, lineno, f"expected {_SIZES[key]} numbers after '{key}:', got {len(tokens)}")
            try:
                numbers = np.array([float(t) for t in tokens], dtype=np.float64)
            except ValueError:
                bad = next(t for t in tokens if not _is_float(t))
                raise KittiFormatError(path, lineno, f"non-numeric value {bad!r} after '{key}:'") from None
            if not np.all(np.isfinite(numbers)):
                raise KittiFormatError(path, lineno, f"non-finite value after '{key}:'")
            if key in values:
                raise KittiFormatError(path, lineno, f"duplicate key '{key}'")
            values[key] = numbers.reshape(3, 3) if key == "R0_rect" else numbers.reshape(3, 4)
        missing = [k for k in _REQUIRED if k not in values]
        if missing:
            raise KittiFormatError(path, None, f"missing calibration keys: {', '.join(missing)}")
        return cls(**values)

    def to_text(self) -> str:
        """Write the calibration in KITTI's layout (``%.12e``, as the KITTI files)."""
        lines = []
        for key in ("P0", "P1", "P2", "P3", "R0_rect", "Tr_velo_to_cam", "Tr_imu_to_velo"):
            m = getattr(self, key)
            if m is None:
                continue
            lines.append(f"{key}: " + " ".join(f"{v:.12e}" for v in m.ravel()))
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------------ intrinsics of image_2
    @property
    def fu(self) -> float:
        """Focal length in pixels along u (P2[0, 0])."""
        return float(self.P2[0, 0])

    @property
    def fv(self) -> float:
        """Focal length in pixels along v (P2[1, 1])."""
        return float(self.P2[1, 1])

    @property
    def cu(self) -> float:
        """Principal point u (P2[0, 2])."""
        return float(self.P2[0, 2])

    @property
    def cv(self) -> float:
        """Principal point v (P2[1, 2])."""
        return float(self.P2[1, 2])

    @property
    def bx(self) -> float:
        """Camera-2 offset along rect x in metres: ``-P2[0, 3] / fu`` (pseudo-LiDAR's b_x)."""
        return float(-self.P2[0, 3] / self.P2[0, 0])

    @property
    def by(self) -> float:
        """Camera-2 offset along rect y in metres: ``-P2[1, 3] / fv`` (pseudo-LiDAR's b_y)."""
        return float(-self.P2[1, 3] / self.P2[1, 1])

    # ------------------------------------------------------------------ 4x4 helpers
    @property
    def velo_to_rect_matrix(self) -> np.ndarray:
        """(4, 4) homogeneous transform velodyne -> rect (``R0_rect · Tr_velo_to_cam``)."""
        m = np.eye(4)
        m[:3, :4] = self.Tr_velo_to_cam
        r = np.eye(4)
        r[:3, :3] = self.R0_rect
        return r @ m

    @property
    def rect_to_velo_matrix(self) -> np.ndarray:
        """(4, 4) homogeneous transform rect -> velodyne (exact rigid inverse)."""
        m = self.velo_to_rect_matrix
        inv = np.eye(4)
        # R0_rect is a rotation up to rounding of the printed digits: invert it exactly.
        inv[:3, :3] = np.linalg.inv(m[:3, :3])
        inv[:3, 3] = -inv[:3, :3] @ m[:3, 3]
        return inv

    # ------------------------------------------------------------------ transforms
    def velo_to_rect(self, points_velo: np.ndarray) -> np.ndarray:
        """(N, >=3) velodyne points -> (N, 3) rect points (extra columns are ignored)."""
        p = _as_points(points_velo, 3, "points_velo")
        m = self.velo_to_rect_matrix
        return p @ m[:3, :3].T + m[:3, 3]

    def rect_to_velo(self, points_rect: np.ndarray) -> np.ndarray:
        """(N, 3) rect points -> (N, 3) velodyne points."""
        p = _as_points(points_rect, 3, "points_rect")
        m = self.rect_to_velo_matrix
        return p @ m[:3, :3].T + m[:3, 3]

    def rect_to_img(self, points_rect: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project (N, 3) rect points into image_2.

        Returns:
            uv_img: (N, 2) pixel coordinates (u = column, v = row), continuous.
            depth_m: (N,) depth along the optical axis, the third homogeneous coordinate of
                ``P2 · [x; 1]`` (equals rect z plus P2[2, 3], which is 0.0027 m or so in KITTI).
        """
        p = _as_points(points_rect, 3, "points_rect")
        h = p @ self.P2[:, :3].T + self.P2[:, 3]
        depth = h[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = h[:, :2] / depth[:, None]
        return uv, depth

    def img_to_rect(self, uv_img: np.ndarray, depth_m: np.ndarray) -> np.ndarray:
        """Back-project pixels with depth into (N, 3) rect points: the exact inverse of
        :meth:`rect_to_img` under the full P2 (intrinsics plus the bx, by offsets).

        ``depth_m`` is the depth that :meth:`rect_to_img` returns (third homogeneous coordinate).
        For a P2 whose last row is ``[0, 0, 1, 0]`` this is the pseudo-LiDAR code's formula
        ``z = d``, ``x = (u - cu)·d / fu + bx``, ``y = (v - cv)·d / fv + by``. Real KITTI P2 has
        ``P2[2, 3]`` ≈ 5 mm; the formula used here keeps the round trip exact, where the
        pseudo-LiDAR formula would be off by up to half a pixel at close range.
        """
        uv = _as_points(uv_img, 2, "uv_img")
        d = np.asarray(depth_m, dtype=np.float64).reshape(-1)
        if d.shape[0] != uv.shape[0]:
            raise ValueError(f"img_to_rect: {uv.shape[0]} pixels but {d.shape[0]} depths")
        P = self.P2
        out = np.empty((uv.shape[0], 3))
        z = d - P[2, 3]
        out[:, 2] = z
        out[:, 0] = (uv[:, 0] * d - P[0, 2] * z - P[0, 3]) / P[0, 0]
        out[:, 1] = (uv[:, 1] * d - P[1, 2] * z - P[1, 3]) / P[1, 1]
        return out

    def velo_to_img(self, points_velo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, >=3) velodyne points -> ((N, 2) uv_img, (N,) depth_m); see :meth:`rect_to_img`."""
        return self.rect_to_img(self.velo_to_rect(points_velo))

    def img_to_velo(self, uv_img: np.ndarray, depth_m: np.ndarray) -> np.ndarray:
        """Pixels with depth -> (N, 3) velodyne points."""
        return self.rect_to_velo(self.img_to_rect(uv_img, depth_m))

    def rect_to_img_batched(self, points_rect: np.ndarray) -> np.ndarray:
        """(..., 3) rect points -> (..., 2) pixels (convenience for box corners)."""
        p = np.asarray(points_rect, dtype=np.float64)
        uv, _ = self.rect_to_img(p.reshape(-1, 3))
        return uv.reshape(p.shape[:-1] + (2,))


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True
