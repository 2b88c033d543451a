"""The heading residual means the same thing to the loss, the network and inference.

A heading is encoded as training does (``angle_to_class``: bin, residual in radians); the
normalised residual the loss trains towards is read off the loss itself (the network output that
minimises its heading-residual term, found by bisection on the term's gradient, whatever the
loss's form); that value is put into the network as its raw output (the last layer's bias), and
the box that ``model.forward`` + ``infer.decode`` make of it must carry the original heading.
A loss that divides the residual by another angle than the network multiplies it with (or an
encoding / decoding mismatch) breaks the round trip.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from detection.frustum_pointnet.codec import NUM_HEADING_BIN, NUM_SIZE_TEMPLATE, angle_to_class
from detection.frustum_pointnet.infer import decode
from detection.frustum_pointnet.loss import FPointNetTargets, fpointnet_loss
from detection.frustum_pointnet.model import FPointNetOutput, FPointNetV1


def _loss_target_normalised(hcls: np.ndarray, hres: np.ndarray) -> np.ndarray:
    """The normalised heading residual (one per row) at which the loss's heading-residual term is
    minimal: bisection on the sign of its gradient, the term being convex in the prediction."""
    b = len(hcls)
    tgt = FPointNetTargets(torch.zeros(b, 4, dtype=torch.int64), torch.zeros(b, 3, dtype=torch.float64),
                           torch.as_tensor(hcls), torch.as_tensor(hres, dtype=torch.float64),
                           torch.zeros(b, dtype=torch.int64), torch.zeros(b, 3, dtype=torch.float64))
    lo, hi = torch.full((b,), -8.0, dtype=torch.float64), torch.full((b,), 8.0, dtype=torch.float64)
    rows = torch.arange(b)
    for _ in range(60):  # 16 / 2^60: the exact double
        mid = (lo + hi) / 2
        hres_n = torch.zeros(b, NUM_HEADING_BIN, dtype=torch.float64)
        hres_n[rows, tgt.heading_class] = mid
        hres_n.requires_grad_(True)
        out = FPointNetOutput(
            seg_logits=torch.zeros(b, 4, 2, dtype=torch.float64), stage1_center=torch.zeros(b, 3, dtype=torch.float64),
            center=torch.zeros(b, 3, dtype=torch.float64),
            heading_scores=torch.zeros(b, NUM_HEADING_BIN, dtype=torch.float64), heading_residual_normalized=hres_n,
            heading_residual=torch.zeros(b, NUM_HEADING_BIN, dtype=torch.float64),
            size_scores=torch.zeros(b, NUM_SIZE_TEMPLATE, dtype=torch.float64),
            size_residual_normalized=torch.zeros(b, NUM_SIZE_TEMPLATE, 3, dtype=torch.float64),
            size_residual=torch.zeros(b, NUM_SIZE_TEMPLATE, 3, dtype=torch.float64),
            mask_count=torch.full((b,), 4))
        mean_size = torch.ones(NUM_SIZE_TEMPLATE, 3, dtype=torch.float64)
        fpointnet_loss(out, tgt, mean_size).heading_residual.backward()
        grad = hres_n.grad[rows, tgt.heading_class]
        above = grad > 0  # past the minimum
        hi = torch.where(above, mid, hi)
        lo = torch.where(above, lo, mid)
    return ((lo + hi) / 2).numpy()


@lru_cache(maxsize=1)
def _net() -> FPointNetV1:
    torch.manual_seed(0)
    return FPointNetV1(width=0.125, num_object_points=8).eval()


def _decoded_headings(hcls: np.ndarray, hres_n: np.ndarray) -> np.ndarray:
    """Headings that model.forward + infer.decode give when the box head outputs bin ``hcls``
    (a clear winner) with normalised residual ``hres_n`` (frustum rotation 0)."""
    b = len(hcls)
    net = _net()
    out_dim = net.box_out.bias.shape[0]
    outs = []
    for k in range(b):  # one bias per row: each row is its own forward pass
        bias = torch.zeros(out_dim)
        bias[3 + int(hcls[k])] = 20.0  # heading scores: bin hcls wins
        bias[3 + NUM_HEADING_BIN + int(hcls[k])] = float(hres_n[k])
        bias[3 + 2 * NUM_HEADING_BIN] = 20.0  # size template 0
        with torch.no_grad():
            net.box_out.weight.zero_()
            net.box_out.bias.copy_(bias)
            pts = torch.randn(1, 16, 4, generator=torch.Generator().manual_seed(k))
            pts[:, :, 2] += 20.0
            outs.append(net(pts, torch.tensor([[1.0, 0.0, 0.0]]), generator=torch.Generator().manual_seed(k)))
    return np.array([decode(o, np.zeros(1))[0].ry for o in outs])


def _angle_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(np.mod(a - b + math.pi, 2 * math.pi) - math.pi)


@settings(max_examples=10, deadline=None)
@given(st.lists(st.floats(-math.pi, math.pi, allow_nan=False), min_size=1, max_size=8))
def test_heading_encoded_for_the_loss_decodes_to_itself(angles):
    ry = np.asarray(angles, dtype=np.float64)
    hcls, hres = angle_to_class(ry)
    target_n = _loss_target_normalised(hcls, hres)
    got = _decoded_headings(hcls, target_n)
    np.testing.assert_array_less(_angle_diff(got, ry), 2e-5)  # float32 network


def test_heading_round_trip_on_a_grid_across_every_bin():
    """Every bin, residuals from -14.5° to +14.5°: the worst case of a wrong divisor is large."""
    ry = np.array([k * 2 * math.pi / NUM_HEADING_BIN + math.radians(r) for k in range(NUM_HEADING_BIN)
                   for r in (-14.5, -7.0, 3.0, 14.5)])
    ry = np.mod(ry + math.pi, 2 * math.pi) - math.pi
    hcls, hres = angle_to_class(ry)
    got = _decoded_headings(hcls, _loss_target_normalised(hcls, hres))
    np.testing.assert_array_less(_angle_diff(got, ry), 2e-5)
