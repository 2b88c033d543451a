"""Procedural textures, the lighting model and LiDAR reflectance of the embedded benchmark.

Everything here is a pure function of hit points (rect frame, metres), normals, materials and the
scene's :class:`~synth.scene.Lighting`; colours are linear RGB until :func:`tone_map`.
Textures live in world units (metres), so their image-space frequency rises with distance — one of
the monocular depth cues the benchmark is meant to offer — and octaves finer than a pixel's
footprint are faded out (no aliasing shimmer).
"""

from __future__ import annotations

import numpy as np

from synth.meshes import Material
from synth.scene import Lighting, RoadFrame

_M = Material


def _hash(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """Integer lattice -> uniform [0, 1) (uint32 arithmetic, wraps by design)."""
    h = (ix.astype(np.uint32) * np.uint32(374761393) + iy.astype(np.uint32) * np.uint32(668265263)
         + np.uint32(seed * 2654435761 % 2**32))
    h = (h ^ (h >> np.uint32(13))) * np.uint32(1274126177)
    h = h ^ (h >> np.uint32(16))
    return h.astype(np.float32) * np.float32(1.0 / 2**32)


def value_noise(a: np.ndarray, b: np.ndarray, seed: int) -> np.ndarray:
    """Smooth 2D value noise in [0, 1) on a unit lattice."""
    fa, fb = np.floor(a), np.floor(b)
    ia, ib = fa.astype(np.int64), fb.astype(np.int64)
    ta, tb = a - fa, b - fb
    ta = ta * ta * (3 - 2 * ta)
    tb = tb * tb * (3 - 2 * tb)
    n00 = _hash(ia, ib, seed)
    n10 = _hash(ia + 1, ib, seed)
    n01 = _hash(ia, ib + 1, seed)
    n11 = _hash(ia + 1, ib + 1, seed)
    return (n00 * (1 - ta) + n10 * ta) * (1 - tb) + (n01 * (1 - ta) + n11 * ta) * tb


def fbm(a: np.ndarray, b: np.ndarray, freq: float, octaves: int, footprint_m: np.ndarray,
        seed: int) -> np.ndarray:
    """Fractal noise in about [-1, 1] at base frequency ``freq`` (1/m); octaves whose cell is
    smaller than the pixel footprint (metres) are faded out."""
    out = np.zeros_like(a, dtype=np.float32)
    amp = 1.0
    norm = 0.0
    for k in range(octaves):
        f = freq * 2.0 ** k
        fade = np.clip(1.5 - footprint_m * f * 1.5, 0.0, 1.0).astype(np.float32)
        out += amp * fade * (value_noise(a * f, b * f, seed + 17 * k) * 2 - 1)
        norm += amp
        amp *= 0.55
    return out / norm


def surface_coords(points_rect: np.ndarray, normals_rect: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2D texture coordinates (metres) of hit points: (x, z) on horizontal surfaces,
    (along-surface, -y) on vertical ones."""
    flat = np.abs(normals_rect[:, 1]) > 0.7
    tx, tz = -normals_rect[:, 2], normals_rect[:, 0]
    nrm = np.sqrt(tx * tx + tz * tz) + 1e-9
    along = (points_rect[:, 0] * tx + points_rect[:, 2] * tz) / nrm
    a = np.where(flat, points_rect[:, 0], along)
    b = np.where(flat, points_rect[:, 2], -points_rect[:, 1])
    return a, b


def lane_marks(points_rect: np.ndarray, road: RoadFrame) -> np.ndarray:
    """(N,) bool: which road points are painted (edge lines solid, lane lines dashed)."""
    t = road.lateral(points_rect)
    s = road.along(points_rect)
    half_w = road.mark_width_m / 2
    edge = np.abs(np.abs(t) - (road.half_width_m - 0.35)) < half_w
    mark = edge.copy()
    dash_on, dash_off = road.dash_m
    dashed = np.mod(s, dash_on + dash_off) < dash_on
    if road.crosswalk_s is not None:
        z0, z1 = road.crosswalk_s
        mark |= (s > z0) & (s < z1) & (np.abs(t) < road.half_width_m - 0.5) & (np.mod(t, 1.0) < 0.5)
    for k in range(1, road.n_lanes):
        tk = -road.half_width_m + k * road.lane_width_m
        if k == road.n_oncoming and road.n_oncoming > 0:
            mark |= np.abs(np.abs(t - tk) - 0.12) < half_w * 0.8  # double solid centre line
        else:
            mark |= (np.abs(t - tk) < half_w) & dashed
    return mark


def textured_albedo(material: np.ndarray, albedo: np.ndarray, param: np.ndarray, points_rect: np.ndarray,
                    normals_rect: np.ndarray, depth_m: np.ndarray, fu: float, road: RoadFrame,
                    ground_y: float, seed: int) -> np.ndarray:
    """(N, 3) albedo after the procedural texture of each material.

    Args:
        material: (N,) :class:`Material` values; albedo: (N, 3) base colours; param: (N,)
            texture parameters in [0, 1) (a facade's window layout).
        points_rect, normals_rect: (N, 3) hit points and unit normals (rect frame).
        depth_m: (N,) distance along the optical axis (sets the pixel footprint depth/fu).
    """
    alb = albedo.astype(np.float32).copy()
    foot = (depth_m / fu).astype(np.float32)
    a, b = surface_coords(points_rect, normals_rect)
    a = a.astype(np.float32)
    b = b.astype(np.float32)

    def sel(*kinds: Material) -> np.ndarray:
        return np.isin(material, [int(k) for k in kinds])

    m = sel(_M.ROAD)
    if m.any():
        n_fine = fbm(a[m], b[m], 3.0, 3, foot[m], seed)
        n_patch = fbm(a[m], b[m], 0.15, 2, foot[m], seed + 5)
        v = 1.0 + 0.22 * n_fine + 0.25 * n_patch
        col = alb[m] * v[:, None]
        paint = lane_marks(points_rect[m], road)
        col[paint] = np.float32(0.62) * (0.9 + 0.1 * v[paint, None])
        alb[m] = col
    m = sel(_M.PAVEMENT)
    if m.any():
        tile = 0.4
        ja = np.abs(np.mod(a[m], tile) - tile / 2) > tile / 2 - 0.015
        jb = np.abs(np.mod(b[m], tile) - tile / 2) > tile / 2 - 0.015
        joint = (ja | jb) & (foot[m] < 0.03)
        v = 1.0 + 0.15 * fbm(a[m], b[m], 4.0, 3, foot[m], seed + 1) + 0.15 * fbm(a[m], b[m], 0.3, 2, foot[m], seed + 2)
        alb[m] *= (v * np.where(joint, 0.6, 1.0))[:, None]
    m = sel(_M.GRASS, _M.FOLIAGE, _M.HILL)
    if m.any():
        v = 1.0 + 0.5 * fbm(a[m], b[m], 2.0, 3, foot[m], seed + 3) + 0.35 * fbm(a[m], b[m], 0.2, 2, foot[m], seed + 4)
        alb[m] *= np.clip(v, 0.2, 2.0)[:, None]
    m = sel(_M.KERB, _M.WALL, _M.BARK)
    if m.any():
        v = 1.0 + 0.15 * fbm(a[m], b[m], 5.0, 3, foot[m], seed + 6)
        alb[m] *= v[:, None]
    m = sel(_M.FACADE)
    if m.any():
        # the parameter picks the building's window grid: spacing, floor height, window size,
        # and for p < 0.25 a shop front on the ground floor
        p = param[m]
        h_up = (ground_y - points_rect[m, 1]).astype(np.float32)
        spacing = 2.0 + 1.6 * np.mod(p * 7.31, 1.0)
        floor = 2.8 + 0.8 * np.mod(p * 3.17, 1.0)
        half_w = 0.18 + 0.14 * np.mod(p * 5.71, 1.0)
        top = 0.72 + 0.12 * np.mod(p * 11.3, 1.0)
        wa = np.mod(a[m], spacing) / spacing
        wb = np.mod(h_up, floor) / floor
        vertical = np.abs(normals_rect[m, 1]) < 0.5
        window = (np.abs(wa - 0.5) < half_w) & (wb > 0.3) & (wb < top) & (h_up > floor) & vertical
        shop = (p < 0.25) & (h_up > 0.3) & (h_up < floor * 0.8) & (np.abs(wa - 0.5) < 0.44) & vertical
        frame = (np.abs(wa - 0.5) < half_w + 0.03) & (wb > 0.27) & (wb < top + 0.03) & (h_up > floor) & vertical & ~window
        v = 1.0 + 0.12 * fbm(a[m], b[m], 1.5, 3, foot[m], seed + 7)
        col = alb[m] * v[:, None]
        col[frame] = np.float32(0.75)
        cell = _hash(np.floor(a[m] / spacing).astype(np.int64), np.floor(h_up / floor).astype(np.int64), seed + 9)
        glass = (0.03 + 0.1 * cell ** 3)[:, None] * np.array([0.9, 1.0, 1.1], np.float32)
        col[window | shop] = glass[window | shop]
        alb[m] = col
    return alb


def sky_colour(dirs_rect: np.ndarray, lighting: Lighting, seed: int) -> np.ndarray:
    """(N, 3) linear sky radiance for (N, 3) ray directions (rect frame)."""
    d = dirs_rect / np.linalg.norm(dirs_rect, axis=1, keepdims=True)
    up = np.clip(-d[:, 1], 0.0, 1.0)
    t = np.sqrt(up)[:, None]
    col = lighting.horizon_rgb * (1 - t) + lighting.zenith_rgb * t
    if lighting.cloudiness > 0:
        k = 1.0 / (up + 0.08)
        c = fbm(d[:, 0] * k * 2, d[:, 2] * k * 2, 1.0, 4, np.zeros(len(d), np.float32), seed + 11)
        cover = np.clip((c + lighting.cloudiness - 0.6) * 2.5, 0, 1)[:, None] * lighting.cloudiness
        col = col * (1 - cover) + np.array([0.85, 0.86, 0.88]) * cover
    sun = np.clip(d @ lighting.sun_dir_rect, 0, 1)
    col = col + (lighting.sun_rgb * 0.08)[None, :] * (sun ** 64)[:, None]
    return col.astype(np.float32)


#: Specular strength and shininess (Blinn-Phong) and environment reflectance per material.
_SPEC = {int(_M.PAINT): (0.35, 60.0, 0.12), int(_M.GLASS): (0.9, 200.0, 0.06),
         int(_M.METAL): (0.3, 30.0, 0.08), int(_M.RIM): (0.5, 40.0, 0.2),
         int(_M.LIGHT): (0.6, 80.0, 0.2), int(_M.PLASTIC): (0.1, 20.0, 0.03)}


def shade(material: np.ndarray, albedo: np.ndarray, normals_rect: np.ndarray, view_dirs: np.ndarray,
          in_shadow: np.ndarray, ambient_occ: np.ndarray, lighting: Lighting, seed: int) -> np.ndarray:
    """(N, 3) linear radiance: Lambert under sun + sky, ambient occlusion, specular highlights
    and a sky reflection on paint, glass and metal.

    Args:
        normals_rect: (N, 3) unit normals facing the camera.
        view_dirs: (N, 3) unit ray directions (camera -> point).
        in_shadow: (N,) bool, the sun is blocked.
        ambient_occ: (N,) factor in [0, 1] on the sky light.
    """
    f32 = np.float32
    L = lighting.sun_dir_rect.astype(f32)
    sun_rgb, sky_rgb = lighting.sun_rgb.astype(f32), lighting.sky_rgb.astype(f32)
    ndl = np.clip(normals_rect @ L, f32(0.0), f32(1.0)) * (~in_shadow)
    sky_w = f32(0.55) + f32(0.45) * np.clip(-normals_rect[:, 1], f32(-1.0), f32(1.0))
    irr = sky_rgb[None, :] * (sky_w * ambient_occ)[:, None] + sun_rgb[None, :] * ndl[:, None]
    col = albedo * irr
    ks = np.zeros(len(material), np.float32)
    shin = np.ones(len(material), np.float32)
    env = np.zeros(len(material), np.float32)
    for mat, (k, s, e) in _SPEC.items():
        m = material == mat
        ks[m], shin[m], env[m] = k, s, e
    spec_m = ks > 0
    if spec_m.any():
        n = normals_rect[spec_m]
        v = view_dirs[spec_m]
        hvec = L[None, :] - v
        hvec /= np.linalg.norm(hvec, axis=1, keepdims=True) + 1e-9
        nh = np.clip(np.sum(n * hvec, axis=1), 0, 1)
        hl = ks[spec_m] * nh ** shin[spec_m] * ndl[spec_m]
        r = v - 2 * np.sum(v * n, axis=1, keepdims=True) * n
        cos_v = np.clip(-np.sum(v * n, axis=1), 0, 1)
        fres = env[spec_m] + (1 - env[spec_m]) * (1 - cos_v) ** 5 * 0.25
        refl = sky_colour(r, lighting, seed) * (fres * ambient_occ[spec_m])[:, None]
        refl[r[:, 1] > 0.05] *= 0.25  # reflecting the ground: darker
        col[spec_m] += hl[:, None] * sun_rgb[None, :] + refl
    glow = material == int(_M.LIGHT)
    col[glow] += albedo[glow] * f32(0.25)
    return col.astype(f32, copy=False)


def tone_map(radiance: np.ndarray, exposure: float) -> np.ndarray:
    """Linear radiance -> display values in [0, 1] (soft shoulder, sRGB-like gamma)."""
    f32 = np.float32
    x = np.maximum(radiance.astype(f32, copy=False) * f32(exposure), f32(0.0))
    x = x / (f32(1.0) + f32(0.35) * x)
    return np.clip(x, f32(0.0), f32(1.0)) ** f32(1 / 2.2)


#: LiDAR reflectance per material (KITTI-like values in [0, 1]).
REFLECTANCE = np.array([0.18, 0.3, 0.28, 0.35, 0.25, 0.2, 0.28, 0.3, 0.05, 0.05, 0.6, 0.9, 0.15, 0.2,
                        0.25, 0.3, 0.35, 0.45, 0.95, 0.3], dtype=np.float32)
