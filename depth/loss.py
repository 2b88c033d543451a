"""Soft-label cross-entropy over depth bins, per region, and the variants' total losses.

For a pixel whose ground truth falls in bin j the target is the distribution
``q_i ∝ exp(−coeff·(i − j)²)`` over bins i (normalised to sum 1; VNL's "weighted CE" uses the
same shape unnormalised, which only scales the loss by ≈ 4). Pixels with bin ``IGNORE_BIN`` (no
ground truth) are ignored; a region term is the mean over that region's pixels with ground truth
(0 when the batch has none).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from depth.bins import IGNORE_BIN
from depth.settings import DepthSettings


def soft_target_matrix(n_bins: int, coeff: float, device: torch.device | None = None) -> torch.Tensor:
    """(C, C) float32: row j is the soft target for ground-truth bin j (rows sum to 1)."""
    i = torch.arange(n_bins, dtype=torch.float64)
    q = torch.exp(-coeff * (i[None, :] - i[:, None]) ** 2)
    return (q / q.sum(dim=1, keepdim=True)).to(torch.float32).to(device)


def soft_ce_per_pixel(logits: torch.Tensor, target_bin: torch.Tensor, soft_targets: torch.Tensor) -> torch.Tensor:
    """Per-pixel soft-label cross-entropy.

    Args:
        logits: (B, C, H, W).
        target_bin: (B, H, W) int64 bin indices, ``IGNORE_BIN`` where there is no ground truth.
        soft_targets: (C, C) from :func:`soft_target_matrix`.

    Returns:
        (B, H, W) float32 loss, 0 at ignored pixels.
    """
    if logits.shape[0] != target_bin.shape[0] or logits.shape[2:] != target_bin.shape[1:]:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target_bin.shape)} disagree")
    # -sum_i q_ji log p_i = logsumexp(z) - sum_i q_ji z_i, because each row of Q sums to 1; the
    # rows are Gaussian, so only the band |i - j| <= half (weights > 1e-12 of the peak) is summed.
    b, c, h, w = logits.shape
    z = logits.float().reshape(b, c, h * w)
    valid = target_bin != IGNORE_BIN
    j = target_bin.clamp(min=0).reshape(b, 1, h * w)
    mid = soft_targets[c // 2]
    half = int((mid > 1e-12 * mid.max()).nonzero().max().item()) - c // 2
    idx = j + torch.arange(-half, half + 1, device=logits.device).view(1, -1, 1)     # (B, K, HW)
    idx_c = idx.clamp(0, c - 1)
    weights = soft_targets[j.expand_as(idx_c), idx_c] * ((idx >= 0) & (idx < c))
    smoothed = (z.gather(1, idx_c) * weights).sum(dim=1)
    loss = (torch.logsumexp(z, dim=1) - smoothed).reshape(b, h, w)
    return torch.where(valid, loss, torch.zeros_like(loss))


def region_mean(loss: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Mean of ``loss`` over the True pixels of ``region`` (0 when there are none)."""
    n = region.sum()
    return (loss * region).sum() / n.clamp(min=1)


@dataclass(frozen=True)
class LossTerms:
    """The total loss and its parts (detached floats for the log)."""

    total: torch.Tensor
    parts: dict[str, float]


def variant_loss(logits: tuple[torch.Tensor, ...], target_bin: torch.Tensor, fg_mask: torch.Tensor,
                 settings: DepthSettings, soft_targets: torch.Tensor) -> LossTerms:
    """The training loss of ``settings.variant``.

    * baseline: mean over all pixels with ground truth.
    * so: ``so_lambda·E_fg + (1 − so_lambda)·E_bg``.
    * so-sd: fg decoder ``E_fg``, bg decoder ``E'_bg`` (each its own region only), summed.
    * foresee, foresee-obj: fg decoder ``own·E_fg + other·E_bg``, bg decoder ``own·E'_bg + other·E'_fg``,
      summed (they differ in ``fg_mask`` only).

    Args:
        logits: one (B, C, H, W) tensor per decoder (fg decoder first).
        target_bin: (B, H, W) int64 with ``IGNORE_BIN`` for no ground truth.
        fg_mask: (B, H, W) bool, True on the training foreground (boxes, or object surfaces).
    """
    if len(logits) != settings.n_decoders:
        raise ValueError(f"variant {settings.variant} needs {settings.n_decoders} decoder output(s), "
                         f"got {len(logits)}")
    valid = target_bin != IGNORE_BIN
    fg = valid & fg_mask
    bg = valid & ~fg_mask
    per_pixel = [soft_ce_per_pixel(lg, target_bin, soft_targets) for lg in logits]
    if settings.variant == "baseline":
        total = region_mean(per_pixel[0], valid)
        return LossTerms(total, {"all": float(total.detach())})
    if settings.variant == "so":
        e_fg, e_bg = region_mean(per_pixel[0], fg), region_mean(per_pixel[0], bg)
        total = settings.so_lambda * e_fg + (1.0 - settings.so_lambda) * e_bg
        return LossTerms(total, {"fg": float(e_fg.detach()), "bg": float(e_bg.detach())})
    own, other = (1.0, 0.0) if settings.variant == "so-sd" else (settings.own_weight, settings.other_weight)
    e_fg, e_bg_of_fg = region_mean(per_pixel[0], fg), region_mean(per_pixel[0], bg)
    e_bg, e_fg_of_bg = region_mean(per_pixel[1], bg), region_mean(per_pixel[1], fg)
    total = own * e_fg + other * e_bg_of_fg + own * e_bg + other * e_fg_of_bg
    return LossTerms(total, {"fg": float(e_fg.detach()), "bg": float(e_bg.detach()),
                             "fg_dec_bg": float(e_bg_of_fg.detach()), "bg_dec_fg": float(e_fg_of_bg.detach())})
