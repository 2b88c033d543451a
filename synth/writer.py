"""Render a whole KITTI-format dataset: frames in a process pool, files written atomically.

Layout written (``ROOT`` = ``out_root``)::

    ROOT/training/image_2/NNNNNN.png   RGB, 8 bit
    ROOT/training/calib/NNNNNN.txt     the real KITTI calibration (2011_09_26 rig), P2 scaled with the image
    ROOT/training/label_2/NNNNNN.txt   labels computed from the render
    ROOT/training/velodyne/NNNNNN.bin  float32 (x, y, z, reflectance), velodyne frame
    ROOT/training/depth_2/NNNNNN.png   dense depth, uint16 depth·256, 0 = sky
    ROOT/ImageSets/{train,val,trainval}.txt
    ROOT/synth.json                    settings, code version and the summary
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from importlib import resources
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np

from kitti.calib import Calibration
from kitti.depth_io import encode_depth_png
from kitti.errors import MissingDependencyError
from kitti.fileio import atomic_write_bytes, atomic_write_text
from kitti.labels import format_label_lines
from kitti.progress import tqdm_disable
from synth.settings import KITTI_IMAGE_HW, SynthSettings

#: Depth histogram bins of the summary (metres), as in the paper's Fig. 2 (0 … 80 m).
HIST_EDGES_M = np.arange(0.0, 81.0, 1.0)
#: Classes whose 2D boxes make the foreground (ForeSeE's evaluation boxes).
_FG_CLASSES = ("Car", "Van", "Truck", "Pedestrian", "Cyclist", "Tram")


def template_calibration(image_scale: float = 1.0) -> Calibration:
    """The bundled real KITTI calibration (frame 000001 of KITTI object training, 2011_09_26 rig),
    with P0..P3's first two rows scaled by ``image_scale`` for a smaller image."""
    ref = resources.files("synth") / "calib_template.txt"
    with resources.as_file(ref) as p:
        calib = Calibration.from_file(p)
    if image_scale == 1.0:
        return calib
    mats = {}
    for key in ("P0", "P1", "P2", "P3"):
        m = np.array(getattr(calib, key))
        m[:2] *= image_scale
        mats[key] = m
    return Calibration(R0_rect=calib.R0_rect, Tr_velo_to_cam=calib.Tr_velo_to_cam,
                       Tr_imu_to_velo=calib.Tr_imu_to_velo, **mats)


@dataclass(frozen=True)
class FrameJob:
    """One frame to render: its id, split (0 train, 1 val), drive and index in the split."""

    frame_id: str
    split: int
    drive: int
    index: int


def frame_jobs(settings: SynthSettings) -> list[FrameJob]:
    """All frames: train ids first (000000 …), then val; drives are runs of ``frames_per_drive``."""
    jobs = []
    n = 0
    for split, count in ((0, settings.frames_train), (1, settings.frames_val)):
        for i in range(count):
            jobs.append(FrameJob(f"{n:06d}", split, i // settings.frames_per_drive, i))
            n += 1
    return jobs


def _rngs(settings: SynthSettings, job: FrameJob) -> tuple[np.random.Generator, np.random.Generator]:
    style = np.random.default_rng(np.random.SeedSequence([settings.seed, job.split, job.drive, 1]))
    frame = np.random.default_rng(np.random.SeedSequence([settings.seed, job.split, job.drive, 2, job.index]))
    return style, frame


def render_one(settings: SynthSettings, job: FrameJob):
    """Scene, render and labels of one frame (nothing written). Returns (scene, frame, labels, calib)."""
    from synth.labels import labels_from_render
    from synth.render import render_frame
    from synth.scene import generate_scene, sample_drive_style

    style_rng, rng = _rngs(settings, job)
    style = sample_drive_style(style_rng)
    scene = generate_scene(style, rng, density=settings.object_density)
    calib = template_calibration(settings.image_scale)
    seed = int(rng.integers(0, 2**31))
    frame = render_frame(scene, calib, settings.image_hw, rng, noise=settings.image_noise, seed=seed,
                         azimuth_step_deg=settings.lidar_azimuth_step_deg,
                         max_range_m=settings.lidar_max_range_m)
    labels = labels_from_render(scene, frame, calib, min_visible_px=settings.min_visible_px,
                                min_box_height_px=settings.min_box_height_px,
                                max_label_depth_m=settings.max_label_depth_m)
    return scene, frame, labels, calib


def _write_frame(out_root: Path, settings: SynthSettings, job: FrameJob) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    scene, frame, labels, calib = render_one(settings, job)
    base = out_root / "training"
    fid = job.frame_id
    ok, png = cv2.imencode(".png", cv2.cvtColor(frame.image_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    atomic_write_bytes(base / "image_2" / f"{fid}.png", png.tobytes())
    atomic_write_text(base / "calib" / f"{fid}.txt", calib.to_text())
    atomic_write_text(base / "label_2" / f"{fid}.txt", format_label_lines([o.label for o in labels]))
    atomic_write_bytes(base / "velodyne" / f"{fid}.bin", np.ascontiguousarray(frame.points_velo, "<f4").tobytes())
    atomic_write_bytes(base / "depth_2" / f"{fid}.png", encode_depth_png(frame.depth_m))
    return frame_stats(frame, labels, time.perf_counter() - t0, time.process_time() - c0)


def frame_stats(frame, labels, seconds: float, cpu_seconds: float = float("nan")) -> dict:
    """Per-frame numbers of the summary: foreground pixels, depth histograms, label counts."""
    h, w = frame.depth_m.shape
    fg = np.zeros((h, w), dtype=bool)
    counts: dict[str, int] = {}
    for o in labels:
        lab = o.label
        counts[lab.type] = counts.get(lab.type, 0) + 1
        if lab.type in _FG_CLASSES:
            fg[int(lab.y1):int(lab.y2) + 1, int(lab.x1):int(lab.x2) + 1] = True
    d = frame.depth_m
    valid = d > 0
    return {
        "pixels": int(h * w),
        "fg_pixels": int(fg.sum()),
        "hist_fg": np.histogram(d[fg & valid], HIST_EDGES_M)[0].tolist(),
        "hist_bg": np.histogram(d[~fg & valid], HIST_EDGES_M)[0].tolist(),
        "fg_valid": int((fg & valid).sum()),
        "bg_valid": int((~fg & valid).sum()),
        "fg_under_16m": int((fg & valid & (d < 16)).sum()),
        "bg_under_16m": int((~fg & valid & (d < 16)).sum()),
        "labels": counts,
        "points": int(frame.points_velo.shape[0]),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
    }


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def _summarise(stats: list[dict], seconds: float, workers: int) -> dict:
    n = len(stats)
    pixels = sum(s["pixels"] for s in stats) or 1
    labels: dict[str, int] = {}
    for s in stats:
        for k, v in s["labels"].items():
            labels[k] = labels.get(k, 0) + v
    hist_fg = np.sum([s["hist_fg"] for s in stats], axis=0) if stats else np.zeros(len(HIST_EDGES_M) - 1)
    hist_bg = np.sum([s["hist_bg"] for s in stats], axis=0) if stats else np.zeros(len(HIST_EDGES_M) - 1)
    fg_valid = sum(s["fg_valid"] for s in stats) or 1
    bg_valid = sum(s["bg_valid"] for s in stats) or 1
    return {
        "frames": n,
        "seconds": round(seconds, 2),
        "workers": workers,
        "frames_per_s": round(n / seconds, 3) if seconds > 0 else None,
        "seconds_per_frame_per_worker": round(sum(s["seconds"] for s in stats) / max(n, 1), 3),
        # CPU time of the rendering process per frame: the figure least affected by other load
        "cpu_seconds_per_frame": round(sum(s["cpu_seconds"] for s in stats) / max(n, 1), 3),
        "fg_fraction": round(sum(s["fg_pixels"] for s in stats) / pixels, 4),
        "fg_under_16m": round(sum(s["fg_under_16m"] for s in stats) / fg_valid, 4),
        "bg_under_16m": round(sum(s["bg_under_16m"] for s in stats) / bg_valid, 4),
        "labels": dict(sorted(labels.items())),
        "labels_per_frame": {k: round(v / max(n, 1), 3) for k, v in sorted(labels.items())},
        "points_per_scan": round(sum(s["points"] for s in stats) / max(n, 1)),
        "hist_edges_m": HIST_EDGES_M.tolist(),
        "hist_fg": [int(v) for v in hist_fg],
        "hist_bg": [int(v) for v in hist_bg],
    }


def dataset_is_current(out_root: Path, settings: SynthSettings) -> bool:
    """True when ``out_root`` holds a complete render of ``settings`` by this code version
    (``synth.json`` matches and every frame's five files exist)."""
    from synth import CODE_VERSION

    meta_path = Path(out_root) / "synth.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    if meta.get("code_version") != CODE_VERSION or meta.get("settings") != asdict(settings):
        return False
    base = Path(out_root) / "training"
    for job in frame_jobs(settings):
        for kind, ext in (("image_2", "png"), ("calib", "txt"), ("label_2", "txt"), ("velodyne", "bin"),
                          ("depth_2", "png")):
            if not (base / kind / f"{job.frame_id}.{ext}").is_file():
                return False
    return True


def require_open3d() -> None:
    """Import open3d (the renderer's ray caster) here, before any worker starts, or stop with one
    line saying why: a machine without libusb-1.0 would otherwise get an ImportError traceback
    from every worker process."""
    try:
        import open3d  # noqa: F401
    except (ImportError, OSError) as e:
        first = (str(e).splitlines() or [type(e).__name__])[0]
        hint = ("; open3d needs the system library libusb-1.0 (e.g. 'sudo apt-get install libusb-1.0-0')"
                if "libusb" in str(e) else "")
        raise MissingDependencyError(f"open3d cannot be imported ({first}){hint}") from None


def render_dataset(out_root: Path, settings: SynthSettings, *, workers: int = 2, progress: bool = True) -> dict:
    """Render the embedded benchmark into ``out_root`` (KITTI layout, see module docstring).

    Deterministic: the same settings give byte-identical files, whatever ``workers``
    (``synth.json`` holds timings and differs). With ``workers > 1`` frames render in a
    ``spawn`` process pool, so a calling script needs the usual ``if __name__ == "__main__":``
    guard.

    Args:
        out_root: dataset root (created; existing frames with the same ids are overwritten).
        settings: what to render.
        workers: processes rendering frames in parallel (<= 1: in this process).
        progress: show a tqdm progress bar.

    Returns:
        The summary also stored in ``ROOT/synth.json``: frames, seconds, frames_per_s,
        fg_fraction (pixels inside the 2D boxes of Car/Van/Truck/Pedestrian/Cyclist), label
        counts, points per scan, fg/bg depth histograms (1 m bins, 0-80 m).
    """
    from tqdm import tqdm

    require_open3d()
    out_root = Path(out_root)
    jobs = frame_jobs(settings)
    for kind in ("image_2", "calib", "label_2", "velodyne", "depth_2"):
        (out_root / "training" / kind).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    stats: list[dict] = []
    bar = tqdm(total=len(jobs), desc="synth", unit="frame", disable=tqdm_disable(progress))
    if workers <= 1:
        for job in jobs:
            stats.append(_write_frame(out_root, settings, job))
            bar.update(1)
    else:
        # one thread per worker process: the workers are the parallelism (set for the children only)
        saved = {k: os.environ.get(k) for k in _THREAD_VARS}
        os.environ.update({k: "1" for k in _THREAD_VARS})
        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
                futures = [pool.submit(_write_frame, out_root, settings, job) for job in jobs]
                for fut in futures:
                    stats.append(fut.result())
                    bar.update(1)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    bar.close()
    seconds = time.perf_counter() - t0
    train = [j.frame_id for j in jobs if j.split == 0]
    val = [j.frame_id for j in jobs if j.split == 1]
    sets = out_root / "ImageSets"
    atomic_write_text(sets / "train.txt", "".join(f"{i}\n" for i in train))
    atomic_write_text(sets / "val.txt", "".join(f"{i}\n" for i in val))
    atomic_write_text(sets / "trainval.txt", "".join(f"{i}\n" for i in train + val))
    summary = _summarise(stats, seconds, workers)
    from synth import CODE_VERSION

    meta = {"generator": "foresee synth", "code_version": CODE_VERSION,
            "settings": asdict(settings), "image_hw": list(settings.image_hw),
            "kitti_image_hw": list(KITTI_IMAGE_HW), "summary": summary}
    atomic_write_text(out_root / "synth.json", json.dumps(meta, indent=1) + "\n")
    return summary
