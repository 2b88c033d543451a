"""Ray casting a scene with open3d (Embree, CPU): camera 2 image, dense depth, instance buffer,
and a simulated Velodyne HDL-64E sweep.

Camera rays: for pixel centre ``(u, v)`` (integer column, row) the ray is
``x(s) = C + s · M⁻¹ [u, v, 1]ᵀ`` with ``P2 = [M | p4]`` and ``C = -M⁻¹ p4`` camera 2's centre in
rect. Then ``P2 · [x(s); 1] = s · [u, v, 1]ᵀ``: the ray parameter ``s`` (open3d's ``t_hit`` in units
of the unnormalised direction) **is** :meth:`kitti.Calibration.rect_to_img`'s depth, so
``Calibration.img_to_rect(uv, depth)`` of a depth_2 pixel gives back the hit point exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import open3d as o3d

from kitti.calib import Calibration
from synth.meshes import Material
from synth.scene import Scene
from synth.shading import REFLECTANCE, lane_marks, shade, sky_colour, textured_albedo, tone_map

#: HDL-64E vertical angles (degrees): upper block 32 lasers +2 … -8.33, lower block 32 lasers
#: -8.83 … -24.8 (KITTI's sensor; the lower block has the coarser spacing).
HDL64_ELEVATION_DEG: np.ndarray = np.concatenate([np.linspace(2.0, -8.33, 32), np.linspace(-8.83, -24.8, 32)])


@dataclass(frozen=True)
class FrameRender:
    """The sensors' view of one scene.

    Attributes:
        image_rgb: (H, W, 3) uint8 RGB of camera 2.
        depth_m: (H, W) float32 depth (``rect_to_img`` depth, metres); 0 where the ray hits sky.
        instance: (H, W) int32 index of the object seen at each pixel, -1 for the static world / sky.
        material: (H, W) int16 :class:`Material` of each pixel, -1 for sky.
        points_velo: (N, 4) float32 LiDAR returns ``(x, y, z, reflectance)`` in the velodyne frame.
        point_instance: (N,) int32 object index of each return, -1 for the static world.
    """

    image_rgb: np.ndarray
    depth_m: np.ndarray
    instance: np.ndarray
    material: np.ndarray
    points_velo: np.ndarray
    point_instance: np.ndarray


def build_raycasting_scene(vertices_rect: np.ndarray, triangles: np.ndarray) -> o3d.t.geometry.RaycastingScene:
    """One open3d scene holding all triangles (geometry id 0, primitive id = triangle index)."""
    rs = o3d.t.geometry.RaycastingScene(nthreads=1)
    rs.add_triangles(o3d.core.Tensor(np.ascontiguousarray(vertices_rect, dtype=np.float32)),
                     o3d.core.Tensor(np.ascontiguousarray(triangles, dtype=np.uint32)))
    return rs


def camera_rays(calib: Calibration, image_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Camera 2's centre (3,) in rect and the (H, W, 3) unnormalised pixel-centre directions
    ``M⁻¹ [u, v, 1]`` (depth = ray parameter, see module docstring)."""
    h, w = image_hw
    m_inv = np.linalg.inv(calib.P2[:, :3])
    centre = -m_inv @ calib.P2[:, 3]
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    pix = np.stack([u, v, np.ones_like(u)], axis=-1)
    return centre, pix @ m_inv.T


def _rays(origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    shape = np.broadcast_shapes(np.shape(origins), np.shape(dirs))
    rays = np.empty(shape[:-1] + (6,), dtype=np.float32)
    rays[..., :3] = origins
    rays[..., 3:] = dirs
    return rays


def _cast(rs: o3d.t.geometry.RaycastingScene, origins: np.ndarray, dirs: np.ndarray, nthreads: int) -> dict:
    rays = _rays(origins, dirs)
    out = rs.cast_rays(o3d.core.Tensor(rays), nthreads=nthreads)
    return {k: out[k].numpy() for k in ("t_hit", "primitive_ids", "primitive_normals")}


def _occluded(rs: o3d.t.geometry.RaycastingScene, origins: np.ndarray, dirs: np.ndarray, tfar: float,
              nthreads: int) -> np.ndarray:
    if origins.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    rays = _rays(origins, dirs)
    return rs.test_occlusions(o3d.core.Tensor(rays), tnear=0.0, tfar=tfar, nthreads=nthreads).numpy().astype(bool)


def render_camera(scene: Scene, rs: o3d.t.geometry.RaycastingScene, calib: Calibration,
                  image_hw: tuple[int, int], rng: np.random.Generator, *, noise: float,
                  seed: int, nthreads: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Render camera 2: (image_rgb uint8, depth_m float32, instance int32, material int16)."""
    h, w = image_hw
    centre, dirs = camera_rays(calib, image_hw)
    dirs = dirs.reshape(-1, 3)
    hit = _cast(rs, centre[None, :], dirs, nthreads)
    t = hit["t_hit"]
    ok = np.isfinite(t)
    tri = hit["primitive_ids"][ok].astype(np.int64)
    depth = np.zeros(h * w, dtype=np.float32)
    depth[ok] = t[ok]
    inst = np.full(h * w, -1, dtype=np.int32)
    inst[ok] = scene.tri_instance[tri]
    mat_img = np.full(h * w, -1, dtype=np.int16)
    mat = scene.tri_material[tri]
    mat_img[ok] = mat

    # shading works in float32 (hit points to ~1e-5 m; depth comes from t_hit directly)
    dirs = dirs.astype(np.float32)
    unit = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    col = np.empty((h * w, 3), dtype=np.float32)
    col[~ok] = sky_colour(unit[~ok], scene.lighting, seed)
    p = centre.astype(np.float32) + dirs[ok] * t[ok, None]
    n = hit["primitive_normals"][ok]
    v = unit[ok]
    n *= -np.sign(np.sum(n * v, axis=1, keepdims=True) + 1e-12)  # face the camera
    rot = scene.level_to_rect.astype(np.float32)
    alb = textured_albedo(mat, scene.tri_albedo[tri], scene.tri_param[tri], p @ rot, n @ rot, t[ok], calib.fu,
                          scene.road, scene.ground_y, seed)
    lt = scene.lighting
    origin_off = p + n * np.float32(0.02)
    lit = (n @ lt.sun_dir_rect.astype(np.float32)) > 0
    shadow = np.zeros(len(p), dtype=bool)
    shadow[lit] = _occluded(rs, origin_off[lit], lt.sun_dir_rect[None, :], 1000.0, nthreads)
    # ambient occlusion of upward-facing surfaces: is there something within 2 m straight above?
    ao = np.ones(len(p), dtype=np.float32)
    up = n[:, 1] < -0.7
    blocked = _occluded(rs, origin_off[up], np.array([[0.0, -1.0, 0.0]]), 2.0, nthreads)
    ao[up] = np.where(blocked, 0.35, 1.0)
    rad = shade(mat, alb, n, v, shadow, ao, lt, seed)
    # aerial perspective
    fog = np.exp(-t[ok] / np.float32(lt.visibility_m))[:, None]
    rad = rad * fog + lt.horizon_rgb.astype(np.float32)[None, :] * (1 - fog)
    col[ok] = rad
    img = tone_map(col.reshape(h, w, 3), lt.exposure)
    # optics and sensor: a slight blur, vignetting, noise, 8-bit
    img = cv2.GaussianBlur(img, (0, 0), 0.55)
    r2 = (((np.arange(w, dtype=np.float32) - w / 2) / (w / 2)) ** 2)[None, :] + \
        (((np.arange(h, dtype=np.float32) - h / 2) / (w / 2)) ** 2)[:, None]
    img *= (1 - 0.18 * r2)[..., None]
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(noise)
    rgb = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
    return rgb, depth.reshape(h, w), inst.reshape(h, w), mat_img.reshape(h, w)


def lidar_directions_velo(azimuth_step_deg: float) -> np.ndarray:
    """(64 · n_az, 3) unit directions of one sweep in the velodyne frame (x forward, y left,
    z up), laser-major order; azimuth starts behind the car and turns counter-clockwise."""
    el = np.deg2rad(HDL64_ELEVATION_DEG)
    n_az = int(round(360.0 / azimuth_step_deg))
    az = np.deg2rad(180.0 - azimuth_step_deg * np.arange(n_az))
    e, a = np.meshgrid(el, az, indexing="ij")
    return np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], axis=-1).reshape(-1, 3)


def render_lidar(scene: Scene, rs: o3d.t.geometry.RaycastingScene, calib: Calibration, *,
                 azimuth_step_deg: float, max_range_m: float, nthreads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Simulate one HDL-64E sweep from the velodyne origin.

    Returns:
        points_velo: (N, 4) float32 ``(x, y, z, reflectance)``; reflectance from the material,
            scaled by the incidence angle, in [0, 1].
        point_instance: (N,) int32 object index per return, -1 for the static world.
    """
    m = calib.velo_to_rect_matrix
    origin = m[:3, 3]
    dirs_velo = lidar_directions_velo(azimuth_step_deg)
    dirs = dirs_velo @ m[:3, :3].T
    hit = _cast(rs, origin[None, :], dirs, nthreads)
    t = hit["t_hit"].astype(np.float64)
    ok = np.isfinite(t) & (t <= max_range_m)
    tri = hit["primitive_ids"][ok].astype(np.int64)
    p_rect = origin + dirs[ok] * t[ok, None]
    p_velo = calib.rect_to_velo(p_rect)
    n = hit["primitive_normals"][ok].astype(np.float64)
    cos_i = np.abs(np.sum(n * dirs[ok], axis=1))
    mat = scene.tri_material[tri]
    refl = REFLECTANCE[mat] * (0.55 + 0.45 * cos_i)
    road = mat == int(Material.ROAD)
    if road.any():
        paint = lane_marks(p_rect[road] @ scene.level_to_rect, scene.road)
        r = refl[road]
        r[paint] = 0.55 + 0.3 * cos_i[road][paint]
        refl[road] = r
    pts = np.column_stack([p_velo, np.round(np.clip(refl, 0, 1), 2)]).astype(np.float32)
    return pts, scene.tri_instance[tri].astype(np.int32)


def render_frame(scene: Scene, calib: Calibration, image_hw: tuple[int, int], rng: np.random.Generator, *,
                 noise: float, seed: int, azimuth_step_deg: float, max_range_m: float,
                 nthreads: int = 1) -> FrameRender:
    """Camera and LiDAR of one scene (see :class:`FrameRender`)."""
    rs = build_raycasting_scene(scene.vertices_rect, scene.triangles)
    rgb, depth, inst, mat = render_camera(scene, rs, calib, image_hw, rng, noise=noise, seed=seed,
                                          nthreads=nthreads)
    pts, pinst = render_lidar(scene, rs, calib, azimuth_step_deg=azimuth_step_deg,
                              max_range_m=max_range_m, nthreads=nthreads)
    return FrameRender(rgb, depth, inst, mat, pts, pinst)
