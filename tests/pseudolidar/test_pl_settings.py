"""Settings and presets of the pseudo-LiDAR stage."""

from __future__ import annotations

import dataclasses
import math

import pytest

from pseudolidar import PRESET_NAMES, PseudoLidarSettings, preset


def test_preset_paper_is_the_published_configuration():
    s = preset("paper")
    assert s == PseudoLidarSettings()
    assert (s.max_height_m, s.max_depth_m, s.stride_px, s.sparsify_beams, s.frustum_only) == (1.0, None, 1, None, False)


def test_preset_cpu_small_subsamples():
    s = preset("cpu-small")
    assert s.stride_px == 2 and s.max_depth_m == 80.0 and s.max_height_m == 1.0


def test_preset_names_all_resolve_and_unknown_raises():
    assert {preset(n) for n in PRESET_NAMES}
    with pytest.raises(ValueError, match="unknown pseudo-LiDAR preset 'fast'"):
        preset("fast")


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PseudoLidarSettings().max_height_m = 2.0  # type: ignore[misc]


@pytest.mark.parametrize("field, value, message", [
    ("max_height_m", math.nan, "max_height_m"),
    ("max_depth_m", 0.0, "max_depth_m"),
    ("stride_px", 0, "stride_px"),
    ("stride_px", 1.5, "stride_px"),
    ("sparsify_beams", 0, "sparsify_beams"),
    ("sparsify_azimuth_bins", 0, "sparsify_azimuth_bins"),
    ("frustum_near_m", math.inf, "frustum_near_m"),
])
def test_settings_bad_values_raise(field, value, message):
    with pytest.raises(ValueError, match=message):
        PseudoLidarSettings(**{field: value})


def test_settings_infinite_height_is_allowed():
    assert PseudoLidarSettings(max_height_m=math.inf).max_height_m == math.inf
