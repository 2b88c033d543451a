"""A tiny overfit (boxes recovered, AP_2D by the evaluator = the devkit's value by hand), resume,
and the bad-input lines of training and inference."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from detect2d.data import check_image
from detect2d.infer import infer_detector
from detect2d.train import CheckpointMismatchError, batch_indices, train_detector
from kitti.errors import KittiFormatError
from kitti.labels import read_label_file
from kitti_eval import evaluate_folders

from d2d_fixtures import TINY_SCENES, TinyEncoder, label_line, tiny_settings, write_root

IDS = tuple(TINY_SCENES)


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def devkit_ap_perfect_ranking(n_gt: int) -> tuple[float, float]:
    """(R11, R40) AP in % of the KITTI devkit when the n_gt best-scored detections are exactly the
    n_gt ground truths (n_gt <= 40, all valid at every difficulty).

    By hand: getThresholds keeps one score threshold per true positive (the recall i/n_gt is
    always ahead of the sampled recall i/40), so precision[0..n_gt-1] = 1 and the 41 - n_gt
    remaining samples stay 0; R40 sums samples 1..40, R11 samples 0, 4, ..., 40.
    """
    precision = [1.0 if i < n_gt else 0.0 for i in range(41)]
    return (100.0 * sum(precision[0::4]) / 11.0, 100.0 * sum(precision[1:]) / 40.0)


@pytest.fixture(scope="module")
def overfit(tiny_root, tmp_path_factory):
    """Car-only detector trained 120 steps on the 4 tiny frames, and its detections on them."""
    out = tmp_path_factory.mktemp("overfit")
    s = tiny_settings(classes=("Car",), max_steps=120, learning_rate=5e-3, warmup_steps=10,
                      checkpoint_every_steps=60, aspect_ratios=(0.5,), anchor_scales=(1.0, 1.5))
    torch.manual_seed(0)
    summary = train_detector(tiny_root, IDS, s, out, progress=False, encoder=TinyEncoder())
    isum = infer_detector(tiny_root, IDS, out / "model.pt", out / "data", device="cpu", num_threads=1,
                          progress=False, encoder=TinyEncoder())
    return out, summary, isum


def test_overfit_recovers_every_box_above_every_false_positive(tiny_root, overfit):
    out, summary, isum = overfit
    assert summary["steps"] == 120 and summary["labels_positive"] == 5
    assert summary["labels_background"] == 3  # the pedestrians: not a class of this model
    gts = [(f, o.bbox) for f in IDS for o in read_label_file(tiny_root / "training/label_2" / f"{f}.txt")
           if o.type == "Car"]
    dets = sorted(((o.score, f, o.bbox) for f in IDS
                   for o in read_label_file(out / "data" / f"{f}.txt", require_score=True)),
                  reverse=True)
    top = dets[:len(gts)]
    for f, box in gts:  # every car is among the top-5 detections with IoU >= 0.7
        assert any(ff == f and _iou(box, b) >= 0.7 for _, ff, b in top), (f, box, top)
    assert isum["detections"]["Car"] == len(dets)


def test_overfit_ap_equals_the_devkit_value_by_hand(tiny_root, overfit):
    out, _, _ = overfit
    res = evaluate_folders(tiny_root / "training" / "label_2", out / "data", IDS, classes=("Car",),
                           metrics=("2d",))
    r11, r40 = devkit_ap_perfect_ranking(5)
    assert (r11, r40) == (pytest.approx(100 * 2 / 11), pytest.approx(10.0))
    for d in range(3):
        assert res.ap["Car"]["2d"]["R11"][d] == pytest.approx(r11, abs=1e-9)
        assert res.ap["Car"]["2d"]["R40"][d] == pytest.approx(r40, abs=1e-9)


def test_batch_indices_cover_each_epoch_once():
    seen = np.concatenate([batch_indices(s, 7, 3, seed=4) for s in range(7)])  # 3 epochs of 7
    for e in range(3):
        assert sorted(seen[7 * e:7 * e + 7].tolist()) == list(range(7))
    assert np.array_equal(batch_indices(5, 7, 3, 4), batch_indices(5, 7, 3, 4))


def test_resume_after_an_interruption_gives_the_uninterrupted_weights(tiny_root, tmp_path, monkeypatch):
    s = tiny_settings(max_steps=6, checkpoint_every_steps=3)
    torch.manual_seed(0)
    full = train_detector(tiny_root, IDS, s, tmp_path / "full", progress=False, encoder=TinyEncoder())

    import detect2d.train as tr

    real_lr = tr.learning_rate

    def crash_at_step_4(settings, step):
        if step == 4:
            raise KeyboardInterrupt
        return real_lr(settings, step)

    monkeypatch.setattr(tr, "learning_rate", crash_at_step_4)
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        train_detector(tiny_root, IDS, s, tmp_path / "cut", progress=False, encoder=TinyEncoder())
    monkeypatch.setattr(tr, "learning_rate", real_lr)
    assert torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)["step"] == 3
    torch.manual_seed(0)
    resumed = train_detector(tiny_root, IDS, s, tmp_path / "resumed", progress=False,
                             resume=tmp_path / "cut" / "checkpoint.pt", encoder=TinyEncoder())
    assert resumed["resumed_from_step"] == 3 and resumed["steps"] == 6
    a = torch.load(tmp_path / "full" / "model.pt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "resumed" / "model.pt", weights_only=False)["state_dict"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)
    assert resumed["final_loss"] == pytest.approx(full["final_loss"], rel=1e-5)
    with pytest.raises(CheckpointMismatchError, match="other settings"):
        train_detector(tiny_root, IDS, s.with_(max_steps=7), tmp_path / "x", progress=False,
                       resume=tmp_path / "cut" / "checkpoint.pt", encoder=TinyEncoder())


def test_unknown_label_type_is_skipped_and_counted(tmp_path):
    root = write_root(tmp_path / "root", extra_lines={"000001": [label_line("Lorry", (5, 5, 50, 50))]})
    s = tiny_settings(max_steps=1)
    summary = train_detector(root, IDS, s, tmp_path / "out", progress=False, encoder=TinyEncoder())
    assert summary["labels_unknown_type_skipped"] == 1
    assert summary["labels_positive"] == 8


def test_training_image_of_another_size_is_refused_with_its_name(tmp_path):
    root = write_root(tmp_path / "root", sizes={"000002": (64, 192)})
    with pytest.raises(KittiFormatError, match=r"image_2/000002\.png: image is 192x64 .* 384x128"):
        train_detector(root, IDS, tiny_settings(max_steps=1), tmp_path / "out", progress=False,
                       encoder=TinyEncoder())


def test_inference_image_of_another_size_is_refused_before_any_work(tiny_root, overfit, tmp_path):
    out, _, _ = overfit
    root = write_root(tmp_path / "root", sizes={"000003": (256, 768)})
    with pytest.raises(KittiFormatError, match=r"image_2/000003\.png: image is 768x256"):
        infer_detector(root, IDS, out / "model.pt", tmp_path / "data", device="cpu", progress=False,
                       encoder=TinyEncoder())
    assert not list((tmp_path / "data").glob("*.txt"))


def test_check_image_tolerance_and_principal_point():
    from kitti.calib import Calibration
    from d2d_fixtures import calib_text

    p = Path("image_2/000007.png")
    check_image(p, (370, 1224), (375, 1242), 0.05)  # another KITTI drive: accepted
    with pytest.raises(KittiFormatError, match="000007.png: image is 621x188"):
        check_image(p, (188, 621), (375, 1242), 0.05)
    far = Calibration.from_text(calib_text(2000, 600))  # principal point (1000, 300)
    with pytest.raises(KittiFormatError, match="principal point .* outside"):
        check_image(p, (128, 384), (128, 384), 0.05, far)
    assert math.isclose(far.cu, 1000.0)
