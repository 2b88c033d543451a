"""The example pictures of docs/pseudolidar.md, from a real KITTI frame.

Reproduce (writes docs/img/pl_*.png)::

    python -m pseudolidar.examples --data tests/data/kitti_sample --frame 000008 --out docs/img

No depth network runs here, so the dense "pseudo-LiDAR" of the pictures is back-projected from
the frame's LiDAR depth filled in by linear interpolation (columns, then rows) (a stand-in for a predicted depth map);
it shows what the stage does with a dense map, not a model's accuracy.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from kitti import KittiRoot
from pseudolidar.backproject import depth_to_points_velo, points_velo_to_depth
from pseudolidar.fill import fill_depth
from pseudolidar.viz import COLORS, BevView, CloudLayer, render_bev, render_front, write_png


def example_pictures(data_root: Path, frame: str, out_dir: Path) -> list[Path]:
    """BEV (LiDAR blue over dense pseudo-LiDAR yellow, ground-truth boxes green) and two front
    views (the LiDAR scan, the dense pseudo-LiDAR) of one frame; returns the written paths."""
    root = KittiRoot(data_root)
    calib, hw, velo = root.calib(frame), root.image_hw(frame), root.velodyne(frame)
    labels = root.labels(frame)
    dense = fill_depth(points_velo_to_depth(velo, calib, hw))
    pseudo = depth_to_points_velo(dense, calib, 1.0)
    bev = render_bev([CloudLayer(pseudo, COLORS["yellow"], f"pseudo-LiDAR (interpolated LiDAR depth) {len(pseudo)} pts"),
                      CloudLayer(velo, COLORS["blue"], f"LiDAR {len(velo)} pts")],
                     calib, gt_objects=labels, view=BevView(x_range_m=(-5.0, 55.0), y_range_m=(-30.0, 30.0)),
                     title=f"KITTI training {frame}")
    image = root.image(frame)
    paths = [out_dir / f"pl_bev_{frame}.png", out_dir / f"pl_front_lidar_{frame}.png",
             out_dir / f"pl_front_pseudo_{frame}.png"]
    write_png(paths[0], bev)
    write_png(paths[1], render_front(image, velo, calib, gt_objects=labels, max_depth_m=50.0))
    write_png(paths[2], render_front(image, pseudo, calib, gt_objects=labels, max_depth_m=50.0,
                                     point_size_px=1))
    return paths


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Write the pseudo-LiDAR example pictures.")
    ap.add_argument("--data", type=Path, default=Path("tests/data/kitti_sample"))
    ap.add_argument("--frame", default="000008")
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    args = ap.parse_args(argv)
    for p in example_pictures(args.data, args.frame, args.out):
        print(p)


if __name__ == "__main__":
    main()
