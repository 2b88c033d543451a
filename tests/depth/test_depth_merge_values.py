"""``merge="mask"`` at inference: the fg decoder's depth inside the foreground boxes, the bg
decoder's outside, value for value (checked against the two single-decoder predictions)."""

from __future__ import annotations

import numpy as np
import torch

from depth.infer import predict_depth
from depth.model import DepthNet
from depth_fixtures import tiny_settings


def test_mask_merge_takes_the_fg_decoder_inside_the_boxes_and_the_bg_decoder_outside():
    torch.manual_seed(0)
    model = DepthNet(tiny_settings("foresee", resize_factor=1.0)).eval()
    image = np.random.default_rng(1).integers(0, 256, size=(48, 96, 3), dtype=np.uint8)
    boxes = np.array([[20.0, 10.0, 60.0, 40.0]])  # x1, y1, x2, y2 in pixels
    fg = predict_depth(model, image, merge="fg")
    bg = predict_depth(model, image, merge="bg")
    mask = predict_depth(model, image, merge="mask", fg_boxes=boxes)
    assert not np.allclose(fg, bg)  # two different decoders: the test can tell which one won
    inside = np.zeros(fg.shape, bool)
    inside[12:38, 22:58] = True  # the box less a 2-pixel border (pixel-edge conventions aside)
    outside = np.ones(fg.shape, bool)
    outside[8:42, 18:62] = False
    np.testing.assert_array_equal(mask[inside], fg[inside])
    np.testing.assert_array_equal(mask[outside], bg[outside])
    # and the max merge is neither (it mixes the decoders' logits per bin)
    mx = predict_depth(model, image, merge="max")
    assert not np.array_equal(mx, fg) and not np.array_equal(mx, bg)
