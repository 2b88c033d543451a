"""depth.train and depth.infer on a tiny synthetic root: outputs, seeding, resume, errors."""

from __future__ import annotations

import csv
from dataclasses import replace

import numpy as np
import pytest
import torch

from depth.infer import export_gt_depth, infer_depth
from depth.metrics import evaluate_depth_dir
from depth.model import CheckpointMismatchError, load_checkpoint
from depth.train import TrainingError, train_depth
from depth_fixtures import tiny_settings, write_synthetic_root
from kitti import KittiRoot, read_depth_npz


def test_train_depth_writes_checkpoint_and_log_and_is_seeded(synthetic_root, tmp_path):
    ids = KittiRoot(synthetic_root).split("train")
    settings = tiny_settings("foresee", max_steps=2)
    a = train_depth(synthetic_root, ids, settings, tmp_path / "a", progress=False)
    b = train_depth(synthetic_root, ids, settings, tmp_path / "b", progress=False)
    assert a["steps"] == 2 and a["device"] == "cpu" and np.isfinite(a["final_loss"])
    rows = list(csv.DictReader((tmp_path / "a" / "train_log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2]
    ma, sa, _ = load_checkpoint(tmp_path / "a" / "checkpoint.pt", expected=settings)
    mb, _, _ = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert sa == settings
    assert all(torch.equal(v, mb.state_dict()[k]) for k, v in ma.state_dict().items())


def test_train_depth_resume_continues_and_rejects_other_variant(synthetic_root, tmp_path):
    ids = KittiRoot(synthetic_root).split("train")
    settings = tiny_settings("so", max_steps=2)
    train_depth(synthetic_root, ids, settings, tmp_path / "a", progress=False)
    more = replace(settings, max_steps=3)
    out = train_depth(synthetic_root, ids, more, tmp_path / "b", progress=False, resume=tmp_path / "a" / "checkpoint.pt")
    assert out["steps"] == 3
    assert len(list(csv.DictReader((tmp_path / "b" / "train_log.csv").open()))) == 3
    with pytest.raises(CheckpointMismatchError, match=r"checkpoint.pt.*variant"):
        train_depth(synthetic_root, ids, replace(settings, variant="baseline"), tmp_path / "c", progress=False,
                    resume=tmp_path / "a" / "checkpoint.pt")


def test_train_depth_nan_loss_names_the_step(synthetic_root, tmp_path, monkeypatch):
    import depth.train as train_mod

    real, calls = train_mod.variant_loss, []

    def nan_on_second_call(*args, **kwargs):
        terms = real(*args, **kwargs)
        calls.append(1)
        return type(terms)(terms.total * float("nan"), terms.parts) if len(calls) == 2 else terms

    monkeypatch.setattr(train_mod, "variant_loss", nan_on_second_call)
    ids = KittiRoot(synthetic_root).split("train")
    with pytest.raises(TrainingError, match="step 2"):
        train_depth(synthetic_root, ids, tiny_settings("baseline", max_steps=3), tmp_path / "a", progress=False)


def test_train_depth_loss_decreases_on_tiny_overfit(synthetic_root, tmp_path):
    ids = KittiRoot(synthetic_root).split("train")[:2]
    settings = tiny_settings("baseline", max_steps=25, batch_size=2, lr=5e-3, hflip=False, poly_power=0.0)
    train_depth(synthetic_root, ids, settings, tmp_path / "a", progress=False)
    losses = [float(r["loss"]) for r in csv.DictReader((tmp_path / "a" / "train_log.csv").open())]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:3])


@pytest.fixture(scope="module")
def trained_foresee(tmp_path_factory):
    """(root, checkpoint) of a one-step foresee model on the synthetic root, shared by the module."""
    base = tmp_path_factory.mktemp("trained")
    write_synthetic_root(base / "root")
    settings = tiny_settings("foresee", max_steps=1, resize_factor=0.5)
    train_depth(base / "root", KittiRoot(base / "root").split("train"), settings, base / "t", progress=False)
    return base / "root", base / "t" / "checkpoint.pt"


@pytest.mark.parametrize("merge", ["max", "mask", "fg", "bg"])
def test_infer_depth_writes_full_resolution_maps(trained_foresee, tmp_path, merge):
    synthetic_root, checkpoint = trained_foresee
    root = KittiRoot(synthetic_root)
    ids = root.split("val")
    res = infer_depth(synthetic_root, ids, checkpoint, tmp_path / "d", merge=merge, progress=False)
    assert res["frames"] == len(ids)
    d = read_depth_npz(tmp_path / "d" / f"{ids[0]}.npz")
    assert d.shape == root.image_hw(ids[0]) and d.dtype == np.float32
    assert 1.2 - 1e-3 <= d.min() and d.max() <= 80.0 + 1e-3
    assert np.isfinite(evaluate_depth_dir(synthetic_root, ids, tmp_path / "d").pooled["global"]["absrel"])


def test_infer_depth_mask_merge_needs_two_decoders(synthetic_root, tmp_path):
    root = KittiRoot(synthetic_root)
    train_depth(synthetic_root, root.split("train"), tiny_settings("baseline", max_steps=1), tmp_path / "t",
                progress=False)
    with pytest.raises(ValueError, match="two-decoder"):
        infer_depth(synthetic_root, root.split("val"), tmp_path / "t" / "checkpoint.pt", tmp_path / "d",
                    merge="mask", progress=False)


def test_export_gt_depth_copies_ground_truth(synthetic_root, tmp_path):
    root = KittiRoot(synthetic_root)
    ids = root.split("val")
    export_gt_depth(synthetic_root, ids, tmp_path / "gt")
    np.testing.assert_array_equal(read_depth_npz(tmp_path / "gt" / f"{ids[0]}.npz"), root.depth(ids[0]))
