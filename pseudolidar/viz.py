"""Looking at clouds the way the paper's Fig. 6 does: bird's-eye view, front view, PLY, open3d.

Pictures are (H, W, 3) uint8 **RGB** arrays (write them with :func:`write_png`). Clouds are
(N, >=3) arrays in the velodyne frame (x forward, y left, z up, metres); boxes are
:class:`kitti.Boxes3D` in the rect camera frame (bottom centre, camera y down) and are moved to
the velodyne frame with the frame's :class:`kitti.Calibration`.

BEV layout: velodyne x (forward) points up the picture, velodyne y (left) to the left; the ego
vehicle (the LiDAR) sits at the origin of the metres grid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import Final, Mapping, Sequence, Union

import cv2
import numpy as np

from kitti import Boxes3D, Calibration, Object3d, atomic_write_bytes

RGB = tuple[int, int, int]

#: Named colours (RGB). Fig. 6 of the paper: ground truth blue, baseline red, ForeSeE yellow.
COLORS: Final[Mapping[str, RGB]] = MappingProxyType({
    "blue": (40, 120, 255), "red": (240, 40, 40), "yellow": (255, 225, 0),
    "green": (40, 220, 70), "cyan": (0, 220, 220), "magenta": (230, 60, 230),
    "orange": (255, 140, 0), "white": (255, 255, 255), "gray": (150, 150, 150),
    "violet": (180, 110, 255), "pink": (255, 150, 190),
})
#: The colour of a cloud by its role (paper Fig. 6; ``foresee-obj``, not in the paper, violet).
ROLE_COLORS: Final[Mapping[str, str]] = MappingProxyType({
    "lidar": "blue", "oracle": "blue", "gt": "blue", "baseline": "red", "foresee": "yellow",
    "foresee-obj": "violet",
})
#: Ground-truth and detected boxes (RGB).
GT_BOX_RGB: Final[RGB] = (40, 220, 70)
DET_BOX_RGB: Final[RGB] = (230, 60, 230)
#: Colours for clouds of no known role, in order.
PALETTE: Final[tuple[str, ...]] = ("yellow", "red", "blue", "cyan", "orange", "magenta", "white")

_GRID = (70, 70, 70)
_AXIS = (110, 110, 110)
_TEXT = (200, 200, 200)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def color_rgb(name: str) -> RGB:
    """An RGB triple from a colour name of :data:`COLORS` or ``#rrggbb``."""
    if name in COLORS:
        return COLORS[name]
    s = name.lstrip("#")
    if len(s) == 6:
        try:
            return (int(s[0:2], 16), int(s[2:4], 16), int(s[4:6], 16))
        except ValueError:
            pass
    raise ValueError(f"unknown colour {name!r} (one of {', '.join(COLORS)} or #rrggbb)")


def colors_for_roles(roles: Sequence[str]) -> list[RGB]:
    """Distinct colours, one per cloud: its role's (Fig. 6) when known and not taken by an
    earlier cloud, else the next palette colour that is nobody's role colour and not yet used."""
    out: list[RGB] = []
    used: set[str] = set()
    for r in roles:
        name = ROLE_COLORS.get(r)
        if name is None or name in used:
            taken = used | set(ROLE_COLORS.values())
            name = next((c for c in PALETTE if c not in taken), next((c for c in PALETTE if c not in used), PALETTE[0]))
        used.add(name)
        out.append(COLORS[name])
    return out


@dataclass(frozen=True)
class CloudLayer:
    """One cloud to draw: (N, >=3) velodyne points, its colour and legend label."""

    points_velo: np.ndarray
    color_rgb: RGB
    label: str = ""


@dataclass(frozen=True)
class BoxLayer:
    """Boxes to draw (rect frame, see :class:`kitti.Boxes3D`), their colour and legend label.

    Scores (``boxes.score``, NaN for ground truth) are written next to the boxes in BEV;
    ``names`` (class of each box, may be empty) label them in the HTML page's hover text.
    """

    boxes: Boxes3D
    color_rgb: RGB
    label: str = ""
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class BevView:
    """The area and scale of a bird's-eye view.

    Attributes:
        x_range_m: velodyne x (forward) shown, bottom to top of the picture.
        y_range_m: velodyne y (left) shown, right to left of the picture.
        px_per_m: scale.
        grid_m: spacing of the metres grid.
        point_size_px: side of the square drawn per point.
    """

    x_range_m: tuple[float, float] = (-5.0, 75.0)
    y_range_m: tuple[float, float] = (-40.0, 40.0)
    px_per_m: float = 10.0
    grid_m: float = 10.0
    point_size_px: int = 1

    def __post_init__(self) -> None:
        (x0, x1), (y0, y1) = self.x_range_m, self.y_range_m
        if not (x1 > x0 and y1 > y0):
            raise ValueError(f"BevView: empty range x {self.x_range_m}, y {self.y_range_m}")
        if not self.px_per_m > 0 or not self.grid_m > 0 or self.point_size_px < 1:
            raise ValueError("BevView: px_per_m, grid_m and point_size_px must be positive")
        if (x1 - x0) * self.px_per_m * (y1 - y0) * self.px_per_m > 64e6:
            raise ValueError("BevView: picture larger than 64 Mpx; lower px_per_m or the range")

    @property
    def size_hw(self) -> tuple[int, int]:
        """(H, W) of the picture in pixels."""
        return (int(round((self.x_range_m[1] - self.x_range_m[0]) * self.px_per_m)),
                int(round((self.y_range_m[1] - self.y_range_m[0]) * self.px_per_m)))

    def to_pixels(self, xy_velo: np.ndarray) -> np.ndarray:
        """(N, 2) velodyne ``(x, y)`` -> (N, 2) float picture ``(col, row)``."""
        xy = np.asarray(xy_velo, dtype=np.float64).reshape(-1, 2)
        col = (self.y_range_m[1] - xy[:, 1]) * self.px_per_m
        row = (self.x_range_m[1] - xy[:, 0]) * self.px_per_m
        return np.stack([col, row], axis=1)


def parse_range(text: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """``"X0,X1,Y0,Y1"`` (metres, velodyne x forward, y left) -> ``((x0, x1), (y0, y1))``."""
    try:
        x0, x1, y0, y1 = (float(t) for t in text.split(","))
    except ValueError:
        raise ValueError(f"range {text!r}: expected four numbers X0,X1,Y0,Y1 in metres") from None
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"range {text!r}: expected X0 < X1 and Y0 < Y1")
    return (x0, x1), (y0, y1)


def box_corners_velo(boxes: Boxes3D, calib: Calibration) -> np.ndarray:
    """(N, 8, 3) box corners in the velodyne frame (corner order of :func:`kitti.box_corners_rect`)."""
    corners = boxes.corners_rect()
    return calib.rect_to_velo(corners.reshape(-1, 3)).reshape(-1, 8, 3)


def _draw_points(img: np.ndarray, cols: np.ndarray, rows: np.ndarray, colors: np.ndarray,
                 size: int) -> None:
    """Paint squares of ``size`` px at integer pixel positions (clipped to the picture)."""
    H, W = img.shape[:2]
    lo = -(size // 2)
    for dr in range(lo, lo + size):
        for dc in range(lo, lo + size):
            r, c = rows + dr, cols + dc
            ok = (r >= 0) & (r < H) & (c >= 0) & (c < W)
            img[r[ok], c[ok]] = colors if colors.ndim == 1 else colors[ok]


def _text(img: np.ndarray, text: str, org: tuple[int, int], color: RGB = _TEXT, scale: float = 0.45) -> None:
    cv2.putText(img, text, org, _FONT, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, org, _FONT, scale, color, 1, cv2.LINE_AA)


def _legend(img: np.ndarray, entries: Sequence[tuple[str, RGB]], title: str) -> None:
    y = 20
    if title:
        _text(img, title, (10, y), (255, 255, 255), 0.5)
        y += 22
    for label, color in entries:
        if not label:
            continue
        cv2.rectangle(img, (10, y - 10), (22, y + 2), color, -1)
        _text(img, label, (30, y), color)
        y += 20


def _grid(img: np.ndarray, view: BevView) -> None:
    H, W = img.shape[:2]
    (x0, x1), (y0, y1) = view.x_range_m, view.y_range_m
    g = view.grid_m
    for x in np.arange(np.ceil(x0 / g) * g, x1 + 1e-9, g):
        row = int(round((x1 - x) * view.px_per_m))
        cv2.line(img, (0, row), (W - 1, row), _AXIS if x == 0 else _GRID, 1)
        _text(img, f"{x + 0.0:g} m", (W - 60, row - 4), _TEXT, 0.4)
    for y in np.arange(np.ceil(y0 / g) * g, y1 + 1e-9, g):
        col = int(round((y1 - y) * view.px_per_m))
        cv2.line(img, (col, 0), (col, H - 1), _AXIS if y == 0 else _GRID, 1)
        _text(img, f"{y + 0.0:g}", (col + 3, H - 6), _TEXT, 0.4)


def _ego(img: np.ndarray, view: BevView) -> None:
    """The ego car: a 4 m x 1.8 m outline around the LiDAR with an arrow pointing forward."""
    ppm = view.px_per_m
    c, r = view.to_pixels(np.zeros((1, 2)))[0]
    car = view.to_pixels(np.array([[1.3, 0.9], [1.3, -0.9], [-2.7, -0.9], [-2.7, 0.9]]))
    cv2.polylines(img, [np.round(car).astype(np.int32)], True, (255, 255, 255), 1, cv2.LINE_AA)
    tip = (int(round(c)), int(round(r - 3.0 * ppm)))
    cv2.arrowedLine(img, (int(round(c)), int(round(r))), tip, (255, 255, 255), 2, cv2.LINE_AA,
                    tipLength=0.3)


def objects_to_boxes(objects: Sequence[Object3d]) -> Boxes3D:
    """The boxes of label/result records, ``DontCare`` left out."""
    return Boxes3D.from_objects([o for o in objects if o.type != "DontCare"])


def box_layer(objects: Sequence[Object3d], color_rgb: RGB, label: str) -> BoxLayer:
    """A :class:`BoxLayer` of label/result records (``DontCare`` left out), with their class names."""
    kept = [o for o in objects if o.type != "DontCare"]
    return BoxLayer(Boxes3D.from_objects(kept), color_rgb, label, tuple(o.type for o in kept))


CloudLike = Union[CloudLayer, tuple]


def as_cloud_layers(clouds: Sequence[CloudLike]) -> list[CloudLayer]:
    """Accept :class:`CloudLayer` or ``(points_velo, color_rgb[, label])`` tuples."""
    out = []
    for c in clouds:
        if isinstance(c, CloudLayer):
            out.append(c)
        elif isinstance(c, tuple) and len(c) in (2, 3):
            out.append(CloudLayer(c[0], tuple(int(v) for v in c[1]), str(c[2]) if len(c) == 3 else ""))
        else:
            raise TypeError("clouds: expected CloudLayer or (points_velo, color_rgb[, label]) tuples")
    return out


def _box_layers(boxes: Sequence[BoxLayer], gt_objects: Sequence[Object3d] | None,
                det_objects: Sequence[Object3d] | None) -> list[BoxLayer]:
    layers = list(boxes)
    if gt_objects:
        layers.append(box_layer(gt_objects, GT_BOX_RGB, "ground truth"))
    if det_objects:
        layers.append(box_layer(det_objects, DET_BOX_RGB, "detections"))
    return layers


def render_bev(clouds: Sequence[CloudLike], calib: Calibration | None = None, *,
               gt_objects: Sequence[Object3d] | None = None,
               det_objects: Sequence[Object3d] | None = None, boxes: Sequence[BoxLayer] = (),
               view: BevView = BevView(), title: str = "") -> np.ndarray:
    """Bird's-eye view of one or several clouds overlaid, with boxes (paper Fig. 6 style).

    Args:
        clouds: :class:`CloudLayer` or ``(points_velo, color_rgb[, label])``, drawn in order (a
            later cloud covers an earlier one where both hit a pixel).
        calib: the frame's calibration; needed when there are boxes (rect -> velodyne).
        gt_objects: label_2 records drawn as ground-truth boxes (green; DontCare skipped).
        det_objects: result records drawn as detections (magenta, with their scores).
        boxes: more box layers. Boxes are footprints with a heading tick (front edge = corners
            0-1 of :func:`kitti.box_corners_rect`), drawn over the clouds.
        view: area and scale.
        title: written above the legend.

    Returns:
        (H, W, 3) uint8 RGB, black background, metres grid, ego marker at the LiDAR.
    """
    clouds = as_cloud_layers(clouds)
    boxes = _box_layers(boxes, gt_objects, det_objects)
    H, W = view.size_hw
    img = np.zeros((H, W, 3), dtype=np.uint8)
    _grid(img, view)
    for layer in clouds:
        p = np.asarray(layer.points_velo, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] < 3:
            raise ValueError(f"render_bev: cloud {layer.label!r}: expected (N, >=3), got {p.shape}")
        px = np.floor(view.to_pixels(p[:, :2])).astype(np.int64)
        ok = (px[:, 0] >= 0) & (px[:, 0] < W) & (px[:, 1] >= 0) & (px[:, 1] < H)
        _draw_points(img, px[ok, 0], px[ok, 1], np.array(layer.color_rgb, np.uint8), view.point_size_px)
    _ego(img, view)
    if any(len(b.boxes) for b in boxes) and calib is None:
        raise ValueError("render_bev: boxes need the frame's calib (rect -> velodyne)")
    legend = [(c.label, c.color_rgb) for c in clouds] + [(b.label, b.color_rgb) for b in boxes]
    taken = [_legend_rect(legend, title)]  # pixel rectangles labels must not overlap: legend, boxes, labels
    footprints = {id(layer): view.to_pixels(box_corners_velo(layer.boxes, calib)[:, :4, :2].reshape(-1, 2)).reshape(-1, 4, 2)
                  for layer in boxes if len(layer.boxes)}
    for fp in footprints.values():
        taken += [(*np.floor(q.min(axis=0)).astype(int), *np.ceil(q.max(axis=0)).astype(int)) for q in fp]
    for layer in boxes:
        if not len(layer.boxes):
            continue
        corners = box_corners_velo(layer.boxes, calib)[:, :4, :2]
        for k in range(len(layer.boxes)):
            poly = view.to_pixels(corners[k])
            pts = np.round(poly).astype(np.int32)
            cv2.polylines(img, [pts], True, layer.color_rgb, 2, cv2.LINE_AA)
            centre = poly.mean(axis=0)
            front = (poly[0] + poly[1]) / 2
            cv2.line(img, tuple(int(v) for v in np.round(centre)), tuple(int(v) for v in np.round(front)),
                     layer.color_rgb, 2, cv2.LINE_AA)
            score = layer.boxes.score[k]
            if np.isfinite(score):
                org = place_label(f"{score:.2f}", pts, taken, (W, H))
                if org is not None:
                    _text(img, f"{score:.2f}", org, layer.color_rgb, _LABEL_SCALE)
    _legend(img, legend, title)
    return img


_LABEL_SCALE = 0.4


def _legend_rect(entries: Sequence[tuple[str, RGB]], title: str) -> tuple[int, int, int, int]:
    """The (x0, y0, x1, y1) pixels :func:`_legend` covers."""
    rows = [cv2.getTextSize(t, _FONT, 0.5, 1)[0][0] + 10 for t in [title] if t]
    rows += [cv2.getTextSize(label, _FONT, 0.45, 1)[0][0] + 30 for label, _ in entries if label]
    height = 20 + (22 if title else 0) + 20 * sum(1 for label, _ in entries if label)
    return (0, 0, max(rows, default=0) + 12, height)


def place_label(text: str, box_px: np.ndarray, taken: list[tuple[int, int, int, int]],
                size_wh: tuple[int, int]) -> tuple[int, int] | None:
    """Where to write ``text`` beside a box so that it overlaps no earlier label, or None.

    Tries the box's right, left, top and bottom sides (then farther out), inside the picture;
    the chosen rectangle is appended to ``taken``. A label with no free place is left out.

    Args:
        text: the label.
        box_px: (N, 2) the box's outline in pixels (column, row).
        taken: rectangles ``(x0, y0, x1, y1)`` already used (the legend, earlier labels).
        size_wh: the picture's (width, height).

    Returns:
        The text origin (bottom-left, as ``cv2.putText``), or None.
    """
    (w, h), base = cv2.getTextSize(text, _FONT, _LABEL_SCALE, 1)
    h += base
    x0, y0 = (int(v) for v in np.floor(box_px.min(axis=0)))
    x1, y1 = (int(v) for v in np.ceil(box_px.max(axis=0)))
    W, H = size_wh
    for gap in (3, 3 + h, 3 + 2 * h):
        for left, top in ((x1 + gap, y0), (x1 + gap, y1 - h), (x0 - gap - w, y0), (x0 - gap - w, y1 - h),
                          (x0, y0 - gap - h), (x0, y1 + gap)):
            rect = (left, top, left + w, top + h)
            if left < 0 or top < 0 or rect[2] > W or rect[3] > H:
                continue
            if all(rect[2] <= a or rect[0] >= c or rect[3] <= b or rect[1] >= d for a, b, c, d in taken):
                taken.append(rect)
                return left, top + h - base
    return None


def depth_colors(depth_m: np.ndarray, max_depth_m: float) -> np.ndarray:
    """(N, 3) uint8 RGB for depths: turbo colour map, near red, far blue (clipped at max)."""
    t = np.clip(np.asarray(depth_m, dtype=np.float64) / max_depth_m, 0.0, 1.0)
    lut = cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(-1, 1), cv2.COLORMAP_TURBO)
    lut = lut.reshape(256, 3)[:, ::-1]  # BGR -> RGB
    return lut[np.round((1.0 - t) * 255).astype(np.int64)]


_BOX_EDGES = ((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4),
              (0, 4), (1, 5), (2, 6), (3, 7))


def render_front(image_rgb: np.ndarray, points_velo: np.ndarray, calib: Calibration, *,
                 gt_objects: Sequence[Object3d] | None = None,
                 det_objects: Sequence[Object3d] | None = None, boxes: Sequence[BoxLayer] = (),
                 max_depth_m: float = 80.0, point_size_px: int = 2, dim: float = 0.45) -> np.ndarray:
    """Front view: the cloud projected on image_2, coloured by depth (near red, far blue).

    Args:
        image_rgb: (H, W, 3) uint8 RGB image_2 of the frame.
        points_velo: (N, >=3) cloud in the velodyne frame.
        calib: the frame's calibration.
        gt_objects, det_objects: label/result records drawn as projected 3D boxes (green,
            magenta; DontCare and boxes reaching behind the camera skipped).
        boxes: more box layers drawn the same way.
        max_depth_m: depth mapped to the far end of the colour map.
        point_size_px: side of the square drawn per point.
        dim: brightness factor applied to the grey image under the points.

    Returns:
        (H, W, 3) uint8 RGB with a depth colour bar in the bottom-right corner.
    """
    from pseudolidar.filters import project_to_pixels

    boxes = _box_layers(boxes, gt_objects, det_objects)
    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"render_front: expected an (H, W, 3) image, got {image.shape}")
    H, W = image.shape[:2]
    grey = cv2.cvtColor(image.astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float64) * dim
    img = np.repeat(grey.astype(np.uint8)[:, :, None], 3, axis=2)
    p = np.asarray(points_velo, dtype=np.float64)
    in_image, rows, cols, depth = project_to_pixels(p[:, :3], calib, (H, W))
    order = np.argsort(-depth[in_image], kind="stable")  # far first, near drawn on top
    r, c, d = rows[in_image][order], cols[in_image][order], depth[in_image][order]
    _draw_points(img, c, r, depth_colors(d, max_depth_m), point_size_px)
    for layer in boxes:
        for k in range(len(layer.boxes)):
            corners = layer.boxes[k].corners_rect()[0]
            uv, dep = calib.rect_to_img(corners)
            if np.any(dep < 0.1):
                continue
            for a, b in _BOX_EDGES:
                cv2.line(img, tuple(int(v) for v in np.round(uv[a])), tuple(int(v) for v in np.round(uv[b])),
                         layer.color_rgb, 2, cv2.LINE_AA)
    # colour bar
    bar_w, bar_h = min(200, W // 4), 10
    x0, y0 = W - bar_w - 60, H - 20
    if x0 > 0 and y0 > 0:
        ramp = depth_colors(np.linspace(0, max_depth_m, bar_w), max_depth_m)
        img[y0:y0 + bar_h, x0:x0 + bar_w] = ramp[None, :, :]
        _text(img, "0 m", (x0 - 32, y0 + 10), _TEXT, 0.4)
        _text(img, f"{max_depth_m:g} m", (x0 + bar_w + 4, y0 + 10), _TEXT, 0.4)
    return img


def encode_png(image_rgb: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 RGB picture."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.asarray(image_rgb, dtype=np.uint8), cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def write_png(path: str | PathLike[str], image_rgb: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 RGB picture as PNG, atomically."""
    atomic_write_bytes(Path(path), encode_png(image_rgb))


def encode_ply(points_velo: np.ndarray, colors_rgb: np.ndarray | None = None) -> bytes:
    """Binary little-endian PLY of a cloud: float32 ``x y z intensity`` (+ uchar ``red green blue``).

    Args:
        points_velo: (N, >=3) points; column 3 (reflectance) is written as ``intensity``
            (1.0 when absent).
        colors_rgb: optional (N, 3) uint8 colours.
    """
    p = np.asarray(points_velo, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 3:
        raise ValueError(f"encode_ply: expected (N, >=3) points, got {p.shape}")
    n = p.shape[0]
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4")]
    if colors_rgb is not None:
        colors = np.asarray(colors_rgb, dtype=np.uint8)
        if colors.shape != (n, 3):
            raise ValueError(f"encode_ply: expected ({n}, 3) colours, got {colors.shape}")
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    rec = np.empty(n, dtype=np.dtype(fields))
    rec["x"], rec["y"], rec["z"] = p[:, 0], p[:, 1], p[:, 2]
    rec["intensity"] = p[:, 3] if p.shape[1] > 3 else 1.0
    if colors_rgb is not None:
        rec["red"], rec["green"], rec["blue"] = colors[:, 0], colors[:, 1], colors[:, 2]
    props = "".join(f"property {'float' if t == '<f4' else 'uchar'} {name}\n" for name, t in fields)
    header = ("ply\nformat binary_little_endian 1.0\ncomment foresee pseudo-LiDAR, velodyne frame, "
              f"metres\nelement vertex {n}\n{props}end_header\n")
    return header.encode("ascii") + rec.tobytes()


def write_ply(path: str | PathLike[str], clouds: Sequence[CloudLayer]) -> int:
    """Write one or several clouds, each in its layer colour, as one PLY file (atomically).

    Returns:
        The number of points written.
    """
    pts = [np.asarray(c.points_velo, dtype=np.float64) for c in clouds]
    pts4 = [np.concatenate([p[:, :3], p[:, 3:4] if p.shape[1] > 3 else np.ones((len(p), 1))], axis=1)
            for p in pts]
    points = np.concatenate(pts4, axis=0) if pts4 else np.zeros((0, 4))
    colors = np.concatenate([np.tile(np.array(c.color_rgb, np.uint8), (len(p), 1)) for c, p in zip(clouds, pts)],
                            axis=0) if pts else np.zeros((0, 3), np.uint8)
    atomic_write_bytes(Path(path), encode_ply(points, colors))
    return int(points.shape[0])


class NoDisplayError(RuntimeError):
    """The interactive viewer was asked for on a machine without a display."""


def has_display() -> bool:
    """True when an X11 or Wayland display is available (``DISPLAY`` / ``WAYLAND_DISPLAY``)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open3d_view(clouds: Sequence[CloudLayer], boxes: Sequence[BoxLayer] = (), *,
                calib: Calibration | None = None, title: str = "foresee") -> None:
    """Open the interactive open3d viewer on the clouds (and boxes as line sets).

    Raises:
        NoDisplayError: no display (``DISPLAY`` / ``WAYLAND_DISPLAY`` unset).
    """
    if not has_display():
        raise NoDisplayError("no display: DISPLAY/WAYLAND_DISPLAY is not set, the open3d viewer "
                             "cannot open (use --png/--front/--ply instead)")
    import open3d as o3d

    geoms = []
    for layer in clouds:
        p = np.asarray(layer.points_velo, dtype=np.float64)[:, :3]
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(p))
        pcd.paint_uniform_color(np.array(layer.color_rgb, dtype=np.float64) / 255.0)
        geoms.append(pcd)
    for layer in boxes:
        if not len(layer.boxes):
            continue
        if calib is None:
            raise ValueError("open3d_view: boxes need the frame's calib (rect -> velodyne)")
        corners = box_corners_velo(layer.boxes, calib)
        for k in range(len(layer.boxes)):
            ls = o3d.geometry.LineSet(o3d.utility.Vector3dVector(corners[k]),
                                      o3d.utility.Vector2iVector(np.array(_BOX_EDGES)))
            ls.paint_uniform_color(np.array(layer.color_rgb, dtype=np.float64) / 255.0)
            geoms.append(ls)
    geoms.append(o3d.geometry.TriangleMesh.create_coordinate_frame(size=2.0))
    o3d.visualization.draw_geometries(geoms, window_name=title)
