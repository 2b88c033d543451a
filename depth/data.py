"""Depth training data: frames (image, ground-truth depth, label boxes), foreground masks from 2D
boxes (the paper) or from object surfaces (``foresee-obj``: pixels whose ground-truth point lies in
a 3D label box), resizing that keeps sparse ground truth, and the paper's augmentation.

Conventions: images (H, W, 3) uint8 RGB; depth (H, W) float32 metres, 0 = no ground truth; masks
(H, W) bool; boxes (N, 4) float64 ``[x1, y1, x2, y2]`` in image_2 pixels. A box covers the pixel
columns ``floor(x1) … floor(x2)`` and rows ``floor(y1) … floor(y2)`` (inclusive).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from depth.bins import DepthBins
from depth.settings import DepthSettings
from kitti import (DEPTH_FOREGROUND_CLASSES, Calibration, KittiFormatError, KittiRoot, Object3d,
                   points_in_box_mask)
from kitti.progress import tqdm_disable



@dataclass(frozen=True)
class Frame:
    """One frame's inputs for the depth stage (full resolution)."""

    frame_id: str
    image: np.ndarray        # (H, W, 3) uint8 RGB
    depth_m: np.ndarray      # (H, W) float32, 0 = no ground truth
    labels: tuple[Object3d, ...]


def normalize_image(image: np.ndarray, encoder: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32, normalised as ``encoder``'s weights expect
    (:func:`backbones.normalisation`: ``(rgb / 255 − mean) / std``)."""
    from backbones import normalisation

    mean, std = normalisation(encoder)
    x = (np.asarray(image, dtype=np.float32) / 255.0 - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def labels_of(labels: Sequence[Object3d], classes: Sequence[str] | None = None) -> list[Object3d]:
    """The labels whose type is in ``classes`` (None or empty: all but DontCare)."""
    return [o for o in labels if (o.type in classes if classes else o.type != "DontCare")]


def boxes_of(labels: Sequence[Object3d], classes: Sequence[str] | None = None) -> np.ndarray:
    """(N, 4) 2D boxes of the labels whose type is in ``classes`` (None: all but DontCare)."""
    return np.asarray([o.bbox for o in labels_of(labels, classes)], dtype=np.float64).reshape(-1, 4)


def train_fg_boxes(labels: Sequence[Object3d], settings: DepthSettings, rng: np.random.Generator) -> np.ndarray:
    """Training foreground boxes: area > ``fg_min_area_px2``, at most ``fg_max_boxes`` (random)."""
    boxes = boxes_of(labels, settings.fg_train_classes or None)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    boxes = boxes[area > settings.fg_min_area_px2]
    if len(boxes) > settings.fg_max_boxes:
        boxes = boxes[np.sort(rng.choice(len(boxes), settings.fg_max_boxes, replace=False))]
    return boxes


def eval_fg_boxes(labels: Sequence[Object3d]) -> np.ndarray:
    """Evaluation foreground boxes: Car, Van, Truck, Pedestrian, Cyclist, Tram (docs/paper.md §2)."""
    return boxes_of(labels, DEPTH_FOREGROUND_CLASSES)


def boxes_mask(image_hw: tuple[int, int], boxes: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """(H, W) bool mask of the union of ``boxes`` (given at full resolution, scaled by ``scale``)."""
    h, w = image_hw
    mask = np.zeros((h, w), dtype=bool)
    for x1, y1, x2, y2 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * scale:
        c0, r0 = max(int(np.floor(x1)), 0), max(int(np.floor(y1)), 0)
        c1, r1 = min(int(np.floor(x2)) + 1, w), min(int(np.floor(y2)) + 1, h)
        if c1 > c0 and r1 > r0:
            mask[r0:r1, c0:c1] = True
    return mask


# ---------------------------------------------------------------------------- object surfaces
#: An object's pixels start this far above its box's bottom face (drops the road it stands on).
OBJECT_BOTTOM_MARGIN_M = 0.05
#: Tolerance on the other faces (ground truth stored in 1/256 m steps, meshes touch the faces).
OBJECT_FACE_MARGIN_M = 0.02


def object_pixel_mask(gt_depth_m: np.ndarray, obj: Object3d, calib: Calibration) -> np.ndarray:
    """(H, W) bool: the pixels of ``obj`` — inside its 2D box (``boxes_mask`` convention), with ground
    truth, whose ground-truth point (``calib.img_to_rect`` of column, row, depth) lies in its 3D box.

    The box is the label's (bottom centre ``x, y, z``, ``h, w, l``, yaw ``ry`` about camera y),
    its bottom raised by :data:`OBJECT_BOTTOM_MARGIN_M` and its other faces moved out by
    :data:`OBJECT_FACE_MARGIN_M`. Occluders in front and background behind fall outside the box.
    The per-object metric (:mod:`depth.metrics`) and the ``foresee-obj`` training foreground
    (:func:`object_surface_mask`) both use this rule.
    """
    in_box2d = boxes_mask(gt_depth_m.shape, np.array([[obj.x1, obj.y1, obj.x2, obj.y2]])) & (gt_depth_m > 0)
    rows, cols = np.nonzero(in_box2d)
    out = np.zeros(gt_depth_m.shape, dtype=bool)
    if rows.size == 0:
        return out
    pts = calib.img_to_rect(np.stack([cols, rows], axis=1).astype(np.float64), gt_depth_m[rows, cols])
    m, top = OBJECT_FACE_MARGIN_M, OBJECT_BOTTOM_MARGIN_M
    loc = np.array([obj.x, obj.y - top, obj.z])
    hwl = np.array([obj.h - top + m, obj.w + 2 * m, obj.l + 2 * m])
    inside = points_in_box_mask(pts, loc, hwl, obj.ry)
    out[rows[inside], cols[inside]] = True
    return out


def object_surface_mask(gt_depth_m: np.ndarray, objects: Sequence[Object3d], calib: Calibration) -> np.ndarray:
    """(H, W) bool: the union of :func:`object_pixel_mask` over ``objects`` — every pixel whose
    ground-truth point lies inside the 3D box of an object whose 2D box holds it."""
    out = np.zeros(gt_depth_m.shape, dtype=bool)
    for obj in objects:
        out |= object_pixel_mask(gt_depth_m, obj, calib)
    return out


def resize_image(image: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Resize an RGB image (area when shrinking, bilinear when growing)."""
    h, w = out_hw
    if image.shape[:2] == (h, w):
        return image
    shrink = h < image.shape[0]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _resample_nearest(depth_m: np.ndarray, out_hw: tuple[int, int]) -> bool:
    """Whether :func:`resize_depth` resamples ``depth_m`` nearest-neighbour (dense map, or growing)."""
    return bool((depth_m > 0).mean() > 0.5 or out_hw[0] > depth_m.shape[0])


def _scatter_index(depth_m: np.ndarray, out_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows and columns of the valid pixels of a sparse map, and the flat index of the output
    pixel that contains each one's centre."""
    h, w = out_hw
    rows, cols = np.nonzero(depth_m > 0)
    r = np.minimum(((rows + 0.5) * h / depth_m.shape[0]).astype(np.int64), h - 1)
    c = np.minimum(((cols + 0.5) * w / depth_m.shape[1]).astype(np.int64), w - 1)
    return rows, cols, r * w + c


def resize_depth(depth_m: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Resize a depth map without inventing depths.

    Dense maps (more than half the pixels valid) are resampled nearest-neighbour; sparse ones
    (projected LiDAR) are scattered: each valid pixel lands in the output pixel containing its
    centre and the nearest depth wins, so that shrinking keeps every point's depth.
    """
    h, w = out_hw
    d = np.asarray(depth_m, dtype=np.float32)
    if d.shape == (h, w):
        return d
    if _resample_nearest(d, out_hw):
        return cv2.resize(d, (w, h), interpolation=cv2.INTER_NEAREST)
    rows, cols, idx = _scatter_index(d, out_hw)
    out = np.full(h * w, np.inf, dtype=np.float32)
    np.minimum.at(out, idx, d[rows, cols])
    out[np.isinf(out)] = 0.0
    return out.reshape(h, w)


def resize_mask_with_depth(mask: np.ndarray, depth_m: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Resize a per-pixel mask of ``depth_m``'s pixels so that it stays the mask of the pixels
    :func:`resize_depth` keeps: a resized pixel is in the mask when the ground-truth pixel its
    depth comes from is (dense: the nearest pixel; sparse: the nearest point of those that land
    in it — a tie between a masked and an unmasked point counts as masked)."""
    h, w = out_hw
    m = np.asarray(mask, dtype=bool)
    d = np.asarray(depth_m, dtype=np.float32)
    if m.shape != d.shape:
        raise ValueError(f"mask {m.shape} and depth {d.shape} differ in size")
    if d.shape == (h, w):
        return m.copy()
    if _resample_nearest(d, out_hw):
        return cv2.resize(m.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
    rows, cols, idx = _scatter_index(d, out_hw)
    nearest = resize_depth(d, out_hw).reshape(-1)
    wins = d[rows, cols] == nearest[idx]
    out = np.zeros(h * w, dtype=bool)
    out[idx[wins & m[rows, cols]]] = True
    return out.reshape(h, w)


def resized_hw(image_hw: tuple[int, int], factor: float) -> tuple[int, int]:
    """Size after resizing by ``factor`` (rounded, at least 16 px)."""
    return max(16, int(round(image_hw[0] * factor))), max(16, int(round(image_hw[1] * factor)))


def check_calibration_fits(root: KittiRoot, frame_id: str, image_hw: tuple[int, int]) -> None:
    """Raise when the image's size cannot be the one its calibration was made for (principal
    point outside the central 40 % … 60 % band of the image)."""
    calib = root.calib(frame_id)
    h, w = image_hw
    if not (0.3 * w < calib.cu < 0.7 * w and 0.3 * h < calib.cv < 0.7 * h):
        raise KittiFormatError(root.path("image_2", frame_id), None,
                               f"image is {w}x{h} but its calibration's principal point is "
                               f"({calib.cu:.0f}, {calib.cv:.0f}): image resized or wrong calib")


def load_frame(root: KittiRoot, frame_id: str, *, with_depth: bool = True) -> Frame:
    """Read one frame and check that image, calibration and ground truth agree in size.

    Raises:
        KittiFormatError: a missing file, or an image/depth size mismatch, naming the file.
    """
    image = root.image(frame_id)
    hw = image.shape[:2]
    check_calibration_fits(root, frame_id, hw)
    depth = np.zeros(hw, dtype=np.float32)
    if with_depth:
        path = root.path("depth_2", frame_id)
        if not path.is_file():
            raise KittiFormatError(path, None, "no depth ground truth for this frame (depth_2/)")
        depth = root.depth(frame_id)
        if depth.shape != hw:
            raise KittiFormatError(path, None, f"depth map is {depth.shape[1]}x{depth.shape[0]} but "
                                   f"image_2 is {hw[1]}x{hw[0]}")
    labels = tuple(root.labels(frame_id)) if root.path("label_2", frame_id).is_file() else ()
    return Frame(frame_id, image, depth, labels)


def augment(image: np.ndarray, depth_m: np.ndarray, fg_mask: np.ndarray, settings: DepthSettings,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random flip, scale (depth divided by the scale) and crop of ``crop_hw`` (padded with
    no-ground-truth where the image is smaller), with the crop's top row at least
    ``crop_top_skip`` when the image is tall enough.

    Returns:
        image (ch, cw, 3) uint8, depth (ch, cw) float32, fg mask (ch, cw) bool.
    """
    if settings.hflip and rng.random() < 0.5:
        image, depth_m, fg_mask = image[:, ::-1], depth_m[:, ::-1], fg_mask[:, ::-1]
    scale = float(settings.scales[rng.integers(len(settings.scales))])
    if scale != 1.0:
        hw = resized_hw(image.shape[:2], scale)
        image = resize_image(np.ascontiguousarray(image), hw)
        depth_m = cv2.resize(np.ascontiguousarray(depth_m), hw[::-1], interpolation=cv2.INTER_NEAREST) / scale
        fg_mask = cv2.resize(np.ascontiguousarray(fg_mask).astype(np.uint8), hw[::-1],
                             interpolation=cv2.INTER_NEAREST).astype(bool)
    ch, cw = settings.crop_hw
    h, w = image.shape[:2]
    top_hi = max(h - ch, 0)
    top = int(rng.integers(min(settings.crop_top_skip, top_hi), top_hi + 1))
    left = int(rng.integers(0, max(w - cw, 0) + 1))
    out_img = np.zeros((ch, cw, 3), dtype=np.uint8)
    out_d = np.zeros((ch, cw), dtype=np.float32)
    out_m = np.zeros((ch, cw), dtype=bool)
    hh, ww = min(ch, h - top), min(cw, w - left)
    out_img[:hh, :ww] = image[top:top + hh, left:left + ww]
    out_d[:hh, :ww] = depth_m[top:top + hh, left:left + ww]
    out_m[:hh, :ww] = fg_mask[top:top + hh, left:left + ww]
    return out_img, out_d, out_m


@dataclass(frozen=True)
class _Prepared:
    image: np.ndarray
    depth_m: np.ndarray
    labels: tuple[Object3d, ...]
    scale: float                     # resized / original
    object_fg: np.ndarray | None     # resized object-surface fg (``fg_source == "objects"``), else None


class DepthTrainSet:
    """Map-style dataset of augmented training crops (a ``torch.utils.data.Dataset`` by duck typing).

    Item ``i`` of epoch ``e`` is drawn with ``numpy.random.default_rng([seed, e, i])``, so a run is
    reproducible for any number of workers. Items are dicts of numpy arrays: ``image`` (3, h, w)
    float32 normalised, ``target_bin`` (h, w) int64 (``IGNORE_BIN`` = no ground truth),
    ``fg_mask`` (h, w) bool.
    """

    def __init__(self, data_root: Path, frame_ids: Sequence[str], settings: DepthSettings,
                 bins: DepthBins, *, progress: bool = False) -> None:
        self.root = KittiRoot(Path(data_root))
        self.frame_ids = tuple(frame_ids)
        if not self.frame_ids:
            raise ValueError("depth training needs at least one frame")
        self.root.check(self.frame_ids, ("image_2", "calib", "depth_2", "label_2"))
        self.settings = settings
        self.bins = bins
        self.epoch = 0
        self._cache: dict[int, _Prepared] = {}
        if settings.cache_images:
            from tqdm import tqdm

            for i in tqdm(range(len(self.frame_ids)), desc="load train frames", disable=tqdm_disable(progress),
                          leave=False):
                self._cache[i] = self._prepare(i)

    def __len__(self) -> int:
        return len(self.frame_ids)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _prepare(self, i: int) -> _Prepared:
        frame = load_frame(self.root, self.frame_ids[i])
        hw = resized_hw(frame.image.shape[:2], self.settings.resize_factor)
        scale = hw[1] / frame.image.shape[1]
        object_fg = None
        if self.settings.fg_source == "objects":
            objects = labels_of(frame.labels, self.settings.fg_train_classes or None)
            full = object_surface_mask(frame.depth_m, objects, self.root.calib(self.frame_ids[i]))
            object_fg = resize_mask_with_depth(full, frame.depth_m, hw)
        return _Prepared(resize_image(frame.image, hw), resize_depth(frame.depth_m, hw), frame.labels, scale,
                         object_fg)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        prep = self._cache.get(i) or self._prepare(i)
        rng = np.random.default_rng([self.settings.seed, self.epoch, i])
        # the boxes are drawn for every fg source, so that a seed gives the same crops to all variants
        boxes = train_fg_boxes(prep.labels, self.settings, rng)
        fg = boxes_mask(prep.image.shape[:2], boxes, prep.scale) if prep.object_fg is None else prep.object_fg
        image, depth_m, fg = augment(prep.image, prep.depth_m, fg, self.settings, rng)
        return {"image": normalize_image(image, self.settings.encoder), "target_bin": self.bins.depth_to_bin(depth_m),
                "fg_mask": np.ascontiguousarray(fg)}
