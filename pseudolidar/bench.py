"""Performance figures of the pseudo-LiDAR stage (``make bench`` runs this).

Reproduce::

    python -m pseudolidar.bench                      # both figures, 3,769 frames, 2 workers
    python -m pseudolidar.bench --data data/embedded      # inputs from the embedded benchmark's depth_2

1. Back-projection of one 1242x375 depth map in memory, single-threaded (numba kernel, and the
   float64 NumPy reference for comparison). Target: >= 100 frames/s.
2. The whole stage (:func:`pseudolidar.stage.run_pseudolidar`) on 3,769 frames with disk IO:
   read ``.npz`` depth, read calib and image_2 size, back-project, write ``.bin``. Target: < 60 s
   on 2 cores. The 3,769 inputs are hard links to a few distinct maps (the embedded benchmark's
   ground-truth depth when ``--data`` has it, else analytic road scenes); outputs are written in
   chunks that are deleted after each chunk so the run needs a few GB of disk, not ~18 GB. Only
   ``run_pseudolidar`` calls are timed (process-pool start-up of every chunk included).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from kitti import Calibration, KittiRoot, write_depth_npz
from kitti.fileio import atomic_write_bytes

#: A KITTI-like rig (P2 rounded from KITTI's, level camera 8 cm below and 27 cm behind the LiDAR),
#: used when no data root with depth_2 is at hand.
_FALLBACK_CALIB = Calibration(
    P2=[[721.54, 0.0, 609.56, 44.857], [0.0, 721.54, 172.85, 0.2164], [0.0, 0.0, 1.0, 0.0027]],
    R0_rect=np.eye(3),
    Tr_velo_to_cam=[[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, -0.08], [1.0, 0.0, 0.0, -0.27]])
HW = (375, 1242)


def analytic_depth(calib: Calibration, hw: tuple[int, int], seed: int) -> np.ndarray:
    """A road scene as a depth map: flat road 1.65 m below the camera, a facade 25-45 m ahead
    (seeded), sky (no data) above it. Dense like a depth network's output."""
    rng = np.random.default_rng(seed)
    H, W = hw
    v = np.arange(H, dtype=np.float64)[:, None] * np.ones((1, W))
    u = np.ones((H, 1)) * np.arange(W, dtype=np.float64)[None, :]
    facade = rng.uniform(25.0, 45.0)
    with np.errstate(divide="ignore"):
        road = np.where(v > calib.cv + 1, 1.65 * calib.fv / (v - calib.cv), np.inf)
    depth = np.minimum(road, facade + 0.02 * np.abs(u - calib.cu))
    top = calib.cv - 8.0 * calib.fv / facade  # 8 m high facade
    depth[v < top] = 0.0
    for _ in range(4):  # a few box-like obstacles
        d = rng.uniform(8.0, 30.0)
        u0, w = rng.uniform(100, W - 300), 1.8 * calib.fu / d
        v1 = calib.cv + 1.65 * calib.fv / d
        v0 = v1 - 1.5 * calib.fv / d
        box = (u >= u0) & (u < u0 + w) & (v >= v0) & (v < v1)
        depth[box] = np.minimum(depth[box], d)
    return depth.astype(np.float32)


def _maps(data: Path | None, n: int) -> tuple[list[np.ndarray], list[str], str]:
    """Up to n distinct depth maps of 1242x375 with their calib texts, and where they came from."""
    if data is not None and (data / "training" / "depth_2").is_dir():
        root = KittiRoot(data)
        ids = [f for f in root.frame_ids("depth_2") if root.image_hw(f) == HW][:n]
        if ids:
            return ([root.depth(f) for f in ids], [root.path("calib", f).read_text() for f in ids],
                    f"{data} depth_2 ({len(ids)} distinct maps)")
    text = _FALLBACK_CALIB.to_text()
    return ([analytic_depth(_FALLBACK_CALIB, HW, s) for s in range(n)], [text] * n,
            f"analytic road scenes ({n} distinct maps)")


def bench_backprojection(depth_m: np.ndarray, calib: Calibration, reps: int) -> dict[str, float]:
    """Frames per second of :func:`depth_to_points_velo` (and its float64 reference) in memory."""
    from pseudolidar import depth_to_points_velo, depth_to_points_velo_reference

    pts = depth_to_points_velo(depth_m, calib)  # compile / load the numba cache
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(reps):
        depth_to_points_velo(depth_m, calib)
    fast = reps / (time.perf_counter() - t0)
    fast_cpu = reps / (time.process_time() - c0)
    n_ref = max(3, reps // 20)
    t0 = time.perf_counter()
    for _ in range(n_ref):
        depth_to_points_velo_reference(depth_m, calib)
    ref = n_ref / (time.perf_counter() - t0)
    return {"fps": fast, "ms": 1000.0 / fast, "cpu_fps": fast_cpu, "reference_fps": ref,
            "points": float(len(pts))}


def _tiny_png(hw: tuple[int, int]) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", np.zeros((hw[0], hw[1], 3), np.uint8))
    assert ok
    return buf.tobytes()


def bench_stage(maps: list[np.ndarray], calibs: list[str], frames: int, workers: int, chunk: int,
                tmp: Path) -> dict[str, float]:
    """Seconds of :func:`run_pseudolidar` over ``frames`` frames built from ``maps``."""
    from pseudolidar.settings import PseudoLidarSettings
    from pseudolidar.stage import run_pseudolidar

    root = tmp / "root"
    depth_dir = tmp / "depth"
    src = tmp / "src"
    for k, (m, c) in enumerate(zip(maps, calibs)):
        write_depth_npz(src / f"d{k}.npz", m)
        atomic_write_bytes(src / f"c{k}.txt", c.encode())
    atomic_write_bytes(src / "img.png", _tiny_png(HW))
    for kind in ("calib", "image_2"):
        (root / "training" / kind).mkdir(parents=True)
    depth_dir.mkdir()
    ids = [f"{i:06d}" for i in range(frames)]
    for i, f in enumerate(ids):
        k = i % len(maps)
        os.link(src / f"d{k}.npz", depth_dir / f"{f}.npz")
        os.link(src / f"c{k}.txt", root / "training" / "calib" / f"{f}.txt")
        os.link(src / "img.png", root / "training" / "image_2" / f"{f}.png")
    settings = PseudoLidarSettings()
    seconds, cpu, points, written = 0.0, 0.0, 0, 0
    for start in range(0, frames, chunk):
        out = tmp / "out"
        cpu0 = _cpu_seconds()
        summary = run_pseudolidar(depth_dir, root, ids[start:start + chunk], out, settings,
                                  workers=workers, progress=False)
        cpu += _cpu_seconds() - cpu0
        seconds += summary["seconds"]
        points += summary["points_total"]
        written += sum(p.stat().st_size for p in out.iterdir())
        shutil.rmtree(out)
    return {"seconds": seconds, "cpu_seconds": cpu, "fps": frames / seconds,
            "points_per_frame": points / frames, "gigabytes_written": written / 1e9}


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished child processes."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("data/embedded"),
                    help="KITTI root with depth_2 to take inputs from (analytic maps when absent)")
    ap.add_argument("--frames", type=int, default=3769, help="stage frames (KITTI val: 3769)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=500, help="frames per chunk (outputs deleted after each)")
    ap.add_argument("--distinct", type=int, default=16, help="distinct depth maps behind the inputs")
    ap.add_argument("--reps", type=int, default=300, help="back-projection repetitions")
    ap.add_argument("--skip-stage", action="store_true")
    ap.add_argument("--tmp", type=Path, default=None, help="scratch folder (default: system temp)")
    args = ap.parse_args(argv)

    maps, calibs, origin = _maps(args.data if args.data.is_dir() else None, args.distinct)
    print(f"inputs: {origin}, {HW[1]}x{HW[0]}")
    r = bench_backprojection(maps[0], Calibration.from_text(calibs[0]), args.reps)
    print(f"back-projection, 1 thread, in memory: {r['fps']:.0f} frames/s wall ({r['ms']:.2f} ms/frame, "
          f"{r['cpu_fps']:.0f} frames/s of CPU time; {r['points']:.0f} points; float64 NumPy reference "
          f"{r['reference_fps']:.0f} frames/s) [target >= 100]")
    if args.skip_stage:
        return
    with tempfile.TemporaryDirectory(prefix="pl_bench_", dir=args.tmp) as tmp:
        s = bench_stage(maps, calibs, args.frames, args.workers, args.chunk, Path(tmp))
    print(f"stage, {args.frames} frames, {args.workers} workers, disk IO: {s['seconds']:.1f} s "
          f"({s['fps']:.0f} frames/s, {s['points_per_frame']:.0f} points/frame, "
          f"{s['gigabytes_written']:.1f} GB written) [target < 60 s]; CPU {s['cpu_seconds']:.1f} s "
          f"(user+system, all processes) = {s['cpu_seconds'] / args.workers:.1f} s on "
          f"{args.workers} uncontended cores; load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
