"""The measured steps of ``make gpu-check`` (:mod:`pipeline.gpu_check`): a few optimiser steps or
inference batches of a ``paper`` network on synthetic inputs of the paper's shapes, on any device.

The same functions run one step on the CPU in tests/pipeline/test_paper_presets.py; a detector's
check is named by its registry entry (``pipeline.detectors.Detector.gpu_check``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from engine.amp import amp_for

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mib(device: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _run_steps(loss_fn, opt: torch.optim.Optimizer, scaler, steps: int, device: torch.device
               ) -> tuple[list[float], float]:
    """``steps`` optimiser steps of ``loss_fn()`` (AMP through ``scaler``): (losses, seconds of the
    steps after the first — the warm-up; of the only step when there is one)."""
    losses, t0 = [], time.time()
    for i in range(steps):
        loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(round(float(loss.detach()), 5))
        if i == 0 and steps > 1:
            _sync(device)
            t0 = time.time()
    _sync(device)
    return losses, max(time.time() - t0, 1e-9)


def depth_train_steps(settings, device: torch.device, *, steps: int, batch: int | None = None,
                      crop_hw: tuple[int, int] | None = None, amp: bool = True) -> dict[str, Any]:
    """``steps`` optimiser steps of the depth network of ``settings`` on random images and bins.

    Returns losses (one per step), images_per_s (after the first step, or over all when one),
    peak_gpu_mib, parameters.
    """
    from depth.bins import IGNORE_BIN
    from depth.loss import soft_target_matrix, variant_loss
    from depth.model import DepthNet
    from depth.train import _make_optimizer

    torch.manual_seed(settings.seed)
    batch = batch or settings.batch_size
    h, w = crop_hw or settings.crop_hw
    model = DepthNet(settings).to(device).train()
    opt = _make_optimizer(model, settings)
    mixed = amp_for(device, cuda=amp)  # what depth.train uses on this device (settings.amp)
    use_amp, scaler = mixed.enabled, mixed.scaler()
    soft = soft_target_matrix(settings.n_bins, settings.soft_label_coeff, device)
    gen = torch.Generator().manual_seed(settings.seed)
    image = torch.randn(batch, 3, h, w, generator=gen).to(device)
    target = torch.randint(0, settings.n_bins, (batch, h, w), generator=gen)
    target[:, : h // 8] = IGNORE_BIN  # rows without ground truth, as at the top of KITTI frames
    target = target.to(device)
    fg = torch.zeros(batch, h, w, dtype=torch.bool)
    fg[:, h // 2:, w // 3: 2 * w // 3] = True
    fg = fg.to(device)
    _reset_peak(device)

    def loss_fn():
        with mixed.autocast():
            logits = model(image)
        return variant_loss(logits, target, fg, settings, soft).total

    losses, seconds = _run_steps(loss_fn, opt, scaler, steps, device)
    timed = steps - 1 if steps > 1 else 1
    return {"losses": losses, "images_per_s": round(batch * timed / seconds, 2),
            "batch": batch, "crop_hw": [h, w], "amp": str(mixed.dtype).split(".")[-1] if use_amp else False,
            "peak_gpu_mib": _peak_mib(device),
            "parameters": sum(p.numel() for p in model.parameters())}


def _frustum_batch(settings, batch: int, gen: np.random.Generator, device: torch.device):
    from detection.frustum_pointnet.codec import NUM_HEADING_BIN, NUM_SIZE_TEMPLATE
    from detection.frustum_pointnet.loss import FPointNetTargets

    n = settings.num_points
    pts = np.concatenate([gen.normal([0, 1, 20], [2, 1, 5], (batch, n, 3)), gen.uniform(0, 1, (batch, n, 1))], 2)
    onehot = np.eye(3)[gen.integers(0, 3, batch)]

    def t(a, dtype=torch.float32):
        return torch.as_tensor(a, dtype=dtype).to(device)

    targets = FPointNetTargets(t(gen.integers(0, 2, (batch, n)), torch.int64), t(gen.normal([0, 1, 20], 1, (batch, 3))),
                               t(gen.integers(0, NUM_HEADING_BIN, batch), torch.int64),
                               t(gen.uniform(-0.2, 0.2, batch)),
                               t(gen.integers(0, NUM_SIZE_TEMPLATE, batch), torch.int64),
                               t(gen.normal(0, 0.1, (batch, 3))))
    return t(pts), t(onehot), targets


def fpointnet_train_steps(settings, device: torch.device, *, steps: int, batch: int | None = None,
                          amp: bool = True) -> dict[str, Any]:
    """``steps`` Adam steps of F-PointNet v1 of ``settings`` on random frustums (losses, frustums/s, memory)."""
    from detection.frustum_pointnet.infer import build_model
    from detection.frustum_pointnet.loss import fpointnet_loss

    torch.manual_seed(settings.seed)
    batch = batch or settings.batch_size
    model = build_model(settings).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    mixed = amp_for(device, cuda=amp)  # what detection.frustum_pointnet.train uses on this device
    use_amp, scaler = mixed.enabled, mixed.scaler()
    pts, oh, tgt = _frustum_batch(settings, batch, np.random.default_rng(settings.seed), device)
    gen = torch.Generator(device=device).manual_seed(settings.seed)
    _reset_peak(device)

    def loss_fn():
        with mixed.autocast():
            out = model(pts, oh, generator=gen)
        out = type(out)(*(x.float() if x.is_floating_point() else x for x in out))
        return fpointnet_loss(out, tgt, model.mean_size_lwh, box_loss_weight=settings.box_loss_weight,
                              corner_loss_weight=settings.corner_loss_weight).total

    losses, seconds = _run_steps(loss_fn, opt, scaler, steps, device)
    timed = steps - 1 if steps > 1 else 1
    return {"losses": losses, "frustums_per_s": round(batch * timed / seconds, 1),
            "batch": batch, "amp": str(mixed.dtype).split(".")[-1] if use_amp else False,
            "peak_gpu_mib": _peak_mib(device),
            "parameters": sum(p.numel() for p in model.parameters())}


def fpointnet_inference(settings, device: torch.device, *, batches: int, batch: int = 32) -> dict[str, Any]:
    """Frustums/s of the network in eval mode (random weights, random frustums; the per-frame
    frustum extraction on the CPU is not included)."""
    from detection.frustum_pointnet.infer import build_model

    torch.manual_seed(settings.seed)
    model = build_model(settings).to(device).eval()
    pts, oh, _ = _frustum_batch(settings, batch, np.random.default_rng(settings.seed), device)
    gen = torch.Generator(device=device).manual_seed(settings.seed)
    with torch.no_grad():
        model(pts, oh, generator=gen)
        _sync(device)
        _reset_peak(device)
        t0 = time.time()
        for _ in range(batches):
            model(pts, oh, generator=gen)
        _sync(device)
    return {"frustums_per_s": round(batch * batches / max(time.time() - t0, 1e-9), 1), "batch": batch,
            "peak_gpu_mib": _peak_mib(device)}
