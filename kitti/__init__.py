"""foresee's shared KITTI core: calibration, labels, boxes, layout, velodyne and depth IO.

Every stage package imports from here and from nowhere else in foresee.
"""

from kitti.boxes import Boxes3D, box_bev_corners, box_corners_rect, points_in_box_mask
from kitti.calib import Calibration
from kitti.classes import DEPTH_FOREGROUND_CLASSES, EVAL_CLASSES, KITTI_TYPES, MEAN_SIZE_LWH
from kitti.depth_io import (check_depth_map, read_depth, read_depth_npz, read_depth_png,
                            write_depth_npz, write_depth_png)
from kitti.errors import KittiFormatError
from kitti.fileio import atomic_write_bytes, atomic_write_text
from kitti.labels import (Difficulty, Object3d, parse_label_line, read_label_file,
                          write_label_file)
from kitti.layout import KittiRoot, builtin_split, read_image, read_split_file
from kitti.velodyne import read_velodyne, write_velodyne

__all__ = [
    "Boxes3D", "Calibration", "DEPTH_FOREGROUND_CLASSES", "Difficulty", "EVAL_CLASSES",
    "KITTI_TYPES", "KittiFormatError", "KittiRoot", "MEAN_SIZE_LWH", "Object3d",
    "atomic_write_bytes", "atomic_write_text", "box_bev_corners", "box_corners_rect",
    "builtin_split", "check_depth_map", "parse_label_line", "points_in_box_mask", "read_depth",
    "read_depth_npz", "read_depth_png", "read_image", "read_label_file", "read_split_file",
    "read_velodyne", "write_depth_npz", "write_depth_png", "write_label_file", "write_velodyne",
]
