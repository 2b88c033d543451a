"""label_2 records computed from the render, the way KITTI's annotations are defined.

* 2D box: the bounding box of the object's **visible** pixels (per-pixel instance buffer).
* truncation: the fraction of the 3D box (a 9x9x9 grid of points filling it) that projects
  outside the image or lies behind the camera's near plane.
* occlusion: 0 / 1 / 2 from the visible fraction of the object's unoccluded silhouette inside
  the image (rendered alone): >= 0.8 fully visible, >= 0.4 partly, else largely occluded.
* alpha = ry - atan2(x, z); DontCare for objects lower than ``min_box_height_px`` or farther than
  ``max_label_depth_m``; objects with fewer than ``min_visible_px`` pixels are not labelled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d

from kitti.boxes import alpha_from_ry, box_corners_rect
from kitti.calib import Calibration
from kitti.labels import Object3d, parse_label_line
from synth.render import FrameRender, camera_rays
from synth.scene import Scene

#: Visible-fraction thresholds of the occlusion levels 0 and 1.
OCCLUSION_VISIBLE_FRACTION: tuple[float, float] = (0.8, 0.4)
_EDGES = ((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7))
_NEAR_M = 0.1


@dataclass(frozen=True)
class LabelledObject:
    """One object's label and the measurements it came from.

    Attributes:
        instance: index into ``Scene.objects``.
        label: the label_2 record (class name or ``DontCare``).
        visible_px: pixels where the object is seen.
        visible_fraction: visible_px / pixels of the object rendered alone (inside the image).
    """

    instance: int
    label: Object3d
    visible_px: int
    visible_fraction: float


_GRID = np.stack(np.meshgrid(*(np.linspace(0.0, 1.0, 9),) * 3, indexing="ij"), -1).reshape(-1, 3)


def projected_box_truncation(corners_rect: np.ndarray, calib: Calibration, image_hw: tuple[int, int]) -> tuple[float, np.ndarray]:
    """Truncation of one (8, 3) box and the (4,) projected 2D extent ``(u0, v0, u1, v1)``.

    Truncation: the fraction of a 9x9x9 grid of points filling the box that is behind rect
    ``z = 0.1 m`` or projects outside the image (pixel edges -0.5 … W-0.5). The extent is that
    of the box clipped at ``z = 0.1 m`` (corners in front plus edge crossings).
    """
    # trilinear grid through the box: corner 2 is the origin, 1 / 3 / 6 the three edges from it
    c = corners_rect
    grid = (c[2] + _GRID[:, :1] * (c[1] - c[2]) + _GRID[:, 1:2] * (c[3] - c[2]) + _GRID[:, 2:] * (c[6] - c[2]))
    guv, gd = calib.rect_to_img(grid)
    h, w = image_hw
    inside = (grid[:, 2] > _NEAR_M) & (guv[:, 0] >= -0.5) & (guv[:, 0] <= w - 0.5) & (guv[:, 1] >= -0.5) & (guv[:, 1] <= h - 0.5)
    truncation = 1.0 - float(np.mean(inside))
    z = corners_rect[:, 2]
    pts = [corners_rect[z >= _NEAR_M]]
    for a, b in _EDGES:
        za, zb = z[a], z[b]
        if (za - _NEAR_M) * (zb - _NEAR_M) < 0:
            f = (_NEAR_M - za) / (zb - za)
            pts.append((corners_rect[a] + f * (corners_rect[b] - corners_rect[a]))[None, :])
    p = np.concatenate(pts)
    if p.shape[0] == 0:
        return 1.0, np.full(4, np.nan)
    uv, _ = calib.rect_to_img(p)
    u0, v0 = uv.min(axis=0)
    u1, v1 = uv.max(axis=0)
    return truncation, np.array([u0, v0, u1, v1])


def _alone_pixels(scene: Scene, index: int, centre: np.ndarray, dirs: np.ndarray,
                  extent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (rows, cols) where object ``index`` is hit when rendered alone (inside ``extent``)."""
    h, w = dirs.shape[:2]
    u0 = int(max(0, np.floor(extent[0])))
    u1 = int(min(w - 1, np.ceil(extent[2])))
    v0 = int(max(0, np.floor(extent[1])))
    v1 = int(min(h - 1, np.ceil(extent[3])))
    if u1 < u0 or v1 < v0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    t0, t1 = scene.objects[index].tri_range
    tris = scene.triangles[t0:t1].astype(np.int64)
    vmin = int(tris.min())
    rs = o3d.t.geometry.RaycastingScene(nthreads=1)
    rs.add_triangles(o3d.core.Tensor(np.ascontiguousarray(scene.vertices_rect[vmin:tris.max() + 1])),
                     o3d.core.Tensor((tris - vmin).astype(np.uint32)))
    d = dirs[v0:v1 + 1, u0:u1 + 1].reshape(-1, 3)
    rays = np.concatenate([np.broadcast_to(centre, d.shape), d], axis=-1).astype(np.float32)
    hit = rs.test_occlusions(o3d.core.Tensor(rays), nthreads=1).numpy().astype(bool)
    rr, cc = np.divmod(np.flatnonzero(hit), u1 - u0 + 1)
    return rr + v0, cc + u0


def _fmt(v: float) -> str:
    return f"{v:.2f}"


def labels_from_render(scene: Scene, frame: FrameRender, calib: Calibration, *, min_visible_px: int,
                       min_box_height_px: float, max_label_depth_m: float) -> list[LabelledObject]:
    """Label every object seen in the image (class objects first, DontCare last)."""
    image_hw = frame.depth_m.shape
    inst = frame.instance
    objs: list[LabelledObject] = []
    dontcare: list[LabelledObject] = []
    centre, dirs = camera_rays(calib, image_hw)
    counts = np.bincount(inst[inst >= 0].ravel(), minlength=len(scene.objects))
    for o in scene.objects:
        n_vis = int(counts[o.instance])
        if n_vis < min_visible_px:
            continue
        rows, cols = np.nonzero(inst == o.instance)
        x1, x2 = float(cols.min()), float(cols.max())
        y1, y2 = float(rows.min()), float(rows.max())
        corners = box_corners_rect(o.loc_rect[None, :], o.hwl[None, :], np.array([o.ry]))[0]
        trunc, extent = projected_box_truncation(corners, calib, image_hw)
        ar, ac = _alone_pixels(scene, o.instance, centre, dirs, extent)
        n_alone = max(len(ar), n_vis)
        frac = n_vis / n_alone
        occ = 0 if frac >= OCCLUSION_VISIBLE_FRACTION[0] else (1 if frac >= OCCLUSION_VISIBLE_FRACTION[1] else 2)
        x, y, z = (float(v) for v in o.loc_rect)
        h, w, l = (float(v) for v in o.hwl)
        if y2 - y1 < min_box_height_px or z > max_label_depth_m:
            line = (f"DontCare -1 -1 -10 {_fmt(x1)} {_fmt(y1)} {_fmt(x2)} {_fmt(y2)} "
                    "-1 -1 -1 -1000 -1000 -1000 -10")
            dontcare.append(LabelledObject(o.instance, parse_label_line(line), n_vis, frac))
            continue
        alpha = float(alpha_from_ry(o.ry, x, z))
        line = " ".join([o.kind, _fmt(trunc), str(occ), _fmt(alpha), _fmt(x1), _fmt(y1), _fmt(x2), _fmt(y2),
                         _fmt(h), _fmt(w), _fmt(l), _fmt(x), _fmt(y), _fmt(z), _fmt(o.ry)])
        objs.append(LabelledObject(o.instance, parse_label_line(line), n_vis, frac))
    return objs + dontcare
