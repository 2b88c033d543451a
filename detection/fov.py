"""The image-FOV cut of a velodyne-format cloud, shared by the two 3D detectors.

Frames: clouds arrive in the **velodyne** frame (x forward, y left, z up; KITTI ``.bin``) and leave
in the **rect** camera frame (x right, y down, z forward). Used by :mod:`detection.frustum_pointnet`
and :mod:`detection.avod` (both keep only the points that project into image_2, as the originals'
``get_lidar_in_image_fov``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kitti.calib import Calibration


@dataclass(frozen=True, eq=False)
class FrameCloud:
    """The points of one frame that project into the image and lie in front of the sensor.

    Attributes:
        points_rect: (N, 3) float32 points in the rect camera frame (metres).
        intensity: (N,) float32 reflectance (1.0 for pseudo-LiDAR).
        uv_img: (N, 2) float32 image_2 pixel coordinates (u = column, v = row).
    """

    points_rect: np.ndarray
    intensity: np.ndarray
    uv_img: np.ndarray

    def __len__(self) -> int:
        return int(self.points_rect.shape[0])


def frame_cloud(points_velo: np.ndarray, calib: Calibration, image_hw: tuple[int, int], *,
                min_x_velo_m: float = 2.0) -> FrameCloud:
    """Keep the points inside image_2 and more than ``min_x_velo_m`` in front of the sensor.

    Args:
        points_velo: (N, 4) velodyne-format points ``[x, y, z, reflectance]``.
        calib: the frame's calibration.
        image_hw: (H, W) of image_2 in pixels.
        min_x_velo_m: velodyne-x cut (``get_lidar_in_image_fov``'s clip distance, 2.0 m).

    Returns:
        The frame's :class:`FrameCloud` (``0 <= u < W``, ``0 <= v < H``, as the original).
    """
    p = np.asarray(points_velo)
    if p.ndim != 2 or p.shape[1] != 4:
        raise ValueError(f"frame_cloud: expected (N, 4) velodyne points, got shape {p.shape}")
    front = p[:, 0] > min_x_velo_m
    p = p[front]
    points_rect = calib.velo_to_rect(p[:, :3])
    uv, depth = calib.rect_to_img(points_rect)
    h, w = image_hw
    keep = ((uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h) & (depth > 0)
            & np.all(np.isfinite(points_rect), axis=1))
    return FrameCloud(points_rect[keep].astype(np.float32), p[keep, 3].astype(np.float32),
                      uv[keep].astype(np.float32))
