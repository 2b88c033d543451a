"""Training of the 2D detector on a split's label_2 boxes.

Reproduce (cpu-small on the embedded benchmark; figures in docs/detect2d.md)::

    foresee detect2d train --data data/embedded --split train --preset cpu-small

The labels of every frame are sorted once; the images are read from disk and scaled by
``image_scale`` when a batch needs them (:class:`detect2d.data.TrainImages`, in ``num_workers``
DataLoader workers), so no split is held in memory. Step ``s`` takes the images ``s*B … s*B+B-1``
of a stream of seeded per-epoch permutations and mirrors each with p = 0.5 (seeded by the step),
so an interrupted run resumes exactly where it stopped, with or without workers. Optimiser: AdamW, linear warm-up then cosine decay to 0, gradient norm
clipped at 10. Losses are torchvision's (the model returns them in training mode). On CUDA the
forward pass and the losses run under autocast (``engine.amp_for``: bf16, else fp16 with a
GradScaler); on the CPU nothing changes.

Data-parallel (``torchrun --nproc_per_node=N -m detect2d.train ...``, docs/scaling.md):
``batch_size`` is the global batch whatever the world size (the settings and the cache key do not
depend on N). Every rank computes step ``s``'s frames, flips and crops for the whole global batch
and runs its rows (:func:`kitti.dist.split_batch`); each rank's loss is weighted by its share of
the batch, so DistributedDataParallel's gradient average is the gradient of the global batch's mean
loss — exactly for RetinaNet (its losses are means over images), while FCOS normalises by the
foreground points of the rank's own images (as torchvision's reference scripts do under DDP). On
CUDA the encoder's batch norms become SyncBatchNorm. Rank 0 writes the logs, checkpoints, model and
summary; every rank resumes from a checkpoint.
"""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from engine import (CheckpointHook, CsvLogHook, MeanLogHook, TrainerBase, amp_for, capture_rng, load_checkpoint,
                    restore_rng, save_checkpoint, setup_device)
from engine.progress import ProgressHook as _Bar
from kitti.dist import DistContext, close_distributed, init_distributed, split_batch
from kitti.fileio import atomic_write_bytes, atomic_write_text
from kitti.layout import KittiRoot

from detect2d import CODE_VERSION
from detect2d.data import TrainFrame, TrainImages, read_train_labels, scaled_size
from detect2d.model import build_detector
from detect2d.settings import Detect2DSettings


class CheckpointMismatchError(ValueError):
    """A resume checkpoint was written with other settings."""


def batch_indices(step: int, n_frames: int, batch_size: int, seed: int) -> np.ndarray:
    """Frame indices of step ``step``: a window of the stream of per-epoch permutations
    ``default_rng([seed, epoch]).permutation(n_frames)``."""
    start = step * batch_size
    out = []
    while len(out) < batch_size:
        epoch, offset = divmod(start + len(out), n_frames)
        perm = np.random.default_rng([seed, epoch]).permutation(n_frames)
        out.extend(perm[offset:offset + batch_size - len(out)].tolist())
    return np.array(out, dtype=np.int64)


def crop_columns(boxes: torch.Tensor, x0: int, x1: int, min_width: float, min_fraction: float = 0.0
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes (N, 4) in the column window [x0, x1) of an image: clipped to it and shifted by -x0;
    returns (boxes, kept mask), keeping those at least ``min_width`` px and ``min_fraction`` of
    their own width wide after clipping."""
    out = boxes.clone()
    out[:, [0, 2]] = out[:, [0, 2]].clamp(float(x0), float(x1)) - x0
    width = out[:, 2] - out[:, 0]
    keep = (width >= min_width) & (width >= min_fraction * (boxes[:, 2] - boxes[:, 0]))
    return out[keep], keep


def make_batch(frames: Sequence[TrainFrame], flips: Sequence[bool], device: torch.device,
               crop_x0: Sequence[int] | None = None, crop_width: int = 0,
               ) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """Images (3, h, w) float in [0, 1] and torchvision targets (``boxes``, ``labels``,
    ``ignore_boxes``), each frame mirrored left-right when its flip is set, then (with
    ``crop_width`` > 0) cut to the columns ``[crop_x0[i], crop_x0[i] + crop_width)``: boxes clipped
    to the window, and dropped when less than 2 px or half their width is left (KITTI's own
    truncated objects at the image border are labelled the same way, clipped)."""
    images, targets = [], []
    for i, (fr, flip) in enumerate(zip(frames, flips)):
        img = torch.from_numpy(np.ascontiguousarray(fr.image)).permute(2, 0, 1).float().div_(255.0)
        boxes = torch.from_numpy(fr.boxes.copy())
        labels = torch.from_numpy(fr.labels)
        ignore = torch.from_numpy(fr.ignore_boxes.copy())
        if flip:
            w = img.shape[2]
            img = img.flip(2)
            boxes = torch.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], dim=1)
            ignore = torch.stack([w - ignore[:, 2], ignore[:, 1], w - ignore[:, 0], ignore[:, 3]], dim=1)
        if crop_width > 0 and crop_width < img.shape[2]:
            x0 = int(crop_x0[i])
            x1 = x0 + crop_width
            img = img[:, :, x0:x1]
            boxes, keep = crop_columns(boxes.reshape(-1, 4), x0, x1, 2.0, 0.5)
            labels = labels[keep]
            ignore, _ = crop_columns(ignore.reshape(-1, 4), x0, x1, 1.0)
        images.append(img.to(device))
        targets.append({"boxes": boxes.reshape(-1, 4).to(device),
                        "labels": labels.to(device),
                        "ignore_boxes": ignore.reshape(-1, 4).to(device)})
    return images, targets


def learning_rate(settings: Detect2DSettings, step: int) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to 0 at ``max_steps``."""
    if step < settings.warmup_steps:
        return settings.learning_rate * (step + 1) / settings.warmup_steps
    span = max(settings.max_steps - settings.warmup_steps, 1)
    t = min((step - settings.warmup_steps) / span, 1.0)
    return settings.learning_rate * 0.5 * (1.0 + math.cos(math.pi * t))


def save_model(path: Path, model: torch.nn.Module, settings: Detect2DSettings,
               reference_hw: tuple[int, int]) -> None:
    """``model.pt``: weights, settings, the reference image size and the code version."""
    buf = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "settings": asdict(settings),
                "reference_hw": list(reference_hw), "code_version": CODE_VERSION}, buf)
    atomic_write_bytes(path, buf.getvalue())


_CSV_FIELDS = ("step", "lr", "total", "classification", "bbox_regression")


class _StepBatches(torch.utils.data.Sampler):
    """The frame indices of steps ``start, start + 1, …, max_steps - 1`` (:func:`batch_indices`),
    rows ``rows`` of each (a data-parallel rank's share; all of them on one process)."""

    def __init__(self, start: int, settings: Detect2DSettings, n_frames: int, rows: tuple[int, int] | None = None):
        self.start, self.settings, self.n_frames = start, settings, n_frames
        self.rows = rows or (0, settings.batch_size)

    def __iter__(self):
        s = self.settings
        a, b = self.rows
        for step in range(self.start, s.max_steps):
            yield batch_indices(step, self.n_frames, s.batch_size, s.seed)[a:b].tolist()

    def __len__(self) -> int:
        return max(self.settings.max_steps - self.start, 0)


def _as_list(frames: list[TrainFrame]) -> list[TrainFrame]:
    return frames


class _Trainer(TrainerBase):
    """The 2D detector's step: its batch (:func:`batch_indices`, flips, crops), torchvision's losses."""

    def __init__(self, model, net, loader, width: int, settings: Detect2DSettings, device: torch.device, hooks,
                 step: int, ctx: DistContext):
        super().__init__(settings.max_steps, hooks, step=step, is_main=ctx.is_main)
        self.model, self.loader, self.width, self.settings, self.device = model, loader, width, settings, device
        self.net, self.ctx = net, ctx  # net: the DDP wrapper under torchrun, else the model
        self.rows = split_batch(settings.batch_size, ctx.world)[ctx.rank]
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(self.params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
        self.amp = amp_for(device)
        self.scaler = self.amp.scaler()
        self.batches = None

    def run_step(self) -> dict:
        settings, step = self.settings, self.step
        if self.batches is None:
            self.batches = iter(self.loader)
        frames = next(self.batches)  # this rank's rows of the global batch
        a, b = self.rows
        # flips and crops are drawn for the whole global batch, each rank keeps its rows
        flips = (np.random.default_rng([settings.seed, 1, step]).random(settings.batch_size) < 0.5) & settings.hflip
        crop_x0 = None
        if settings.train_crop_width:
            room = max(self.width - settings.train_crop_width, 0)
            crop_x0 = np.random.default_rng([settings.seed, 2, step]).integers(0, room + 1, settings.batch_size)[a:b]
        images, targets = make_batch(frames, flips[a:b].tolist(), self.device, crop_x0, settings.train_crop_width)
        lr = learning_rate(settings, step)
        for g in self.opt.param_groups:
            g["lr"] = lr
        with self.amp.autocast():
            losses = self.net(images, targets)
        total = sum(losses.values())
        self.opt.zero_grad(set_to_none=True)
        # DDP averages the ranks' gradients: weighting each rank's loss (a mean over its images)
        # by share * world makes the average the gradient of the global batch's mean loss
        share = (b - a) / settings.batch_size
        loss = total * (share * self.ctx.world) if self.ctx.world > 1 else total
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.opt)  # the clipping sees the true gradients (no-op without a scaler)
        torch.nn.utils.clip_grad_norm_(self.params, 10.0)
        self.scaler.step(self.opt)
        self.scaler.update()
        row = {k: float(v.detach()) for k, v in losses.items()}
        row["total"] = float(total.detach())
        if self.ctx.world > 1:  # the global batch's figures: the ranks' shares summed
            names = sorted(row)
            packed = torch.tensor([row[k] * share for k in names], dtype=torch.float64)
            torch.distributed.all_reduce(packed)
            row = dict(zip(names, packed.tolist()))
            row["total"] = row.pop("total")
        return {"lr": lr, **row}


def train_detector(data_root: Path, frame_ids: Sequence[str], settings: Detect2DSettings,
                   out_dir: Path, *, progress: bool = True, resume: Path | None = None,
                   encoder: torch.nn.Module | None = None, num_workers: int = 0) -> dict:
    """Train the detector and write ``out_dir/model.pt``, ``train_log.jsonl`` (means over
    ``checkpoint_every_steps``), ``train_log.csv`` (every step), ``train_loss.png``, ``summary.json``
    and (every ``checkpoint_every_steps``, at the end and on SIGTERM/SIGINT) ``checkpoint.pt``.

    Args:
        data_root: KITTI-format root (image_2, label_2, calib).
        frame_ids: training frames.
        settings: the stage settings (``settings.settings_key`` decides the artifact).
        out_dir: output folder (created).
        progress: show progress bars.
        resume: a ``checkpoint.pt`` of an interrupted run with the same settings.
        encoder: an encoder module to use instead of ``settings.encoder`` (tests).
        num_workers: DataLoader worker processes reading the images (0: the main process; a
            step's batch, flips and crops depend on the step alone, so the trajectory is the same).

    Returns:
        Summary: frames, label counts (positives, ignored regions, background, unknown types
        skipped), steps, final loss terms, seconds (data, training, total) and ``cpu_seconds``
        (process CPU time of this run plus the interrupted runs it resumed).

    Raises:
        KittiFormatError: missing or malformed inputs, a refused image; CheckpointMismatchError:
        a resume checkpoint with other settings; engine.TrainingInterrupted: SIGTERM/SIGINT (the
        checkpoint is written first).
    """
    t0, cpu0 = time.time(), time.process_time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = setup_device(settings.device, settings.num_threads)
    ctx = init_distributed(use_cuda=device.type == "cuda")
    if settings.batch_size < ctx.world:
        close_distributed(ctx)
        raise ValueError(f"batch_size {settings.batch_size} (the global batch) is smaller than the {ctx.world} ranks")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    progress = progress and ctx.is_main
    torch.manual_seed(settings.seed)
    root = KittiRoot(data_root)
    labels, reference_hw, counts = read_train_labels(root, frame_ids, settings, progress=progress)
    t_data = time.time() - t0

    model = build_detector(settings, encoder=encoder)
    if ctx.world > 1 and device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device)
    net: torch.nn.Module = model
    if ctx.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    step, log, rows, cpu_before = 0, [], [], 0.0
    resumed_from = None
    ck = None
    if resume is not None:
        ck = load_checkpoint(resume)
        if Detect2DSettings.from_dict(ck["settings"]) != settings:
            raise CheckpointMismatchError(f"{resume}: checkpoint was written with other settings")
        if "rng" not in ck:
            raise CheckpointMismatchError(f"{resume}: written by an earlier foresee (no random states): "
                                          "delete it to train afresh")
        model.load_state_dict(ck["state_dict"])
        step, log, rows, cpu_before = ck["step"], ck["log"], ck["rows"], ck.get("cpu_seconds", 0.0)
        resumed_from = step

    csv_log = CsvLogHook(out_dir / "train_log.csv", _CSV_FIELDS, rows, png_path=out_dir / "train_loss.png",
                         curve=("total",), title="2D detector")
    mean_log = MeanLogHook(out_dir / "train_log.jsonl", settings.checkpoint_every_steps, log,
                           state=ck.get("mean_log") if ck else None)
    bar = _Bar(settings.max_steps, step, progress)

    def save(trainer: _Trainer) -> None:
        save_checkpoint(out_dir / "checkpoint.pt", {
            "state_dict": model.state_dict(), "optimizer": trainer.opt.state_dict(), "step": trainer.step,
            "log": log, "rows": rows, "mean_log": mean_log.state(), "settings": asdict(settings),
            "cpu_seconds": cpu_before + time.process_time() - cpu0, "rng": capture_rng(),
            "code_version": CODE_VERSION})
        csv_log.write()

    hooks = [csv_log, mean_log, bar,
             CheckpointHook(save, settings.checkpoint_every_steps)]
    loader = torch.utils.data.DataLoader(
        TrainImages(root, labels, settings.image_scale),
        batch_sampler=_StepBatches(step, settings, len(labels), split_batch(settings.batch_size, ctx.world)[ctx.rank]),
        num_workers=num_workers, collate_fn=_as_list, generator=torch.Generator().manual_seed(settings.seed))
    width = scaled_size(reference_hw, settings.image_scale)[1]
    trainer = _Trainer(model, net, loader, width, settings, device, hooks, step, ctx)
    if ck is not None:
        trainer.opt.load_state_dict(ck["optimizer"])
        restore_rng(ck["rng"])
    t_train = time.time()
    model.train()
    trainer.train()
    bar.close()
    step = trainer.step
    t_train = time.time() - t_train
    if not ctx.is_main:
        close_distributed(ctx)
        return {"rank": ctx.rank, "world_size": ctx.world, "steps": step}
    mean_log.write()
    save_model(out_dir / "model.pt", model, settings, reference_hw)
    summary = {"frames": len(labels), "reference_hw": list(reference_hw),
               "labels_positive": counts["positive"], "labels_ignored": counts["ignored"],
               "labels_background": counts["background"],
               "labels_unknown_type_skipped": counts["unknown_types"],
               "labels_degenerate_skipped": counts["degenerate"],
               "frames_without_positives": counts["frames_without_positives"],
               "steps": step, "device": str(device),
               "final_loss": log[-1].get("total") if log else None,
               "final_losses": {k: v for k, v in (log[-1] if log else {}).items() if k not in ("step", "lr")},
               "seconds_data": round(t_data, 2), "seconds_train": round(t_train, 2),
               "seconds": round(time.time() - t0, 2),
               "cpu_seconds": round(cpu_before + time.process_time() - cpu0, 2),
               "resumed_from_step": resumed_from, "world_size": ctx.world,
               "effective_batch": settings.batch_size,
               "batch_per_rank": [b - a for a, b in split_batch(settings.batch_size, ctx.world)]}
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=1))
    close_distributed(ctx)
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m detect2d.train`` / torchrun entry (the cached CLI is ``foresee detect2d train``);
    prints the summary as JSON on rank 0."""
    from kitti.dist import entry_parser, run_entry, with_overrides
    from detect2d.settings import preset

    p = entry_parser(__doc__, ("paper", "cpu-small"))
    p.add_argument("--num-workers", type=int, default=0)
    args = p.parse_args(argv)
    run_entry(lambda: train_detector(args.data, KittiRoot(args.data).split(args.split),
                                     with_overrides(preset(args.preset), args.overrides), args.out,
                                     progress=not args.quiet, resume=args.resume, num_workers=args.num_workers))


if __name__ == "__main__":
    main()
