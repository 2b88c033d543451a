"""depth.loss: soft-label cross-entropy, region means and the variants' weighting."""

from __future__ import annotations

import pytest
import torch

from depth.bins import IGNORE_BIN
from depth.loss import region_mean, soft_ce_per_pixel, soft_target_matrix, variant_loss
from depth_fixtures import tiny_settings

C = 100


def test_soft_target_matrix_rows_are_gaussian_distributions():
    q = soft_target_matrix(C, 0.2)
    assert torch.allclose(q.sum(dim=1), torch.ones(C))
    assert torch.equal(q.argmax(dim=1), torch.arange(C))
    assert q[50, 51] / q[50, 50] == pytest.approx(torch.exp(torch.tensor(-0.2)).item(), rel=1e-5)


def test_soft_ce_per_pixel_ignores_pixels_without_ground_truth():
    torch.manual_seed(0)
    logits = torch.randn(1, C, 2, 3)
    target = torch.tensor([[[5, IGNORE_BIN, 7], [9, 9, IGNORE_BIN]]])
    q = soft_target_matrix(C, 0.2)
    base = soft_ce_per_pixel(logits, target, q)
    changed = logits.clone()
    changed[0, :, 0, 1] += torch.randn(C) * 10
    assert torch.equal(soft_ce_per_pixel(changed, target, q), base)
    assert base[0, 0, 1] == 0 and base[0, 1, 2] == 0 and (base[target != IGNORE_BIN] > 0).all()


def test_soft_ce_per_pixel_is_minimal_at_the_soft_target():
    q = soft_target_matrix(C, 0.2)
    target = torch.tensor([[[30]]])
    best = soft_ce_per_pixel(torch.log(q[30].clamp_min(1e-20)).reshape(1, C, 1, 1), target, q)
    other = soft_ce_per_pixel(torch.log(q[33].clamp_min(1e-20)).reshape(1, C, 1, 1), target, q)
    assert best.item() < other.item()


def test_region_mean_of_empty_region_is_zero():
    loss = torch.ones(1, 2, 2)
    assert region_mean(loss, torch.zeros(1, 2, 2, dtype=torch.bool)).item() == 0.0
    assert region_mean(loss * 3, torch.ones(1, 2, 2, dtype=torch.bool)).item() == 3.0


def _inputs():
    torch.manual_seed(1)
    logits = (torch.randn(2, C, 4, 4), torch.randn(2, C, 4, 4))
    target = torch.randint(0, C, (2, 4, 4))
    target[0, 0] = IGNORE_BIN
    fg = torch.zeros(2, 4, 4, dtype=torch.bool)
    fg[:, 1:3, 1:3] = True
    return logits, target, fg, soft_target_matrix(C, 0.2)


def test_variant_loss_foresee_weights_own_and_other_regions():
    logits, target, fg, q = _inputs()
    valid = target != IGNORE_BIN
    e = [[region_mean(soft_ce_per_pixel(lg, target, q), r) for r in (valid & fg, valid & ~fg)] for lg in logits]
    got = variant_loss(logits, target, fg, tiny_settings("foresee", own_weight=0.8, other_weight=0.2), q)
    want = 0.8 * e[0][0] + 0.2 * e[0][1] + 0.8 * e[1][1] + 0.2 * e[1][0]
    assert got.total.item() == pytest.approx(want.item(), rel=1e-6)
    sd = variant_loss(logits, target, fg, tiny_settings("so-sd"), q)
    assert sd.total.item() == pytest.approx((e[0][0] + e[1][1]).item(), rel=1e-6)


def test_variant_loss_so_and_baseline_use_one_decoder():
    logits, target, fg, q = _inputs()
    valid = target != IGNORE_BIN
    per = soft_ce_per_pixel(logits[0], target, q)
    so = variant_loss(logits[:1], target, fg, tiny_settings("so", so_lambda=0.7), q)
    want = 0.7 * region_mean(per, valid & fg) + 0.3 * region_mean(per, valid & ~fg)
    assert so.total.item() == pytest.approx(want.item(), rel=1e-6)
    base = variant_loss(logits[:1], target, fg, tiny_settings("baseline"), q)
    assert base.total.item() == pytest.approx(region_mean(per, valid).item(), rel=1e-6)
    with pytest.raises(ValueError, match="needs 2 decoder"):
        variant_loss(logits[:1], target, fg, tiny_settings("foresee"), q)


def test_variant_loss_decreases_on_tiny_overfit():
    torch.manual_seed(0)
    q = soft_target_matrix(C, 0.2)
    target = torch.randint(0, C, (1, 4, 4))
    fg = torch.rand(1, 4, 4) > 0.5
    params = [torch.zeros(1, C, 4, 4, requires_grad=True), torch.zeros(1, C, 4, 4, requires_grad=True)]
    opt = torch.optim.Adam(params, lr=0.1)
    settings = tiny_settings("foresee")
    losses = []
    for _ in range(30):
        terms = variant_loss(tuple(params), target, fg, settings, q)
        opt.zero_grad()
        terms.total.backward()
        opt.step()
        losses.append(terms.total.item())
    assert losses[-1] < 0.7 * losses[0]


def test_soft_ce_per_pixel_equals_full_soft_cross_entropy():
    torch.manual_seed(3)
    q = soft_target_matrix(C, 0.2)
    logits = torch.randn(2, C, 3, 5) * 4
    target = torch.randint(0, C, (2, 3, 5))
    target[0, 0, :3] = torch.tensor([0, 1, C - 1])            # rows cut by the ends of the range
    full = -(q[target].permute(0, 3, 1, 2) * torch.log_softmax(logits, dim=1)).sum(dim=1)
    torch.testing.assert_close(soft_ce_per_pixel(logits, target, q), full, rtol=1e-5, atol=1e-5)
