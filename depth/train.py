"""Training of the depth variants (baseline, so, so-sd, foresee).

Reproduce the cpu-small measurement (docs/depth.md)::

    foresee depth train --data data/embedded --variant foresee --preset cpu-small

Multi-GPU (paper preset): ``torchrun --nproc_per_node=N -m depth.train --data ROOT --out DIR``
runs one process per GPU with DistributedDataParallel (docs/scaling.md): ``batch_size`` is the
global batch (each of the N ranks loads ``batch_size / N`` images of a DistributedSampler's share,
so the settings, and the cache key, do not depend on N); batch norms become SyncBatchNorm on CUDA;
rank 0 writes the checkpoint and the log, and every rank resumes from it.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from depth.data import DepthTrainSet
from depth.loss import soft_target_matrix, variant_loss
from depth.model import (CheckpointMismatchError, DepthNet, bins_of, check_compatible, checkpoint_bytes,
                         count_parameters, load_encoder_weights, read_checkpoint)
from depth.settings import DepthSettings
from kitti.dist import close_distributed, init_distributed
from kitti.errors import KittiFormatError
from kitti.fileio import atomic_write_bytes, atomic_write_text

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "train_log.csv"
_LOG_FIELDS = ("step", "epoch", "lr", "loss", "fg", "bg", "seconds")


class TrainingError(RuntimeError):
    """Training cannot go on (NaN loss, …); the message names the step."""


def _collate(items: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.stack([it[k] for it in items])) for k in items[0]}


def poly_lr(base_lr: float, step: int, total_steps: int, power: float) -> float:
    """Poly decay ``base_lr · (1 − step / total_steps)^power``."""
    return base_lr * max(0.0, 1.0 - step / max(total_steps, 1)) ** power


def _make_optimizer(model: torch.nn.Module, settings: DepthSettings) -> torch.optim.Optimizer:
    if settings.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum,
                               weight_decay=settings.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)


def train_depth(data_root: Path, frame_ids: Sequence[str], settings: DepthSettings, out_dir: Path, *,
                progress: bool = True, resume: Path | None = None) -> dict[str, Any]:
    """Train one depth variant and write ``out_dir/checkpoint.pt`` and ``out_dir/train_log.csv``.

    Args:
        data_root: KITTI-format root with image_2, calib, label_2 and depth_2 (ground truth).
        frame_ids: the training frames.
        settings: the run's settings (variant, preset values, seed).
        out_dir: where the checkpoint (weights + settings + bins) and the log go; the checkpoint
            is rewritten every epoch (or ``checkpoint_every`` steps) so that a run can resume.
        progress: show a tqdm bar with the loss.
        resume: a checkpoint of the same settings to continue from (its step and optimiser state).

    Returns:
        ``{"steps", "epochs", "final_loss", "seconds", "device", "parameters", "encoder_weights",
        "frames", "world_size", "effective_batch", "batch_per_rank"}``.

    Raises:
        CheckpointMismatchError: ``resume`` is a checkpoint of another variant or bin setting.
        TrainingError: the loss became NaN/inf (the message names the step).
        ValueError: under torchrun, ``batch_size`` is not a multiple of the world size.
    """
    from tqdm import tqdm

    t0 = time.time()
    out_dir = Path(out_dir)
    ctx = init_distributed(use_cuda=torch.cuda.is_available())
    rank, local_rank, world = ctx.rank, ctx.local_rank, ctx.world
    if settings.batch_size % world:
        close_distributed(ctx)
        raise ValueError(f"batch_size {settings.batch_size} (the global batch) is not a multiple of the "
                         f"{world} ranks")
    batch_per_rank = settings.batch_size // world
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    use_amp = settings.amp if device.type == "cuda" else settings.cpu_bf16
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    torch.manual_seed(settings.seed + rank)
    bins = bins_of(settings)

    dataset = DepthTrainSet(data_root, frame_ids, settings, bins, progress=progress and rank == 0)
    model = DepthNet(settings)
    resume_payload = None
    if resume is not None:
        resume_payload = read_checkpoint(Path(resume))
        check_compatible(Path(resume), resume_payload["settings"], settings)
        model.load_state_dict(resume_payload["model"])
        weights_from = f"resumed from {resume}"
    else:
        weights_from = load_encoder_weights(model, settings.encoder_weights,
                                            log=(lambda m: tqdm.write(m)) if rank == 0 else (lambda m: None))
    model.to(device)
    ddp_model: torch.nn.Module = model
    if world > 1:
        if device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if device.type == "cuda" else None)
    optimizer = _make_optimizer(model, settings)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and device.type == "cuda")
    soft_targets = soft_target_matrix(settings.n_bins, settings.soft_label_coeff, device)

    sampler = None
    if world > 1:
        sampler = torch.utils.data.distributed.DistributedSampler(dataset, num_replicas=world, rank=rank,
                                                                  shuffle=True, seed=settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_per_rank, shuffle=sampler is None, sampler=sampler,
        num_workers=settings.num_workers, collate_fn=_collate, drop_last=len(dataset) >= settings.batch_size,
        generator=generator, pin_memory=device.type == "cuda")
    steps_per_epoch = max(len(loader), 1)
    total_steps = settings.epochs * steps_per_epoch
    if settings.max_steps:
        total_steps = min(total_steps, settings.max_steps)
    step, start_epoch = 0, 0
    log_rows: list[dict[str, Any]] = []
    if resume_payload is not None:
        step = int(resume_payload["step"])
        start_epoch = step // steps_per_epoch
        if resume_payload.get("optimizer"):
            optimizer.load_state_dict(resume_payload["optimizer"])
        log_rows = list(resume_payload["extra"].get("log", []))

    def save(epoch: int) -> None:
        if rank != 0:
            return
        atomic_write_bytes(out_dir / CHECKPOINT_NAME, checkpoint_bytes(
            model, settings, step=step, epoch=epoch, optimizer_state=optimizer.state_dict(),
            extra={"log": log_rows, "encoder_weights": weights_from}))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=_LOG_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(log_rows)
        atomic_write_text(out_dir / LOG_NAME, buf.getvalue())

    bar = tqdm(total=total_steps, initial=step, desc=f"train {settings.variant}", disable=not progress or rank != 0,
               dynamic_ncols=True)
    loss_value = float("nan")
    ddp_model.train()
    epoch = start_epoch
    while step < total_steps:
        dataset.set_epoch(epoch)
        if sampler is not None:
            sampler.set_epoch(epoch)
        generator.manual_seed(settings.seed * 1000003 + epoch)
        skip = step - epoch * steps_per_epoch  # resuming mid-epoch: skip the batches already seen
        for i, batch in enumerate(loader):
            if i < skip:
                continue
            if step >= total_steps:
                break
            lr = poly_lr(settings.lr, step, total_steps, settings.poly_power)
            for group in optimizer.param_groups:
                group["lr"] = lr
            image = batch["image"].to(device, non_blocking=True)
            target = batch["target_bin"].to(device, non_blocking=True)
            fg = batch["fg_mask"].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                logits = ddp_model(image)
            terms = variant_loss(logits, target, fg, settings, soft_targets)
            loss_value = float(terms.total.detach())
            if not math.isfinite(loss_value):
                raise TrainingError(f"depth training, step {step + 1} (epoch {epoch + 1}): loss is "
                                    f"{loss_value} ({terms.parts}); lower the lr or check the data")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(terms.total).backward()
            scaler.step(optimizer)
            scaler.update()
            step += 1
            log_rows.append({"step": step, "epoch": epoch + 1, "lr": f"{lr:.6g}", "loss": f"{loss_value:.5f}",
                             "fg": f"{terms.parts.get('fg', float('nan')):.5f}",
                             "bg": f"{terms.parts.get('bg', float('nan')):.5f}",
                             "seconds": f"{time.time() - t0:.1f}"})
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2g}")
            if settings.checkpoint_every and step % settings.checkpoint_every == 0:
                save(epoch)
        epoch += 1
        save(epoch)
    bar.close()
    if step == 0 or not log_rows:
        save(epoch)
    close_distributed(ctx)
    tail = [float(r["loss"]) for r in log_rows[-max(1, steps_per_epoch):]]
    return {"steps": step, "epochs": epoch, "final_loss": float(np.mean(tail)) if tail else float("nan"),
            "last_loss": loss_value, "seconds": round(time.time() - t0, 2), "device": str(device),
            "parameters": count_parameters(model), "encoder_weights": weights_from,
            "frames": len(dataset), "world_size": world, "effective_batch": settings.batch_size,
            "batch_per_rank": batch_per_rank}


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m depth.train`` / torchrun entry (the CLI is ``foresee depth train``)."""
    import argparse

    from depth.settings import preset
    from kitti import KittiRoot

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--split", default="train")
    p.add_argument("--variant", default="foresee")
    p.add_argument("--preset", default="paper")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--resume", type=Path)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=JSON",
                   help="Override a setting of the preset, e.g. --set max_steps=100 --set batch_size=16.")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    from dataclasses import fields

    from kitti.dist import parse_set_options

    try:
        settings = preset(args.preset, args.variant,
                          **parse_set_options(args.overrides, [f.name for f in fields(DepthSettings)]))
        ids = KittiRoot(args.data).split(args.split)
        summary = train_depth(args.data, ids, settings, args.out, resume=args.resume, progress=not args.quiet)
    except (ValueError, TypeError, TrainingError, CheckpointMismatchError, KittiFormatError) as e:
        raise SystemExit(f"error: {e}") from None
    if int(os.environ.get("RANK", "0")) == 0:
        import json

        print(json.dumps(summary))


if __name__ == "__main__":
    main()
