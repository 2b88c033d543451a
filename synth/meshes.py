"""Triangle meshes of the embedded benchmark: primitives, materials and the object models.

Object models are built in the **box frame** of a KITTI label: x along the length (front = +x),
y down (the bottom of the box at y = 0, the top at y = -h), z along the width; then fitted to the
exact box size and placed with :func:`place_in_rect` (the rotation of
:func:`kitti.boxes.box_corners_rect`). A model never leaves its box, so the label box is the
tight box of the mesh.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np


class Material(IntEnum):
    """Surface kinds: they pick the procedural texture, the specular model and the LiDAR
    reflectance (see ``shading.py``)."""

    ROAD = 0
    KERB = 1
    PAVEMENT = 2
    GRASS = 3
    FACADE = 4
    ROOF = 5
    WALL = 6
    PAINT = 7
    GLASS = 8
    TYRE = 9
    RIM = 10
    LIGHT = 11
    PLASTIC = 12
    CLOTH = 13
    SKIN = 14
    BARK = 15
    FOLIAGE = 16
    METAL = 17
    SIGN = 18
    HILL = 19


@dataclass
class MeshBuilder:
    """Accumulates triangles with a material, an albedo (linear RGB), an instance id and a texture
    parameter in [0, 1) each (the parameter varies a material's pattern, e.g. a facade's windows)."""

    vertices: list[np.ndarray] = field(default_factory=list)
    triangles: list[np.ndarray] = field(default_factory=list)
    materials: list[np.ndarray] = field(default_factory=list)
    albedos: list[np.ndarray] = field(default_factory=list)
    instances: list[np.ndarray] = field(default_factory=list)
    params: list[np.ndarray] = field(default_factory=list)
    n_vertices: int = 0
    n_triangles: int = 0

    def add(self, vertices: np.ndarray, triangles: np.ndarray, material: Material,
            albedo: tuple[float, float, float] | np.ndarray, instance: int = -1, param: float = 0.0) -> None:
        """Add one part; ``triangles`` index into ``vertices``."""
        v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
        t = np.asarray(triangles, dtype=np.int64).reshape(-1, 3)
        self.vertices.append(v)
        self.triangles.append(t + self.n_vertices)
        n = t.shape[0]
        self.materials.append(np.full(n, int(material), dtype=np.uint8))
        self.albedos.append(np.tile(np.asarray(albedo, dtype=np.float32).reshape(1, 3), (n, 1)))
        self.instances.append(np.full(n, instance, dtype=np.int32))
        self.params.append(np.full(n, param, dtype=np.float32))
        self.n_vertices += v.shape[0]
        self.n_triangles += n

    def extend(self, other: "MeshBuilder", transform=None, instance: int | None = None) -> None:
        """Append all parts of ``other``; ``transform`` maps (N, 3) vertices."""
        if other.n_triangles == 0:
            return
        v, t, m, a, i, p = other.arrays()
        if transform is not None:
            v = transform(v)
        if instance is not None:
            i = np.full_like(i, instance)
        self.vertices.append(v)
        self.triangles.append(t.astype(np.int64) + self.n_vertices)
        self.materials.append(m)
        self.albedos.append(a)
        self.instances.append(i)
        self.params.append(p)
        self.n_vertices += v.shape[0]
        self.n_triangles += t.shape[0]

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(V, 3) float64 vertices, (T, 3) int64 triangles, (T,) uint8 materials,
        (T, 3) float32 albedos, (T,) int32 instances, (T,) float32 texture parameters."""
        if not self.vertices:
            return (np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros(0, np.uint8),
                    np.zeros((0, 3), np.float32), np.zeros(0, np.int32), np.zeros(0, np.float32))
        return (np.concatenate(self.vertices), np.concatenate(self.triangles),
                np.concatenate(self.materials), np.concatenate(self.albedos),
                np.concatenate(self.instances), np.concatenate(self.params))


# ---------------------------------------------------------------------------------- primitives
_BOX_FACES = np.array([[0, 1, 2], [0, 2, 3], [4, 6, 5], [4, 7, 6], [0, 4, 5], [0, 5, 1],
                       [1, 5, 6], [1, 6, 2], [2, 6, 7], [2, 7, 3], [3, 7, 4], [3, 4, 0]])


def box(x0: float, x1: float, y0: float, y1: float, z0: float, z1: float) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned box: (8, 3) vertices, (12, 3) triangles."""
    v = np.array([[x0, y0, z0], [x1, y0, z0], [x1, y0, z1], [x0, y0, z1],
                  [x0, y1, z0], [x1, y1, z0], [x1, y1, z1], [x0, y1, z1]], dtype=np.float64)
    return v, _BOX_FACES.copy()


def prism_z(profile_xy: np.ndarray, z0: float, z1: float) -> tuple[np.ndarray, np.ndarray]:
    """Extrude a star-shaped polygon given in the (x, y) plane from z0 to z1.

    Returns vertices and triangles; caps are fanned from the polygon's centroid.
    """
    p = np.asarray(profile_xy, dtype=np.float64)
    k = p.shape[0]
    c = p.mean(axis=0)
    ring0 = np.column_stack([p, np.full(k, z0)])
    ring1 = np.column_stack([p, np.full(k, z1)])
    v = np.vstack([ring0, ring1, [[c[0], c[1], z0], [c[0], c[1], z1]]])
    i = np.arange(k)
    j = (i + 1) % k
    sides = np.concatenate([np.column_stack([i, j, j + k]), np.column_stack([i, j + k, i + k])])
    cap0 = np.column_stack([np.full(k, 2 * k), j, i])
    cap1 = np.column_stack([np.full(k, 2 * k + 1), i + k, j + k])
    return v, np.concatenate([sides, cap0, cap1])


def cylinder(axis: int, center: tuple[float, float], radius: float, a0: float, a1: float,
             n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Closed cylinder along coordinate ``axis`` (0 x, 1 y, 2 z) from a0 to a1.

    ``center`` holds the two other coordinates in increasing axis order.
    """
    ang = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    ring = np.column_stack([center[0] + radius * np.cos(ang), center[1] + radius * np.sin(ang)])
    v, t = prism_z(ring, a0, a1)
    # prism_z extrudes along z: permute so the extrusion runs along `axis`
    order = {0: [2, 0, 1], 1: [0, 2, 1], 2: [0, 1, 2]}[axis]
    return v[:, order], t


def sphere(center: tuple[float, float, float], radii: tuple[float, float, float], n_lat: int = 6,
           n_lon: int = 10, bumps: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """UV ellipsoid; ``bumps`` (n_lat - 1, n_lon) scales the radius of the inner rings."""
    lat = np.linspace(0, np.pi, n_lat + 1)[1:-1]
    lon = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    s = np.ones_like(la) if bumps is None else bumps
    ring = np.stack([np.sin(la) * np.cos(lo) * s, -np.cos(la) * s, np.sin(la) * np.sin(lo) * s], -1)
    v = np.vstack([[[0, -1, 0]], ring.reshape(-1, 3), [[0, 1, 0]]]) * np.asarray(radii) + np.asarray(center)
    tris = []
    top, bottom = 0, 1 + ring.shape[0] * ring.shape[1]
    nr = ring.shape[0]
    for j in range(n_lon):
        jn = (j + 1) % n_lon
        tris.append([top, 1 + j, 1 + jn])
        tris.append([bottom, 1 + (nr - 1) * n_lon + jn, 1 + (nr - 1) * n_lon + j])
        for i in range(nr - 1):
            a, b = 1 + i * n_lon + j, 1 + i * n_lon + jn
            c, d = a + n_lon, b + n_lon
            tris.append([a, c, b])
            tris.append([b, c, d])
    return v, np.array(tris)


# ---------------------------------------------------------------------------------- placement
def place_in_rect(vertices_box: np.ndarray, loc_rect: np.ndarray, ry: float) -> np.ndarray:
    """Box-frame vertices -> rect frame, the rotation and translation of ``box_corners_rect``."""
    c, s = np.cos(ry), np.sin(ry)
    v = np.asarray(vertices_box, dtype=np.float64)
    out = np.empty_like(v)
    out[:, 0] = c * v[:, 0] + s * v[:, 2] + loc_rect[0]
    out[:, 1] = v[:, 1] + loc_rect[1]
    out[:, 2] = -s * v[:, 0] + c * v[:, 2] + loc_rect[2]
    return out


def fit_to_box(vertices: np.ndarray, hwl: tuple[float, float, float], margin_m: float = 0.002) -> np.ndarray:
    """Scale and shift box-frame vertices so their extent is the box ``(h, w, l)`` shrunk by
    ``margin_m`` on every side (so that float32 LiDAR points on the mesh stay inside the label box)."""
    v = np.asarray(vertices, dtype=np.float64)
    lo, hi = v.min(axis=0), v.max(axis=0)
    h, w, l = hwl
    target_lo = np.array([-l / 2 + margin_m, -h + margin_m, -w / 2 + margin_m])
    target_hi = np.array([l / 2 - margin_m, -margin_m, w / 2 - margin_m])
    scale = (target_hi - target_lo) / np.maximum(hi - lo, 1e-9)
    return (v - lo) * scale + target_lo


# ---------------------------------------------------------------------------------- object models
def _profile(points: list[tuple[float, float]], l: float, h: float) -> np.ndarray:
    """Normalised (x / l, height / h) profile -> box-frame (x, y) with y down."""
    p = np.asarray(points, dtype=np.float64)
    return np.column_stack([p[:, 0] * l, -p[:, 1] * h])


def _wheels(mb: MeshBuilder, xs: list[float], radius: float, w: float, tyre_w: float) -> None:
    for x in xs:
        for side in (-1.0, 1.0):
            z_out = side * w / 2
            z_in = side * (w / 2 - tyre_w)
            v, t = cylinder(2, (x, -radius), radius, min(z_in, z_out), max(z_in, z_out), n=14)
            mb.add(v, t, Material.TYRE, (0.03, 0.03, 0.03))
            zr = z_out - side * 0.01
            v, t = cylinder(2, (x, -radius), radius * 0.58, min(zr, z_out - side * 0.03),
                            max(zr, z_out - side * 0.03), n=10)
            mb.add(v, t, Material.RIM, (0.45, 0.45, 0.47))


def car_model(rng: np.random.Generator, paint: np.ndarray, hwl: tuple[float, float, float],
              style: int) -> MeshBuilder:
    """A passenger car: body, cabin with windows, four wheels, lights (box frame, unfitted).

    ``style`` 0 saloon, 1 hatchback, 2 estate / SUV.
    """
    h, w, l = hwl
    mb = MeshBuilder()
    r = float(np.clip(0.205 * h, 0.27, 0.38))
    belt = rng.uniform(0.52, 0.6)
    body = [(-0.5, 0.42), (-0.49, 0.2), (-0.46, 0.12), (0.46, 0.12), (0.5, 0.22),
            (0.5, 0.4), (0.47, belt - 0.02), (0.25, belt), (-0.47, belt + 0.01)]
    bw = w * 0.96
    v, t = prism_z(_profile(body, l, h), -bw / 2, bw / 2)
    mb.add(v, t, Material.PAINT, paint)
    # cabin: a trapezoid, roof between x_r0 and x_r1
    rear = {0: -0.36, 1: -0.44, 2: -0.46}[style]
    rear_top = {0: -0.28, 1: -0.40, 2: -0.44}[style]
    front_top = rng.uniform(0.02, 0.1)
    cabin = [(rear, belt), (0.24, belt), (front_top, 1.0), (rear_top, 1.0)]
    cw = w * rng.uniform(0.8, 0.86)
    v, t = prism_z(_profile(cabin, l, h), -cw / 2, cw / 2)
    # windows: caps and slopes glass, roof (the quad between the two top points) paint
    n = len(cabin)
    k_roof = 2  # side quad from point 2 to 3 is the roof
    is_roof = np.zeros(t.shape[0], dtype=bool)
    is_roof[[k_roof, n + k_roof]] = True
    mb.add(v, t[~is_roof], Material.GLASS, (0.02, 0.025, 0.03))
    mb.add(v, t[is_roof], Material.PAINT, paint)
    # pillars: thin painted boxes at the cabin corners give the window frame look
    for x in (rear + 0.01, 0.23):
        v, t = box(x * l - 0.04, x * l + 0.04, -belt * h - 0.02, -belt * h - 0.04, -cw / 2 - 0.005, cw / 2 + 0.005)
        mb.add(v, t, Material.PAINT, paint)
    # lights
    y_l = -(belt - 0.1) * h
    for side in (-1, 1):
        zc = side * (bw / 2 - 0.22)
        v, t = box(l * 0.5 - 0.03, l * 0.5, y_l - 0.1, y_l + 0.02, zc - 0.17, zc + 0.17)
        mb.add(v, t, Material.LIGHT, (0.9, 0.88, 0.8))
        v, t = box(-l * 0.5, -l * 0.5 + 0.03, y_l - 0.12, y_l + 0.02, zc - 0.15, zc + 0.15)
        mb.add(v, t, Material.LIGHT, (0.7, 0.04, 0.03))
    # bumpers / plate
    v, t = box(l * 0.5 - 0.02, l * 0.5 + 0.0, -0.3 * h, -0.2 * h, -0.26, 0.26)
    mb.add(v, t, Material.SIGN, (0.85, 0.85, 0.85))
    v, t = box(-l * 0.5, -l * 0.5 + 0.04, -0.26 * h, -0.14 * h, -bw / 2, bw / 2)
    mb.add(v, t, Material.PLASTIC, (0.05, 0.05, 0.05))
    _wheels(mb, [0.5 * l - 0.2 * l, -0.5 * l + 0.19 * l], r, w, 0.2)
    return mb


def van_model(rng: np.random.Generator, paint: np.ndarray, hwl: tuple[float, float, float]) -> MeshBuilder:
    """A van: tall box body with a sloped front, side and front windows, four wheels."""
    h, w, l = hwl
    mb = MeshBuilder()
    r = float(np.clip(0.16 * h, 0.3, 0.4))
    nose = rng.uniform(0.3, 0.42)
    body = [(-0.5, 0.14), (0.46, 0.14), (0.5, 0.22), (0.5, 0.5), (0.42, nose + 0.45), (0.3, 1.0), (-0.5, 1.0)]
    bw = w * 0.97
    v, t = prism_z(_profile(body, l, h), -bw / 2, bw / 2)
    mb.add(v, t, Material.PAINT, paint)
    # windscreen and side windows as thin glass slabs on the surface
    v, t = prism_z(_profile([(0.425, 0.56), (0.48, 0.52), (0.33, 0.96), (0.3, 0.97)], l, h),
                   -bw / 2 + 0.08, bw / 2 - 0.08)
    mb.add(v, t, Material.GLASS, (0.02, 0.025, 0.03))
    for side in (-1, 1):
        z0 = side * bw / 2
        v, t = box(0.05 * l, 0.38 * l, -0.9 * h, -0.62 * h, min(z0, z0 + side * 0.01), max(z0, z0 + side * 0.01))
        mb.add(v, t, Material.GLASS, (0.02, 0.025, 0.03))
        zc = side * (bw / 2 - 0.22)
        v, t = box(l * 0.5 - 0.03, l * 0.5, -0.42 * h, -0.34 * h, zc - 0.15, zc + 0.15)
        mb.add(v, t, Material.LIGHT, (0.9, 0.88, 0.8))
        v, t = box(-l * 0.5, -l * 0.5 + 0.03, -0.45 * h, -0.3 * h, zc - 0.1, zc + 0.1)
        mb.add(v, t, Material.LIGHT, (0.7, 0.04, 0.03))
    _wheels(mb, [0.5 * l - 0.17 * l, -0.5 * l + 0.18 * l], r, w, 0.22)
    return mb


def truck_model(rng: np.random.Generator, paint: np.ndarray, cargo: np.ndarray,
                hwl: tuple[float, float, float]) -> MeshBuilder:
    """A lorry: a cab at the front, a cargo box behind, three axles."""
    h, w, l = hwl
    mb = MeshBuilder()
    r = 0.48
    cab_l = min(2.3, 0.3 * l)
    x_cab = l / 2 - cab_l
    cab_h = h * rng.uniform(0.78, 0.9)
    v, t = prism_z(np.array([[x_cab, -0.5], [l / 2, -0.5], [l / 2, -cab_h * 0.55], [l / 2 - 0.25, -cab_h],
                             [x_cab, -cab_h]]), -w / 2 * 0.97, w / 2 * 0.97)
    mb.add(v, t, Material.PAINT, paint)
    v, t = box(l / 2 - 0.02, l / 2 + 0.0, -cab_h * 0.92, -cab_h * 0.6, -w / 2 * 0.85, w / 2 * 0.85)
    mb.add(v, t, Material.GLASS, (0.02, 0.025, 0.03))
    v, t = box(-l / 2, x_cab - 0.15, -h, -1.05, -w / 2, w / 2)
    mb.add(v, t, Material.PLASTIC, cargo)
    v, t = box(-l / 2 + 0.3, l / 2 - 0.3, -1.05, -0.5, -w / 2 * 0.8, w / 2 * 0.8)
    mb.add(v, t, Material.METAL, (0.08, 0.08, 0.08))
    _wheels(mb, [l / 2 - 0.7 * cab_l, -l / 2 + 1.4, -l / 2 + 2.5], r, w, 0.3)
    return mb


def pedestrian_model(rng: np.random.Generator, hwl: tuple[float, float, float]) -> MeshBuilder:
    """A person walking along +x: legs in stride, torso, arms, head."""
    h, w, l = hwl
    mb = MeshBuilder()
    skin = np.array([0.55, 0.38, 0.28]) * rng.uniform(0.45, 1.15)
    top = rng.uniform(0.05, 0.7, 3) * rng.uniform(0.3, 1.0)
    trousers = rng.uniform(0.03, 0.35, 3) * np.array([1.0, 1.0, rng.uniform(1.0, 1.6)])
    stride = rng.uniform(0.1, 0.35)
    hip = 0.5 * h
    for sx in (-stride, stride):
        v, t = prism_z(np.array([[sx * 0.95, 0.0], [sx + 0.12, 0.0], [0.07, -hip], [-0.07, -hip]]), -0.09, 0.09)
        v[:, 2] += 0.1 * np.sign(sx)
        mb.add(v, t, Material.CLOTH, trousers)
    v, t = box(-0.12, 0.12, -0.8 * h, -hip + 0.02, -0.2, 0.2)
    mb.add(v, t, Material.CLOTH, top)
    v, t = box(-0.1, 0.1, -0.83 * h, -0.79 * h, -0.07, 0.07)
    mb.add(v, t, Material.SKIN, skin)
    for side in (-1, 1):
        swing = -side * stride * 0.8
        v, t = prism_z(np.array([[-0.04, -0.79 * h], [0.04, -0.79 * h], [swing + 0.04, -0.46 * h],
                                 [swing - 0.04, -0.46 * h]]), side * 0.21, side * 0.29)
        mb.add(v, t, Material.CLOTH, top)
    v, t = sphere((0.0, -0.91 * h, 0.0), (0.1, 0.09 * h, 0.085), n_lat=5, n_lon=8)
    mb.add(v, t, Material.SKIN, skin)
    hair = rng.uniform(0.02, 0.3) * np.array([1.0, 0.8, 0.6])
    v, t = sphere((-0.01, -0.955 * h, 0.0), (0.105, 0.05 * h, 0.09), n_lat=4, n_lon=8)
    mb.add(v, t, Material.CLOTH, hair)
    return mb


def cyclist_model(rng: np.random.Generator, frame_paint: np.ndarray, hwl: tuple[float, float, float]) -> MeshBuilder:
    """A bicycle along +x with its rider."""
    h, w, l = hwl
    mb = MeshBuilder()
    r = 0.34
    xa, xb = -0.53, 0.53
    for x in (xa, xb):
        v, t = cylinder(2, (x, -r), r, -0.025, 0.025, n=16)
        mb.add(v, t, Material.TYRE, (0.03, 0.03, 0.03))
    for a, b in (((xa, -r), (0.0, -r)), ((0.0, -r), (0.35, -0.85)), ((xa, -r), (-0.1, -0.85)),
                 ((-0.1, -0.85), (0.35, -0.85)), ((0.35, -0.85), (xb, -r)), ((0.35, -0.85), (0.4, -1.0))):
        d = np.array(b) - np.array(a)
        nrm = np.array([-d[1], d[0]]) / np.linalg.norm(d) * 0.025
        quad = np.array([np.array(a) + nrm, np.array(b) + nrm, np.array(b) - nrm, np.array(a) - nrm])
        v, t = prism_z(quad, -0.02, 0.02)
        mb.add(v, t, Material.METAL, frame_paint)
    v, t = box(0.3, 0.5, -1.02, -0.98, -0.28, 0.28)
    mb.add(v, t, Material.METAL, (0.05, 0.05, 0.05))
    clothes = rng.uniform(0.03, 0.7, 3) * rng.uniform(0.3, 1.0)
    skin = np.array([0.55, 0.38, 0.28]) * rng.uniform(0.45, 1.15)
    for side in (-1, 1):
        v, t = prism_z(np.array([[-0.15, -0.9], [-0.02, -0.9], [0.05 + 0.08 * side, -0.25], [-0.05 + 0.08 * side, -0.25]]),
                       side * 0.06, side * 0.16)
        mb.add(v, t, Material.CLOTH, clothes * 0.6)
    v, t = prism_z(np.array([[-0.2, -0.9], [-0.05, -0.95], [0.22, -1.38], [0.05, -1.45]]), -0.18, 0.18)
    mb.add(v, t, Material.CLOTH, clothes)
    for side in (-1, 1):
        v, t = prism_z(np.array([[0.12, -1.38], [0.18, -1.4], [0.42, -1.02], [0.36, -1.0]]), side * 0.16, side * 0.23)
        mb.add(v, t, Material.CLOTH, clothes)
    v, t = sphere((0.18, -1.55, 0.0), (0.11, 0.12, 0.1), n_lat=5, n_lon=8)
    mb.add(v, t, Material.SKIN, skin)
    v, t = sphere((0.17, -1.6, 0.0), (0.14, 0.09, 0.12), n_lat=4, n_lon=8)
    mb.add(v, t, Material.PLASTIC, rng.uniform(0.05, 0.8, 3))
    return mb
