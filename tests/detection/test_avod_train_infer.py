"""AVOD end to end on one real KITTI frame with a tiny network: loss falls, boxes come out, a short
overfit finds the frame's cars (slow), checkpoints resume, the CLI wires it through the cache."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from shapely.geometry import Polygon

from kitti.boxes import box_bev_corners
from kitti.errors import KittiFormatError
from kitti.labels import read_label_file
from detection.avod.infer import infer_avod, load_model
from detection.avod.settings import AvodSettings
from detection.avod.train import learning_rate, train_avod

FRAME = "000008"

TINY = AvodSettings(x_range_m=(-20.0, 20.0), z_range_m=(0.0, 40.0), cell_m=0.5, use_image=False,
                    channels=(4, 8, 8, 8), decoder_channels=8, rpn_fc=16, pre_nms_top=500,
                    proposals_train=64, proposals_test=32, fc_layers=(64, 64), dropout=0.0, rpn_batch=128,
                    roi_batch=64, add_gt_to_proposals=True, learning_rate=3e-3, lr_decay_steps=1000,
                    weight_decay=0.0, steps=20, flip=False, pca_jitter=False, checkpoint_every=10,
                    num_threads=1, device="cpu")


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _bev_iou(a, b) -> float:
    pa = Polygon(box_bev_corners(np.array([a[:3]]), np.array([a[3:6]]), np.array([a[6]]))[0])
    pb = Polygon(box_bev_corners(np.array([b[:3]]), np.array([b[3:6]]), np.array([b[6]]))[0])
    return pa.intersection(pb).area / pa.union(pb).area


def _best_ious(result_file, label_file, settings) -> list[float]:
    dets = [[o.x, o.y, o.z, o.h, o.w, o.l, o.ry] for o in read_label_file(result_file)]
    gts = [[o.x, o.y, o.z, o.h, o.w, o.l, o.ry] for o in read_label_file(label_file)
           if o.type == "Car" and settings.x_range_m[0] <= o.x < settings.x_range_m[1]
           and settings.z_range_m[0] <= o.z < settings.z_range_m[1]]
    return [max((_bev_iou(g, d) for d in dets), default=0.0) for g in gts]


def test_train_then_infer_one_frame(tmp_path, sample_root):
    velo = sample_root / "training/velodyne"
    summary = train_avod(sample_root, velo, (FRAME,), TINY, tmp_path / "train", progress=False)
    log = [json.loads(line) for line in (tmp_path / "train/train_log.jsonl").read_text().splitlines()]
    assert summary["steps"] == 20 and len(log) == 1
    assert (tmp_path / f"train/planes/{FRAME}.txt").is_file()
    model, trained, sizes = load_model(tmp_path / "train/model.pt", torch.device("cpu"))
    assert trained == TINY and sizes.shape == (2, 3)
    out = infer_avod(sample_root, velo, (FRAME, "000003"), tmp_path / "train/model.pt", TINY, tmp_path / "res",
                     planes_out=tmp_path / "planes", progress=False)
    assert out["frames"] == 2
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == ["000003.txt", f"{FRAME}.txt"]
    for o in read_label_file(tmp_path / "res" / f"{FRAME}.txt", require_score=True):
        assert o.type == "Car" and 0.1 <= o.score <= 1.0
        expected = (o.ry - np.arctan2(o.x, o.z) + np.pi) % (2 * np.pi) - np.pi
        assert o.alpha == pytest.approx(expected, abs=0.015)  # label files keep 2 decimals


def test_resume_continues_where_a_run_stopped(tmp_path, sample_root):
    velo = sample_root / "training/velodyne"
    train_avod(sample_root, velo, (FRAME,), TINY, tmp_path / "whole", progress=False)
    train_avod(sample_root, velo, (FRAME,), TINY.with_(steps=10), tmp_path / "half", progress=False)
    resumed = train_avod(sample_root, velo, (FRAME,), TINY, tmp_path / "rest", progress=False,
                         resume=tmp_path / "half/checkpoint.pt")
    assert resumed["steps"] == 20
    a = torch.load(tmp_path / "whole/model.pt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "rest/model.pt", weights_only=False)["state_dict"]
    for name, value in a.items():
        torch.testing.assert_close(b[name], value, rtol=1e-4, atol=1e-6, msg=name)
    with pytest.raises(ValueError, match="other settings"):
        train_avod(sample_root, velo, (FRAME,), TINY.with_(seed=1), tmp_path / "b",
                   progress=False, resume=tmp_path / "half/checkpoint.pt")


def test_learning_rate_is_a_staircase():
    s = TINY.with_(learning_rate=1e-3, lr_decay_rate=0.8, lr_decay_steps=10)
    assert [learning_rate(s, k) for k in (0, 9, 10, 25)] == pytest.approx([1e-3, 1e-3, 8e-4, 6.4e-4])


def test_load_model_names_a_bad_file(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(KittiFormatError, match="model.pt"):
        load_model(bad, torch.device("cpu"))


@pytest.mark.slow
def test_overfit_one_frame_finds_its_cars(tmp_path, sample_root):
    velo = sample_root / "training/velodyne"
    s = TINY.with_(steps=300, learning_rate=3e-3, lr_decay_steps=150, lr_decay_rate=0.5, min_score=0.3)
    train_avod(sample_root, velo, (FRAME,), s, tmp_path / "train", progress=False)
    infer_avod(sample_root, velo, (FRAME,), tmp_path / "train/model.pt", s, tmp_path / "res", progress=False)
    ious = _best_ious(tmp_path / "res" / f"{FRAME}.txt", sample_root / f"training/label_2/{FRAME}.txt", s)
    assert ious and min(ious) >= 0.7, ious


def test_detect_cmd_avod_train_infer_cached(tmp_path, sample_root):
    from pipeline.commands.detect_cmd import detect_group

    split = tmp_path / "split.txt"
    split.write_text("000006\n000008\n")
    work = tmp_path / "work"
    common = ["--detector", "avod", "--data", str(sample_root), "--points", str(sample_root / "training/velodyne"),
              "--split", str(split), "--workdir", str(work), "--quiet", "--threads", "1"]
    runner = CliRunner()
    r = runner.invoke(detect_group, ["train", *common, "--steps", "2"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    ref = re.search(r"(detect-train/[0-9a-f]{16}) \(built\)", r.output).group(1)
    assert (work / ref / "model.pt").is_file() and (work / ref / "planes/000008.txt").is_file()
    assert f"{ref} (cached)" in runner.invoke(detect_group, ["train", *common, "--steps", "2"]).output
    r = runner.invoke(detect_group, ["infer", *common, "--model", ref], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (work / "detect-infer").glob("*/data/*.txt")) == ["000006.txt", "000008.txt"]
    bad = runner.invoke(detect_group, ["train", *common, "--epochs", "3"])
    assert bad.exit_code == 2 and "--epochs is an option of F-PointNet only" in bad.output


def test_image_view_flip_and_jitter_train_and_infer(tmp_path, sample_root):
    velo = sample_root / "training/velodyne"
    s = TINY.with_(use_image=True, image_hw=(48, 160), steps=4, flip=True, pca_jitter=True, checkpoint_every=4)
    summary = train_avod(sample_root, velo, ("000006", FRAME), s, tmp_path / "train", progress=False)
    assert summary["steps"] == 4 and np.isfinite(summary["final_total"])
    model, trained, _ = load_model(tmp_path / "train/model.pt", torch.device("cpu"))
    assert trained.use_image and hasattr(model, "img_net")
    out = infer_avod(sample_root, velo, (FRAME,), tmp_path / "train/model.pt", s, tmp_path / "res", progress=False)
    assert out["frames"] == 1 and (tmp_path / "res" / f"{FRAME}.txt").is_file()


def test_paper_preset_builds_the_published_layer_sizes():
    from detection.avod.model import AvodNet
    from detection.avod.settings import preset

    net = AvodNet(preset("paper"))
    convs = [m for m in net.bev_net.blocks.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32] * 2 + [64] * 2 + [128] * 3 + [256] * 3
    assert net.bev_net.fuses[-1][0].out_channels == 32 and hasattr(net, "img_net")
    fcs = [m for m in net.fc.modules() if isinstance(m, torch.nn.Linear)]
    assert [(f.in_features, f.out_features) for f in fcs] == [(32 * 49, 2048), (2048, 2048), (2048, 2048)]
    assert net.box_head.out_features == 10 and net.ang_head.out_features == 2
