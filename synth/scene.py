"""Random street scenes in the rectified camera frame of camera 2's rig.

A scene is a straight street seen from a car driving in one of its lanes: road with lanes and
marks, kerbs, pavements, grass verges, buildings / houses / walls, trees, lamp posts, signs, a
distant skyline ring, and the objects (Car, Van, Truck, Pedestrian, Cyclist) parked and driving.

Frames: the street is built in a **level** frame: rect axes (x right, y down, z forward; the camera
near the origin) with the road surface the plane ``y = ground_y``. The level frame is then tilted
by a small per-frame road pitch and roll (``Scene.level_to_rect``, like KITTI's slopes and body
motion), so the horizon moves between frames; objects stay upright (KITTI boxes have yaw only) and
stand where their bottom centre meets the tilted road. The street has its own "road frame":
lateral ``t`` (to the right) and along-road ``s`` (forward), rotated about y by ``road_yaw``.
Object boxes follow KITTI labels: bottom centre, ``(h, w, l)``, ``ry`` about camera y; their
values are rounded to 0.01 before the meshes are built, so the written labels are exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.meshes import (Material, MeshBuilder, box, car_model, cyclist_model, cylinder,
                                    fit_to_box, pedestrian_model, place_in_rect, prism_z, sphere,
                                    truck_model, van_model)

#: KITTI object-training size statistics per class: mean and standard deviation of (h, w, l) in
#: metres (label order), from the KITTI train labels as commonly quoted (means agree with
#: F-PointNet's ``MEAN_SIZE_LWH`` in kitti.classes to a few cm), and hard limits for sampling.
CLASS_SIZE_STATS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float],
                                  tuple[float, float, float], tuple[float, float, float]]] = {
    #              mean (h, w, l)        std (h, w, l)          min                  max
    "Car": ((1.526, 1.629, 3.884), (0.137, 0.102, 0.426), (1.25, 1.40, 2.90), (2.00, 2.00, 5.20)),
    "Van": ((2.206, 1.901, 5.078), (0.317, 0.170, 0.672), (1.70, 1.60, 3.80), (2.90, 2.30, 6.50)),
    "Truck": ((3.253, 2.585, 10.109), (0.449, 0.217, 2.783), (2.50, 2.20, 6.00), (4.00, 2.90, 16.0)),
    "Pedestrian": ((1.761, 0.661, 0.842), (0.110, 0.142, 0.236), (1.45, 0.40, 0.40), (2.05, 1.00, 1.30)),
    "Cyclist": ((1.737, 0.597, 1.763), (0.095, 0.124, 0.177), (1.45, 0.40, 1.35), (2.00, 0.90, 2.10)),
}

_CAR_PAINTS = np.array([
    [0.8, 0.8, 0.8], [0.02, 0.02, 0.02], [0.35, 0.35, 0.37], [0.55, 0.56, 0.58], [0.6, 0.04, 0.03],
    [0.05, 0.1, 0.35], [0.1, 0.2, 0.12], [0.4, 0.3, 0.18], [0.75, 0.7, 0.55], [0.15, 0.15, 0.2],
    [0.7, 0.45, 0.05], [0.2, 0.35, 0.6],
])
# probability of each paint (white, black, greys, silver are most common)
_CAR_PAINT_P = np.array([0.18, 0.16, 0.14, 0.16, 0.07, 0.07, 0.03, 0.03, 0.04, 0.06, 0.02, 0.04])


@dataclass(frozen=True)
class Lighting:
    """Sun and sky of one scene.

    Attributes:
        sun_dir_rect: (3,) unit vector **towards** the sun (rect frame, y down, so its y < 0).
        sun_rgb: (3,) sun irradiance, linear RGB.
        sky_rgb: (3,) ambient sky irradiance, linear RGB.
        zenith_rgb, horizon_rgb: (3,) sky colours for rays that hit nothing.
        visibility_m: haze distance (aerial perspective), metres.
        exposure: multiplier before tone mapping.
        cloudiness: 0 clear … 1 overcast (clouds in the sky texture).
    """

    sun_dir_rect: np.ndarray
    sun_rgb: np.ndarray
    sky_rgb: np.ndarray
    zenith_rgb: np.ndarray
    horizon_rgb: np.ndarray
    visibility_m: float
    exposure: float
    cloudiness: float


@dataclass(frozen=True)
class RoadFrame:
    """The street's frame: ``p_rect = origin + t·right + s·forward`` (+ y for heights)."""

    origin_rect: np.ndarray
    right_rect: np.ndarray
    forward_rect: np.ndarray
    half_width_m: float
    lane_width_m: float
    n_lanes: int
    n_oncoming: int
    mark_width_m: float
    dash_m: tuple[float, float]
    crosswalk_s: tuple[float, float] | None = None

    def to_rect(self, t: np.ndarray, y: np.ndarray, s: np.ndarray) -> np.ndarray:
        """(N,) lateral, height (rect y), along -> (N, 3) rect points."""
        t = np.asarray(t, dtype=np.float64)
        s = np.asarray(s, dtype=np.float64)
        out = self.origin_rect + t[..., None] * self.right_rect + s[..., None] * self.forward_rect
        out[..., 1] = y
        return out

    def lateral(self, points_rect: np.ndarray) -> np.ndarray:
        """(..., 3) rect points -> (...,) lateral coordinate t."""
        d = points_rect - self.origin_rect
        return d[..., 0] * self.right_rect[0] + d[..., 2] * self.right_rect[2]

    def along(self, points_rect: np.ndarray) -> np.ndarray:
        """(..., 3) rect points -> (...,) along-road coordinate s."""
        d = points_rect - self.origin_rect
        return d[..., 0] * self.forward_rect[0] + d[..., 2] * self.forward_rect[2]

    def ry_of_heading(self, heading_rad: float) -> float:
        """KITTI ``ry`` of an object whose front points along the road turned by
        ``heading_rad`` (0 = along +s, π = oncoming, positive turns towards +t)."""
        hx = np.cos(heading_rad) * self.forward_rect[0] + np.sin(heading_rad) * self.right_rect[0]
        hz = np.cos(heading_rad) * self.forward_rect[2] + np.sin(heading_rad) * self.right_rect[2]
        return float(np.arctan2(-hz, hx))


@dataclass(frozen=True)
class SceneObject:
    """One labelled-class object: its box (KITTI label convention) and where its triangles are."""

    kind: str
    loc_rect: np.ndarray
    hwl: np.ndarray
    ry: float
    instance: int
    tri_range: tuple[int, int]
    parked: bool


@dataclass(frozen=True)
class Scene:
    """A scene ready for ray casting (all arrays in the rect frame).

    Attributes:
        vertices_rect: (V, 3) float32.
        triangles: (T, 3) uint32.
        tri_material: (T,) uint8 :class:`Material` values.
        tri_albedo: (T, 3) float32 linear RGB.
        tri_instance: (T,) int32 object index into ``objects`` or -1 for the static world.
        tri_param: (T,) float32 texture parameter in [0, 1) (varies a material's pattern).
        objects: the labelled-class objects.
        lighting, road: see :class:`Lighting`, :class:`RoadFrame`.
        ground_y: level-frame y of the road surface (camera height above the road, metres).
        kerb_m: kerb height; pavements are at ``ground_y - kerb_m``.
        level_to_rect: (3, 3) rotation from the level frame (where textures and the road frame
            live) to rect.
    """

    vertices_rect: np.ndarray
    triangles: np.ndarray
    tri_material: np.ndarray
    tri_albedo: np.ndarray
    tri_instance: np.ndarray
    tri_param: np.ndarray
    objects: tuple[SceneObject, ...]
    lighting: Lighting
    road: RoadFrame
    ground_y: float
    kerb_m: float
    level_to_rect: np.ndarray


@dataclass(frozen=True)
class DriveStyle:
    """What the frames of one drive share."""

    street: str  # "city", "residential", "road"
    ground_y: float
    n_lanes: int
    n_oncoming: int
    lane_width_m: float
    pavement_m: float
    kerb_m: float
    road_albedo: float
    facade_palette: np.ndarray
    grass_rgb: np.ndarray
    lighting: Lighting
    parking: tuple[bool, bool]


def sample_drive_style(rng: np.random.Generator) -> DriveStyle:
    """Draw one drive's style (street kind, lighting, road layout, palettes)."""
    street = str(rng.choice(["city", "residential", "road"], p=[0.45, 0.4, 0.15]))
    n_lanes = int(rng.choice([2, 2, 3, 4])) if street != "road" else int(rng.choice([2, 3, 4]))
    n_oncoming = n_lanes // 2 if rng.random() < 0.8 else 0
    overcast = rng.random() < 0.3
    el = np.deg2rad(rng.uniform(18, 62))
    az = rng.uniform(-np.pi, np.pi)
    sun_dir = np.array([np.cos(el) * np.sin(az), -np.sin(el), np.cos(el) * np.cos(az)])
    warm = rng.uniform(0.0, 0.15)
    sun_rgb = np.array([1.0, 0.95 - warm * 0.5, 0.88 - warm]) * (rng.uniform(0.25, 0.45) if overcast else rng.uniform(2.4, 3.2))
    sky_rgb = (np.array([0.62, 0.68, 0.8]) * rng.uniform(0.95, 1.25) if overcast
               else np.array([0.33, 0.42, 0.6]) * rng.uniform(0.8, 1.1))
    zenith = np.array([0.55, 0.58, 0.62]) if overcast else np.array([0.18, 0.32, 0.7]) * rng.uniform(0.8, 1.2)
    horizon = np.array([0.78, 0.8, 0.82]) if overcast else np.array([0.62, 0.72, 0.85]) * rng.uniform(0.9, 1.1)
    lighting = Lighting(sun_dir, sun_rgb, sky_rgb, zenith, horizon, float(rng.uniform(350, 1500)),
                        float(rng.uniform(0.85, 1.15)), float(1.0 if overcast else rng.uniform(0.0, 0.6)))
    base = rng.uniform(0.25, 0.75, (6, 3))
    facade = base * np.array([1.0, 0.9, 0.8]) * rng.uniform(0.7, 1.0, (6, 1))
    parking = (bool(rng.random() < 0.75), bool(rng.random() < 0.75)) if street != "road" else (False, False)
    return DriveStyle(
        street=street, ground_y=round(float(rng.uniform(1.6, 1.72)), 2), n_lanes=n_lanes,
        n_oncoming=n_oncoming, lane_width_m=float(rng.uniform(3.1, 3.7)),
        pavement_m=float(rng.uniform(2.0, 4.5)), kerb_m=float(rng.uniform(0.1, 0.16)),
        road_albedo=float(rng.uniform(0.09, 0.17)), facade_palette=facade,
        grass_rgb=np.array([0.12, 0.2, 0.05]) * rng.uniform(0.7, 1.3, 3), lighting=lighting,
        parking=parking)


def _sample_size(rng: np.random.Generator, kind: str) -> tuple[float, float, float]:
    mean, std, lo, hi = (np.asarray(a) for a in CLASS_SIZE_STATS[kind])
    hwl = np.clip(mean + std * rng.standard_normal(3) * np.array([0.9, 0.9, 0.9]), lo, hi)
    return tuple(float(round(v, 2)) for v in hwl)  # type: ignore[return-value]


def _paint(rng: np.random.Generator) -> np.ndarray:
    c = _CAR_PAINTS[rng.choice(len(_CAR_PAINTS), p=_CAR_PAINT_P)]
    return np.clip(c * rng.uniform(0.85, 1.1, 3), 0.01, 0.95)


def _obb_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Separating-axis test of two (4, 2) convex quads."""
    for poly in (a, b):
        for i in range(4):
            e = poly[(i + 1) % 4] - poly[i]
            axis = np.array([-e[1], e[0]])
            pa, pb = a @ axis, b @ axis
            if pa.max() < pb.min() or pb.max() < pa.min():
                return False
    return True


def _footprint(loc: np.ndarray, hwl: tuple[float, float, float], ry: float, pad: float) -> np.ndarray:
    h, w, l = hwl
    c, s = np.cos(ry), np.sin(ry)
    x = np.array([1, 1, -1, -1]) * (l / 2 + pad)
    z = np.array([1, -1, -1, 1]) * (w / 2 + pad)
    return np.column_stack([c * x + s * z + loc[0], -s * x + c * z + loc[2]])


class _SceneAssembler:
    """Collects static parts and objects, rejecting objects that overlap (BEV)."""

    def __init__(self) -> None:
        self.world = MeshBuilder()
        self.objects: list[tuple[str, np.ndarray, tuple[float, float, float], float, MeshBuilder, bool]] = []
        self.footprints: list[np.ndarray] = []

    def free(self, quad: np.ndarray) -> bool:
        return not any(_obb_overlap(quad, f) for f in self.footprints)

    def block(self, quad: np.ndarray) -> None:
        self.footprints.append(quad)

    def try_object(self, kind: str, loc: np.ndarray, hwl: tuple[float, float, float], ry: float,
                   model: MeshBuilder, parked: bool, pad: float = 0.15) -> bool:
        loc = np.round(np.asarray(loc, dtype=np.float64), 2)
        ry = float(round((ry + np.pi) % (2 * np.pi) - np.pi, 2))
        quad = _footprint(loc, hwl, ry, pad)
        if not self.free(quad):
            return False
        self.block(quad)
        self.objects.append((kind, loc, hwl, ry, model, parked))
        return True

    def build(self, lighting: Lighting, road: RoadFrame, ground_y: float, kerb_m: float,
              level_to_rect: np.ndarray) -> Scene:
        """The scene: static world rotated by ``level_to_rect``; objects are already in rect."""
        mb = MeshBuilder()
        mb.extend(self.world, transform=lambda v: v @ level_to_rect.T)
        objs = []
        for idx, (kind, loc, hwl, ry, model, parked) in enumerate(self.objects):
            t0 = mb.n_triangles
            mb.extend(model, transform=lambda v, hwl=hwl, loc=loc, ry=ry: place_in_rect(fit_to_box(v, hwl), loc, ry),
                      instance=idx)
            objs.append(SceneObject(kind, loc, np.array(hwl), ry, idx, (t0, mb.n_triangles), parked))
        v, t, m, a, i, p = mb.arrays()
        return Scene(v.astype(np.float32), t.astype(np.uint32), m, a, i, p, tuple(objs), lighting, road,
                     ground_y, kerb_m, level_to_rect)


def _model(rng: np.random.Generator, kind: str, hwl: tuple[float, float, float]) -> MeshBuilder:
    if kind == "Car":
        return car_model(rng, _paint(rng), hwl, int(rng.integers(0, 3)))
    if kind == "Van":
        return van_model(rng, _paint(rng), hwl)
    if kind == "Truck":
        return truck_model(rng, _paint(rng), rng.uniform(0.3, 0.9, 3), hwl)
    if kind == "Pedestrian":
        return pedestrian_model(rng, hwl)
    return cyclist_model(rng, _paint(rng), hwl)


def generate_scene(style: DriveStyle, rng: np.random.Generator, *, density: float = 1.0) -> Scene:
    """Draw one frame's scene.

    Args:
        style: the drive's shared style (see :func:`sample_drive_style`).
        rng: the frame's generator (the only source of randomness).
        density: multiplies the expected number of objects.
    """
    g = style.ground_y
    lw = style.lane_width_m
    half = style.n_lanes * lw / 2
    # road surface edges: the lanes plus a 2.3 m parking strip on sides with parking
    edges = {-1: half + (2.3 if style.parking[0] else 0.0), 1: half + (2.3 if style.parking[1] else 0.0)}

    def edge(side: int) -> float:
        return edges[int(side)]

    ego_lane = int(rng.integers(style.n_oncoming, style.n_lanes))  # drive in a same-direction lane
    t_cam = -half + (ego_lane + 0.5) * lw + rng.uniform(-0.3, 0.3)
    yaw = np.deg2rad(rng.normal(0.0, 1.8))
    fwd = np.array([np.sin(yaw), 0.0, np.cos(yaw)])
    right = np.array([np.cos(yaw), 0.0, -np.sin(yaw)])
    origin = -t_cam * right
    # an intersection with a cross street at s in [x0, x1] (or none), maybe a zebra crossing before it
    if rng.random() < {"city": 0.5, "residential": 0.4, "road": 0.25}[style.street]:
        s_x, w_x = rng.uniform(12, 60), rng.uniform(7, 11)
        cross = (s_x - w_x / 2, s_x + w_x / 2)
        zebra = (cross[0] - 4.5, cross[0] - 1.0) if rng.random() < 0.6 and style.street != "road" else None
    else:
        cross, zebra = (1e6, 1e6 + 1), None
    pitch, roll = np.deg2rad(np.clip(rng.normal(0.0, [0.5, 0.3]), -1.5, 1.5))
    cp, sp, cr, sr = np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    level_to_rect = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]]) @ np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    road = RoadFrame(origin, right, fwd, half, lw, style.n_lanes, style.n_oncoming,
                     float(rng.uniform(0.1, 0.15)), (3.0, float(rng.choice([6.0, 9.0]))), zebra)
    asm = _SceneAssembler()
    w = asm.world
    s0, s1 = -80.0, 260.0
    kerb = style.kerb_m
    pav = style.pavement_m

    def road_box(t0, t1, y0, y1, a0, a1):
        v, t = box(t0, t1, y0, y1, a0, a1)
        return road.to_rect(v[:, 0], v[:, 1], v[:, 2]), t

    def add_road_box(t0, t1, y0, y1, a0, a1, mat, alb):
        v, t = road_box(t0, t1, y0, y1, a0, a1)
        w.add(v, t, mat, alb)

    def in_cross(a: float, b: float, pad: float) -> bool:
        return a < cross[1] + pad and b > cross[0] - pad

    def segments(a: float, b: float) -> list[tuple[float, float]]:
        """[a, b] minus the cross street."""
        out = [(a, min(b, cross[0])), (max(a, cross[1]), b)]
        return [(u, v) for u, v in out if v > u]

    # road surface, kerbs + pavements (boxes whose sides are the kerbs), verges
    road_alb = (style.road_albedo,) * 3
    add_road_box(-edge(-1) - 0.3, edge(1) + 0.3, g, g + 0.5, s0, s1, Material.ROAD, road_alb)
    pav_alb = np.array([0.42, 0.4, 0.38]) * rng.uniform(0.8, 1.15)
    for side in (-1, 1):
        t_in, t_out = side * edge(side), side * (edge(side) + pav)
        for a, b in segments(s0, s1):
            add_road_box(min(t_in, t_in + side * 0.25), max(t_in, t_in + side * 0.25), g - kerb, g + 0.5, a, b,
                         Material.KERB, (0.55, 0.54, 0.52))
            add_road_box(min(t_in + side * 0.25, t_out), max(t_in + side * 0.25, t_out), g - kerb, g + 0.5, a, b,
                         Material.PAVEMENT, pav_alb)
        for a, b in segments(s0 - 200, s1 + 200):
            add_road_box(min(t_out, side * 400), max(t_out, side * 400), g - kerb + 0.02, g + 0.5, a, b,
                         Material.GRASS, style.grass_rgb)
        if cross[0] < s1:
            add_road_box(min(side * (edge(side) + 0.3), side * 400), max(side * (edge(side) + 0.3), side * 400), g, g + 0.5,
                         cross[0], cross[1], Material.ROAD, road_alb)
    # distant skyline ring (hills / tree line) so that no ground ray runs past ~230 m
    n_seg = 96
    ang = np.linspace(0, 2 * np.pi, n_seg + 1)
    radius = 230.0
    heights = 8 + 25 * np.abs(np.sin(ang * rng.uniform(2, 5) + rng.uniform(0, 6))) + rng.uniform(0, 8, n_seg + 1)
    ring_lo = np.column_stack([radius * np.sin(ang), np.full(n_seg + 1, g + 1.0), radius * np.cos(ang)])
    ring_hi = ring_lo.copy()
    ring_hi[:, 1] = g - heights
    v = np.vstack([ring_lo, ring_hi])
    i = np.arange(n_seg)
    t = np.concatenate([np.column_stack([i, i + 1, i + n_seg + 2]), np.column_stack([i, i + n_seg + 2, i + n_seg + 1])])
    w.add(v, t, Material.HILL, np.array([0.16, 0.2, 0.14]) * rng.uniform(0.7, 1.3, 3))

    # buildings / houses / walls along both sides
    for side in (-1, 1):
        t_front = edge(side) + pav
        s = s0 + rng.uniform(0, 10)
        while s < 200:
            if style.street == "city":
                length = rng.uniform(8, 30)
                setback = rng.uniform(0.0, 1.5) if rng.random() < 0.8 else rng.uniform(3, 10)
                height = rng.uniform(6, 22)
                gap = rng.uniform(0, 3) if rng.random() < 0.7 else rng.uniform(5, 15)
            elif style.street == "residential":
                length = rng.uniform(7, 14)
                setback = rng.uniform(3, 9)
                height = rng.uniform(4, 8)
                gap = rng.uniform(3, 12)
            else:
                length = rng.uniform(8, 20)
                setback = rng.uniform(10, 40)
                height = rng.uniform(3, 8)
                gap = rng.uniform(20, 80)
            depth = rng.uniform(8, 14)
            if in_cross(s, s + length, 2.0):
                if s < cross[0] - 2.0 - 3.0:
                    length = cross[0] - 2.0 - s
                else:
                    s = cross[1] + 2.0
                    continue
            if rng.random() < 0.92:
                ta = side * (t_front + setback)
                tb = side * (t_front + setback + depth)
                col = style.facade_palette[rng.integers(len(style.facade_palette))]
                v, t = road_box(min(ta, tb), max(ta, tb), g - kerb - height, g - kerb + 0.01, s, s + length)
                w.add(v, t, Material.FACADE, col, param=float(rng.random()) * (0.5 if style.street == "city" else 1.0))
                if style.street == "residential" and rng.random() < 0.8:
                    # gabled roof along the road
                    tm = (ta + tb) / 2
                    prof = np.array([[ta, g - kerb - height], [tb, g - kerb - height],
                                     [tm, g - kerb - height - rng.uniform(2, 4)]])
                    pv, pt = prism_z(prof, s - 0.3, s + length + 0.3)
                    w.add(road.to_rect(pv[:, 0], pv[:, 1], pv[:, 2]), pt, Material.ROOF,
                          np.array([0.35, 0.12, 0.08]) * rng.uniform(0.5, 1.3, 3))
                if style.street == "residential" and setback > 3 and rng.random() < 0.7:
                    wall_h = rng.uniform(0.5, 1.8)
                    tw = side * (t_front + 0.3)
                    add_road_box(min(tw, tw + side * 0.25), max(tw, tw + side * 0.25), g - kerb - wall_h,
                                 g - kerb + 0.01, s, s + length + gap * 0.7, Material.WALL,
                                 np.array([0.5, 0.45, 0.4]) * rng.uniform(0.6, 1.2, 3))
            s += length + gap
    # trees, lamp posts, signs on the pavement edge / verge
    for side in (-1, 1):
        s = s0 + rng.uniform(0, 10)
        tree_every = {"city": 18.0, "residential": 9.0, "road": 7.0}[style.street]
        while s < 180:
            t_pos = side * (edge(side) + pav - rng.uniform(0.5, 1.0)) if style.street != "road" else side * (edge(side) + pav + rng.uniform(1, 6))
            if rng.random() < 0.75 and not in_cross(s, s, 1.5):
                trunk_h = rng.uniform(1.8, 3.5)
                r_crown = rng.uniform(1.3, 3.0)
                base = road.to_rect(np.array([t_pos]), g - kerb, np.array([s]))[0]
                v, t = cylinder(1, (base[0], base[2]), rng.uniform(0.12, 0.25), base[1] - trunk_h - r_crown, base[1] + 0.01, n=7)
                w.add(v, t, Material.BARK, np.array([0.18, 0.12, 0.08]) * rng.uniform(0.6, 1.3))
                bumps = rng.uniform(0.75, 1.15, (5, 10))
                v, t = sphere((base[0], base[1] - trunk_h - r_crown * 0.8, base[2]),
                              (r_crown, r_crown * rng.uniform(0.8, 1.2), r_crown), n_lat=6, n_lon=10, bumps=bumps)
                w.add(v, t, Material.FOLIAGE, np.array([0.08, 0.15, 0.04]) * rng.uniform(0.6, 1.5, 3))
                asm.block(_footprint(base, (1, 0.6, 0.6), 0.0, 0.1))
            s += tree_every * rng.uniform(0.6, 1.4)
        s = s0 + rng.uniform(0, 30)
        while s < 150 and style.street != "road":
            t_pos = side * (edge(side) + 0.55)
            if in_cross(s, s + 3, 1.0):
                s += rng.uniform(18, 40)
                continue
            base = road.to_rect(np.array([t_pos]), g - kerb, np.array([s]))[0]
            ph = rng.uniform(6, 8.5)
            v, t = cylinder(1, (base[0], base[2]), 0.08, base[1] - ph, base[1] + 0.01, n=6)
            w.add(v, t, Material.METAL, (0.3, 0.31, 0.32))
            arm_t = t_pos - side * 1.5
            v, t = road_box(min(t_pos, arm_t), max(t_pos, arm_t), g - kerb - ph, g - kerb - ph + 0.12, s - 0.06, s + 0.06)
            w.add(v, t, Material.METAL, (0.3, 0.31, 0.32))
            asm.block(_footprint(base, (1, 0.3, 0.3), 0.0, 0.1))
            if rng.random() < 0.4:
                sb = road.to_rect(np.array([t_pos]), g - kerb, np.array([s + 3]))[0]
                v, t = cylinder(1, (sb[0], sb[2]), 0.04, sb[1] - 2.6, sb[1] + 0.01, n=6)
                w.add(v, t, Material.METAL, (0.4, 0.4, 0.42))
                v, t = road_box(t_pos - 0.35, t_pos + 0.35, g - kerb - 2.9, g - kerb - 2.2, s + 2.92, s + 2.96)
                w.add(v, t, Material.SIGN, [(0.7, 0.05, 0.03), (0.05, 0.15, 0.6), (0.85, 0.75, 0.05)][rng.integers(3)])
            s += rng.uniform(18, 40)

    # street furniture: bins, bollards, benches on the pavements; guard rails along open roads
    for side in (-1, 1):
        if style.street == "road":
            t_r = side * (edge(side) + 0.8)
            for a, b in segments(-60.0, 200.0):
                add_road_box(min(t_r, t_r + side * 0.06), max(t_r, t_r + side * 0.06), g - kerb - 0.8, g - kerb - 0.5,
                             a, b, Material.METAL, (0.45, 0.46, 0.48))
                for sp in np.arange(a + 1.0, b - 1.0, 4.0):
                    add_road_box(min(t_r, t_r + side * 0.15), max(t_r, t_r + side * 0.15), g - kerb - 0.75,
                                 g - kerb + 0.01, sp, sp + 0.12, Material.METAL, (0.4, 0.4, 0.42))
            continue
        for _ in range(int(rng.poisson(5))):
            s_f = rng.uniform(-20, 90)
            if in_cross(s_f, s_f + 2, 1.0):
                continue
            kind = int(rng.integers(0, 3))
            t_f = side * (edge(side) + (rng.uniform(0.5, 0.9) if kind != 2 else pav - 0.5))
            size = {0: (0.6, 0.6, 1.1), 1: (0.2, 0.2, 0.9), 2: (1.8, 0.6, 0.8)}[kind]
            base = road.to_rect(np.array([t_f]), g - kerb, np.array([s_f]))[0]
            quad = _footprint(base, (size[2], size[1], size[0]), road.ry_of_heading(0.0), 0.1)
            if not asm.free(quad):
                continue
            asm.block(quad)
            a, b = s_f - size[0] / 2, s_f + size[0] / 2
            tt0, tt1 = t_f - size[1] / 2, t_f + size[1] / 2
            col = [np.array([0.1, 0.25, 0.12]) * rng.uniform(0.6, 1.6), (0.3, 0.3, 0.32), (0.35, 0.22, 0.12)][kind]
            add_road_box(tt0, tt1, g - kerb - size[2], g - kerb + 0.01, a, b,
                         [Material.PLASTIC, Material.METAL, Material.BARK][kind], col)

    # objects -------------------------------------------------------------------------
    # keep the ego car's own footprint free
    asm.block(_footprint(np.array([0.0, g, -1.3]), (1.5, 2.0, 5.0), float(road.ry_of_heading(0.0)), 0.3))

    def put(kind: str, t_pos: float, s_pos: float, y: float, heading: float, parked: bool) -> bool:
        hwl = _sample_size(rng, kind)
        loc = level_to_rect @ road.to_rect(np.array([t_pos]), y, np.array([s_pos]))[0]
        ry = road.ry_of_heading(heading)
        return asm.try_object(kind, loc, hwl, ry, _model(rng, kind, hwl), parked)

    def vehicle_kind(parked: bool) -> str:
        p_truck = 0.02 if parked else 0.05
        return str(rng.choice(["Car", "Van", "Truck"], p=[0.92 - p_truck, 0.08, p_truck]))

    # parked rows along the kerbs
    for side_i, side in enumerate((-1, 1)):
        if not style.parking[side_i]:
            continue
        occupancy = rng.uniform(0.1, 0.5) * min(1.0, density)
        s = rng.uniform(-30, -10)
        while s < 75:
            kind = vehicle_kind(True)
            if in_cross(s, s + 6, 2.0):
                s = cross[1] + 2.0
                continue
            if rng.random() < occupancy:
                mean_l = CLASS_SIZE_STATS[kind][0][2]
                heading = (0.0 if rng.random() < 0.75 else np.pi) + rng.normal(0, 0.04)
                t_pos = side * (half + 1.15 + rng.uniform(-0.1, 0.1))
                put(kind, t_pos, s + mean_l / 2, g, heading, True)
                s += mean_l + rng.uniform(0.6, 3.0)
            else:
                s += rng.uniform(3, 8)
    # traffic in the lanes
    n_cap = {"city": 1.5, "residential": 0.9, "road": 1.4}[style.street] * density * 0.4
    for lane in range(style.n_lanes):
        oncoming = lane < style.n_oncoming
        t_lane = -half + (lane + 0.5) * lw
        for _ in range(int(rng.poisson(n_cap * 2.0))):
            kind = vehicle_kind(False)
            s_pos = rng.uniform(-35, 85)
            if lane == ego_lane and -8 < s_pos < 12:
                continue
            heading = (np.pi if oncoming else 0.0) + rng.normal(0, 0.03)
            put(kind, t_lane + rng.normal(0, 0.25), s_pos, g, heading, False)
    # pedestrians on the pavements (some in small groups), a few crossing
    n_ped = int(rng.poisson({"city": 1.0, "residential": 0.5, "road": 0.1}[style.street] * density))
    for _ in range(n_ped):
        side = rng.choice([-1, 1])
        s_pos = rng.uniform(2, 45)
        t_pos = side * (edge(side) + rng.uniform(0.6, pav - 0.4))
        group = 1 if rng.random() < 0.7 else int(rng.integers(2, 4))
        heading = (0.0 if rng.random() < 0.5 else np.pi) + rng.normal(0, 0.3)
        for k in range(group):
            put("Pedestrian", t_pos + rng.normal(0, 0.4), s_pos + k * rng.uniform(0.6, 1.2), g - kerb,
                heading + rng.normal(0, 0.2), False)
    if rng.random() < 0.15 * density:
        put("Pedestrian", -half + rng.uniform(0, 2 * half), rng.uniform(8, 30), g,
            rng.choice([-np.pi / 2, np.pi / 2]) + rng.normal(0, 0.2), False)
    n_cyc = int(rng.poisson({"city": 0.3, "residential": 0.25, "road": 0.12}[style.street] * density))
    for _ in range(n_cyc):
        oncoming = rng.random() < 0.3 and style.n_oncoming > 0
        t_pos = (-half + rng.uniform(0.5, 1.2)) if oncoming else (half - rng.uniform(0.5, 1.2))
        put("Cyclist", t_pos, rng.uniform(3, 50), g, (np.pi if oncoming else 0.0) + rng.normal(0, 0.08), False)
    # cross traffic: right-hand traffic, the near lane moves to +t
    if cross[0] < s1:
        for _ in range(int(rng.poisson(1.6 * density))):
            near = rng.random() < 0.5
            s_pos = (cross[0] + cross[1]) / 2 + (-1 if near else 1) * (cross[1] - cross[0]) / 4
            heading = (np.pi / 2 if near else -np.pi / 2) + rng.normal(0, 0.05)
            put(vehicle_kind(False), rng.uniform(-45, 45), s_pos + rng.normal(0, 0.2), g, heading, False)
        for _ in range(int(rng.poisson(0.8 * density))):  # pedestrians crossing the side street
            side = rng.choice([-1, 1])
            put("Pedestrian", side * (edge(side) + rng.uniform(0.5, pav)), rng.uniform(cross[0] + 0.5, cross[1] - 0.5),
                g, rng.choice([0.0, np.pi]) + rng.normal(0, 0.2), False)
    return asm.build(style.lighting, road, g, kerb, level_to_rect)
