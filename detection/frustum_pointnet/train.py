"""Training of Frustum-PointNet v1 on any velodyne-format clouds (LiDAR or pseudo-LiDAR).

Reproduce (cpu-small on the development set; see docs/detection.md)::

    foresee detect train --data data/embedded --points ARTIFACT --split train --preset cpu-small

Data: every training frame is read once (streamed, one cloud at a time); each labelled object of
``settings.classes`` keeps its frustum region (its 2D box grown to cover every jitter), uniformly
subsampled to ``cache_points``. Each epoch draws ``augment_x`` jittered ground-truth 2D boxes per
object (fresh draws every epoch; the original drew them once when it wrote its pickle), then flip
and shift as ``provider.py``. Optimiser: Adam, no weight decay, staircase learning-rate and
batch-norm momentum decay counted in samples. A held-out share of the frames (``holdout_fraction``)
measures segmentation accuracy and 3D box IoU with unperturbed ground-truth boxes after training,
next to the trivial baseline (mean size at the frustum points' median, heading 0).

Data-parallel (``torchrun --nproc_per_node=N -m detection.frustum_pointnet.train ...``, see
docs/scaling.md): ``batch_size`` is the global batch whatever the world size, so a run's settings
(and cache key) do not depend on it. Every rank draws the same global batch (the same shuffled
order and augmentation draws, a seeded NumPy generator in lockstep on all ranks) and runs its rows
(:func:`kitti.dist.split_batch`); DistributedDataParallel averages the gradients, each rank's loss
weighted by its share of the batch so that the step equals the one-process step on the global batch.
On CUDA batch norms become SyncBatchNorm (statistics of the global batch); on CPU (gloo) SyncBatchNorm
does not exist and each rank normalises with its own rows' statistics. Dropout masks are drawn per
rank. Rank 0 writes the log, checkpoints, model and summary; a checkpoint restores every rank.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from tqdm import tqdm

from engine import (CheckpointHook, CsvLogHook, Hook, TrainerBase, amp_for, capture_rng, load_checkpoint,
                    restore_rng, save_checkpoint)
from engine.progress import ProgressHook
from kitti.dist import DistContext, close_distributed, init_distributed, split_batch
from kitti.errors import KittiFormatError
from kitti.fileio import atomic_write_text
from kitti.layout import KittiRoot
from kitti.progress import tqdm_disable
from detection.frustum_pointnet import CODE_VERSION
from detection.frustum_pointnet.frustum import (ObjectFrustum, in_box2d_mask, object_frustums,
                                                training_sample)
from detection.frustum_pointnet.infer import (build_model, decode, read_frame_cloud, save_model,
                                              select_device, trivial_box)
from detection.frustum_pointnet.loss import FPointNetTargets, fpointnet_loss
from detection.frustum_pointnet.metrics import box_iou_3d
from detection.frustum_pointnet.model import FPointNetV1
from detection.frustum_pointnet.settings import FPointNetSettings
from detection.runtime import numpy_blas_one_thread


def split_holdout(frame_ids: Sequence[str], fraction: float, seed: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(train frames, held-out frames): a seeded random ``fraction`` of the frames is held out
    (at least one when ``fraction > 0`` and there are two frames or more)."""
    ids = tuple(frame_ids)
    n_hold = int(round(fraction * len(ids)))
    if fraction > 0 and len(ids) >= 2:
        n_hold = min(max(n_hold, 1), len(ids) - 1)
    else:
        n_hold = 0
    order = np.random.default_rng([seed, 7]).permutation(len(ids))
    hold = set(order[:n_hold].tolist())
    return (tuple(f for i, f in enumerate(ids) if i not in hold),
            tuple(f for i, f in enumerate(ids) if i in hold))


def collect_frustums(root: KittiRoot, points_dir: Path, frame_ids: Sequence[str],
                     settings: FPointNetSettings, rng: np.random.Generator, *,
                     progress: bool = True, desc: str = "frustums") -> list[ObjectFrustum]:
    """Stream the frames and keep each labelled object's frustum region (see the module doc)."""
    out: list[ObjectFrustum] = []
    for frame in tqdm(frame_ids, desc=desc, disable=tqdm_disable(progress), unit="frame"):
        calib = root.calib(frame)
        cloud = read_frame_cloud(root, points_dir, frame, calib, settings)
        out.extend(object_frustums(frame, cloud, calib, root.labels(frame), settings, rng))
    return out


def make_batch(frustums: Sequence[ObjectFrustum], settings: FPointNetSettings,
               rng: np.random.Generator, device: torch.device, *, augment: bool,
               rows: tuple[int, int] | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, FPointNetTargets, np.ndarray]:
    """Stack training samples: (points (B, N, 4), one-hot (B, 3), targets, rotations (B,)).

    ``rows=(start, stop)`` keeps only those samples (a data-parallel rank's share); every sample is
    still drawn, so ``rng`` advances as for the whole batch.
    """
    samples = [training_sample(f, settings, rng, augment=augment) for f in frustums]
    if rows is not None:
        samples = samples[rows[0]:rows[1]]

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)

    targets = FPointNetTargets(
        t(np.stack([s.seg for s in samples])), t(np.stack([s.center for s in samples])),
        t(np.array([s.heading_class for s in samples], dtype=np.int64)),
        t(np.array([s.heading_residual for s in samples], dtype=np.float32)),
        t(np.array([s.size_class for s in samples], dtype=np.int64)),
        t(np.stack([s.size_residual for s in samples])))
    return (t(np.stack([s.points for s in samples])), t(np.stack([s.onehot for s in samples])),
            targets, np.array([s.rot for s in samples]))


def schedule(settings: FPointNetSettings, samples_seen: int) -> tuple[float, float]:
    """(learning rate, batch-norm momentum) after ``samples_seen`` training samples (staircase)."""
    lr = settings.learning_rate
    if settings.lr_decay_samples:
        lr *= settings.lr_decay_rate ** (samples_seen // settings.lr_decay_samples)
    mom = settings.bn_momentum_init
    if settings.bn_decay_samples:
        mom *= settings.bn_decay_rate ** (samples_seen // settings.bn_decay_samples)
    return lr, max(mom, settings.bn_momentum_min)


def evaluate_frustums(model: FPointNetV1, frustums: Sequence[ObjectFrustum], settings: FPointNetSettings,
                      device: torch.device) -> dict:
    """Segmentation accuracy and box IoU on frustums of unperturbed ground-truth 2D boxes.

    Returns:
        frustums, seg_accuracy, mean_iou_3d, mean_iou_bev, iou3d_at_0.7 / at_0.5 (share of boxes
        with 3D IoU >= 0.7 / 0.5), and the same IoUs for the trivial baseline (``baseline_*``).
    """
    if not frustums:
        return {"frustums": 0}
    rng = np.random.default_rng([settings.seed, 11])
    gen = torch.Generator(device=device).manual_seed(settings.seed)
    model.eval()
    correct = total = 0
    iou3d, ioubev, base3d, basebev = [], [], [], []
    for start in range(0, len(frustums), settings.batch_size):
        chunk = frustums[start:start + settings.batch_size]
        pts, oh, tgt, rots = make_batch(chunk, settings, rng, device, augment=False)
        with torch.no_grad():
            out = model(pts, oh, generator=gen)
        pred_seg = out.seg_logits.argmax(dim=2)
        correct += int((pred_seg == tgt.seg).sum())
        total += int(tgt.seg.numel())
        for fr, box in zip(chunk, decode(out, rots)):
            loc_gt = fr.center_rect + np.array([0.0, fr.size_lwh[2] / 2.0, 0.0])
            hwl_gt = fr.size_lwh[[2, 1, 0]]
            a, b = box_iou_3d(box.loc_rect, box.hwl, box.ry, loc_gt, hwl_gt, fr.ry)
            iou3d.append(a)
            ioubev.append(b)
            m = in_box2d_mask(fr.uv_img, tuple(fr.box2d))
            base = trivial_box(fr.points_rect[m], fr.type)
            a, b = box_iou_3d(base.loc_rect, base.hwl, base.ry, loc_gt, hwl_gt, fr.ry)
            base3d.append(a)
            basebev.append(b)
    i3, b3 = np.array(iou3d), np.array(base3d)
    return {"frustums": len(frustums), "seg_accuracy": correct / max(total, 1),
            "mean_iou_3d": float(i3.mean()), "mean_iou_bev": float(np.mean(ioubev)),
            "iou3d_at_0.7": float((i3 >= 0.7).mean()), "iou3d_at_0.5": float((i3 >= 0.5).mean()),
            "baseline_mean_iou_3d": float(b3.mean()), "baseline_mean_iou_bev": float(np.mean(basebev)),
            "baseline_iou3d_at_0.7": float((b3 >= 0.7).mean()),
            "baseline_iou3d_at_0.5": float((b3 >= 0.5).mean())}


def _rank_rng_states(ctx: DistContext, rng: np.random.Generator, gen: torch.Generator) -> list[dict]:
    """Every rank's random states (:func:`engine.capture_rng`: torch CPU and CUDA — dropout draws —,
    the batch generator ``rng`` and the model's ``gen``), in rank order."""
    state = capture_rng(numpy={"batches": rng}, torch_gens={"model": gen})
    if ctx.world <= 1:
        return [state]
    states: list = [None] * ctx.world
    torch.distributed.all_gather_object(states, state)
    return states


def _steps_per_epoch(n_items: int, batch_size: int, world: int) -> int:
    """Optimiser steps of one epoch: its batches, less those a rank would get fewer than two rows of."""
    return sum(1 for start in range(0, n_items, batch_size)
               if min(b - a for a, b in split_batch(min(batch_size, n_items - start), world)) >= 2)


class _Trainer(TrainerBase):
    """F-PointNet's step: a batch of the epoch's shuffled frustums (augmented), its loss; the epoch
    ends with a line of ``train_log.jsonl`` and (every ``checkpoint_every_epochs``) a checkpoint."""

    def __init__(self, model: FPointNetV1, net: torch.nn.Module, train_fr: Sequence[ObjectFrustum],
                 settings: FPointNetSettings, device: torch.device, ctx: DistContext, max_steps: int, hooks,
                 freeze_batch_norm: bool, rng: np.random.Generator, gen: torch.Generator, out_dir: Path):
        super().__init__(max_steps, hooks, is_main=ctx.is_main)
        self.model, self.net, self.train_fr, self.settings, self.device, self.ctx = model, net, train_fr, settings, device, ctx
        self.freeze_batch_norm, self.rng, self.gen, self.out_dir = freeze_batch_norm, rng, gen, out_dir
        self.opt = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
        self.amp = amp_for(device)
        self.scaler = self.amp.scaler()
        self.n_items = len(train_fr) * settings.augment_x
        self.epoch, self.samples, self.log = 0, 0, []
        self.order: np.ndarray | None = None  # the current epoch's order (None between epochs)
        self.pos, self.sums, self.n_batches = 0, {}, 0
        self.batches: Iterator | None = None
        self.save = lambda: None

    def state(self) -> dict:
        return {"epoch": self.epoch, "samples": self.samples, "steps": self.step, "log": self.log,
                "order": self.order, "pos": self.pos, "sums": self.sums, "n_batches": self.n_batches}

    def load_state(self, ck: dict) -> None:
        self.epoch, self.samples, self.log, self.step = ck["epoch"], ck["samples"], ck["log"], ck.get("steps", 0)
        self.order, self.pos = ck.get("order"), ck.get("pos", 0)
        self.sums, self.n_batches = dict(ck.get("sums", {})), ck.get("n_batches", 0)

    def _start_epoch(self) -> None:
        self.model.train()
        if self.freeze_batch_norm:
            for m in self.model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def _epochs(self) -> Iterator[tuple[np.ndarray, list[tuple[int, int]]]]:
        settings = self.settings
        while self.epoch < settings.epochs:
            if self.order is None:
                self.order = self.rng.permutation(self.n_items) % len(self.train_fr)
                self.pos, self.sums, self.n_batches = 0, {}, 0
            self._start_epoch()
            while self.pos < self.n_items:
                idx = self.order[self.pos:self.pos + settings.batch_size]
                self.pos += settings.batch_size
                rows = split_batch(len(idx), self.ctx.world)
                if min(b - a for a, b in rows) < 2:  # batch norm needs two samples (on every rank)
                    continue
                yield idx, rows
            self.end_epoch()

    def end_epoch(self) -> None:
        """The epoch's log line (the global batch's figures: the ranks' shares summed) and, every
        ``checkpoint_every_epochs``, at the last epoch or at ``max_steps``, a checkpoint."""
        settings, sums = self.settings, self.sums
        if self.ctx.world > 1 and sums:
            names = sorted(sums)
            packed = torch.tensor([sums[k] for k in names], dtype=torch.float64)
            torch.distributed.all_reduce(packed)
            sums = dict(zip(names, packed.tolist()))
        self.log.append({"epoch": self.epoch + 1, "samples": self.samples, "lr": schedule(settings, self.samples)[0],
                         **{k: v / max(self.n_batches, 1) for k, v in sums.items()}})
        if self.ctx.is_main:
            atomic_write_text(self.out_dir / "train_log.jsonl", "".join(json.dumps(e) + "\n" for e in self.log))
        self.epoch += 1
        self.order, self.pos, self.sums, self.n_batches = None, 0, {}, 0
        if (self.epoch % settings.checkpoint_every_epochs == 0 or self.epoch == settings.epochs
                or self.step >= self.max_steps):
            self.save()

    def run_step(self) -> dict:
        settings, ctx = self.settings, self.ctx
        if self.batches is None:
            self.batches = self._epochs()
        idx, rows = next(self.batches)
        lr, mom = schedule(settings, self.samples)
        for g in self.opt.param_groups:
            g["lr"] = lr
        self.model.set_bn_momentum(mom)
        mine = rows[ctx.rank]
        share = (mine[1] - mine[0]) / len(idx)  # this rank's share of the global batch
        pts, oh, tgt, _ = make_batch([self.train_fr[i] for i in idx], settings, self.rng, self.device, augment=True,
                                     rows=mine if ctx.world > 1 else None)
        with self.amp.autocast():
            if ctx.world > 1:
                out = self.net(pts, oh, generator=self.gen, key_rows=(mine[0], len(idx)))
            else:
                out = self.net(pts, oh, generator=self.gen)
        if self.amp.enabled:  # the loss in float32 (as pipeline.gpu_check times it)
            out = type(out)(*(x.float() if x.is_floating_point() else x for x in out))
        terms = fpointnet_loss(out, tgt, self.model.mean_size_lwh, box_loss_weight=settings.box_loss_weight,
                               corner_loss_weight=settings.corner_loss_weight)
        self.opt.zero_grad(set_to_none=True)
        # DDP averages gradients over ranks: weighting each rank's mean loss by share * world
        # makes the average the gradient of the global batch's mean loss (1.0 on one process)
        loss = terms.total * (share * ctx.world) if ctx.world > 1 else terms.total
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        self.samples += len(idx)
        self.n_batches += 1
        row = {"lr": lr}
        for name, value in terms._asdict().items():
            self.sums[name] = self.sums.get(name, 0.0) + float(value.detach()) * share
            row[name] = float(value.detach())
        seg_acc = float((out.seg_logits.argmax(dim=2) == tgt.seg).float().mean())
        self.sums["seg_accuracy"] = self.sums.get("seg_accuracy", 0.0) + seg_acc * share
        row["seg_accuracy"] = seg_acc
        return row


class _EndEpochHook(Hook):
    """After the last step: the open epoch's log line and the final checkpoint."""

    def after_train(self, trainer: TrainerBase) -> None:
        if trainer.order is not None:
            trainer.end_epoch()


@numpy_blas_one_thread
def train_fpointnet(data_root: Path, points_dir: Path, frame_ids: Sequence[str],
                    settings: FPointNetSettings, out_dir: Path, *, progress: bool = True,
                    resume: Path | None = None, freeze_batch_norm: bool = False) -> dict:
    """Train F-PointNet v1 and write ``out_dir/model.pt`` (weights + settings), ``train_log.jsonl``
    (one line per epoch), ``train_log.csv`` (one row per step), ``train_loss.png`` and
    ``checkpoint.pt`` (every ``checkpoint_every_epochs``, at the end and on SIGTERM/SIGINT).

    Args:
        data_root: KITTI root (labels, calib and image_2 sizes are read from it).
        points_dir: folder of velodyne-format clouds ``NNNNNN.bin`` to train on.
        frame_ids: training frames (a seeded ``holdout_fraction`` of them is held out).
        settings: the stage settings.
        out_dir: output folder (created).
        progress: show progress bars.
        resume: a ``checkpoint.pt`` of an interrupted run with the same settings (any world size).
        freeze_batch_norm: keep the batch norms in eval mode (running statistics, never updated)
            while training: makes a step independent of how the batch is split over ranks on CPU,
            where SyncBatchNorm does not exist (the DDP equivalence test uses it; training does not).

    Returns:
        Summary: frames (train / held out), frustums, epochs run, steps, samples, world_size,
        batch_per_rank and effective_batch (= ``batch_size``), seconds (data, training,
        total; ``cpu_seconds`` = process CPU time, a fairer figure on a shared machine), final losses, and the held-out metrics of :func:`evaluate_frustums` (keys
        prefixed ``holdout_``; measured on training frames when nothing is held out, with
        ``holdout_is_train`` set).

    Raises:
        KittiFormatError: missing or malformed inputs; ValueError: no training object found or
        a checkpoint with other settings; engine.TrainingInterrupted: SIGTERM/SIGINT (the
        checkpoint is written first).
    """
    t_start, cpu_start = time.time(), time.process_time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    root = KittiRoot(data_root)
    frame_ids = tuple(frame_ids)
    root.check(frame_ids, ("calib", "label_2", "image_2"))
    missing = [f for f in frame_ids if not (Path(points_dir) / f"{f}.bin").is_file()]
    if missing:
        raise KittiFormatError(Path(points_dir) / f"{missing[0]}.bin", None,
                               f"{len(missing)} cloud(s) of the training frames missing")
    device = select_device(settings.device)
    ctx = init_distributed(use_cuda=device.type == "cuda")
    if device.type == "cuda" and ctx.world > 1:
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    progress = progress and ctx.is_main
    if settings.num_threads and device.type == "cpu":
        torch.set_num_threads(settings.num_threads)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    gen = torch.Generator(device=device).manual_seed(settings.seed)

    train_ids, hold_ids = split_holdout(frame_ids, settings.holdout_fraction, settings.seed)
    data_rng = np.random.default_rng([settings.seed, 3])
    train_fr = collect_frustums(root, Path(points_dir), train_ids, settings, data_rng,
                                progress=progress, desc="train frustums")
    hold_fr = collect_frustums(root, Path(points_dir), hold_ids if ctx.is_main else (), settings,
                               data_rng, progress=progress, desc="held-out frustums")
    if not train_fr:
        raise ValueError(f"no training object of {settings.classes} with points in its 3D box "
                         f"in {len(train_ids)} frames of {points_dir}")
    t_data = time.time() - t_start

    model = build_model(settings).to(device)
    net: torch.nn.Module = model
    if ctx.world > 1:
        if device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
        torch.manual_seed(settings.seed + 1000 * ctx.rank)  # dropout: each rank its own draws
    n_items = len(train_fr) * settings.augment_x
    max_steps = settings.epochs * _steps_per_epoch(n_items, settings.batch_size, ctx.world)
    if settings.max_steps:
        max_steps = min(max_steps, settings.max_steps)
    ck = None
    if resume is not None:
        # on the CPU: RNG states stay CPU byte tensors; weights and optimiser state are copied
        # onto the parameters' device by load_state_dict
        ck = load_checkpoint(resume)
        if FPointNetSettings.from_dict(ck["settings"]) != settings:
            raise ValueError(f"{resume}: checkpoint was written with other settings")
        if "rank_rng" not in ck or "torch_cpu" not in ck["rank_rng"][0]:
            raise ValueError(f"{resume}: written by an earlier foresee (other random states): delete it to train "
                             "afresh")
    rows: list[dict] = list(ck.get("rows", [])) if ck else []
    csv_log = CsvLogHook(out_dir / "train_log.csv", ("step", "lr", "total", "seg", "center", "heading_class",
                                                     "heading_residual", "size_class", "size_residual",
                                                     "stage1_center", "corner", "seg_accuracy"), rows,
                         png_path=out_dir / "train_loss.png", curve=("total",), title="F-PointNet")
    bar = ProgressHook(max_steps, 0, progress, desc="F-PointNet train")
    trainer = _Trainer(model, net, train_fr, settings, device, ctx, max_steps,
                       [csv_log, bar], freeze_batch_norm, rng, gen, out_dir)

    def save(_trainer=None) -> None:
        rank_rng = _rank_rng_states(ctx, rng, gen)
        if ctx.is_main:
            save_checkpoint(out_dir / "checkpoint.pt", {
                "state_dict": model.state_dict(), "optimizer": trainer.opt.state_dict(), **trainer.state(),
                "rank_rng": rank_rng, "rows": rows, "settings": asdict(settings), "code_version": CODE_VERSION})
            csv_log.write()

    trainer.save = save
    trainer.hooks += [_EndEpochHook(), CheckpointHook(save, 0, all_ranks=True, at_end=False)]
    if ck is not None:
        model.load_state_dict(ck["state_dict"])
        trainer.opt.load_state_dict(ck["optimizer"])
        trainer.load_state(ck)
        ranks = ck["rank_rng"]
        restore_rng(ranks[ctx.rank] if len(ranks) == ctx.world else ranks[0], numpy={"batches": rng},
                    torch_gens={"model": gen})
        bar.bar.update(trainer.step)

    t_train = time.time()
    trainer.train()
    bar.close()
    t_train = time.time() - t_train
    log, steps, samples = trainer.log, trainer.step, trainer.samples
    if not ctx.is_main:
        close_distributed(ctx)
        return {"rank": ctx.rank, "world_size": ctx.world, "steps": steps, "samples": samples}
    atomic_write_text(out_dir / "train_log.jsonl", "".join(json.dumps(e) + "\n" for e in log))

    eval_set = hold_fr if hold_fr else train_fr
    metrics = evaluate_frustums(model, eval_set, settings, device)
    save_model(out_dir / "model.pt", model, settings)
    summary = {"frames_train": len(train_ids), "frames_holdout": len(hold_ids),
               "frustums_train": len(train_fr), "frustums_holdout": len(hold_fr),
               "epochs": len(log), "steps": steps, "samples": samples, "device": str(device),
               "world_size": ctx.world, "effective_batch": settings.batch_size,
               "batch_per_rank": [b - a for a, b in split_batch(settings.batch_size, ctx.world)],
               "seconds_data": round(t_data, 2), "seconds_train": round(t_train, 2),
               "seconds": round(time.time() - t_start, 2),
               "cpu_seconds": round(time.process_time() - cpu_start, 2),
               "final_loss": log[-1].get("total") if log else None,
               "final_train_seg_accuracy": log[-1].get("seg_accuracy") if log else None,
               "holdout_is_train": not hold_fr,
               **{f"holdout_{k}": v for k, v in metrics.items()}}
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=1))
    close_distributed(ctx)
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m detection.frustum_pointnet.train`` / torchrun entry (the cached CLI is
    ``foresee detect train``); prints the summary as JSON on rank 0."""
    import argparse

    from kitti.dist import entry_parser, run_entry, with_overrides
    from detection.frustum_pointnet.settings import preset

    p = entry_parser(__doc__, ("paper", "cpu-small"), points=True)
    p.add_argument("--freeze-batch-norm", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    run_entry(lambda: train_fpointnet(args.data, args.points, KittiRoot(args.data).split(args.split),
                                      with_overrides(preset(args.preset), args.overrides), args.out,
                                      progress=not args.quiet, resume=args.resume,
                                      freeze_batch_norm=args.freeze_batch_norm))


if __name__ == "__main__":
    main()
