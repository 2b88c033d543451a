"""KITTI object classes and the per-class constants shared by every stage (kept once, frozen).

The mean sizes are F-PointNet's (``g_type_mean_size``), in KITTI label order **(l, w, h)** metres.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final, Mapping

#: The object types that appear in KITTI ``label_2`` files (``DontCare`` marks unlabelled regions).
KITTI_TYPES: Final[tuple[str, ...]] = (
    "Car", "Van", "Truck", "Pedestrian", "Person_sitting", "Cyclist", "Tram", "Misc", "DontCare",
)

#: The three classes of the official benchmark.
EVAL_CLASSES: Final[tuple[str, ...]] = ("Car", "Pedestrian", "Cyclist")

#: Foreground classes for depth evaluation in ForeSeE (paper §2: eval boxes).
DEPTH_FOREGROUND_CLASSES: Final[tuple[str, ...]] = (
    "Car", "Van", "Truck", "Pedestrian", "Cyclist", "Tram",
)

#: F-PointNet's mean box sizes (l, w, h) in metres, one per size template.
MEAN_SIZE_LWH: Final[Mapping[str, tuple[float, float, float]]] = MappingProxyType({
    "Car": (3.88311640418, 1.62856739989, 1.52563191462),
    "Van": (5.06763659, 1.9007158, 2.20532825),
    "Truck": (10.13586957, 2.58549199, 3.2520595),
    "Pedestrian": (0.84422524, 0.66068622, 1.76255119),
    "Person_sitting": (0.80057803, 0.5983815, 1.27450867),
    "Cyclist": (1.76282397, 0.59706367, 1.73698127),
    "Tram": (16.17150617, 2.53246914, 3.53079012),
    "Misc": (3.64300781, 1.54298177, 1.92320313),
})
