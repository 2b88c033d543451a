"""Training of AVOD on any velodyne-format clouds (LiDAR or pseudo-LiDAR).

Reproduce (cpu-small on the embedded benchmark; see docs/avod.md)::

    foresee detect train --detector avod --data data/embedded --points data/embedded/training/velodyne

Batch 1 (one frame per step, as the original). The frames are visited in seeded random order,
epoch after epoch; frames without a labelled object of the class are skipped (AVOD skips frames
without anchors or labels). Each visit mirrors the frame with p = 0.5 (``flip``) and jitters the
image colours with p = 0.5 (``pca_jitter``, image view only). Adam with L2 weight decay, learning
rate ``learning_rate · lr_decay_rate ^ floor(step / lr_decay_steps)``. Anchor sizes: k-means on the
training frames' labels. Every frame's ground plane is written to ``out_dir/planes/``.

Loading: the visits (frame, flip, jitter α) are drawn from one seeded NumPy generator in the main
process (:func:`visit_plan`); :class:`AvodTrainSet` builds each visit's inputs from disk (cloud,
BEV maps, anchors, image) in ``num_workers`` DataLoader workers, so a GPU need not wait for the
main process. A checkpoint keeps the number of visits made; a resumed run replays the plan's draws
up to there (no file is read), so it continues exactly, with or without workers.

On CUDA the network runs under autocast (``engine.amp_for``: bf16, else fp16 with a GradScaler),
the loss in float32; on the CPU nothing changes.

Data-parallel (``torchrun --nproc_per_node=N -m detection.avod.train ...``, docs/scaling.md): a step
takes ``frames_per_step`` consecutive visits of the plan (default: the world size, one frame per
rank; 1 on one process, as the original), split over the ranks (:func:`kitti.dist.split_batch`),
each frame forwarded alone as before (batch norms see one frame on every world size); the step's
loss is the mean over its frames, DistributedDataParallel averaging the ranks' gradients. A step
one of whose frames has no anchor is skipped on every rank (with one frame per step: the frame is
skipped, as before). With more than one frame per step each frame's path-drop and mini-batch draws
come from a generator seeded by its visit number, so the step does not depend on which rank runs
which frame; dropout draws per rank. ``frames_per_step`` is not a setting: the cached stage trains
on one process, one frame per step; a torchrun run writes into ``--out`` and its summary records
``world_size`` and ``effective_batch``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from engine import (CheckpointHook, CsvLogHook, MeanLogHook, TrainerBase, amp_for, capture_rng, load_checkpoint,
                    restore_rng, save_checkpoint, setup_device)
from engine.progress import ProgressHook
from kitti.dist import DistContext, close_distributed, init_distributed, split_batch
from kitti.fileio import atomic_write_text
from kitti.layout import KittiRoot
from detection.avod import CODE_VERSION
from detection.avod.anchors import cluster_sizes
from detection.avod.data import FrameInputs, draw_jitter, label_boxes, load_frame, planes_dir_for
from detection.avod.encoding import boxes_to_anchors
from detection.avod.infer import frame_tensors, save_model
from detection.avod.loss import avod_loss
from detection.avod.model import AvodNet
from detection.avod.planes import write_plane_file
from detection.avod.settings import AvodSettings
from detection.runtime import check_frame_inputs, numpy_blas_one_thread

#: Steps averaged per line of ``train_log.jsonl``.
LOG_EVERY: int = 50


def learning_rate(settings: AvodSettings, step: int) -> float:
    """The staircase learning rate at ``step`` (0-based)."""
    return settings.learning_rate * settings.lr_decay_rate ** (step // settings.lr_decay_steps)


@dataclass(frozen=True)
class Visit:
    """One visit of a training frame: mirrored or not, and the colour jitter's α (or None)."""

    frame_id: str
    flip: bool
    jitter_alpha: np.ndarray | None


def visit_plan(frames: Sequence[str], settings: AvodSettings, start: int = 0) -> Iterator[Visit]:
    """The endless stream of visits from visit ``start`` on: seeded permutations of ``frames``,
    epoch after epoch, each visit mirrored with p = 0.5 (``flip``) and jittered with p = 0.5
    (``pca_jitter``, with an image); every draw from one ``default_rng(seed)``."""
    rng = np.random.default_rng(settings.seed)
    order: list[int] = []
    n = 0
    while True:
        if not order:
            order = rng.permutation(len(frames)).tolist()
        frame = frames[order.pop()]
        flip = bool(settings.flip and rng.random() < 0.5)
        jitter = settings.use_image and settings.pca_jitter and rng.random() < 0.5
        visit = Visit(frame, flip, draw_jitter(rng) if jitter else None)
        if n >= start:
            yield visit
        n += 1


class _Visits(torch.utils.data.Sampler):
    """The plan's visits from ``start`` on; of each step's ``per_step`` visits only the positions
    ``rows`` (a data-parallel rank's share; all of them on one process)."""

    def __init__(self, frames: Sequence[str], settings: AvodSettings, start: int, per_step: int = 1,
                 rows: tuple[int, int] = (0, 1)):
        self.frames, self.settings, self.start = tuple(frames), settings, start
        self.per_step, self.rows = per_step, rows

    def __iter__(self) -> Iterator[Visit]:
        a, b = self.rows
        for i, visit in enumerate(visit_plan(self.frames, self.settings, self.start)):
            if a <= i % self.per_step < b:
                yield visit


def visit_generator(seed: int, visit: int) -> torch.Generator:
    """The generator of visit number ``visit`` (path drop, mini-batches) when a step has several
    frames: the same on whichever rank runs the visit."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, 9, visit]).generate_state(1)[0]))


def _as_float(out):
    """The network's outputs with every floating tensor in float32 (the loss outside autocast)."""
    return dataclasses.replace(out, **{f.name: getattr(out, f.name).float() for f in dataclasses.fields(out)
                                       if torch.is_tensor(getattr(out, f.name))
                                       and getattr(out, f.name).is_floating_point()})


class AvodTrainSet(torch.utils.data.Dataset):
    """A visit -> its :class:`FrameInputs`, read from disk (each worker keeps the ground planes it
    fitted)."""

    def __init__(self, root: KittiRoot, points_dir: Path, settings: AvodSettings, sizes: np.ndarray):
        self.root, self.points_dir, self.settings, self.sizes = root, Path(points_dir), settings, sizes
        self.planes_dir = planes_dir_for(self.points_dir)
        self.planes: dict[str, np.ndarray] = {}

    def __getitem__(self, visit: Visit) -> FrameInputs:
        return load_frame(self.root, self.points_dir, visit.frame_id, self.settings, self.sizes, planes=self.planes,
                          planes_dir=self.planes_dir, flip=visit.flip, jitter_alpha=visit.jitter_alpha)


def _as_is(item):
    return item


class _Trainer(TrainerBase):
    def __init__(self, model: AvodNet, net: torch.nn.Module, loader, settings: AvodSettings, device: torch.device,
                 hooks, step: int, visits: int, out_dir: Path, ctx: DistContext, per_step: int):
        super().__init__(settings.steps, hooks, step=step, is_main=ctx.is_main)
        self.model, self.settings, self.device, self.out_dir = model, settings, device, out_dir
        self.net, self.ctx, self.per_step = net, ctx, per_step  # net: the DDP wrapper under torchrun
        self.rows = split_batch(per_step, ctx.world)[ctx.rank]
        self.opt = torch.optim.Adam(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
        self.amp = amp_for(device)
        self.scaler = self.amp.scaler()
        self.gen = torch.Generator().manual_seed(settings.seed)
        self.loader, self.batches = loader, None
        self.visits, self.anchors_total = visits, 0
        self.planes: dict[str, list[float]] = {}  # frame -> ground plane written to planes/

    def _note_plane(self, inputs: FrameInputs) -> None:
        if inputs.frame_id not in self.planes:
            plane = inputs.plane * np.array([-1.0, 1.0, 1.0, 1.0]) if inputs.flipped else inputs.plane
            if self.is_main:  # the other ranks' planes reach rank 0 with every checkpoint
                write_plane_file(self.out_dir / "planes" / f"{inputs.frame_id}.txt", plane)
            self.planes[inputs.frame_id] = plane.tolist()

    def run_step(self) -> dict | None:
        if self.batches is None:
            self.batches = iter(self.loader)
        ctx, k = self.ctx, self.per_step
        a, b = self.rows
        first = self.visits
        mine: list[FrameInputs] = [next(self.batches) for _ in range(b - a)]  # this rank's frames of the step
        self.visits += k
        for inputs in mine:
            self._note_plane(inputs)
        empty = sum(1 for inputs in mine if not len(inputs.anchors))
        if ctx.world > 1:
            flag = torch.tensor([float(empty)])
            torch.distributed.all_reduce(flag)
            empty = int(flag.item())
        if empty:  # a frame without anchors: the step is skipped on every rank
            return None
        settings, device = self.settings, self.device
        lr = learning_rate(settings, self.step)
        for g in self.opt.param_groups:
            g["lr"] = lr
        self.opt.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        for i, inputs in enumerate(mine):
            gen = self.gen if k == 1 else visit_generator(settings.seed, first + a + i)
            bev, image, anchors, geom = frame_tensors(inputs, device)
            gt = torch.from_numpy(inputs.gt_boxes).float().to(device)
            # the rank's frames accumulate; DDP averages the gradients at the last one's backward
            sync = self.net.no_sync() if ctx.world > 1 and i < len(mine) - 1 else contextlib.nullcontext()
            with sync:
                with self.amp.autocast():
                    out = self.net(bev, image, anchors, geom, gt_anchors=boxes_to_anchors(gt), generator=gen)
                if self.amp.enabled:
                    out = _as_float(out)
                terms = avod_loss(out, anchors, gt, torch.from_numpy(inputs.plane).float().to(device), settings, gen)
                # the step's mean over its k frames (DDP divides the ranks' sum by the world size)
                loss = terms.total if k == 1 else terms.total * (ctx.world / k)
                self.scaler.scale(loss).backward()
            for name, v in terms._asdict().items():
                x = float(v.detach() if torch.is_tensor(v) else v)
                sums[name] = sums[name] + x if name in sums else x
            self.anchors_total += len(inputs.anchors)
        self.scaler.step(self.opt)
        self.scaler.update()
        if k == 1:
            return {"lr": lr, **sums}
        names = list(sums)
        packed = torch.tensor([sums[n] for n in names], dtype=torch.float64)
        if ctx.world > 1:  # the step's figures over all its frames
            torch.distributed.all_reduce(packed)
        return {"lr": lr, **{n: v / k for n, v in zip(names, packed.tolist())}}


@numpy_blas_one_thread
def train_avod(data_root: Path, points_dir: Path, frame_ids: Sequence[str], settings: AvodSettings,
               out_dir: Path, *, progress: bool = True, resume: Path | None = None, num_workers: int = 0,
               frames_per_step: int | None = None) -> dict:
    """Train AVOD and write ``out_dir/model.pt``, ``train_log.jsonl`` (means of ``LOG_EVERY``
    steps), ``train_log.csv`` (every step), ``train_loss.png``, ``summary.json``, ``planes/`` and
    ``checkpoint.pt`` (every ``checkpoint_every`` steps, at the end and on SIGTERM/SIGINT).

    Args:
        data_root: KITTI root (calib, image_2, label_2).
        points_dir: folder of velodyne-format clouds ``NNNNNN.bin``.
        frame_ids: training frames.
        settings: the stage settings.
        out_dir: output folder (created).
        progress: show a progress bar.
        resume: a ``checkpoint.pt`` of a run with the same settings (``steps`` may be larger: a
            finished run is then trained further).
        num_workers: DataLoader worker processes building the frames (0: the main process; the
            trajectory is the same either way).
        frames_per_step: frames of one optimiser step, the global batch (None: the world size, so
            1 on one process); a multiple of the world size under torchrun.

    Returns:
        Summary: frames, frames_with_objects, steps, anchor_sizes_lwh, anchors_mean, seconds,
        cpu_seconds (process CPU time, the fairer figure on a shared machine), final loss terms
        (means over the last ``LOG_EVERY`` steps), device; with several frames per step also
        world_size, effective_batch (frames per step) and batch_per_rank.

    Raises:
        KittiFormatError: missing inputs; ValueError: no labelled object, or a checkpoint with
        other settings; engine.TrainingInterrupted: SIGTERM/SIGINT (the checkpoint is written first).
    """
    t_start, cpu_start = time.time(), time.process_time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    root = KittiRoot(data_root)
    frame_ids = tuple(frame_ids)
    check_frame_inputs(root, frame_ids, points_dir, ("calib", "label_2", "image_2"))
    device = setup_device(settings.device, settings.num_threads)
    ctx = init_distributed(use_cuda=device.type == "cuda")
    per_step = ctx.world if frames_per_step is None else int(frames_per_step)
    if per_step < 1 or per_step % ctx.world:
        close_distributed(ctx)
        raise ValueError(f"frames_per_step {per_step} (the global batch) is not a positive multiple of the "
                         f"{ctx.world} ranks")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    progress = progress and ctx.is_main
    torch.manual_seed(settings.seed)

    used = tuple(f for f in frame_ids if len(label_boxes(root, f, settings)))
    if not used:
        raise ValueError(f"no labelled {settings.class_name} inside the BEV area in {len(frame_ids)} frames")
    sizes = cluster_sizes([o for f in used for o in root.labels(f)], settings.class_name,
                          settings.anchor_sizes, seed=settings.seed)
    model = AvodNet(settings).to(device)
    net: torch.nn.Module = model
    if ctx.world > 1:
        # no SyncBatchNorm: every frame is normalised alone, as on one process; path drop leaves
        # the image or the BEV branch unused in some steps
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)
        torch.manual_seed(settings.seed + 1000 * ctx.rank)  # dropout: each rank its own draws
    step, log, rows, visits, ck = 0, [], [], 0, None
    if resume is not None:
        ck = load_checkpoint(resume)
        if AvodSettings.from_dict(ck["settings"]).with_(steps=settings.steps) != settings:
            raise ValueError(f"{resume}: checkpoint was written with other settings (only steps may differ)")
        if "visits" not in ck:
            raise ValueError(f"{resume}: written by an earlier foresee (no visit count): delete it to train afresh")
        if ck.get("frames_per_step", 1) != per_step:
            raise ValueError(f"{resume}: checkpoint was written with {ck.get('frames_per_step', 1)} frames per step, "
                             f"this run takes {per_step}")
        model.load_state_dict(ck["state_dict"])
        step, log, rows, visits = ck["step"], ck["log"], ck["rows"], ck["visits"]
        sizes = np.array(ck["anchor_sizes_lwh"])

    loader = torch.utils.data.DataLoader(
        AvodTrainSet(root, Path(points_dir), settings, sizes), batch_size=None,
        sampler=_Visits(used, settings, visits, per_step, split_batch(per_step, ctx.world)[ctx.rank]),
        num_workers=num_workers, collate_fn=_as_is,
        generator=torch.Generator().manual_seed(settings.seed))  # its own: the loader's seed draw
    # must not advance the global generator (dropout)
    csv_log = CsvLogHook(out_dir / "train_log.csv", ("step", "lr", "total", "rpn_cls", "rpn_reg", "cls", "box",
                                                     "ang", "rpn_positives", "positives"), rows,
                         png_path=out_dir / "train_loss.png", curve=("total",), title="AVOD")
    mean_log = MeanLogHook(out_dir / "train_log.jsonl", LOG_EVERY, log, digits=5,
                           state=ck.get("mean_log") if ck else None)
    bar = ProgressHook(settings.steps, step, progress, desc="avod train")

    def save(trainer: _Trainer) -> None:  # on every rank: it gathers the ranks' random states and planes
        rng = capture_rng(torch_gens={"model": trainer.gen})
        extra = {}
        if ctx.world > 1:
            gathered: list = [None] * ctx.world
            torch.distributed.all_gather_object(gathered, (rng, trainer.planes))
            extra["rank_rng"] = [g[0] for g in gathered]
            for _, planes in gathered:
                for frame, plane in planes.items():
                    if frame not in trainer.planes:
                        trainer.planes[frame] = plane
                        if ctx.is_main:
                            write_plane_file(out_dir / "planes" / f"{frame}.txt", np.array(plane))
        if not ctx.is_main:
            return
        save_checkpoint(out_dir / "checkpoint.pt", {
            "state_dict": model.state_dict(), "optimizer": trainer.opt.state_dict(), "step": trainer.step,
            "visits": trainer.visits, "rng": rng, "frames_per_step": per_step, **extra,
            "settings": asdict(settings), "anchor_sizes_lwh": sizes.tolist(), "log": log, "rows": rows,
            "mean_log": mean_log.state(), "planes": trainer.planes, "code_version": CODE_VERSION})
        csv_log.write()

    trainer = _Trainer(model, net, loader, settings, device,
                       [csv_log, mean_log, bar, CheckpointHook(save, settings.checkpoint_every, all_ranks=True)],
                       step, visits, out_dir, ctx, per_step)
    if ck is not None:
        trainer.opt.load_state_dict(ck["optimizer"])
        ranks = ck.get("rank_rng")  # each rank its own states when the world size is the checkpoint's
        restore_rng(ranks[ctx.rank] if ranks and len(ranks) == ctx.world else ck["rng"],
                    torch_gens={"model": trainer.gen})
        for frame, plane in ck["planes"].items():  # the interrupted run's planes/ is not this folder
            if ctx.is_main:
                write_plane_file(out_dir / "planes" / f"{frame}.txt", np.array(plane))
            trainer.planes[frame] = plane
    model.train()
    trainer.train()
    bar.close()
    step = trainer.step
    if not ctx.is_main:
        close_distributed(ctx)
        return {"rank": ctx.rank, "world_size": ctx.world, "steps": step}
    mean_log.write()
    save_model(out_dir / "model.pt", model, settings, sizes)
    last = log[-1] if log else {}
    summary = {"frames": len(frame_ids), "frames_with_objects": len(used), "steps": step,
               "anchor_sizes_lwh": np.round(sizes, 4).tolist(),
               "anchors_mean": round(trainer.anchors_total / max(step, 1), 1) if trainer.anchors_total else None,
               "device": str(device), "seconds": round(time.time() - t_start, 2),
               "cpu_seconds": round(time.process_time() - cpu_start, 2),
               **{f"final_{k}": v for k, v in last.items() if k not in ("step", "lr")}}
    if ctx.world > 1 or per_step > 1:
        summary.update(world_size=ctx.world, effective_batch=per_step,
                       batch_per_rank=[b - a for a, b in split_batch(per_step, ctx.world)])
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=1))
    close_distributed(ctx)
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m detection.avod.train`` / torchrun entry (the cached CLI is ``foresee detect train
    --detector avod``); prints the summary as JSON on rank 0."""
    from kitti.dist import entry_parser, run_entry, with_overrides
    from detection.avod.settings import PRESETS, preset

    p = entry_parser(__doc__, PRESETS, points=True)
    p.add_argument("--frames-per-step", type=int, default=None,
                   help="Frames of one step, the global batch (default: the world size).")
    p.add_argument("--num-workers", type=int, default=0)
    args = p.parse_args(argv)
    run_entry(lambda: train_avod(args.data, args.points, KittiRoot(args.data).split(args.split),
                                 with_overrides(preset(args.preset), args.overrides), args.out,
                                 progress=not args.quiet, resume=args.resume, num_workers=args.num_workers,
                                 frames_per_step=args.frames_per_step))


if __name__ == "__main__":
    main()
