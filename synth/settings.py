"""Settings of the embedded benchmark generator: one frozen dataclass and its named presets."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final, Mapping

#: Image size of the KITTI calibration the generator uses (camera 2, 2011_09_26 rig).
KITTI_IMAGE_HW: Final[tuple[int, int]] = (375, 1242)


@dataclass(frozen=True)
class SynthSettings:
    """Everything that decides the rendered dataset (together with ``CODE_VERSION``).

    Attributes:
        frames_train: frames of the ``train`` split (ids 000000 …).
        frames_val: frames of the ``val`` split (ids after the train ones); val scenes come
            from different "drives" (seed streams) than train, like the 3DOP split.
        seed: base seed; same settings -> byte-identical files.
        image_scale: 1.0 renders KITTI's 1242x375 with the real P2; smaller values scale P2's
            first two rows and the image size (tests use ~0.3).
        frames_per_drive: consecutive frames that share one drive's style (lighting, road,
            palette, kind of street).
        object_density: multiplies the expected number of objects per scene.
        lidar_azimuth_step_deg: horizontal step of the simulated HDL-64E: 0.1728 deg is the sensor
            at 10 Hz as KITTI recorded it (2083 columns, ~120k returns per scan like KITTI's
            scans); 0.0864 is its 5 Hz resolution.
        lidar_max_range_m: returns farther than this are dropped.
        max_label_depth_m: visible objects farther than this (rect z) are labelled DontCare.
        min_box_height_px: visible objects whose 2D box is lower than this are DontCare.
        min_visible_px: objects with fewer visible pixels are not labelled at all.
        image_noise: standard deviation of the sensor noise added to the RGB image (0..1 scale).
    """

    frames_train: int = 300
    frames_val: int = 100
    seed: int = 0
    image_scale: float = 1.0
    frames_per_drive: int = 10
    object_density: float = 1.0
    lidar_azimuth_step_deg: float = 0.1728
    lidar_max_range_m: float = 120.0
    max_label_depth_m: float = 80.0
    min_box_height_px: float = 15.0
    min_visible_px: int = 20
    image_noise: float = 0.012

    def __post_init__(self) -> None:
        if self.frames_train < 0 or self.frames_val < 0:
            raise ValueError("frames_train and frames_val must be >= 0")
        if not 0.05 <= self.image_scale <= 2.0:
            raise ValueError(f"image_scale must be in [0.05, 2], got {self.image_scale}")
        if self.frames_per_drive < 1:
            raise ValueError("frames_per_drive must be >= 1")
        if self.lidar_azimuth_step_deg <= 0:
            raise ValueError("lidar_azimuth_step_deg must be > 0")

    @property
    def image_hw(self) -> tuple[int, int]:
        """(H, W) of the rendered images."""
        h, w = KITTI_IMAGE_HW
        return (int(round(h * self.image_scale)), int(round(w * self.image_scale)))

    def with_(self, **changes: object) -> "SynthSettings":
        """A copy with some fields changed."""
        return replace(self, **changes)


#: Named presets. ``cpu-small`` is the demo set (``make demo``); ``full`` is the bigger one.
PRESETS: Final[Mapping[str, SynthSettings]] = MappingProxyType({
    "cpu-small": SynthSettings(frames_train=300, frames_val=100),
    "dev": SynthSettings(frames_train=160, frames_val=80),
    "full": SynthSettings(frames_train=3000, frames_val=1000),
})


def preset(name: str) -> SynthSettings:
    """The settings of a named preset (``cpu-small``, ``dev``, ``full``)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown synth preset {name!r} (one of {', '.join(PRESETS)})") from None


Range = tuple[float, float]


@dataclass(frozen=True)
class StreetKindSettings:
    """The numbers that differ between the three kinds of street (city, residential, open road).

    Ranges are ``(low, high)`` of a uniform draw; ``*_rate`` are Poisson means per frame (before
    ``SynthSettings.object_density``). Building lots: when ``*_far`` is given, the near range is
    drawn with probability ``*_near_p`` and the far range otherwise.
    """

    intersection_p: float
    lot_length_m: Range
    lot_setback_m: Range
    lot_height_m: Range
    lot_gap_m: Range
    tree_spacing_m: float
    traffic_rate: float
    pedestrian_rate: float
    cyclist_rate: float
    lot_setback_far_m: Range | None = None
    lot_setback_near_p: float = 1.0
    lot_gap_far_m: Range | None = None
    lot_gap_near_p: float = 1.0


#: The three kinds of street; ``DriveStyle.street`` names one of them.
STREET_KINDS: Final[Mapping[str, StreetKindSettings]] = MappingProxyType({
    "city": StreetKindSettings(
        intersection_p=0.5, lot_length_m=(8.0, 30.0), lot_setback_m=(0.0, 1.5), lot_setback_far_m=(3.0, 10.0),
        lot_setback_near_p=0.8, lot_height_m=(6.0, 22.0), lot_gap_m=(0.0, 3.0), lot_gap_far_m=(5.0, 15.0),
        lot_gap_near_p=0.7, tree_spacing_m=18.0, traffic_rate=1.5, pedestrian_rate=1.0, cyclist_rate=0.3),
    "residential": StreetKindSettings(
        intersection_p=0.4, lot_length_m=(7.0, 14.0), lot_setback_m=(3.0, 9.0), lot_height_m=(4.0, 8.0),
        lot_gap_m=(3.0, 12.0), tree_spacing_m=9.0, traffic_rate=0.9, pedestrian_rate=0.5, cyclist_rate=0.25),
    "road": StreetKindSettings(
        intersection_p=0.25, lot_length_m=(8.0, 20.0), lot_setback_m=(10.0, 40.0), lot_height_m=(3.0, 8.0),
        lot_gap_m=(20.0, 80.0), tree_spacing_m=7.0, traffic_rate=1.4, pedestrian_rate=0.1, cyclist_rate=0.12),
})


@dataclass(frozen=True)
class SceneSettings:
    """The constants of :func:`synth.scene.generate_scene` (one street scene).

    Distances are metres in the street's frame: lateral ``t`` from the road centre, along-road
    ``s`` ahead of the camera, heights as rect ``y`` (down) relative to the road surface ``g``.
    Ranges are ``(low, high)`` of a uniform draw, ``*_std*`` standard deviations of a normal draw,
    ``*_rate`` Poisson means per frame (multiplied by the object density). Changing any value
    changes the rendered bytes: bump ``synth.CODE_VERSION`` with it.
    """

    street_kinds: Mapping[str, StreetKindSettings] = field(default_factory=lambda: STREET_KINDS)
    # the street and the camera on it
    parking_strip_m: float = 2.3            # road surface beside the lanes on a side with parking
    camera_lateral_jitter_m: float = 0.3    # camera offset from its lane centre, uniform +-
    road_yaw_std_deg: float = 1.8           # street direction relative to the camera
    cross_centre_m: Range = (12.0, 60.0)    # along-road position of a cross street
    cross_width_m: Range = (7.0, 11.0)
    zebra_p: float = 0.6                    # a zebra crossing before the cross street (not on open roads)
    zebra_from_cross_m: Range = (4.5, 1.0)  # its extent, metres before the cross street
    tilt_std_deg: tuple[float, float] = (0.5, 0.3)  # road pitch, roll of the frame
    tilt_max_deg: float = 1.5
    mark_width_m: Range = (0.1, 0.15)
    dash_m: float = 3.0                     # lane-mark dash length
    dash_gaps_m: tuple[float, ...] = (6.0, 9.0)
    extent_m: Range = (-80.0, 260.0)        # along-road extent of road and pavements
    road_margin_m: float = 0.3              # road slab beyond the kerb line
    slab_m: float = 0.5                     # thickness of road, pavement and verge slabs
    kerb_width_m: float = 0.25
    kerb_rgb: tuple[float, float, float] = (0.55, 0.54, 0.52)
    pavement_rgb: tuple[float, float, float] = (0.42, 0.4, 0.38)
    pavement_gain: Range = (0.8, 1.15)
    verge_extra_m: float = 200.0            # verges run this much beyond the road's extent
    verge_lateral_m: float = 400.0          # lateral end of verges and the cross street
    verge_raise_m: float = 0.02
    # skyline ring: hills / tree line so that no ground ray runs past it
    skyline_segments: int = 96
    skyline_radius_m: float = 230.0
    skyline_base_m: float = 8.0
    skyline_swing_m: float = 25.0
    skyline_frequency: Range = (2.0, 5.0)
    skyline_phase: Range = (0.0, 6.0)
    skyline_noise_m: Range = (0.0, 8.0)
    skyline_sink_m: float = 1.0             # the ring's foot below the road
    skyline_rgb: tuple[float, float, float] = (0.16, 0.2, 0.14)
    albedo_gain: Range = (0.7, 1.3)         # colour variation of the skyline
    sink_m: float = 0.01                    # standing parts reach this far into the ground
    # buildings along both sides
    lots_start_m: Range = (0.0, 10.0)       # first lot after extent_m[0]
    lots_end_m: float = 200.0
    lot_depth_m: Range = (8.0, 14.0)
    cross_clearance_m: float = 2.0          # lots and parked cars keep this far from the cross street
    lot_min_length_m: float = 3.0           # a lot cut shorter by the cross street is skipped
    building_p: float = 0.92                # a lot holds a building (else it stays empty)
    city_facade_param_scale: float = 0.5
    roof_p: float = 0.8                     # residential: gabled roof
    roof_rise_m: Range = (2.0, 4.0)
    roof_overhang_m: float = 0.3
    roof_rgb: tuple[float, float, float] = (0.35, 0.12, 0.08)
    roof_gain: Range = (0.5, 1.3)
    wall_p: float = 0.7                     # residential with setback > wall_min_setback_m: front wall
    wall_min_setback_m: float = 3.0
    wall_height_m: Range = (0.5, 1.8)
    wall_offset_m: float = 0.3
    wall_thickness_m: float = 0.25
    wall_gap_fraction: float = 0.7          # the wall runs on into this fraction of the gap
    wall_rgb: tuple[float, float, float] = (0.5, 0.45, 0.4)
    wall_gain: Range = (0.6, 1.2)
    # trees
    trees_start_m: Range = (0.0, 10.0)
    trees_end_m: float = 180.0
    tree_inset_m: Range = (0.5, 1.0)        # from the pavement's outer edge (streets)
    tree_verge_m: Range = (1.0, 6.0)        # beyond the pavement (open roads)
    tree_p: float = 0.75
    tree_cross_clearance_m: float = 1.5
    trunk_height_m: Range = (1.8, 3.5)
    crown_radius_m: Range = (1.3, 3.0)
    trunk_radius_m: Range = (0.12, 0.25)
    trunk_sides: int = 7
    crown_bumps: Range = (0.75, 1.15)
    crown_lat_lon: tuple[int, int] = (6, 10)
    crown_centre: float = 0.8               # crown centre above the trunk top, in crown radii
    crown_aspect: Range = (0.8, 1.2)
    tree_spacing_jitter: Range = (0.6, 1.4)
    bark_rgb: tuple[float, float, float] = (0.18, 0.12, 0.08)
    bark_gain: Range = (0.6, 1.3)
    foliage_rgb: tuple[float, float, float] = (0.08, 0.15, 0.04)
    foliage_gain: Range = (0.6, 1.5)
    tree_footprint_m: tuple[float, float, float] = (1.0, 0.6, 0.6)  # (h, w, l) kept free of objects
    prop_pad_m: float = 0.1                 # objects keep this far from trees, poles and furniture
    prop_cross_clearance_m: float = 1.0     # lamp posts and furniture keep this far from the cross street
    pole_sides: int = 6                     # polygon sides of lamp posts and sign poles
    # lamp posts and signs (not on open roads)
    lamps_start_m: Range = (0.0, 30.0)
    lamps_end_m: float = 150.0
    lamp_spacing_m: Range = (18.0, 40.0)
    lamp_inset_m: float = 0.55              # from the kerb line
    lamp_height_m: Range = (6.0, 8.5)
    lamp_radius_m: float = 0.08
    lamp_arm_m: float = 1.5
    lamp_arm_thickness_m: float = 0.12
    lamp_rgb: tuple[float, float, float] = (0.3, 0.31, 0.32)
    lamp_footprint_m: tuple[float, float, float] = (1.0, 0.3, 0.3)
    sign_p: float = 0.4
    sign_after_m: float = 3.0               # a sign this far after its lamp post
    sign_pole_radius_m: float = 0.04
    sign_pole_height_m: float = 2.6
    sign_pole_rgb: tuple[float, float, float] = (0.4, 0.4, 0.42)
    sign_half_width_m: float = 0.35
    sign_heights_m: Range = (2.9, 2.2)      # top, bottom above the pavement
    sign_thickness_s_m: Range = (2.92, 2.96)  # along-road, after its lamp post
    sign_rgbs: tuple[tuple[float, float, float], ...] = ((0.7, 0.05, 0.03), (0.05, 0.15, 0.6), (0.85, 0.75, 0.05))
    # guard rails along open roads
    rail_extent_m: Range = (-60.0, 200.0)
    rail_offset_m: float = 0.8
    rail_thickness_m: float = 0.06
    rail_heights_m: Range = (0.8, 0.5)      # top, bottom above the pavement
    rail_rgb: tuple[float, float, float] = (0.45, 0.46, 0.48)
    rail_post_every_m: float = 4.0
    rail_post_margin_m: float = 1.0
    rail_post_size_m: tuple[float, float, float] = (0.15, 0.75, 0.12)  # lateral, height, along
    rail_post_rgb: tuple[float, float, float] = (0.4, 0.4, 0.42)
    # street furniture on pavements: bin, bollard, bench
    furniture_rate: float = 5.0             # per side (not scaled by the object density)
    furniture_s_m: Range = (-20.0, 90.0)
    furniture_cross_m: float = 2.0          # length checked against the cross street
    furniture_inset_m: Range = (0.5, 0.9)   # bins and bollards from the kerb line
    bench_from_outer_m: float = 0.5         # benches this far inside the pavement's outer edge
    furniture_sizes_m: tuple[tuple[float, float, float], ...] = ((0.6, 0.6, 1.1), (0.2, 0.2, 0.9), (1.8, 0.6, 0.8))
    bin_rgb: tuple[float, float, float] = (0.1, 0.25, 0.12)
    bin_gain: Range = (0.6, 1.6)
    bollard_rgb: tuple[float, float, float] = (0.3, 0.3, 0.32)
    bench_rgb: tuple[float, float, float] = (0.35, 0.22, 0.12)
    # objects
    ego_footprint: tuple[float, float, float, float] = (-1.3, 1.5, 2.0, 5.0)  # rect z, (h, w, l) kept free
    ego_pad_m: float = 0.3
    vehicle_p_parked: tuple[float, float, float] = (0.90, 0.08, 0.02)  # Car, Van, Truck
    vehicle_p_moving: tuple[float, float, float] = (0.87, 0.08, 0.05)
    parked_occupancy: Range = (0.1, 0.5)
    parked_start_m: Range = (-30.0, -10.0)
    parked_end_m: float = 75.0
    parked_slot_m: float = 6.0              # length checked against the cross street
    parked_reverse_p: float = 0.25          # parked facing the other way
    parked_heading_std_rad: float = 0.04
    parked_offset_m: float = 1.15           # from the lane edge to the parked car's centre
    parked_offset_jitter_m: float = 0.1
    parked_gap_m: Range = (0.6, 3.0)
    parked_empty_m: Range = (3.0, 8.0)      # an empty stretch of kerb
    traffic_scale: float = 0.8              # per lane: street kind's traffic_rate x density x this
    traffic_s_m: Range = (-35.0, 85.0)
    ego_lane_clear_m: Range = (-8.0, 12.0)  # no traffic in the ego lane in this stretch
    traffic_heading_std_rad: float = 0.03
    traffic_lateral_std_m: float = 0.25
    pedestrian_s_m: Range = (2.0, 45.0)
    pedestrian_inset_m: Range = (0.6, 0.4)  # from the kerb line, from the pavement's outer edge
    pedestrian_single_p: float = 0.7
    pedestrian_group: tuple[int, int] = (2, 4)  # sizes drawn from [low, high)
    pedestrian_heading_std_rad: float = 0.3
    pedestrian_spread_m: float = 0.4
    pedestrian_step_m: Range = (0.6, 1.2)
    pedestrian_jitter_rad: float = 0.2
    crossing_pedestrian_p: float = 0.15     # times the density: one pedestrian crossing the street
    crossing_s_m: Range = (8.0, 30.0)
    cyclist_oncoming_p: float = 0.3
    cyclist_inset_m: Range = (0.5, 1.2)
    cyclist_s_m: Range = (3.0, 50.0)
    cyclist_heading_std_rad: float = 0.08
    cross_traffic_rate: float = 1.6
    cross_traffic_lateral_m: Range = (-45.0, 45.0)
    cross_heading_std_rad: float = 0.05
    cross_s_std_m: float = 0.2
    cross_pedestrian_rate: float = 0.8
    cross_pedestrian_inset_m: float = 0.5
