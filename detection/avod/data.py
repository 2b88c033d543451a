"""One frame's AVOD inputs: FOV-cut cloud, ground plane, BEV maps, non-empty anchors, image, labels.

Ground planes: a ``planes/`` folder beside the clouds' folder (``<points_dir>/../planes``, the
KITTI layout, and the pseudo-LiDAR recipe's swapped one) is read when present; otherwise the plane
is fitted on the frame's own cloud (:func:`detection.avod.planes.fit_ground_plane`).

Flip (training augmentation): points, boxes and plane are mirrored ``x -> -x``, ``ry -> π - ry``
(wrapped), the image is mirrored left-right; the network projects anchors into the image with the
unmirrored geometry and mirrors ``u`` (:func:`detection.avod.encoding.anchors_to_image_boxes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from kitti.boxes import wrap_angle
from kitti.layout import KittiRoot
from kitti.velodyne import read_velodyne
from detection.avod.anchors import grid_anchors, non_empty_anchors
from detection.avod.bev import bev_maps
from detection.avod.planes import fit_ground_plane, read_plane_file
from detection.avod.settings import AvodSettings
from detection.fov import frame_cloud

#: Image normalisation (ImageNet mean / std of RGB in [0, 1]).
IMAGE_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGE_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@dataclass(frozen=True, eq=False)
class FrameInputs:
    """Inputs and labels of one frame (all in the possibly mirrored frame).

    Attributes:
        frame_id: the frame.
        bev: (C, rows, cols) float32 BEV maps.
        image: (3, H, W) float32 normalised resized image, or ``None``.
        anchors: (N, 6) float64 non-empty anchors.
        gt_boxes: (M, 7) float64 ``[x, y, z, h, w, l, ry]`` labels of the class inside the BEV area.
        plane: (4,) ground plane.
        P2: (3, 4) projection of the unmirrored frame.
        image_wh: (W, H) of the original image.
        flipped: mirrored.
    """

    frame_id: str
    bev: np.ndarray
    image: np.ndarray | None
    anchors: np.ndarray
    gt_boxes: np.ndarray
    plane: np.ndarray
    P2: np.ndarray
    image_wh: tuple[int, int]
    flipped: bool


def planes_dir_for(points_dir: Path) -> Path | None:
    """``<points_dir>/../planes`` when it is a folder, else ``None``."""
    p = Path(points_dir).parent / "planes"
    return p if p.is_dir() else None


def frame_plane(points_rect: np.ndarray, frame_id: str, planes_dir: Path | None, seed: int) -> np.ndarray:
    """The frame's plane: ``planes_dir/<frame>.txt`` when present, else the RANSAC fit of the cloud."""
    if planes_dir is not None and (planes_dir / f"{frame_id}.txt").is_file():
        return read_plane_file(planes_dir / f"{frame_id}.txt")
    return fit_ground_plane(points_rect, seed=seed)


#: The standard deviation of the colour jitter's α.
JITTER_STD: float = 0.1


def draw_jitter(rng: np.random.Generator) -> np.ndarray:
    """The three α of one :func:`pca_jitter`, ``α ~ N(0, JITTER_STD)``."""
    return rng.normal(0.0, JITTER_STD, 3)


def pca_jitter(image_u8: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """AlexNet colour jitter: add ``eigvec · (α · eigval)`` (``alpha``: :func:`draw_jitter`) of the
    image's RGB covariance (values in [0, 1]) to every pixel; returns float32 in [0, 1]."""
    img = image_u8.astype(np.float32) / 255.0
    cov = np.cov(img.reshape(-1, 3), rowvar=False)
    eigval, eigvec = np.linalg.eigh(cov)
    shift = eigvec @ (np.asarray(alpha) * eigval)
    return np.clip(img + shift.astype(np.float32), 0.0, 1.0)


def label_boxes(root: KittiRoot, frame_id: str, settings: AvodSettings) -> np.ndarray:
    """(M, 7) labels of ``settings.class_name`` whose bottom centre lies in the BEV area."""
    (x0, x1), (z0, z1) = settings.x_range_m, settings.z_range_m
    rows = [[o.x, o.y, o.z, o.h, o.w, o.l, o.ry] for o in root.labels(frame_id)
            if o.type == settings.class_name and x0 <= o.x < x1 and z0 <= o.z < z1]
    return np.array(rows, dtype=np.float64).reshape(-1, 7)


def load_frame(root: KittiRoot, points_dir: Path, frame_id: str, settings: AvodSettings,
               sizes_lwh: np.ndarray, *, planes: dict[str, np.ndarray] | None = None,
               planes_dir: Path | None = None, flip: bool = False, with_labels: bool = True,
               jitter_alpha: np.ndarray | None = None) -> FrameInputs:
    """Build one frame's :class:`FrameInputs`.

    Args:
        root: KITTI root (calib, image_2, label_2).
        points_dir: folder of velodyne-format clouds.
        frame_id: the frame.
        settings: grid, anchors, image size.
        sizes_lwh: (K, 3) anchor sizes.
        planes: a cache frame -> plane (filled here; planes are of the unmirrored frame).
        planes_dir: a ``planes/`` folder to read (see :func:`planes_dir_for`).
        flip: mirror the frame.
        with_labels: read ``label_2`` (training); otherwise ``gt_boxes`` is empty.
        jitter_alpha: apply :func:`pca_jitter` with these α (``None``: no jitter).
    """
    calib = root.calib(frame_id)
    hw = root.image_hw(frame_id)
    cloud = frame_cloud(read_velodyne(Path(points_dir) / f"{frame_id}.bin"), calib, hw,
                        min_x_velo_m=settings.fov_min_x_velo_m)
    pts = cloud.points_rect.astype(np.float64)
    if planes is not None and frame_id in planes:
        plane = planes[frame_id]
    else:
        plane = frame_plane(pts, frame_id, planes_dir, settings.seed + settings.ransac_seed_offset)
        if planes is not None:
            planes[frame_id] = plane
    gt = label_boxes(root, frame_id, settings) if with_labels else np.zeros((0, 7))
    if flip:
        pts = pts * np.array([-1.0, 1.0, 1.0])
        plane = plane * np.array([-1.0, 1.0, 1.0, 1.0])
        gt = gt.copy()
        gt[:, 0] = -gt[:, 0]
        gt[:, 6] = wrap_angle(np.pi - gt[:, 6])
    bev = bev_maps(pts, plane, settings)
    anchors = non_empty_anchors(grid_anchors(sizes_lwh, plane, settings), bev.counts, settings)
    image = None
    if settings.use_image:
        raw = root.image(frame_id)
        img = pca_jitter(raw, jitter_alpha) if jitter_alpha is not None else raw.astype(np.float32) / 255.0
        if flip:
            img = img[:, ::-1]
        img = cv2.resize(np.ascontiguousarray(img), (settings.image_hw[1], settings.image_hw[0]),
                         interpolation=cv2.INTER_LINEAR)
        image = ((img - IMAGE_MEAN) / IMAGE_STD).transpose(2, 0, 1).astype(np.float32)
    return FrameInputs(frame_id, bev.maps, image, anchors, gt, plane, calib.P2.copy(), (hw[1], hw[0]), flip)
