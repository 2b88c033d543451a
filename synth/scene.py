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

from synth.settings import Range, SceneSettings
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


def generate_scene(style: DriveStyle, rng: np.random.Generator, *, density: float = 1.0,
                   settings: SceneSettings = SceneSettings()) -> Scene:
    """Draw one frame's scene.

    The steps, in the order they draw from ``rng`` (which fixes the rendered bytes): lay out the
    street (:func:`_lay_out_street`), then the ground, the skyline ring, buildings, trees and lamp
    posts, street furniture, and the objects (parked cars, traffic, pedestrians, cyclists, cross
    traffic), each a method of :class:`_StreetBuilder`.

    Args:
        style: the drive's shared style (see :func:`sample_drive_style`).
        rng: the frame's generator (the only source of randomness).
        density: multiplies the expected number of objects.
        settings: the generator's constants (:class:`~synth.settings.SceneSettings`).
    """
    b = _StreetBuilder(style, rng, density, settings)
    b.add_ground()
    b.add_skyline()
    b.add_buildings()
    for side in (-1, 1):
        b.add_trees(side)
        b.add_lamp_posts(side)
    for side in (-1, 1):
        b.add_furniture(side)
    b.keep_ego_free()
    for side_i, side in enumerate((-1, 1)):
        if style.parking[side_i]:
            b.park_cars(side)
    b.add_traffic()
    b.add_pedestrians()
    b.add_cyclists()
    if b.cross[0] < b.s1:
        b.add_cross_traffic()
    return b.asm.build(style.lighting, b.road, b.g, b.kerb, b.level_to_rect)


#: A cross street that never comes: the "no intersection" value of ``_StreetBuilder.cross``.
_NO_CROSS: tuple[float, float] = (1e6, 1e6 + 1)


def _lay_out_street(style: DriveStyle, rng: np.random.Generator, p: SceneSettings, half: float
                    ) -> tuple[int, RoadFrame, tuple[float, float], np.ndarray]:
    """The camera's lane, the road frame, the cross street and the frame's road tilt.

    Returns ``(ego_lane, road, cross, level_to_rect)``: ``cross`` is the along-road interval of
    the cross street (``_NO_CROSS`` when there is none), ``level_to_rect`` the (3, 3) rotation of
    the road pitch and roll.
    """
    lw = style.lane_width_m
    ego_lane = int(rng.integers(style.n_oncoming, style.n_lanes))  # drive in a same-direction lane
    t_cam = -half + (ego_lane + 0.5) * lw + rng.uniform(-p.camera_lateral_jitter_m, p.camera_lateral_jitter_m)
    yaw = np.deg2rad(rng.normal(0.0, p.road_yaw_std_deg))
    fwd = np.array([np.sin(yaw), 0.0, np.cos(yaw)])
    right = np.array([np.cos(yaw), 0.0, -np.sin(yaw)])
    origin = -t_cam * right
    # an intersection with a cross street at s in [x0, x1] (or none), maybe a zebra crossing before it
    if rng.random() < p.street_kinds[style.street].intersection_p:
        s_x, w_x = rng.uniform(*p.cross_centre_m), rng.uniform(*p.cross_width_m)
        cross = (s_x - w_x / 2, s_x + w_x / 2)
        zebra = ((cross[0] - p.zebra_from_cross_m[0], cross[0] - p.zebra_from_cross_m[1])
                 if rng.random() < p.zebra_p and style.street != "road" else None)
    else:
        cross, zebra = _NO_CROSS, None
    pitch, roll = np.deg2rad(np.clip(rng.normal(0.0, list(p.tilt_std_deg)), -p.tilt_max_deg, p.tilt_max_deg))
    cp, sp, cr, sr = np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    level_to_rect = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]]) @ np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    road = RoadFrame(origin, right, fwd, half, lw, style.n_lanes, style.n_oncoming,
                     float(rng.uniform(*p.mark_width_m)), (p.dash_m, float(rng.choice(list(p.dash_gaps_m)))), zebra)
    return ego_lane, road, cross, level_to_rect


class _StreetBuilder:
    """One frame's street being built: the static world (level frame) and the objects (rect)."""

    def __init__(self, style: DriveStyle, rng: np.random.Generator, density: float, p: SceneSettings) -> None:
        self.style, self.rng, self.density, self.p = style, rng, density, p
        self.kind = p.street_kinds[style.street]
        self.g = style.ground_y
        self.half = style.n_lanes * style.lane_width_m / 2
        # road surface edges: the lanes plus a parking strip on sides with parking
        self.edges = {-1: self.half + (p.parking_strip_m if style.parking[0] else 0.0),
                      1: self.half + (p.parking_strip_m if style.parking[1] else 0.0)}
        self.ego_lane, self.road, self.cross, self.level_to_rect = _lay_out_street(style, rng, p, self.half)
        self.asm = _SceneAssembler()
        self.s0, self.s1 = p.extent_m
        self.kerb = style.kerb_m
        self.pav = style.pavement_m

    # -- helpers -------------------------------------------------------------------------------
    def edge(self, side: int) -> float:
        """Lateral distance of the kerb line on ``side`` (-1 left, +1 right)."""
        return self.edges[int(side)]

    def in_cross(self, a: float, b: float, pad: float) -> bool:
        """Whether the along-road interval [a, b] comes within ``pad`` of the cross street."""
        return a < self.cross[1] + pad and b > self.cross[0] - pad

    def segments(self, a: float, b: float) -> list[tuple[float, float]]:
        """[a, b] minus the cross street."""
        out = [(a, min(b, self.cross[0])), (max(a, self.cross[1]), b)]
        return [(u, v) for u, v in out if v > u]

    def road_box(self, t0, t1, y0, y1, a0, a1) -> tuple[np.ndarray, np.ndarray]:
        """A box given in road coordinates (lateral, height, along) as level-frame vertices."""
        v, t = box(t0, t1, y0, y1, a0, a1)
        return self.road.to_rect(v[:, 0], v[:, 1], v[:, 2]), t

    def add_road_box(self, t0, t1, y0, y1, a0, a1, mat: Material, alb) -> None:
        v, t = self.road_box(t0, t1, y0, y1, a0, a1)
        self.asm.world.add(v, t, mat, alb)

    def on_pavement(self, t_pos: float, s_pos: float) -> np.ndarray:
        """(3,) level-frame point on the pavement surface at (t, s)."""
        return self.road.to_rect(np.array([t_pos]), self.g - self.kerb, np.array([s_pos]))[0]

    # -- the static world ------------------------------------------------------------------------
    def add_ground(self) -> None:
        """Road surface, kerbs and pavements (boxes whose sides are the kerbs), verges, cross street."""
        p, g, kerb, s0, s1 = self.p, self.g, self.kerb, self.s0, self.s1
        road_alb = (self.style.road_albedo,) * 3
        self.add_road_box(-self.edge(-1) - p.road_margin_m, self.edge(1) + p.road_margin_m, g, g + p.slab_m, s0, s1,
                          Material.ROAD, road_alb)
        pav_alb = np.array(p.pavement_rgb) * self.rng.uniform(*p.pavement_gain)
        kw, far = p.kerb_width_m, p.verge_lateral_m
        for side in (-1, 1):
            t_in, t_out = side * self.edge(side), side * (self.edge(side) + self.pav)
            for a, b in self.segments(s0, s1):
                self.add_road_box(min(t_in, t_in + side * kw), max(t_in, t_in + side * kw), g - kerb, g + p.slab_m,
                                  a, b, Material.KERB, p.kerb_rgb)
                self.add_road_box(min(t_in + side * kw, t_out), max(t_in + side * kw, t_out), g - kerb, g + p.slab_m,
                                  a, b, Material.PAVEMENT, pav_alb)
            for a, b in self.segments(s0 - p.verge_extra_m, s1 + p.verge_extra_m):
                self.add_road_box(min(t_out, side * far), max(t_out, side * far), g - kerb + p.verge_raise_m,
                                  g + p.slab_m, a, b, Material.GRASS, self.style.grass_rgb)
            if self.cross[0] < s1:
                t_c = side * (self.edge(side) + p.road_margin_m)
                self.add_road_box(min(t_c, side * far), max(t_c, side * far), g, g + p.slab_m,
                                  self.cross[0], self.cross[1], Material.ROAD, road_alb)

    def add_skyline(self) -> None:
        """A distant ring of hills / tree line so that no ground ray runs past it."""
        p, rng, n_seg = self.p, self.rng, self.p.skyline_segments
        ang = np.linspace(0, 2 * np.pi, n_seg + 1)
        radius = p.skyline_radius_m
        heights = (p.skyline_base_m + p.skyline_swing_m * np.abs(np.sin(ang * rng.uniform(*p.skyline_frequency)
                                                                        + rng.uniform(*p.skyline_phase)))
                   + rng.uniform(*p.skyline_noise_m, n_seg + 1))
        ring_lo = np.column_stack([radius * np.sin(ang), np.full(n_seg + 1, self.g + p.skyline_sink_m),
                                   radius * np.cos(ang)])
        ring_hi = ring_lo.copy()
        ring_hi[:, 1] = self.g - heights
        v = np.vstack([ring_lo, ring_hi])
        i = np.arange(n_seg)
        t = np.concatenate([np.column_stack([i, i + 1, i + n_seg + 2]), np.column_stack([i, i + n_seg + 2, i + n_seg + 1])])
        self.asm.world.add(v, t, Material.HILL, np.array(p.skyline_rgb) * rng.uniform(*p.albedo_gain, 3))

    def _lot(self) -> tuple[float, float, float, float]:
        """(length, setback, height, gap) of the next building lot, by street kind."""
        rng, k = self.rng, self.kind

        def draw(near: Range, far: Range | None, p_near: float) -> float:
            if far is None:
                return rng.uniform(*near)
            return rng.uniform(*near) if rng.random() < p_near else rng.uniform(*far)

        length = rng.uniform(*k.lot_length_m)
        setback = draw(k.lot_setback_m, k.lot_setback_far_m, k.lot_setback_near_p)
        height = rng.uniform(*k.lot_height_m)
        gap = draw(k.lot_gap_m, k.lot_gap_far_m, k.lot_gap_near_p)
        return length, setback, height, gap

    def add_buildings(self) -> None:
        """Buildings (city), houses with gabled roofs and front walls (residential) on both sides."""
        p, rng, clear = self.p, self.rng, self.p.cross_clearance_m
        for side in (-1, 1):
            t_front = self.edge(side) + self.pav
            s = self.s0 + rng.uniform(*p.lots_start_m)
            while s < p.lots_end_m:
                length, setback, height, gap = self._lot()
                depth = rng.uniform(*p.lot_depth_m)
                if self.in_cross(s, s + length, clear):
                    if s < self.cross[0] - clear - p.lot_min_length_m:
                        length = self.cross[0] - clear - s
                    else:
                        s = self.cross[1] + clear
                        continue
                if rng.random() < p.building_p:
                    self._add_building(side, s, t_front, length, setback, height, gap, depth)
                s += length + gap

    def _add_building(self, side: int, s: float, t_front: float, length: float, setback: float,
                      height: float, gap: float, depth: float) -> None:
        p, rng, g, kerb, street = self.p, self.rng, self.g, self.kerb, self.style.street
        w = self.asm.world
        ta = side * (t_front + setback)
        tb = side * (t_front + setback + depth)
        col = self.style.facade_palette[rng.integers(len(self.style.facade_palette))]
        v, t = self.road_box(min(ta, tb), max(ta, tb), g - kerb - height, g - kerb + p.sink_m, s, s + length)
        w.add(v, t, Material.FACADE, col,
              param=float(rng.random()) * (p.city_facade_param_scale if street == "city" else 1.0))
        if street == "residential" and rng.random() < p.roof_p:
            # gabled roof along the road
            tm = (ta + tb) / 2
            prof = np.array([[ta, g - kerb - height], [tb, g - kerb - height],
                             [tm, g - kerb - height - rng.uniform(*p.roof_rise_m)]])
            pv, pt = prism_z(prof, s - p.roof_overhang_m, s + length + p.roof_overhang_m)
            w.add(self.road.to_rect(pv[:, 0], pv[:, 1], pv[:, 2]), pt, Material.ROOF,
                  np.array(p.roof_rgb) * rng.uniform(*p.roof_gain, 3))
        if street == "residential" and setback > p.wall_min_setback_m and rng.random() < p.wall_p:
            wall_h = rng.uniform(*p.wall_height_m)
            tw = side * (t_front + p.wall_offset_m)
            th = side * p.wall_thickness_m
            self.add_road_box(min(tw, tw + th), max(tw, tw + th), g - kerb - wall_h, g - kerb + p.sink_m,
                              s, s + length + gap * p.wall_gap_fraction, Material.WALL,
                              np.array(p.wall_rgb) * rng.uniform(*p.wall_gain, 3))

    def add_trees(self, side: int) -> None:
        """Trees along the pavement's outer edge (or the verge of an open road) on one side."""
        p, rng, g, kerb = self.p, self.rng, self.g, self.kerb
        w = self.asm.world
        s = self.s0 + rng.uniform(*p.trees_start_m)
        while s < p.trees_end_m:
            if self.style.street != "road":
                t_pos = side * (self.edge(side) + self.pav - rng.uniform(*p.tree_inset_m))
            else:
                t_pos = side * (self.edge(side) + self.pav + rng.uniform(*p.tree_verge_m))
            if rng.random() < p.tree_p and not self.in_cross(s, s, p.tree_cross_clearance_m):
                trunk_h = rng.uniform(*p.trunk_height_m)
                r_crown = rng.uniform(*p.crown_radius_m)
                base = self.on_pavement(t_pos, s)
                v, t = cylinder(1, (base[0], base[2]), rng.uniform(*p.trunk_radius_m), base[1] - trunk_h - r_crown,
                                base[1] + p.sink_m, n=p.trunk_sides)
                w.add(v, t, Material.BARK, np.array(p.bark_rgb) * rng.uniform(*p.bark_gain))
                n_lat, n_lon = p.crown_lat_lon
                bumps = rng.uniform(*p.crown_bumps, (n_lat - 1, n_lon))
                v, t = sphere((base[0], base[1] - trunk_h - r_crown * p.crown_centre, base[2]),
                              (r_crown, r_crown * rng.uniform(*p.crown_aspect), r_crown), n_lat=n_lat, n_lon=n_lon,
                              bumps=bumps)
                w.add(v, t, Material.FOLIAGE, np.array(p.foliage_rgb) * rng.uniform(*p.foliage_gain, 3))
                self.asm.block(_footprint(base, p.tree_footprint_m, 0.0, p.prop_pad_m))
            s += self.kind.tree_spacing_m * rng.uniform(*p.tree_spacing_jitter)

    def add_lamp_posts(self, side: int) -> None:
        """Lamp posts with arms over the road, some with a sign after them (not on open roads)."""
        p, rng, g, kerb = self.p, self.rng, self.g, self.kerb
        w = self.asm.world
        s = self.s0 + rng.uniform(*p.lamps_start_m)
        while s < p.lamps_end_m and self.style.street != "road":
            t_pos = side * (self.edge(side) + p.lamp_inset_m)
            if self.in_cross(s, s + p.sign_after_m, p.prop_cross_clearance_m):
                s += rng.uniform(*p.lamp_spacing_m)
                continue
            base = self.on_pavement(t_pos, s)
            ph = rng.uniform(*p.lamp_height_m)
            v, t = cylinder(1, (base[0], base[2]), p.lamp_radius_m, base[1] - ph, base[1] + p.sink_m, n=p.pole_sides)
            w.add(v, t, Material.METAL, p.lamp_rgb)
            arm_t = t_pos - side * p.lamp_arm_m
            half_arm = p.lamp_arm_thickness_m / 2
            v, t = self.road_box(min(t_pos, arm_t), max(t_pos, arm_t), g - kerb - ph,
                                 g - kerb - ph + p.lamp_arm_thickness_m, s - half_arm, s + half_arm)
            w.add(v, t, Material.METAL, p.lamp_rgb)
            self.asm.block(_footprint(base, p.lamp_footprint_m, 0.0, p.prop_pad_m))
            if rng.random() < p.sign_p:
                sb = self.on_pavement(t_pos, s + p.sign_after_m)
                v, t = cylinder(1, (sb[0], sb[2]), p.sign_pole_radius_m, sb[1] - p.sign_pole_height_m,
                                sb[1] + p.sink_m, n=p.pole_sides)
                w.add(v, t, Material.METAL, p.sign_pole_rgb)
                v, t = self.road_box(t_pos - p.sign_half_width_m, t_pos + p.sign_half_width_m,
                                     g - kerb - p.sign_heights_m[0], g - kerb - p.sign_heights_m[1],
                                     s + p.sign_thickness_s_m[0], s + p.sign_thickness_s_m[1])
                w.add(v, t, Material.SIGN, p.sign_rgbs[rng.integers(len(p.sign_rgbs))])
            s += rng.uniform(*p.lamp_spacing_m)

    def add_furniture(self, side: int) -> None:
        """Guard rails along an open road; bins, bollards and benches on a street's pavement."""
        p, rng, g, kerb = self.p, self.rng, self.g, self.kerb
        if self.style.street == "road":
            t_r = side * (self.edge(side) + p.rail_offset_m)
            for a, b in self.segments(*p.rail_extent_m):
                self.add_road_box(min(t_r, t_r + side * p.rail_thickness_m), max(t_r, t_r + side * p.rail_thickness_m),
                                  g - kerb - p.rail_heights_m[0], g - kerb - p.rail_heights_m[1], a, b,
                                  Material.METAL, p.rail_rgb)
                post_t, post_h, post_s = p.rail_post_size_m
                for sp in np.arange(a + p.rail_post_margin_m, b - p.rail_post_margin_m, p.rail_post_every_m):
                    self.add_road_box(min(t_r, t_r + side * post_t), max(t_r, t_r + side * post_t), g - kerb - post_h,
                                      g - kerb + p.sink_m, sp, sp + post_s, Material.METAL, p.rail_post_rgb)
            return
        for _ in range(int(rng.poisson(p.furniture_rate))):
            s_f = rng.uniform(*p.furniture_s_m)
            if self.in_cross(s_f, s_f + p.furniture_cross_m, p.prop_cross_clearance_m):
                continue
            kind = int(rng.integers(0, 3))  # bin, bollard, bench
            inset = rng.uniform(*p.furniture_inset_m) if kind != 2 else self.pav - p.bench_from_outer_m
            t_f = side * (self.edge(side) + inset)
            size = p.furniture_sizes_m[kind]
            base = self.on_pavement(t_f, s_f)
            quad = _footprint(base, (size[2], size[1], size[0]), self.road.ry_of_heading(0.0), p.prop_pad_m)
            if not self.asm.free(quad):
                continue
            self.asm.block(quad)
            a, b = s_f - size[0] / 2, s_f + size[0] / 2
            tt0, tt1 = t_f - size[1] / 2, t_f + size[1] / 2
            col = [np.array(p.bin_rgb) * rng.uniform(*p.bin_gain), p.bollard_rgb, p.bench_rgb][kind]
            self.add_road_box(tt0, tt1, g - kerb - size[2], g - kerb + p.sink_m, a, b,
                              [Material.PLASTIC, Material.METAL, Material.BARK][kind], col)

    # -- objects ---------------------------------------------------------------------------------
    def keep_ego_free(self) -> None:
        """Block the ego car's own footprint."""
        z, h, w, l = self.p.ego_footprint
        self.asm.block(_footprint(np.array([0.0, self.g, z]), (h, w, l), float(self.road.ry_of_heading(0.0)),
                                  self.p.ego_pad_m))

    def put(self, kind: str, t_pos: float, s_pos: float, y: float, heading: float, parked: bool) -> bool:
        """Place one object (size and model drawn here) unless it overlaps another."""
        rng = self.rng
        hwl = _sample_size(rng, kind)
        loc = self.level_to_rect @ self.road.to_rect(np.array([t_pos]), y, np.array([s_pos]))[0]
        ry = self.road.ry_of_heading(heading)
        return self.asm.try_object(kind, loc, hwl, ry, _model(rng, kind, hwl), parked)

    def vehicle_kind(self, parked: bool) -> str:
        p = self.p.vehicle_p_parked if parked else self.p.vehicle_p_moving
        return str(self.rng.choice(["Car", "Van", "Truck"], p=list(p)))

    def park_cars(self, side: int) -> None:
        """A row of parked vehicles along the kerb of one side."""
        p, rng, clear = self.p, self.rng, self.p.cross_clearance_m
        occupancy = rng.uniform(*p.parked_occupancy) * min(1.0, self.density)
        s = rng.uniform(*p.parked_start_m)
        while s < p.parked_end_m:
            kind = self.vehicle_kind(True)
            if self.in_cross(s, s + p.parked_slot_m, clear):
                s = self.cross[1] + clear
                continue
            if rng.random() < occupancy:
                mean_l = CLASS_SIZE_STATS[kind][0][2]
                heading = (0.0 if rng.random() < 1.0 - p.parked_reverse_p else np.pi) + rng.normal(0, p.parked_heading_std_rad)
                t_pos = side * (self.half + p.parked_offset_m
                                + rng.uniform(-p.parked_offset_jitter_m, p.parked_offset_jitter_m))
                self.put(kind, t_pos, s + mean_l / 2, self.g, heading, True)
                s += mean_l + rng.uniform(*p.parked_gap_m)
            else:
                s += rng.uniform(*p.parked_empty_m)

    def add_traffic(self) -> None:
        """Vehicles driving in every lane (both directions); the ego lane is kept clear nearby."""
        p, rng, style = self.p, self.rng, self.style
        rate = self.kind.traffic_rate * self.density * p.traffic_scale
        for lane in range(style.n_lanes):
            oncoming = lane < style.n_oncoming
            t_lane = -self.half + (lane + 0.5) * style.lane_width_m
            for _ in range(int(rng.poisson(rate))):
                kind = self.vehicle_kind(False)
                s_pos = rng.uniform(*p.traffic_s_m)
                if lane == self.ego_lane and p.ego_lane_clear_m[0] < s_pos < p.ego_lane_clear_m[1]:
                    continue
                heading = (np.pi if oncoming else 0.0) + rng.normal(0, p.traffic_heading_std_rad)
                self.put(kind, t_lane + rng.normal(0, p.traffic_lateral_std_m), s_pos, self.g, heading, False)

    def add_pedestrians(self) -> None:
        """Pedestrians on the pavements (some in small groups), sometimes one crossing the street."""
        p, rng, g, half = self.p, self.rng, self.g, self.half
        for _ in range(int(rng.poisson(self.kind.pedestrian_rate * self.density))):
            side = rng.choice([-1, 1])
            s_pos = rng.uniform(*p.pedestrian_s_m)
            t_pos = side * (self.edge(side) + rng.uniform(p.pedestrian_inset_m[0], self.pav - p.pedestrian_inset_m[1]))
            group = 1 if rng.random() < p.pedestrian_single_p else int(rng.integers(*p.pedestrian_group))
            heading = (0.0 if rng.random() < 0.5 else np.pi) + rng.normal(0, p.pedestrian_heading_std_rad)
            for k in range(group):
                self.put("Pedestrian", t_pos + rng.normal(0, p.pedestrian_spread_m),
                         s_pos + k * rng.uniform(*p.pedestrian_step_m), g - self.kerb,
                         heading + rng.normal(0, p.pedestrian_jitter_rad), False)
        if rng.random() < p.crossing_pedestrian_p * self.density:
            self.put("Pedestrian", -half + rng.uniform(0, 2 * half), rng.uniform(*p.crossing_s_m), g,
                     rng.choice([-np.pi / 2, np.pi / 2]) + rng.normal(0, p.pedestrian_jitter_rad), False)

    def add_cyclists(self) -> None:
        """Cyclists near the road's edges, riding with the traffic of their side."""
        p, rng, half = self.p, self.rng, self.half
        for _ in range(int(rng.poisson(self.kind.cyclist_rate * self.density))):
            oncoming = rng.random() < p.cyclist_oncoming_p and self.style.n_oncoming > 0
            t_pos = (-half + rng.uniform(*p.cyclist_inset_m)) if oncoming else (half - rng.uniform(*p.cyclist_inset_m))
            self.put("Cyclist", t_pos, rng.uniform(*p.cyclist_s_m), self.g,
                     (np.pi if oncoming else 0.0) + rng.normal(0, p.cyclist_heading_std_rad), False)

    def add_cross_traffic(self) -> None:
        """Vehicles on the cross street (right-hand traffic: the near lane moves to +t) and
        pedestrians crossing it."""
        p, rng, g, cross, density = self.p, self.rng, self.g, self.cross, self.density
        for _ in range(int(rng.poisson(p.cross_traffic_rate * density))):
            near = rng.random() < 0.5
            s_pos = (cross[0] + cross[1]) / 2 + (-1 if near else 1) * (cross[1] - cross[0]) / 4
            heading = (np.pi / 2 if near else -np.pi / 2) + rng.normal(0, p.cross_heading_std_rad)
            self.put(self.vehicle_kind(False), rng.uniform(*p.cross_traffic_lateral_m),
                     s_pos + rng.normal(0, p.cross_s_std_m), g, heading, False)
        inset = p.cross_pedestrian_inset_m
        for _ in range(int(rng.poisson(p.cross_pedestrian_rate * density))):
            side = rng.choice([-1, 1])
            self.put("Pedestrian", side * (self.edge(side) + rng.uniform(inset, self.pav)),
                     rng.uniform(cross[0] + inset, cross[1] - inset), g,
                     rng.choice([0.0, np.pi]) + rng.normal(0, p.pedestrian_jitter_rad), False)
