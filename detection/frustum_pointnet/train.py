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
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from kitti.errors import KittiFormatError
from kitti.fileio import atomic_write_bytes, atomic_write_text
from kitti.layout import KittiRoot
from detection.frustum_pointnet import CODE_VERSION
from detection.frustum_pointnet.frustum import (ObjectFrustum, in_box2d_mask, object_frustums,
                                                training_sample)
from detection.frustum_pointnet.infer import (build_model, decode, read_frame_cloud, save_model,
                                              select_device, trivial_box)
from detection.frustum_pointnet.loss import FPointNetTargets, fpointnet_loss
from detection.frustum_pointnet.metrics import box_iou_3d
from detection.frustum_pointnet.model import FPointNetV1
from detection.frustum_pointnet.settings import FPointNetSettings


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
    for frame in tqdm(frame_ids, desc=desc, disable=not progress, unit="frame"):
        calib = root.calib(frame)
        cloud = read_frame_cloud(root, points_dir, frame, calib, settings)
        out.extend(object_frustums(frame, cloud, calib, root.labels(frame), settings, rng))
    return out


def make_batch(frustums: Sequence[ObjectFrustum], settings: FPointNetSettings,
               rng: np.random.Generator, device: torch.device, *, augment: bool
               ) -> tuple[torch.Tensor, torch.Tensor, FPointNetTargets, np.ndarray]:
    """Stack training samples: (points (B, N, 4), one-hot (B, 3), targets, rotations (B,))."""
    samples = [training_sample(f, settings, rng, augment=augment) for f in frustums]

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


def _save_checkpoint(path: Path, model: FPointNetV1, opt: torch.optim.Optimizer, epoch: int,
                     samples: int, steps: int, rng: np.random.Generator, gen: torch.Generator,
                     settings: FPointNetSettings, log: list[dict]) -> None:
    buf = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                "samples": samples, "steps": steps, "numpy_rng": rng.bit_generator.state,
                "torch_rng": gen.get_state(), "torch_global_rng": torch.get_rng_state(),
                "settings": asdict(settings), "log": log, "code_version": CODE_VERSION}, buf)
    atomic_write_bytes(path, buf.getvalue())


def train_fpointnet(data_root: Path, points_dir: Path, frame_ids: Sequence[str],
                    settings: FPointNetSettings, out_dir: Path, *, progress: bool = True,
                    resume: Path | None = None) -> dict:
    """Train F-PointNet v1 and write ``out_dir/model.pt`` (weights + settings), ``train_log.jsonl``
    and ``checkpoint.pt`` (every ``checkpoint_every_epochs`` and at the end).

    Args:
        data_root: KITTI root (labels, calib and image_2 sizes are read from it).
        points_dir: folder of velodyne-format clouds ``NNNNNN.bin`` to train on.
        frame_ids: training frames (a seeded ``holdout_fraction`` of them is held out).
        settings: the stage settings.
        out_dir: output folder (created).
        progress: show progress bars.
        resume: a ``checkpoint.pt`` of an interrupted run with the same settings.

    Returns:
        Summary: frames (train / held out), frustums, epochs run, steps, samples, seconds (data, training,
        total; ``cpu_seconds`` = process CPU time, a fairer figure on a shared machine), final losses, and the held-out metrics of :func:`evaluate_frustums` (keys
        prefixed ``holdout_``; measured on training frames when nothing is held out, with
        ``holdout_is_train`` set).

    Raises:
        KittiFormatError: missing or malformed inputs; ValueError: no training object found or
        a checkpoint with other settings.
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
    if settings.num_threads and device.type == "cpu":
        torch.set_num_threads(settings.num_threads)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    gen = torch.Generator(device=device).manual_seed(settings.seed)

    train_ids, hold_ids = split_holdout(frame_ids, settings.holdout_fraction, settings.seed)
    data_rng = np.random.default_rng([settings.seed, 3])
    train_fr = collect_frustums(root, Path(points_dir), train_ids, settings, data_rng,
                                progress=progress, desc="train frustums")
    hold_fr = collect_frustums(root, Path(points_dir), hold_ids, settings, data_rng,
                               progress=progress, desc="held-out frustums")
    if not train_fr:
        raise ValueError(f"no training object of {settings.classes} with points in its 3D box "
                         f"in {len(train_ids)} frames of {points_dir}")
    t_data = time.time() - t_start

    model = build_model(settings).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    start_epoch, samples, log, steps = 0, 0, [], 0
    if resume is not None:
        ck = torch.load(resume, map_location=device, weights_only=False)
        if FPointNetSettings.from_dict(ck["settings"]) != settings:
            raise ValueError(f"{resume}: checkpoint was written with other settings")
        model.load_state_dict(ck["state_dict"])
        opt.load_state_dict(ck["optimizer"])
        start_epoch, samples, log = ck["epoch"], ck["samples"], ck["log"]
        steps = ck.get("steps", 0)
        rng.bit_generator.state = ck["numpy_rng"]
        gen.set_state(ck["torch_rng"])
        torch.set_rng_state(ck["torch_global_rng"])

    t_train = time.time()

    def finished() -> bool:
        return bool(settings.max_steps) and steps >= settings.max_steps

    n_items = len(train_fr) * settings.augment_x
    for epoch in range(start_epoch, settings.epochs):
        if finished():
            break
        model.train()
        order = rng.permutation(n_items) % len(train_fr)
        sums: dict[str, float] = {}
        n_batches = 0
        bar = tqdm(range(0, n_items, settings.batch_size), desc=f"epoch {epoch + 1}/{settings.epochs}",
                   disable=not progress, unit="batch", leave=False)
        for start in bar:
            if finished():
                break
            idx = order[start:start + settings.batch_size]
            if len(idx) < 2:  # batch norm needs two samples
                continue
            lr, mom = schedule(settings, samples)
            for g in opt.param_groups:
                g["lr"] = lr
            model.set_bn_momentum(mom)
            pts, oh, tgt, _ = make_batch([train_fr[i] for i in idx], settings, rng, device, augment=True)
            out = model(pts, oh, generator=gen)
            terms = fpointnet_loss(out, tgt, model.mean_size_lwh, box_loss_weight=settings.box_loss_weight,
                                   corner_loss_weight=settings.corner_loss_weight)
            opt.zero_grad(set_to_none=True)
            terms.total.backward()
            opt.step()
            samples += len(idx)
            steps += 1
            n_batches += 1
            for name, value in terms._asdict().items():
                sums[name] = sums.get(name, 0.0) + float(value.detach())
            seg_acc = float((out.seg_logits.argmax(dim=2) == tgt.seg).float().mean())
            sums["seg_accuracy"] = sums.get("seg_accuracy", 0.0) + seg_acc
            bar.set_postfix(loss=f"{float(terms.total.detach()):.3f}", seg=f"{seg_acc:.3f}")
        entry = {"epoch": epoch + 1, "samples": samples, "lr": schedule(settings, samples)[0],
                 **{k: v / max(n_batches, 1) for k, v in sums.items()}}
        log.append(entry)
        atomic_write_text(out_dir / "train_log.jsonl", "".join(json.dumps(e) + "\n" for e in log))
        if ((epoch + 1) % settings.checkpoint_every_epochs == 0 or epoch + 1 == settings.epochs
                or finished()):
            _save_checkpoint(out_dir / "checkpoint.pt", model, opt, epoch + 1, samples, steps, rng,
                             gen, settings, log)
    t_train = time.time() - t_train
    atomic_write_text(out_dir / "train_log.jsonl", "".join(json.dumps(e) + "\n" for e in log))

    eval_set = hold_fr if hold_fr else train_fr
    metrics = evaluate_frustums(model, eval_set, settings, device)
    save_model(out_dir / "model.pt", model, settings)
    summary = {"frames_train": len(train_ids), "frames_holdout": len(hold_ids),
               "frustums_train": len(train_fr), "frustums_holdout": len(hold_fr),
               "epochs": len(log), "steps": steps, "samples": samples, "device": str(device),
               "seconds_data": round(t_data, 2), "seconds_train": round(t_train, 2),
               "seconds": round(time.time() - t_start, 2),
               "cpu_seconds": round(time.process_time() - cpu_start, 2),
               "final_loss": log[-1].get("total") if log else None,
               "final_train_seg_accuracy": log[-1].get("seg_accuracy") if log else None,
               "holdout_is_train": not hold_fr,
               **{f"holdout_{k}": v for k, v in metrics.items()}}
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=1))
    return summary
