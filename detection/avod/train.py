"""Training of AVOD on any velodyne-format clouds (LiDAR or pseudo-LiDAR).

Reproduce (cpu-small on the embedded benchmark; see docs/avod.md)::

    foresee detect train --detector avod --data data/embedded --points data/embedded/training/velodyne

Batch 1 (one frame per step, as the original). The frames are visited in seeded random order,
epoch after epoch; frames without a labelled object of the class are skipped (AVOD skips frames
without anchors or labels). Each visit mirrors the frame with p = 0.5 (``flip``) and jitters the
image colours with p = 0.5 (``pca_jitter``, image view only). Adam with L2 weight decay, learning
rate ``learning_rate · lr_decay_rate ^ floor(step / lr_decay_steps)``. Anchor sizes: k-means on the
training frames' labels. Every frame's ground plane is written to ``out_dir/planes/``.
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

from kitti.fileio import atomic_write_bytes, atomic_write_text
from kitti.layout import KittiRoot
from detection.avod import CODE_VERSION
from detection.avod.anchors import cluster_sizes
from detection.avod.data import label_boxes, load_frame, planes_dir_for
from detection.avod.encoding import boxes_to_anchors
from detection.avod.infer import frame_tensors, save_model
from detection.avod.loss import avod_loss
from detection.avod.model import AvodNet
from detection.avod.planes import write_plane_file
from detection.avod.settings import AvodSettings
from detection.runtime import check_frame_inputs, setup_device

#: Steps averaged per line of ``train_log.jsonl``.
LOG_EVERY: int = 50


def learning_rate(settings: AvodSettings, step: int) -> float:
    """The staircase learning rate at ``step`` (0-based)."""
    return settings.learning_rate * settings.lr_decay_rate ** (step // settings.lr_decay_steps)


def _save_checkpoint(path: Path, model: AvodNet, opt: torch.optim.Optimizer, step: int, rng: np.random.Generator,
                     gen: torch.Generator, settings: AvodSettings, sizes: np.ndarray, log: list[dict]) -> None:
    buf = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                "numpy_rng": rng.bit_generator.state, "torch_rng": gen.get_state(),
                "torch_global_rng": torch.get_rng_state(), "settings": asdict(settings),
                "anchor_sizes_lwh": sizes.tolist(), "log": log, "code_version": CODE_VERSION}, buf)
    atomic_write_bytes(path, buf.getvalue())


def train_avod(data_root: Path, points_dir: Path, frame_ids: Sequence[str], settings: AvodSettings,
               out_dir: Path, *, progress: bool = True, resume: Path | None = None) -> dict:
    """Train AVOD and write ``out_dir/model.pt``, ``train_log.jsonl``, ``summary.json``,
    ``planes/`` and ``checkpoint.pt`` (every ``checkpoint_every`` steps and at the end).

    Args:
        data_root: KITTI root (calib, image_2, label_2).
        points_dir: folder of velodyne-format clouds ``NNNNNN.bin``.
        frame_ids: training frames.
        settings: the stage settings.
        out_dir: output folder (created).
        progress: show a progress bar.
        resume: a ``checkpoint.pt`` of a run with the same settings (``steps`` may be larger: a
            finished run is then trained further).

    Returns:
        Summary: frames, frames_with_objects, steps, anchor_sizes_lwh, anchors_mean, seconds,
        cpu_seconds (process CPU time, the fairer figure on a shared machine), final loss terms
        (means over the last ``LOG_EVERY`` steps), device.

    Raises:
        KittiFormatError: missing inputs; ValueError: no labelled object, or a checkpoint with
        other settings.
    """
    t_start, cpu_start = time.time(), time.process_time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    root = KittiRoot(data_root)
    frame_ids = tuple(frame_ids)
    check_frame_inputs(root, frame_ids, points_dir, ("calib", "label_2", "image_2"))
    device = setup_device(settings.device, settings.num_threads)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)

    used = tuple(f for f in frame_ids if len(label_boxes(root, f, settings)))
    if not used:
        raise ValueError(f"no labelled {settings.class_name} inside the BEV area in {len(frame_ids)} frames")
    sizes = cluster_sizes([o for f in used for o in root.labels(f)], settings.class_name,
                          settings.anchor_sizes, seed=settings.seed)
    model = AvodNet(settings).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    step, log = 0, []
    if resume is not None:
        ck = torch.load(resume, map_location=device, weights_only=False)
        if AvodSettings.from_dict(ck["settings"]).with_(steps=settings.steps) != settings:
            raise ValueError(f"{resume}: checkpoint was written with other settings (only steps may differ)")
        model.load_state_dict(ck["state_dict"])
        opt.load_state_dict(ck["optimizer"])
        step, log = ck["step"], ck["log"]
        sizes = np.array(ck["anchor_sizes_lwh"])
        rng.bit_generator.state = ck["numpy_rng"]
        gen.set_state(ck["torch_rng"])
        torch.set_rng_state(ck["torch_global_rng"])

    planes: dict[str, np.ndarray] = {}
    planes_dir = planes_dir_for(Path(points_dir))
    sums: dict[str, float] = {}
    n_sum = 0
    anchors_total = 0
    order: list[int] = []
    model.train()
    bar = tqdm(total=settings.steps, initial=step, desc="avod train", disable=not progress, unit="step")
    while step < settings.steps:
        if not order:
            order = rng.permutation(len(used)).tolist()
        frame = used[order.pop()]
        flip = bool(settings.flip and rng.random() < 0.5)
        jitter = rng if (settings.use_image and settings.pca_jitter and rng.random() < 0.5) else None
        known = frame in planes
        inputs = load_frame(root, Path(points_dir), frame, settings, sizes, planes=planes, planes_dir=planes_dir,
                            flip=flip, jitter_rng=jitter)
        if not known:
            write_plane_file(out_dir / "planes" / f"{frame}.txt", planes[frame])
        if not len(inputs.anchors):
            continue
        for g in opt.param_groups:
            g["lr"] = learning_rate(settings, step)
        bev, image, anchors, geom = frame_tensors(inputs, device)
        gt = torch.from_numpy(inputs.gt_boxes).float().to(device)
        out = model(bev, image, anchors, geom, gt_anchors=boxes_to_anchors(gt), generator=gen)
        terms = avod_loss(out, anchors, gt, torch.from_numpy(inputs.plane).float().to(device), settings, gen)
        opt.zero_grad(set_to_none=True)
        terms.total.backward()
        opt.step()
        step += 1
        anchors_total += len(inputs.anchors)
        bar.update(1)
        for name, value in terms._asdict().items():
            sums[name] = sums.get(name, 0.0) + float(value.detach() if torch.is_tensor(value) else value)
        n_sum += 1
        if step % LOG_EVERY == 0 or step == settings.steps:
            entry = {"step": step, "lr": learning_rate(settings, step - 1),
                     **{k: round(v / n_sum, 5) for k, v in sums.items()}}
            log.append(entry)
            bar.set_postfix(loss=f"{entry['total']:.3f}", pos=f"{entry['positives']:.1f}")
            sums, n_sum = {}, 0
            atomic_write_text(out_dir / "train_log.jsonl", "".join(json.dumps(e) + "\n" for e in log))
        if step % settings.checkpoint_every == 0 or step == settings.steps:
            _save_checkpoint(out_dir / "checkpoint.pt", model, opt, step, rng, gen, settings, sizes, log)
    bar.close()
    atomic_write_text(out_dir / "train_log.jsonl", "".join(json.dumps(e) + "\n" for e in log))
    save_model(out_dir / "model.pt", model, settings, sizes)
    last = log[-1] if log else {}
    summary = {"frames": len(frame_ids), "frames_with_objects": len(used), "steps": step,
               "anchor_sizes_lwh": np.round(sizes, 4).tolist(),
               "anchors_mean": round(anchors_total / max(step, 1), 1) if anchors_total else None,
               "device": str(device), "seconds": round(time.time() - t_start, 2),
               "cpu_seconds": round(time.process_time() - cpu_start, 2),
               **{f"final_{k}": v for k, v in last.items() if k not in ("step", "lr")}}
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=1))
    return summary
