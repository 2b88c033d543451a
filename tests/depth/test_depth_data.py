"""depth.data: masks, resizing, augmentation and frame checks."""

from __future__ import annotations

import numpy as np
import pytest

from depth.bins import IGNORE_BIN, DepthBins
from depth.data import (DepthTrainSet, augment, boxes_mask, eval_fg_boxes, load_frame, resize_depth,
                        train_fg_boxes)
from depth_fixtures import _label, tiny_settings
from kitti import KittiFormatError, KittiRoot, write_depth_png


def test_boxes_mask_covers_inclusive_pixel_range_and_scales():
    m = boxes_mask((10, 20), np.array([[2.4, 1.0, 5.9, 3.2]]))
    assert m.sum() == 4 * 3 and m[1:4, 2:6].all()
    half = boxes_mask((5, 10), np.array([[2.0, 2.0, 7.0, 7.0]]), scale=0.5)
    assert half[1:4, 1:4].all() and half.sum() == 9
    assert not boxes_mask((4, 4), np.zeros((0, 4))).any()


def test_train_fg_boxes_keeps_large_boxes_at_most_max():
    labels = [_label(0, 0, 100, 100)] * 12 + [_label(0, 0, 10, 10), _label(0, 0, 100, 100, "DontCare")]
    rng = np.random.default_rng(0)
    boxes = train_fg_boxes(labels, tiny_settings(), rng)
    assert len(boxes) == 10 and ((boxes[:, 2] - boxes[:, 0]) >= 100).all()
    assert len(eval_fg_boxes([_label(0, 0, 5, 5, "Misc"), _label(0, 0, 5, 5, "Tram")])) == 1


def test_resize_depth_sparse_keeps_nearest_point_per_cell():
    d = np.zeros((40, 40), dtype=np.float32)
    d[0, 0], d[1, 1], d[20, 30] = 10.0, 4.0, 7.0
    out = resize_depth(d, (10, 10))
    assert out[0, 0] == 4.0 and out[5, 7] == 7.0 and np.count_nonzero(out) == 2
    dense = np.full((40, 40), 3.0, dtype=np.float32)
    assert (resize_depth(dense, (10, 10)) == 3.0).all()


def test_augment_scales_depth_and_pads_without_ground_truth():
    settings = tiny_settings(scales=(2.0,), crop_hw=(48, 64), hflip=False)
    image = np.full((20, 40, 3), 100, np.uint8)
    depth = np.full((20, 40), 10.0, np.float32)
    img, d, m = augment(image, depth, np.zeros((20, 40), bool), settings, np.random.default_rng(0))
    assert img.shape == (48, 64, 3) and d.shape == (48, 64)
    assert np.allclose(d[:40, :64][d[:40, :64] > 0], 5.0)     # depth / scale
    assert (d[40:] == 0).all() and (img[40:] == 0).all()       # padding has no ground truth


def test_depth_train_set_items_are_reproducible(synthetic_root):
    settings = tiny_settings(crop_hw=(64, 160))          # taller than the 48-row image: padded
    ids = KittiRoot(synthetic_root).split("train")
    ds = DepthTrainSet(synthetic_root, ids, settings, DepthBins())
    a, b = ds[0], ds[0]
    assert a["image"].shape == (3, 64, 160) and a["target_bin"].dtype == np.int64
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert (a["target_bin"] == IGNORE_BIN).any() and (a["target_bin"] >= 0).any()


def test_load_frame_rejects_depth_of_another_size(synthetic_root):
    write_depth_png(synthetic_root / "training" / "depth_2" / "000001.png", np.ones((10, 10), np.float32))
    with pytest.raises(KittiFormatError, match=r"depth_2/000001.png.*10x10"):
        load_frame(KittiRoot(synthetic_root), "000001")


def test_load_frame_rejects_missing_depth_and_resized_image(synthetic_root):
    import cv2

    (synthetic_root / "training" / "depth_2" / "000002.png").unlink()
    with pytest.raises(KittiFormatError, match="000002.png: no depth ground truth"):
        load_frame(KittiRoot(synthetic_root), "000002")
    path = synthetic_root / "training" / "image_2" / "000003.png"
    cv2.imwrite(str(path), np.zeros((48, 480, 3), np.uint8))
    with pytest.raises(KittiFormatError, match="principal point"):
        load_frame(KittiRoot(synthetic_root), "000003")
