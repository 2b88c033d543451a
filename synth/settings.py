"""Settings of the embedded benchmark generator: one frozen dataclass and its named presets."""

from __future__ import annotations

from dataclasses import dataclass, replace
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
