"""Benchmark: a deterministic KITTI-val-sized case (3769 frames), all 3 classes x 4 metrics x R11/R40.

Run::

    python -m kitti_eval.bench [--frames 3769] [--seed 0] [--threads N]

It writes a synthetic ground-truth / results pair into a temporary folder (KITTI-like object
counts, sizes, 2D boxes, DontCare regions, noisy detections, duplicates and false positives),
then reports wall times for: reading the 2 x 3769 files, the first ``evaluate`` call of this
process (numba JIT, or its on-disk cache when present), a warm call (best of 3), a fresh Python
process with numba's on-disk cache (imports + load + evaluate, measured from outside, wall and CPU
time), and a fresh process with an empty cache (full compile). On a shared machine compare the
CPU times (``*_cpu_s``): wall times grow with the load average printed in the summary.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from kitti.classes import MEAN_SIZE_LWH
from kitti.fileio import atomic_write_text

_FOCAL_PX, _CU, _CV = 721.5, 609.6, 172.9
_MEAN_COUNT = {"Car": 4.0, "Van": 0.4, "Truck": 0.15, "Pedestrian": 0.6, "Person_sitting": 0.05,
               "Cyclist": 0.25, "Misc": 0.1, "DontCare": 1.5}
_EVAL = ("Car", "Pedestrian", "Cyclist")


def _object(rng: np.random.Generator, kind: str) -> list[float]:
    l, w, h = (np.array(MEAN_SIZE_LWH.get(kind, MEAN_SIZE_LWH["Car"])) * rng.uniform(0.9, 1.1, 3))
    z = rng.uniform(4.0, 60.0)
    x = rng.uniform(-0.6, 0.6) * z
    y = 1.65 + rng.normal(0, 0.1)
    ry = rng.uniform(-np.pi, np.pi)
    alpha = ry - np.arctan2(x, z)
    alpha = (alpha + np.pi) % (2 * np.pi) - np.pi
    u = _FOCAL_PX * x / z + _CU
    half_w = 0.5 * _FOCAL_PX * (abs(l * np.sin(ry)) + abs(w * np.cos(ry))) / z
    v_top, v_bot = _FOCAL_PX * (y - h) / z + _CV, _FOCAL_PX * y / z + _CV
    x1, x2 = max(0.0, u - half_w), min(1241.0, u + half_w)
    if x2 <= x1:
        x1, x2 = 0.0, 5.0
    trunc = float(np.clip(rng.uniform(-0.3, 0.6), 0, 0.9))
    occ = int(rng.integers(0, 4))
    return [trunc, occ, alpha, x1, v_top, x2, v_bot, h, w, l, x, y, z, ry]


def _gt_line(kind: str, v: list[float]) -> str:
    if kind == "DontCare":
        return (f"DontCare -1 -1 -10 {v[3]:.2f} {v[4]:.2f} {v[5]:.2f} {v[6]:.2f} "
                "-1 -1 -1 -1000 -1000 -1000 -10")
    return f"{kind} {v[0]:.2f} {v[1]} " + " ".join(f"{x:.2f}" for x in v[2:])


def _det_line(kind: str, v: list[float], score: float) -> str:
    return f"{kind} -1 -1 " + " ".join(f"{x:.4f}" for x in v[2:]) + f" {score:.4f}"


def make_case(folder: Path, n_frames: int = 3769, seed: int = 0) -> tuple[Path, Path]:
    """Write ``folder/gt/label_2`` and ``folder/det`` (deterministic in ``seed``).

    Returns:
        ``(gt_label_dir, det_dir)``.
    """
    rng = np.random.default_rng(seed)
    gt_dir, det_dir = folder / "gt" / "label_2", folder / "det"
    for f in range(n_frames):
        gt_lines, det_lines = [], []
        for kind, mean in _MEAN_COUNT.items():
            for _ in range(rng.poisson(mean)):
                v = _object(rng, kind)
                gt_lines.append(_gt_line(kind, v))
                if kind in _EVAL or (kind == "Van" and rng.random() < 0.3):
                    for _ in range(int(rng.random() < 0.85) + int(rng.random() < 0.08)):
                        d = list(v)
                        d[3:7] = (np.array(v[3:7]) + rng.normal(0, 2.0, 4)).tolist()
                        d[7:10] = (np.array(v[7:10]) * rng.normal(1, 0.05, 3)).tolist()
                        d[10:13] = (np.array(v[10:13]) + rng.normal(0, 0.015 * v[12] ** 0.5, 3)).tolist()
                        d[13] += rng.normal(0, 0.1)
                        d[2] += rng.normal(0, 0.2)
                        det_lines.append(_det_line("Car" if kind == "Van" else kind, d, rng.uniform(0.2, 1)))
        for _ in range(rng.poisson(6.0)):
            kind = _EVAL[int(rng.choice(3, p=[0.7, 0.2, 0.1]))]
            det_lines.append(_det_line(kind, _object(rng, kind), rng.uniform(0, 0.7)))
        name = f"{f:06d}.txt"
        atomic_write_text(gt_dir / name, "".join(s + "\n" for s in gt_lines))
        atomic_write_text(det_dir / name, "".join(s + "\n" for s in det_lines))
    return gt_dir, det_dir


def _timed_run(gt_dir: Path, det_dir: Path) -> dict:
    """Load + first evaluate + warm evaluate in this process."""
    from kitti_eval.loading import label_frame_ids, read_label_folder
    from kitti_eval.metrics import evaluate

    t0 = time.perf_counter()
    ids = label_frame_ids(det_dir)
    gt = read_label_folder(gt_dir, ids)
    det = read_label_folder(det_dir, ids, detections=True)
    t1 = time.perf_counter()
    result = evaluate(gt, det)
    t2 = time.perf_counter()
    warm, warm_cpu = [], []
    for _ in range(3):
        t, c = time.perf_counter(), time.process_time()
        evaluate(gt, det)
        warm.append(time.perf_counter() - t)
        warm_cpu.append(time.process_time() - c)
    return {"frames": len(ids), "gt_objects": len(gt), "detections": len(det),
            "load_s": t1 - t0, "first_call_s": t2 - t1, "warm_s": min(warm),
            "warm_cpu_s": min(warm_cpu),
            "car_3d_R40": result.ap["Car"]["3d"]["R40"]}


def _child(gt_dir: Path, det_dir: Path) -> None:
    """Fresh-process timing: load + one evaluate (printed as JSON; imports are counted by the
    parent's process wall time)."""
    from kitti_eval.loading import label_frame_ids, read_label_folder
    from kitti_eval.metrics import evaluate

    t1 = time.perf_counter()
    ids = label_frame_ids(det_dir)
    gt, det = read_label_folder(gt_dir, ids), read_label_folder(det_dir, ids, detections=True)
    t2 = time.perf_counter()
    evaluate(gt, det)
    t3 = time.perf_counter()
    print(json.dumps({"load_s": t2 - t1, "evaluate_s": t3 - t2}))


def _fresh_process(gt_dir: Path, det_dir: Path, env: dict) -> dict:
    """Run :func:`_child` in a new interpreter; adds its wall and CPU (user + sys) time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "kitti_eval.bench", "--child", str(gt_dir),
                          str(det_dir)], env=env, check=True, capture_output=True, text=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    report["process_wall_s"] = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    report["process_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return report


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=3769)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="NUMBA_NUM_THREADS (default: numba's)")
    p.add_argument("--no-cold", action="store_true", help="skip the empty-cache (compile) process")
    p.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _child(*args.child)
        return
    env = dict(os.environ)
    if args.threads:
        env["NUMBA_NUM_THREADS"] = str(args.threads)
        os.environ["NUMBA_NUM_THREADS"] = str(args.threads)
    with tempfile.TemporaryDirectory(prefix="kitti_eval_bench_") as tmp:
        t = time.perf_counter()
        gt_dir, det_dir = make_case(Path(tmp), args.frames, args.seed)
        print(f"generated {args.frames} frames in {time.perf_counter() - t:.1f} s ({tmp})")
        rows = {"this process": _timed_run(gt_dir, det_dir)}
        rows["fresh process, on-disk cache"] = _fresh_process(gt_dir, det_dir, env)
        if not args.no_cold:
            with tempfile.TemporaryDirectory(prefix="numba_cache_") as cache:
                rows["fresh process, empty cache"] = _fresh_process(
                    gt_dir, det_dir, {**env, "NUMBA_CACHE_DIR": cache})
    import numba

    print(f"kitti_eval bench: 3 classes x 4 metrics x R11/R40, numba {numba.__version__}, "
          f"{numba.config.NUMBA_NUM_THREADS} threads, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    for name, r in rows.items():
        print(f"  {name:<30} " + "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                                           for k, v in r.items()))


if __name__ == "__main__":
    main()
