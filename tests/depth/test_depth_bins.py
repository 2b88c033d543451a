"""depth.bins: log-spaced classes, assignment and soft decoding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from depth.bins import IGNORE_BIN, DepthBins

BINS = DepthBins()


def test_width_log10_spans_range_with_end_centres():
    # (log10(1.0) - log10(0.015)) / 99: the end centres sit at 1.2 m and 80 m
    assert BINS.width_log10 == pytest.approx(1.8239087 / 99, rel=1e-6)
    assert BINS.centres_m[0] == pytest.approx(1.2) and BINS.centres_m[-1] == pytest.approx(80.0)


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=1.2, max_value=80.0, allow_nan=False))
def test_depth_to_bin_round_trip_within_half_a_bin(depth_m):
    back = BINS.bin_to_depth(BINS.depth_to_bin(np.array([depth_m])))[0]
    assert abs(np.log10(back) - np.log10(depth_m)) <= BINS.width_log10 / 2 + 1e-9


def test_depth_to_bin_marks_missing_and_clips_out_of_range():
    idx = BINS.depth_to_bin(np.array([0.0, -1.0, np.nan, np.inf, 0.5, 500.0]))
    assert idx.tolist() == [IGNORE_BIN] * 4 + [0, BINS.n_bins - 1]
    assert BINS.bin_to_depth(np.array([IGNORE_BIN]))[0] == 0.0


def test_soft_decode_one_hot_gives_centre_and_mixture_is_geometric_mean():
    probs = np.zeros((BINS.n_bins, 2))
    probs[10, 0] = 1.0
    probs[[20, 40], 1] = 0.5
    d = BINS.soft_decode(probs, axis=0)
    assert d[0] == pytest.approx(BINS.centres_m[10])
    assert d[1] == pytest.approx(np.sqrt(BINS.centres_m[20] * BINS.centres_m[40]))


def test_depth_bins_rejects_bad_range():
    with pytest.raises(ValueError, match="bad bins"):
        DepthBins(min_norm=1.0, max_norm=0.5)
