"""Training and inference end to end on the nine real KITTI frames with a tiny network."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from detection.frustum_pointnet.infer import infer_fpointnet, infer_trivial_baseline, load_model
from detection.frustum_pointnet.settings import FPointNetSettings, preset
from detection.frustum_pointnet.train import schedule, split_holdout, train_fpointnet
from kitti.errors import KittiFormatError
from kitti.labels import read_label_file

TINY = preset("cpu-small").with_(width=0.125, num_points=64, num_object_points=32, batch_size=4,
                                 epochs=2, augment_x=1, holdout_fraction=0.3, num_threads=1,
                                 checkpoint_every_epochs=1, device="cpu")


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """train/infer set torch's thread count from the settings; give the next test its own."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, sample_root, sample_ids):
    before = torch.get_num_threads()
    out = tmp_path_factory.mktemp("fpn")
    summary = train_fpointnet(sample_root, sample_root / "training/velodyne", sample_ids, TINY, out,
                              progress=False)
    torch.set_num_threads(before)
    return out, summary


def test_train_fpointnet_writes_model_log_and_summary(trained):
    out, summary = trained
    assert (out / "model.pt").is_file() and (out / "checkpoint.pt").is_file()
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2]
    assert summary["frames_train"] + summary["frames_holdout"] == 9 and summary["frames_holdout"] == 3
    assert summary["frustums_train"] > 0 and 0.0 <= summary["holdout_seg_accuracy"] <= 1.0
    assert 0.0 <= summary["holdout_mean_iou_3d"] <= 1.0
    model, settings = load_model(out / "model.pt", torch.device("cpu"))
    assert settings == TINY and not model.training


def test_train_fpointnet_resume_continues_from_checkpoint(trained, tmp_path, sample_root, sample_ids):
    out, _ = trained
    ck = torch.load(out / "checkpoint.pt", weights_only=False)
    more = TINY.with_(epochs=3)
    ck["settings"]["epochs"] = 3  # pretend the checkpoint came from a 3-epoch run
    import io
    buf = io.BytesIO()
    torch.save(ck, buf)
    (tmp_path / "ck.pt").write_bytes(buf.getvalue())
    summary = train_fpointnet(sample_root, sample_root / "training/velodyne", sample_ids, more,
                              tmp_path / "out", progress=False, resume=tmp_path / "ck.pt")
    log = [json.loads(x) for x in (tmp_path / "out/train_log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2, 3] and summary["steps"] < 2 * summary["frustums_train"]


def test_train_fpointnet_resume_with_other_settings_raises(trained, tmp_path, sample_root, sample_ids):
    out, _ = trained
    with pytest.raises(ValueError, match="other settings"):
        train_fpointnet(sample_root, sample_root / "training/velodyne", sample_ids, TINY.with_(seed=5),
                        tmp_path, progress=False, resume=out / "checkpoint.pt")


def test_train_fpointnet_missing_cloud_names_the_file(tmp_path, sample_root):
    with pytest.raises(KittiFormatError, match="000001.bin"):
        train_fpointnet(sample_root, tmp_path, ("000001",), TINY, tmp_path / "o", progress=False)


@pytest.mark.parametrize("boxes2d", ["gt", "simulated"])
def test_infer_fpointnet_writes_one_file_per_frame(trained, tmp_path, sample_root, sample_ids, boxes2d):
    out, _ = trained
    s = infer_fpointnet(sample_root, sample_root / "training/velodyne", sample_ids, out / "model.pt",
                        TINY, tmp_path, boxes2d=boxes2d, progress=False)
    files = sorted(p.stem for p in tmp_path.glob("*.txt"))
    assert files == list(sample_ids)
    objs = [o for f in sample_ids for o in read_label_file(tmp_path / f"{f}.txt", require_score=True)]
    assert len(objs) == s["boxes_3d"] > 0
    assert all(np.isfinite([o.x, o.y, o.z, o.h, o.w, o.l, o.ry, o.score]).all() for o in objs)
    if boxes2d == "gt":
        assert all(o.score <= 0 for o in objs)  # log-probabilities
    else:
        assert all(0 < o.score < 1 for o in objs)  # the 2D detector's scores


def test_infer_fpointnet_skips_and_counts_empty_frustums(trained, tmp_path, sample_root):
    out, _ = trained
    det = tmp_path / "det.txt"
    det.write_text("x/000001.png 2 0.9 0 0 40 40\n"      # sky corner: no LiDAR point
                   "x/000001.png 2 0.8 387.63 171.54 423.81 203.12\n")
    s = infer_fpointnet(sample_root, sample_root / "training/velodyne", ("000001", "000002"),
                        out / "model.pt", TINY, tmp_path / "res", boxes2d=det, progress=False)
    assert s["skipped_no_points"] == 1 and s["boxes_3d"] == 1
    assert (tmp_path / "res/000002.txt").read_text() == ""
    lines = (tmp_path / "res/000001.txt").read_text().splitlines()
    assert len(lines) == 1 and lines[0].endswith("0.8000")


def test_infer_fpointnet_bad_detection_file_names_the_line(trained, tmp_path, sample_root):
    out, _ = trained
    det = tmp_path / "det.txt"
    det.write_text("x/000001.png 2 0.9 0 0 4 4\nx/777777.png 2 0.9 0 0 4 4\n")
    with pytest.raises(KittiFormatError, match=r"det.txt:2: unknown frame"):
        infer_fpointnet(sample_root, sample_root / "training/velodyne", ("000001",), out / "model.pt",
                        TINY, tmp_path / "res", boxes2d=det, progress=False)


def test_infer_trivial_baseline_boxes_have_mean_size_and_zero_heading(tmp_path, sample_root, sample_ids):
    s = infer_trivial_baseline(sample_root, sample_root / "training/velodyne", sample_ids, TINY,
                               tmp_path, boxes2d="gt", progress=False)
    objs = [o for f in sample_ids for o in read_label_file(tmp_path / f"{f}.txt")]
    assert len(objs) == s["boxes_3d"] > 0
    assert all(o.ry == 0.0 and abs(o.l - 3.88) < 0.01 for o in objs)


def test_split_holdout_is_seeded_and_disjoint():
    ids = tuple(f"{i:06d}" for i in range(20))
    a, b = split_holdout(ids, 0.25, 1)
    assert len(b) == 5 and not set(a) & set(b) and set(a) | set(b) == set(ids)
    assert split_holdout(ids, 0.25, 1) == (a, b) and split_holdout(ids, 0.25, 2) != (a, b)
    assert split_holdout(ids, 0.0, 1) == (ids, ())


def test_schedule_is_a_staircase_with_momentum_floor():
    s = FPointNetSettings()
    assert schedule(s, 0) == (1e-3, 0.5)
    assert schedule(s, 799_999) == (1e-3, 0.5)
    assert schedule(s, 800_000) == (5e-4, 0.25)
    assert schedule(s, 800_000 * 10)[1] == 0.01


def test_load_model_rejects_a_file_that_is_no_model(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(KittiFormatError, match="not an F-PointNet model file"):
        load_model(bad, torch.device("cpu"))
    with pytest.raises(KittiFormatError, match="not found"):
        load_model(tmp_path / "none.pt", torch.device("cpu"))


def test_train_fpointnet_max_steps_bounds_the_run(tmp_path, sample_root, sample_ids):
    s = TINY.with_(epochs=50, max_steps=3, holdout_fraction=0.0,
                   classes=("Car", "Pedestrian", "Cyclist"))
    summary = train_fpointnet(sample_root, sample_root / "training/velodyne", sample_ids[:4], s,
                              tmp_path, progress=False)
    assert summary["steps"] == 3 and summary["epochs"] < 50 and summary["holdout_is_train"]


def test_train_fpointnet_is_seeded(tmp_path, sample_root, sample_ids):
    s = TINY.with_(max_steps=2)
    weights = []
    for run, seed in (("a", 0), ("b", 0), ("c", 1)):
        train_fpointnet(sample_root, sample_root / "training/velodyne", sample_ids[:5], s.with_(seed=seed),
                        tmp_path / run, progress=False)
        weights.append(load_model(tmp_path / run / "model.pt", torch.device("cpu"))[0].state_dict())
    same = all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    differ = any(not torch.equal(weights[0][k], weights[2][k]) for k in weights[0])
    assert same and differ


def test_infer_trivial_baseline_skips_and_counts_low_2d_boxes(tmp_path, sample_root):
    det = tmp_path / "det.txt"
    det.write_text("x/000001.png 2 0.8 387.63 181.54 423.81 203.12\n"   # 21.6 px high
                   "x/000001.png 2 0.7 387.63 171.54 423.81 203.12\n")  # 31.6 px high
    s = infer_trivial_baseline(sample_root, sample_root / "training/velodyne", ("000001",), TINY,
                               tmp_path / "res", boxes2d=det, progress=False)
    assert s["skipped_small"] == 1 and s["boxes_3d"] == 1


def test_evaluate_frustums_values_from_constructed_predictions(sample_root, sample_ids, monkeypatch):
    """``evaluate_frustums`` against values known without it: a model that calls every point
    background scores the share of background points; boxes equal to the ground truth give 3D IoU
    1; boxes slid by half their length along their heading give exactly 1/3 (intersection L/2·W·H,
    union 1.5·L·W·H) and BEV IoU 1/3."""
    from detection.frustum_pointnet import train as tr
    from detection.frustum_pointnet.infer import BoxEstimate
    from kitti import KittiRoot

    settings = TINY.with_(holdout_fraction=0.0)
    frustums = tr.collect_frustums(KittiRoot(sample_root), sample_root / "training/velodyne", sample_ids,
                                   settings, np.random.default_rng(0), progress=False)
    assert len(frustums) >= 4
    model = tr.build_model(settings)

    class AllBackground(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, pts, oh, generator=None):
            out = self.inner(pts, oh, generator=generator)
            logits = torch.zeros_like(out.seg_logits)
            logits[:, :, 0] = 10.0
            return out._replace(seg_logits=logits)

    # the share of background points in the evaluated samples, drawn as evaluate_frustums draws them
    rng = np.random.default_rng([settings.seed, 11])
    bg = total = 0
    for start in range(0, len(frustums), settings.batch_size):
        _, _, tgt, _ = tr.make_batch(frustums[start:start + settings.batch_size], settings, rng,
                                     torch.device("cpu"), augment=False)
        bg += int((tgt.seg == 0).sum())
        total += int(tgt.seg.numel())
    frames = {id(f): f for f in frustums}

    def gt_boxes(shift_lengths: float):
        def fake_decode(out, rots):
            n = out.center.shape[0]
            chunk = fake_decode.queue[:n]
            del fake_decode.queue[:n]
            boxes = []
            for fr in chunk:
                l, w, h = fr.size_lwh
                heading = np.array([np.cos(fr.ry), 0.0, -np.sin(fr.ry)])
                loc = fr.center_rect + np.array([0.0, h / 2.0, 0.0]) + shift_lengths * l * heading
                boxes.append(BoxEstimate(loc, np.array([h, w, l]), float(fr.ry), 0.0))
            return boxes
        fake_decode.queue = list(frames.values())
        return fake_decode

    m = tr.evaluate_frustums(AllBackground(), frustums, settings, torch.device("cpu"))
    assert m["seg_accuracy"] == pytest.approx(bg / total, abs=1e-12)
    monkeypatch.setattr(tr, "decode", gt_boxes(0.0))
    m = tr.evaluate_frustums(model, frustums, settings, torch.device("cpu"))
    assert m["mean_iou_3d"] == pytest.approx(1.0, abs=1e-9) and m["iou3d_at_0.7"] == 1.0
    monkeypatch.setattr(tr, "decode", gt_boxes(0.5))
    m = tr.evaluate_frustums(model, frustums, settings, torch.device("cpu"))
    assert m["mean_iou_3d"] == pytest.approx(1.0 / 3.0, abs=1e-9)
    assert m["mean_iou_bev"] == pytest.approx(1.0 / 3.0, abs=1e-9)
    assert m["iou3d_at_0.5"] == 0.0
