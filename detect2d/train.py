"""Training of the 2D detector on a split's label_2 boxes.

Reproduce (cpu-small on the embedded benchmark; figures in docs/detect2d.md)::

    foresee detect2d train --data data/embedded --split train --preset cpu-small

Every image is read once, scaled by ``image_scale`` and kept in memory (300 frames of 621x188:
~100 MB). Step ``s`` takes the images ``s*B … s*B+B-1`` of a stream of seeded per-epoch
permutations and mirrors each with p = 0.5 (seeded by the step), so an interrupted run resumes
exactly where it stopped. Optimiser: AdamW, linear warm-up then cosine decay to 0, gradient norm
clipped at 10. Losses are torchvision's (the model returns them in training mode).
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
from tqdm import tqdm

from kitti.fileio import atomic_write_bytes, atomic_write_text
from kitti.layout import KittiRoot

from detect2d import CODE_VERSION
from detect2d.data import TrainFrame, load_train_frames
from detect2d.model import build_detector
from detect2d.settings import Detect2DSettings


class CheckpointMismatchError(ValueError):
    """A resume checkpoint was written with other settings."""


def select_device(name: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    return torch.device(name)


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


def _save_checkpoint(path: Path, model, opt, step: int, log: list[dict], settings: Detect2DSettings,
                     cpu_seconds: float) -> None:
    buf = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                "log": log, "settings": asdict(settings), "cpu_seconds": cpu_seconds,
                "torch_rng": torch.get_rng_state(), "code_version": CODE_VERSION}, buf)
    atomic_write_bytes(path, buf.getvalue())


def train_detector(data_root: Path, frame_ids: Sequence[str], settings: Detect2DSettings,
                   out_dir: Path, *, progress: bool = True, resume: Path | None = None,
                   encoder: torch.nn.Module | None = None) -> dict:
    """Train the detector and write ``out_dir/model.pt``, ``train_log.jsonl``, ``summary.json``
    and (every ``checkpoint_every_steps`` and at the end) ``checkpoint.pt``.

    Args:
        data_root: KITTI-format root (image_2, label_2, calib).
        frame_ids: training frames.
        settings: the stage settings (``settings.settings_key`` decides the artifact).
        out_dir: output folder (created).
        progress: show progress bars.
        resume: a ``checkpoint.pt`` of an interrupted run with the same settings.
        encoder: an encoder module to use instead of ``settings.encoder`` (tests).

    Returns:
        Summary: frames, label counts (positives, ignored regions, background, unknown types
        skipped), steps, final loss terms, seconds (data, training, total) and ``cpu_seconds``
        (process CPU time of this run plus the interrupted runs it resumed).

    Raises:
        KittiFormatError: missing or malformed inputs, a refused image; CheckpointMismatchError:
        a resume checkpoint with other settings.
    """
    t0, cpu0 = time.time(), time.process_time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = select_device(settings.device)
    if settings.num_threads and device.type == "cpu":
        torch.set_num_threads(settings.num_threads)
    torch.manual_seed(settings.seed)
    root = KittiRoot(data_root)
    frames, reference_hw, counts = load_train_frames(root, frame_ids, settings, progress=progress)
    t_data = time.time() - t0

    model = build_detector(settings, encoder=encoder).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    step, log, cpu_before = 0, [], 0.0
    resumed_from = None
    if resume is not None:
        ck = torch.load(resume, map_location=device, weights_only=False)
        if Detect2DSettings.from_dict(ck["settings"]) != settings:
            raise CheckpointMismatchError(f"{resume}: checkpoint was written with other settings")
        model.load_state_dict(ck["state_dict"])
        opt.load_state_dict(ck["optimizer"])
        step, log, cpu_before = ck["step"], ck["log"], ck.get("cpu_seconds", 0.0)
        torch.set_rng_state(ck["torch_rng"])
        resumed_from = step

    t_train = time.time()
    model.train()
    bar = tqdm(total=settings.max_steps, initial=step, desc="train 2D detector", unit="step",
               disable=not progress)
    sums: dict[str, float] = {}
    while step < settings.max_steps:
        idx = batch_indices(step, len(frames), settings.batch_size, settings.seed)
        flips = (np.random.default_rng([settings.seed, 1, step]).random(len(idx)) < 0.5) & settings.hflip
        crop_x0 = None
        if settings.train_crop_width:
            room = max(frames[0].image.shape[1] - settings.train_crop_width, 0)
            crop_x0 = np.random.default_rng([settings.seed, 2, step]).integers(0, room + 1, len(idx))
        images, targets = make_batch([frames[i] for i in idx], flips.tolist(), device, crop_x0,
                                     settings.train_crop_width)
        lr = learning_rate(settings, step)
        for g in opt.param_groups:
            g["lr"] = lr
        losses = model(images, targets)
        total = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        opt.step()
        step += 1
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
        sums["total"] = sums.get("total", 0.0) + float(total.detach())
        sums["n"] = sums.get("n", 0) + 1
        bar.update(1)
        bar.set_postfix(loss=f"{float(total.detach()):.3f}", lr=f"{lr:.1e}")
        if step % settings.checkpoint_every_steps == 0 or step == settings.max_steps:
            n = sums.pop("n")
            log.append({"step": step, "lr": lr, **{k: v / n for k, v in sums.items()}})
            sums = {}
            atomic_write_text(out_dir / "train_log.jsonl", "".join(json.dumps(e) + "\n" for e in log))
            _save_checkpoint(out_dir / "checkpoint.pt", model, opt, step, log, settings,
                             cpu_before + time.process_time() - cpu0)
    bar.close()
    t_train = time.time() - t_train
    atomic_write_text(out_dir / "train_log.jsonl", "".join(json.dumps(e) + "\n" for e in log))
    save_model(out_dir / "model.pt", model, settings, reference_hw)
    summary = {"frames": len(frames), "reference_hw": list(reference_hw),
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
               "resumed_from_step": resumed_from}
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=1))
    return summary
