"""Dominant-bin depth (``predict_depth(dominant=True)``, ``infer_depth(dominant_dir=…)``): each pixel's
most likely bin's centre, resized nearest-neighbour; the depth maps are the same with or without it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from depth.infer import dominant_bin_depth, predict_depth
from depth.model import bins_of, merge_logits
from depth_fixtures import tiny_settings
from pipeline import keys
from test_depth_flip import _image, _logits_one, _model


def test_dominant_bin_depth_is_the_argmax_bins_centre():
    bins = bins_of(tiny_settings())
    logits = torch.full((1, bins.n_bins, 1, 3), -1.0)
    logits[0, 7, 0, 0] = logits[0, 99, 0, 1] = logits[0, 0, 0, 2] = 2.0
    logits[0, 50, 0, 2] = 2.0                                  # a tie: the first bin wins
    np.testing.assert_allclose(dominant_bin_depth(logits, bins)[0, 0].numpy(),
                               bins.centres_m[[7, 99, 0]], rtol=1e-6)


def test_predict_depth_dominant_map_full_and_quarter_size():
    model = _model("foresee", 1.0)
    image = _image(48, 96, 3)
    depth, mode = predict_depth(model, image, dominant=True)
    np.testing.assert_array_equal(depth, predict_depth(model, image))       # unchanged by the option
    merged = merge_logits(_logits_one(model, image), "max")[0]
    want = bins_of(model.settings).centres_m[merged.argmax(dim=0).numpy()]
    np.testing.assert_allclose(mode, want, rtol=1e-6)
    assert len(np.unique(mode)) > 3                                         # not one bin everywhere
    half = _model("foresee", 0.5)
    m2 = predict_depth(half, image, dominant=True)[1]
    # at half size each network pixel covers a 2x2 block: one bin centre per block, never a blend
    assert m2.shape == (48, 96) and (m2 == np.repeat(np.repeat(m2[::2, ::2], 2, 0), 2, 1)).all()
    assert np.isin(m2, bins_of(half.settings).centres_m.astype(np.float32)).all() and len(np.unique(m2)) > 3


def test_infer_depth_writes_dominant_maps_only_when_asked(synthetic_root, tmp_path):
    from depth.infer import infer_depth
    from depth.train import train_depth
    from kitti import KittiRoot, read_depth_npz

    root = KittiRoot(synthetic_root)
    train_depth(synthetic_root, root.split("train"), tiny_settings("baseline", max_steps=1), tmp_path / "t",
                progress=False)
    ids = root.split("val")
    infer_depth(synthetic_root, ids, tmp_path / "t" / "checkpoint.pt", tmp_path / "a", progress=False)
    infer_depth(synthetic_root, ids, tmp_path / "t" / "checkpoint.pt", tmp_path / "b", progress=False,
                dominant_dir=tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(p.name for p in (tmp_path / "b").iterdir())
    for fid in ids:
        assert (tmp_path / "a" / f"{fid}.npz").read_bytes() == (tmp_path / "b" / f"{fid}.npz").read_bytes()
        assert read_depth_npz(tmp_path / "m" / f"{fid}.npz").shape == root.depth(fid).shape
    assert not (tmp_path / "a" / "dominant").exists()


@pytest.mark.parametrize("option", ["flip", "dominant"])
def test_depth_infer_key_takes_an_option_only_when_set(synthetic_root, option):
    from kitti import KittiRoot

    root = KittiRoot(synthetic_root)
    ids = root.split("val")
    plain = keys.depth_infer(root, ids, "checkpoint:x", merge="max", variant="foresee")
    assert keys.depth_infer(root, ids, "checkpoint:x", merge="max", variant="foresee", **{option: False}) == plain
    assert keys.depth_infer(root, ids, "checkpoint:x", merge="max", variant="foresee", **{option: True}).key != plain.key
