"""``make gpu-check`` / ``python -m pipeline.gpu_check``: the ``paper`` networks on one CUDA device.

On a CUDA machine it runs, on synthetic inputs of the paper's shapes (no data, no download; the
depth encoder starts from random weights):

* a few training steps of the ``paper`` depth network (ForeSeE variant, its batch and crop, AMP on,
  the preset's optimiser) and of the ``paper`` F-PointNet v1 (batch 32, 1024 points, AMP on);
* depth inference at the full KITTI resolution (375x1242, :func:`depth.infer.benchmark_inference`);
* F-PointNet inference on batches of frustums;

and prints images/s, frustums/s, the peak GPU memory of each part and the first steps' losses.
With no CUDA device it says so and exits 0. The same step functions run one step on the CPU in
tests/pipeline/test_paper_presets.py, so that a ``paper`` network cannot break unseen.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, Sequence

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


def run_check(steps: int = 5) -> dict[str, Any]:
    """Every measurement on ``cuda:0`` (see the module doc)."""
    from depth.infer import benchmark_inference
    from depth.settings import preset as depth_preset
    from detection.frustum_pointnet.settings import preset as fpn_preset

    device = torch.device("cuda", 0)
    torch.backends.cudnn.benchmark = True
    depth = depth_preset("paper", "foresee")
    fpn = fpn_preset("paper")
    out: dict[str, Any] = {"device": torch.cuda.get_device_name(device), "torch": torch.__version__,
                           "steps": steps}
    out["depth_train_paper"] = depth_train_steps(depth, device, steps=steps)
    _reset_peak(device)
    inf = benchmark_inference(depth, image_hw=(375, 1242), n_images=10)
    out["depth_infer_paper_full_res"] = {k: inf[k] for k in ("images_per_s", "image_hw", "cuda_peak_mib")}
    out["fpointnet_train_paper"] = fpointnet_train_steps(fpn, device, steps=steps)
    out["fpointnet_infer_paper"] = fpointnet_inference(fpn, device, batches=20)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=5, help="Training steps per network.")
    p.add_argument("--json", action="store_true", help="Print one JSON object instead of lines.")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print(f"gpu-check: no CUDA device visible to torch {torch.__version__}; nothing measured "
              "(the paper presets' figures stay 'not measured')")
        return 0
    res = run_check(args.steps)
    if args.json:
        print(json.dumps(res))
        return 0
    d, di, f, fi = (res["depth_train_paper"], res["depth_infer_paper_full_res"], res["fpointnet_train_paper"],
                    res["fpointnet_infer_paper"])
    print(f"gpu-check on {res['device']} (torch {res['torch']})")
    print(f"depth paper train   : {d['images_per_s']} images/s, batch {d['batch']} crop {d['crop_hw']}, AMP "
          f"{d['amp']}, peak {d['peak_gpu_mib']} MiB, losses {d['losses']}")
    print(f"depth paper infer   : {di['images_per_s']} images/s at {di['image_hw']}, peak {di['cuda_peak_mib']} MiB")
    print(f"F-PointNet train    : {f['frustums_per_s']} frustums/s, batch {f['batch']}, AMP {f['amp']}, peak "
          f"{f['peak_gpu_mib']} MiB, losses {f['losses']}")
    print(f"F-PointNet infer    : {fi['frustums_per_s']} frustums/s (batch {fi['batch']}), peak "
          f"{fi['peak_gpu_mib']} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
