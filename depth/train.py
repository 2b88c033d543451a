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

import math
import os
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from depth.data import DepthTrainSet
from depth.loss import soft_target_matrix, variant_loss
from depth.model import (CheckpointMismatchError, DepthNet, bins_of, check_compatible, checkpoint_bytes,
                         count_parameters, load_encoder_weights, read_checkpoint)
from depth.settings import DepthSettings
from engine import CheckpointHook, CsvLogHook, SnapshotHook, TrainerBase, amp_for, capture_rng, restore_rng, select_device
from engine.progress import ProgressHook
from kitti.dist import close_distributed, init_distributed
from kitti.errors import KittiFormatError
from kitti.fileio import atomic_write_bytes

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "train_log.csv"
CURVE_NAME = "train_loss.png"
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


class _Trainer(TrainerBase):
    """The depth step: a batch of the loader (epoch after epoch, resuming mid-epoch), the variant's loss."""

    def __init__(self, net: torch.nn.Module, loader, dataset: DepthTrainSet, sampler, generator: torch.Generator,
                 settings: DepthSettings, device: torch.device, total_steps: int, steps_per_epoch: int,
                 hooks, step: int, is_main: bool, t0: float):
        super().__init__(total_steps, hooks, step=step, is_main=is_main)
        self.net, self.loader, self.dataset, self.sampler, self.generator = net, loader, dataset, sampler, generator
        self.settings, self.device, self.steps_per_epoch, self.t0 = settings, device, steps_per_epoch, t0
        self.amp = amp_for(device, cuda=settings.amp, cpu=settings.cpu_bf16)
        self.scaler = self.amp.scaler()
        self.soft_targets = soft_target_matrix(settings.n_bins, settings.soft_label_coeff, device)
        self.optimizer = _make_optimizer(_unwrap(net), settings)
        self.batches: Iterator | None = None
        self.last_loss = float("nan")

    def _epochs(self) -> Iterator[tuple[int, dict]]:
        epoch = self.step // self.steps_per_epoch
        skip = self.step - epoch * self.steps_per_epoch  # resuming mid-epoch: skip the batches already seen
        while True:
            self.dataset.set_epoch(epoch)
            if self.sampler is not None:
                self.sampler.set_epoch(epoch)
            self.generator.manual_seed(self.settings.seed * 1000003 + epoch)
            for i, batch in enumerate(self.loader):
                if i >= skip:
                    yield epoch, batch
            epoch, skip = epoch + 1, 0

    def run_step(self) -> dict:
        settings, device, step = self.settings, self.device, self.step
        if self.batches is None:
            self.batches = self._epochs()
        epoch, batch = next(self.batches)
        lr = poly_lr(settings.lr, step, self.max_steps, settings.poly_power)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        image = batch["image"].to(device, non_blocking=True)
        target = batch["target_bin"].to(device, non_blocking=True)
        fg = batch["fg_mask"].to(device, non_blocking=True)
        with self.amp.autocast():
            logits = self.net(image)
        terms = variant_loss(logits, target, fg, settings, self.soft_targets)
        loss_value = float(terms.total.detach())
        if not math.isfinite(loss_value):
            raise TrainingError(f"depth training, step {step + 1} (epoch {epoch + 1}): loss is "
                                f"{loss_value} ({terms.parts}); lower the lr or check the data")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(terms.total).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.last_loss = loss_value
        return {"epoch": epoch + 1, "lr": f"{lr:.6g}", "loss": f"{loss_value:.5f}",
                "fg": f"{terms.parts.get('fg', float('nan')):.5f}",
                "bg": f"{terms.parts.get('bg', float('nan')):.5f}",
                "seconds": f"{time.time() - self.t0:.1f}"}


def snapshot_path(out_dir: Path, step: int) -> Path:
    """Where :func:`train_depth` keeps its checkpoint after ``step`` steps (``snapshots``)."""
    return Path(out_dir) / f"checkpoint_step{int(step)}.pt"


def _unwrap(net: torch.nn.Module) -> torch.nn.Module:
    return net.module if isinstance(net, torch.nn.parallel.DistributedDataParallel) else net


def train_depth(data_root: Path, frame_ids: Sequence[str], settings: DepthSettings, out_dir: Path, *,
                progress: bool = True, resume: Path | None = None, snapshots: Sequence[int] = ()) -> dict[str, Any]:
    """Train one depth variant and write ``out_dir/checkpoint.pt``, ``out_dir/train_log.csv`` (one
    row per step) and ``out_dir/train_loss.png`` (its curve).

    Args:
        data_root: KITTI-format root with image_2, calib, label_2 and depth_2 (ground truth).
        frame_ids: the training frames.
        settings: the run's settings (variant, preset values, seed).
        out_dir: where the checkpoint (weights + settings + bins) and the log go; the checkpoint
            is rewritten every epoch (or every ``checkpoint_every`` steps), at the end and on
            SIGTERM/SIGINT, so that a run can resume.
        progress: show a tqdm bar with the loss.
        resume: a checkpoint of the same settings to continue from (its step, optimiser and
            random states).
        snapshots: steps after which a copy of the checkpoint is kept as
            ``out_dir/checkpoint_step<N>.pt`` (:func:`snapshot_path`): one training read at several
            lengths. The learning rate follows the whole run's schedule (``poly_lr`` over
            ``max_steps``), so a snapshot is a model mid-schedule, not a shorter training.

    Returns:
        ``{"steps", "epochs", "final_loss", "seconds", "device", "parameters", "encoder_weights",
        "frames", "world_size", "effective_batch", "batch_per_rank"}``.

    Raises:
        CheckpointMismatchError: ``resume`` is a checkpoint of another variant or bin setting.
        TrainingError: the loss became NaN/inf (the message names the step).
        ValueError: under torchrun, ``batch_size`` is not a multiple of the world size.
        engine.TrainingInterrupted: SIGTERM/SIGINT (the checkpoint is written first).
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
    device = select_device("auto")
    if device.type == "cuda":
        torch.cuda.set_device(device)
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
    net: torch.nn.Module = model
    if world > 1:
        if device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if device.type == "cuda" else None)

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
    step = int(resume_payload["step"]) if resume_payload is not None else 0
    log_rows: list[dict[str, Any]] = list(resume_payload["extra"].get("log", [])) if resume_payload else []

    csv_log = CsvLogHook(out_dir / LOG_NAME, _LOG_FIELDS, log_rows, png_path=out_dir / CURVE_NAME,
                         curve=("loss",), title=f"depth {settings.variant}")

    def state(trainer: _Trainer) -> bytes:
        return checkpoint_bytes(
            model, settings, step=trainer.step, epoch=trainer.step // steps_per_epoch,
            optimizer_state=trainer.optimizer.state_dict(),
            extra={"log": log_rows, "encoder_weights": weights_from, "rng": capture_rng()})

    def save(trainer: _Trainer) -> None:
        atomic_write_bytes(out_dir / CHECKPOINT_NAME, state(trainer))
        csv_log.write()

    def snapshot(trainer: _Trainer) -> None:
        atomic_write_bytes(snapshot_path(out_dir, trainer.step), state(trainer))

    bar = ProgressHook(total_steps, step, progress and rank == 0, desc=f"train {settings.variant}", loss_key="loss")
    trainer = _Trainer(net, loader, dataset, sampler, generator, settings, device, total_steps, steps_per_epoch,
                       [csv_log, bar, CheckpointHook(save, settings.checkpoint_every or steps_per_epoch),
                        SnapshotHook(snapshot, snapshots)],
                       step, rank == 0, t0)
    if resume_payload is not None:
        if resume_payload.get("optimizer"):
            trainer.optimizer.load_state_dict(resume_payload["optimizer"])
        if resume_payload["extra"].get("rng") is not None:
            restore_rng(resume_payload["extra"]["rng"])
    net.train()
    try:
        trainer.train()
    finally:
        bar.close()
    if step == total_steps and rank == 0:  # nothing left to do: write what the checkpoint holds
        save(trainer)
    close_distributed(ctx)
    step = trainer.step
    tail = [float(r["loss"]) for r in log_rows[-max(1, steps_per_epoch):]]
    return {"steps": step, "epochs": -(-step // steps_per_epoch), "final_loss": float(np.mean(tail)) if tail else float("nan"),
            "last_loss": trainer.last_loss, "seconds": round(time.time() - t0, 2), "device": str(device),
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
