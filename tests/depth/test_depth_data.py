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


# ---------------------------------------------------------------------------- object-surface foreground
def test_object_surface_mask_is_every_objects_pixels_inside_its_3d_box():
    from depth.data import labels_of, object_surface_mask
    from depth_fixtures import object_scene

    calib, gt, labels, expected_a = object_scene()
    expected = expected_a.copy()
    expected[59:66, 78:81] = True              # the pedestrian's 21 pixels
    expected[60:62, 160:163] = True            # the 6-pixel car: too small to be scored, still foreground
    mask = object_surface_mask(gt, labels_of(labels), calib)   # labels_of drops the DontCare
    np.testing.assert_array_equal(mask, expected)
    assert not mask[60:66, 100:110].any()      # the occluder in car A's 2D box (3 m) is not car A
    assert not mask[57, 97] and gt[57, 97] == 60.0   # background inside car A's 2D box
    assert [o.type for o in labels_of(labels)] == ["Car", "Pedestrian", "Car"]


def test_resize_mask_with_depth_follows_the_kept_depth():
    from depth.data import resize_mask_with_depth

    dense = np.full((4, 4), 5.0, np.float32)
    mask = np.zeros((4, 4), bool)
    mask[0, 2] = True                          # kept by nearest 4 -> 2 (source rows / columns 0, 2)
    mask[1, 1] = True                          # not kept: its depth is dropped too
    np.testing.assert_array_equal(resize_mask_with_depth(mask, dense, (2, 2)), [[False, True], [False, False]])
    sparse = np.zeros((4, 4), np.float32)
    sparse[0, 0], sparse[1, 1], sparse[0, 2], sparse[3, 3] = 10.0, 5.0, 7.0, 9.0
    smask = np.zeros((4, 4), bool)
    smask[0, 0] = smask[0, 2] = True           # (0, 0) loses its cell to the nearer unmasked (1, 1)
    np.testing.assert_array_equal(resize_depth(sparse, (2, 2)), [[5.0, 7.0], [0.0, 9.0]])
    np.testing.assert_array_equal(resize_mask_with_depth(smask, sparse, (2, 2)), [[False, True], [False, False]])
    smask[1, 1] = True
    assert resize_mask_with_depth(smask, sparse, (2, 2))[0, 0]
    with pytest.raises(ValueError, match="differ"):
        resize_mask_with_depth(np.zeros((2, 2), bool), sparse, (2, 2))


def _object_scene_root(root):
    """A one-frame KITTI root of :func:`depth_fixtures.object_scene` (train = val = that frame)."""
    import cv2

    from depth_fixtures import object_scene
    from kitti import write_label_file
    from kitti.fileio import atomic_write_bytes, atomic_write_text

    calib, gt, labels, _ = object_scene()
    image = np.zeros((*gt.shape, 3), np.uint8)
    atomic_write_bytes(root / "training" / "image_2" / "000000.png", cv2.imencode(".png", image)[1].tobytes())
    write_depth_png(root / "training" / "depth_2" / "000000.png", gt)
    atomic_write_text(root / "training" / "calib" / "000000.txt", calib.to_text())
    write_label_file(root / "training" / "label_2" / "000000.txt", labels)
    for split in ("train", "val"):
        atomic_write_text(root / "ImageSets" / f"{split}.txt", "000000\n")
    return root


def test_foresee_obj_trains_on_the_object_surfaces_with_foresees_crops(tmp_path):
    from depth.data import labels_of, object_surface_mask

    root = _object_scene_root(tmp_path / "scene")
    whole = dict(crop_hw=(120, 240), scales=(1.0,), hflip=False, fg_min_area_px2=0.0)
    obj = DepthTrainSet(root, ["000000"], tiny_settings("foresee-obj", **whole), DepthBins())[0]
    boxes = DepthTrainSet(root, ["000000"], tiny_settings("foresee", **whole), DepthBins())[0]
    frame = load_frame(KittiRoot(root), "000000")
    expected = object_surface_mask(frame.depth_m, labels_of(frame.labels), KittiRoot(root).calib("000000"))
    assert expected.sum() == 600 - 60 + 21 + 6            # car A less the occluder, pedestrian, small car
    np.testing.assert_array_equal(obj["fg_mask"], expected)
    np.testing.assert_array_equal(boxes["fg_mask"], boxes_mask((120, 240), train_fg_boxes(
        frame.labels, tiny_settings("foresee", **whole), np.random.default_rng(0))))
    assert all(np.array_equal(obj[k], boxes[k]) for k in ("image", "target_bin"))
    # random crops, flips and scales: still the crops foresee draws for the same seed and item
    aug = dict(crop_hw=(64, 96), scales=(1.0, 1.25))
    for i in range(4):
        ds_o = DepthTrainSet(root, ["000000"], tiny_settings("foresee-obj", seed=i, **aug), DepthBins())
        ds_b = DepthTrainSet(root, ["000000"], tiny_settings("foresee", seed=i, **aug), DepthBins())
        a, b = ds_o[0], ds_b[0]
        assert np.array_equal(a["target_bin"], b["target_bin"]) and np.array_equal(a["image"], b["image"])
        assert (a["target_bin"][a["fg_mask"]] != IGNORE_BIN).all()   # an object pixel always has ground truth


def test_the_papers_variants_keep_their_training_masks_and_cache_keys(synthetic_root):
    """Values computed by the code before foresee-obj existed (commit 5c80c6f, the same calls)."""
    import depth
    from depth.settings import preset
    from kitti import KittiRoot as _Root
    from pipeline.cache import make_key

    ids = sorted(_Root(synthetic_root).split("train") + _Root(synthetic_root).split("val"))
    before = [[0, 94848], [0, 107904], [900, 129188], [828, 80548], [0, 112256], [608, 112960]]
    for v in ("baseline", "foresee"):
        s = tiny_settings(v, fg_min_area_px2=400.0, scales=(1.0, 1.25))
        ds = DepthTrainSet(synthetic_root, ids, s, DepthBins())
        ds.set_epoch(1)
        assert [[int(ds[i]["fg_mask"].sum()), int(ds[i]["target_bin"].sum())] for i in range(len(ids))] == before
    keys = {"paper": ("6f102f8c3a3dbe67", "26bc4cc51e31fb9e", "126fdd475662f867", "e5918d7d7bd3bd58"),
            "cpu-small": ("c63365958cbddf53", "c9c83f3c43b72f34", "2d62da984aa9dbdd", "e8bb09e75585e81c")}
    for name, want in keys.items():
        got = tuple(make_key("depth-train", depth.CODE_VERSION, preset(name, v), ("data:x",))
                    for v in ("baseline", "so", "so-sd", "foresee"))
        assert got == want
    assert make_key("depth-train", depth.CODE_VERSION, preset("cpu-small", "foresee-obj"), ("data:x",)) != want[3]
