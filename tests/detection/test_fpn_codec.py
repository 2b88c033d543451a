"""Heading-bin and size-template codec of F-PointNet."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from detection.frustum_pointnet.codec import (HEADING_BIN_WIDTH, MEAN_SIZE_ARRAY_LWH,
                                              NUM_HEADING_BIN, NUM_SIZE_TEMPLATE, SIZE_TEMPLATE_NAMES,
                                              angle_to_class, class_to_angle, class_to_size,
                                              size_to_class)
from kitti.classes import MEAN_SIZE_LWH

angles = st.floats(min_value=-20.0, max_value=20.0, allow_nan=False)


@given(angles)
def test_angle_to_class_round_trip_modulo_two_pi(angle):
    cls, res = angle_to_class(angle)
    back = class_to_angle(cls, res)
    diff = (back - angle + np.pi) % (2 * np.pi) - np.pi
    assert abs(diff) < 1e-9
    assert -np.pi < back <= np.pi + 1e-12


@given(angles)
def test_angle_to_class_residual_within_half_bin(angle):
    cls, res = angle_to_class(angle)
    assert 0 <= cls < NUM_HEADING_BIN
    assert -HEADING_BIN_WIDTH / 2 - 1e-12 <= res < HEADING_BIN_WIDTH / 2 + 1e-12


def test_angle_to_class_bins_are_centred_on_multiples_of_30_degrees():
    centres = np.arange(NUM_HEADING_BIN) * HEADING_BIN_WIDTH
    cls, res = angle_to_class(centres)
    np.testing.assert_array_equal(cls, np.arange(NUM_HEADING_BIN))
    np.testing.assert_allclose(res, 0.0, atol=1e-12)
    # just below a bin edge belongs to the lower bin, the edge itself to the upper one
    assert angle_to_class(HEADING_BIN_WIDTH / 2 - 1e-9)[0] == 0
    assert angle_to_class(HEADING_BIN_WIDTH / 2)[0] == 1


@given(st.sampled_from(SIZE_TEMPLATE_NAMES),
       st.tuples(*[st.floats(min_value=0.1, max_value=20.0)] * 3))
def test_size_to_class_round_trip(name, size):
    cls, res = size_to_class(np.array(size), name)
    assert SIZE_TEMPLATE_NAMES[cls] == name
    np.testing.assert_allclose(class_to_size(cls, res), size, rtol=0, atol=1e-9)


def test_size_templates_come_from_kitti_classes():
    assert NUM_SIZE_TEMPLATE == 8
    assert SIZE_TEMPLATE_NAMES[:3] == ("Car", "Van", "Truck")
    np.testing.assert_array_equal(MEAN_SIZE_ARRAY_LWH[0], MEAN_SIZE_LWH["Car"])


def test_size_to_class_unknown_type_raises():
    with pytest.raises(ValueError, match="DontCare"):
        size_to_class(np.ones(3), "DontCare")
