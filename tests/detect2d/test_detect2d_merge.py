"""Multi-scale inference and box voting (``detect2d.infer.merge_detections``) against a float64
brute-force reference, and the inference options' place in the cache keys."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings as hsettings, strategies as st

from detect2d.infer import infer_detector, merge_detections
from detect2d.settings import Detect2DSettings, preset
from kitti.labels import read_label_file


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def brute_force_merge(boxes, scores, labels, nms_thresh, vote_iou, max_detections):
    """Greedy per-class NMS by decreasing score (ties: lower index first), then box voting,
    in float64 loops."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept: list[int] = []
    for i in order:
        if all(labels[j] != labels[i] or _iou(boxes[i], boxes[j]) <= nms_thresh for j in kept):
            kept.append(i)
    kept = kept[:max_detections]
    out = []
    for k in kept:
        if vote_iou <= 0:
            out.append(boxes[k])
            continue
        num, den = np.zeros(4), 0.0
        for j in range(len(scores)):
            if labels[j] == labels[k] and (j == k or _iou(boxes[k], boxes[j]) >= vote_iou):
                num += scores[j] * boxes[j]
                den += scores[j]
        out.append(num / den)
    return np.array(out).reshape(-1, 4), scores[kept], labels[kept]


@st.composite
def candidates(draw):
    n = draw(st.integers(0, 14))
    rows = []
    for _ in range(n):
        x1 = draw(st.floats(0, 80)); y1 = draw(st.floats(0, 40))
        w = draw(st.floats(2, 40)); h = draw(st.floats(2, 30))
        rows.append([x1, y1, x1 + w, y1 + h])
    # distinct scores: the ranking (and so the NMS) is unambiguous
    scores = draw(st.lists(st.integers(1, 10_000), min_size=n, max_size=n, unique=True))
    labels = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    return (np.array(rows, dtype=np.float64).reshape(-1, 4), np.array(scores, dtype=np.float64) / 10_000,
            np.array(labels, dtype=np.int64))


@hsettings(max_examples=60, deadline=None)
@given(c=candidates(), vote_iou=st.sampled_from([0.0, 0.5, 0.65]), max_det=st.integers(1, 20))
def test_merge_equals_the_brute_force_reference(c, vote_iou, max_det):
    boxes, scores, labels = c
    got = merge_detections(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(labels),
                           nms_thresh=0.5, vote_iou=vote_iou, max_detections=max_det)
    want = brute_force_merge(boxes, scores, labels, 0.5, vote_iou, max_det)
    np.testing.assert_allclose(got[0].numpy(), want[0], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(got[1].numpy(), want[1])
    np.testing.assert_array_equal(got[2].numpy(), want[2])


def test_voting_averages_by_score_within_a_class_only():
    boxes = torch.tensor([[0, 0, 10, 10], [2, 0, 12, 10], [0, 0, 10, 10.5]], dtype=torch.float64)
    scores = torch.tensor([0.9, 0.3, 0.8], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])
    b, s, lab = merge_detections(boxes, scores, labels, nms_thresh=0.5, vote_iou=0.6, max_detections=10)
    # box 1 overlaps box 0 with IoU 80/120 = 0.667: suppressed, and voted into box 0
    assert s.tolist() == [0.9, 0.8] and lab.tolist() == [0, 1]
    np.testing.assert_allclose(b[0].numpy(), [(0.9 * 0 + 0.3 * 2) / 1.2, 0, (0.9 * 10 + 0.3 * 12) / 1.2, 10])
    np.testing.assert_allclose(b[1].numpy(), [0, 0, 10, 10.5])  # another class: left alone


def test_inference_options_never_change_the_training_key():
    s = preset("cpu-small")
    t = s.with_(test_scale_factors=(1.0,), box_vote_iou=0.0, score_thresh=0.2, nms_thresh=0.6)
    assert s.training_key() == t.training_key()
    assert s.inference_options() != t.inference_options()
    assert s.with_(max_steps=7).training_key() != s.training_key()
    assert s.inference_scales == tuple(s.image_scale * f for f in s.test_scale_factors)


def test_bad_inference_options_are_refused():
    with pytest.raises(ValueError, match="test_scale_factors"):
        Detect2DSettings(test_scale_factors=())
    with pytest.raises(ValueError, match="box_vote_iou"):
        Detect2DSettings(box_vote_iou=1.5)


def test_a_repeated_scale_gives_the_single_scale_voted_detections(tiny_root, tmp_path):
    """Detecting at the same scale twice doubles every candidate; NMS then keeps one of each pair
    and every voted mean counts each candidate twice: the detections of one scale with voting,
    to rounding."""
    from d2d_fixtures import TINY_SCENES, TinyEncoder, tiny_settings
    from detect2d.train import train_detector

    ids = tuple(TINY_SCENES)
    s = tiny_settings(classes=("Car",), max_steps=8)
    torch.manual_seed(0)
    train_detector(tiny_root, ids, s, tmp_path / "m", progress=False, encoder=TinyEncoder())
    runs = {}
    low = {"score_thresh": 0.0, "detections_per_img": 20}  # an 8-step model: keep its weak boxes
    vote = {**low, "box_vote_iou": 0.65}
    for name, opts in {"one": vote, "twice": {**vote, "test_scale_factors": (1.0, 1.0)}}.items():
        infer_detector(tiny_root, ids, tmp_path / "m" / "model.pt", tmp_path / name, device="cpu", num_threads=1,
                       progress=False, encoder=TinyEncoder(), options=opts)
        runs[name] = {f: read_label_file(tmp_path / name / f"{f}.txt", require_score=True) for f in ids}
    n = 0
    for f in ids:
        one, twice = runs["one"][f], runs["twice"][f]
        assert [o.score for o in one] == pytest.approx([o.score for o in twice], abs=1e-4)
        for a, b in zip(one, twice):
            assert a.bbox == pytest.approx(b.bbox, abs=0.01)
            n += 1
    assert n >= 20


def test_training_crop_clips_shifts_and_drops_boxes():
    from detect2d.data import TrainFrame
    from detect2d.train import make_batch

    image = np.arange(20 * 100 * 3, dtype=np.uint8).reshape(20, 100, 3)
    boxes = np.array([[10, 2, 30, 12],    # inside the window [20, 70): clipped to 20..30, half left
                      [40, 2, 50, 12],    # inside
                      [60, 2, 90, 12],    # 10 of 30 px left: dropped
                      [80, 2, 95, 12]], dtype=np.float32)  # outside: dropped
    fr = TrainFrame("000000", image, boxes, np.array([0, 1, 0, 1]), np.array([[0, 0, 25, 5]], np.float32))
    imgs, tg = make_batch([fr], [False], torch.device("cpu"), crop_x0=[20], crop_width=50)
    assert imgs[0].shape == (3, 20, 50)
    np.testing.assert_allclose(imgs[0].numpy(), image[:, 20:70].transpose(2, 0, 1) / 255.0, rtol=0, atol=1e-6)
    np.testing.assert_allclose(tg[0]["boxes"].numpy(), [[0, 2, 10, 12], [20, 2, 30, 12]])
    assert tg[0]["labels"].tolist() == [0, 1]
    np.testing.assert_allclose(tg[0]["ignore_boxes"].numpy(), [[0, 0, 5, 5]])
    # flipped first (x -> 100 - x), then cut: [40, 50] -> [50, 60] -> [30, 40]; [60, 90] -> [10, 40],
    # 20 of its 30 px in the window -> [0, 20]; the other two fall outside
    _, tg = make_batch([fr], [True], torch.device("cpu"), crop_x0=[20], crop_width=50)
    np.testing.assert_allclose(tg[0]["boxes"].numpy(), [[30, 2, 40, 12], [0, 2, 20, 12]])
    assert tg[0]["labels"].tolist() == [1, 0]


def test_flip_mirrors_boxes_and_ignore_boxes_with_the_image():
    """A 100 px wide image flipped left-right: every box, ignore boxes included, maps x -> 100 - x
    (x1' = 100 - x2, x2' = 100 - x1; rows unchanged), with and without a crop window after it."""
    from detect2d.data import TrainFrame
    from detect2d.train import make_batch

    image = np.arange(20 * 100 * 3, dtype=np.uint8).reshape(20, 100, 3)
    boxes = np.array([[10, 2, 30, 12], [60, 4, 90, 16]], dtype=np.float32)
    ignore = np.array([[0, 0, 25, 5], [70, 3, 80, 9]], dtype=np.float32)
    fr = TrainFrame("000000", image, boxes, np.array([0, 1]), ignore)
    imgs, tg = make_batch([fr], [True], torch.device("cpu"))
    np.testing.assert_array_equal(imgs[0].numpy(), image[:, ::-1].transpose(2, 0, 1) / np.float32(255.0))
    np.testing.assert_array_equal(tg[0]["boxes"].numpy(), [[70, 2, 90, 12], [10, 4, 40, 16]])
    np.testing.assert_array_equal(tg[0]["ignore_boxes"].numpy(), [[75, 0, 100, 5], [20, 3, 30, 9]])
    # flipped, then cut to [10, 60): ignore [75, 100] falls outside, [20, 30] -> [10, 20]
    _, tg = make_batch([fr], [True], torch.device("cpu"), crop_x0=[10], crop_width=50)
    np.testing.assert_array_equal(tg[0]["ignore_boxes"].numpy(), [[10, 3, 20, 9]])


def test_training_on_crops_runs_with_empty_windows(tiny_root, tmp_path):
    from d2d_fixtures import TINY_SCENES, TinyEncoder, tiny_settings
    from detect2d.train import train_detector

    s = tiny_settings(max_steps=4, train_crop_width=24, architecture="fcos")
    summary = train_detector(tiny_root, tuple(TINY_SCENES), s, tmp_path, progress=False, encoder=TinyEncoder())
    assert summary["steps"] == 4 and np.isfinite(summary["final_loss"])
