"""Box encoding of Frustum-PointNet: 12 heading bins and 8 size templates.

Heading: bin ``k`` is centred at ``k·30°`` (``angle2class``); the residual is the angle minus the
bin centre, in [-15°, 15°), and the network predicts it divided by 15° (``π / NUM_HEADING_BIN``).

Size: one template per KITTI type (Car, Van, Truck, Pedestrian, Person_sitting, Cyclist, Tram,
Misc, F-PointNet's ``g_type2class`` order) with the mean sizes of :data:`kitti.MEAN_SIZE_LWH` in
**(l, w, h)** order; the residual is the size minus the template, and the network predicts it
divided by the template.

All functions here are NumPy, float64, batched over the first axis.
"""

from __future__ import annotations

import numpy as np

from kitti.classes import MEAN_SIZE_LWH

NUM_HEADING_BIN: int = 12
#: Size template names, in the order of the network's size outputs.
SIZE_TEMPLATE_NAMES: tuple[str, ...] = tuple(MEAN_SIZE_LWH)
NUM_SIZE_TEMPLATE: int = len(SIZE_TEMPLATE_NAMES)
#: (8, 3) template sizes (l, w, h) in metres.
MEAN_SIZE_ARRAY_LWH: np.ndarray = np.array([MEAN_SIZE_LWH[n] for n in SIZE_TEMPLATE_NAMES])
MEAN_SIZE_ARRAY_LWH.setflags(write=False)
#: Width of one heading bin in radians (30°).
HEADING_BIN_WIDTH: float = 2.0 * np.pi / NUM_HEADING_BIN


def angle_to_class(angle: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Heading angles (radians, any range) -> (bin index, residual in radians).

    The angle is wrapped to [0, 2π), shifted by half a bin, and floored, so bin ``k`` covers
    ``[k·30° - 15°, k·30° + 15°)`` and the residual lies in [-15°, 15°).

    >>> angle_to_class(np.array([0.0, np.pi]))[0]
    array([0, 6])
    """
    a = np.mod(np.asarray(angle, dtype=np.float64), 2 * np.pi)
    shifted = np.mod(a + HEADING_BIN_WIDTH / 2, 2 * np.pi)
    cls = np.floor(shifted / HEADING_BIN_WIDTH).astype(np.int64)
    cls = np.minimum(cls, NUM_HEADING_BIN - 1)  # guards shifted == 2π after rounding
    residual = shifted - (cls * HEADING_BIN_WIDTH + HEADING_BIN_WIDTH / 2)
    return cls, residual


def class_to_angle(cls: np.ndarray | int, residual: np.ndarray | float) -> np.ndarray:
    """(bin index, residual) -> angle in radians, wrapped to (-π, π] as ``class2angle`` does."""
    a = np.asarray(cls, dtype=np.float64) * HEADING_BIN_WIDTH + np.asarray(residual, dtype=np.float64)
    a = np.mod(a, 2 * np.pi)
    return np.where(a > np.pi, a - 2 * np.pi, a)


def size_to_class(size_lwh: np.ndarray, type_name: str) -> tuple[int, np.ndarray]:
    """A box size (l, w, h) of a KITTI type -> (template index, residual (3,) in metres).

    Raises:
        ValueError: ``type_name`` has no size template.
    """
    if type_name not in MEAN_SIZE_LWH:
        raise ValueError(f"no size template for type {type_name!r} (known: {SIZE_TEMPLATE_NAMES})")
    idx = SIZE_TEMPLATE_NAMES.index(type_name)
    return idx, np.asarray(size_lwh, dtype=np.float64).reshape(3) - MEAN_SIZE_ARRAY_LWH[idx]


def class_to_size(cls: np.ndarray | int, residual_lwh: np.ndarray) -> np.ndarray:
    """(template index, residual (…, 3)) -> size (…, 3) as (l, w, h) metres."""
    return MEAN_SIZE_ARRAY_LWH[np.asarray(cls)] + np.asarray(residual_lwh, dtype=np.float64)
