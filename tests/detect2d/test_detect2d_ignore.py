"""DontCare / ignore regions: label sorting, and the RetinaNet / FCOS losses against float64 NumPy."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from detect2d.data import sort_labels
from detect2d.model import build_detector
from kitti.labels import parse_label_line

from d2d_fixtures import TinyEncoder, label_line, tiny_settings


def _focal_np(x: np.ndarray, t: np.ndarray, alpha: float = 0.25, gamma: float = 2.0) -> np.ndarray:
    """torchvision's sigmoid focal loss, elementwise, float64."""
    p = 1.0 / (1.0 + np.exp(-x))
    ce = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    p_t = p * t + (1 - p) * (1 - t)
    return (alpha * t + (1 - alpha) * (1 - t)) * ce * (1 - p_t) ** gamma


def _grid_anchors(n: int = 6, size: float = 10.0) -> torch.Tensor:
    """n x n anchors of size x size px tiling [0, n*size)^2, row-major."""
    ys, xs = np.meshgrid(np.arange(n) * size, np.arange(n) * size, indexing="ij")
    a = np.stack([xs.ravel(), ys.ravel(), xs.ravel() + size, ys.ravel() + size], axis=1)
    return torch.tensor(a, dtype=torch.float32)


def test_sort_labels_positive_ignored_background_unknown():
    s = tiny_settings(classes=("Car", "Pedestrian"), min_train_height_px=20.0)
    lines = [label_line("Car", (10, 10, 60, 50)),            # positive
             label_line("Car", (70, 10, 100, 25)),           # 15 px high < 20: ignore region
             label_line("Van", (0, 0, 30, 30)),              # neighbour class: ignore region
             "DontCare -1 -1 -10 5.00 6.00 7.00 8.00 -1 -1 -1 -1000 -1000 -1000 -10",
             label_line("Truck", (1, 2, 3, 4)),              # background
             label_line("Pedestrian", (200, 10, 215, 60)),   # positive, label 1
             label_line("Bus", (1, 1, 9, 9))]                # unknown type: skipped, counted
    objs = [parse_label_line(x) for x in lines]
    counts = Counter()
    boxes, labels, ignore = sort_labels(objs, s, counts)
    np.testing.assert_array_equal(boxes, [[10, 10, 60, 50], [200, 10, 215, 60]])
    np.testing.assert_array_equal(labels, [0, 1])
    np.testing.assert_array_equal(ignore, [[70, 10, 100, 25], [0, 0, 30, 30], [5, 6, 7, 8]])
    assert counts == Counter(positive=2, ignored=3, background=1, unknown_types=1)


def test_retinanet_ignored_anchors_leave_the_classification_loss():
    s = tiny_settings(classes=("Car", "Pedestrian"), aspect_ratios=(1.0,), anchor_scales=(1.0,))
    model = build_detector(s, encoder=TinyEncoder())
    anchors = _grid_anchors()
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1, len(anchors), 2, generator=g, dtype=torch.float32)
    head = {"cls_logits": logits, "bbox_regression": torch.zeros(1, len(anchors), 4)}
    # one object exactly on anchor 7 (IoU 1); an ignore region over the anchors of rows 3-4, cols 0-2
    target = {"boxes": anchors[7:8].clone(), "labels": torch.tensor([1]),
              "ignore_boxes": torch.tensor([[0.0, 30.0, 30.0, 50.0]])}
    got = float(model.compute_loss([target], head, [anchors])["classification"])

    centres = ((anchors[:, :2] + anchors[:, 2:]) / 2).numpy()
    ignored = (centres[:, 0] <= 30) & (centres[:, 1] >= 30) & (centres[:, 1] <= 50)
    assert ignored.sum() == 6 and not ignored[7]
    t = np.zeros((len(anchors), 2))
    t[7, 1] = 1.0
    expected = _focal_np(logits[0].double().numpy(), t)[~ignored].sum() / 1.0  # one foreground anchor
    assert got == pytest.approx(expected, rel=1e-5)
    without = dict(target, ignore_boxes=torch.zeros(0, 4))
    full = _focal_np(logits[0].double().numpy(), t).sum()
    assert float(model.compute_loss([without], head, [anchors])["classification"]) == pytest.approx(full, rel=1e-5)


def test_retinanet_anchor_matched_to_an_object_inside_an_ignore_region_stays_positive():
    s = tiny_settings(classes=("Car",), aspect_ratios=(1.0,), anchor_scales=(1.0,))
    model = build_detector(s, encoder=TinyEncoder())
    anchors = _grid_anchors()
    logits = torch.zeros(1, len(anchors), 1)
    head = {"cls_logits": logits, "bbox_regression": torch.zeros(1, len(anchors), 4)}
    target = {"boxes": anchors[0:1].clone(), "labels": torch.tensor([0]),
              "ignore_boxes": torch.tensor([[0.0, 0.0, 60.0, 60.0]])}  # covers every anchor
    got = float(model.compute_loss([target], head, [anchors])["classification"])
    assert got == pytest.approx(_focal_np(np.zeros(1), np.ones(1))[0], rel=1e-6)  # anchor 0 only


def test_fcos_ignored_points_have_no_loss_and_no_gradient():
    s = tiny_settings(classes=("Car",), architecture="fcos", head_convs=1)
    model = build_detector(s, encoder=TinyEncoder())
    anchors = _grid_anchors()
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(1, len(anchors), 1, generator=g).requires_grad_(True)
    head = {"cls_logits": logits, "bbox_regression": torch.zeros(1, len(anchors), 4),
            "bbox_ctrness": torch.zeros(1, len(anchors), 1)}
    ignore = torch.tensor([[20.0, 0.0, 60.0, 20.0]])  # rows 0-1, cols 2-5: 8 points
    target = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64), "ignore_boxes": ignore}
    loss = model.compute_loss([target], head, [anchors], [len(anchors)])["classification"]
    loss.backward()
    x = logits.detach()[0, :, 0].double().numpy()
    centres = ((anchors[:, :2] + anchors[:, 2:]) / 2).numpy()
    ignored = (centres[:, 0] >= 20) & (centres[:, 1] <= 20)
    assert ignored.sum() == 8
    expected = _focal_np(x[~ignored], np.zeros((~ignored).sum())).sum()  # no foreground: divided by 1
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    grad = logits.grad[0, :, 0].numpy()
    assert np.all(grad[ignored] == 0.0) and np.all(grad[~ignored] != 0.0)


@pytest.mark.parametrize("name, convs, channels, scale", [("paper", 4, 256, 1.0), ("cpu-small", 2, 64, 0.5)])
def test_presets_build_torchvision_fcos_and_detect(name, convs, channels, scale):
    from torchvision.models.detection import FCOS

    from detect2d.settings import preset

    s = preset(name).with_(encoder_weights="none")
    model = build_detector(s).eval()
    assert isinstance(model, FCOS) and s.image_scale == scale
    assert len(model.head.classification_head.conv) == 3 * convs  # conv, GroupNorm, ReLU per layer
    assert model.backbone.out_channels == channels
    with torch.no_grad():
        out = model([torch.rand(3, 64, 192)])[0]
    assert set(out) == {"boxes", "scores", "labels"} and out["boxes"].shape[1] == 4


def test_freeze_encoder_stride_keeps_the_stem_and_stride_4_blocks_fixed():
    from detect2d.settings import Detect2DSettings, preset

    s = preset("cpu-small").with_(encoder_weights="none", freeze_encoder_stride=4)
    model = build_detector(s)
    frozen = {k for k, p in model.named_parameters() if not p.requires_grad}
    # EfficientNet-Lite0: stem /2, blocks.0 /2, blocks.1 /4, blocks.2 /8
    assert frozen == {k for k, _ in model.named_parameters()
                      if k.startswith(tuple(f"backbone.encoder.{m}." for m in ("conv_stem", "bn1", "blocks.0", "blocks.1")))}
    assert not {k for k, p in build_detector(s.with_(freeze_encoder_stride=0)).named_parameters() if not p.requires_grad}
    with pytest.raises(ValueError, match="freeze_encoder_stride"):
        Detect2DSettings(freeze_encoder_stride=-1)
