"""Frames to predict on, presented as a KITTI ``training/`` folder the stages read.

The stages read ``ROOT/training/{image_2,calib[,velodyne]}``. Prediction reads frames from
elsewhere too; each source is turned into such a folder of links (no image is copied):

* :func:`part_view` — a KITTI root's ``testing/`` (or any part): ``VIEW/training/<kind>`` links
  to ``ROOT/testing/<kind>``. No ``label_2``, no ``velodyne`` needed.
* :func:`images_view` — a folder of one's own images with one calibration for all of them
  (:func:`calibration_from_intrinsics` or a KITTI calib file): the images are linked as
  ``NNNNNN.png`` (other formats are converted to PNG), the calibration is written per frame, and
  ``frames.csv`` maps each id to the image's name.

One's own camera in KITTI's convention
--------------------------------------
:func:`calibration_from_intrinsics` builds a calibration whose rect frame is the camera's own
(``R0_rect`` = I, ``P2 = [K | 0]``) and whose velodyne frame is KITTI's: x forward, y left, z up,
its origin ``lidar_height_m`` above the road and ``lidar_forward_m`` along the optical axis from
the camera. Pseudo-LiDAR's height cut (``max_height_m``, 1 m above the LiDAR origin) and the 3D
detector's velodyne-frame inputs then mean what they meant in training when ``lidar_height_m``
is the training rig's LiDAR height (KITTI: 1.73 m, camera 1.65 m).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from kitti.calib import Calibration
from kitti.errors import KittiFormatError
from kitti.fileio import atomic_write_text
from kitti.layout import KittiRoot

#: KITTI's rig (Geiger et al. 2013, Fig. 3): camera 1.65 m, Velodyne 1.73 m above the road, the
#: Velodyne 0.27 m behind the cameras.
KITTI_CAMERA_HEIGHT_M = 1.65
KITTI_LIDAR_HEIGHT_M = 1.73
KITTI_LIDAR_FORWARD_M = -0.27

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def parse_intrinsics(text: str) -> tuple[float, float, float, float]:
    """``"fx,fy,cx,cy"`` -> four floats (ValueError naming the expected form)."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4 or not all(np.isfinite(values)) or values[0] <= 0 or values[1] <= 0:
        raise ValueError(f"intrinsics: expected fx,fy,cx,cy in pixels (fx, fy > 0), got {text!r}")
    return values  # type: ignore[return-value]


def calibration_from_intrinsics(fx: float, fy: float, cx: float, cy: float, *,
                                camera_height_m: float = KITTI_CAMERA_HEIGHT_M,
                                lidar_height_m: float = KITTI_LIDAR_HEIGHT_M,
                                lidar_forward_m: float = 0.0) -> Calibration:
    """A KITTI calibration for a camera of these intrinsics (see the module docstring)."""
    P2 = np.array([[fx, 0.0, cx, 0.0], [0.0, fy, cy, 0.0], [0.0, 0.0, 1.0, 0.0]])
    # velodyne (x fwd, y left, z up) -> camera (x right, y down, z fwd); the LiDAR origin sits at
    # camera (0, -(lidar_height - camera_height), lidar_forward) (y points down)
    R = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    t = np.array([0.0, camera_height_m - lidar_height_m, lidar_forward_m])
    return Calibration(P2=P2, R0_rect=np.eye(3), Tr_velo_to_cam=np.hstack([R, t[:, None]]),
                       P0=P2, P1=P2, P3=P2)


def part_view(root: KittiRoot, dest: Path, kinds: Sequence[str] = ("image_2", "calib", "velodyne")) -> Path:
    """``dest/training/<kind>`` linked to ``root``'s part's folders (those that exist); returns
    ``dest``, a root whose ``training/`` is ``root``'s ``testing/`` (or whichever part)."""
    dest = Path(dest)
    base = dest / "training"
    base.mkdir(parents=True, exist_ok=True)
    for kind in kinds:
        src, link = root.folder(kind), base / kind
        if src.is_dir() and not link.exists():
            os.symlink(src.resolve(), link)
    return dest


def list_images(folder: Path) -> list[Path]:
    """The images of a folder (by suffix), sorted by name; an empty folder is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise KittiFormatError(folder, None, "image folder not found")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not images:
        raise KittiFormatError(folder, None, f"no images ({', '.join(IMAGE_SUFFIXES)}) in the folder")
    return images


def images_view(images: Sequence[Path], calib: Calibration, dest: Path) -> tuple[Path, tuple[str, ...]]:
    """A root of ``images`` with ``calib`` for each; returns (root, ids). Images named by number
    (``000123.png``, ``42.jpg``) keep it as their id; otherwise they are numbered ``000000 …`` in
    name order. ``dest/frames.csv`` maps id -> image path."""
    import cv2

    dest = Path(dest)
    img_dir, cal_dir = dest / "training" / "image_2", dest / "training" / "calib"
    img_dir.mkdir(parents=True, exist_ok=True)
    cal_dir.mkdir(parents=True, exist_ok=True)
    text = calib.to_text()
    ids = []
    rows = [("frame_id", "image")]
    stems = [Path(p).stem for p in images]
    numbered = all(st.isdigit() for st in stems) and len({st.zfill(6) for st in stems}) == len(stems)
    for i, src in enumerate(images):
        fid = stems[i].zfill(6) if numbered else f"{i:06d}"
        target = img_dir / f"{fid}.png"
        if not target.exists():
            if src.suffix.lower() == ".png":
                os.symlink(Path(src).resolve(), target)
            else:
                img = cv2.imread(str(src), cv2.IMREAD_COLOR)
                if img is None:
                    raise KittiFormatError(src, None, "image not readable")
                cv2.imwrite(str(target), img)
        atomic_write_text(cal_dir / f"{fid}.txt", text)
        ids.append(fid)
        rows.append((fid, str(src)))
    with open(dest / "frames.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return dest, tuple(ids)
