"""Fig. 2 / Table 1 statistics (depth.stats) of a constructed depth map, against values worked
out by hand: a 20x10 px car box with a depth ramp on a constant 40 m background."""

from __future__ import annotations

import numpy as np
import pytest

from depth.stats import depth_statistics
from kitti import write_depth_png


def test_statistics_of_a_constructed_depth_map(tmp_path):
    root = tmp_path / "root"
    depth = np.full((40, 60), 40.0, np.float32)
    depth[0, :] = 0.0  # no data in the top row
    ramp = 8.0 + 0.25 * np.arange(20)  # 8.00 ... 12.75 m along x inside the box
    depth[10:20, 10:30] = ramp[None, :]
    write_depth_png(root / "training" / "depth_2" / "000000.png", depth)
    (root / "training" / "label_2").mkdir(parents=True)
    # bbox x1 y1 x2 y2 = 10 10 29 19: pixel columns 10..29, rows 10..19 (200 px)
    (root / "training" / "label_2" / "000000.txt").write_text(
        "Car 0.00 0 0.00 10.00 10.00 29.00 19.00 1.50 1.60 3.90 0.00 1.50 10.00 0.00\n")
    s = depth_statistics(root, ["000000"])
    fg, bg = s.regions["fg"], s.regions["bg"]
    assert s.frames == 1 and s.image_pixels == 2400
    assert s.fg_fraction_of_image == pytest.approx(200 / 2400, abs=1e-15)
    assert fg.pixels == 200 and bg.pixels == 2400 - 200 - 60
    # fg depths: 20 values 8 + 0.25 k, each 10 times; quantiles by linear interpolation on the
    # 200 sorted values: position q * 199
    values = sorted(8.0 + 0.25 * k for k in range(20) for _ in range(10))
    for q, got in zip((0.25, 0.5, 0.75), fg.depth_quantiles_m):
        pos = q * 199
        lo = int(pos)
        assert got == pytest.approx(values[lo] + (pos - lo) * (values[lo + 1] - values[lo]), abs=1e-12)
    assert fg.near_fraction == 1.0 and bg.near_fraction == 0.0 and bg.depth_quantiles_m == (40.0, 40.0, 40.0)
    # fg gradients: 10 rows x 19 horizontal steps of 0.25 m, 9 x 20 vertical steps of 0
    # (the maps are float32: the mean is summed in float32)
    assert fg.grad_mean == pytest.approx(190 * 0.25 / 370, rel=1e-6) and fg.grad_median == 0.25
    assert bg.grad_mean == 0.0 and bg.grad_median == 0.0
    # histograms: fg depths in the 2-m bins [8, 10) 80 px, [10, 12) 80 px, [12, 14) 40 px
    assert fg.depth_hist.sum() == 200 and list(fg.depth_hist[4:7]) == [80, 80, 40]
    assert bg.depth_hist[20] == bg.pixels  # all at 40 m: the [40, 42) bin
