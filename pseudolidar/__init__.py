"""Pseudo-LiDAR: depth maps -> KITTI velodyne-format clouds, and looking at clouds (Fig. 6).

Public names::

    depth_to_points_velo(depth_m, calib, max_height_m=1.0, **options) -> (N, 4) float32
    points_velo_to_depth(points_velo, calib, image_hw) -> (H, W) float32
    PseudoLidarSettings, preset(name)
    stage.run_pseudolidar(...), stage.run_from_gt_depth(...)
    viz.render_bev(...), viz.render_front(...), viz.write_ply(...), viz.open3d_view(...)
"""

from pseudolidar.backproject import (backprojection_affine, depth_to_points_velo,
                                     depth_to_points_velo_reference, points_velo_to_depth)
from pseudolidar.filters import frustum_mask, height_mask, project_to_pixels, sparsify_beams_mask
from pseudolidar.settings import PRESET_NAMES, PseudoLidarSettings, preset

#: Bump when the stage's output for the same inputs and settings changes (cache key).
CODE_VERSION = "1"

__all__ = [
    "CODE_VERSION", "PRESET_NAMES", "PseudoLidarSettings", "backprojection_affine",
    "depth_to_points_velo", "depth_to_points_velo_reference", "frustum_mask", "height_mask",
    "points_velo_to_depth", "preset", "project_to_pixels", "sparsify_beams_mask",
]
