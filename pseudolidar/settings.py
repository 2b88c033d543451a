"""Settings of the pseudo-LiDAR stage: one frozen dataclass and two named presets.

The defaults are the paper's configuration (docs/paper.md §5, the pseudo-LiDAR reference
code): every pixel with a depth, points 1 m or more above the LiDAR removed, no depth cut, no
subsampling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

PRESET_NAMES: Final[tuple[str, ...]] = ("paper", "cpu-small")


@dataclass(frozen=True)
class PseudoLidarSettings:
    """How depth maps become velodyne-format clouds.

    Attributes:
        max_height_m: keep points with velodyne ``z < max_height_m`` (strict; the LiDAR is at
            z = 0, about 1.73 m above the road). ``inf`` keeps every height.
        max_depth_m: keep pixels with ``depth <= max_depth_m``; ``None`` = no cut (the paper).
        stride_px: keep every ``stride_px``-th row and column of the depth map (1 = all pixels).
        sparsify_beams: simulate a LiDAR of this many beams (64 = KITTI's HDL-64E, as the
            pseudo-LiDAR++ ``kitti_sparsify`` tool): at most one point, the nearest, per
            (beam, azimuth) cell. ``None`` keeps the dense cloud.
        sparsify_azimuth_bins: azimuth cells over the ±45° field of the sparsifier.
        frustum_only: keep only points inside the camera frustum: projecting inside image_2 and
            at least ``frustum_near_m`` ahead of the LiDAR (velodyne x), as F-PointNet's
            ``get_lidar_in_image_fov``. Back-projected pixels are inside the image by
            construction, so for depth maps only the near plane removes points.
        frustum_near_m: the frustum's near plane in metres along velodyne x (F-PointNet: 2.0).
    """

    max_height_m: float = 1.0
    max_depth_m: float | None = None
    stride_px: int = 1
    sparsify_beams: int | None = None
    sparsify_azimuth_bins: int = 512
    frustum_only: bool = False
    frustum_near_m: float = 2.0

    def __post_init__(self) -> None:
        if math.isnan(self.max_height_m):
            raise ValueError("PseudoLidarSettings.max_height_m: expected a number or inf, got NaN")
        if self.max_depth_m is not None and not self.max_depth_m > 0:
            raise ValueError(f"PseudoLidarSettings.max_depth_m: expected > 0 or None, got {self.max_depth_m}")
        if int(self.stride_px) != self.stride_px or self.stride_px < 1:
            raise ValueError(f"PseudoLidarSettings.stride_px: expected an integer >= 1, got {self.stride_px}")
        if self.sparsify_beams is not None and (int(self.sparsify_beams) != self.sparsify_beams
                                                or self.sparsify_beams < 1):
            raise ValueError("PseudoLidarSettings.sparsify_beams: expected an integer >= 1 or None, "
                             f"got {self.sparsify_beams}")
        if int(self.sparsify_azimuth_bins) != self.sparsify_azimuth_bins or self.sparsify_azimuth_bins < 1:
            raise ValueError("PseudoLidarSettings.sparsify_azimuth_bins: expected an integer >= 1, "
                             f"got {self.sparsify_azimuth_bins}")
        if not math.isfinite(self.frustum_near_m):
            raise ValueError(f"PseudoLidarSettings.frustum_near_m: expected a finite number, got {self.frustum_near_m}")

    def backprojection_options(self) -> dict[str, object]:
        """The keyword options of :func:`pseudolidar.depth_to_points_velo` these settings select."""
        return {"max_depth_m": self.max_depth_m, "stride_px": int(self.stride_px),
                "sparsify_beams": self.sparsify_beams,
                "sparsify_azimuth_bins": int(self.sparsify_azimuth_bins),
                "frustum_only": self.frustum_only, "frustum_near_m": self.frustum_near_m}


def preset(name: str) -> PseudoLidarSettings:
    """A named configuration.

    * ``paper``: the published one (the defaults).
    * ``cpu-small``: every second row and column (a quarter of the points) and no points beyond
      80 m, so that a 2-core CPU trains and runs the detector on it in minutes.

    >>> preset("cpu-small").stride_px
    2
    """
    if name == "paper":
        return PseudoLidarSettings()
    if name == "cpu-small":
        return PseudoLidarSettings(stride_px=2, max_depth_m=80.0)
    raise ValueError(f"unknown pseudo-LiDAR preset {name!r} (one of {', '.join(PRESET_NAMES)})")
