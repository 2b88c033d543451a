"""The embedded benchmark: a deterministic generator of KITTI-format street scenes.

Scenes (road, lanes, kerbs, pavements, buildings, trees, poles, and Car / Van / Truck /
Pedestrian / Cyclist meshes with KITTI's size statistics) are ray-cast with open3d into a shaded,
textured image_2 with the real KITTI P2, a dense depth map (depth_2), a simulated HDL-64E sweep
(velodyne) and label_2 files computed from the render. Entry point: :func:`render_dataset`.
The dataset is decided by :class:`SynthSettings`; the street generator's constants are
:class:`SceneSettings`. The package uses the ``kitti`` core only (documentation: docs/benchmark.md).

The calibration template ``calib_template.txt`` is KITTI object training ``calib/000001.txt``
(2011_09_26 rig, copied from tests/data/kitti_sample; KITTI, CC BY-NC-SA 3.0).
"""

from synth.settings import PRESETS, SceneSettings, StreetKindSettings, SynthSettings, preset
from synth.writer import dataset_is_current, render_dataset, template_calibration

#: Bumped whenever the rendered bytes change (used in artifact cache keys).
CODE_VERSION = "1"

__all__ = ["CODE_VERSION", "dataset_is_current", "PRESETS", "SceneSettings", "StreetKindSettings", "SynthSettings",
           "preset", "render_dataset", "template_calibration"]
