"""What the 3D detectors share: the image-FOV cut of a velodyne-format cloud, and the device choice.

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


def select_device(name: str):
    """``auto`` -> CUDA when available, else CPU (a ``torch.device``); CUDA is the rank's own GPU
    under torchrun."""
    import torch

    from kitti.dist import local_rank

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device("cuda", local_rank()) if name == "cuda" else torch.device(name)


def check_frame_inputs(root, frame_ids, points_dir, kinds: tuple[str, ...]) -> None:
    """Raise :class:`kitti.errors.KittiFormatError` naming the first missing input of the frames:
    the root's ``kinds`` folders (``KittiRoot.check``), then ``points_dir/NNNNNN.bin``."""
    from pathlib import Path

    from kitti.errors import KittiFormatError

    root.check(tuple(frame_ids), kinds)
    missing = [f for f in frame_ids if not (Path(points_dir) / f"{f}.bin").is_file()]
    if missing:
        raise KittiFormatError(Path(points_dir) / f"{missing[0]}.bin", None,
                               f"{len(missing)} cloud(s) of the frames missing")


def setup_device(name: str, num_threads: int):
    """:func:`select_device`, and torch's CPU thread count set when ``num_threads`` > 0 on the CPU."""
    import torch

    device = select_device(name)
    if num_threads and device.type == "cpu":
        torch.set_num_threads(num_threads)
    return device
