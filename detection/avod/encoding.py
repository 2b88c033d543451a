"""Box encodings of AVOD (torch, any float dtype; pure functions).

Layouts (rect camera frame, metres, radians):

* **box** ``(N, 7)`` = ``[x, y, z, h, w, l, ry]``: KITTI label order, ``(x, y, z)`` the bottom
  centre (camera y down), ``ry`` about camera y; at ``ry = 0`` the length runs along x.
* **anchor** ``(N, 6)`` = ``[x, y, z, dx, dy, dz]``: an axis-aligned box, ``(x, y, z)`` its bottom
  centre, ``dx`` / ``dz`` its extents along x / z and ``dy`` its height. A box becomes the anchor
  of its nearest axis alignment (:func:`boxes_to_anchors`).
* **anchor offsets** ``(N, 6)`` = ``[Δx/dx, Δy/dy, Δz/dz, log(dx'/dx), log(dy'/dy), log(dz'/dz)]``
  (``anchor_encoder.py``), the RPN's regression target.
* **box_4c** ``(N, 10)`` = ``[x1, x2, x3, x4, z1, z2, z3, z4, h1, h2]``: the four BEV corners and
  the heights of the bottom and top centre above the ground plane (``box_4c_encoder.py``). The
  corners are ordered from the box's rotation reduced to ``θ ∈ [-π/4, π/4)``: with
  ``e_x = (cos θ, -sin θ)``, ``e_z = (sin θ, cos θ)`` in (x, z) and half extents ``(a, b)`` along
  them, corner k is ``centre + s_x·a·e_x + s_z·b·e_z`` for ``(s_x, s_z)`` = (+,+), (+,-), (-,-),
  (-,+) — the corner order of :mod:`kitti.boxes` for an axis-aligned box. Second-stage
  targets are ``box_4c(ground truth) - box_4c(proposal)``.
* **orientation vector** ``(N, 2)`` = ``(cos ry, sin ry)``. The 4 corners fix a box's heading only
  up to a multiple of π/2; decoding takes the longer side as the length and picks, of its two
  directions, the one nearest the orientation vector.
"""

from __future__ import annotations

import math

import torch


def boxes_to_anchors(boxes: torch.Tensor) -> torch.Tensor:
    """(N, 7) boxes -> (N, 6) anchors of their nearest axis alignment (l along x when
    ``|cos ry| >= |sin ry|``, else along z)."""
    x, y, z, h, w, l, ry = boxes.unbind(-1)
    along_x = torch.cos(ry).abs() >= torch.sin(ry).abs()
    dx = torch.where(along_x, l, w)
    dz = torch.where(along_x, w, l)
    return torch.stack([x, y, z, dx, h, dz], dim=-1)


def anchors_to_boxes(anchors: torch.Tensor) -> torch.Tensor:
    """(N, 6) anchors -> (N, 7) boxes with ``ry = 0`` (length = ``dx``)."""
    x, y, z, dx, dy, dz = anchors.unbind(-1)
    return torch.stack([x, y, z, dy, dz, dx, torch.zeros_like(x)], dim=-1)


def anchors_to_bev_xyxy(anchors: torch.Tensor) -> torch.Tensor:
    """(N, 6) anchors -> (N, 4) BEV rectangles ``[x1, z1, x2, z2]`` (metres) for torchvision.ops."""
    x, _, z, dx, _, dz = anchors.unbind(-1)
    return torch.stack([x - dx / 2, z - dz / 2, x + dx / 2, z + dz / 2], dim=-1)


def anchor_offsets(anchors: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(N, 6) offsets that move ``anchors`` onto ``targets`` (both (N, 6) anchors)."""
    size = anchors[:, 3:6]
    return torch.cat([(targets[:, :3] - anchors[:, :3]) / size, torch.log(targets[:, 3:6] / size)], dim=1)


def apply_anchor_offsets(anchors: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`anchor_offsets`: (N, 6) anchors moved by (N, 6) offsets."""
    size = anchors[:, 3:6]
    return torch.cat([anchors[:, :3] + offsets[:, :3] * size, size * torch.exp(offsets[:, 3:6])], dim=1)


def _height(plane: torch.Tensor, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    return plane[0] * x + plane[1] * y + plane[2] * z + plane[3]


_SIGNS_X = (1.0, 1.0, -1.0, -1.0)
_SIGNS_Z = (1.0, -1.0, -1.0, 1.0)


def boxes_to_4c(boxes: torch.Tensor, plane: torch.Tensor) -> torch.Tensor:
    """(N, 7) boxes -> (N, 10) box_4c above a (4,) ground plane (unit normal pointing up)."""
    x, y, z, h, w, l, ry = boxes.unbind(-1)
    quarter = math.pi / 2
    theta = torch.remainder(ry + quarter / 2, quarter) - quarter / 2
    k = torch.remainder(torch.round((ry - theta) / quarter), 2)
    a = torch.where(k == 0, l, w) / 2
    b = torch.where(k == 0, w, l) / 2
    c, s = torch.cos(theta), torch.sin(theta)
    xs = [x + sx * a * c + sz * b * s for sx, sz in zip(_SIGNS_X, _SIGNS_Z)]
    zs = [z - sx * a * s + sz * b * c for sx, sz in zip(_SIGNS_X, _SIGNS_Z)]
    h1 = _height(plane, x, y, z)
    h2 = _height(plane, x, y - h, z)
    return torch.stack(xs + zs + [h1, h2], dim=-1)


def box_4c_to_boxes(box_4c: torch.Tensor, plane: torch.Tensor, orientation: torch.Tensor) -> torch.Tensor:
    """(N, 10) box_4c + (N, 2) orientation vectors -> (N, 7) boxes (see the module docstring).

    Four predicted corners need not form a rectangle: the centre is their mean, the sides the
    means of the two opposite side vectors, θ the mean of both sides' directions.
    """
    cx, cz = box_4c[:, 0:4], box_4c[:, 4:8]
    h1, h2 = box_4c[:, 8], box_4c[:, 9]
    x, z = cx.mean(dim=1), cz.mean(dim=1)
    vx = torch.stack([(cx[:, 0] - cx[:, 3] + cx[:, 1] - cx[:, 2]) / 2,
                      (cz[:, 0] - cz[:, 3] + cz[:, 1] - cz[:, 2]) / 2], dim=1)
    vz = torch.stack([(cx[:, 0] - cx[:, 1] + cx[:, 3] - cx[:, 2]) / 2,
                      (cz[:, 0] - cz[:, 1] + cz[:, 3] - cz[:, 2]) / 2], dim=1)
    nx = vx.norm(dim=1).clamp(min=1e-9)
    nz = vz.norm(dim=1).clamp(min=1e-9)
    theta = torch.atan2(-vx[:, 1] / nx + vz[:, 0] / nz, vx[:, 0] / nx + vz[:, 1] / nz)
    long_x = nx >= nz
    length = torch.where(long_x, nx, nz)
    width = torch.where(long_x, nz, nx)
    base = torch.where(long_x, theta, theta + math.pi / 2)
    wanted = torch.atan2(orientation[:, 1], orientation[:, 0])
    turn = torch.remainder(wanted - base + math.pi / 2, 2 * math.pi) >= math.pi  # nearer base + π
    ry = torch.where(turn, base + math.pi, base)
    ry = torch.remainder(ry + math.pi, 2 * math.pi) - math.pi
    b = plane[1]
    y = (h1 - plane[0] * x - plane[2] * z - plane[3]) / b
    height = (h2 - h1) / (-b)
    return torch.stack([x, y, z, height, width, length, ry], dim=-1)


def orientation_vector(ry: torch.Tensor) -> torch.Tensor:
    """(N,) rotations -> (N, 2) ``(cos ry, sin ry)``."""
    return torch.stack([torch.cos(ry), torch.sin(ry)], dim=-1)


def anchors_to_image_boxes(anchors: torch.Tensor, P2: torch.Tensor, image_wh: tuple[float, float],
                           scale_uv: tuple[float, float], *, flipped: bool = False) -> torch.Tensor:
    """(N, 6) anchors -> (N, 4) image boxes ``[u1, v1, u2, v2]``: the 2D bounding box of the eight
    projected corners, clipped to the image and scaled by ``scale_uv`` (to the resized image).

    Args:
        anchors: (N, 6) anchors (rect frame).
        P2: (3, 4) projection of camera 2.
        image_wh: (W, H) of the original image (pixels).
        scale_uv: (sx, sy) from original to resized image pixels.
        flipped: the frame is mirrored (x -> -x); corners are projected unmirrored and u -> W - u.

    Corners are clamped to at least 0.1 m in front of the camera before the division.
    """
    x, y, z, dx, dy, dz = anchors.unbind(-1)
    if flipped:
        x = -x
    sx = torch.tensor([0.5, 0.5, -0.5, -0.5, 0.5, 0.5, -0.5, -0.5], dtype=anchors.dtype, device=anchors.device)
    sy = torch.tensor([0.0, 0.0, 0.0, 0.0, -1.0, -1.0, -1.0, -1.0], dtype=anchors.dtype, device=anchors.device)
    sz = torch.tensor([0.5, -0.5, -0.5, 0.5, 0.5, -0.5, -0.5, 0.5], dtype=anchors.dtype, device=anchors.device)
    cx = x[:, None] + dx[:, None] * sx
    cy = y[:, None] + dy[:, None] * sy
    cz = z[:, None] + dz[:, None] * sz
    P = P2.to(anchors.dtype)
    u = P[0, 0] * cx + P[0, 1] * cy + P[0, 2] * cz + P[0, 3]
    v = P[1, 0] * cx + P[1, 1] * cy + P[1, 2] * cz + P[1, 3]
    w = (P[2, 0] * cx + P[2, 1] * cy + P[2, 2] * cz + P[2, 3]).clamp(min=0.1)
    u, v = u / w, v / w
    W, H = image_wh
    u1, u2 = u.min(dim=1).values.clamp(0, W), u.max(dim=1).values.clamp(0, W)
    v1, v2 = v.min(dim=1).values.clamp(0, H), v.max(dim=1).values.clamp(0, H)
    if flipped:
        u1, u2 = W - u2, W - u1
    return torch.stack([u1 * scale_uv[0], v1 * scale_uv[1], u2 * scale_uv[0], v2 * scale_uv[1]], dim=-1)
