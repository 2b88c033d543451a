"""Frustums: the points of one velodyne-format cloud whose image projection falls in a 2D box.

Frames: clouds arrive in the **velodyne** frame (x forward, y left, z up; KITTI ``.bin``) and
are moved to the **rect** camera frame (x right, y down, z forward), where every frustum, box and
network input lives. Boxes: F-PointNet's box centre is the **geometric** centre (the label's
bottom centre moved up by h/2); sizes are (l, w, h).

Rotation to the centre view (``provider.rotate_pc_along_y``): a frustum whose 2D-box centre ray has
azimuth ``φ = atan2(z, x)`` is turned by ``rot = π/2 - φ`` about camera y, with
``[x', z'] = [[cos rot, -sin rot], [sin rot, cos rot]] · [x, z]``, so the ray ends on +z. In that
frame a box with rotation ``ry`` has heading ``ry - rot``.

Everything is per frame and streamed: a frame's cloud is read, its frustums are cut, and only the
frustums (subsampled to ``cache_points``) are kept — never a whole-dataset pickle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kitti.boxes import points_in_box_mask
from kitti.calib import Calibration
from kitti.labels import Object3d
from detection.fov import FrameCloud, frame_cloud  # noqa: F401  (re-exported)
from detection.frustum_pointnet.codec import angle_to_class, size_to_class
from detection.frustum_pointnet.settings import ONEHOT_CLASSES, FPointNetSettings

#: Depth (m) at which the 2D-box centre is back-projected to find the frustum's axis (original: 20).
FRUSTUM_AXIS_DEPTH_M: float = 20.0


def in_box2d_mask(uv_img: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """(N,) bool: pixels with ``x1 <= u < x2`` and ``y1 <= v < y2`` (the original's test)."""
    x1, y1, x2, y2 = box
    u, v = uv_img[:, 0], uv_img[:, 1]
    return (u >= x1) & (u < x2) & (v >= y1) & (v < y2)


def frustum_rotation(box: tuple[float, float, float, float], calib: Calibration) -> float:
    """The rotation ``rot = π/2 + frustum_angle`` that turns a 2D box's frustum to the centre view.

    ``frustum_angle = -atan2(z, x)`` of the box centre back-projected at 20 m (``prepare_data``).
    """
    x1, y1, x2, y2 = box
    centre = calib.img_to_rect(np.array([[(x1 + x2) / 2.0, (y1 + y2) / 2.0]]),
                               np.array([FRUSTUM_AXIS_DEPTH_M]))[0]
    return float(np.pi / 2 - np.arctan2(centre[2], centre[0]))


def rotate_about_y(points: np.ndarray, rot: float) -> np.ndarray:
    """Rotate (N, >=3) points about camera y: ``[x', z'] = R(rot) · [x, z]``; other columns kept.

    ``R = [[cos, -sin], [sin, cos]]`` (``rotate_pc_along_y``). ``rotate_about_y(p, -rot)`` undoes it.
    """
    p = np.array(points, dtype=np.float64 if np.asarray(points).dtype == np.float64 else np.float32)
    c, s = np.cos(rot), np.sin(rot)
    x, z = p[:, 0].copy(), p[:, 2].copy()
    p[:, 0] = c * x - s * z
    p[:, 2] = s * x + c * z
    return p


def jitter_box2d(box: tuple[float, float, float, float], rng: np.random.Generator,
                 ratio: float = 0.1) -> tuple[float, float, float, float]:
    """The original ``random_shift_box2d``: centre ±ratio·(w, h), w and h ×U(1 - ratio, 1 + ratio)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    cx2 = cx + w * ratio * (rng.random() * 2 - 1)
    cy2 = cy + h * ratio * (rng.random() * 2 - 1)
    w2 = w * (1 + (rng.random() * 2 - 1) * ratio)
    h2 = h * (1 + (rng.random() * 2 - 1) * ratio)
    return (cx2 - w2 / 2.0, cy2 - h2 / 2.0, cx2 + w2 / 2.0, cy2 + h2 / 2.0)


def geometric_center_rect(obj: Object3d) -> np.ndarray:
    """(3,) centre of a label's box in rect: the bottom centre moved up by h/2 (camera y down)."""
    return np.array([obj.x, obj.y - obj.h / 2.0, obj.z])


@dataclass(frozen=True, eq=False)
class ObjectFrustum:
    """One ground-truth object's frustum region, stored once and jittered on the fly in training.

    The region is the object's 2D box grown to cover every jitter of ``box2d_shift_ratio``.

    Attributes:
        frame_id: the frame.
        type: the object's class.
        box2d: (4,) the ground-truth 2D box (x1, y1, x2, y2) in pixels.
        points_rect: (K, 3) float32 rect points of the region (at most ``cache_points``).
        intensity: (K,) float32 reflectance.
        uv_img: (K, 2) float32 pixel coordinates.
        seg: (K,) bool, inside the object's 3D box.
        center_rect: (3,) geometric box centre, rect frame.
        size_lwh: (3,) box size (l, w, h) metres.
        ry: rotation about camera y.
        calib: the frame's calibration (for the centre-view rotation of jittered boxes).
    """

    frame_id: str
    type: str
    box2d: np.ndarray
    points_rect: np.ndarray
    intensity: np.ndarray
    uv_img: np.ndarray
    seg: np.ndarray
    center_rect: np.ndarray
    size_lwh: np.ndarray
    ry: float
    calib: Calibration

    @property
    def nbytes(self) -> int:
        return int(self.points_rect.nbytes + self.intensity.nbytes + self.uv_img.nbytes + self.seg.nbytes)


def object_frustums(frame_id: str, cloud: FrameCloud, calib: Calibration, objects: list[Object3d],
                    settings: FPointNetSettings, rng: np.random.Generator) -> list[ObjectFrustum]:
    """Cut the training frustum regions of one frame's labelled objects.

    Objects of ``settings.classes`` whose 2D box is at least ``min_box_height_px`` high and whose
    3D box holds at least one point of the region are kept (``prepare_data``'s drops). Regions
    larger than ``cache_points`` are uniformly subsampled with ``rng``.
    """
    out = []
    r = settings.box2d_shift_ratio
    grow = r + (1 + r) / 2.0  # half extent of the widest jittered box, in box sizes
    for obj in objects:
        if obj.type not in settings.classes or obj.height_px < settings.min_box_height_px:
            continue
        w, h = obj.x2 - obj.x1, obj.y2 - obj.y1
        cx, cy = (obj.x1 + obj.x2) / 2.0, (obj.y1 + obj.y2) / 2.0
        region = (cx - grow * w, cy - grow * h, cx + grow * w, cy + grow * h)
        idx = np.flatnonzero(in_box2d_mask(cloud.uv_img, region))
        if idx.size > settings.cache_points:
            idx = np.sort(rng.choice(idx, settings.cache_points, replace=False))
        pts = cloud.points_rect[idx]
        seg = points_in_box_mask(pts, np.array(obj.loc_rect), np.array(obj.hwl), obj.ry)
        if not seg.any():
            continue
        out.append(ObjectFrustum(frame_id, obj.type, np.array(obj.bbox), pts, cloud.intensity[idx],
                                 cloud.uv_img[idx], seg, geometric_center_rect(obj),
                                 np.array([obj.l, obj.w, obj.h]), float(obj.ry), calib))
    return out


@dataclass(frozen=True, eq=False)
class TrainingSample:
    """One network input with its targets, in the centre-view frame.

    Attributes:
        points: (num_points, 4) float32 ``[x, y, z, intensity]`` rotated to the centre view.
        seg: (num_points,) int64 1 = inside the 3D box.
        center: (3,) float32 geometric box centre (rotated frame).
        heading_class, heading_residual: heading bin and residual (radians) of ``ry - rot``.
        size_class, size_residual: template index and (3,) residual (l, w, h) metres.
        onehot: (3,) float32 class one-hot (Car, Pedestrian, Cyclist).
        rot: the centre-view rotation applied.
    """

    points: np.ndarray
    seg: np.ndarray
    center: np.ndarray
    heading_class: int
    heading_residual: float
    size_class: int
    size_residual: np.ndarray
    onehot: np.ndarray
    rot: float


def onehot(type_name: str) -> np.ndarray:
    """(3,) float32 one-hot of a class in F-PointNet's (Car, Pedestrian, Cyclist) order."""
    v = np.zeros(len(ONEHOT_CLASSES), dtype=np.float32)
    v[ONEHOT_CLASSES.index(type_name)] = 1.0
    return v


def shift_frustum(points: np.ndarray, center: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The original depth-shift augmentation (``provider.py``), reproduced literally.

    ``dist = sqrt(cx² + cy²)``; ``shift = clip(randn · 0.05 · dist, 0.8 · dist, 1.2 · dist)`` is
    added to every z and to cz. The clip bounds make the shift always 0.8–1.2·dist (probably a bug
    upstream; kept because the released models were trained with it).
    """
    dist = float(np.sqrt(center[0] ** 2 + center[1] ** 2))
    shift = float(np.clip(rng.standard_normal() * dist * 0.05, dist * 0.8, dist * 1.2))
    p = points.copy()
    p[:, 2] += shift
    c = center.copy()
    c[2] += shift
    return p, c


def training_sample(fr: ObjectFrustum, settings: FPointNetSettings, rng: np.random.Generator, *,
                    augment: bool) -> TrainingSample:
    """Draw one network input from a stored frustum region.

    With ``augment``: the ground-truth 2D box is jittered (``jitter_box2d``; redrawn up to 10
    times when the jittered frustum misses every object point, then the unjittered box), then
    flip and shift as the original; without: the ground-truth box as is. Points are drawn
    ``num_points`` times with replacement (``np.random.choice(N, npoints, replace=True)``).
    """
    gt_box = tuple(float(v) for v in fr.box2d)
    box = gt_box
    mask = in_box2d_mask(fr.uv_img, box)
    if augment:
        for _ in range(10):
            cand = jitter_box2d(gt_box, rng, settings.box2d_shift_ratio)
            m = in_box2d_mask(fr.uv_img, cand)
            if (fr.seg & m).any():
                box, mask = cand, m
                break
    idx = np.flatnonzero(mask)
    if idx.size == 0:  # the unjittered box always holds the object's points, but be safe
        idx = np.flatnonzero(fr.seg)
    rot = frustum_rotation(box, fr.calib)
    choice = idx[rng.integers(0, idx.size, settings.num_points)]
    pts = np.concatenate([fr.points_rect[choice], fr.intensity[choice, None]], axis=1).astype(np.float64)
    pts = rotate_about_y(pts, rot)
    center = rotate_about_y(fr.center_rect[None, :], rot)[0]
    heading = fr.ry - rot
    if augment and settings.random_flip and rng.random() > 0.5:
        pts[:, 0] *= -1
        center[0] *= -1
        heading = np.pi - heading
    if augment and settings.random_shift:
        pts, center = shift_frustum(pts, center, rng)
    hcls, hres = angle_to_class(heading)
    scls, sres = size_to_class(fr.size_lwh, fr.type)
    return TrainingSample(pts.astype(np.float32), fr.seg[choice].astype(np.int64),
                          center.astype(np.float32), int(hcls), float(hres), scls,
                          sres.astype(np.float32), onehot(fr.type), rot)


def detection_input(cloud: FrameCloud, box: tuple[float, float, float, float], calib: Calibration,
                    num_points: int, rng: np.random.Generator) -> tuple[np.ndarray, float, int] | None:
    """The network input of one 2D detection: (points (num_points, 4) float32, rot, frustum size).

    Returns ``None`` when the frustum holds no point (the caller skips and counts it).
    """
    idx = np.flatnonzero(in_box2d_mask(cloud.uv_img, box))
    if idx.size == 0:
        return None
    rot = frustum_rotation(box, calib)
    choice = idx[rng.integers(0, idx.size, num_points)]
    pts = np.concatenate([cloud.points_rect[choice], cloud.intensity[choice, None]], axis=1)
    return rotate_about_y(pts.astype(np.float64), rot).astype(np.float32), rot, int(idx.size)
