"""The v1 network and its loss: shapes, masking, corner geometry, a tiny overfit."""

from __future__ import annotations

import math

import numpy as np
import torch

from detection.frustum_pointnet.loss import FPointNetTargets, box_corners, fpointnet_loss, huber
from detection.frustum_pointnet.model import NUM_OUTPUTS, FPointNetV1, gather_object_points
from kitti.boxes import box_corners_rect
import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny tensors: one thread is faster than two on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _inputs(b: int = 4, n: int = 64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    pts = torch.randn(b, n, 4, generator=g)
    pts[:, :, 2] += 20.0
    oh = torch.zeros(b, 3)
    oh[:, 0] = 1
    return pts, oh


def test_fpointnetv1_forward_shapes():
    net = FPointNetV1(width=0.125, num_object_points=32)
    out = net(*_inputs())
    assert NUM_OUTPUTS == 59
    assert out.seg_logits.shape == (4, 64, 2)
    assert out.center.shape == (4, 3) and out.stage1_center.shape == (4, 3)
    assert out.heading_scores.shape == (4, 12) and out.heading_residual.shape == (4, 12)
    assert out.size_scores.shape == (4, 8) and out.size_residual.shape == (4, 8, 3)
    torch.testing.assert_close(out.heading_residual, out.heading_residual_normalized * math.pi / 12)
    torch.testing.assert_close(out.size_residual, out.size_residual_normalized * net.mean_size_lwh[None])


def test_fpointnetv1_empty_mask_gives_finite_boxes():
    net = FPointNetV1(width=0.125, num_object_points=32).eval()
    with torch.no_grad():
        net.seg_out.bias.copy_(torch.tensor([1e4, -1e4]))  # every point background
        out = net(*_inputs())
    assert int(out.mask_count.sum()) == 0
    assert torch.isfinite(out.center).all() and torch.isfinite(out.size_residual).all()


def test_gather_object_points_takes_only_masked_points_cyclically():
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[0, [2, 5, 7]] = True
    idx = gather_object_points(torch.zeros(2, 10, 3), mask, 7, torch.Generator().manual_seed(0))
    assert set(idx[0].tolist()) == {2, 5, 7}
    assert idx[0, :3].tolist() == idx[0, 3:6].tolist()
    assert len(set(idx[1].tolist())) == 7  # empty row: all points used


def test_box_corners_matches_kitti_box_corners_rect():
    rng = np.random.default_rng(0)
    loc = rng.normal(size=(5, 3))
    hwl = rng.uniform(1, 4, size=(5, 3))
    ry = rng.uniform(-3, 3, size=5)
    expected = box_corners_rect(loc, hwl, ry)
    centre = loc.copy()
    centre[:, 1] -= hwl[:, 0] / 2
    got = box_corners(torch.tensor(centre), torch.tensor(ry), torch.tensor(hwl[:, [2, 1, 0]]))
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-9)


def test_huber_is_quadratic_then_linear():
    x = torch.tensor([0.5, 3.0])
    assert abs(float(huber(x, 1.0)) - (0.125 + 2.5) / 2) < 1e-6


def _targets(b: int = 4):
    seg = torch.zeros(b, 64, dtype=torch.int64)
    seg[:, :20] = 1
    return FPointNetTargets(seg, torch.tensor([[0.0, 1.0, 20.0]] * b), torch.tensor([1] * b),
                            torch.tensor([0.1] * b), torch.zeros(b, dtype=torch.int64),
                            torch.tensor([[0.2, -0.1, 0.05]] * b))


def test_fpointnet_loss_corner_term_vanishes_for_a_perfect_box():
    net = FPointNetV1(width=0.125, num_object_points=32)
    out = net(*_inputs())
    tgt = _targets()
    # overwrite predictions with the targets
    hres = out.heading_residual.detach().clone()
    hres[:, 1] = 0.1
    sres = out.size_residual.detach().clone()
    sres[:, 0] = tgt.size_residual
    perfect = out._replace(center=tgt.center, heading_residual=hres, size_residual=sres)
    terms = fpointnet_loss(perfect, tgt, net.mean_size_lwh)
    assert float(terms.corner) < 1e-10 and float(terms.center) < 1e-10
    flipped = out._replace(center=tgt.center, heading_residual=hres + math.pi, size_residual=sres)
    assert float(fpointnet_loss(flipped, tgt, net.mean_size_lwh).corner) < 1e-8


def test_fpointnet_loss_decreases_on_a_tiny_overfit():
    torch.manual_seed(0)
    net = FPointNetV1(width=0.125, num_object_points=32)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    pts, oh = _inputs()
    pts[:, :20, :3] = pts[:, :20, :3] * 0.3 + torch.tensor([0.0, 1.0, 20.0])
    tgt = _targets()
    first = None
    for _ in range(40):
        terms = fpointnet_loss(net(pts, oh, generator=torch.Generator().manual_seed(0)), tgt, net.mean_size_lwh)
        opt.zero_grad()
        terms.total.backward()
        opt.step()
        first = first if first is not None else float(terms.total.detach())
    assert float(terms.total.detach()) < 0.5 * first
    assert all(torch.isfinite(t) for t in terms)
